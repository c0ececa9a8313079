using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.Tests.DnsResponder;

namespace DomainShare.Module.Tests
{
/// <summary>
/// Get-DomainShareMxRecord and Test-DomainShareMx driven as a user's script. The DNS server of Test-DomainShareMx is a
/// real one on loopback: <see cref="LoopbackDnsResponder"/>, a UDP responder written for the tests (dnsmasq cannot be
/// installed by dotnet test alone).
/// </summary>
public sealed class MxCommandTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly LoopbackDnsResponder dns = new();

    public MxCommandTests() => ps.Run("""
        Initialize-DomainShare -ServerName paris.example.com
        Add-DomainShareDomain example.com -Shared
        Add-DomainShareDomain example.org
        Add-DomainSharePeer lyon.example.com:2525
        Add-DomainSharePeer 192.0.2.10
        Add-DomainSharePeer nice.example.com -Disabled
        """).AssertSuccess();

    public void Dispose()
    {
        dns.Dispose();
        ps.Dispose();
    }

    private ScriptResult TestMx(string arguments) => ps.Run($"Test-DomainShareMx {arguments} -DnsServer {dns.Address}");

    [Fact]
    public void Get_gives_this_server_as_primary_and_enabled_peers_as_backup_and_warns_about_a_peer_named_by_address()
    {
        var r = ps.Run("Get-DomainShareMxRecord example.com").AssertSuccess();

        Assert.Equal(2, r.Output.Count);
        Assert.All(r.Output, o => Assert.Equal("DomainShare.DomainShareMxRecord", o.BaseObject.GetType().FullName));
        Assert.Equal(["example.com. 3600 IN MX 10 paris.example.com.", "example.com. 3600 IN MX 20 lyon.example.com."],
            r.Output.Select(o => (string)o.Prop("ZoneLine")!));
        Assert.Equal([10, 20], r.Output.Select(o => (int)o.Prop("Priority")!));
        Assert.Equal(["paris.example.com", "lyon.example.com"], r.Output.Select(o => (string)o.Prop("Host")!));
        Assert.Equal(["Primary", "Backup"], r.Output.Select(o => (string)o.Prop("Role")!));
        Assert.All(r.Output, o => Assert.Equal("example.com", o.Prop("Domain")));
        Assert.All(r.Output, o => Assert.Equal(ps.ConfigPath, o.Prop("ConfigPath")));
        var warning = Assert.Single(r.Warnings);
        Assert.Contains("'192.0.2.10' is named by an IP address and cannot be an MX target", warning);
        Assert.DoesNotContain(r.Output, o => ((string)o.Prop("Host")!).Contains("nice"));
    }

    [Fact]
    public void AsZoneFile_prints_exact_zone_lines_once_per_domain_and_an_unshared_domain_warns_that_it_has_no_backup()
    {
        var r = ps.Run("Get-DomainShareMxRecord -Domain example.com, EXAMPLE.org, Example.COM. -AsZoneFile").AssertSuccess();

        Assert.All(r.Output, o => Assert.IsType<string>(o.BaseObject));
        Assert.Equal(
        [
            "example.com. 3600 IN MX 10 paris.example.com.",
            "example.com. 3600 IN MX 20 lyon.example.com.",
            "example.org. 3600 IN MX 10 paris.example.com.",
        ], r.Output.Select(o => (string)o.BaseObject));
        Assert.Equal(2, r.Warnings.Count);
        Assert.Contains("example.org is not shared: its only MX is paris.example.com, with no backup MX", r.Warnings[1]);
    }

    [Fact]
    public void Hosted_domains_can_be_piped_from_Get_DomainShareDomain()
    {
        var lines = ps.Run("Get-DomainShareDomain | Get-DomainShareMxRecord -AsZoneFile -WarningAction SilentlyContinue").AssertSuccess();
        Assert.Equal(
        [
            "example.com. 3600 IN MX 10 paris.example.com.",
            "example.com. 3600 IN MX 20 lyon.example.com.",
            "example.org. 3600 IN MX 10 paris.example.com.",
        ], lines.Output.Select(o => (string)o.BaseObject));

        var records = ps.Run("Get-DomainShareDomain example.org | Get-DomainShareMxRecord -WarningAction SilentlyContinue").AssertSuccess();
        Assert.Equal("example.org. 3600 IN MX 10 paris.example.com.", records.Single("DomainShare.DomainShareMxRecord").Prop("ZoneLine"));
    }

    [Fact]
    public void A_domain_that_is_not_hosted_is_a_DomainNotFound_error_and_the_others_are_still_printed()
    {
        var r = ps.Run("Get-DomainShareMxRecord nowhere.example, example.org -AsZoneFile -WarningAction SilentlyContinue");

        var error = Assert.Single(r.Errors);
        Assert.Equal("DomainNotFound,DomainShare.Commands.GetDomainShareMxRecordCommand", error.FullyQualifiedErrorId);
        Assert.Equal("nowhere.example", error.TargetObject);
        Assert.Equal(System.Management.Automation.ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
        Assert.Equal(["example.org. 3600 IN MX 10 paris.example.com."], r.Output.Select(o => (string)o.BaseObject));
    }

    [Fact]
    public void Get_shows_a_table()
    {
        var text = ps.Run("Get-DomainShareMxRecord example.com -WarningAction SilentlyContinue | Out-Default").AssertSuccess().HostText.WithoutAnsi();
        Assert.Matches(@"Domain\s+Priority\s+Host\s+Role\s+ZoneLine", text);
        // The host is 80 columns wide: the zone line is cut there, as it would be in a narrow console.
        Assert.Matches(@"example\.com\s+20\s+lyon\.example\.com\s+Backup\s+example\.com\. 3600 IN MX", text);
    }

    [Fact]
    public void Test_passes_when_every_configured_server_is_an_mx_with_a_backup()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (20, "LYON.example.com."));

        var r = TestMx("example.com").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(true, r.Prop("Passed"));
        Assert.Equal("Ok", r.Prop("Status"));
        Assert.Equal(true, r.Prop("HasBackup"));
        Assert.Null(r.Prop("Reason"));
        Assert.Empty((string[])r.Prop("MissingServers")!);
        Assert.Empty((string[])r.Prop("UnexpectedHosts")!);
        Assert.Equal(dns.Address, r.Prop("DnsServer"));
        Assert.Equal(ps.ConfigPath, r.Prop("ConfigPath"));
        var rows = Records(r);
        Assert.Equal([10, 20], rows.Select(o => (int)o.Prop("Priority")!));
        Assert.Equal(["paris.example.com", "LYON.example.com"], rows.Select(o => (string)o.Prop("Host")!));
        Assert.Equal(["ThisServer", "Peer"], rows.Select(o => (string)o.Prop("Target")!));
        Assert.Equal(["Primary", "Backup"], rows.Select(o => (string)o.Prop("Role")!));
        Assert.All(rows, o => Assert.Equal(true, o.Prop("ConfiguredServer")));
        Assert.Equal(["example.com/15"], dns.Questions);
    }

    private static List<System.Management.Automation.PSObject> Records(System.Management.Automation.PSObject result)
        => [.. ((System.Collections.IEnumerable)result.Prop("Records")!).Cast<object>().Select(o => new System.Management.Automation.PSObject(o))];

    [Fact]
    public void Test_lists_a_configured_peer_missing_from_the_mx_set_and_finds_no_backup()
    {
        dns.Mx("example.com", (10, "paris.example.com"));

        var r = TestMx("example.com").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(false, r.Prop("Passed"));
        Assert.Equal(["lyon.example.com"], (string[])r.Prop("MissingServers")!);
        Assert.Equal(false, r.Prop("HasBackup"));
        Assert.Equal("Lyon.example.com is not an MX target.", r.Prop("Reason"));
    }

    [Fact]
    public void Test_flags_an_mx_that_points_at_an_unknown_host()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (20, "lyon.example.com"), (30, "mx.provider.net"));

        var r = TestMx("example.com").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(false, r.Prop("Passed"));
        Assert.Equal(true, r.Prop("HasBackup"));
        Assert.Equal(["mx.provider.net"], (string[])r.Prop("UnexpectedHosts")!);
        var unknown = Records(r)[2];
        Assert.Equal("mx.provider.net", unknown.Prop("Host"));
        Assert.Equal(false, unknown.Prop("ConfiguredServer"));
        Assert.Equal("Unknown", unknown.Prop("Target"));
        Assert.Equal("The MX host mx.provider.net is not a configured server.", r.Prop("Reason"));
    }

    [Fact]
    public void Test_of_an_unshared_domain_with_its_only_mx_passes_without_a_backup()
    {
        dns.Mx("example.org", (10, "paris.example.com"));

        var r = TestMx("example.org").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(true, r.Prop("Passed"));
        Assert.Equal(false, r.Prop("HasBackup"));
        Assert.Single(Records(r));
    }

    [Fact]
    public void Test_reports_nxdomain_as_a_failed_result_not_an_error()
    {
        var r = TestMx("example.com").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(false, r.Prop("Passed"));
        Assert.Equal("NonExistentDomain", r.Prop("Status"));
        Assert.Equal("The MX records of example.com could not be read: NXDOMAIN: the domain does not exist in DNS.", r.Prop("Reason"));
        Assert.Equal(["paris.example.com", "lyon.example.com"], (string[])r.Prop("MissingServers")!);
    }

    [Fact]
    public void Test_reports_a_dns_server_that_never_answers_as_a_timeout()
    {
        dns.Behave("example.com", DnsBehavior.Silent);

        var r = TestMx("example.com -Timeout 300ms").AssertSuccess().Single("DomainShare.DomainShareMxTest");

        Assert.Equal(false, r.Prop("Passed"));
        Assert.Equal("Timeout", r.Prop("Status"));
        Assert.Equal($"The MX records of example.com could not be read: no answer from {dns.Address} within 300ms (2 tries).", r.Prop("Reason"));
        Assert.Equal(2, dns.Questions.Count);
    }

    [Fact]
    public void Test_takes_hosted_domains_from_the_pipeline_and_reports_unknown_ones()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (20, "lyon.example.com"));
        dns.Mx("example.org", (10, "paris.example.com"));

        var piped = ps.Run($"Get-DomainShareDomain | Test-DomainShareMx -DnsServer {dns.Address}").AssertSuccess();
        Assert.Equal(["example.com", "example.org"], piped.Output.Select(o => (string)o.Prop("Domain")!));
        Assert.All(piped.Output, o => Assert.Equal(true, o.Prop("Passed")));

        var mixed = TestMx("nowhere.example, example.org");
        Assert.Equal("DomainNotFound,DomainShare.Commands.TestDomainShareMxCommand", Assert.Single(mixed.ErrorIds));
        Assert.Equal("example.org", mixed.Single("DomainShare.DomainShareMxTest").Prop("Domain"));
    }

    [Theory]
    [InlineData("dns.example.com")]
    [InlineData("127.0.0.1:99999")]
    [InlineData("'[::1'")]
    public void An_invalid_dns_server_stops_the_command_before_any_query(string server)
    {
        // Terminating: two piped domains give one error, not one each, and no query is sent.
        var r = ps.Run($"'example.com', 'example.org' | Test-DomainShareMx -DnsServer {server}");

        var error = Assert.Single(r.Errors);
        Assert.Equal("InvalidDnsServer,DomainShare.Commands.TestDomainShareMxCommand", error.FullyQualifiedErrorId);
        Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, error.CategoryInfo.Category);
        Assert.Empty(r.Output);
        Assert.Empty(dns.Questions);
    }

    [Fact]
    public void Test_shows_a_table_with_the_records_and_the_reason()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (30, "mx.provider.net"));

        var text = ps.Run($"Test-DomainShareMx example.com -DnsServer {dns.Address} | Out-Default").AssertSuccess().HostText.WithoutAnsi();

        Assert.Matches(@"Domain\s+Passed\s+HasBackup\s+Records\s+Reaso", text);
        // Wrapped, not cut: in a narrow console the reason runs on over several lines.
        Assert.Matches(@"example\.com\s+False\s+False\s+10 paris\.example\.com, 30 mx\.provider\.net \(\?\)\s+Lyon", text);
        Assert.Contains("er.", text);
    }
}

internal static class AnsiText
{
    /// <summary>The host text without the ANSI colours PowerShell puts around table headers.</summary>
    public static string WithoutAnsi(this string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\x1b\[[0-9;]*m", "");
}
}

