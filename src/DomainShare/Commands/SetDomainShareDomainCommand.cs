using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Changes whether hosted domains are shared with the peers.</summary>
[Cmdlet(VerbsCommon.Set, "DomainShareDomain", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareDomain))]
public sealed class SetDomainShareDomainCommand : DomainChangeCommand
{
    [Parameter(Mandatory = true)]
    public bool Shared { get; set; }

    private protected override string Action => Shared ? "Share with peers" : "Stop sharing with peers";

    private protected override ServerConfiguration Apply(ServerConfiguration config, DomainConfiguration domain)
        => DomainCatalog.SetShared(config, domain.Name, Shared);
}
