using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Stops hosting domains: mail for them is refused afterwards.</summary>
[Cmdlet(VerbsCommon.Remove, "DomainShareDomain", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DomainShareDomain))]
public sealed class RemoveDomainShareDomainCommand : DomainChangeCommand
{
    /// <summary>Remove without asking for confirmation (-WhatIf is still honoured).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    private protected override string Action => "Remove";

    private protected override bool SkipConfirmation => Force;

    private protected override ServerConfiguration Apply(ServerConfiguration config, DomainConfiguration domain)
        => DomainCatalog.Remove(config, domain.Name);
}
