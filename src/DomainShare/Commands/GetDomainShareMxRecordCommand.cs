using System.Management.Automation;
using DomainShare.Engine.DnsRecords;

namespace DomainShare.Commands;

/// <summary>
/// Prints the MX records a hosted domain needs so that mail from the Internet reaches its servers: this server as the
/// primary MX and, for a shared domain, every enabled peer as a backup MX. -AsZoneFile prints only the zone-file lines.
/// </summary>
[Cmdlet(VerbsCommon.Get, "DomainShareMxRecord")]
[OutputType(typeof(DomainShareMxRecord), typeof(string))]
public sealed class GetDomainShareMxRecordCommand : DomainShareCmdlet
{
    // A domain named twice (example.com, EXAMPLE.com.) is printed once: a zone file must not get the same record twice.
    private readonly HashSet<string> printed = new(StringComparer.Ordinal);

    /// <summary>The hosted domains; no wildcards (a zone is written for a named domain).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Name", "Identity")]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string[] Domain { get; set; } = [];

    /// <summary>Output only the zone-file lines, as strings.</summary>
    [Parameter]
    public SwitchParameter AsZoneFile { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        foreach (var name in Domain)
        {
            MxPlan? plan = null;
            if (!TryItem(() => plan = MxPlanner.Plan(config, name), name) || plan is null || !printed.Add($"{store.FilePath}|{plan.Domain}"))
                continue;
            foreach (var peer in plan.DisabledPeers)
                WriteVerbose($"The peer '{peer}' is disabled: it is not a backup MX of {plan.Domain}.");
            foreach (var warning in plan.Warnings)
                WriteWarning(warning);
            foreach (var record in plan.Records)
                WriteObject(AsZoneFile ? record.ZoneLine : record.ToOutput(store.FilePath));
        }
    }
}
