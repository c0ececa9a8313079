using System.Collections.Concurrent;
using System.Management.Automation;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>
/// Audits split-brain: asks every enabled peer about every local account of the shared domains and reports each
/// address that also exists on a peer (Conflict True), and each one a peer could not confirm (Conflict False).
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "DomainShareConsistency")]
[OutputType(typeof(DomainShareConsistencyFinding))]
public sealed class TestDomainShareConsistencyCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string? Domain { get; set; }

    protected override void EndProcessing()
    {
        var store = OpenStore();
        var session = Lookup();
        int done = 0, total = 0;
        var findings = new BlockingCollection<ConsistencyFinding>();
        var audit = Task.Run(async () =>
        {
            try
            {
                await foreach (var finding in ConsistencyAudit.RunAsync(session.Configuration, session.Accounts, session.Client, Domain,
                                   (d, t) => { Volatile.Write(ref done, d); Volatile.Write(ref total, t); }, Cancellation))
                    findings.Add(finding);
            }
            finally
            {
                findings.CompleteAdding();
            }
        });
        while (!findings.IsCompleted)
        {
            if (findings.TryTake(out var finding, 100))
                WriteObject(finding.ToOutput(store.FilePath));
            int t = Volatile.Read(ref total);
            if (t > 0)
                WriteProgress(new ProgressRecord(1, "Checking accounts with the peers", $"{Volatile.Read(ref done)} of {t} addresses")
                { PercentComplete = Volatile.Read(ref done) * 100 / t });
        }
        OrTerminate(() => Await(audit));
        WriteProgress(new ProgressRecord(1, "Checking accounts with the peers", "Done") { RecordType = ProgressRecordType.Completed });
    }
}
