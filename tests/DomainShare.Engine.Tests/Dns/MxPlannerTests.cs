using DomainShare.Engine.DnsRecords;

namespace DomainShare.Engine.Tests.DnsRecords;

public class MxPlannerTests
{
    private static readonly ServerConfiguration Paris = new()
    {
        ServerName = "paris.example.com",
        Domains = [new DomainConfiguration("example.com", Shared: true), new DomainConfiguration("example.org", Shared: false)],
        Peers =
        [
            new PeerConfiguration { Name = "lyon.example.com", SmtpPort = 2525 },
            new PeerConfiguration { Name = "192.0.2.10" },
            new PeerConfiguration { Name = "nice.example.com", Enabled = false },
            new PeerConfiguration { Name = "[2001:db8::25]" },
            new PeerConfiguration { Name = "brest.example.net" },
        ],
    };

    [Fact]
    public void A_shared_domain_has_this_server_as_primary_and_every_enabled_peer_named_by_host_as_backup()
    {
        var plan = MxPlanner.Plan(Paris, "example.com");

        Assert.Equal(
        [
            "example.com. 3600 IN MX 10 paris.example.com.",
            "example.com. 3600 IN MX 20 lyon.example.com.",
            "example.com. 3600 IN MX 20 brest.example.net.",
        ], plan.Records.Select(r => r.ZoneLine));
        Assert.Equal([MxRole.Primary, MxRole.Backup, MxRole.Backup], plan.Records.Select(r => r.Role));
        Assert.Equal(["paris.example.com", "lyon.example.com", "brest.example.net"], plan.Hosts);
        Assert.True(plan.HasBackup);
        Assert.Equal(["192.0.2.10", "[2001:db8::25]"], plan.PeersNamedByAddress);
        Assert.Equal(["nice.example.com"], plan.DisabledPeers);
    }

    [Fact]
    public void A_peer_named_by_an_ip_address_is_left_out_with_a_warning_that_names_it_and_the_fix()
    {
        var warnings = MxPlanner.Plan(Paris, "example.com").Warnings;

        Assert.Equal(2, warnings.Count);
        Assert.Contains("'192.0.2.10' is named by an IP address and cannot be an MX target", warnings[0]);
        Assert.Contains("Add-DomainSharePeer", warnings[0]);
        Assert.Contains("'[2001:db8::25]'", warnings[1]);
        Assert.DoesNotContain(warnings, w => w.Contains("nice.example.com"));
    }

    [Fact]
    public void An_unshared_domain_has_only_this_server_and_a_warning_that_there_is_no_backup()
    {
        var plan = MxPlanner.Plan(Paris, "EXAMPLE.org.");

        var record = Assert.Single(plan.Records);
        Assert.Equal(new PlannedMxRecord("example.org", 10, "paris.example.com", MxRole.Primary, 3600), record);
        Assert.Equal("example.org. 3600 IN MX 10 paris.example.com.", record.ZoneLine);
        Assert.False(plan.HasBackup);
        Assert.Empty(plan.PeersNamedByAddress);
        var warning = Assert.Single(plan.Warnings);
        Assert.Contains("example.org is not shared", warning);
        Assert.Contains("no backup MX", warning);
    }

    [Fact]
    public void A_shared_domain_whose_peers_cannot_be_mx_targets_warns_about_each_peer_and_the_missing_backup()
    {
        var config = Paris with { Peers = [new PeerConfiguration { Name = "192.0.2.10" }, new PeerConfiguration { Name = "lyon.example.com", Enabled = false }] };

        var plan = MxPlanner.Plan(config, "example.com");

        Assert.Equal(["paris.example.com"], plan.Hosts);
        Assert.False(plan.HasBackup);
        Assert.Equal(2, plan.Warnings.Count);
        Assert.Contains("example.com is shared but no enabled peer can be its backup MX", plan.Warnings[1]);
    }

    [Fact]
    public void Zone_lines_are_in_ascii_while_names_stay_as_configured()
    {
        var config = new ServerConfiguration
        {
            ServerName = "mx.bücher.example",
            Domains = [new DomainConfiguration("bücher.example", true)],
            Peers = [new PeerConfiguration { Name = "köln.example" }],
        };

        var plan = MxPlanner.Plan(config, "xn--bcher-kva.example");

        Assert.Equal("bücher.example", plan.Domain);
        Assert.Equal(["mx.bücher.example", "köln.example"], plan.Hosts);
        Assert.Equal(
        [
            "xn--bcher-kva.example. 3600 IN MX 10 mx.xn--bcher-kva.example.",
            "xn--bcher-kva.example. 3600 IN MX 20 xn--kln-sna.example.",
        ], plan.Records.Select(r => r.ZoneLine));
    }

    [Fact]
    public void A_peer_with_this_servers_own_name_gives_no_second_record()
    {
        var config = Paris with { Peers = [new PeerConfiguration { Name = "paris.example.com" }, new PeerConfiguration { Name = "lyon.example.com" }] };

        Assert.Equal(["paris.example.com", "lyon.example.com"], MxPlanner.Plan(config, "example.com").Hosts);
    }

    [Theory]
    [InlineData("example.net")]
    [InlineData("not a domain")]
    [InlineData("*.example.com")]
    public void A_domain_that_is_not_hosted_is_DomainNotFound(string name)
    {
        var ex = Expect.Error(ErrorIds.DomainNotFound, () => MxPlanner.Plan(Paris, name));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
        Assert.Equal(name, ex.Target);
    }
}
