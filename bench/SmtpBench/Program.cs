// SMTP helper for bench/smtp.sh. Two modes, both loopback-only and bounded in time:
//
//   client: sends --messages messages over --sessions parallel SMTP sessions (each session keeps its connection and runs
//           one transaction after the other: MAIL, RCPT, DATA) and times, per message, the span from writing the final
//           "\r\n.\r\n" to reading the complete reply. Prints one key=value line on standard output.
//   sink:   a fallback accept-and-discard SMTP server, used only when Postfix's smtp-sink is not available. After each
//           message it prints "mesg=<count>" (the same counter smtp-sink -c prints), so the script reads both alike.
//
// Exit codes: 0 success; 1 a message was refused or a session failed (client), or the time bound was reached before
// every message was sent; 2 bad arguments.

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DomainShare.SmtpBench;

internal static class Program
{
    private const string Usage =
        "usage: SmtpBench client --server ip:port [--messages 2000] [--sessions 4] [--size 1024] [--from a@b] [--to c@d] [--seconds 300]\n" +
        "       SmtpBench sink --listen ip:port [--seconds 3600]";

    private static async Task<int> Main(string[] args)
    {
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help")
            {
                Console.Error.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
            }
            var options = Options.Parse(args.AsSpan(1));
            return args[0] switch
            {
                "client" => await Client.RunAsync(options),
                "sink" => await Sink.RunAsync(options),
                _ => throw new ArgumentException($"unknown mode '{args[0]}'"),
            };
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"SmtpBench: {ex.Message}\n{Usage}");
            return 2;
        }
    }
}

internal sealed class Options
{
    private readonly Dictionary<string, string> values = new(StringComparer.Ordinal);

    public static Options Parse(ReadOnlySpan<string> args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"bad argument '{args[i]}'");
            o.values[args[i][2..]] = args[++i];
        }
        return o;
    }

    public string Text(string name, string? fallback = null)
        => values.TryGetValue(name, out var v) ? v : fallback ?? throw new ArgumentException($"--{name} is required");

    public int Number(string name, int fallback, int min, int max)
    {
        if (!values.TryGetValue(name, out var v)) return fallback;
        if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
            throw new ArgumentException($"--{name} must be a whole number from {min} to {max}");
        return n;
    }

    public IPEndPoint LoopbackEndpoint(string name)
    {
        if (!IPEndPoint.TryParse(Text(name), out var ep) || ep.Port == 0)
            throw new ArgumentException($"--{name} must be ip:port");
        if (!IPAddress.IsLoopback(ep.Address))
            throw new ArgumentException($"--{name} must be a loopback address (127.0.0.0/8 or ::1)");
        return ep;
    }
}

/// <summary>Reads CRLF-terminated lines from a stream, with its own buffer (SMTP replies and commands are ASCII).</summary>
internal sealed class LineReader(Stream stream)
{
    private readonly byte[] buffer = new byte[64 * 1024];
    private int start, end;

    /// <summary>The next line without its line ending; null at end of stream. Lines longer than the buffer are cut.</summary>
    public async ValueTask<string?> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            int nl = Array.IndexOf(buffer, (byte)'\n', start, end - start);
            if (nl >= 0)
            {
                int len = nl - start;
                if (len > 0 && buffer[nl - 1] == '\r') len--;
                string line = Encoding.Latin1.GetString(buffer, start, len);
                start = nl + 1;
                return line;
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            if (end == buffer.Length)
            {
                string cut = Encoding.Latin1.GetString(buffer, 0, end);
                start = end = 0;
                return cut;
            }
            int n = await stream.ReadAsync(buffer.AsMemory(end), ct);
            if (n == 0) return null;
            end += n;
        }
    }

    /// <summary>A complete (possibly multi-line) SMTP reply: its code and last line.</summary>
    public async ValueTask<(int Code, string Text)> ReadReplyAsync(CancellationToken ct)
    {
        while (true)
        {
            string line = await ReadLineAsync(ct) ?? throw new IOException("connection closed by the server");
            if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out int code))
                throw new IOException($"malformed reply '{line}'");
            if (line.Length == 3 || line[3] == ' ') return (code, line);
        }
    }
}

internal static class Client
{
    public static async Task<int> RunAsync(Options o)
    {
        var server = o.LoopbackEndpoint("server");
        int messages = o.Number("messages", 2000, 1, 10_000_000);
        int sessions = o.Number("sessions", 4, 1, 1000);
        int size = o.Number("size", 1024, 0, 100 * 1024 * 1024);
        int seconds = o.Number("seconds", 300, 1, 86_400);
        string from = o.Text("from", "sender@example.org");
        string to = o.Text("to", "u1@example.com");

        byte[] payload = BuildPayload(size);
        byte[] terminator = "\r\n.\r\n"u8.ToArray();
        var latencies = new double[messages];
        int next = -1, ok = 0, refused = 0, failedSessions = 0;
        var errors = new List<string>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        var wall = Stopwatch.StartNew();

        async Task SessionAsync(int id)
        {
            try
            {
                using var tcp = new TcpClient(server.AddressFamily) { NoDelay = true };
                await tcp.ConnectAsync(server, deadline.Token);
                var stream = tcp.GetStream();
                var reader = new LineReader(stream);
                async Task<(int, string)> Command(string line, int expect)
                {
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), deadline.Token);
                    var reply = await reader.ReadReplyAsync(deadline.Token);
                    if (reply.Code != expect) throw new SmtpRefusedException($"{line.Split(' ')[0]} → {reply.Text}");
                    return reply;
                }
                var greeting = await reader.ReadReplyAsync(deadline.Token);
                if (greeting.Code != 220) throw new IOException($"greeting {greeting.Text}");
                await Command("EHLO smtpbench.localhost", 250);
                while (true)
                {
                    int index = Interlocked.Increment(ref next);
                    if (index >= messages) break;
                    try
                    {
                        await Command($"MAIL FROM:<{from}>", 250);
                        await Command($"RCPT TO:<{to}>", 250);
                        await Command("DATA", 354);
                        await stream.WriteAsync(Headers(from, to, index), deadline.Token);
                        await stream.WriteAsync(payload, deadline.Token);
                        long t0 = Stopwatch.GetTimestamp();
                        await stream.WriteAsync(terminator, deadline.Token);
                        var reply = await reader.ReadReplyAsync(deadline.Token);
                        latencies[index] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                        if (reply.Code != 250) throw new SmtpRefusedException($"end of DATA → {reply.Text}");
                        Interlocked.Increment(ref ok);
                    }
                    catch (SmtpRefusedException ex)
                    {
                        latencies[index] = double.NaN;
                        Interlocked.Increment(ref refused);
                        lock (errors) if (errors.Count < 10) errors.Add($"session {id}: {ex.Message}");
                        await Command("RSET", 250);
                    }
                }
                try { await Command("QUIT", 221); } catch (SmtpRefusedException) { }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or SmtpRefusedException)
            {
                Interlocked.Increment(ref failedSessions);
                lock (errors) if (errors.Count < 10) errors.Add($"session {id}: {(deadline.IsCancellationRequested ? "time bound reached" : ex.Message)}");
            }
        }

        await Task.WhenAll(Enumerable.Range(0, sessions).Select(i => Task.Run(() => SessionAsync(i))));
        wall.Stop();

        var done = latencies.Where(l => l > 0 && !double.IsNaN(l)).Order().ToArray();
        string P(double q) => done.Length == 0 ? "nan" : done[Math.Min(done.Length - 1, (int)Math.Ceiling(q * done.Length) - 1)].ToString("F3", CultureInfo.InvariantCulture);
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        Console.Out.WriteLine(
            $"messages={messages} ok={ok} refused={refused} failed_sessions={failedSessions} seconds={F(wall.Elapsed.TotalSeconds)} " +
            $"rate={F(ok / wall.Elapsed.TotalSeconds)} p50_ms={P(0.50)} p90_ms={P(0.90)} p99_ms={P(0.99)} " +
            $"max_ms={(done.Length == 0 ? "nan" : F(done[^1]))} mean_ms={(done.Length == 0 ? "nan" : F(done.Average()))}");
        foreach (var e in errors) Console.Error.WriteLine($"SmtpBench: {e}");
        return ok == messages ? 0 : 1;
    }

    /// <summary>The header block of message <paramref name="index"/> (its own Message-ID), ending with the empty line.</summary>
    private static byte[] Headers(string from, string to, int index)
        => Encoding.ASCII.GetBytes($"From: <{from}>\r\nTo: <{to}>\r\nSubject: smtpbench {index}\r\nDate: {DateTimeOffset.UtcNow:R}\r\n" +
                                   $"Message-ID: <{index}.{Guid.NewGuid():N}@smtpbench.localhost>\r\n\r\n");

    /// <summary><paramref name="size"/> bytes of payload in 78-byte lines, without the final CRLF (the terminator adds it).</summary>
    private static byte[] BuildPayload(int size)
    {
        var line = new string('x', 76) + "\r\n";
        var payload = new StringBuilder(size + line.Length);
        while (payload.Length < size) payload.Append(line);
        payload.Length = size;
        if (size > 0 && payload[size - 1] == '\r') payload[size - 1] = 'x';
        string text = payload.ToString();
        if (text.EndsWith("\r\n", StringComparison.Ordinal)) text = text[..^2];
        return Encoding.ASCII.GetBytes(text);
    }

    private sealed class SmtpRefusedException(string message) : Exception(message);
}

internal static class Sink
{
    private static long count;
    private static readonly Lock Gate = new();

    public static async Task<int> RunAsync(Options o)
    {
        var endpoint = o.LoopbackEndpoint("listen");
        int seconds = o.Number("seconds", 3600, 1, 86_400);
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        using var listener = new TcpListener(endpoint);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start(1000);
        Console.Error.WriteLine($"SmtpBench sink listening on {endpoint}");
        try
        {
            while (true)
            {
                var tcp = await listener.AcceptTcpClientAsync(deadline.Token);
                _ = Task.Run(() => ServeAsync(tcp, deadline.Token));
            }
        }
        catch (OperationCanceledException)
        {
            return 0;
        }
    }

    private static async Task ServeAsync(TcpClient tcp, CancellationToken ct)
    {
        using var _ = tcp;
        tcp.NoDelay = true;
        try
        {
            var stream = tcp.GetStream();
            var reader = new LineReader(stream);
            async Task Reply(string text) => await stream.WriteAsync(Encoding.ASCII.GetBytes(text + "\r\n"), ct);
            await Reply("220 smtpbench-sink ESMTP");
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                string verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO": await Reply("250-smtpbench-sink\r\n250 8BITMIME"); break;
                    case "HELO" or "MAIL" or "RCPT" or "RSET" or "NOOP": await Reply("250 2.0.0 Ok"); break;
                    case "QUIT": await Reply("221 2.0.0 Bye"); return;
                    case "DATA":
                        await Reply("354 End data with <CR><LF>.<CR><LF>");
                        while (await reader.ReadLineAsync(ct) is { } data && data != ".") { }
                        long n = Interlocked.Increment(ref count);
                        await Reply("250 2.0.0 Ok: queued");
                        lock (Gate) Console.Out.Write($"mesg={n}\n");
                        break;
                    default: await Reply("502 5.5.2 Error: command not recognized"); break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException) { }
    }
}
