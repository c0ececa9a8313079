using System.Net;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>
/// The gateway option: a query from a non-peer for an unknown address of a shared domain is checked against the
/// peers; a query from a peer never is.
/// </summary>
public sealed class MingerServerGatewayTests : IDisposable
{
    private const string OnPeer = "dave@example.com";
    private const string NotShared = "erin@private.example";
    private static readonly IPAddress PeerAddress = IPAddress.Parse("127.0.0.2");
    private readonly TestAccounts accounts = new();

    public void Dispose() => accounts.Dispose();

    private static MingerServerSettings GatewaySettings(bool gateway = true) => new()
    {
        Gateway = gateway,
        PeerAddresses = [PeerAddress],
        SharedDomains = ["EXAMPLE.com", "bücher.example"],
        RateLimitPerSecond = 0,
    };

    [Fact]
    public async Task A_non_peer_asking_for_an_unknown_shared_address_gets_the_peers_answer()
    {
        var gateway = new RecordingGateway(exists: true);
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var gatewayClient = new UdpTestPeer("127.0.0.3");
        Assert.Equal((OnPeer, MingerStatus.Exists), await gatewayClient.AskAsync(OnPeer, server.LocalEndPoint!));
        Assert.Equal([OnPeer], gateway.Calls);
        // Local answers do not ask the peers.
        Assert.Equal((TestAccounts.Active, MingerStatus.Exists), await gatewayClient.AskAsync(TestAccounts.Active, server.LocalEndPoint!));
        Assert.Equal((TestAccounts.Disabled, MingerStatus.CannotReceive), await gatewayClient.AskAsync(TestAccounts.Disabled, server.LocalEndPoint!));
        Assert.Single(gateway.Calls);
        await ServerKit.EventuallyAsync(() => server.GetStatistics().AnsweredExists == 2, "answers counted");
        Assert.Equal(1, server.GetStatistics().GatewayLookups);
    }

    [Fact]
    public async Task Shared_domains_match_in_any_case_and_in_punycode()
    {
        var gateway = new RecordingGateway(exists: true);
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var client = new UdpTestPeer("127.0.0.3");
        Assert.Equal(("Dave@Example.COM", MingerStatus.Exists), await client.AskAsync("Dave@Example.COM", server.LocalEndPoint!));
        Assert.Equal(("x@xn--bcher-kva.example", MingerStatus.Exists), await client.AskAsync("x@xn--bcher-kva.example", server.LocalEndPoint!));
        Assert.Equal(("x@BÜCHER.example", MingerStatus.Exists), await client.AskAsync("x@BÜCHER.example", server.LocalEndPoint!));
        Assert.Equal(["Dave@Example.COM", "x@xn--bcher-kva.example", "x@BÜCHER.example"], gateway.Calls);
    }

    [Fact]
    public async Task A_query_from_a_peer_is_never_forwarded()
    {
        var gateway = new RecordingGateway(exists: true);
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var peer = new UdpTestPeer(PeerAddress);
        Assert.Equal((OnPeer, MingerStatus.Unknown), await peer.AskAsync(OnPeer, server.LocalEndPoint!));
        Assert.Empty(gateway.Calls);
        Assert.Equal(0, server.GetStatistics().GatewayLookups);
    }

    [Fact]
    public async Task No_lookup_for_other_domains_or_with_the_gateway_off()
    {
        var gateway = new RecordingGateway(exists: true);
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var client = new UdpTestPeer("127.0.0.3");
        Assert.Equal((NotShared, MingerStatus.Unknown), await client.AskAsync(NotShared, server.LocalEndPoint!));
        server.Configure(GatewaySettings(gateway: false));
        Assert.Equal((OnPeer, MingerStatus.Unknown), await client.AskAsync(OnPeer, server.LocalEndPoint!));
        Assert.Empty(gateway.Calls);
    }

    [Fact]
    public async Task The_peers_saying_no_is_answered_3_and_a_failed_lookup_is_not_answered()
    {
        var gateway = new RecordingGateway((mailbox, _) => mailbox.StartsWith("fail", StringComparison.Ordinal)
            ? Task.FromException<bool>(new TimeoutException("no peer answered"))
            : Task.FromResult(false));
        var log = new CollectingLog();
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway, log: log);
        using var client = new UdpTestPeer("127.0.0.3");
        Assert.Equal(("nobody@example.com", MingerStatus.Unknown), await client.AskAsync("nobody@example.com", server.LocalEndPoint!));
        // A "3" would make the asking server bounce mail; no answer makes it try again later.
        await client.AssertNoReplyAsync(MingerCodec.EncodeQuery("fail@example.com", null), server.LocalEndPoint!);
        var stats = server.GetStatistics();
        Assert.Equal(2, stats.GatewayLookups);
        Assert.Equal(1, stats.GatewayFailures);
        Assert.Contains(log.Lines, l => l.Message.Contains("fail@example.com") && l.Message.Contains("no peer answered"));
    }

    [Fact]
    public async Task A_lookup_that_outlives_its_time_limit_is_left_unanswered()
    {
        var gateway = new RecordingGateway(async (_, ct) => { await Task.Delay(Timeout.Infinite, ct); return true; });
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings() with { GatewayTimeout = TimeSpan.FromMilliseconds(50) }, gateway);
        using var client = new UdpTestPeer("127.0.0.3");
        await client.AssertNoReplyAsync(MingerCodec.EncodeQuery(OnPeer, null), server.LocalEndPoint!);
        await ServerKit.EventuallyAsync(() => server.GetStatistics().GatewayFailures == 1, "the lookup timed out");
    }

    [Fact]
    public async Task A_slow_lookup_does_not_hold_up_other_queries()
    {
        var release = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        // This lookup even blocks its thread before its first await: the receive loops must not be the ones to run it.
        var gateway = new RecordingGateway((_, _) => { release.Task.Wait(TimeSpan.FromSeconds(10)); return release.Task; });
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var slow = new UdpTestPeer("127.0.0.3");
        using var other = new UdpTestPeer("127.0.0.4");
        var at = server.LocalEndPoint!;
        await slow.SendAsync(MingerCodec.EncodeQuery(OnPeer, null), at);
        await ServerKit.EventuallyAsync(() => !gateway.Calls.IsEmpty, "the lookup started");
        for (int i = 0; i < 20; i++)
            Assert.Equal((TestAccounts.Active, MingerStatus.Exists), await other.AskAsync(TestAccounts.Active, at));
        Assert.Null(await slow.ReceiveRawAsync(at, TimeSpan.FromMilliseconds(50)));
        release.SetResult(true);
        Assert.Equal((OnPeer, MingerStatus.Exists), await slow.ReceiveAsync(at, UdpTestPeer.ReplyTimeout));
    }

    [Fact]
    public async Task Lookups_beyond_the_concurrency_bound_are_dropped_not_queued()
    {
        var release = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var gateway = new RecordingGateway((_, _) => release.Task);
        await using var server = await ServerKit.StartAsync(accounts.Store, GatewaySettings(), gateway);
        using var client = new UdpTestPeer("127.0.0.3");
        var at = server.LocalEndPoint!;
        int total = MingerServer.MaxConcurrentGatewayLookups + 10;
        for (int i = 0; i < total; i++) await client.SendAsync(MingerCodec.EncodeQuery($"u{i}@example.com", null), at);
        await ServerKit.EventuallyAsync(() => server.GetStatistics().Received == total, "all queries received");
        var stats = server.GetStatistics();
        Assert.Equal(MingerServer.MaxConcurrentGatewayLookups, stats.GatewayLookups);
        Assert.Equal(10, stats.GatewayBusy);
        // The server still answers local addresses meanwhile, and the running lookups complete.
        Assert.Equal((TestAccounts.Active, MingerStatus.Exists), await client.AskAsync(TestAccounts.Active, at));
        release.SetResult(true);
        await ServerKit.EventuallyAsync(() => server.GetStatistics().AnsweredExists == MingerServer.MaxConcurrentGatewayLookups + 1, "the lookups answered");
    }

    /// <summary>
    /// Two real servers, each with the gateway on and the other as its peer, each asking the other over UDP. A gateway
    /// (a non-peer) asking A for an address B holds gets 5; for an address nobody holds it gets 3, and B never
    /// forwards A's question back: no loop.
    /// </summary>
    [Fact]
    public async Task Two_gateway_servers_listing_each_other_as_peers_do_not_loop()
    {
        var addressA = IPAddress.Parse("127.0.0.1");
        var addressB = IPAddress.Parse("127.0.0.2");
        const string secret = "shared between A and B, 16+";
        using var accountsB = new TestAccounts(OnPeer);
        accounts.Add("frank@example.com", enabled: true); // only on A
        MingerServer? serverA = null, serverB = null;
        var gatewayA = new UdpPeerGateway(addressA, () => serverB!.LocalEndPoint!, secret);
        var gatewayB = new UdpPeerGateway(addressB, () => serverA!.LocalEndPoint!, secret);
        var settings = new MingerServerSettings { Secret = secret, AllowAnonymous = true, Gateway = true, SharedDomains = ["example.com"], RateLimitPerSecond = 0 };
        await using (serverA = await ServerKit.StartAsync(accounts.Store, settings with { PeerAddresses = [addressB] }, gatewayA, new IPEndPoint(addressA, 0)))
        await using (serverB = await ServerKit.StartAsync(accountsB.Store, settings with { PeerAddresses = [addressA] }, gatewayB, new IPEndPoint(addressB, 0)))
        {
            using var outsider = new UdpTestPeer("127.0.0.9");
            Assert.Equal((OnPeer, MingerStatus.Exists), await outsider.AskAsync(OnPeer, serverA.LocalEndPoint!));
            Assert.Equal(("ghost@example.com", MingerStatus.Unknown), await outsider.AskAsync("ghost@example.com", serverA.LocalEndPoint!));
            Assert.Equal(("ghost@example.com", MingerStatus.Unknown), await outsider.AskAsync("ghost@example.com", serverB.LocalEndPoint!));
            Assert.Equal(("frank@example.com", MingerStatus.Exists), await outsider.AskAsync("frank@example.com", serverB.LocalEndPoint!, secret));

            Assert.Equal(2, gatewayA.Calls); // dave and ghost, once each
            Assert.Equal(2, gatewayB.Calls); // ghost and frank, once each
            // Each server received only the outsider's queries and its peer's lookups, nothing more.
            await ServerKit.EventuallyAsync(() => serverA.GetStatistics().Answered == 4 && serverB.GetStatistics().Answered == 4, "all answers counted");
            Assert.Equal(4, serverA.GetStatistics().Received);
            Assert.Equal(4, serverB.GetStatistics().Received);
            Assert.Equal(2, serverA.GetStatistics().GatewayLookups);
            Assert.Equal(2, serverB.GetStatistics().GatewayLookups);
        }
    }
}
