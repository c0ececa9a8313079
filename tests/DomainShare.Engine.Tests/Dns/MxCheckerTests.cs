using DomainShare.Engine.DnsRecords;

namespace DomainShare.Engine.Tests.DnsRecords;

/// <summary>The comparison of live MX records with the plan, without DNS.</summary>
public class MxCheckerTests
{
    private static readonly ServerConfiguration Paris = new()
    {
        ServerName = "paris.example.com",
        Domains = [new DomainConfiguration("example.com", Shared: true), new DomainConfiguration("example.org", Shared: false)],
        Peers =
        [
            new PeerConfiguration { Name = "lyon.example.com" },
            new PeerConfiguration { Name = "nice.example.com", Enabled = false },
            new PeerConfiguration { Name = "192.0.2.10" },
        ],
    };

    private static MxCheckResult Check(string domain, params (int Preference, string Host)[] records)
        => MxChecker.Evaluate(Paris, MxPlanner.Plan(Paris, domain),
            new MxLookupResult(MxLookupStatus.Ok, [.. records.Select(r => new MxAnswer(r.Preference, r.Host))], "192.0.2.53:53", TimeSpan.FromMilliseconds(3)));

    [Fact]
    public void Every_server_present_with_a_backup_passes()
    {
        var r = Check("example.com", (10, "paris.example.com"), (20, "lyon.example.com"));

        Assert.True(r.Passed, r.Reason);
        Assert.Null(r.Reason);
        Assert.True(r.HasBackup);
        Assert.Empty(r.MissingServers);
        Assert.Empty(r.UnexpectedHosts);
        Assert.Equal(
        [
            new LiveMxRecord(10, "paris.example.com", MxTarget.ThisServer, MxRole.Primary),
            new LiveMxRecord(20, "lyon.example.com", MxTarget.Peer, MxRole.Backup),
        ], r.Records);
        Assert.All(r.Records, x => Assert.True(x.ConfiguredServer));
        Assert.Equal("192.0.2.53:53", r.DnsServer);
    }

    [Fact]
    public void Names_match_whatever_their_case_and_trailing_dot_and_the_primary_may_be_any_server()
    {
        var r = Check("example.com", (5, "LYON.Example.com."), (50, "Paris.EXAMPLE.COM."));

        Assert.True(r.Passed, r.Reason);
        Assert.Equal([MxTarget.Peer, MxTarget.ThisServer], r.Records.Select(x => x.Target));
        Assert.Equal([MxRole.Primary, MxRole.Backup], r.Records.Select(x => x.Role));
    }

    [Fact]
    public void A_configured_peer_missing_from_dns_is_listed_and_fails_the_check()
    {
        var r = Check("example.com", (10, "paris.example.com"));

        Assert.False(r.Passed);
        Assert.Equal(["lyon.example.com"], r.MissingServers);
        Assert.False(r.HasBackup);
        Assert.Equal("Lyon.example.com is not an MX target.", r.Reason);
    }

    [Fact]
    public void An_mx_pointing_at_an_unknown_host_is_flagged()
    {
        var r = Check("example.com", (10, "paris.example.com"), (20, "lyon.example.com"), (30, "mx.provider.net"));

        Assert.False(r.Passed);
        Assert.True(r.HasBackup);
        Assert.Equal(["mx.provider.net"], r.UnexpectedHosts);
        var unknown = r.Records[2];
        Assert.Equal(MxTarget.Unknown, unknown.Target);
        Assert.False(unknown.ConfiguredServer);
        Assert.Equal("The MX host mx.provider.net is not a configured server.", r.Reason);
    }

    [Fact]
    public void An_unshared_domain_with_its_one_mx_passes_without_a_backup()
    {
        var r = Check("example.org", (10, "paris.example.com"));

        Assert.True(r.Passed, r.Reason);
        Assert.False(r.HasBackup);
    }

    [Fact]
    public void An_mx_at_a_peer_for_an_unshared_domain_is_unexpected_although_the_peer_is_a_configured_server()
    {
        var r = Check("example.org", (10, "paris.example.com"), (20, "lyon.example.com"));

        Assert.False(r.Passed);
        Assert.True(r.Records[1].ConfiguredServer);
        Assert.True(r.HasBackup);
        Assert.Equal(["lyon.example.com"], r.UnexpectedHosts);
        Assert.Contains("example.org is not shared", r.Reason);
    }

    [Fact]
    public void Disabled_peers_ip_addresses_and_the_null_mx_are_not_configured_servers()
    {
        var r = Check("example.com", (10, "paris.example.com"), (20, "lyon.example.com"), (30, "nice.example.com"), (40, "192.0.2.10"));
        Assert.Equal([MxTarget.ThisServer, MxTarget.Peer, MxTarget.DisabledPeer, MxTarget.IpAddress], r.Records.Select(x => x.Target));
        Assert.False(r.Passed);
        Assert.Contains("nice.example.com is a disabled peer", r.Reason);
        Assert.Contains("192.0.2.10 is an IP address", r.Reason);

        var nullMx = Check("example.org", (0, ""));
        Assert.Equal(MxTarget.NullMx, Assert.Single(nullMx.Records).Target);
        Assert.False(nullMx.Passed);
        Assert.Contains("null MX", nullMx.Reason);
        Assert.Equal(["paris.example.com"], nullMx.MissingServers);
    }

    [Theory]
    [InlineData(MxLookupStatus.NonExistentDomain, "NXDOMAIN: the domain does not exist in DNS")]
    [InlineData(MxLookupStatus.Timeout, "no answer from 192.0.2.53:53 within 2s (2 tries)")]
    [InlineData(MxLookupStatus.NoMxRecords, "the domain has no MX record")]
    public void A_failed_lookup_fails_the_check_with_the_reason_and_every_server_missing(MxLookupStatus status, string error)
    {
        var r = MxChecker.Evaluate(Paris, MxPlanner.Plan(Paris, "example.com"), new MxLookupResult(status, [], "192.0.2.53:53", TimeSpan.FromSeconds(4), error));

        Assert.False(r.Passed);
        Assert.Equal(status, r.Status);
        Assert.Empty(r.Records);
        Assert.False(r.HasBackup);
        Assert.Equal(["paris.example.com", "lyon.example.com"], r.MissingServers);
        Assert.Equal($"The MX records of example.com could not be read: {error}.", r.Reason);
    }
}
