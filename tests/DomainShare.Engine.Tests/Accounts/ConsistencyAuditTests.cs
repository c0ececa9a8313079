using System.Collections.Concurrent;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>The split-brain audit against real peers: addresses planted on two servers directly, as a creation made while a peer was down would leave them.</summary>
public sealed class ConsistencyAuditTests
{
    private static async Task<List<ConsistencyFinding>> AuditAsync(AccountServer server, string? domain = null, Action<int, int>? onChecked = null)
    {
        var findings = new List<ConsistencyFinding>();
        await foreach (var finding in ConsistencyAudit.RunAsync(server.Config, server.Store, server.Client, domain, onChecked))
            findings.Add(finding);
        return findings.OrderBy(f => f.Address, StringComparer.Ordinal).ThenBy(f => f.Peer, StringComparer.Ordinal).ToList();
    }

    [Fact]
    public async Task An_address_on_two_servers_is_a_conflict_naming_the_other_server()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var c = await AccountServer.StartAsync(4);
        a.WithPeers(b.AsPeer, c.AsPeer);
        a.Plant("Both@example.com");
        b.Plant("both@EXAMPLE.com");
        a.Plant("disabled-on-b@example.com");
        b.Plant("Disabled-On-B@example.com", enabled: false);
        a.Plant("only-here@example.com");
        b.Plant("only-there@example.com");
        a.Plant("private@private.example"); // not a shared domain: not audited
        b.Plant("private@private.example");
        var progress = new ConcurrentQueue<(int Done, int Total)>();

        var findings = await AuditAsync(a, onChecked: (done, total) => progress.Enqueue((done, total)));

        Assert.Equal(
        [
            new ConsistencyFinding("Both@example.com", AccountState.Active, b.Name, MingerStatus.Exists, true, $"also exists on '{b.Name}' (address exists)"),
            new ConsistencyFinding("disabled-on-b@example.com", AccountState.Active, b.Name, MingerStatus.CannotReceive, true,
                $"also exists on '{b.Name}' (address exists but cannot receive mail)"),
        ], findings);
        Assert.Equal(3, progress.Count);
        Assert.Equal((3, 3), progress.MaxBy(p => p.Done));
        await Eventually.TrueAsync(() => c.Minger.GetStatistics().AnsweredWith(MingerStatus.Unknown) == 3, "C was asked about each of the 3 addresses");
    }

    [Fact]
    public async Task A_peer_that_is_down_gives_findings_that_are_not_conflicts()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        await using var down = new HeldPeer("127.0.0.9", answers: false);
        a.WithPeers(b.AsPeer, down.AsPeer).WithShortTimeouts(1000, retries: 0); // long enough for the live peer on a loaded machine
        a.Plant("one@example.com");
        a.Plant("two@example.com", enabled: false);

        var findings = await AuditAsync(a);

        Assert.Equal(2, findings.Count);
        Assert.All(findings, f =>
        {
            Assert.False(f.Conflict);
            Assert.Equal(down.Name, f.Peer);
            Assert.Null(f.PeerStatus);
            Assert.Contains(down.Name, f.Detail);
        });
        Assert.Equal([("one@example.com", AccountState.Active), ("two@example.com", AccountState.Disabled)], findings.Select(f => (f.Address, f.LocalState)));
    }

    [Fact]
    public async Task A_domain_filter_audits_that_shared_domain_only_and_refuses_one_that_is_not_shared()
    {
        await using var a = await AccountServer.StartAsync(2);
        await using var b = await AccountServer.StartAsync(3);
        a.WithPeers(b.AsPeer);
        a.Config = a.Config with { Domains = a.Config.Domains.Add(new DomainConfiguration("example.org", true)) };
        a.Plant("dup@example.com");
        b.Plant("dup@example.com");
        a.Plant("dup@example.org");
        b.Plant("dup@example.org");

        Assert.Equal(["dup@example.org"], (await AuditAsync(a, "EXAMPLE.ORG")).Select(f => f.Address));
        Assert.Equal(2, (await AuditAsync(a)).Count);
        var ex = await Assert.ThrowsAsync<DomainShareException>(() => AuditAsync(a, AccountServer.PrivateDomain));
        Assert.Equal(ErrorIds.DomainNotHosted, ex.ErrorId);
    }

    [Fact]
    public async Task Nothing_to_audit_without_peers_or_accounts()
    {
        await using var a = await AccountServer.StartAsync(2);
        a.Plant("alone@example.com");
        Assert.Empty(await AuditAsync(a));
        await using var b = await AccountServer.StartAsync(3);
        b.WithPeers(a.AsPeer);
        Assert.Empty(await AuditAsync(b));
    }
}
