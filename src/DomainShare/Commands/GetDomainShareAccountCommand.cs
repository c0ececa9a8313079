using System.Management.Automation;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>Lists this server's accounts, all of them or those matching -Address (wildcards) or in -Domain.</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareAccount")]
[OutputType(typeof(DomainShareAccount))]
public sealed class GetDomainShareAccountCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity", "EmailAddress", "PrimarySmtpAddress")]
    [SupportsWildcards]
    public string[]? Address { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DomainNameCompleter))]
    public string? Domain { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var session = Lookup();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pattern in Address ?? [null!])
        {
            bool any = false;
            foreach (var account in session.Accounts.List(pattern, Domain))
            {
                any = true;
                if (seen.Add(account.Address))
                    WriteObject(account.ToOutput(session.DataDirectory, store.FilePath));
            }
            if (!any && pattern is not null && !WildcardPattern.ContainsWildcardCharacters(pattern))
                WriteError(ToErrorRecord(AccountStore.NotFound(pattern), pattern));
        }
    }
}
