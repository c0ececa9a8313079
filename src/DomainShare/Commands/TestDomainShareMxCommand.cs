using System.Management.Automation;
using DomainShare.Engine.DnsRecords;

namespace DomainShare.Commands;

/// <summary>
/// Resolves the live MX records of hosted domains and compares them with the records they need: which MX hosts are
/// configured servers, which servers are missing, whether a backup MX exists. DNS failures are results, not errors.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "DomainShareMx")]
[OutputType(typeof(DomainShareMxTest))]
public sealed class TestDomainShareMxCommand : DomainShareCmdlet
{
    // Typed as object: members that mention engine types must not be fields (see DomainShareCmdlet).
    private object? checker;
    private readonly HashSet<string> tested = new(StringComparer.Ordinal);

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Identity")]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string[] Domain { get; set; } = [];

    /// <summary>The DNS server to ask, as ip[:port]; the system's resolvers when omitted.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DnsServer { get; set; }

    /// <summary>How long one DNS query waits (3 s when omitted); a query without an answer is sent once more.</summary>
    [Parameter]
    [DurationTransformation]
    public TimeSpan? Timeout { get; set; }

    protected override void BeginProcessing() => checker = OrTerminate(CreateChecker);

    private MxChecker CreateChecker() => new(new DnsClientMxLookup(new MxLookupOptions
    {
        Server = DnsServer is null ? null : DnsServerAddress.Parse(DnsServer),
        Timeout = Timeout ?? MxDefaults.QueryTimeout,
    }));

    protected override void ProcessRecord() => Check((MxChecker)checker!);

    private void Check(MxChecker mx)
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        var plans = new List<MxPlan>();
        foreach (var name in Domain)
            TryItem(() =>
            {
                var plan = MxPlanner.Plan(config, name);
                if (tested.Add($"{store.FilePath}|{plan.Domain}")) plans.Add(plan);
            }, name);
        if (plans.Count == 0) return;
        var progress = new ProgressRecord(1, "Testing MX records", $"Querying {mx.Lookup.Server} for {plans.Count} domain(s)");
        WriteProgress(progress);
        var results = Await(Task.WhenAll(plans.Select(p => mx.CheckAsync(config, p, Cancellation))));
        progress.RecordType = ProgressRecordType.Completed;
        WriteProgress(progress);
        foreach (var result in results)
            WriteObject(result.ToOutput(store.FilePath));
    }
}
