namespace DomainShare.Shell.Tests;

/// <summary>Exit codes as pwsh gives them, so a scheduled task or CI step can trust them.</summary>
public sealed class ExitCodeTests
{
    [Fact]
    public void Exit_in_a_command_becomes_the_exit_code()
    {
        using var sandbox = new ShellSandbox();
        sandbox.Command("'before'; exit 7; 'after'").AssertExit(7);
    }

    [Fact]
    public void Exit_in_a_script_file_becomes_the_exit_code_even_from_inside_a_function()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("exits.ps1", """
            function Stop-Here([int]$Code) { exit $Code }
            'before'
            Stop-Here 9
            'after'
            """);
        var result = sandbox.Run("-File", script).AssertExit(9);
        Assert.Equal(["before"], result.StdoutLines);
    }

    [Fact]
    public void A_script_file_without_exit_succeeds_even_after_a_non_terminating_error()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("soft.ps1", "Get-DomainSharePeer nosuch.example.net\n");
        var result = sandbox.Run("-File", script).AssertExit(0);
        Assert.Contains("No DomainShare configuration", result.Stderr);
    }

    [Fact]
    public void A_terminating_error_exits_1_with_the_message_on_stderr_only()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("'before'; throw 'the sky fell'; 'after'").AssertExit(1);
        Assert.Contains("the sky fell", result.Stderr);
        Assert.DoesNotContain("the sky fell", result.Stdout);
        Assert.Equal(["before"], result.StdoutLines);
    }

    [Fact]
    public void A_terminating_error_in_a_script_file_shows_where_it_happened()
    {
        using var sandbox = new ShellSandbox();
        string script = sandbox.WriteScript("throws.ps1", "'before'\nthrow 'the sky fell'\n");
        var result = sandbox.Run(script).AssertExit(1);
        Assert.Contains("the sky fell", result.Stderr);
        Assert.Contains("throws.ps1:2", result.Stderr);
        Assert.Equal(["before"], result.StdoutLines);
    }

    [Fact]
    public void ErrorActionPreference_Stop_turns_a_cmdlet_error_into_exit_1()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Command("$ErrorActionPreference = 'Stop'; Get-DomainSharePeer; 'not reached'").AssertExit(1);
        Assert.Contains("No DomainShare configuration", result.Stderr);
        Assert.Empty(result.StdoutLines);
    }

    [Fact]
    public void A_command_exits_1_when_its_last_statement_failed_and_0_when_a_later_one_succeeded()
    {
        using var sandbox = new ShellSandbox();
        sandbox.Command("Get-DomainSharePeer").AssertExit(1);
        sandbox.Command("Get-DomainSharePeer; 'recovered'").AssertExit(0);
    }

    [Theory]
    [InlineData("-Command")]
    [InlineData("-File")]
    public void A_parse_error_exits_1_with_the_message_on_stderr(string mode)
    {
        using var sandbox = new ShellSandbox();
        const string broken = "'never printed'\n$x = (1 +\n";
        var result = mode == "-File" ? sandbox.Run("-File", sandbox.WriteScript("broken.ps1", broken)) : sandbox.Command(broken);
        result.AssertExit(1);
        Assert.Contains("You must provide a value expression following the '+' operator.", result.Stderr);
        Assert.Empty(result.StdoutLines);
    }

    [Fact]
    public async Task Ctrl_C_stops_the_script_and_exits_130()
    {
        using var sandbox = new ShellSandbox();
        using var process = sandbox.Start("-Command", "'ready'; while ($true) { [System.Threading.Thread]::Sleep(50) }");
        try
        {
            process.StandardInput.Close();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.Equal("ready", await process.StandardOutput.ReadLineAsync().WaitAsync(ShellSandbox.DefaultTimeout));

            ShellSandbox.Interrupt(process);

            using var timeout = new CancellationTokenSource(ShellSandbox.DefaultTimeout);
            await process.WaitForExitAsync(timeout.Token);
            Assert.Equal(130, process.ExitCode);
            Assert.Equal("", await stderr);
        }
        finally
        {
            ShellSandbox.KillIfRunning(process);
        }
    }
}
