namespace DomainShare.Module.Tests;

/// <summary>Add/Get/Set/Remove-DomainShareDomain driven as a user's script.</summary>
public sealed class DomainCommandTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public DomainCommandTests() => ps.Run("Initialize-DomainShare -ServerName mx1.example.com").AssertSuccess();

    public void Dispose() => ps.Dispose();

    [Fact]
    public void A_server_hosts_several_domains_each_shared_or_not()
    {
        ps.Run("Add-DomainShareDomain example.com -Shared; Add-DomainShareDomain Other.Example.ORG").AssertSuccess();
        var r = ps.Run("Get-DomainShareDomain").AssertSuccess();
        Assert.Equal(2, r.Output.Count);
        Assert.Equal("example.com", r.Output[0].Prop("Name"));
        Assert.Equal(true, r.Output[0].Prop("Shared"));
        Assert.Equal("other.example.org", r.Output[1].Prop("Name"));
        Assert.Equal(false, r.Output[1].Prop("Shared"));
        Assert.Contains("name: example.com\n    shared: true", ps.ConfigText);
        Assert.Contains("name: other.example.org\n    shared: false", ps.ConfigText);
    }

    [Theory]
    [InlineData("''", "InvalidDomainName")]
    [InlineData("'localhost'", "InvalidDomainName")]
    [InlineData("'exa mple.com'", "InvalidDomainName")]
    [InlineData("'-bad.com'", "InvalidDomainName")]
    [InlineData("'192.0.2.1'", "InvalidDomainName")]
    public void Bad_domain_names_are_refused_and_nothing_changes(string name, string errorId)
    {
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run($"Add-DomainShareDomain {name}");
        Assert.Equal($"{errorId},DomainShare.Commands.AddDomainShareDomainCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
    }

    [Fact]
    public void A_duplicate_domain_is_refused_without_force()
    {
        ps.Run("Add-DomainShareDomain example.com").AssertSuccess();
        var r = ps.Run("Add-DomainShareDomain EXAMPLE.com -Shared");
        Assert.Equal("DomainAlreadyExists,DomainShare.Commands.AddDomainShareDomainCommand", Assert.Single(r.ErrorIds));
        var replaced = ps.Run("Add-DomainShareDomain example.com -Shared -Force -PassThru").AssertSuccess().Single("DomainShare.DomainShareDomain");
        Assert.Equal(true, replaced.Prop("Shared"));
    }

    [Fact]
    public void Set_turns_sharing_on_and_off_through_the_pipeline()
    {
        ps.Run("'a.example.com','b.example.com','c.example.org' | Add-DomainShareDomain").AssertSuccess();
        ps.Run("Get-DomainShareDomain *.example.com | Set-DomainShareDomain -Shared $true").AssertSuccess();
        var shared = ps.Run("Get-DomainShareDomain | ForEach-Object Shared").AssertSuccess().Output.Select(o => o.BaseObject);
        Assert.Equal([true, true, false], shared);
        var off = ps.Run("Set-DomainShareDomain a.example.com -Shared $false -PassThru").AssertSuccess().Single("DomainShare.DomainShareDomain");
        Assert.Equal(false, off.Prop("Shared"));
    }

    [Fact]
    public void Remove_is_high_impact_honours_WhatIf_and_reports_unknown_domains()
    {
        ps.Run("Add-DomainShareDomain example.com -Shared").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        var whatIf = ps.Run("Remove-DomainShareDomain example.com -WhatIf").AssertSuccess();
        Assert.Contains("What if:", whatIf.HostText);
        Assert.Contains("domain 'example.com'", whatIf.HostText);
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));

        var unknown = ps.Run("Remove-DomainShareDomain nowhere.example -Confirm:$false");
        Assert.Equal("DomainNotFound,DomainShare.Commands.RemoveDomainShareDomainCommand", Assert.Single(unknown.ErrorIds));

        ps.Run("Get-DomainShareDomain | Remove-DomainShareDomain -Force").AssertSuccess();
        Assert.Empty(ps.Run("Get-DomainShareDomain").AssertSuccess().Output);
    }

    [Fact]
    public void Tab_completion_offers_hosted_domains()
    {
        ps.Run("'example.com','example.org' | Add-DomainShareDomain").AssertSuccess();
        var r = ps.Run($"$s = 'Set-DomainShareDomain -ConfigPath ''{ps.ConfigPath}'' -Name example.c'; (TabExpansion2 -inputScript $s -cursorColumn $s.Length).CompletionMatches | ForEach-Object CompletionText").AssertSuccess();
        Assert.Equal(["example.com"], r.Output.Select(o => o.BaseObject));
    }
}
