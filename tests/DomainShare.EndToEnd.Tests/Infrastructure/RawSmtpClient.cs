using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>An SMTP reply: its code (0 when the line does not start with three digits) and its whole text, the lines of a multi-line reply joined by LF.</summary>
public sealed record SmtpReply(int Code, string Text)
{
    /// <summary>The last line; for a one-line reply, the whole reply.</summary>
    public string Last => Text[(Text.LastIndexOf('\n') + 1)..];

    public override string ToString() => Text;

    /// <summary>True for the last line of a reply (no <c>-</c> after the code).</summary>
    internal static bool IsLastLine(string line) => line.Length < 4 || line[3] != '-';

    internal static SmtpReply Of(List<string> lines)
    {
        var last = lines[^1];
        int code = last.Length >= 3 && char.IsAsciiDigit(last[0]) && char.IsAsciiDigit(last[1]) && char.IsAsciiDigit(last[2])
            ? (last[0] - '0') * 100 + (last[1] - '0') * 10 + (last[2] - '0')
            : 0;
        return new SmtpReply(code, string.Join('\n', lines));
    }
}

/// <summary>
/// An SMTP client on a raw socket, for tests that must send exactly the bytes they choose (MailKit refuses some, and
/// announces SIZE): connects from a chosen loopback address or the default one, sends text as UTF-8 exactly as given
/// (<see cref="Command"/> adds the CRLF), and reads replies, multi-line ones whole. Lines end at LF (a CR before it is
/// dropped) and are read as ASCII. The synchronous calls are bounded by the socket's send and receive timeouts, the
/// asynchronous ones by their token.
/// </summary>
public sealed class RawSmtpClient : IDisposable
{
    /// <summary>The send and receive timeout of the synchronous calls unless the caller gives one.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly NetworkStream stream;
    private readonly byte[] buffer = new byte[8192];
    private int start, end;

    private RawSmtpClient(Socket socket) => stream = new NetworkStream(socket, ownsSocket: true);

    /// <summary>Connects to <paramref name="server"/>'s SMTP port from <paramref name="from"/> (the system's choice when null); reads nothing yet.</summary>
    public static RawSmtpClient Connect(Server server, IPAddress? from = null, TimeSpan? timeout = null)
    {
        var socket = NewSocket(from, timeout ?? DefaultTimeout);
        try
        {
            socket.Connect(server.Address, server.SmtpPort);
            return new RawSmtpClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <inheritdoc cref="Connect"/>
    public static async Task<RawSmtpClient> ConnectAsync(Server server, IPAddress? from, CancellationToken ct)
    {
        var socket = NewSocket(from, DefaultTimeout);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(server.Address, server.SmtpPort), ct);
            return new RawSmtpClient(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket NewSocket(IPAddress? from, TimeSpan timeout)
    {
        int ms = (int)timeout.TotalMilliseconds;
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = ms, SendTimeout = ms };
        try
        {
            if (from is not null) socket.Bind(new IPEndPoint(from, 0));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="text"/> as UTF-8, exactly: nothing is added.</summary>
    public void Send(string text) => stream.Write(Encoding.UTF8.GetBytes(text));

    public ValueTask SendAsync(string text, CancellationToken ct) => stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct);

    /// <summary>Sends <paramref name="line"/> and CRLF, and reads the reply.</summary>
    public SmtpReply Command(string line)
    {
        Send(line + "\r\n");
        return ReadReply();
    }

    public async Task<SmtpReply> CommandAsync(string line, CancellationToken ct)
    {
        await SendAsync(line + "\r\n", ct);
        return await ReadReplyAsync(ct);
    }

    /// <summary>
    /// Sends <paramref name="content"/> as the text after DATA: line ends made CRLF, lines that start with a dot doubled,
    /// then the final dot; reads the reply to it.
    /// </summary>
    public SmtpReply Data(string content)
    {
        var lines = content.ReplaceLineEndings("\r\n").Split("\r\n").Select(l => l.StartsWith('.') ? "." + l : l);
        Send(string.Join("\r\n", lines).TrimEnd('\r', '\n') + "\r\n.\r\n");
        return ReadReply();
    }

    /// <summary>The next reply; an <see cref="IOException"/> when the server closed the connection first.</summary>
    public SmtpReply ReadReply() => TryReadReply() ?? throw Closed();

    public async Task<SmtpReply> ReadReplyAsync(CancellationToken ct) => await TryReadReplyAsync(ct) ?? throw Closed();

    /// <summary>The next reply, or null when the server closed the connection before its last line.</summary>
    public SmtpReply? TryReadReply()
    {
        var lines = new List<string>();
        while (ReadLine() is { } line)
        {
            lines.Add(line);
            if (SmtpReply.IsLastLine(line)) return SmtpReply.Of(lines);
        }
        return null;
    }

    public async Task<SmtpReply?> TryReadReplyAsync(CancellationToken ct)
    {
        var lines = new List<string>();
        while (await ReadLineAsync(ct) is { } line)
        {
            lines.Add(line);
            if (SmtpReply.IsLastLine(line)) return SmtpReply.Of(lines);
        }
        return null;
    }

    private static IOException Closed() => new("the server closed the connection");

    /// <summary>The next line, or null at the end of the stream (a last line without LF is returned as it is).</summary>
    private string? ReadLine()
    {
        var line = new StringBuilder();
        while (!TakeLine(line))
        {
            start = 0;
            end = stream.Read(buffer);
            if (end == 0) return line.Length == 0 ? null : line.ToString();
        }
        return line.ToString().TrimEnd('\r');
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        var line = new StringBuilder();
        while (!TakeLine(line))
        {
            start = 0;
            end = await stream.ReadAsync(buffer, ct);
            if (end == 0) return line.Length == 0 ? null : line.ToString();
        }
        return line.ToString().TrimEnd('\r');
    }

    /// <summary>Moves the buffered bytes up to the next LF into <paramref name="line"/>; true when that LF was buffered (it is consumed too).</summary>
    private bool TakeLine(StringBuilder line)
    {
        int lf = Array.IndexOf(buffer, (byte)'\n', start, end - start);
        int stop = lf < 0 ? end : lf;
        line.Append(Encoding.ASCII.GetString(buffer, start, stop - start));
        start = lf < 0 ? end : lf + 1;
        return lf >= 0;
    }

    public void Dispose() => stream.Dispose();
}
