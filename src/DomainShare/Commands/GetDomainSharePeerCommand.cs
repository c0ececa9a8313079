using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Lists the configured peers, all of them or those whose name matches.</summary>
[Cmdlet(VerbsCommon.Get, "DomainSharePeer")]
[OutputType(typeof(DomainSharePeer))]
public sealed class GetDomainSharePeerCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        var (matches, missing) = Selection.Peers(config, Name);
        foreach (var peer in matches)
            WriteObject(peer.ToOutput(store.FilePath));
        foreach (var name in missing)
            WriteError(ToErrorRecord(PeerCatalog.NotFound(name), name));
    }
}
