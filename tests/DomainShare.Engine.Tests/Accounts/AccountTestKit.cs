using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Tests.Routing;

// Not "DomainShare.Engine.Tests.Accounts": a namespace of that name would shadow DomainShare.Engine.Accounts for the
// tests that write "Accounts.AccountState" from inside DomainShare.Engine.Tests.*.
namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>
/// One DomainShare server as account creation sees it, real and in its own temporary folder: an account store
/// (<c>accounts.db</c>), a Minger server answering from it on its own loopback address (127.0.0.N, port 0), a live
/// configuration the test can change, a Minger client and an <see cref="AccountCreator"/>.
/// Peers are named by their IP literal, so no name resolution is involved and errors name them as "127.0.0.N".
/// </summary>
internal sealed class AccountServer : IAsyncDisposable
{
    public const string SharedDomain = "example.com";
    public const string PrivateDomain = "private.example";
    /// <summary>Every server of a test uses this secret; each peer entry signs with it, so digests are checked on every query.</summary>
    public const string Secret = "account tests shared secret";
    /// <summary>For tests in which every peer answers: long enough that a busy machine never turns a late answer into a failure.</summary>
    public static readonly TimeSpan PatientTimeout = TimeSpan.FromSeconds(2);

    private AccountServer(IPAddress address, TimeProvider? clock)
    {
        Address = address;
        Store = AccountStore.Open(Folder.Path, clock);
        Config = new ServerConfiguration
        {
            ServerName = $"mx-{address.GetAddressBytes()[3]}.example.com",
            Domains = ImmutableList.Create(new DomainConfiguration(SharedDomain, true), new DomainConfiguration(PrivateDomain, false)),
            Minger = new MingerSettings { Secret = Secret, Timeout = PatientTimeout, Retries = 1 },
        };
        Client = new MingerClient(Log);
        Creator = new AccountCreator(() => Config, Store, Folder.Path, Client);
    }

    public TempFolder Folder { get; } = new();
    public IPAddress Address { get; }
    public AccountStore Store { get; }
    public ListLog Log { get; } = new();
    public MingerClient Client { get; }
    public AccountCreator Creator { get; }
    public MingerServer Minger { get; private set; } = null!;
    public IPEndPoint MingerEndPoint => Minger.LocalEndPoint!;

    /// <summary>The live configuration: replace it and the next creation uses it.</summary>
    public ServerConfiguration Config { get; set; }

    /// <summary>This server as another server's peer entry.</summary>
    public PeerConfiguration AsPeer => new() { Name = Address.ToString(), MingerPort = MingerEndPoint.Port, Secret = Secret };

    public string Name => Address.ToString();

    /// <summary>Starts a server on 127.0.0.<paramref name="lastByte"/> (Linux routes all of 127/8 to the loopback interface).</summary>
    public static async Task<AccountServer> StartAsync(int lastByte, TimeProvider? clock = null)
    {
        var server = new AccountServer(IPAddress.Parse($"127.0.0.{lastByte}"), clock);
        try
        {
            server.Minger = new MingerServer(server.Store, null, server.Log, new MingerServerSettings { Secret = Secret, RateLimitPerSecond = 0 });
            await server.Minger.StartAsync(new IPEndPoint(server.Address, 0));
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    public AccountServer WithPeers(params PeerConfiguration[] peers)
    {
        Config = Config with { Peers = Config.Peers.AddRange(peers) };
        return this;
    }

    /// <summary>One attempt of <paramref name="milliseconds"/>, no retry: for tests that wait for a peer to time out.</summary>
    public AccountServer WithShortTimeouts(int milliseconds = 200, int retries = 0)
    {
        Config = Config with { Minger = Config.Minger with { Timeout = TimeSpan.FromMilliseconds(milliseconds), Retries = retries } };
        return this;
    }

    public Task<AccountCreation> CreateAsync(string address, bool skipUnreachablePeers = false, CancellationToken ct = default)
        => Creator.CreateAsync(new AccountRequest(address), skipUnreachablePeers, null, ct);

    /// <summary>Plants an account directly in the store, as an import would (no peer is asked).</summary>
    public void Plant(string address, bool enabled = true)
        => Assert.True(Store.TryAdd(new Account(address, null, enabled, null, DateTimeOffset.UtcNow, "mail/planted/" + address)), $"could not plant {address}");

    public string FullPath(string relative) => Path.Combine(Folder.Path, relative);

    public async ValueTask DisposeAsync()
    {
        if (Minger is not null) await Minger.DisposeAsync();
        Store.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Folder.Dispose();
    }
}

/// <summary>
/// A Minger peer that receives queries and answers them (3, or what the test sets per mailbox) only once the test
/// opens its gate; until then every query is held. Closed for good, it never answers (a peer that is down).
/// It counts what it receives, so a test can tell whether it was asked at all.
/// </summary>
internal sealed class HeldPeer : IAsyncDisposable
{
    private readonly Socket socket;
    private readonly CancellationTokenSource stop = new();
    private readonly TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task loop;
    private int received;

    /// <param name="answers">False: a peer that is down (it reads and drops every datagram).</param>
    public HeldPeer(string address, bool answers = true)
    {
        Answers = answers;
        var ip = IPAddress.Parse(address);
        socket = new Socket(ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(ip, 0));
        loop = Task.Run(LoopAsync);
    }

    public bool Answers { get; }
    public IPEndPoint EndPoint => (IPEndPoint)socket.LocalEndPoint!;
    public string Name => EndPoint.Address.ToString();
    public PeerConfiguration AsPeer => new() { Name = Name, MingerPort = EndPoint.Port, Secret = AccountServer.Secret };
    public int Received => Volatile.Read(ref received);
    public ConcurrentQueue<string> Asked { get; } = new();
    public ConcurrentDictionary<string, MingerStatus> Mailboxes { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Completes when the first query has arrived.</summary>
    public TaskCompletionSource FirstQuery { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Answers every query held so far and every later one at once.</summary>
    public void Open() => gate.TrySetResult();

    private async Task LoopAsync()
    {
        var buffer = new byte[2048];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            Interlocked.Increment(ref received);
            if (!MingerCodec.TryParseQuery(buffer.AsSpan(0, r.ReceivedBytes), out var query)) continue;
            Asked.Enqueue(query!.Mailbox);
            FirstQuery.TrySetResult();
            if (!Answers) continue;
            var status = Mailboxes.TryGetValue(query.Mailbox, out var s) ? s : MingerStatus.Unknown;
            _ = ReplyLaterAsync((IPEndPoint)r.RemoteEndPoint, MingerCodec.EncodeReply(query.Mailbox, status));
        }
    }

    private async Task ReplyLaterAsync(IPEndPoint to, byte[] reply)
    {
        try
        {
            await gate.Task.WaitAsync(stop.Token);
            await socket.SendToAsync(reply, SocketFlags.None, to, stop.Token);
        }
        catch (Exception)
        {
            // Closing, or the send failed: no reply, as from a real peer.
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

/// <summary>Asks a Minger server about one mailbox from a fresh socket, as a peer would; fails the test when no reply comes.</summary>
internal static class MingerAsk
{
    public static async Task<MingerStatus> StatusAsync(IPEndPoint server, string mailbox, string? secret = AccountServer.Secret)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await socket.SendToAsync(MingerCodec.EncodeQuery(mailbox, secret), SocketFlags.None, server);
        var buffer = new byte[2048];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (true)
        {
            var r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
            if (!r.RemoteEndPoint.Equals(server)) continue;
            Assert.True(MingerCodec.TryParseReply(buffer.AsSpan(0, r.ReceivedBytes), out var echoed, out var status), "not a Minger reply");
            Assert.Equal(mailbox, echoed);
            return status;
        }
    }
}

internal static class Eventually
{
    /// <summary>Waits (bounded) until <paramref name="condition"/> holds.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(5);
        }
    }
}
