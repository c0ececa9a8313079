using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Tests.Routing;

/// <summary>
/// A small real Minger responder on a loopback UDP port, built on <see cref="MingerCodec"/>, whose behaviour the test
/// controls: answers per mailbox (3 by default), a delay, dropped first queries, silence, a secret, and a hook that runs
/// before each reply (to send spoofed datagrams).
/// </summary>
internal sealed class FakeMingerPeer : IAsyncDisposable
{
    private readonly Socket socket;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private int received;
    private int toDrop;

    public FakeMingerPeer(string address = "127.0.0.1", string? secret = null)
    {
        var ip = IPAddress.Parse(address);
        socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(ip, 0));
        Secret = secret;
        loop = Task.Run(LoopAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)socket.LocalEndPoint!;
    public int Port => EndPoint.Port;
    public string? Secret { get; }

    /// <summary>Status per mailbox (case-insensitive); anything else answers 3.</summary>
    public ConcurrentDictionary<string, MingerStatus> Mailboxes { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Wait this long before replying (the receive loop keeps going meanwhile).</summary>
    public TimeSpan Delay { get; set; }

    /// <summary>Never reply.</summary>
    public bool Silent { get; set; }

    /// <summary>Ignore this many queries first (a lost datagram).</summary>
    public int DropFirst { get => Volatile.Read(ref toDrop); set => Volatile.Write(ref toDrop, value); }

    /// <summary>Changes the mailbox echoed in the reply (a broken or hostile peer).</summary>
    public Func<string, string>? Echo { get; set; }

    /// <summary>Runs before each reply with the asking endpoint and the mailbox.</summary>
    public Func<IPEndPoint, string, Task>? BeforeReply { get; set; }

    /// <summary>Queries received, dropped ones included.</summary>
    public int Received => Volatile.Read(ref received);

    /// <summary>The source endpoints of every query.</summary>
    public ConcurrentQueue<IPEndPoint> Sources { get; } = new();

    public FakeMingerPeer With(string mailbox, MingerStatus status)
    {
        Mailboxes[mailbox] = status;
        return this;
    }

    private async Task LoopAsync()
    {
        var buffer = new byte[2048];
        EndPoint any = new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            Interlocked.Increment(ref received);
            var from = (IPEndPoint)r.RemoteEndPoint;
            Sources.Enqueue(from);
            if (Silent) continue;
            if (Interlocked.Decrement(ref toDrop) >= 0) continue;
            Interlocked.Exchange(ref toDrop, 0);
            byte[] reply;
            string mailbox;
            if (!MingerCodec.TryParseQuery(buffer.AsSpan(0, r.ReceivedBytes), out var query))
            {
                mailbox = MingerCodec.EchoToken(buffer.AsSpan(0, r.ReceivedBytes));
                reply = MingerCodec.EncodeReply(mailbox, MingerStatus.Invalid);
            }
            else
            {
                mailbox = query!.Mailbox;
                MingerStatus status;
                if (Secret is not null && !MingerCodec.VerifyDigest(Secret, mailbox, query.Digest)) status = MingerStatus.BadCredentials;
                else if (query.IsProbe) status = MingerStatus.Exists;
                else status = Mailboxes.TryGetValue(mailbox, out var s) ? s : MingerStatus.Unknown;
                reply = MingerCodec.EncodeReply(Echo is null ? mailbox : Echo(mailbox), status);
            }
            _ = ReplyAsync(from, mailbox, reply);
        }
    }

    private async Task ReplyAsync(IPEndPoint to, string mailbox, byte[] reply)
    {
        try
        {
            if (BeforeReply is { } hook) await hook(to, mailbox);
            if (Delay > TimeSpan.Zero) await Task.Delay(Delay, stop.Token);
            await socket.SendToAsync(reply, SocketFlags.None, to, stop.Token);
        }
        catch (Exception)
        {
            // No reply: the hook failed (a barrier that timed out), the peer is closing, or the send failed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        socket.Dispose();
        try { await loop; } catch { }
        stop.Dispose();
    }
}

/// <summary>A clock the test moves by hand (safe to read from other threads while it moves).</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private long ticks = start.UtcTicks;
    public ManualClock() : this(new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero)) { }
    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref ticks), TimeSpan.Zero);
    public void Advance(TimeSpan by) => Interlocked.Add(ref ticks, by.Ticks);
}

/// <summary>A log that keeps every line.</summary>
internal sealed class ListLog : IEngineLog
{
    public ConcurrentQueue<string> Lines { get; } = new();
    public void Write(LogLevel level, string message) => Lines.Enqueue($"{level}: {message}");
}

/// <summary>
/// Everything a resolver needs, real and in its own temporary folder: an account store, a verification cache, a live
/// configuration the test can replace, a Minger client whose DNS maps <c>*.test</c> names to loopback, and the resolver.
/// </summary>
internal sealed class ResolverRig : IAsyncDisposable
{
    public const string Shared = "example.com";
    public const string Private = "private.example";
    /// <summary>
    /// Per-attempt timeout for tests in which every peer answers: long enough that a loaded machine never turns a late
    /// answer into a retry. Tests that wait for a timeout set a short one themselves (<see cref="ExpectTimeouts"/>).
    /// </summary>
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(1);

    private readonly List<FakeMingerPeer> peers = [];

    public ResolverRig(TimeProvider? clock = null)
    {
        Clock = clock;
        Config = new ServerConfiguration
        {
            ServerName = "mx1.example.com",
            Domains = ImmutableList.Create(new DomainConfiguration(Shared, true), new DomainConfiguration(Private, false)),
            Minger = new MingerSettings { Timeout = TestTimeout, Retries = 1 },
        };
        Accounts = AccountStore.Open(Folder.Path);
        Cache = VerificationCache.Open(Folder.Path, () => Config.DomainSharing, Log, clock);
        Client = new MingerClient(Log, ResolveTestName);
        Resolver = new AddressResolver(() => Config, Accounts, Cache, Client, Log);
    }

    public TempFolder Folder { get; } = new();
    public TimeProvider? Clock { get; }
    public ListLog Log { get; } = new();
    public AccountStore Accounts { get; }
    public VerificationCache Cache { get; private set; }
    public MingerClient Client { get; }
    public AddressResolver Resolver { get; private set; }

    /// <summary>The live configuration: replace it and the next resolution uses it.</summary>
    public ServerConfiguration Config { get; set; }

    /// <summary>Host names the fake DNS knows: name → addresses. Unknown names fail like NXDOMAIN.</summary>
    public ConcurrentDictionary<string, IPAddress[]> Dns { get; } = new(StringComparer.OrdinalIgnoreCase);

    private Task<IPAddress[]> ResolveTestName(string host, CancellationToken ct)
        => Dns.TryGetValue(host, out var found)
            ? Task.FromResult(found)
            : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound));

    /// <summary>Starts a fake peer, names it <c>peerN.test</c> in the fake DNS and adds it to the configuration.</summary>
    public FakeMingerPeer AddPeer(string? secretOnPeer = null, string? secretWeSend = null, string bind = "127.0.0.1", string? name = null)
    {
        var peer = new FakeMingerPeer(bind, secretOnPeer);
        peers.Add(peer);
        name ??= $"peer{peers.Count}.test";
        if (!name.StartsWith('['))
            Dns[name] = [IPAddress.Parse(bind)];
        Config = Config with { Peers = Config.Peers.Add(new PeerConfiguration { Name = name, MingerPort = peer.Port, Secret = secretWeSend ?? secretOnPeer }) };
        return peer;
    }

    /// <summary>Adds a peer whose port has nothing listening (datagrams vanish: every attempt times out).</summary>
    public string AddDeadPeer()
    {
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        string name = $"dead{Config.Peers.Count + 1}.test";
        Dns[name] = [IPAddress.Loopback];
        Config = Config with { Peers = Config.Peers.Add(new PeerConfiguration { Name = name, MingerPort = port }) };
        return name;
    }

    /// <summary>
    /// For tests with a peer that never answers: attempts of <paramref name="milliseconds"/>. The default (1 s, one retry)
    /// is for a live peer that must answer beside the dead one: 500 ms with no retry failed once on a loaded CI runner.
    /// </summary>
    public void ExpectTimeouts(int milliseconds = 1000, int retries = 1)
        => Config = Config with { Minger = Config.Minger with { Timeout = TimeSpan.FromMilliseconds(milliseconds), Retries = retries } };

    public void AddAccount(string address, bool enabled = true, bool reserved = false)
        => Assert.True(Accounts.TryAdd(new Account(address, null, enabled, null, DateTimeOffset.UtcNow, "maildir/" + address, reserved)));

    public void SetSharing(Func<DomainSharingSettings, DomainSharingSettings> change)
        => Config = Config with { DomainSharing = change(Config.DomainSharing) };

    /// <summary>Closes the cache and opens it again from its file, as a restarted relay would.</summary>
    public void RestartCache()
    {
        Cache.Dispose();
        Cache = VerificationCache.Open(Folder.Path, () => Config.DomainSharing, Log, Clock);
        Resolver = new AddressResolver(() => Config, Accounts, Cache, Client, Log);
    }

    public Task<AddressResolution> ResolveAsync(string address, ResolveOptions? options = null, CancellationToken ct = default)
        => Resolver.ResolveAsync(address, options, ct);

    public async ValueTask DisposeAsync()
    {
        foreach (var peer in peers) await peer.DisposeAsync();
        Cache.Dispose();
        Accounts.Dispose();
        SqliteCleanup();
        Folder.Dispose();
    }

    private static void SqliteCleanup() => Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
}
