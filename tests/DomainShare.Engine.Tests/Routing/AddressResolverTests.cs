using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Tests.Routing;

/// <summary>The decision of docs/domain-sharing.md "Receiving a message", against real Minger responders on loopback.</summary>
public class AddressResolverTests
{
    private const string User = "user@example.com";

    [Fact]
    public async Task Found_on_the_second_of_two_peers_routes_there_and_caches_it()
    {
        await using var rig = new ResolverRig();
        var first = rig.AddPeer();
        var second = rig.AddPeer().With(User, MingerStatus.Exists);

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.Peer, r.Result);
        Assert.Equal("peer2.test", r.Peer);
        Assert.False(r.FromCache);
        Assert.Empty(r.FailedPeers);
        Assert.Equal(1, second.Received);
        var cached = rig.Cache.Lookup(User);
        Assert.NotNull(cached);
        Assert.Equal("peer2.test", cached.Peer);
        Assert.Equal(CacheEntryKind.Positive, cached.Kind);
    }

    [Fact]
    public async Task Unknown_on_every_peer_is_not_found()
    {
        await using var rig = new ResolverRig();
        rig.AddPeer();
        rig.AddPeer();

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.NotFound, r.Result);
        Assert.Null(r.Peer);
        Assert.Empty(r.FailedPeers);
        Assert.Equal(2, r.PeerAnswers.Count);
        Assert.All(r.PeerAnswers, a => Assert.Equal(MingerStatus.Unknown, a.Status));
    }

    [Fact]
    public async Task A_peer_that_is_down_while_the_other_says_unknown_is_a_temporary_failure_naming_it()
    {
        await using var rig = new ResolverRig();
        rig.ExpectTimeouts();
        string dead = rig.AddDeadPeer();
        rig.AddPeer();

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.TemporaryFailure, r.Result);
        var failure = Assert.Single(r.FailedPeers);
        Assert.Equal(dead, failure.Peer);
        Assert.Equal(MingerFailure.Timeout, failure.Failure);
        Assert.Contains(dead, failure.Reason);
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Fact]
    public async Task A_wrong_secret_is_a_failure_not_a_no_real_Minger_server()
    {
        await using var rig = new ResolverRig();
        var peerAccounts = AccountStore.Open(rig.Folder.File("peer"));
        await using var server = new MingerServer(peerAccounts, null, rig.Log, new MingerServerSettings { Secret = "the-peers-real-secret", RateLimitPerSecond = 0 });
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        rig.Config = rig.Config with
        {
            Peers = rig.Config.Peers.Add(new PeerConfiguration { Name = "127.0.0.1", MingerPort = server.LocalEndPoint!.Port, Secret = "a-wrong-secret-of-16+" }),
        };

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.TemporaryFailure, r.Result);
        var failure = Assert.Single(r.FailedPeers);
        Assert.Equal("127.0.0.1", failure.Peer);
        Assert.Equal(MingerFailure.Rejected, failure.Failure);
        Assert.Equal(MingerStatus.BadCredentials, failure.Status);
        peerAccounts.Dispose();
    }

    [Fact]
    public async Task The_right_secret_finds_an_account_on_a_real_Minger_server()
    {
        await using var rig = new ResolverRig();
        const string secret = "the-peers-real-secret";
        var peerAccounts = AccountStore.Open(rig.Folder.File("peer"));
        Assert.True(peerAccounts.TryAdd(new Account(User, null, true, null, DateTimeOffset.UtcNow, "m")));
        await using var server = new MingerServer(peerAccounts, null, rig.Log, new MingerServerSettings { Secret = secret, RateLimitPerSecond = 0 });
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        rig.Config = rig.Config with
        {
            Peers = rig.Config.Peers.Add(new PeerConfiguration { Name = "127.0.0.1", MingerPort = server.LocalEndPoint!.Port, Secret = secret }),
        };

        var r = await rig.ResolveAsync("User@Example.COM");

        Assert.Equal(ResolutionResult.Peer, r.Result);
        Assert.Equal("127.0.0.1", r.Peer);
        peerAccounts.Dispose();
    }

    [Fact]
    public async Task A_peer_that_answers_4_makes_the_address_unable_to_receive()
    {
        await using var rig = new ResolverRig();
        rig.AddPeer();
        rig.AddPeer().With(User, MingerStatus.CannotReceive);

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.CannotReceive, r.Result);
        Assert.Equal("peer2.test", r.Peer);
        Assert.True(r.IsTemporary);
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Fact]
    public async Task A_spoofed_5_from_another_port_is_ignored_and_the_true_3_wins()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer();
        using var spoofer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        spoofer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int spoofs = 0;
        peer.BeforeReply = async (client, mailbox) =>
        {
            // Same address, other port: exactly what an off-path attacker on the host could send.
            await spoofer.SendToAsync(MingerCodec.EncodeReply(mailbox, MingerStatus.Exists), SocketFlags.None, client);
            // The right port but another mailbox, and the right mailbox in another case: also not answers to our query.
            await spoofer.SendToAsync(MingerCodec.EncodeReply("other@example.com", MingerStatus.Exists), SocketFlags.None, client);
            Interlocked.Increment(ref spoofs);
            await Task.Delay(30);
        };

        var r = await rig.ResolveAsync(User);

        Assert.True(spoofs >= 1, "the spoofed reply was sent first");
        Assert.Equal(ResolutionResult.NotFound, r.Result);
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Fact]
    public async Task Five_slow_peers_are_asked_in_parallel()
    {
        await using var rig = new ResolverRig();
        rig.Config = rig.Config with { Minger = rig.Config.Minger with { Timeout = TimeSpan.FromSeconds(2), Retries = 0 } };
        var peers = Enumerable.Range(0, 5).Select(_ => rig.AddPeer()).ToArray();
        foreach (var p in peers) p.Delay = TimeSpan.FromMilliseconds(300);
        await rig.ResolveAsync("warm-up@example.com", new ResolveOptions { NoCache = true });
        // No peer answers before every peer has been asked: a client that waited for one answer before asking the
        // next peer would never get one.
        int asked = 0;
        var everyoneAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        foreach (var p in peers)
            p.BeforeReply = (_, _) =>
            {
                if (Interlocked.Increment(ref asked) == peers.Length) everyoneAsked.TrySetResult();
                return everyoneAsked.Task.WaitAsync(TimeSpan.FromSeconds(5));
            };

        var r = await rig.ResolveAsync(User);

        // A sequential client would have stalled at the first peer until its attempts ran out and counted it failed;
        // here every peer answered, which only happens when all of them were asked before any reply. (Timing belongs in bench/.)
        Assert.Equal(ResolutionResult.NotFound, r.Result);
        Assert.Empty(r.FailedPeers);
        Assert.All(peers, p => Assert.Equal(2, p.Received)); // the warm-up query and this one, no retries
    }

    [Fact]
    public async Task A_lost_first_query_is_retried_and_answered()
    {
        await using var rig = new ResolverRig();
        rig.ExpectTimeouts(500, retries: 2);
        var answering = rig.AddPeer();
        var lossy = rig.AddPeer().With(User, MingerStatus.Exists);
        lossy.DropFirst = 1;

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.Peer, r.Result);
        Assert.Equal("peer2.test", r.Peer);
        Assert.True(lossy.Received >= 2, "the lost query was sent again");
        Assert.Equal(lossy.Received, r.PeerAnswers.Single(a => a.Peer == "peer2.test").Attempts);
        // A peer that answered is not asked again: its attempts stop at the answer.
        Assert.Equal(answering.Received, r.PeerAnswers.Single(a => a.Peer == "peer1.test").Attempts);
    }

    [Fact]
    public async Task Cancellation_stops_a_lookup_promptly()
    {
        await using var rig = new ResolverRig();
        rig.Config = rig.Config with { Minger = rig.Config.Minger with { Timeout = TimeSpan.FromSeconds(2), Retries = 2 } };
        rig.AddPeer().Silent = true;
        rig.AddDeadPeer();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        var watch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rig.ResolveAsync(User, null, cts.Token));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1.5), $"took {watch.Elapsed.TotalMilliseconds:0} ms of a possible 6 s");
    }

    [Fact]
    public async Task A_cached_answer_survives_a_restart_and_no_peer_is_asked()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        Assert.Equal(ResolutionResult.Peer, (await rig.ResolveAsync(User)).Result);

        rig.RestartCache();
        var r = await rig.ResolveAsync("USER@EXAMPLE.COM");

        Assert.Equal(ResolutionResult.Peer, r.Result);
        Assert.True(r.FromCache);
        Assert.Equal("peer1.test", r.Peer);
        Assert.Equal(1, peer.Received);
    }

    [Fact]
    public async Task An_expired_positive_entry_is_asked_again_and_a_ttl_change_applies_at_once()
    {
        var clock = new ManualClock();
        await using var rig = new ResolverRig(clock);
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        rig.SetSharing(s => s with { VerifiedCacheTtl = TimeSpan.FromMinutes(10) });
        await rig.ResolveAsync(User);

        clock.Advance(TimeSpan.FromMinutes(9));
        Assert.True((await rig.ResolveAsync(User)).FromCache);

        clock.Advance(TimeSpan.FromMinutes(2));
        var expired = await rig.ResolveAsync(User);
        Assert.False(expired.FromCache);
        Assert.Equal(2, peer.Received);

        // Refreshed just now; shortening the TTL in the configuration makes it stale without any restart.
        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.True((await rig.ResolveAsync(User)).FromCache);
        rig.SetSharing(s => s with { VerifiedCacheTtl = TimeSpan.FromSeconds(30) });
        Assert.False((await rig.ResolveAsync(User)).FromCache);
        Assert.Equal(3, peer.Received);
    }

    [Fact]
    public async Task A_tiny_ttl_expires_in_real_time()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        rig.SetSharing(s => s with { VerifiedCacheTtl = TimeSpan.FromMilliseconds(150) });
        await rig.ResolveAsync(User);

        await Task.Delay(300);
        var r = await rig.ResolveAsync(User);

        Assert.False(r.FromCache);
        Assert.Equal(2, peer.Received);
    }

    [Fact]
    public async Task Negative_ttl_zero_never_caches_not_found()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer();

        Assert.Equal(ResolutionResult.NotFound, (await rig.ResolveAsync(User)).Result);
        var again = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.NotFound, again.Result);
        Assert.False(again.FromCache);
        Assert.Equal(2, peer.Received);
        Assert.Empty(rig.Cache.List(includeExpired: true));
    }

    [Fact]
    public async Task A_positive_negative_ttl_caches_not_found()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer();
        rig.SetSharing(s => s with { NegativeCacheTtl = TimeSpan.FromMinutes(5) });

        await rig.ResolveAsync(User);
        var again = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.NotFound, again.Result);
        Assert.True(again.FromCache);
        Assert.Equal(1, peer.Received);
        var entry = Assert.Single(rig.Cache.List());
        Assert.Equal(CacheEntryKind.Negative, entry.Kind);
        Assert.Null(entry.Peer);

        // Turning negative caching off applies at once.
        rig.SetSharing(s => s with { NegativeCacheTtl = TimeSpan.Zero });
        Assert.False((await rig.ResolveAsync(User)).FromCache);
    }

    [Fact]
    public async Task Invalidate_drops_the_entry_and_the_next_resolution_asks_again()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        await rig.ResolveAsync(User);

        Assert.True(rig.Resolver.Invalidate("User@Example.com"));
        var r = await rig.ResolveAsync(User);

        Assert.False(r.FromCache);
        Assert.Equal(2, peer.Received);
    }

    [Fact]
    public async Task A_rejection_by_another_peer_keeps_the_entry_and_one_by_the_cached_peer_drops_it()
    {
        await using var rig = new ResolverRig();
        rig.AddPeer().With(User, MingerStatus.Exists);
        await rig.ResolveAsync(User);

        Assert.False(rig.Resolver.OnPeerSaysUnknown(User, "peer9.test"));
        Assert.NotNull(rig.Cache.Lookup(User));
        Assert.True(rig.Resolver.OnPeerSaysUnknown(User, "PEER1.test"));
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Fact]
    public async Task A_live_lookup_where_the_cached_peer_now_says_unknown_drops_the_entry()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        rig.AddDeadPeer();
        rig.ExpectTimeouts();
        Assert.Equal(ResolutionResult.Peer, (await rig.ResolveAsync(User)).Result);

        peer.Mailboxes.Clear(); // the mailbox moved away
        var r = await rig.ResolveAsync(User, new ResolveOptions { NoCache = true });

        Assert.Equal(ResolutionResult.TemporaryFailure, r.Result); // the dead peer might hold it now
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Fact]
    public async Task NoCache_asks_live_and_still_writes_the_cache()
    {
        await using var rig = new ResolverRig();
        var first = rig.AddPeer().With(User, MingerStatus.Exists);
        await rig.ResolveAsync(User);
        first.Mailboxes.Clear();
        rig.AddPeer().With(User, MingerStatus.Exists);

        var r = await rig.ResolveAsync(User, new ResolveOptions { NoCache = true });

        Assert.False(r.FromCache);
        Assert.Equal("peer2.test", r.Peer);
        Assert.Equal("peer2.test", rig.Cache.Lookup(User)!.Peer);
    }

    [Fact]
    public async Task A_subset_of_peers_asks_only_those_and_never_caches_not_found()
    {
        await using var rig = new ResolverRig();
        rig.SetSharing(s => s with { NegativeCacheTtl = TimeSpan.FromMinutes(5) });
        var first = rig.AddPeer();
        var second = rig.AddPeer().With(User, MingerStatus.Exists);

        var r = await rig.ResolveAsync(User, new ResolveOptions { Peers = ["PEER1.test"] });

        Assert.Equal(ResolutionResult.NotFound, r.Result);
        Assert.Equal(1, first.Received);
        Assert.Equal(0, second.Received);
        Assert.Null(rig.Cache.Lookup(User));
        var ex = await Assert.ThrowsAsync<DomainShareException>(() => rig.ResolveAsync(User, new ResolveOptions { Peers = ["nowhere.test"] }));
        Assert.Equal(ErrorIds.PeerNotFound, ex.ErrorId);
    }

    [Fact]
    public async Task Local_accounts_are_decided_before_any_peer_and_domains_match_in_any_case()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);
        rig.AddAccount("alice@example.com");
        rig.AddAccount("bob@example.com", enabled: false);
        rig.AddAccount("carol@example.com", reserved: true);

        Assert.Equal(ResolutionResult.Local, (await rig.ResolveAsync("Alice@EXAMPLE.com")).Result);
        Assert.Equal(ResolutionResult.LocalCannotReceive, (await rig.ResolveAsync("bob@example.com")).Result);
        Assert.Equal(ResolutionResult.LocalCannotReceive, (await rig.ResolveAsync("carol@Example.Com")).Result);
        Assert.Equal(ResolutionResult.DomainNotHosted, (await rig.ResolveAsync("user@elsewhere.net")).Result);
        Assert.Equal(ResolutionResult.DomainNotHosted, (await rig.ResolveAsync("user@[192.0.2.1]")).Result);
        Assert.Equal(ResolutionResult.NotFound, (await rig.ResolveAsync("user@Private.Example")).Result);
        Assert.Equal(0, peer.Received);
    }

    [Fact]
    public async Task Sharing_disabled_or_no_enabled_peer_is_not_found_without_asking()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists);

        rig.SetSharing(s => s with { Enabled = false });
        Assert.Equal(ResolutionResult.NotFound, (await rig.ResolveAsync(User)).Result);

        rig.SetSharing(s => s with { Enabled = true });
        rig.Config = rig.Config with { Peers = rig.Config.Peers.ConvertAll(p => p with { Enabled = false }) };
        Assert.Equal(ResolutionResult.NotFound, (await rig.ResolveAsync(User)).Result);
        Assert.Equal(0, peer.Received);
    }

    [Fact]
    public async Task A_cached_peer_that_was_disabled_is_not_used()
    {
        await using var rig = new ResolverRig();
        rig.AddPeer().With(User, MingerStatus.Exists);
        await rig.ResolveAsync(User);

        rig.Config = rig.Config with { Peers = rig.Config.Peers.ConvertAll(p => p with { Enabled = false }) };
        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.NotFound, r.Result);
        Assert.False(r.FromCache);
        Assert.Null(rig.Cache.Lookup(User));
    }

    [Theory]
    [InlineData("")]
    [InlineData("no-at-sign")]
    [InlineData("@example.com")]
    [InlineData("user@")]
    [InlineData("two words@example.com")]
    [InlineData("*")]
    [InlineData("user@-bad-.com")]
    [InlineData("user@exa mple.com")]
    public async Task An_invalid_address_is_an_InvalidAddress_error(string address)
    {
        await using var rig = new ResolverRig();

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => rig.ResolveAsync(address));

        Assert.Equal(ErrorIds.InvalidAddress, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.False(string.IsNullOrWhiteSpace(ex.RecommendedAction));
    }

    [Fact]
    public async Task A_peer_name_that_does_not_resolve_is_a_temporary_failure()
    {
        await using var rig = new ResolverRig();
        rig.AddPeer();
        rig.Config = rig.Config with { Peers = rig.Config.Peers.Add(new PeerConfiguration { Name = "unknown-host.test" }) };

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.TemporaryFailure, r.Result);
        var failure = Assert.Single(r.FailedPeers);
        Assert.Equal("unknown-host.test", failure.Peer);
        Assert.Equal(MingerFailure.DnsFailure, failure.Failure);
    }

    [Fact]
    public async Task An_IPv6_peer_is_asked_over_IPv6()
    {
        if (!Socket.OSSupportsIPv6) return;
        await using var rig = new ResolverRig();
        FakeMingerPeer peer;
        try { peer = rig.AddPeer(bind: "::1", name: "[::1]"); }
        catch (SocketException) { return; } // no IPv6 loopback on this machine
        peer.With(User, MingerStatus.Exists);
        rig.AddPeer(); // and an IPv4 one in the same fan-out

        var r = await rig.ResolveAsync(User);

        Assert.Equal(ResolutionResult.Peer, r.Result);
        Assert.Equal("[::1]", r.Peer);
        Assert.Equal(AddressFamily.InterNetworkV6, Assert.Single(peer.Sources).AddressFamily);
    }

    [Fact]
    public async Task The_gateway_lookup_is_true_only_when_a_peer_says_5_and_throws_when_it_cannot_tell()
    {
        await using var rig = new ResolverRig();
        var peer = rig.AddPeer().With(User, MingerStatus.Exists).With("off@example.com", MingerStatus.CannotReceive);
        IGatewayLookup gateway = rig.Resolver;

        Assert.True(await gateway.ExistsOnPeerAsync(User, default));
        Assert.True(await gateway.ExistsOnPeerAsync(User, default)); // cached
        Assert.Equal(1, peer.Received);
        Assert.False(await gateway.ExistsOnPeerAsync("nobody@example.com", default));
        Assert.False(await gateway.ExistsOnPeerAsync("not an address", default));
        await Assert.ThrowsAsync<AddressResolutionException>(async () => await gateway.ExistsOnPeerAsync("off@example.com", default));
        rig.AddDeadPeer();
        rig.ExpectTimeouts();
        var ex = await Assert.ThrowsAsync<AddressResolutionException>(async () => await gateway.ExistsOnPeerAsync("nobody@example.com", default));
        Assert.Equal(ResolutionResult.TemporaryFailure, ex.Resolution.Result);
    }
}
