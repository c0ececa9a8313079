using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>A log that keeps every line, for assertions.</summary>
internal sealed class CollectingLog : IEngineLog
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();
    public void Write(LogLevel level, string message) => Lines.Enqueue((level, message));
}

/// <summary>A real account store in its own temporary folder, filled with one account of each state.</summary>
internal sealed class TestAccounts : IDisposable
{
    public const string Active = "alice@example.com";
    public const string Disabled = "bob@example.com";
    public const string Reserved = "carol@example.com";
    public const string UnicodeActive = "josé@exemple.com";
    public const string Unknown = "nobody@example.com";

    private readonly TempFolder folder = new();

    public TestAccounts(params string[] moreActive)
    {
        Store = AccountStore.Open(folder.Path);
        Add(Active, enabled: true);
        Add(Disabled, enabled: false);
        Add(Reserved, enabled: true, reserved: true);
        Add(UnicodeActive, enabled: true);
        foreach (var address in moreActive) Add(address, enabled: true);
    }

    public AccountStore Store { get; }

    public void Add(string address, bool enabled, bool reserved = false)
        => Assert.True(Store.TryAdd(new Account(address, null, enabled, null, DateTimeOffset.UtcNow, "maildir/" + address, reserved)));

    public void Dispose()
    {
        Store.Dispose();
        folder.Dispose();
    }
}

/// <summary>
/// A UDP socket on a chosen loopback address that sends Minger datagrams and reads the replies, accepting only
/// datagrams from the server it asked.
/// </summary>
internal sealed class UdpTestPeer : IDisposable
{
    public static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan SilenceTimeout = TimeSpan.FromMilliseconds(300);
    private readonly Socket socket;
    private readonly byte[] buffer = new byte[4096];

    public UdpTestPeer(IPAddress local)
    {
        socket = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(local, 0));
    }

    public UdpTestPeer(string local = "127.0.0.1") : this(IPAddress.Parse(local)) { }

    public IPEndPoint LocalEndPoint => (IPEndPoint)socket.LocalEndPoint!;

    public Task SendAsync(byte[] datagram, IPEndPoint server) => socket.SendToAsync(datagram, SocketFlags.None, server);

    /// <summary>The next reply from <paramref name="server"/> as raw bytes, or null when none came in time.</summary>
    public async Task<byte[]?> ReceiveRawAsync(IPEndPoint server, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var result = await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(server.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0), cts.Token);
                if (SameEndPoint((IPEndPoint)result.RemoteEndPoint, server))
                    return buffer.AsSpan(0, result.ReceivedBytes).ToArray();
            }
        }
        catch (OperationCanceledException) { return null; }
    }

    public async Task<(string Mailbox, MingerStatus Status)?> ReceiveAsync(IPEndPoint server, TimeSpan timeout)
    {
        var raw = await ReceiveRawAsync(server, timeout);
        if (raw is null) return null;
        Assert.True(MingerCodec.TryParseReply(raw, out var mailbox, out var status), $"not a Minger reply: {Convert.ToHexString(raw)}");
        return (mailbox, status);
    }

    /// <summary>Sends one datagram and returns the reply; fails the test when none comes.</summary>
    public async Task<(string Mailbox, MingerStatus Status)> AskAsync(byte[] datagram, IPEndPoint server)
    {
        await SendAsync(datagram, server);
        var reply = await ReceiveAsync(server, ReplyTimeout);
        Assert.True(reply.HasValue, $"no reply from {server} within {ReplyTimeout}");
        return reply.Value;
    }

    public Task<(string Mailbox, MingerStatus Status)> AskAsync(string mailbox, IPEndPoint server, string? secret = null)
        => AskAsync(MingerCodec.EncodeQuery(mailbox, secret), server);

    /// <summary>Sends one datagram and checks that no reply comes within <see cref="SilenceTimeout"/>.</summary>
    public async Task AssertNoReplyAsync(byte[] datagram, IPEndPoint server)
    {
        await SendAsync(datagram, server);
        var raw = await ReceiveRawAsync(server, SilenceTimeout);
        Assert.True(raw is null, raw is null ? "" : $"unexpected reply '{System.Text.Encoding.UTF8.GetString(raw)}'");
    }

    private static bool SameEndPoint(IPEndPoint a, IPEndPoint b)
    {
        var x = a.Address.IsIPv4MappedToIPv6 ? a.Address.MapToIPv4() : a.Address;
        var y = b.Address.IsIPv4MappedToIPv6 ? b.Address.MapToIPv4() : b.Address;
        return a.Port == b.Port && x.Equals(y);
    }

    public void Dispose() => socket.Dispose();
}

/// <summary>A gateway whose answer the test decides, recording every mailbox it was asked about.</summary>
internal sealed class RecordingGateway(Func<string, CancellationToken, Task<bool>> answer) : IGatewayLookup
{
    public RecordingGateway(bool exists) : this((_, _) => Task.FromResult(exists)) { }

    public ConcurrentQueue<string> Calls { get; } = new();

    public async ValueTask<bool> ExistsOnPeerAsync(string mailbox, CancellationToken ct)
    {
        Calls.Enqueue(mailbox);
        return await answer(mailbox, ct);
    }
}

/// <summary>
/// A small real gateway: asks one peer Minger server over UDP, from a socket bound to this server's own address (as a
/// relay would), with <see cref="MingerCodec"/>. True when the peer answers 5.
/// </summary>
internal sealed class UdpPeerGateway(IPAddress localAddress, Func<IPEndPoint> peer, string? secret) : IGatewayLookup
{
    private int calls;
    public int Calls => Volatile.Read(ref calls);

    public async ValueTask<bool> ExistsOnPeerAsync(string mailbox, CancellationToken ct)
    {
        Interlocked.Increment(ref calls);
        using var client = new UdpTestPeer(localAddress);
        var server = peer();
        await client.SendAsync(MingerCodec.EncodeQuery(mailbox, secret), server);
        var reply = await client.ReceiveAsync(server, TimeSpan.FromSeconds(2));
        if (reply is not { } r || r.Mailbox != mailbox || r.Status is MingerStatus.Invalid or MingerStatus.AccessDenied or MingerStatus.BadCredentials)
            throw new TimeoutException($"peer {server} gave no usable answer for {mailbox}");
        return r.Status == MingerStatus.Exists;
    }
}

internal static class ServerKit
{
    public static readonly IPEndPoint AnyPortV4 = new(IPAddress.Loopback, 0);

    public static async Task<MingerServer> StartAsync(IAccountDirectory accounts, MingerServerSettings? settings = null, IGatewayLookup? gateway = null,
        IPEndPoint? endpoint = null, IEngineLog? log = null)
    {
        var server = new MingerServer(accounts, gateway, log ?? new CollectingLog(), settings ?? new MingerServerSettings { RateLimitPerSecond = 0 });
        try
        {
            await server.StartAsync(endpoint ?? AnyPortV4);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    /// <summary>
    /// After a blast of datagrams (some of which the kernel may drop when the socket buffer is full): waits until the
    /// server's count of received datagrams stops moving, and returns it.
    /// </summary>
    public static async Task<long> SettledReceivedAsync(MingerServer server)
    {
        long last = -1;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (server.GetStatistics().Received is var seen && seen != last && DateTime.UtcNow < deadline)
        {
            last = seen;
            await Task.Delay(100);
        }
        return last;
    }

    /// <summary>Waits (bounded) until <paramref name="condition"/> holds; for counters updated just after a reply is sent.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(10);
        }
    }
}
