using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Removes peers from the configuration.</summary>
[Cmdlet(VerbsCommon.Remove, "DomainSharePeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DomainSharePeer))]
public sealed class RemoveDomainSharePeerCommand : PeerChangeCommand
{
    /// <summary>Remove without asking for confirmation (-WhatIf is still honoured).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private protected override string Action => "Remove";

    private protected override bool SkipConfirmation => Force;

    private protected override ServerConfiguration Apply(ServerConfiguration config, PeerConfiguration peer)
        => PeerCatalog.Remove(config, peer.Name);
}
