using System.Management.Automation;
using DomainShare.Engine.Relay;

namespace DomainShare.Commands;

/// <summary>Tells whether the relay of a configuration runs, and shows its process, endpoints, uptime and counters.</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareRelay")]
[OutputType(typeof(DomainShareRelay))]
public sealed class GetDomainShareRelayCommand : DomainShareCmdlet
{
    protected override void ProcessRecord()
    {
        var store = OpenStore();
        // No LoadConfiguration first: a relay running on the last good version of a broken file is still shown (with its
        // ConfigurationError); with no relay running, the engine throws the file's error.
        WriteObject(OrTerminate(() => Await(RelayLauncher.GetStatusAsync(store, Cancellation))).ToOutput(store.FilePath));
    }
}
