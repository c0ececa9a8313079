using System.Management.Automation;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>Lists the verification cache: which peer holds which address, as last verified, and until when it is trusted.</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareCache")]
[OutputType(typeof(DomainShareCacheEntry))]
public sealed class GetDomainShareCacheCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    public string[]? Address { get; set; }

    /// <summary>Include entries past their time to live.</summary>
    [Parameter]
    public SwitchParameter IncludeExpired { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var session = Lookup();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pattern in Address ?? [null!])
            foreach (var entry in session.Cache.List(pattern, IncludeExpired))
                if (seen.Add(entry.Address))
                    WriteObject(entry.ToOutput(store.FilePath));
    }
}
