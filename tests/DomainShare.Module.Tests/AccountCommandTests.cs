namespace DomainShare.Module.Tests;

/// <summary>New/Get/Set/Remove-DomainShareAccount and Test-DomainShareConsistency driven as a user's script (peers: see the end-to-end tests).</summary>
public sealed class AccountCommandTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public AccountCommandTests()
        => ps.Run("Initialize-DomainShare mx1.example.com; Add-DomainShareDomain example.com -Shared; Add-DomainShareDomain example.org").AssertSuccess();

    public void Dispose() => ps.Dispose();

    private string DataDir => Path.Combine(ps.Directory, "data");

    [Fact]
    public void New_creates_the_account_and_its_maildir()
    {
        var account = ps.Run("New-DomainShareAccount Ann.Smith@Example.com -DisplayName 'Ann Smith' -Quota 500MB").AssertSuccess().Single("DomainShare.DomainShareAccount");
        Assert.Equal("Ann.Smith@example.com", account.Prop("Address"));
        Assert.Equal("Ann Smith", account.Prop("DisplayName"));
        Assert.Equal(500L * 1024 * 1024, account.Prop("Quota"));
        Assert.Equal(true, account.Prop("Enabled"));
        var maildir = (string)account.Prop("Maildir")!;
        Assert.StartsWith(DataDir, maildir);
        foreach (var sub in new[] { "tmp", "new", "cur" })
            Assert.True(Directory.Exists(Path.Combine(maildir, sub)), sub);
        Assert.True(File.Exists(Path.Combine(DataDir, "accounts.db")));
    }

    [Theory]
    [InlineData("''", "InvalidAddress")]
    [InlineData("'no-at-sign'", "InvalidAddress")]
    [InlineData("'a..b@example.com'", "InvalidAddress")]
    [InlineData("'\"with space\"@example.com'", "InvalidAddress")]
    [InlineData("'user@elsewhere.net'", "DomainNotHosted")]
    public void Bad_addresses_are_refused_with_a_specific_error(string address, string errorId)
    {
        var r = ps.Run($"New-DomainShareAccount {address}");
        Assert.Equal($"{errorId},DomainShare.Commands.NewDomainShareAccountCommand", Assert.Single(r.ErrorIds));
        Assert.Empty(ps.Run("Get-DomainShareAccount").AssertSuccess().Output);
    }

    [Fact]
    public void Internationalised_local_parts_are_accepted()
    {
        var account = ps.Run("New-DomainShareAccount 'josé@example.com'").AssertSuccess().Single("DomainShare.DomainShareAccount");
        Assert.Equal("josé@example.com", account.Prop("Address"));
        Assert.True(Directory.Exists((string)account.Prop("Maildir")!));
    }

    [Fact]
    public void An_address_is_unique_whatever_its_case()
    {
        ps.Run("New-DomainShareAccount ann@example.com").AssertSuccess();
        var r = ps.Run("New-DomainShareAccount Ann@EXAMPLE.com");
        Assert.Equal("AccountAlreadyExists,DomainShare.Commands.NewDomainShareAccountCommand", Assert.Single(r.ErrorIds));
        Assert.Single(ps.Run("Get-DomainShareAccount").AssertSuccess().Output);
    }

    [Fact]
    public void Csv_import_binds_by_property_name_and_reports_bad_rows_without_stopping()
    {
        var csv = Path.Combine(ps.Directory, "users.csv");
        File.WriteAllText(csv, "Address,DisplayName\nann@example.com,Ann\nbad address,Broken\ncarl@example.org,Carl\nann@example.com,Ann again\ndana@nowhere.net,Dana\n");
        // Import-Csv is not in the core engine: parse the CSV the way it would, into objects with Address and DisplayName.
        var r = ps.Run($$"""
            $lines = [IO.File]::ReadAllLines('{{csv}}')
            $lines[1..($lines.Length - 1)] | ForEach-Object { $f = $_.Split(','); [pscustomobject]@{ Address = $f[0]; DisplayName = $f[1] } } |
                New-DomainShareAccount
            """);
        Assert.Equal(2, r.Output.Count);
        Assert.Equal(["ann@example.com", "carl@example.org"], r.Output.Select(o => o.Prop("Address")));
        Assert.Equal("Carl", r.Output[1].Prop("DisplayName"));
        Assert.Equal(
            ["InvalidAddress,DomainShare.Commands.NewDomainShareAccountCommand", "AccountAlreadyExists,DomainShare.Commands.NewDomainShareAccountCommand", "DomainNotHosted,DomainShare.Commands.NewDomainShareAccountCommand"],
            r.ErrorIds);
        Assert.Equal(["bad address", "ann@example.com", "dana@nowhere.net"], r.Errors.Select(e => e.TargetObject));
        Assert.Contains(r.Progress, p => p.Activity == "Creating accounts");
    }

    [Fact]
    public void WhatIf_creates_nothing()
    {
        var r = ps.Run("New-DomainShareAccount ann@example.com -WhatIf").AssertSuccess();
        Assert.Contains("What if:", r.HostText);
        Assert.Contains("account 'ann@example.com'", r.HostText);
        Assert.Empty(ps.Run("Get-DomainShareAccount").AssertSuccess().Output);
        Assert.False(Directory.Exists(Path.Combine(DataDir, "mail", "example.com", "ann")));
    }

    [Fact]
    public void Get_filters_by_wildcard_and_domain_and_reports_missing_addresses()
    {
        ps.Run("'ann@example.com','bob@example.com','carl@example.org' | New-DomainShareAccount").AssertSuccess();
        Assert.Equal(["ann@example.com", "bob@example.com"], ps.Run("Get-DomainShareAccount -Domain example.com").AssertSuccess().Output.Select(o => o.Prop("Address")));
        Assert.Equal(["ann@example.com"], ps.Run("Get-DomainShareAccount a*").AssertSuccess().Output.Select(o => o.Prop("Address")));
        var missing = ps.Run("Get-DomainShareAccount ghost@example.com");
        Assert.Equal("AccountNotFound,DomainShare.Commands.GetDomainShareAccountCommand", Assert.Single(missing.ErrorIds));
    }

    [Fact]
    public void Set_disables_renames_and_changes_the_quota()
    {
        ps.Run("New-DomainShareAccount ann@example.com -Quota 1GB").AssertSuccess();
        var a = ps.Run("Set-DomainShareAccount ann@example.com -Enabled $false -DisplayName 'Ann S' -PassThru").AssertSuccess().Single("DomainShare.DomainShareAccount");
        Assert.Equal(false, a.Prop("Enabled"));
        Assert.Equal("Ann S", a.Prop("DisplayName"));
        Assert.Equal(1024L * 1024 * 1024, a.Prop("Quota"));
        a = ps.Run("Get-DomainShareAccount ann@example.com | Set-DomainShareAccount -ClearQuota -PassThru").AssertSuccess().Single("DomainShare.DomainShareAccount");
        Assert.Null(a.Prop("Quota"));
        var missing = ps.Run("Set-DomainShareAccount ghost@example.com -Enabled $true");
        Assert.Equal("AccountNotFound,DomainShare.Commands.SetDomainShareAccountCommand", Assert.Single(missing.ErrorIds));
        var contradiction = ps.Run("Set-DomainShareAccount ann@example.com -Quota 1 -ClearQuota");
        Assert.Equal("InvalidQuota,DomainShare.Commands.SetDomainShareAccountCommand", Assert.Single(contradiction.ErrorIds));
    }

    [Fact]
    public void Remove_is_high_impact_and_keeps_the_maildir_unless_asked()
    {
        var maildir = (string)ps.Run("New-DomainShareAccount ann@example.com; New-DomainShareAccount bob@example.com").AssertSuccess().Output[0].Prop("Maildir")!;
        var whatIf = ps.Run("Remove-DomainShareAccount ann@example.com -WhatIf").AssertSuccess();
        Assert.Contains("What if:", whatIf.HostText);
        Assert.Equal(2, ps.Run("Get-DomainShareAccount").AssertSuccess().Output.Count);

        ps.Host.Choices.Enqueue(2); // No
        ps.Run("Remove-DomainShareAccount ann@example.com").AssertSuccess();
        Assert.Equal(2, ps.Run("Get-DomainShareAccount").AssertSuccess().Output.Count);

        ps.Run("Remove-DomainShareAccount ann@example.com -Force").AssertSuccess();
        Assert.True(Directory.Exists(maildir));
        var bobDir = (string)ps.Run("Get-DomainShareAccount bob@example.com").AssertSuccess().Output[0].Prop("Maildir")!;
        ps.Run("Get-DomainShareAccount bob@example.com | Remove-DomainShareAccount -RemoveMailbox -Confirm:$false").AssertSuccess();
        Assert.False(Directory.Exists(bobDir));
        Assert.Empty(ps.Run("Get-DomainShareAccount").AssertSuccess().Output);
    }

    [Fact]
    public void Consistency_with_no_peers_reports_nothing_and_refuses_an_unshared_domain()
    {
        ps.Run("New-DomainShareAccount ann@example.com").AssertSuccess();
        Assert.Empty(ps.Run("Test-DomainShareConsistency").AssertSuccess().Output);
        var r = ps.Run("Test-DomainShareConsistency -Domain example.org");
        Assert.Equal("DomainNotHosted,DomainShare.Commands.TestDomainShareConsistencyCommand", Assert.Single(r.ErrorIds));
    }

    [Fact]
    public void An_unreachable_peer_refuses_creation_unless_skipped_with_a_warning()
    {
        // 127.0.0.1 port 9 (discard): nothing answers Minger there.
        ps.Run("Set-DomainShareConfig -MingerTimeout 200ms -MingerRetries 0; Add-DomainSharePeer 127.0.0.1 -MingerPort 9").AssertSuccess();
        var refused = ps.Run("New-DomainShareAccount ann@example.com");
        Assert.Equal("PeerUnreachable,DomainShare.Commands.NewDomainShareAccountCommand", Assert.Single(refused.ErrorIds));
        Assert.Contains("127.0.0.1", refused.Errors[0].Exception.Message);
        Assert.Empty(ps.Run("Get-DomainShareAccount").AssertSuccess().Output);

        var skipped = ps.Run("New-DomainShareAccount ann@example.com -SkipUnreachablePeer").AssertSuccess();
        Assert.Single(skipped.Output);
        Assert.Contains(skipped.Warnings, w => w.Contains("127.0.0.1"));

        // -Force is not a way around the check: the parameter does not exist.
        Assert.NotEmpty(ps.Run("New-DomainShareAccount bob@example.com -Force").Errors);
        // A domain that is not shared never asks the peers.
        Assert.Single(ps.Run("New-DomainShareAccount bob@example.org").AssertSuccess().Output);
    }
}
