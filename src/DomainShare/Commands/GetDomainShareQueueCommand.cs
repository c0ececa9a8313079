using System.Management.Automation;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Queue;

namespace DomainShare.Commands;

/// <summary>Lists the messages waiting in the queue: sender, recipients, where they go, next try, attempts, last error.</summary>
[Cmdlet(VerbsCommon.Get, "DomainShareQueue")]
[OutputType(typeof(DomainShareQueueMessage))]
public sealed class GetDomainShareQueueCommand : DomainShareCmdlet
{
    /// <summary>Only messages with a pending recipient routed to this peer.</summary>
    [Parameter]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(PeerNameCompleter))]
    public string? Peer { get; set; }

    /// <summary>Only messages with a pending recipient (or sender) matching this address.</summary>
    [Parameter]
    [SupportsWildcards]
    public string? Address { get; set; }

    /// <summary>Only the message with this id.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Id { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        using var access = OrTerminate(() => QueueAccess.Open(store));
        var peer = Peer is null ? null : WildcardPattern.Get(Peer, WildcardOptions.IgnoreCase);
        var address = Address is null ? null : WildcardPattern.Get(Address, WildcardOptions.IgnoreCase);
        foreach (var message in access.Queue.List())
        {
            if (Id is not null && !string.Equals(message.Id, Id, StringComparison.OrdinalIgnoreCase)) continue;
            var pending = message.Recipients.Where(r => r.State == RecipientState.Pending).ToList();
            if (peer is not null && !pending.Any(r => r.Route == QueueRoute.Peer && r.Peer is not null && peer.IsMatch(r.Peer))) continue;
            if (address is not null && !pending.Any(r => address.IsMatch(r.Address)) && !(message.ReversePath is { } from && address.IsMatch(from))) continue;
            WriteObject(message.ToOutput(store.FilePath));
        }
    }
}
