using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Disables peers: they stay configured but are no longer asked in lookups or account checks.</summary>
[Cmdlet(VerbsLifecycle.Disable, "DomainSharePeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainSharePeer))]
public sealed class DisableDomainSharePeerCommand : PeerChangeCommand
{
    private protected override string Action => "Disable";

    private protected override ServerConfiguration Apply(ServerConfiguration config, PeerConfiguration peer)
        => PeerCatalog.Change(config, peer.Name, p => p with { Enabled = false });
}
