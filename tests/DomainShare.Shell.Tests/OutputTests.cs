using System.Diagnostics;
using System.Text.RegularExpressions;

namespace DomainShare.Shell.Tests;

/// <summary>What reaches stdout and stderr: rendered by the engine's Out-Default, as pwsh renders it.</summary>
public sealed class OutputTests
{
    /// <summary>ESC, which starts every colour sequence. Compare ordinally: culture-aware search ignores control characters.</summary>
    private const string Escape = "\u001b";

    [Fact]
    public void Peers_render_as_the_modules_table_with_no_escape_sequences_when_redirected()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("""
            $null = Initialize-DomainShare mx1.example.com
            Add-DomainSharePeer mx2.example.net:2525 -Secret 'sixteen-chars-secret'
            Add-DomainSharePeer mx3.example.net -MingerPort 4070
            Get-DomainSharePeer
            """).AssertExit(0).AssertNoErrors();

        var lines = result.StdoutLines;
        int header = Array.FindIndex(lines, l => Regex.IsMatch(l, @"^Name\s+SmtpPort\s+MingerPort\s+Enabled\s+HasSecret$"));
        Assert.True(header >= 0, "No table header in:\n" + result.Stdout);
        Assert.Matches(@"^-+\s+-+\s+-+\s+-+\s+-+$", lines[header + 1]);
        Assert.Matches(@"^mx2\.example\.net\s+2525\s+4069\s+True\s+True$", lines[header + 2]);
        Assert.Matches(@"^mx3\.example\.net\s+25\s+4070\s+True\s+False$", lines[header + 3]);
        Assert.DoesNotContain(Escape, result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_terminal_gets_colour_and_NO_COLOR_takes_it_away()
    {
        // util-linux `script` (Debian's essential bsdutils) runs the host on a pseudo-terminal.
        Assert.True(File.Exists("/usr/bin/script"), "This test needs /usr/bin/script (util-linux) to provide a terminal.");
        using var sandbox = new ShellSandbox();
        sandbox.Command("$null = Initialize-DomainShare mx1.example.com; Add-DomainSharePeer mx2.example.net").AssertExit(0);

        string onTerminal = RunOnTerminal(sandbox, noColor: false);
        Assert.Contains($"{Escape}[32;1mName", onTerminal, StringComparison.Ordinal); // $PSStyle.Formatting.TableHeader
        Assert.Contains("mx2.example.net", onTerminal);

        string noColor = RunOnTerminal(sandbox, noColor: true);
        Assert.Contains("mx2.example.net", noColor);
        Assert.DoesNotContain($"{Escape}[3", noColor, StringComparison.Ordinal); // no SGR colour at all
        Assert.Matches(@"Name\s+SmtpPort", noColor);
    }

    private static string RunOnTerminal(ShellSandbox sandbox, bool noColor)
    {
        string command = $"'{ShellSandbox.Executable}' -Command Get-DomainSharePeer";
        sandbox.Environment["NO_COLOR"] = noColor ? "1" : null;
        sandbox.Environment["TERM"] = "xterm-256color";
        var start = new ProcessStartInfo("/usr/bin/script") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-q", "-e", "-c", command, "/dev/null" }) start.ArgumentList.Add(arg);
        foreach (var (name, value) in sandbox.Environment)
            if (value is null) start.Environment.Remove(name); else start.Environment[name] = value;
        start.Environment["DOMAINSHARE_CONFIG"] = sandbox.ConfigPath;
        start.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        foreach (var xdg in new[] { "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
            start.Environment[xdg] = Path.Combine(sandbox.Directory, "xdg", xdg);
        using var process = Process.Start(start)!;
        try
        {
            var output = process.StandardOutput.ReadToEndAsync();
            Assert.True(process.WaitForExit(ShellSandbox.DefaultTimeout), "domainshare on a terminal did not exit.");
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
            return output.Result;
        }
        finally
        {
            ShellSandbox.KillIfRunning(process);
        }
    }

    [Fact]
    public void A_secret_given_as_a_plain_string_or_from_the_environment_works_and_is_never_printed()
    {
        using var sandbox = new ShellSandbox();
        sandbox.Environment["SOME_VAR"] = "environment-secret-value";
        string script = sandbox.WriteScript("secrets.ps1", """
            $null = Initialize-DomainShare mx1.example.com
            Add-DomainSharePeer mx2.example.net -Secret 'sixteen-chars-secret' -PassThru
            Add-DomainSharePeer mx3.example.net -Secret $env:SOME_VAR -PassThru -Verbose
            Get-DomainSharePeer
            Get-DomainSharePeer mx3.example.net | ForEach-Object { $_.PSObject.Properties | ForEach-Object { '{0}={1}' -f $_.Name, $_.Value } }
            """);
        var result = sandbox.Run("-File", script).AssertExit(0).AssertNoErrors();

        Assert.Contains("HasSecret=True", result.Stdout);
        Assert.Matches(@"mx2\.example\.net\s+25\s+4069\s+True\s+True", result.Stdout);
        Assert.Matches(@"mx3\.example\.net\s+25\s+4069\s+True\s+True", result.Stdout);
        Assert.DoesNotContain("sixteen-chars-secret", result.Stdout);
        Assert.DoesNotContain("environment-secret-value", result.Stdout);
    }

    [Fact]
    public void A_failing_cmdlet_writes_its_error_with_the_ErrorId_to_stderr_only()
    {
        using var sandbox = new ShellSandbox();
        sandbox.Command("$null = Initialize-DomainShare mx1.example.com").AssertExit(0);

        // The default view (ConciseView) names the command and the message; NormalView adds the ErrorId.
        var concise = sandbox.Command("Get-DomainSharePeer nosuch.example.net; 'after the error'");
        concise.AssertExit(0); // the last statement succeeded
        Assert.Contains("Get-DomainSharePeer:", concise.Stderr);
        Assert.Contains("nosuch.example.net", concise.Stderr);
        Assert.Equal("after the error", Assert.Single(concise.StdoutLines));

        var normal = sandbox.Command("$ErrorView = 'NormalView'; Get-DomainSharePeer nosuch.example.net");
        normal.AssertExit(1);
        Assert.Contains("FullyQualifiedErrorId : PeerNotFound,DomainShare.Commands.GetDomainSharePeerCommand", normal.Stderr);
        Assert.Empty(normal.StdoutLines);
    }

    [Fact]
    public void Warnings_and_verbose_lines_are_prefixed_like_pwsh_and_progress_is_not_drawn()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("""
            & {
                [CmdletBinding()] param()
                $PSCmdlet.WriteWarning('careful')
                $PSCmdlet.WriteVerbose('detail')
                $PSCmdlet.WriteProgress([System.Management.Automation.ProgressRecord]::new(1, 'Working', 'half way'))
                'done'
            } -Verbose
            """).AssertExit(0).AssertNoErrors();

        Assert.Equal(["WARNING: careful", "VERBOSE: detail", "done"], result.StdoutLines);
    }

    [Fact]
    public void Get_Help_Full_shows_the_modules_help()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("Get-Help Add-DomainSharePeer -Full").AssertExit(0).AssertNoErrors();

        // The MAML help ships in the module's en-US folder. Were it missing, Get-Help would show only the generated
        // syntax: SYNOPSIS and the examples below come from the help file.
        Assert.Contains("NAME", result.Stdout);
        Assert.Contains("SYNOPSIS", result.Stdout);
        Assert.Contains("SYNTAX", result.Stdout);
        Assert.Contains("-Secret", result.Stdout);
        Assert.Contains("Example 1", result.Stdout, StringComparison.OrdinalIgnoreCase);

        // `help` is Get-Help here (the engine's own help function needs cmdlets the core engine lacks).
        Assert.Contains("SYNOPSIS", sandbox.Command("help Add-DomainSharePeer").AssertExit(0).AssertNoErrors().Stdout);
    }
}
