using System.Management.Automation;
using DomainShare.Engine;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>
/// Creates an account only after every enabled peer has been asked, in parallel, and none has the address. While the
/// check runs the address is reserved here and answers 4 to peers, so two servers creating it at once cannot both win.
/// </summary>
[Cmdlet(VerbsCommon.New, "DomainShareAccount", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareAccount))]
public sealed class NewDomainShareAccountCommand : DomainShareCmdlet
{
    private const int OverallProgressId = 1;
    private const int PeerProgressId = 2;
    private int created;
    private int failed;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity", "EmailAddress", "PrimarySmtpAddress")]
    [AllowEmptyString]
    public string Address { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("Name")]
    public string? DisplayName { get; set; }

    /// <summary>Create the account disabled: it exists (peers get 4) but receives no mail yet.</summary>
    [Parameter]
    public SwitchParameter Disabled { get; set; }

    /// <summary>Mailbox quota in bytes (500MB, 2GB); an empty value (an empty CSV cell) means none.</summary>
    /// <remarks>
    /// No [ValidateRange]: it refuses the null that [EmptyAsNull] makes of an empty cell. A negative quota is refused by
    /// the engine (InvalidQuota), for that row only.
    /// </remarks>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [EmptyAsNull]
    public long? Quota { get; set; }

    /// <summary>
    /// Move the account here from this peer: the peer's "exists" answer is expected (every other peer is still checked).
    /// Remove the old account afterwards; mail keeps reaching the old server until then, and follows the move after.
    /// </summary>
    [Parameter]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string? MovingFrom { get; set; }

    /// <summary>Create the account even when some peers cannot be asked (a warning names each one). Never the default.</summary>
    [Parameter]
    public SwitchParameter SkipUnreachablePeer { get; set; }

    protected override void ProcessRecord()
    {
        var lookup = Lookup();
        var creator = new AccountCreator(() => lookup.Configuration, lookup.Accounts, lookup.DataDirectory, lookup.Client);
        var overall = new ProgressRecord(OverallProgressId, "Creating accounts", $"{Address} ({created} created, {failed} refused so far)");
        WriteProgress(overall);
        bool ok = TryItem(() =>
        {
            var (address, _) = creator.Validate(Address);
            if (!ShouldProcess($"account '{address}' on server '{lookup.Configuration.ServerName}'", "Create"))
                return;
            int peerCount = lookup.Configuration.Peers.Count(p => p.Enabled);
            int answered = 0;
            var task = creator.CreateAsync(new AccountRequest(Address.Trim(), DisplayName, !Disabled, Quota,
                MovingFrom is null ? null : Engine.Configuration.Names.ParsePeerName(MovingFrom).Host), SkipUnreachablePeer,
                _ => Interlocked.Increment(ref answered), Cancellation);
            while (!((IAsyncResult)task).AsyncWaitHandle.WaitOne(100))
                WriteProgress(new ProgressRecord(PeerProgressId, $"Checking '{address}' with the peers", $"{Volatile.Read(ref answered)} of {peerCount} peers answered")
                { ParentActivityId = OverallProgressId });
            var creation = Await(task);
            foreach (var skipped in creation.SkippedPeers)
                WriteWarning($"'{address}' was created without asking peer '{skipped.Peer}': {skipped.Error}");
            WriteObject(creation.Account.ToOutput(lookup.DataDirectory, LookupConfigPath));
            created++;
        }, Address);
        if (!ok) failed++;
    }

    protected override void EndProcessing()
        => WriteProgress(new ProgressRecord(OverallProgressId, "Creating accounts", $"{created} created, {failed} refused") { RecordType = ProgressRecordType.Completed });
}
