using System.Management.Automation;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>
/// Shared shape of the cmdlets that change existing peers (Set, Enable, Disable, Remove): select by name or wildcard,
/// ask ShouldProcess for each peer, then change it in one locked update of the file.
/// </summary>
public abstract class PeerChangeCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string[] Name { get; set; } = [];

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    private protected abstract string Action { get; }

    /// <summary>True when the command skips the confirmation prompt (Remove -Force).</summary>
    private protected virtual bool SkipConfirmation => false;

    private protected abstract ServerConfiguration Apply(ServerConfiguration config, PeerConfiguration peer);

    /// <summary>Checks the parameters once, before any peer is touched; throws a DomainShareException to refuse.</summary>
    private protected virtual void Validate() { }

    protected override void BeginProcessing() => OrTerminate(Validate);

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var config = LoadConfiguration(store);
        ChangeEach(store, Selection.Peers(config, Name), PeerCatalog.NotFound, p => $"peer '{p.SmtpAddress}'", Action, SkipConfirmation, Apply,
            PassThru ? (updated, peer) => (updated.FindPeer(peer.Name) ?? peer).ToOutput(store.FilePath) : null); // a removed peer passes through as it was
    }
}
