using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Minger;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// Two relays with the gateway option on ("Minger checks also trigger domain-sharing checks"), each the other's peer:
/// X holds no account, Y holds yuri. A gateway (a non-peer source) asks them directly over Minger.
/// </summary>
public sealed class GatewayPair : IDisposable
{
    public readonly Cluster Cluster = new("gateway");
    public readonly Server X;
    public readonly Server Y;

    public GatewayPair()
    {
        try
        {
            X = Cluster.Add("gwx", "secret-of-gwx-0123456789");
            Y = Cluster.Add("gwy", "secret-of-gwy-0123456789");
            Cluster.Configure(Cluster.Servers,
                $"Set-DomainShareConfig -MingerGateway $true {X.Cfg}",
                $"Set-DomainShareConfig -MingerGateway $true {Y.Cfg}",
                X.AddPeerScript(Y), Y.AddPeerScript(X));
            Y.AddAccount("yuri@example.com");
            Cluster.Start(X, Y);
        }
        catch
        {
            Cluster.Dispose();
            throw;
        }
    }

    public void Dispose() => Cluster.Dispose();
}

public sealed class GatewayTests(GatewayPair f, ITestOutputHelper output) : IClassFixture<GatewayPair>
{
    [Fact]
    public void A_non_peer_asking_a_gateway_server_about_an_address_on_its_peer_gets_5()
    {
        long before = f.X.Counters()["MingerGatewayLookups"];
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(f.X.MingerEndPoint, "yuri@example.com", f.X.Secret, from: Loopback.Outsider));
        Assert.True(f.X.Counters()["MingerGatewayLookups"] > before);
    }

    [Fact]
    public void A_query_from_a_peer_address_is_never_forwarded()
    {
        // Sent from Y's own address, as Y's relay would: X answers from its own accounts only.
        Assert.Equal(MingerStatus.Unknown, MingerProbe.Ask(f.X.MingerEndPoint, "yuri@example.com", f.X.Secret, from: f.Y.Address));
    }

    [Fact]
    public void Addresses_outside_the_shared_domains_are_not_looked_up()
    {
        long before = f.X.Counters()["MingerGatewayLookups"];
        Assert.Equal(MingerStatus.Unknown, MingerProbe.Ask(f.X.MingerEndPoint, "yuri@other.example.org", f.X.Secret, from: Loopback.Outsider));
        Assert.Equal(before, f.X.Counters()["MingerGatewayLookups"]);
    }

    [Fact]
    public void Two_gateways_that_are_each_others_peers_answer_3_for_an_address_that_exists_nowhere_without_looping()
    {
        var x0 = f.X.Counters();
        var y0 = f.Y.Counters();

        // One query, no retry: X asks Y (300 ms per attempt, 1 retry); Y must answer from its own accounts, never ask X back.
        var (status, elapsed) = MingerProbe.AskTimed(f.X.MingerEndPoint, "ghost@example.com", f.X.Secret, from: Loopback.Outsider, wait: TimeSpan.FromSeconds(8));
        var x1 = f.X.Counters();
        var y1 = f.Y.Counters();
        Assert.True(status == MingerStatus.Unknown,
            $"Expected 3, got {status?.ToString() ?? "no answer"} after {elapsed.TotalMilliseconds:0} ms; gateway lookups since: " +
            $"X {x1["MingerGatewayLookups"] - x0["MingerGatewayLookups"]}, Y {y1["MingerGatewayLookups"] - y0["MingerGatewayLookups"]}.");
        output.WriteLine($"Answer {status} after {elapsed.TotalMilliseconds:0} ms.");
        // X looked it up once; Y answered X's query itself. A loop would show dozens of lookups on both.
        Assert.Equal(1, x1["MingerGatewayLookups"] - x0["MingerGatewayLookups"]);
        Assert.Equal(0, y1["MingerGatewayLookups"] - y0["MingerGatewayLookups"]);
        Assert.True(y1["MingerAnswered3Unknown"] > y0["MingerAnswered3Unknown"]);
    }
}
