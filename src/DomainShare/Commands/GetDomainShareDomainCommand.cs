using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Lists the domains this server hosts, all of them or those whose name matches.</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareDomain")]
[OutputType(typeof(DomainShareDomain))]
public sealed class GetDomainShareDomainCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        var (matches, missing) = Selection.Domains(config, Name);
        foreach (var domain in matches)
            WriteObject(domain.ToOutput(store.FilePath));
        foreach (var name in missing)
            WriteError(ToErrorRecord(DomainCatalog.NotFound(name), name));
    }
}
