using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Enables peers: they are asked again in lookups and account checks.</summary>
[Cmdlet(VerbsLifecycle.Enable, "DomainSharePeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainSharePeer))]
public sealed class EnableDomainSharePeerCommand : PeerChangeCommand
{
    private protected override string Action => "Enable";

    private protected override ServerConfiguration Apply(ServerConfiguration config, PeerConfiguration peer)
        => PeerCatalog.Change(config, peer.Name, p => p with { Enabled = true });
}
