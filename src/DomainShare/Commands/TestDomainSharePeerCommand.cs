using System.Management.Automation;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>
/// Sends the Minger '*' probe to peers, all in parallel: is the peer reachable, does it accept our secret and our
/// address, and how long does a round trip take.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "DomainSharePeer")]
[OutputType(typeof(DomainSharePeerTest))]
public sealed class TestDomainSharePeerCommand : DomainShareCmdlet
{
    private readonly List<string> names = [];

    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        if (Name is not null) names.AddRange(Name);
    }

    protected override void EndProcessing()
    {
        var store = OpenStore();
        var session = Lookup();
        var (peers, missing) = Selection.Peers(session.Configuration, names.Count == 0 ? null : [.. names]);
        foreach (var name in missing)
            WriteError(ToErrorRecord(PeerCatalog.NotFound(name), name));
        if (peers.Count == 0) return;
        WriteProgress(new ProgressRecord(1, "Testing peers", $"Probing {peers.Count} peer(s) in parallel"));
        var probes = peers.Select(p => session.Client.ProbeAsync(p, session.QueryOptions, Cancellation)).ToArray();
        var results = Await(Task.WhenAll(probes));
        WriteProgress(new ProgressRecord(1, "Testing peers", "Done") { RecordType = ProgressRecordType.Completed });
        for (int i = 0; i < peers.Count; i++)
            WriteObject(results[i].ToOutput(peers[i], store.FilePath));
    }
}
