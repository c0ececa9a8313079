using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Minger;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// Four running relays that hold accounts (B, C, D, E), one server that is configured but down, and servers that ask
/// them through Resolve-DomainShareAddress and Test-DomainSharePeer. The asking servers need no relay of their own:
/// the cmdlets resolve exactly as the relay does at RCPT TO. Each asking server sees the peers differently (right
/// secret, wrong secret, no secret, a down peer), so one started cluster serves every scenario of this class.
/// </summary>
public sealed class PeerCluster : IDisposable
{
    public readonly Cluster Cluster = new("lookup");
    /// <summary>Holds bob (enabled) and dis (disabled); needs its secret.</summary>
    public readonly Server B;
    /// <summary>Holds carol; needs its secret.</summary>
    public readonly Server C;
    /// <summary>Holds dave; has a secret but also answers anonymous queries.</summary>
    public readonly Server D;
    /// <summary>Holds erin; answers only queries from <see cref="Loopback.Outsider"/>.</summary>
    public readonly Server E;
    /// <summary>Configured, never started: a peer whose relay is stopped.</summary>
    public readonly Server Down;
    /// <summary>Asks B then C, with the right secrets.</summary>
    public readonly Server A;
    /// <summary>Asks B and the down server.</summary>
    public readonly Server ADown;
    /// <summary>Asks B with a wrong secret, and C with the right one.</summary>
    public readonly Server AWrong;
    /// <summary>Asks B and D without any secret.</summary>
    public readonly Server AAnon;
    /// <summary>Asks E, which does not allow its source address.</summary>
    public readonly Server ASources;

    public const string WrongSecret = "not-the-secret-of-b-at-all";

    public PeerCluster()
    {
        try
        {
            B = Cluster.Add("b", "secret-of-b-0123456789");
            C = Cluster.Add("c", "secret-of-c-0123456789");
            D = Cluster.Add("d", "secret-of-d-0123456789");
            E = Cluster.Add("e");
            Down = Cluster.Add("down");
            A = Cluster.Add("a");
            ADown = Cluster.Add("adown");
            AWrong = Cluster.Add("awrong");
            AAnon = Cluster.Add("aanon");
            ASources = Cluster.Add("asources");
            Cluster.Configure(Cluster.Servers,
                $"Set-DomainShareConfig -AllowAnonymousMinger $true {D.Cfg}",
                $"Set-DomainShareConfig -MingerAllowedSource {Loopback.Outsider} {E.Cfg}",
                A.AddPeerScript(B), A.AddPeerScript(C),
                ADown.AddPeerScript(B), ADown.AddPeerScript(Down),
                AWrong.AddPeerScript(B, WrongSecret), AWrong.AddPeerScript(C),
                AAnon.AddPeerScript(B, ""), AAnon.AddPeerScript(D, ""),
                ASources.AddPeerScript(E));
            B.AddAccount("bob@example.com");
            B.AddAccount("dis@example.com", enabled: false);
            C.AddAccount("carol@example.com");
            D.AddAccount("dave@example.com");
            E.AddAccount("erin@example.com");
            Cluster.Start(B, C, D, E);
        }
        catch
        {
            Cluster.Dispose();
            throw;
        }
    }

    public void Dispose() => Cluster.Dispose();
}

public sealed class LookupTests(PeerCluster f) : IClassFixture<PeerCluster>
{
    private const string Nobody = "nobody@example.com";

    [Fact]
    public void An_address_held_by_the_second_of_two_peers_resolves_to_that_peer()
    {
        var r = f.A.Resolve("carol@example.com", "-NoCache");
        Assert.True(r.Result == "Peer", r.ToString());
        Assert.Equal(f.C.PeerName, r.Peer);
        Assert.False(r.FromCache);
        Assert.Empty(r.FailedPeers);
        Assert.StartsWith("250 ", r.SmtpReply);
    }

    [Fact]
    public void Matching_on_the_peer_is_case_insensitive()
    {
        var r = f.A.Resolve("Carol@Example.COM", "-NoCache");
        Assert.True(r.Result == "Peer", r.ToString());
        Assert.Equal(f.C.PeerName, r.Peer);
        Assert.Equal("Carol@Example.COM", r.Address);
    }

    [Fact]
    public void An_address_that_exists_nowhere_is_not_found_with_550_5_1_1()
    {
        var r = f.A.Resolve(Nobody, "-NoCache");
        Assert.True(r.Result == "NotFound", r.ToString());
        Assert.Null(r.Peer);
        Assert.Empty(r.FailedPeers);
        Assert.StartsWith("550 5.1.1", r.SmtpReply);
    }

    [Fact]
    public void A_down_peer_turns_an_unknown_address_into_a_temporary_failure_naming_that_peer()
    {
        var r = f.ADown.Resolve(Nobody, "-NoCache");
        Assert.True(r.Result == "TemporaryFailure", r.ToString());
        Assert.StartsWith("451 4.4.3", r.SmtpReply);
        var failed = Assert.Single(r.FailedPeers);
        Assert.StartsWith(f.Down.PeerName + ":", failed);
        Assert.Contains("did not answer", failed);
    }

    [Fact]
    public void A_down_peer_does_not_stop_another_peer_from_holding_an_address()
    {
        var r = f.ADown.Resolve("bob@example.com", "-NoCache");
        Assert.True(r.Result == "Peer", r.ToString());
        Assert.Equal(f.B.PeerName, r.Peer);
    }

    [Fact]
    public void A_wrong_secret_makes_that_peer_a_failed_peer_with_status_2()
    {
        var r = f.AWrong.Resolve(Nobody, "-NoCache");
        Assert.True(r.Result == "TemporaryFailure", r.ToString());
        var failed = Assert.Single(r.FailedPeers);
        Assert.StartsWith(f.B.PeerName + ":", failed);
        Assert.Contains("answered 2", failed);
        // The other peer, asked with its right secret, still finds its own users.
        Assert.Equal("Peer", f.AWrong.Resolve("carol@example.com", "-NoCache").Result);
    }

    [Fact]
    public void Anonymous_queries_are_answered_by_a_peer_that_allows_them()
    {
        var r = f.AAnon.Resolve("dave@example.com", $"-NoCache -Peer {f.D.PeerName}");
        Assert.True(r.Result == "Peer", r.ToString());
        Assert.Equal(f.D.PeerName, r.Peer);
        Assert.Equal(MingerStatus.Unknown, MingerProbe.Ask(f.D.MingerEndPoint, Nobody));
        // Allowing anonymous queries never accepts a wrong digest.
        Assert.Equal(MingerStatus.BadCredentials, MingerProbe.Ask(f.D.MingerEndPoint, "dave@example.com", PeerCluster.WrongSecret));
    }

    [Fact]
    public void Anonymous_queries_are_refused_with_status_2_by_a_peer_that_needs_its_secret()
    {
        var r = f.AAnon.Resolve("bob@example.com", $"-NoCache -Peer {f.B.PeerName}");
        Assert.True(r.Result == "TemporaryFailure", r.ToString());
        var failed = Assert.Single(r.FailedPeers);
        Assert.StartsWith(f.B.PeerName + ":", failed);
        Assert.Contains("answered 2", failed);
        Assert.Equal(MingerStatus.BadCredentials, MingerProbe.Ask(f.B.MingerEndPoint, "bob@example.com"));
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(f.B.MingerEndPoint, "bob@example.com", f.B.Secret));
    }

    [Fact]
    public void A_peer_that_allows_only_other_sources_answers_1_and_counts_as_failed()
    {
        var r = f.ASources.Resolve("erin@example.com", "-NoCache");
        Assert.True(r.Result == "TemporaryFailure", r.ToString());
        var failed = Assert.Single(r.FailedPeers);
        Assert.StartsWith(f.E.PeerName + ":", failed);
        Assert.Contains("answered 1", failed);
        Assert.Equal(MingerStatus.AccessDenied, MingerProbe.Ask(f.E.MingerEndPoint, "erin@example.com"));
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(f.E.MingerEndPoint, "erin@example.com", from: Loopback.Outsider));
    }

    [Fact]
    public void A_disabled_account_on_a_peer_cannot_receive_with_450_4_2_1()
    {
        var r = f.A.Resolve("dis@example.com", "-NoCache");
        Assert.True(r.Result == "CannotReceive", r.ToString());
        Assert.Equal(f.B.PeerName, r.Peer);
        Assert.StartsWith("450 4.2.1", r.SmtpReply);
        Assert.Equal(MingerStatus.CannotReceive, MingerProbe.Ask(f.B.MingerEndPoint, "dis@example.com", f.B.Secret));
    }

    [Fact]
    public void Test_peer_reports_live_peers_a_wrong_secret_and_a_down_peer()
    {
        var run = f.Cluster.Invoke($"Test-DomainSharePeer {f.AWrong.Cfg}", $"Test-DomainSharePeer {f.ADown.Cfg}").AssertSuccess();
        var tests = run.All<PeerTest>().ToList();
        Assert.Equal(4, tests.Count);

        var wrong = tests[0];
        Assert.Equal(f.B.PeerName, wrong.Name);
        Assert.True(wrong.Reachable, run.ToString());
        Assert.False(wrong.SecretAccepted);
        Assert.Equal(2, wrong.Status);
        Assert.False(wrong.Passed);
        Assert.False(string.IsNullOrEmpty(wrong.Error));

        var live = tests[1];
        Assert.Equal(f.C.PeerName, live.Name);
        Assert.True(live.Reachable && live.SecretAccepted && live.Passed, run.ToString());
        Assert.Equal(5, live.Status);
        Assert.NotNull(live.RoundTrip);
        Assert.Equal($"{f.C.Address}:{f.C.MingerPort}", live.MingerEndpoint);

        Assert.True(tests[2].Passed, run.ToString()); // B with its right secret
        var down = tests[3];
        Assert.Equal(f.Down.PeerName, down.Name);
        Assert.False(down.Reachable);
        Assert.False(down.SecretAccepted);
        Assert.Null(down.Status);
    }

    [Fact]
    public void Get_relay_shows_the_running_process_its_endpoint_and_counters_that_grow()
    {
        var before = f.Cluster.GetRelay(f.C);
        Assert.True(before.Running);
        Assert.Equal(f.C.State!.ProcessId, before.ProcessId);
        Assert.True(Cluster.IsAlive(before.ProcessId!.Value, f.C.ConfigPath));
        Assert.Equal($"{f.C.Address}:{f.C.MingerPort}", before.MingerEndpoint);
        Assert.Null(before.ConfigurationError);

        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(f.C.MingerEndPoint, "carol@example.com", f.C.Secret));
        Assert.Equal(MingerStatus.Unknown, MingerProbe.Ask(f.C.MingerEndPoint, Nobody, f.C.Secret));
        Assert.Equal(MingerStatus.BadCredentials, MingerProbe.Ask(f.C.MingerEndPoint, Nobody));

        var after = f.Cluster.GetRelay(f.C);
        Assert.Equal(before.ProcessId, after.ProcessId);
        Assert.True(after.Counter("MingerReceived") >= before.Counter("MingerReceived") + 3);
        Assert.True(after.Counter("MingerAnswered5Exists") >= before.Counter("MingerAnswered5Exists") + 1);
        Assert.True(after.Counter("MingerAnswered3Unknown") >= before.Counter("MingerAnswered3Unknown") + 1);
        Assert.True(after.Counter("MingerAnswered2BadCredentials") >= before.Counter("MingerAnswered2BadCredentials") + 1);
    }

    [Fact]
    public void A_second_relay_on_the_same_configuration_is_refused_and_the_first_keeps_running()
    {
        int pid = f.B.State!.ProcessId;
        var run = f.Cluster.Invoke($"Start-DomainShareRelay {f.B.Cfg}");
        Assert.Equal("RelayAlreadyRunning,DomainShare.Commands.StartDomainShareRelayCommand", Assert.Single(run.ErrorIds));
        Assert.Contains(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), run.Errors[0].Message);
        Assert.Empty(run.Objects);
        Assert.Equal(pid, f.B.State!.ProcessId);
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(f.B.MingerEndPoint, "bob@example.com", f.B.Secret));
    }
}
