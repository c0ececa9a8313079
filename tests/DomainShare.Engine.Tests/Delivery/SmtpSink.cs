using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.Testing;

// Not "DomainShare.Engine.Tests.Delivery": a namespace of that name would shadow DomainShare.Engine.Delivery.
namespace DomainShare.Engine.Tests.DeliveryTests;

/// <summary>A message as the sink received it: the envelope and the DATA bytes, dot-unstuffed, final CRLF.CRLF removed.</summary>
internal sealed record SinkMessage(string MailFrom, IReadOnlyList<string> Recipients, byte[] Data, int Connection);

/// <summary>
/// A minimal line-based SMTP receiver on a loopback address, for the peer (or relay host) side of delivery tests:
/// 220 greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Behaviour the test controls: a reply per recipient
/// (450/550...), a reply to the end of DATA, dropping the connection in the middle of DATA, silence (TCP accepted,
/// nothing ever said), and a hang at MAIL. Every message and command is recorded.
/// </summary>
internal sealed class SmtpSink : IAsyncDisposable
{
    private readonly TcpListener listener;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private readonly ConcurrentBag<Task> sessions = [];
    private readonly ConcurrentBag<TcpClient> clients = [];
    private int connections;

    public SmtpSink(string address = "127.0.0.1", int port = 0)
    {
        listener = new TcpListener(IPAddress.Parse(address), port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start();
        loop = Task.Run(AcceptLoop);
    }

    /// <summary>A port on <paramref name="address"/> with nothing listening (for a peer that is down until a sink starts there).</summary>
    public static int FreePort(string address = "127.0.0.1")
    {
        var probe = new TcpListener(IPAddress.Parse(address), 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>Replies to RCPT TO per address (case-insensitive), such as <c>550 5.1.1 User unknown</c>; others get 250.</summary>
    public ConcurrentDictionary<string, string> RecipientReplies { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The reply to the end of DATA; null answers 250.</summary>
    public string? DataReply { get; set; }

    /// <summary>Close the connection after the first DATA line, without an answer.</summary>
    public bool DropDuringData { get; set; }

    /// <summary>Leave SMTPUTF8 out of the EHLO answer (an older server).</summary>
    public bool WithoutSmtpUtf8 { get; set; }

    /// <summary>Accept connections and never say anything.</summary>
    public bool Silent { get; set; }

    /// <summary>Greet and answer EHLO, then never answer MAIL: a peer that hangs in the middle of a session.</summary>
    public bool StallAtMail { get; set; }

    public ConcurrentQueue<SinkMessage> Messages { get; } = new();
    public ConcurrentQueue<string> Commands { get; } = new();
    public int Connections => Volatile.Read(ref connections);

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            clients.Add(client);
            int n = Interlocked.Increment(ref connections);
            sessions.Add(Task.Run(() => Serve(client, n)));
        }
    }

    private async Task Serve(TcpClient client, int connection)
    {
        using var _ = client;
        try
        {
            var stream = client.GetStream();
            var reader = new LineReader(stream);
            var ct = stop.Token;
            if (Silent)
            {
                await Task.Delay(Timeout.Infinite, ct);
                return;
            }
            async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
            await Say("220 sink.test ESMTP ready");
            string? from = null;
            var recipients = new List<string>();
            while (true)
            {
                var raw = await reader.ReadLineAsync(ct);
                if (raw is null) return;
                string line = Encoding.UTF8.GetString(raw).TrimEnd('\r', '\n');
                Commands.Enqueue(line);
                string verb = line.Split(' ', 2)[0].ToUpperInvariant();
                if (verb.StartsWith("MAIL", StringComparison.Ordinal)) verb = "MAIL";
                if (verb.StartsWith("RCPT", StringComparison.Ordinal)) verb = "RCPT";
                switch (verb)
                {
                    case "EHLO":
                        await Say("250-sink.test\r\n250-8BITMIME\r\n" + (WithoutSmtpUtf8 ? "" : "250-SMTPUTF8\r\n") + "250-PIPELINING\r\n250 ENHANCEDSTATUSCODES");
                        break;
                    case "HELO":
                        await Say("250 sink.test");
                        break;
                    case "MAIL":
                        if (StallAtMail)
                        {
                            await Task.Delay(Timeout.Infinite, ct);
                            return;
                        }
                        from = Angle(line);
                        recipients.Clear();
                        await Say("250 2.1.0 Ok");
                        break;
                    case "RCPT":
                        string rcpt = Angle(line);
                        if (RecipientReplies.TryGetValue(rcpt, out var reply))
                        {
                            await Say(reply);
                        }
                        else
                        {
                            recipients.Add(rcpt);
                            await Say("250 2.1.5 Ok");
                        }
                        break;
                    case "DATA":
                        if (from is null || recipients.Count == 0)
                        {
                            await Say("554 5.5.1 No valid recipients");
                            break;
                        }
                        await Say("354 End data with <CR><LF>.<CR><LF>");
                        var data = new MemoryStream();
                        while (true)
                        {
                            var dataLine = await reader.ReadLineAsync(ct);
                            if (dataLine is null) return;
                            if (DropDuringData) return;
                            if (dataLine.AsSpan().SequenceEqual(".\r\n"u8)) break;
                            int skip = dataLine.Length > 0 && dataLine[0] == (byte)'.' ? 1 : 0;
                            data.Write(dataLine, skip, dataLine.Length - skip);
                        }
                        if (DataReply is { } refusal)
                        {
                            await Say(refusal);
                        }
                        else
                        {
                            Messages.Enqueue(new SinkMessage(from, recipients.ToArray(), data.ToArray(), connection));
                            await Say("250 2.0.0 Ok: queued");
                        }
                        from = null;
                        recipients.Clear();
                        break;
                    default:
                        if (await SmtpTestSession.AnswerOtherAsync(verb, () => { from = null; recipients.Clear(); }, Say)) return;
                        break;
                }
            }
        }
        catch (Exception)
        {
            // The client went away or the sink is stopping.
        }
    }

    private static string Angle(string line)
    {
        int open = line.IndexOf('<'), close = line.IndexOf('>', open + 1);
        return open >= 0 && close > open ? line[(open + 1)..close] : "";
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Stop();
        foreach (var c in clients) c.Dispose();
        try { await loop; } catch { }
        try { await Task.WhenAll(sessions); } catch { }
        stop.Dispose();
    }

    /// <summary>Reads CRLF-terminated lines as bytes (the terminator included).</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] buffer = new byte[8192];
        private int start, end;

        public async Task<byte[]?> ReadLineAsync(CancellationToken ct)
        {
            var line = new MemoryStream();
            while (true)
            {
                if (start == end)
                {
                    start = 0;
                    end = await stream.ReadAsync(buffer, ct);
                    if (end == 0) return null;
                }
                int nl = Array.IndexOf(buffer, (byte)'\n', start, end - start);
                if (nl >= 0)
                {
                    line.Write(buffer, start, nl + 1 - start);
                    start = nl + 1;
                    return line.ToArray();
                }
                line.Write(buffer, start, end - start);
                start = end;
            }
        }
    }
}
