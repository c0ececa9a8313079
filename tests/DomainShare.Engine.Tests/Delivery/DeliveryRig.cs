using System.Collections.Immutable;
using System.Net;
using System.Text;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Delivery;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Routing;
using DomainShare.Engine.Smtp;
using DomainShare.Engine.Tests.Routing;

namespace DomainShare.Engine.Tests.DeliveryTests;

/// <summary>
/// One server's delivery side, real and in its own temporary folder: account store, verification cache, Minger
/// client and resolver, the queue and the delivery agent, with a fast retry schedule. Peers are real: a Minger
/// responder and an SMTP sink on their own loopback address (127.0.0.N), named by that IP literal.
/// </summary>
internal sealed class DeliveryRig : IAsyncDisposable
{
    public const string Domain = "example.com";
    private static int nextAddress = 10;
    private readonly List<IAsyncDisposable> owned = [];

    public DeliveryRig()
    {
        Config = new ServerConfiguration
        {
            ServerName = "mx1.example.com",
            Domains = ImmutableList.Create(new DomainConfiguration(Domain, true)),
            Minger = new MingerSettings { Timeout = TimeSpan.FromSeconds(1), Retries = 0 },
        };
        Accounts = AccountStore.Open(Folder.Path);
        Cache = VerificationCache.Open(Folder.Path, () => Config.DomainSharing, Log);
        Resolver = new AddressResolver(() => Config, Accounts, Cache, new MingerClient(Log), Log);
        Options = new DeliveryAgentOptions
        {
            Configuration = () => Config,
            Retry = new RetrySchedule(TimeSpan.FromMilliseconds(100), 2, TimeSpan.FromMilliseconds(300)),
            ConnectTimeout = TimeSpan.FromSeconds(1),
            CommandTimeout = TimeSpan.FromSeconds(2),
            UnreachableHold = TimeSpan.Zero,
            ConnectionIdleTimeout = TimeSpan.FromSeconds(10),
            RescanInterval = TimeSpan.FromSeconds(5),
            PeerAttemptsBeforeRelayHost = 2,
        };
        Queue = MessageQueue.Open(Folder.Path, log: Log);
    }

    public TempFolder Folder { get; } = new();
    public ListLog Log { get; } = new();
    public ServerConfiguration Config { get; set; }
    public AccountStore Accounts { get; }
    public VerificationCache Cache { get; }
    public AddressResolver Resolver { get; }
    public DeliveryAgentOptions Options { get; set; }
    public IMessageStore? Store { get; set; }
    public MessageQueue Queue { get; private set; }
    public DeliveryAgent? Agent { get; private set; }

    /// <summary>A loopback address of its own for a peer, so that peers differ by name and a message's source can be one of them.</summary>
    public static string NewLoopbackAddress() => $"127.0.0.{Interlocked.Increment(ref nextAddress) % 200 + 20}";

    public async Task<DeliveryAgent> StartAgentAsync()
    {
        Agent = new DeliveryAgent(Queue, Accounts, Resolver, Folder.Path, Options, Log, Store);
        await Agent.StartAsync(CancellationToken.None);
        return Agent;
    }

    public async Task StopAgentAsync()
    {
        if (Agent is not null) await Agent.DisposeAsync();
        Agent = null;
    }

    /// <summary>Stops the agent, closes the queue and opens both again, as a restarted relay would.</summary>
    public async Task RestartAsync(bool startAgent = true)
    {
        await StopAgentAsync();
        Queue.Dispose();
        Queue = MessageQueue.Open(Folder.Path, log: Log);
        if (startAgent) await StartAgentAsync();
    }

    /// <summary>A local account with its Maildir under mail/.</summary>
    public string AddAccount(string address, long? quota = null, bool enabled = true)
    {
        var maildir = Maildir.RelativePathFor(MailAddress.Parse(address));
        Assert.True(Accounts.TryAdd(new Account(address, null, enabled, quota, DateTimeOffset.UtcNow, maildir)));
        return Path.Combine(Folder.Path, maildir);
    }

    public SmtpSink StartSink(string address, int port = 0)
    {
        var sink = new SmtpSink(address, port);
        owned.Add(sink);
        return sink;
    }

    /// <summary>A peer on its own loopback address: a Minger responder (answering 3 unless told) and an SMTP port, with a sink on it unless <paramref name="down"/>.</summary>
    public Peer AddPeer(bool down = false)
    {
        string address = NewLoopbackAddress();
        var minger = new FakeMingerPeer(address);
        owned.Add(minger);
        int port = down ? SmtpSink.FreePort(address) : 0;
        var sink = down ? null : StartSink(address);
        var peer = new Peer(address, minger, sink?.Port ?? port, sink);
        Config = Config with { Peers = Config.Peers.Add(new PeerConfiguration { Name = address, MingerPort = minger.Port, SmtpPort = peer.SmtpPort }) };
        return peer;
    }

    internal sealed record Peer(string Name, FakeMingerPeer Minger, int SmtpPort, SmtpSink? Sink);

    public static byte[] Content(string subject = "Hello", string body = "Body line one.\r\n.A line that starts with a dot.\r\nLast line.")
        => Encoding.UTF8.GetBytes(
            $"Received: from client.test ([127.0.0.1]) by mx1.example.com; Mon, 6 Jan 2025 10:00:00 +0000\r\n" +
            $"From: Ann <ann@example.com>\r\nTo: Bob <bob@example.com>\r\nSubject: {subject}\r\n" +
            $"Message-ID: <{Guid.NewGuid():N}@client.test>\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n\r\n{body}\r\n");

    /// <summary>Commits a message as the SMTP server would, from <paramref name="sourceIp"/>.</summary>
    public async Task<string> CommitAsync(string? reversePath, IEnumerable<RecipientRoute> recipients, byte[]? content = null, string sourceIp = "127.0.0.1", bool smtpUtf8 = false)
    {
        var session = new SmtpSessionInfo("test-session", new IPEndPoint(IPAddress.Parse(sourceIp), 40000), new IPEndPoint(IPAddress.Loopback, 25), "client.test", false);
        await using var draft = Queue.Begin(new SmtpEnvelope(reversePath, recipients.ToList(), session, DateTimeOffset.UtcNow) { SmtpUtf8 = smtpUtf8 });
        content ??= Content();
        // In two pieces, as a server streams it.
        await draft.WriteAsync(content.AsMemory(0, content.Length / 2), CancellationToken.None);
        await draft.WriteAsync(content.AsMemory(content.Length / 2), CancellationToken.None);
        return await draft.CommitAsync(CancellationToken.None);
    }

    public static RecipientRoute Local(string address) => new(address, RouteKind.Local);
    public static RecipientRoute ToPeer(string address, Peer peer) => new(address, RouteKind.Peer, peer.Name);

    /// <summary>Waits for <paramref name="condition"/>, polling; fails with <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what, double seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"Timed out waiting until {what}. Log:\n{string.Join("\n", Log.Lines)}");
            await Task.Delay(20);
        }
    }

    public Task WaitUntilGoneAsync(string id) => WaitUntilAsync(() => Queue.Get(id) is null, $"message {id} leaves the queue");

    /// <summary>The files in the Maildir's new/ folder.</summary>
    public static string[] NewMail(string maildir)
        => Directory.Exists(Path.Combine(maildir, "new")) ? Directory.GetFiles(Path.Combine(maildir, "new")) : [];

    public async ValueTask DisposeAsync()
    {
        await StopAgentAsync();
        Queue.Dispose();
        foreach (var item in owned) await item.DisposeAsync();
        Cache.Dispose();
        Accounts.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Folder.Dispose();
    }
}
