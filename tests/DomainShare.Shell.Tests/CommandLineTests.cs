namespace DomainShare.Shell.Tests;

/// <summary>The pwsh-style command line: -Command, -File with the script's own parameters, and the host's options.</summary>
public sealed class CommandLineTests
{
    private const string ParameterScript = """
        param([string]$Name, [int]$Count = 1, [switch]$Loud, [Parameter(ValueFromRemainingArguments)] [string[]]$Rest)
        "Name=$Name"
        "Count=$Count"
        "Loud=$Loud"
        "Rest=$($Rest -join ',')"
        "Root=$PSScriptRoot"
        """;

    [Fact]
    public void File_arguments_bind_positionally_and_by_name_like_pwsh_File()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("params.ps1", ParameterScript);

        var result = sandbox.Run("-File", script, "alpha", "-Count", "3", "-Loud", "extra1", "extra2").AssertExit(0).AssertNoErrors();
        Assert.Equal(["Name=alpha", "Count=3", "Loud=True", "Rest=extra1,extra2", $"Root={sandbox.Directory}"], result.StdoutLines);
    }

    [Fact]
    public void A_bare_script_path_is_File_and_colon_forms_bind_values_and_switches()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("params.ps1", ParameterScript);

        var result = sandbox.Run(script, "-Name:beta", "-Loud:$false", "-Count:", "5").AssertExit(0).AssertNoErrors();
        Assert.Equal(["Name=beta", "Count=5", "Loud=False", "Rest=", $"Root={sandbox.Directory}"], result.StdoutLines);
    }

    [Fact]
    public void A_script_without_a_param_block_gets_its_arguments_in_args()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("args.ps1", "\"args=$($args -join '|')\"\n");
        var result = sandbox.Run("-f", script, "one", "two words").AssertExit(0);
        Assert.Equal(["args=one|two words"], result.StdoutLines);
    }

    [Fact]
    public void Command_takes_the_remaining_arguments_as_the_script_text()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run("-NoProfile", "-c", "'joined", "by", "spaces'").AssertExit(0).AssertNoErrors();
        Assert.Equal(["joined by spaces"], result.StdoutLines);
    }

    [Fact]
    public void The_module_is_imported_from_the_copy_next_to_the_host()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("(Get-Module DomainShare).ModuleBase").AssertExit(0).AssertNoErrors();
        Assert.Equal(Path.GetFullPath(Path.Combine(ShellSandbox.ShellDirectory, "Modules", "DomainShare")), Assert.Single(result.StdoutLines));
    }

    [Theory]
    [InlineData("-Help")]
    [InlineData("-?")]
    [InlineData("-h")]
    public void Help_prints_the_usage(string option)
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run(option).AssertExit(0).AssertNoErrors();
        Assert.Contains("Usage: domainshare", result.Stdout);
        Assert.Contains("-Command", result.Stdout);
    }

    [Fact]
    public void Version_prints_the_module_version()
    {
        using var sandbox = new ShellSandbox();
        string manifest = File.ReadAllText(Path.Combine(ShellSandbox.ShellDirectory, "Modules", "DomainShare", "DomainShare.psd1"));
        string version = System.Text.RegularExpressions.Regex.Match(manifest, @"ModuleVersion\s*=\s*'([0-9.]+)'").Groups[1].Value;
        var result = sandbox.Run("-Version").AssertExit(0).AssertNoErrors();
        Assert.Equal([$"DomainShare {version}"], result.StdoutLines);
    }

    [Fact]
    public void No_arguments_prints_the_usage_to_stderr_and_exits_2()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run().AssertExit(2);
        Assert.Contains("Usage: domainshare", result.Stderr);
        Assert.Empty(result.Stdout);
    }

    [Theory]
    [InlineData("-Bogus")]
    [InlineData("-Command")]
    [InlineData("-File")]
    [InlineData("-File", "no-such-script.ps1")]
    public void A_bad_command_line_exits_64(params string[] args)
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run(args).AssertExit(64);
        Assert.StartsWith("domainshare: ", result.Stderr);
    }

    [Fact]
    public void A_confirmation_prompt_without_a_terminal_fails_at_once_instead_of_waiting()
    {
        using var sandbox = new ShellSandbox();
        sandbox.Command("$null = Initialize-DomainShare mx1.example.com; Add-DomainSharePeer mx2.example.net").AssertExit(0);

        var result = sandbox.Command("Remove-DomainSharePeer mx2.example.net").AssertExit(1); // high impact: it asks
        Assert.Contains("cannot prompt", result.Stderr);
        Assert.Contains("mx2.example.net", sandbox.Command("Get-DomainSharePeer").AssertExit(0).Stdout);

        var nonInteractive = sandbox.Run("-NonInteractive", "-Command", "Remove-DomainSharePeer mx2.example.net").AssertExit(1);
        Assert.Contains("-NonInteractive", nonInteractive.Stderr);

        sandbox.Command("Remove-DomainSharePeer mx2.example.net -Confirm:$false").AssertExit(0).AssertNoErrors();
        Assert.DoesNotContain("mx2.example.net", sandbox.Command("Get-DomainSharePeer").Stdout);
    }
}
