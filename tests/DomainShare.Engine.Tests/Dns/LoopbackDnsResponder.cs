using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

// Kept free of project types and in a namespace of its own so that the module tests can compile the same file.
namespace DomainShare.Tests.DnsResponder;

/// <summary>How the responder answers a name.</summary>
public enum DnsBehavior
{
    /// <summary>NOERROR with the name's MX records (none configured: NOERROR with an empty answer).</summary>
    Answer,
    /// <summary>RCODE 2, SERVFAIL.</summary>
    ServerFailure,
    /// <summary>RCODE 3, NXDOMAIN.</summary>
    NameError,
    /// <summary>RCODE 5, REFUSED.</summary>
    Refused,
    /// <summary>Never answers: the client times out.</summary>
    Silent,
}

/// <summary>
/// A real DNS server for tests: UDP on 127.0.0.1 with a port of its own, answering MX queries from a table. It parses
/// the header and question section of each query (RFC 1035 §4.1) and builds the response by hand: the question echoed,
/// then one MX resource record per table entry with uncompressed names. Names not in the table get NXDOMAIN.
/// </summary>
public sealed class LoopbackDnsResponder : IDisposable
{
    private const ushort TypeMx = 15;
    private const ushort TypeAny = 255;
    private const ushort ClassIn = 1;

    private readonly Socket socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentDictionary<string, (DnsBehavior Behavior, (int Preference, string Host)[] Records)> names = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<string> questions = new();
    private readonly Task loop;

    public LoopbackDnsResponder()
    {
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        EndPoint = (IPEndPoint)socket.LocalEndPoint!;
        loop = Task.Run(ServeAsync);
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>The server as Test-DomainShareMx -DnsServer takes it: <c>127.0.0.1:port</c>.</summary>
    public string Address => $"127.0.0.1:{EndPoint.Port}";

    /// <summary>Every question received, as <c>name/type</c> (<c>example.com/15</c>), in order.</summary>
    public IReadOnlyList<string> Questions => [.. questions];

    /// <summary>Answers <paramref name="name"/> with these MX records (preference, exchange host); none: NOERROR with no answer.</summary>
    public LoopbackDnsResponder Mx(string name, params (int Preference, string Host)[] records)
    {
        names[Key(name)] = (DnsBehavior.Answer, records);
        return this;
    }

    public LoopbackDnsResponder Behave(string name, DnsBehavior behavior)
    {
        names[Key(name)] = (behavior, []);
        return this;
    }

    private static string Key(string name) => name.TrimEnd('.').ToLowerInvariant();

    private async Task ServeAsync()
    {
        var buffer = new byte[4096];
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult received;
            try
            {
                received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // e.g. an ICMP port unreachable from a client that left
            }
            byte[]? response = Respond(buffer.AsSpan(0, received.ReceivedBytes));
            if (response is null) continue;
            try
            {
                await socket.SendToAsync(response, SocketFlags.None, received.RemoteEndPoint, stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }
        }
    }

    /// <summary>The response to one query, or null when there is none to send (silent name, or not a query).</summary>
    private byte[]? Respond(ReadOnlySpan<byte> query)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0) return null; // too short, or a response
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(query);
        if (BinaryPrimitives.ReadUInt16BigEndian(query[4..]) != 1)
            return Header(id, query[2], rcode: 1, answers: 0).ToArray(); // FORMERR: exactly one question is supported
        int offset = 12;
        var labels = new List<string>();
        while (true)
        {
            if (offset >= query.Length) return Header(id, query[2], 1, 0).ToArray();
            int length = query[offset++];
            if (length == 0) break;
            if (length > 63 || offset + length > query.Length) return Header(id, query[2], 1, 0).ToArray(); // no pointers in a question
            labels.Add(Encoding.ASCII.GetString(query.Slice(offset, length)));
            offset += length;
        }
        if (offset + 4 > query.Length) return Header(id, query[2], 1, 0).ToArray();
        ushort qtype = BinaryPrimitives.ReadUInt16BigEndian(query[offset..]);
        ushort qclass = BinaryPrimitives.ReadUInt16BigEndian(query[(offset + 2)..]);
        offset += 4;
        string name = string.Join('.', labels);
        questions.Enqueue($"{name}/{qtype}");
        var question = query[12..offset];

        if (!names.TryGetValue(Key(name), out var entry))
            entry = (DnsBehavior.NameError, []);
        ((int Preference, string Host)[]? Records, int Rcode) outcome = entry.Behavior switch
        {
            DnsBehavior.Silent => (null, -1),
            DnsBehavior.ServerFailure => ([], 2),
            DnsBehavior.NameError => ([], 3),
            DnsBehavior.Refused => ([], 5),
            _ => ((qtype is TypeMx or TypeAny) && qclass == ClassIn ? entry.Records : [], 0),
        };
        if (outcome.Records is not { } records) return null;
        int rcode = outcome.Rcode;

        var response = Header(id, query[2], rcode, records.Length);
        response.AddRange(question.ToArray());
        foreach (var (preference, host) in records)
        {
            response.AddRange(EncodeName(name));
            AddUInt16(response, TypeMx);
            AddUInt16(response, ClassIn);
            AddUInt32(response, 3600);
            var exchange = EncodeName(host);
            AddUInt16(response, (ushort)(2 + exchange.Length));
            AddUInt16(response, (ushort)preference);
            response.AddRange(exchange);
        }
        return [.. response];
    }

    private static List<byte> Header(ushort id, byte queryFlags, int rcode, int answers)
    {
        var header = new List<byte>(512);
        AddUInt16(header, id);
        header.Add((byte)(0x80 | (queryFlags & 0x79) | 0x04)); // QR, the query's opcode and RD, AA
        header.Add((byte)(0x80 | rcode));                      // RA, RCODE
        AddUInt16(header, 1);                                   // QDCOUNT
        AddUInt16(header, (ushort)answers);                     // ANCOUNT
        AddUInt16(header, 0);                                   // NSCOUNT
        AddUInt16(header, 0);                                   // ARCOUNT
        return header;
    }

    /// <summary>A name as length-prefixed labels ending with the root's empty label; "" or "." is the root alone.</summary>
    private static byte[] EncodeName(string name)
    {
        var bytes = new List<byte>();
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var ascii = Encoding.ASCII.GetBytes(label);
            bytes.Add((byte)ascii.Length);
            bytes.AddRange(ascii);
        }
        bytes.Add(0);
        return [.. bytes];
    }

    private static void AddUInt16(List<byte> bytes, ushort value)
    {
        bytes.Add((byte)(value >> 8));
        bytes.Add((byte)value);
    }

    private static void AddUInt32(List<byte> bytes, uint value)
    {
        AddUInt16(bytes, (ushort)(value >> 16));
        AddUInt16(bytes, (ushort)value);
    }

    public void Dispose()
    {
        stop.Cancel();
        socket.Dispose();
        try { loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        stop.Dispose();
    }
}
