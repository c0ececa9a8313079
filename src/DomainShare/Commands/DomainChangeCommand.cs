using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Shared shape of Set- and Remove-DomainShareDomain: select by name or wildcard, confirm, change.</summary>
public abstract class DomainChangeCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string[] Name { get; set; } = [];

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private protected abstract string Action { get; }

    private protected virtual bool SkipConfirmation => false;

    private protected abstract ServerConfiguration Apply(ServerConfiguration config, DomainConfiguration domain);

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        ChangeEach(store, Selection.Domains(config, Name), DomainCatalog.NotFound, d => $"domain '{d.Name}'", Action, SkipConfirmation, Apply,
            PassThru ? (updated, domain) => (updated.FindDomain(domain.Name) ?? domain).ToOutput(store.FilePath) : null);
    }
}
