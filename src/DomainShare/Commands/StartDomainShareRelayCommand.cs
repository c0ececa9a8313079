using System.Management.Automation;
using System.Reflection;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Relay;

namespace DomainShare.Commands;

/// <summary>
/// Starts the relay of a configuration: in the background (a process of its own that outlives this session) or, with
/// -Wait, in this process until Ctrl+C, SIGTERM or Stop-DomainShareRelay (for systemd, services and containers).
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "DomainShareRelay", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DomainShareRelay))]
public sealed class StartDomainShareRelayCommand : DomainShareCmdlet
{
    /// <summary>The environment variable naming the PowerShell host used to run a background relay, when this one cannot.</summary>
    public const string HostVariable = "DOMAINSHARE_HOST";
    private static readonly string[] BundledHosts = ["domainshare", "DomainShare.Shell"];
    private static readonly string[] PowerShellHosts = ["pwsh", "powershell", .. BundledHosts];

    /// <summary>Run in the foreground until stopped.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    /// <summary>How long to wait for a background relay to report ready.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    protected override void EndProcessing()
    {
        var store = OpenStore();
        LoadConfiguration(store);
        if (!ShouldProcess($"relay for '{store.FilePath}'", Wait ? "Run in the foreground" : "Start in the background"))
            return;
        if (Wait)
            RunInForeground(store);
        else
            WriteObject(OrTerminate(() => Await(RelayLauncher.StartDetachedAsync(store, BackgroundCommand(store), Timeout, Cancellation))).ToOutput(store.FilePath));
    }

    private void RunInForeground(ConfigurationStore store)
        => OrTerminate(() => Await(RelayEntryPoint.CreateHost(store).RunAsync(Cancellation)));

    /// <summary>
    /// The command that runs the relay in a new process: the bundled domainshare host runs it without PowerShell
    /// (<c>domainshare -Relay &lt;config&gt;</c>, half the memory); pwsh, or the host named by $env:DOMAINSHARE_HOST, runs
    /// <c>Start-DomainShareRelay -Wait</c>. This host is used again, so no other .NET is needed.
    /// </summary>
    private RelayCommand BackgroundCommand(ConfigurationStore store)
    {
        string manifest = Path.Combine(MyInvocation.MyCommand.Module?.ModuleBase ?? Path.GetDirectoryName(typeof(StartDomainShareRelayCommand).Assembly.Location)!, "DomainShare.psd1");
        string script = $"Import-Module {Quote(manifest)}; Start-DomainShareRelay -ConfigPath {Quote(store.FilePath)} -Wait";
        string[] Arguments(string host) => IsBundledHost(host) ? ["-Relay", store.FilePath] : ["-NoProfile", "-NonInteractive", "-Command", script];

        var named = Environment.GetEnvironmentVariable(HostVariable);
        if (!string.IsNullOrWhiteSpace(named))
            return new RelayCommand(named, Arguments(named));
        string? process = Environment.ProcessPath;
        if (process is not null && IsPowerShellHost(process))
            return new RelayCommand(process, Arguments(process));
        // A host run as 'dotnet host.dll' (the bundled host from a build tree): run the same dll again.
        var entry = Assembly.GetEntryAssembly();
        if (process is not null && entry is not null && IsPowerShellHost(entry.Location) && Path.GetFileNameWithoutExtension(process) == "dotnet")
            return new RelayCommand(process, [entry.Location, .. Arguments(entry.Location)]);
        throw new DomainShareException(ErrorIds.RelayStartFailed, ErrorKind.ResourceUnavailable,
            $"This process ('{process}') is not a PowerShell host that can run a background relay.",
            $"Run Start-DomainShareRelay from pwsh or the bundled domainshare host, set ${"env:" + HostVariable} to one of them, or use -Wait.");
    }

    private static bool IsBundledHost(string path)
        => BundledHosts.Contains(Path.GetFileNameWithoutExtension(path), StringComparer.OrdinalIgnoreCase);

    private static bool IsPowerShellHost(string path)
        => PowerShellHosts.Contains(Path.GetFileNameWithoutExtension(path), StringComparer.OrdinalIgnoreCase);

    private static string Quote(string text) => "'" + text.Replace("'", "''") + "'";
}
