using System.Management.Automation;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>
/// Drops verification-cache entries (all, or those matching -Address), so the next message for those addresses asks
/// the peers again. A running relay sees the change within a second.
/// </summary>
[Cmdlet(VerbsCommon.Clear, "DomainShareCache", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(int))]
public sealed class ClearDomainShareCacheCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    public string[]? Address { get; set; }

    /// <summary>Output how many entries were removed.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var session = Lookup();
        int removed = 0;
        foreach (var pattern in Address ?? ["*"])
            if (ShouldProcess(pattern == "*" ? $"every verification-cache entry of '{store.FilePath}'" : $"verification-cache entries matching '{pattern}'", "Remove"))
                removed += session.Cache.Clear(pattern);
        WriteVerbose($"Removed {removed} cache entr{(removed == 1 ? "y" : "ies")}.");
        if (PassThru) WriteObject(removed);
    }
}
