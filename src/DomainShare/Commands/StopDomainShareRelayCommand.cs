using System.Management.Automation;
using DomainShare.Engine.Relay;

namespace DomainShare.Commands;

/// <summary>Stops the relay of a configuration gracefully and waits for its process to exit.</summary>
[Cmdlet(VerbsLifecycle.Stop, "DomainShareRelay", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareRelay))]
public sealed class StopDomainShareRelayCommand : DomainShareCmdlet
{
    /// <summary>How long to wait for the relay to finish what it is doing and exit.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Output the relay's last status.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        var store = OpenStore();
        // No LoadConfiguration first: a relay running on the last good version of a broken file can still be stopped.
        if (!ShouldProcess($"relay for '{store.FilePath}'", "Stop"))
            return;
        var last = OrTerminate(() => Await(RelayLauncher.StopAsync(store, Timeout, Cancellation)));
        if (PassThru) WriteObject(last.ToOutput(store.FilePath, stopped: true));
    }
}
