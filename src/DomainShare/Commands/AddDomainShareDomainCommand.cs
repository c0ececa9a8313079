using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Adds a domain this server receives mail for; -Shared when peers hold some of its users.</summary>
[Cmdlet(VerbsCommon.Add, "DomainShareDomain", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareDomain))]
public sealed class AddDomainShareDomainCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [AllowEmptyString]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public SwitchParameter Shared { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        TryItem(() =>
        {
            string name = Names.NormalizeDomainName(Name);
            if (!ShouldProcess($"domain '{name}' ({(Shared ? "shared" : "not shared")}) in '{store.FilePath}'", Force ? "Add or replace" : "Add"))
                return;
            var updated = store.Update(c => DomainCatalog.Add(c, name, Shared, replace: Force));
            if (PassThru) WriteObject(DomainCatalog.Get(updated, name).ToOutput(store.FilePath));
        }, Name);
    }
}
