namespace DomainShare.Engine.Minger;

/// <summary>
/// The Minger server's view of domain sharing when the gateway option is on ("Minger checks also trigger
/// domain-sharing checks"): asks the peers whether one of them holds <c>mailbox</c>. The address resolver implements it.
/// </summary>
/// <remarks>
/// The server calls it only for a query from a source that is not a configured peer, for an address of a shared domain
/// that is unknown locally, off its receive loop, with bounded concurrency and a time limit. True answers 5, false 3.
/// An exception (a peer could not be reached, the time limit passed) leaves the query unanswered, so the asking server
/// treats it as a failed lookup and retries, never as "no such address".
/// </remarks>
public interface IGatewayLookup
{
    ValueTask<bool> ExistsOnPeerAsync(string mailbox, CancellationToken ct);
}
