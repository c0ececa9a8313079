namespace DomainShare.Module.Tests;

/// <summary>Add/Get/Set/Remove/Enable/Disable-DomainSharePeer driven as a user's script.</summary>
public sealed class PeerCommandTests : IDisposable
{
    private const string Secret = "abcdefghijklmnop-secret";
    private readonly PowerShellSession ps = new();

    public PeerCommandTests() => ps.Run("Initialize-DomainShare -ServerName mx1.example.com").AssertSuccess();

    public void Dispose() => ps.Dispose();

    [Theory]
    [InlineData("mail.example.com", "mail.example.com", 25)]
    [InlineData("Mail.Example.COM:2525", "mail.example.com", 2525)]
    [InlineData("192.0.2.10", "192.0.2.10", 25)]
    [InlineData("192.0.2.10:587", "192.0.2.10", 587)]
    [InlineData("[2001:db8::10]", "[2001:db8::10]", 25)]
    [InlineData("[2001:DB8::10]:2525", "[2001:db8::10]", 2525)]
    public void Add_parses_the_name_and_smtp_port(string input, string name, int smtpPort)
    {
        var peer = ps.Run($"Add-DomainSharePeer '{input}' -PassThru").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal(name, peer.Prop("Name"));
        Assert.Equal(smtpPort, peer.Prop("SmtpPort"));
        Assert.Equal(4069, peer.Prop("MingerPort")); // the port after the colon is never the Minger port
        Assert.Contains(name, ps.ConfigText, StringComparison.Ordinal);
    }

    [Fact]
    public void Add_writes_the_peer_with_its_minger_port_secret_and_state_to_the_yaml()
    {
        ps.Run($"Add-DomainSharePeer mx2.example.net:2525 -MingerPort 5000 -Secret '{Secret}' -Disabled").AssertSuccess();
        var yaml = ps.ConfigText;
        Assert.Contains("name: mx2.example.net", yaml);
        Assert.Contains("smtpPort: 2525", yaml);
        Assert.Contains("mingerPort: 5000", yaml);
        Assert.Contains($"secret: '{Secret}'", yaml);
        Assert.Contains("enabled: false", yaml);
        var peer = ps.Run("Get-DomainSharePeer mx2.example.net").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal(true, peer.Prop("HasSecret"));
        Assert.Equal(false, peer.Prop("Enabled"));
        Assert.Equal("mx2.example.net:2525", peer.Prop("SmtpAddress"));
    }

    [Theory]
    [InlineData("''", "InvalidPeerName")]
    [InlineData("'host:0'", "InvalidPort")]
    [InlineData("'host:70000'", "InvalidPort")]
    [InlineData("'host:abc'", "InvalidPort")]
    [InlineData("'mail server.example.com'", "InvalidPeerName")]
    [InlineData("'2001:db8::1:25'", "InvalidPeerName")]
    [InlineData("'2001:db8::1'", "InvalidPeerName")]
    [InlineData("'[2001:db8::1'", "InvalidPeerName")]
    [InlineData("'999.1.2.3'", "InvalidPeerName")]
    [InlineData("'-bad.example.com'", "InvalidPeerName")]
    [InlineData("'under_score.example.com'", "InvalidPeerName")]
    public void Bad_names_are_refused_with_a_specific_error_and_nothing_changes(string name, string errorId)
    {
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run($"Add-DomainSharePeer {name}");
        Assert.Equal($"{errorId},DomainShare.Commands.AddDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(System.Management.Automation.ErrorCategory.InvalidArgument, r.Errors[0].CategoryInfo.Category);
        Assert.False(string.IsNullOrEmpty(r.Errors[0].ErrorDetails?.RecommendedAction));
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
    }

    [Theory]
    [InlineData("-MingerPort 0", "InvalidPort")]
    [InlineData("-MingerPort 65536", "InvalidPort")]
    [InlineData("-Secret 'fifteen-chars!!'", "InvalidSecret")]
    public void Bad_ports_and_short_secrets_are_refused(string parameters, string errorId)
    {
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run($"Add-DomainSharePeer mx2.example.net {parameters}");
        Assert.Equal($"{errorId},DomainShare.Commands.AddDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
        Assert.DoesNotContain("fifteen-chars!!", r.Errors[0].ToString());
    }

    [Fact]
    public void An_existing_peer_is_refused_without_force_and_replaced_with_it()
    {
        ps.Run("Add-DomainSharePeer mx2.example.net:2525").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run("Add-DomainSharePeer MX2.example.net:26");
        Assert.Equal("PeerAlreadyExists,DomainShare.Commands.AddDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(System.Management.Automation.ErrorCategory.ResourceExists, r.Errors[0].CategoryInfo.Category);
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));

        var replaced = ps.Run("Add-DomainSharePeer mx2.example.net:26 -Force -PassThru").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal(26, replaced.Prop("SmtpPort"));
        Assert.Single(ps.Run("Get-DomainSharePeer").AssertSuccess().Output);
    }

    [Fact]
    public void WhatIf_describes_the_target_and_leaves_the_file_untouched()
    {
        ps.Run("Add-DomainSharePeer mx2.example.net").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        foreach (var script in new[]
                 {
                     "Add-DomainSharePeer mx3.example.net:2525 -WhatIf",
                     "Set-DomainSharePeer mx2.example.net -MingerPort 9 -WhatIf",
                     "Disable-DomainSharePeer mx2.example.net -WhatIf",
                     "Remove-DomainSharePeer mx2.example.net -WhatIf",
                     "Remove-DomainSharePeer mx2.example.net -Force -WhatIf",
                 })
        {
            var r = ps.Run(script).AssertSuccess();
            Assert.Contains("What if:", r.HostText);
            Assert.Contains("peer 'mx", r.HostText);
            Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
        }
    }

    [Fact]
    public void Get_with_wildcards_returns_the_matching_peers_in_order()
    {
        ps.Run("'mx1.example.net','mx2.example.net','relay.example.org' | Add-DomainSharePeer").AssertSuccess();
        var names = ps.Run("Get-DomainSharePeer mx* | ForEach-Object Name").AssertSuccess().Output.Select(o => o.BaseObject).ToList();
        Assert.Equal(["mx1.example.net", "mx2.example.net"], names);
        Assert.Empty(ps.Run("Get-DomainSharePeer nomatch*").AssertSuccess().Output);
        var missing = ps.Run("Get-DomainSharePeer absent.example.net");
        Assert.Equal("PeerNotFound,DomainShare.Commands.GetDomainSharePeerCommand", Assert.Single(missing.ErrorIds));
        Assert.Equal("absent.example.net", missing.Errors[0].TargetObject);
    }

    [Fact]
    public void Bracketed_ipv6_names_are_literal_not_wildcard_classes()
    {
        ps.Run("Add-DomainSharePeer '[2001:db8::1]:2525'").AssertSuccess();
        var peer = ps.Run("Get-DomainSharePeer '[2001:db8::1]'").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal("[2001:db8::1]:2525", peer.Prop("SmtpAddress"));
        ps.Run("Remove-DomainSharePeer '[2001:db8::1]' -Confirm:$false").AssertSuccess();
        Assert.Empty(ps.Run("Get-DomainSharePeer").AssertSuccess().Output);
    }

    [Fact]
    public void Get_piped_into_Remove_removes_exactly_the_selection()
    {
        ps.Run("'mx1.example.net','mx2.example.net','relay.example.org' | Add-DomainSharePeer").AssertSuccess();
        ps.Run("Get-DomainSharePeer mx* | Remove-DomainSharePeer -Confirm:$false").AssertSuccess();
        var left = ps.Run("Get-DomainSharePeer | ForEach-Object Name").AssertSuccess().Output.Select(o => o.BaseObject);
        Assert.Equal(["relay.example.org"], left);
        Assert.DoesNotContain("mx1.example.net", ps.ConfigText);
    }

    [Fact]
    public void Objects_with_a_Name_property_bind_by_property_name()
    {
        var script = """
            [pscustomobject]@{ Name = 'a.example.net:2525'; MingerPort = 4070 },
            [pscustomobject]@{ Name = 'b.example.net' } | Add-DomainSharePeer -PassThru
            """;
        var r = ps.Run(script).AssertSuccess();
        Assert.Equal(2, r.Output.Count);
        Assert.Equal(4070, r.Output[0].Prop("MingerPort"));
        Assert.Equal(4069, r.Output[1].Prop("MingerPort"));
        ps.Run("[pscustomobject]@{ Name = 'a.example.net' } | Disable-DomainSharePeer").AssertSuccess();
        Assert.Equal(false, ps.Run("Get-DomainSharePeer a.example.net").AssertSuccess().Output[0].Prop("Enabled"));
    }

    [Fact]
    public void Remove_asks_for_confirmation_because_it_is_high_impact()
    {
        ps.Run("Add-DomainSharePeer mx2.example.net").AssertSuccess();
        ps.Host.Choices.Enqueue(2); // "No"
        var r = ps.Run("Remove-DomainSharePeer mx2.example.net").AssertSuccess();
        Assert.Contains("PROMPT:", r.HostText);
        Assert.Contains("mx2.example.net", ps.ConfigText);
        ps.Run("Remove-DomainSharePeer mx2.example.net -Force").AssertSuccess();
        Assert.DoesNotContain("mx2.example.net", ps.ConfigText);
    }

    [Fact]
    public void Remove_of_an_unknown_peer_reports_PeerNotFound()
    {
        var r = ps.Run("Remove-DomainSharePeer ghost.example.net -Confirm:$false");
        Assert.Equal("PeerNotFound,DomainShare.Commands.RemoveDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(System.Management.Automation.ErrorCategory.ObjectNotFound, r.Errors[0].CategoryInfo.Category);
    }

    [Fact]
    public void Set_changes_only_what_is_given()
    {
        ps.Run($"Add-DomainSharePeer mx2.example.net:2525 -Secret '{Secret}'").AssertSuccess();
        var peer = ps.Run("Set-DomainSharePeer mx2.example.net -MingerPort 4070 -PassThru").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal(2525, peer.Prop("SmtpPort"));
        Assert.Equal(4070, peer.Prop("MingerPort"));
        Assert.Equal(true, peer.Prop("HasSecret"));
        ps.Run("Set-DomainSharePeer mx2.example.net -ClearSecret -Enabled $false -SmtpPort 25").AssertSuccess();
        peer = ps.Run("Get-DomainSharePeer mx2.example.net").AssertSuccess().Single("DomainShare.DomainSharePeer");
        Assert.Equal(false, peer.Prop("HasSecret"));
        Assert.Equal(false, peer.Prop("Enabled"));
        Assert.Equal(25, peer.Prop("SmtpPort"));
        Assert.DoesNotContain(Secret, ps.ConfigText);
    }

    [Theory]
    [InlineData("-SmtpPort 0", "InvalidPort")]
    [InlineData("-MingerPort 70000", "InvalidPort")]
    [InlineData("-Secret 'short'", "InvalidSecret")]
    [InlineData("-Secret 'abcdefghijklmnopq' -ClearSecret", "InvalidSetting")]
    public void Set_refuses_bad_values_and_changes_nothing(string parameters, string errorId)
    {
        ps.Run("Add-DomainSharePeer mx2.example.net").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run($"Set-DomainSharePeer mx2.example.net {parameters}");
        Assert.Equal($"{errorId},DomainShare.Commands.SetDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
    }

    [Fact]
    public void Enable_and_Disable_toggle_the_state_with_wildcards()
    {
        ps.Run("'mx1.example.net','mx2.example.net' | Add-DomainSharePeer").AssertSuccess();
        var disabled = ps.Run("Disable-DomainSharePeer mx* -PassThru").AssertSuccess();
        Assert.All(disabled.Output, o => Assert.Equal(false, o.Prop("Enabled")));
        Assert.Equal(2, disabled.Output.Count);
        ps.Run("Enable-DomainSharePeer mx1.example.net").AssertSuccess();
        var states = ps.Run("Get-DomainSharePeer | ForEach-Object Enabled").AssertSuccess().Output.Select(o => o.BaseObject);
        Assert.Equal([true, false], states);
    }

    [Fact]
    public void No_output_or_error_ever_contains_the_secret()
    {
        ps.Run($"Add-DomainSharePeer mx2.example.net -Secret '{Secret}'").AssertSuccess();
        var r = ps.Run("""
            Get-DomainSharePeer | ForEach-Object { $_.psobject.Properties | ForEach-Object { "$($_.Name)=$($_.Value)" } }
            Get-DomainShareConfig | ForEach-Object { $_.psobject.Properties | ForEach-Object { "$($_.Name)=$($_.Value)" } }
            Add-DomainSharePeer mx2.example.net -Secret 'abcdefghijklmnop-secret'
            Set-DomainSharePeer mx2.example.net -Secret 'short1'
            """);
        var all = string.Join("\n", r.Output.Select(o => o.ToString())) + string.Join("\n", r.Errors.Select(e => e + " " + e.ErrorDetails + " " + e.TargetObject + " " + e.Exception)) + r.HostText;
        Assert.DoesNotContain(Secret, all);
        Assert.DoesNotContain("short1", all);
        Assert.Equal(2, r.Errors.Count);
    }

    [Fact]
    public void Tab_completion_offers_configured_peer_names()
    {
        ps.Run("'mx1.example.net','mx2.example.net','relay.example.org' | Add-DomainSharePeer").AssertSuccess();
        var r = ps.Run($"$s = 'Remove-DomainSharePeer -ConfigPath ''{ps.ConfigPath}'' -Name mx'; (TabExpansion2 -inputScript $s -cursorColumn $s.Length).CompletionMatches | ForEach-Object CompletionText").AssertSuccess();
        Assert.Equal(["mx1.example.net", "mx2.example.net"], r.Output.Select(o => o.BaseObject));
    }

    [Fact]
    public void A_missing_configuration_is_a_terminating_error_that_names_the_fix()
    {
        // A terminating error is caught by try/catch; a non-terminating one would let 'continued' through.
        var r = ps.Run("""
            try { Get-DomainSharePeer -ConfigPath ([IO.Path]::Combine($TestDir, 'nope.yaml')); 'continued' }
            catch { $_.FullyQualifiedErrorId; $_.ErrorDetails.RecommendedAction }
            """).AssertSuccess();
        Assert.Equal("ConfigurationNotFound,DomainShare.Commands.GetDomainSharePeerCommand", r.Output[0].BaseObject);
        Assert.Contains("Initialize-DomainShare", (string)r.Output[1].BaseObject);
    }
}
