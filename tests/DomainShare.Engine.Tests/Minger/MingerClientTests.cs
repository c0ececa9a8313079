using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Tests.Routing;

namespace DomainShare.Engine.Tests.Minger;

/// <summary>The Minger client over real UDP on loopback: fan-out, reply matching, retries, modes and the probe.</summary>
public class MingerClientTests
{
    private const string User = "user@example.com";
    /// <summary>For queries that are answered: long enough that a loaded machine never turns a late answer into a retry.</summary>
    private static readonly MingerQueryOptions Fast = new() { Timeout = TimeSpan.FromSeconds(1), Retries = 1 };
    /// <summary>For queries that must time out (or be retried) once or more.</summary>
    private static readonly MingerQueryOptions Short = new() { Timeout = TimeSpan.FromMilliseconds(250), Retries = 1 };
    private static readonly MingerQueryOptions OneRetry = new() { Timeout = TimeSpan.FromMilliseconds(500), Retries = 1 };

    private static PeerConfiguration Peer(FakeMingerPeer fake, string? secret = null)
        => new() { Name = "127.0.0.1", MingerPort = fake.Port, Secret = secret };

    [Fact]
    public async Task Everyone_mode_waits_for_every_answer_in_order()
    {
        await using var a = new FakeMingerPeer().With(User, MingerStatus.Exists);
        await using var b = new FakeMingerPeer { Delay = TimeSpan.FromMilliseconds(100) }.With(User, MingerStatus.CannotReceive);
        await using var c = new FakeMingerPeer();
        var client = new MingerClient();

        var result = await client.AskAsync(User, [Peer(a), Peer(b), Peer(c)], MingerFanOutMode.WaitForAll, Fast);

        Assert.Equal([MingerStatus.Exists, MingerStatus.CannotReceive, MingerStatus.Unknown], result.Peers.Select(p => p.Status!.Value));
        Assert.All(result.Peers, p => Assert.Equal(MingerFailure.None, p.Failure));
        Assert.All(result.Peers, p => Assert.True(p.RoundTrip > TimeSpan.Zero));
        Assert.Equal(a.Port, result.Winner!.EndPoint!.Port);
        Assert.True(result.Peers[1].RoundTrip >= TimeSpan.FromMilliseconds(90));
    }

    [Fact]
    public async Task Progress_is_reported_once_per_peer_before_the_fan_out_returns()
    {
        await using var a = new FakeMingerPeer().With(User, MingerStatus.Exists);
        await using var silent = new FakeMingerPeer { Silent = true };
        var client = new MingerClient(null, (_, _) => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)));
        var reported = new System.Collections.Concurrent.ConcurrentQueue<MingerPeerResult>();

        var result = await client.AskAsync(User, [Peer(a), Peer(silent), new PeerConfiguration { Name = "nowhere.test" }],
            MingerFanOutMode.WaitForAll, Short, default, reported.Enqueue);

        Assert.Equal(result.Peers.OrderBy(p => p.Failure).Select(p => p.Failure), reported.OrderBy(p => p.Failure).Select(p => p.Failure));
        Assert.Equal([MingerFailure.None, MingerFailure.Timeout, MingerFailure.DnsFailure], result.Peers.Select(p => p.Failure));
    }

    [Fact]
    public async Task Stop_at_first_5_abandons_the_slower_peers()
    {
        await using var fast = new FakeMingerPeer().With(User, MingerStatus.Exists);
        await using var slow = new FakeMingerPeer { Delay = TimeSpan.FromSeconds(2) };
        var client = new MingerClient();

        var watch = Stopwatch.StartNew();
        var result = await client.AskAsync(User, [Peer(slow), Peer(fast)], MingerFanOutMode.StopAtFirstExists,
            new MingerQueryOptions { Timeout = TimeSpan.FromSeconds(3), Retries = 0 });

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"took {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.Equal(MingerFailure.Abandoned, result.Peers[0].Failure);
        Assert.False(result.Peers[0].Failed);
        Assert.Equal(MingerStatus.Exists, result.Peers[1].Status);
        Assert.Same(result.Peers[1], result.Winner);
    }

    [Fact]
    public async Task One_fan_out_asks_every_peer_from_one_socket_and_retries_only_the_silent_ones()
    {
        await using var a = new FakeMingerPeer();
        await using var b = new FakeMingerPeer { DropFirst = 1 };
        await using var c = new FakeMingerPeer();
        var client = new MingerClient();

        var result = await client.AskAsync(User, [Peer(a), Peer(b), Peer(c)], MingerFanOutMode.WaitForAll, OneRetry);

        Assert.All(result.Peers, p => Assert.Equal(MingerStatus.Unknown, p.Status));
        // Attempts stop counting once a peer has answered: a datagram sent after that would show as Received > Attempts.
        Assert.Equal(result.Peers.Select(p => p.Attempts), new[] { a.Received, b.Received, c.Received });
        Assert.True(b.Received >= 2, "the lost query was sent again");
        var sources = a.Sources.Concat(b.Sources).Concat(c.Sources).Distinct().ToArray();
        Assert.Single(sources);
    }

    [Fact]
    public async Task A_reply_that_does_not_echo_the_exact_mailbox_is_dropped()
    {
        await using var peer = new FakeMingerPeer { Echo = m => m.ToUpperInvariant() }.With(User, MingerStatus.Exists);
        var client = new MingerClient();

        var result = await client.AskAsync(User, [Peer(peer)], MingerFanOutMode.WaitForAll, Short);

        var r = Assert.Single(result.Peers);
        Assert.Equal(MingerFailure.Timeout, r.Failure);
        Assert.Null(r.Status);
        Assert.Equal(2, r.Attempts);
        Assert.Null(result.Winner);
    }

    [Fact]
    public async Task A_spoofed_reply_from_another_port_is_dropped()
    {
        await using var peer = new FakeMingerPeer();
        using var spoofer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        spoofer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        peer.BeforeReply = async (client, mailbox) =>
        {
            await spoofer.SendToAsync(MingerCodec.EncodeReply(mailbox, MingerStatus.Exists), SocketFlags.None, client);
            await Task.Delay(30);
        };
        var client = new MingerClient();

        var result = await client.AskAsync(User, [Peer(peer)], MingerFanOutMode.StopAtFirstExists, Fast);

        Assert.Equal(MingerStatus.Unknown, Assert.Single(result.Peers).Status);
        Assert.Null(result.Winner);
    }

    [Fact]
    public async Task Statuses_0_1_2_are_failures_that_keep_the_status()
    {
        await using var peer = new FakeMingerPeer(secret: "the-peers-real-secret");
        var client = new MingerClient();

        var result = await client.AskAsync(User, [Peer(peer, "not-the-right-secret")], MingerFanOutMode.WaitForAll, Fast);

        var r = Assert.Single(result.Peers);
        Assert.True(r.Failed);
        Assert.Equal(MingerFailure.Rejected, r.Failure);
        Assert.Equal(MingerStatus.BadCredentials, r.Status);
        Assert.Contains("credentials", r.Error);
        Assert.Equal(1, r.Attempts); // an answer, even a refusal, is not retried
    }

    [Fact]
    public async Task A_host_name_is_resolved_and_each_retry_moves_to_its_next_address()
    {
        await using var peer = new FakeMingerPeer().With(User, MingerStatus.Exists);
        int lookups = 0;
        var client = new MingerClient(null, (host, _) =>
        {
            Interlocked.Increment(ref lookups);
            Assert.Equal("mx2.example.test", host);
            // The first address has nothing on the port (or is not routable here); the second is the peer.
            return Task.FromResult(new[] { IPAddress.Parse("127.0.0.2"), IPAddress.Loopback });
        });

        var result = await client.AskAsync(User, [new PeerConfiguration { Name = "mx2.example.test", MingerPort = peer.Port }],
            MingerFanOutMode.StopAtFirstExists, new MingerQueryOptions { Timeout = TimeSpan.FromMilliseconds(500), Retries = 2 });

        var r = Assert.Single(result.Peers);
        Assert.Equal(MingerStatus.Exists, r.Status);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, peer.Port), r.EndPoint);
        Assert.Equal(1, lookups);
    }

    [Fact]
    public async Task IP_literals_never_touch_DNS_and_DNS_failures_are_reported_per_peer()
    {
        await using var peer = new FakeMingerPeer();
        var client = new MingerClient(null, (host, _) => host == "127.0.0.1" || host.StartsWith('[')
            ? throw new InvalidOperationException("a literal went to DNS")
            : Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound)));

        var result = await client.AskAsync(User, [Peer(peer), new PeerConfiguration { Name = "no-such-host.test" }], MingerFanOutMode.WaitForAll, Fast);

        Assert.Equal(MingerStatus.Unknown, result.Peers[0].Status);
        Assert.Equal(MingerFailure.DnsFailure, result.Peers[1].Failure);
        Assert.Contains("no-such-host.test", result.Peers[1].Error);
        Assert.Equal(0, result.Peers[1].Attempts);
    }

    [Fact]
    public async Task A_hanging_DNS_lookup_is_bounded_by_the_peer_budget()
    {
        var client = new MingerClient(null, async (_, ct) => { await Task.Delay(Timeout.Infinite, CancellationToken.None); return []; });

        var watch = Stopwatch.StartNew();
        var result = await client.AskAsync(User, [new PeerConfiguration { Name = "slow-dns.test" }], MingerFanOutMode.WaitForAll,
            new MingerQueryOptions { Timeout = TimeSpan.FromMilliseconds(100), Retries = 1 });

        Assert.Equal(MingerFailure.DnsFailure, Assert.Single(result.Peers).Failure);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5));
    }

    [Fact]
    public async Task Cancellation_throws_promptly()
    {
        await using var peer = new FakeMingerPeer { Silent = true };
        var client = new MingerClient();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            client.AskAsync(User, [Peer(peer)], MingerFanOutMode.WaitForAll, new MingerQueryOptions { Timeout = TimeSpan.FromSeconds(5) }, cts.Token));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5));
    }

    [Fact]
    public async Task The_probe_reports_reachability_secret_and_round_trip_against_a_real_server()
    {
        const string secret = "a-shared-secret-of-24-ch";
        using var folder = new TempFolder();
        using var accounts = AccountStore.Open(folder.Path);
        await using var server = new MingerServer(accounts, null, NullEngineLog.Instance, new MingerServerSettings { Secret = secret, RateLimitPerSecond = 0 });
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        int port = server.LocalEndPoint!.Port;
        var client = new MingerClient();

        var good = await client.ProbeAsync(new PeerConfiguration { Name = "127.0.0.1", MingerPort = port, Secret = secret }, Fast);
        var bad = await client.ProbeAsync(new PeerConfiguration { Name = "127.0.0.1", MingerPort = port, Secret = "some-other-secret-here" }, Fast);

        Assert.True(good.Reachable);
        Assert.True(good.SecretAccepted);
        Assert.Equal(MingerStatus.Exists, good.Status);
        Assert.NotNull(good.RoundTrip);
        Assert.Null(good.Error);
        Assert.True(bad.Reachable);
        Assert.False(bad.SecretAccepted);
        Assert.Equal(MingerStatus.BadCredentials, bad.Status);
        Assert.Contains("credentials", bad.Error);
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    }

    [Fact]
    public async Task The_probe_of_a_silent_peer_is_unreachable()
    {
        await using var peer = new FakeMingerPeer { Silent = true };
        var client = new MingerClient();

        var probe = await client.ProbeAsync(Peer(peer), Short);

        Assert.False(probe.Reachable);
        Assert.False(probe.SecretAccepted);
        Assert.Equal(MingerFailure.Timeout, probe.Failure);
        Assert.Contains("did not answer", probe.Error);
        Assert.Equal(2, peer.Received);
    }

    [Fact]
    public async Task No_peers_is_an_empty_result_and_bad_input_is_refused()
    {
        var client = new MingerClient();

        var empty = await client.AskAsync(User, [], MingerFanOutMode.WaitForAll);

        Assert.Empty(empty.Peers);
        await Assert.ThrowsAsync<ArgumentException>(() => client.AskAsync("two words@example.com", [], MingerFanOutMode.WaitForAll));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.AskAsync(User, [], MingerFanOutMode.WaitForAll, new MingerQueryOptions { Retries = -1 }));
    }

    [Theory]
    [InlineData("192.0.2.1", true)]
    [InlineData("[2001:db8::1]", true)]
    [InlineData("2001:db8::1", true)]
    [InlineData("mx1.example.com", false)]
    [InlineData("[mx1.example.com]", false)]
    [InlineData("1", false)]
    public void Literals_are_recognised(string name, bool literal)
        => Assert.Equal(literal, MingerClient.TryParseLiteral(name, out _));
}
