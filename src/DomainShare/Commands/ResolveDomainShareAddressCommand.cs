using System.Management.Automation;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>
/// Decides where mail for addresses goes, exactly as the relay does at RCPT TO: local, a peer (from the verification
/// cache or asked live over Minger, all peers in parallel), not found, or a temporary failure naming the failed peers.
/// </summary>
[Cmdlet(VerbsDiagnostic.Resolve, "DomainShareAddress")]
[OutputType(typeof(DomainShareResolution))]
public sealed class ResolveDomainShareAddressCommand : DomainShareCmdlet
{
    private int done;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity", "EmailAddress", "PrimarySmtpAddress")]
    [AllowEmptyString]
    public string[] Address { get; set; } = [];

    /// <summary>Ask the peers even when the verification cache has an answer (the answer is still stored).</summary>
    [Parameter]
    public SwitchParameter NoCache { get; set; }

    /// <summary>Ask only these peers.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[]? Peer { get; set; }

    protected override void ProcessRecord()
    {
        var lookup = Lookup();
        var options = new ResolveOptions { NoCache = NoCache, Peers = Peer is null ? null : OrTerminate(() => Peer.Select(p => Names.ParsePeerName(p).Host).ToArray()) };
        foreach (var address in Address)
        {
            if (Address.Length > 1 || done > 0)
                WriteProgress(new ProgressRecord(1, "Resolving addresses", $"{address} ({done + 1})"));
            TryItem(() =>
            {
                try
                {
                    WriteObject(Await(lookup.Resolver.ResolveAsync(address, options, Cancellation)).ToOutput(LookupConfigPath));
                }
                catch (ArgumentException ex)
                {
                    throw new DomainShareException(ErrorIds.InvalidAddress, ErrorKind.InvalidArgument, $"'{address}' is not a mail address: {ex.Message}",
                        "Give an address such as user@example.com.", address, ex);
                }
            }, address);
            done++;
        }
    }

    protected override void EndProcessing()
    {
        if (done > 1) WriteProgress(new ProgressRecord(1, "Resolving addresses", "Done") { RecordType = ProgressRecordType.Completed });
    }
}
