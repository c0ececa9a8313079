using System.Management.Automation;

namespace DomainShare.Commands;

/// <summary>Shows every setting of a server's configuration (never the secret).</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareConfig")]
[OutputType(typeof(DomainShareConfig))]
public sealed class GetDomainShareConfigCommand : DomainShareCmdlet
{
    protected override void ProcessRecord()
    {
        var store = OpenStore();
        WriteObject(LoadConfiguration(store).ToOutput(store));
    }
}
