using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Minger;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// The verification cache across processes and time: an answer learnt once survives relay restarts and routes mail while
/// the peer that gave it is down; an answer older than its time to live is asked again. Each test owns its servers.
/// </summary>
public sealed class CacheTests : IDisposable
{
    private readonly Cluster cluster = new("cache");

    public void Dispose() => cluster.Dispose();

    [Fact]
    public void A_cached_answer_survives_restarts_and_is_used_while_the_peer_is_down()
    {
        var peer = cluster.Add("holder", "secret-of-holder-0123456789");
        var asking = cluster.Add("asking");
        cluster.Configure([peer, asking], asking.AddPeerScript(peer), $"Set-DomainShareConfig -MingerGateway $true {asking.Cfg}");
        peer.AddAccount("pat@example.com");
        int before = cluster.Start(peer, asking)[1].ProcessId!.Value;

        var first = asking.Resolve("pat@example.com");
        Assert.True(first.Result == "Peer" && !first.FromCache, first.ToString());

        // Both relays stop; only the asking server's comes back. The peer stays down.
        cluster.Stop(asking, peer).AssertSuccess();
        Assert.Null(MingerProbe.Ask(peer.MingerEndPoint, "pat@example.com", peer.Secret, wait: TimeSpan.FromMilliseconds(300)));
        int restarted = cluster.Start(asking)[0].ProcessId!.Value;
        Assert.NotEqual(before, restarted);

        // The restarted relay answers a gateway from the same cache, although the peer cannot be asked.
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(asking.MingerEndPoint, "pat@example.com", from: Loopback.Outsider));

        var run = cluster.Invoke(
            $"Resolve-DomainShareAddress pat@example.com {asking.Cfg}",
            $"Get-DomainShareCache {asking.Cfg}",
            $"Resolve-DomainShareAddress pat@example.com -NoCache {asking.Cfg}").AssertSuccess();
        Assert.True(run.Objects.Count == 3, run.ToString());
        var again = run.At<Resolution>(0);
        Assert.True(again.Result == "Peer", again.ToString());
        Assert.True(again.FromCache);
        Assert.Equal(peer.PeerName, again.Peer);
        Assert.Empty(again.FailedPeers);

        var entry = run.At<CacheEntry>(1);
        Assert.Equal("pat@example.com", entry.Address);
        Assert.Equal(peer.PeerName, entry.Peer);
        Assert.True(entry.Positive);

        // Without the cache, the down peer makes it a temporary failure: the hit above really came from the cache.
        var live = run.At<Resolution>(2);
        Assert.True(live.Result == "TemporaryFailure", live.ToString());
    }

    [Fact]
    public void A_cached_answer_older_than_its_time_to_live_is_asked_again()
    {
        var peer = cluster.Add("ttlpeer", "secret-of-ttlpeer-0123456789");
        var asking = cluster.Add("ttlasking");
        cluster.Configure([peer, asking], asking.AddPeerScript(peer), $"Set-DomainShareConfig -VerifiedCacheTtl 5s {asking.Cfg}");
        peer.AddAccount("tia@example.com");
        cluster.Start(peer);

        // One host process: live, then cached at once, then (the TTL passed) live again. The TTL is 5 s, not 1: two commands
        // of one host process can be more than a second apart on a loaded machine.
        string resolve = $"Resolve-DomainShareAddress tia@example.com {asking.Cfg}";
        var run = cluster.Invoke(
            resolve,
            resolve,
            "[System.Threading.Thread]::Sleep(5500)",
            $"@(Get-DomainShareCache {asking.Cfg}).Count",
            $"Get-DomainShareCache -IncludeExpired {asking.Cfg}",
            resolve).AssertSuccess();
        Assert.True(run.Objects.Count == 5, run.ToString());
        var live = run.At<Resolution>(0);
        var cached = run.At<Resolution>(1);
        int listed = run.Objects[2].GetInt32();
        var expired = run.At<CacheEntry>(3);
        var afterTtl = run.At<Resolution>(4);

        Assert.True(live.Result == "Peer" && !live.FromCache, live.ToString());
        Assert.True(cached.Result == "Peer" && cached.FromCache, cached.ToString());
        // Expired: hidden by Get-DomainShareCache, listed with -IncludeExpired.
        Assert.Equal(0, listed);
        Assert.Equal("tia@example.com", expired.Address);
        Assert.True(expired.Expires <= DateTimeOffset.UtcNow);
        Assert.True(afterTtl.Result == "Peer" && !afterTtl.FromCache, afterTtl.ToString());
    }
}
