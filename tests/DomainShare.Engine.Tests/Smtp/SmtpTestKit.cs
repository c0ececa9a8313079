using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>
/// The recipient rules of the tests: <c>*@local.test</c> is a local account, <c>*@peer.test</c> lives on the peer "mx2",
/// <c>unknown@…</c> does not exist (550 5.1.1), <c>busy@…</c> cannot receive now (450 4.2.1), <c>lookup-fails@…</c> is a
/// failed peer lookup (451 4.4.3), <c>throws@…</c> makes the policy throw, and any other domain is not ours (550 5.7.1).
/// </summary>
internal sealed class TestPolicy : IRecipientPolicy
{
    public ConcurrentQueue<(SmtpSessionInfo Session, string? ReversePath, string Recipient)> Calls { get; } = new();

    public ValueTask<RecipientDecision> CheckRecipientAsync(SmtpSessionInfo session, string? reversePath, string recipient, CancellationToken ct)
    {
        Calls.Enqueue((session, reversePath, recipient));
        int at = recipient.LastIndexOf('@');
        var local = at < 0 ? recipient : recipient[..at];
        var domain = at < 0 ? "" : recipient[(at + 1)..];
        if (local.Equals("throws", StringComparison.OrdinalIgnoreCase)) throw new InvalidOperationException("the test policy throws");
        if (local.Equals("unknown", StringComparison.OrdinalIgnoreCase)) return new(new RecipientDecision(550, "5.1.1 User unknown", null));
        if (local.Equals("busy", StringComparison.OrdinalIgnoreCase)) return new(new RecipientDecision(450, "4.2.1 Mailbox unavailable, try again later", null));
        if (local.Equals("lookup-fails", StringComparison.OrdinalIgnoreCase)) return new(new RecipientDecision(451, "4.4.3 Temporary lookup failure, try again later", null));
        if (domain.Equals("local.test", StringComparison.OrdinalIgnoreCase)) return new(RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.Local)));
        if (domain.Equals("peer.test", StringComparison.OrdinalIgnoreCase))
            return new(RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.Peer, "mx2"), "2.1.5 Recipient OK (relayed to the server that holds the mailbox)"));
        return new(new RecipientDecision(550, "5.7.1 Relaying denied", null));
    }
}

/// <summary>A message the sink committed.</summary>
internal sealed record StoredMessage(string Id, SmtpEnvelope Envelope, byte[] Content)
{
    public string Text => Encoding.UTF8.GetString(Content);

    /// <summary>The content after the server's own Received: header (its first field, folded lines included).</summary>
    public byte[] ContentAfterOurReceived()
    {
        var text = Content;
        int i = 0;
        while (true)
        {
            int lf = Array.IndexOf(text, (byte)'\n', i);
            Assert.True(lf >= 0, "the stored message has a Received: header");
            i = lf + 1;
            if (i >= text.Length || (text[i] != (byte)' ' && text[i] != (byte)'\t')) return text[i..];
        }
    }

    /// <summary>The server's Received: header, unfolded.</summary>
    public string OurReceived()
    {
        int length = Content.Length - ContentAfterOurReceived().Length;
        return Encoding.UTF8.GetString(Content, 0, length).Replace("\r\n\t", " ").TrimEnd('\r', '\n');
    }
}

/// <summary>
/// A sink that writes each draft to a file of a temporary folder, like the spool but without fsync, and counts what
/// happens to drafts: begun, committed, disposed, deleted. Failures can be switched on for Begin, WriteAsync, CommitAsync.
/// </summary>
internal sealed class FileSink : IMessageSink, IDisposable
{
    private readonly TempFolder folder = new();
    private int counter;
    private int begun;
    private int disposed;
    private int deleted;

    public volatile bool FailAtBegin;
    public volatile bool FailAtWrite;
    public volatile bool FailAtCommit;
    public volatile bool ThrowUnexpectedAtWrite;
    /// <summary>The free space the sink reports for MAIL FROM's SIZE=; null: room for anything.</summary>
    public long? Room;

    public ConcurrentQueue<StoredMessage> Committed { get; } = new();
    public int Begun => Volatile.Read(ref begun);
    public int Disposed => Volatile.Read(ref disposed);
    /// <summary>Drafts disposed without a commit, whose file was deleted.</summary>
    public int Deleted => Volatile.Read(ref deleted);
    public int Open => Begun - Disposed;
    public string[] Files => Directory.GetFiles(folder.Path);

    public IMessageDraft Begin(SmtpEnvelope envelope)
    {
        if (FailAtBegin) throw new SmtpStorageException("disk full (test)");
        Interlocked.Increment(ref begun);
        int n = Interlocked.Increment(ref counter);
        return new Draft(this, envelope, folder.File($"draft-{n}.eml"), $"Q{n:D4}");
    }

    public bool HasRoomFor(long bytes) => Room is not long room || bytes <= room;

    public void Dispose() => folder.Dispose();

    private sealed class Draft(FileSink sink, SmtpEnvelope envelope, string path, string id) : IMessageDraft
    {
        private readonly FileStream file = new(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 4096, useAsync: true);
        private bool committed;
        private bool isDisposed;

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            if (sink.FailAtWrite) throw new SmtpStorageException("disk full (test)");
            if (sink.ThrowUnexpectedAtWrite) throw new InvalidOperationException("the test sink has a bug");
            await file.WriteAsync(data, ct);
        }

        public async ValueTask<string> CommitAsync(CancellationToken ct)
        {
            if (sink.FailAtCommit) throw new SmtpStorageException("fsync failed (test)");
            await file.FlushAsync(ct);
            file.Position = 0;
            var content = new byte[file.Length];
            await file.ReadExactlyAsync(content, ct);
            committed = true;
            sink.Committed.Enqueue(new StoredMessage(id, envelope, content));
            return id;
        }

        public async ValueTask DisposeAsync()
        {
            if (isDisposed) return;
            isDisposed = true;
            await file.DisposeAsync();
            if (!committed)
            {
                File.Delete(path);
                Interlocked.Increment(ref sink.deleted);
            }
            Interlocked.Increment(ref sink.disposed);
        }
    }
}

/// <summary>Collects the engine's log lines.</summary>
internal sealed class ListLog : IEngineLog
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public void Write(LogLevel level, string message) => Entries.Enqueue((level, message));

    public string[] At(LogLevel level) => Entries.Where(e => e.Level == level).Select(e => e.Message).ToArray();
}

/// <summary>A server on 127.0.0.1 with a fresh port, the test policy and a file sink.</summary>
internal sealed class SmtpFixture : IAsyncDisposable
{
    public const string ServerName = "mx.local.test";

    private SmtpFixture(SmtpServer server, TestPolicy policy, FileSink sink, ListLog log)
    {
        Server = server;
        Policy = policy;
        Sink = sink;
        Log = log;
    }

    public SmtpServer Server { get; }
    public TestPolicy Policy { get; }
    public FileSink Sink { get; }
    public ListLog Log { get; }
    public IPEndPoint EndPoint => Server.LocalEndPoint!;
    public int Port => EndPoint.Port;

    /// <summary>The test defaults: the product defaults, a short grace period so that disposing is quick.</summary>
    public static SmtpServerOptions DefaultOptions() => new()
    {
        ServerName = ServerName,
        ShutdownGracePeriod = TimeSpan.FromSeconds(2),
    };

    public static async Task<SmtpFixture> StartAsync(Func<SmtpServerOptions, SmtpServerOptions>? configure = null)
    {
        var options = DefaultOptions();
        if (configure is not null) options = configure(options);
        var log = new ListLog();
        var policy = new TestPolicy();
        var sink = new FileSink();
        var server = new SmtpServer(options, policy, sink, log);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        return new SmtpFixture(server, policy, sink, log);
    }

    public Task<RawSmtp> ConnectAsync() => RawSmtp.ConnectAsync(EndPoint);

    /// <summary>A MailKit client connected (plain) and greeted with EHLO client.test.</summary>
    public async Task<MailKit.Net.Smtp.SmtpClient> MailKitAsync(MailKit.Security.SecureSocketOptions security = MailKit.Security.SecureSocketOptions.None)
    {
        var client = new MailKit.Net.Smtp.SmtpClient { LocalDomain = "client.test", Timeout = 10_000 };
        client.ServerCertificateValidationCallback = (_, _, _, _) => true;
        await client.ConnectAsync("127.0.0.1", Port, security);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        Sink.Dispose();
    }

    /// <summary>Waits (up to 5 s) for a condition that the server reaches asynchronously, such as a session ending.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(5);
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail($"Timed out waiting until {what}.");
            await Task.Delay(10);
        }
    }
}

/// <summary>One SMTP reply: the code, and the text of every line (after the code and separator).</summary>
internal sealed record Reply(int Code, string[] Lines)
{
    public string Text => Lines[^1];
    public override string ToString() => $"{Code} {string.Join(" | ", Lines)}";
}

/// <summary>A bare TCP client that speaks SMTP byte by byte, for what a well-behaved client never sends.</summary>
internal sealed class RawSmtp : IAsyncDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);
    private readonly TcpClient tcp;
    private Stream stream;
    private readonly byte[] buffer = new byte[64 * 1024];
    private int start, end;

    private RawSmtp(TcpClient tcp)
    {
        this.tcp = tcp;
        stream = tcp.GetStream();
    }

    public Socket Socket => tcp.Client;

    public static async Task<RawSmtp> ConnectAsync(IPEndPoint endpoint)
    {
        var tcp = new TcpClient(endpoint.AddressFamily) { NoDelay = true };
        await tcp.ConnectAsync(endpoint.Address, endpoint.Port);
        return new RawSmtp(tcp);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await stream.WriteAsync(bytes);
        await stream.FlushAsync();
    }

    /// <summary>Reads one (possibly multi-line) reply.</summary>
    public async Task<Reply> ReadReplyAsync()
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync() ?? throw new IOException($"The server closed the connection; reply so far: {string.Join(" | ", lines)}");
            Assert.True(line.Length >= 3 && int.TryParse(line[..3], out _), $"not a reply line: '{line}'");
            lines.Add(line.Length > 4 ? line[4..] : "");
            if (line.Length == 3 || line[3] == ' ') return new Reply(int.Parse(line[..3]), lines.ToArray());
            Assert.True(line[3] == '-', $"not a reply line: '{line}'");
        }
    }

    /// <summary>Reads a reply and checks its code and, when given, that its last line starts with <paramref name="textStart"/>.</summary>
    public async Task<Reply> ExpectAsync(int code, string? textStart = null)
    {
        var reply = await ReadReplyAsync();
        Assert.True(reply.Code == code, $"expected {code} but got {reply}");
        if (textStart is not null) Assert.StartsWith(textStart, reply.Text);
        return reply;
    }

    /// <summary>Sends a command line (CRLF added) and checks the reply.</summary>
    public async Task<Reply> CommandAsync(string command, int code, string? textStart = null)
    {
        await SendAsync(command + "\r\n");
        return await ExpectAsync(code, textStart);
    }

    /// <summary>True when the server has closed the connection (end of stream or reset) with nothing more to read.</summary>
    public async Task<bool> IsClosedAsync()
    {
        try
        {
            return await ReadLineAsync() is null;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<string?> ReadLineAsync()
    {
        using var timeout = new CancellationTokenSource(ReadTimeout);
        while (true)
        {
            int lf = Array.IndexOf(buffer, (byte)'\n', start, end - start);
            if (lf >= 0)
            {
                var line = Encoding.UTF8.GetString(buffer, start, lf - start).TrimEnd('\r');
                start = lf + 1;
                return line;
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            int n;
            try
            {
                n = await stream.ReadAsync(buffer.AsMemory(end), timeout.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("No reply from the server within 5 s.");
            }
            if (n == 0) return null;
            end += n;
        }
    }

    /// <summary>Switches to TLS after a 220 to STARTTLS, trusting any certificate.</summary>
    public async Task StartTlsAsync()
    {
        Assert.True(start == end, "nothing may be buffered when TLS starts");
        var ssl = new SslStream(stream, leaveInnerStreamOpen: true, (_, _, _, _) => true);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = SmtpFixture.ServerName });
        stream = ssl;
    }

    /// <summary>Closes with a RST instead of a FIN, like a crashed client.</summary>
    public void Abort()
    {
        tcp.Client.LingerState = new LingerOption(true, 0);
        tcp.Client.Close();
    }

    public ValueTask DisposeAsync()
    {
        if (stream is SslStream ssl) ssl.Dispose();
        tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}

internal static class TestCertificates
{
    private static readonly Lazy<X509Certificate2> SelfSigned = new(Create);

    /// <summary>A self-signed ECDSA certificate for the test server name and 127.0.0.1, with its private key.</summary>
    public static X509Certificate2 Server => SelfSigned.Value;

    private static X509Certificate2 Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={SmtpFixture.ServerName}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(SmtpFixture.ServerName);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        // Through PKCS#12, so that the key is usable by TLS on every platform (an ephemeral key is not on Windows).
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
    }
}
