using System.Collections.Concurrent;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Tests.Routing;

namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>
/// Account creation against real peers: in-process Minger servers, each over its own account store, on their own
/// loopback addresses, asked over real UDP with the shared secret.
/// </summary>
public sealed class AccountCreatorTests
{
    private static void AssertNothingCreated(AccountServer server, string address)
    {
        Assert.Null(server.Store.Get(address));
        Assert.Equal(AccountState.Unknown, server.Store.GetState(address));
        Assert.False(Directory.Exists(server.FullPath(Maildir.RelativePathFor(MailAddress.Parse(address)))), "no Maildir is made for a refused account");
    }

    [Fact]
    public async Task Created_when_every_peer_answers_3()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var c = await AccountServer.StartAsync(4);
        a.WithPeers(b.AsPeer, c.AsPeer);
        b.Plant("someone.else@example.com");

        var created = await a.CreateAsync("Ann.Lee@Example.COM");

        Assert.Equal("Ann.Lee@example.com", created.Account.Address);
        Assert.False(created.Account.Reserved);
        Assert.Equal(created.Account, a.Store.Get("ann.lee@example.com"));
        Assert.Equal(AccountState.Active, a.Store.GetState("ANN.LEE@example.com"));
        Assert.Equal([b.Name, c.Name], created.Peers.Select(p => p.Peer).Order());
        Assert.All(created.Peers, p => Assert.Equal(MingerStatus.Unknown, p.Status));
        Assert.Empty(created.SkippedPeers);
        foreach (var sub in new[] { "tmp", "new", "cur" })
            Assert.True(Directory.Exists(Path.Combine(a.FullPath(created.Account.Maildir), sub)), $"Maildir/{sub} exists");
        Assert.Equal(Path.Combine("mail", "example.com", "ann.lee"), created.Account.Maildir);
        // From now on this server answers 5 and the peers still have nothing.
        Assert.Equal(MingerStatus.Exists, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann.lee@example.com"));
        Assert.Null(b.Store.Get("ann.lee@example.com"));
        Assert.Null(c.Store.Get("ann.lee@example.com"));
    }

    [Theory]
    [InlineData(true, 5)]
    [InlineData(false, 4)]
    public async Task Refused_when_a_peer_has_the_address_naming_that_peer(bool enabledOnPeer, int status)
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var c = await AccountServer.StartAsync(4);
        a.WithPeers(c.AsPeer, b.AsPeer);
        b.Plant("Ann@example.com", enabledOnPeer);

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ANN@EXAMPLE.COM"));

        Assert.Equal(ErrorIds.AccountExistsOnPeer, ex.ErrorId);
        Assert.Equal(ErrorKind.AlreadyExists, ex.Kind);
        Assert.Contains($"peer '{b.Name}' (answered {status}", ex.Message);
        Assert.DoesNotContain(c.Name, ex.Message);
        Assert.Equal("ANN@EXAMPLE.COM", ex.Target);
        Assert.False(string.IsNullOrEmpty(ex.RecommendedAction));
        AssertNothingCreated(a, "ann@example.com");
        Assert.Equal(MingerStatus.Unknown, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));
    }

    [Fact]
    public async Task Among_twenty_peers_the_one_that_has_the_address_is_named()
    {
        await using var a = await AccountServer.StartAsync(2);
        var peers = new List<HeldPeer>();
        try
        {
            for (int i = 0; i < 20; i++)
            {
                var peer = new HeldPeer($"127.0.0.{20 + i}");
                peer.Open();
                peers.Add(peer);
            }
            peers[13].Mailboxes["ann@example.com"] = MingerStatus.Exists;
            a.WithPeers(peers.Select(p => p.AsPeer).ToArray());
            var answered = new ConcurrentQueue<MingerPeerResult>();

            var ex = await Assert.ThrowsAsync<DomainShareException>(() =>
                a.Creator.CreateAsync(new AccountRequest("ann@example.com"), skipUnreachablePeers: false, answered.Enqueue));

            Assert.Equal(ErrorIds.AccountExistsOnPeer, ex.ErrorId);
            Assert.Contains("peer '127.0.0.33' (answered 5", ex.Message);
            Assert.Single(ex.Message.Split("peer '").Skip(1));
            Assert.Equal(20, answered.Count); // progress: once per peer
            Assert.All(peers, p => Assert.Equal(1, p.Received));
            AssertNothingCreated(a, "ann@example.com");
        }
        finally
        {
            foreach (var p in peers) await p.DisposeAsync();
        }
    }

    [Fact]
    public async Task Refused_when_a_peer_is_down_and_nothing_is_left_behind()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(b.AsPeer, down.AsPeer).WithShortTimeouts(1000, retries: 0); // long enough for the live peer on a loaded machine

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@example.com"));

        Assert.Equal(ErrorIds.PeerUnreachable, ex.ErrorId);
        Assert.Equal(ErrorKind.ResourceUnavailable, ex.Kind);
        Assert.Contains(down.Name, ex.Message);
        Assert.DoesNotContain(b.Name, ex.Message);
        Assert.Contains("SkipUnreachablePeer", ex.RecommendedAction);
        Assert.Equal(1, down.Received);
        AssertNothingCreated(a, "ann@example.com");
    }

    [Fact]
    public async Task A_peer_that_refuses_our_secret_is_a_failure_not_a_no()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        a.WithPeers(b.AsPeer with { Secret = "not the secret b expects" });

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@example.com"));
        Assert.Equal(ErrorIds.PeerUnreachable, ex.ErrorId);
        Assert.Contains("answered 2", ex.Message);
        AssertNothingCreated(a, "ann@example.com");

        var created = await a.CreateAsync("ann@example.com", skipUnreachablePeers: true);
        var skipped = Assert.Single(created.SkippedPeers);
        Assert.Equal((b.Name, MingerFailure.Rejected, MingerStatus.BadCredentials), (skipped.Peer, skipped.Failure, skipped.Status!.Value));
    }

    [Fact]
    public async Task With_skipUnreachablePeers_it_is_created_and_the_down_peer_is_listed_as_skipped()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(down.AsPeer, b.AsPeer).WithShortTimeouts(1000, retries: 0); // long enough for the live peer on a loaded machine

        var created = await a.CreateAsync("ann@example.com", skipUnreachablePeers: true);

        var skipped = Assert.Single(created.SkippedPeers);
        Assert.Equal(down.Name, skipped.Peer);
        Assert.Equal(MingerFailure.Timeout, skipped.Failure);
        Assert.Equal(MingerStatus.Unknown, created.Peers.Single(p => p.Peer == b.Name).Status);
        Assert.Equal(AccountState.Active, a.Store.GetState("ann@example.com"));
        Assert.True(Directory.Exists(Path.Combine(a.FullPath(created.Account.Maildir), "new")));
    }

    [Fact]
    public async Task Skipping_unreachable_peers_never_skips_a_peer_that_has_the_address()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(down.AsPeer, b.AsPeer).WithShortTimeouts(1000, retries: 0); // long enough for the live peer on a loaded machine
        b.Plant("ann@example.com");

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@example.com", skipUnreachablePeers: true));
        Assert.Equal(ErrorIds.AccountExistsOnPeer, ex.ErrorId);
        AssertNothingCreated(a, "ann@example.com");
    }

    [Fact]
    public async Task A_non_shared_domain_is_created_without_asking_any_peer()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(down.AsPeer, b.AsPeer).WithShortTimeouts(1000, retries: 0); // long enough for the live peer on a loaded machine
        b.Plant("ann@private.example"); // another server's private domain is its own business

        var created = await a.CreateAsync("Ann@Private.Example");

        Assert.Equal("Ann@private.example", created.Account.Address);
        Assert.Empty(created.Peers);
        Assert.Empty(created.SkippedPeers);
        Assert.Equal(0, down.Received);
        Assert.Equal(0, b.Minger.GetStatistics().Received);
        Assert.Equal(AccountState.Active, a.Store.GetState("ann@private.example"));
    }

    [Fact]
    public async Task With_domain_sharing_off_even_a_shared_domain_asks_no_peer()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(down.AsPeer).WithShortTimeouts(200, retries: 0);
        a.Config = a.Config with { DomainSharing = a.Config.DomainSharing with { Enabled = false } };

        var created = await a.CreateAsync("ann@example.com");
        Assert.Empty(created.Peers);
        Assert.Equal(0, down.Received);
    }

    [Fact]
    public async Task Disabled_peers_are_not_asked()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(down.AsPeer with { Enabled = false }, b.AsPeer);

        var created = await a.CreateAsync("ann@example.com");
        Assert.Equal([b.Name], created.Peers.Select(p => p.Peer));
        Assert.Equal(0, down.Received);
    }

    [Fact]
    public async Task A_domain_not_hosted_here_a_bad_address_or_a_negative_quota_is_refused_before_anything_is_reserved()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var held = new HeldPeer("127.0.0.9");
        a.WithPeers(held.AsPeer);

        var notHosted = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@elsewhere.org"));
        Assert.Equal(ErrorIds.DomainNotHosted, notHosted.ErrorId);
        Assert.Contains("Add-DomainShareDomain elsewhere.org", notHosted.RecommendedAction);
        Assert.Equal(ErrorIds.InvalidAddress, (await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("a..b@example.com"))).ErrorId);
        Assert.Equal(ErrorIds.InvalidAddress, (await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("\"with space\"@example.com"))).ErrorId);
        var quota = await Assert.ThrowsAsync<DomainShareException>(() =>
            a.Creator.CreateAsync(new AccountRequest("ann@example.com", QuotaBytes: -1), skipUnreachablePeers: false));
        Assert.Equal(ErrorIds.InvalidQuota, quota.ErrorId);

        Assert.Equal(0, held.Received);
        Assert.Equal(0, a.Store.Count());
        AssertNothingCreated(a, "ann@example.com");
    }

    [Fact]
    public async Task An_address_that_exists_here_in_any_case_is_refused_and_kept()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var held = new HeldPeer("127.0.0.9");
        a.WithPeers(held.AsPeer);
        a.Plant("Ann@example.com", enabled: false);

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@EXAMPLE.com"));
        Assert.Equal(ErrorIds.AccountAlreadyExists, ex.ErrorId);
        Assert.Equal(0, held.Received);
        Assert.Equal(AccountState.Disabled, a.Store.GetState("ann@example.com"));
        Assert.Equal("Ann@example.com", a.Store.Get("ann@example.com")!.Address);
    }

    [Fact]
    public async Task While_a_creation_is_in_flight_the_address_answers_4_to_peers_and_cannot_be_created_elsewhere()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var slow = new HeldPeer("127.0.0.9"); // holds A's fan-out open until the test lets it answer
        a.WithPeers(b.AsPeer, slow.AsPeer);
        b.WithPeers(a.AsPeer);

        var creating = a.CreateAsync("Ann@example.com");
        await slow.FirstQuery.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(creating.IsCompleted);

        Assert.Equal(AccountState.Reserved, a.Store.GetState("ann@example.com"));
        Assert.Equal(MingerStatus.CannotReceive, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));
        Assert.Equal(MingerStatus.CannotReceive, await MingerAsk.StatusAsync(a.MingerEndPoint, "ANN@Example.com"));
        // B, asked by A before B tried, said 3; now B tries the same address and is refused because of A's reservation.
        var onB = await Assert.ThrowsAsync<DomainShareException>(() => b.CreateAsync("ann@example.com"));
        Assert.Equal(ErrorIds.AccountExistsOnPeer, onB.ErrorId);
        Assert.Contains($"peer '{a.Name}' (answered 4", onB.Message);
        AssertNothingCreated(b, "ann@example.com");
        // A second creation of the same address on A itself is refused at once.
        var twice = await Assert.ThrowsAsync<DomainShareException>(() => a.CreateAsync("ann@example.com"));
        Assert.Equal(ErrorIds.AccountAlreadyExists, twice.ErrorId);
        Assert.Contains("being created", twice.Message);

        slow.Open();
        var created = await creating.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("Ann@example.com", created.Account.Address);
        Assert.Equal(MingerStatus.Exists, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));
        Assert.Equal(MingerStatus.Unknown, await MingerAsk.StatusAsync(b.MingerEndPoint, "ann@example.com"));
    }

    [Fact]
    public async Task Cancellation_releases_the_reservation()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var slow = new HeldPeer("127.0.0.9");
        a.WithPeers(slow.AsPeer);
        using var cts = new CancellationTokenSource();

        var creating = a.CreateAsync("ann@example.com", ct: cts.Token);
        await slow.FirstQuery.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(MingerStatus.CannotReceive, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));

        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => creating.WaitAsync(TimeSpan.FromSeconds(10)));

        AssertNothingCreated(a, "ann@example.com");
        Assert.Equal(MingerStatus.Unknown, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));
        // Nothing holds the address any more: the next creation goes through.
        slow.Open();
        await a.CreateAsync("ann@example.com");
        Assert.Equal(AccountState.Active, a.Store.GetState("ann@example.com"));
    }

    [Fact]
    public async Task A_reservation_that_expired_while_the_peers_were_asked_is_not_committed()
    {
        var clock = new ManualClock();
        await using var a = await AccountServer.StartAsync(2, clock);
        await using var slow = new HeldPeer("127.0.0.9");
        a.WithPeers(slow.AsPeer);

        var creating = a.CreateAsync("ann@example.com");
        await slow.FirstQuery.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // The process stalls past the hold (at least 2 minutes): the address answered 3 meanwhile, so a peer may have created it.
        clock.Advance(TimeSpan.FromMinutes(3));
        Assert.Equal(MingerStatus.Unknown, await MingerAsk.StatusAsync(a.MingerEndPoint, "ann@example.com"));
        slow.Open();

        var ex = await Assert.ThrowsAsync<DomainShareException>(() => creating.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(ErrorIds.AccountAlreadyExists, ex.ErrorId);
        Assert.Contains("expired", ex.Message);
        Assert.Null(a.Store.Get("ann@example.com"));
        Assert.Equal(AccountState.Unknown, a.Store.GetState("ann@example.com"));
    }

    [Fact]
    public async Task A_token_cancelled_before_the_call_reserves_nothing()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        a.WithPeers(b.AsPeer);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.CreateAsync("ann@example.com", ct: new CancellationToken(canceled: true)));
        AssertNothingCreated(a, "ann@example.com");
    }

    [Fact]
    public async Task A_disabled_account_with_a_display_name_and_quota_is_created_as_asked()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        a.WithPeers(b.AsPeer);
        var created = await a.Creator.CreateAsync(new AccountRequest("josé@example.com", "José", Enabled: false, QuotaBytes: 1 << 20),
            skipUnreachablePeers: false);
        Assert.Equal(new Account("josé@example.com", "José", false, 1 << 20, created.Account.Created, Path.Combine("mail", "example.com", "jos%C3%A9")), created.Account);
        Assert.Equal(AccountState.Disabled, a.Store.GetState("JOSÉ@example.com"));
        Assert.Equal(MingerStatus.CannotReceive, await MingerAsk.StatusAsync(a.MingerEndPoint, "josé@example.com"));
    }
}
