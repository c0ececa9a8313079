using System.Diagnostics;
using System.Management.Automation;
using System.Net;
using System.Net.Sockets;

namespace DomainShare.Module.Tests;

/// <summary>
/// Start-, Get- and Stop-DomainShareRelay driven as a user's script in the real engine. A background relay is a new
/// process of a PowerShell host: this test process is not one, so the tests that start one point
/// <c>$env:DOMAINSHARE_HOST</c> at the bundled host (built next to the staged module) and restore it afterwards. Every
/// relay a test starts is stopped, and killed by its process id if it outlives the test.
/// </summary>
public sealed class RelayCommandTests : IDisposable
{
    private readonly PowerShellSession ps = new();
    private readonly List<int> startedRelays = [];
    private readonly string? hostBefore = Environment.GetEnvironmentVariable("DOMAINSHARE_HOST");

    /// <summary>A loopback address of its own (all of 127/8 is on lo) and a free port: no clash with a parallel test.</summary>
    private readonly IPAddress address = IPAddress.Parse($"127.0.3.{Random.Shared.Next(2, 250)}");
    private readonly int mingerPort;
    private readonly int smtpPort;

    public RelayCommandTests()
    {
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            probe.Bind(new IPEndPoint(address, 0));
            mingerPort = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }
        var listener = new TcpListener(address, 0);
        listener.Start();
        smtpPort = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        ps.Run($"Initialize-DomainShare -ServerName relay.example.com -MingerEndpoint {address}:{mingerPort} -SmtpEndpoint {address}:{smtpPort}").AssertSuccess();
    }

    public void Dispose()
    {
        try
        {
            if (startedRelays.Any(IsRelayOfThisTest))
                ps.Run("Stop-DomainShareRelay -Timeout 10s");
        }
        finally
        {
            foreach (var pid in startedRelays.Where(IsRelayOfThisTest))
            {
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(5000);
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException) { }
            }
            Environment.SetEnvironmentVariable("DOMAINSHARE_HOST", hostBefore);
            ps.Dispose();
        }
    }

    /// <summary>The bundled host, built beside the staged module: out/stage/{Configuration}/DomainShare → src/DomainShare.Shell/bin/{Configuration}/net10.0.</summary>
    private static string BundledHost()
    {
        var stage = Path.GetDirectoryName(PowerShellSession.ModuleManifest)!;          // out/stage/Debug/DomainShare
        var configuration = Path.GetFileName(Path.GetDirectoryName(stage))!;           // Debug
        var root = Path.GetFullPath(Path.Combine(stage, "..", "..", "..", ".."));      // the repository
        var host = Path.Combine(root, "src", "DomainShare.Shell", "bin", configuration, "net10.0", OperatingSystem.IsWindows() ? "domainshare.exe" : "domainshare");
        Assert.True(File.Exists(host), $"The bundled host is not built at '{host}': build src/DomainShare.Shell (or the solution) first.");
        return host;
    }

    private bool IsRelayOfThisTest(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Contains(ps.ConfigPath, StringComparison.Ordinal); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private string StateFile => Path.Combine(ps.Directory, "data", "relay.json");

    [Fact]
    public void Get_when_no_relay_runs_says_not_running_without_an_error()
    {
        var relay = ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay");
        Assert.Equal(false, relay.Prop("Running"));
        Assert.Null(relay.Prop("ProcessId"));
        Assert.Null(relay.Prop("MingerEndpoint"));
        Assert.Equal(ps.ConfigPath, relay.Prop("ConfigPath"));
        Assert.Equal("Stopped", relay.ToString());
    }

    [Fact]
    public void Stop_when_no_relay_runs_is_a_RelayNotRunning_error()
    {
        var r = ps.Run("Stop-DomainShareRelay");
        Assert.Equal("RelayNotRunning,DomainShare.Commands.StopDomainShareRelayCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(ErrorCategory.ObjectNotFound, r.Errors[0].CategoryInfo.Category);
        Assert.Contains(ps.ConfigPath, r.Errors[0].ToString());
        Assert.False(string.IsNullOrEmpty(r.Errors[0].ErrorDetails?.RecommendedAction));
        Assert.Empty(r.Output);
    }

    [Fact]
    public void Stop_with_ErrorAction_Stop_throws_the_same_error()
    {
        var r = ps.Run("try { Stop-DomainShareRelay -ErrorAction Stop; 'not reached' } catch { $_.FullyQualifiedErrorId }");
        Assert.Equal("RelayNotRunning,DomainShare.Commands.StopDomainShareRelayCommand", Assert.Single(r.Output).BaseObject);
    }

    [Fact]
    public void Start_WhatIf_starts_nothing()
    {
        var r = ps.Run("Start-DomainShareRelay -WhatIf").AssertSuccess();
        Assert.Empty(r.Output);
        Assert.Contains("What if:", r.HostText);
        Assert.Contains($"relay for '{ps.ConfigPath}'", r.HostText);
        Assert.False(File.Exists(StateFile));
        Assert.Equal(false, ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay").Prop("Running"));
    }

    [Fact]
    public void A_background_relay_starts_shows_in_Get_and_stops_with_PassThru()
    {
        Environment.SetEnvironmentVariable("DOMAINSHARE_HOST", BundledHost());

        var started = ps.Run("Start-DomainShareRelay -Timeout 30s");
        if (started.Output.Count == 1 && started.Output[0].Prop("ProcessId") is int first) startedRelays.Add(first);
        started.AssertSuccess();
        var relay = started.Single("DomainShare.DomainShareRelay");
        Assert.Equal(true, relay.Prop("Running"));
        int pid = Assert.IsType<int>(relay.Prop("ProcessId"));
        Assert.NotEqual(Environment.ProcessId, pid);
        Assert.True(IsRelayOfThisTest(pid), "The relay process does not run on this test's configuration.");
        Assert.Equal($"{address}:{mingerPort}", relay.Prop("MingerEndpoint"));
        Assert.True(File.Exists(StateFile));

        var got = ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay");
        Assert.Equal(true, got.Prop("Running"));
        Assert.Equal(pid, got.Prop("ProcessId"));
        Assert.Equal($"{address}:{mingerPort}", got.Prop("MingerEndpoint"));
        Assert.Null(got.Prop("ConfigurationError"));
        var counters = Assert.IsType<Dictionary<string, long>>(got.Prop("Counters"));
        Assert.Contains("MingerReceived", counters.Keys);
        Assert.NotNull(got.Prop("Uptime"));

        // -WhatIf stops nothing.
        var whatIf = ps.Run("Stop-DomainShareRelay -WhatIf").AssertSuccess();
        Assert.Contains("What if:", whatIf.HostText);
        Assert.Equal(true, ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay").Prop("Running"));

        var stopped = ps.Run("Stop-DomainShareRelay -PassThru").AssertSuccess().Single("DomainShare.DomainShareRelay");
        Assert.Equal(pid, stopped.Prop("ProcessId"));
        Assert.Equal(false, stopped.Prop("Running"));
        Assert.False(IsRelayOfThisTest(pid), "The relay process still runs after Stop-DomainShareRelay returned.");
        Assert.False(File.Exists(StateFile));

        var after = ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay");
        Assert.Equal(false, after.Prop("Running"));
        Assert.Null(after.Prop("ProcessId"));
    }

    [Fact]
    public void A_second_start_on_a_running_configuration_is_RelayAlreadyRunning()
    {
        Environment.SetEnvironmentVariable("DOMAINSHARE_HOST", BundledHost());
        var started = ps.Run("Start-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay");
        int pid = (int)started.Prop("ProcessId")!;
        startedRelays.Add(pid);

        var again = ps.Run("Start-DomainShareRelay");
        Assert.Equal("RelayAlreadyRunning,DomainShare.Commands.StartDomainShareRelayCommand", Assert.Single(again.ErrorIds));
        Assert.Equal(ErrorCategory.ResourceExists, again.Errors[0].CategoryInfo.Category);
        Assert.Empty(again.Output);
        Assert.Equal(pid, ps.Run("Get-DomainShareRelay").AssertSuccess().Single("DomainShare.DomainShareRelay").Prop("ProcessId"));
    }
}
