using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Routing;

/// <summary>
/// Where mail for one address goes (docs/domain-sharing.md, "Receiving a message"). The SMTP reply the relay gives for
/// each value is named in its comment.
/// </summary>
public enum ResolutionResult
{
    /// <summary>The domain is not hosted here: refuse relaying (<c>550 5.7.1</c>) unless the client is trusted.</summary>
    DomainNotHosted,
    /// <summary>An enabled local account: accept and store in its mailbox.</summary>
    Local,
    /// <summary>A local account that is disabled or reserved while being created (<c>450 4.2.1</c>).</summary>
    LocalCannotReceive,
    /// <summary>A peer holds the address (from the cache or live): accept and route to <see cref="AddressResolution.Peer"/>.</summary>
    Peer,
    /// <summary>Exists nowhere (<c>550 5.1.1</c>): every peer asked answered 3, or the domain is hosted but not shared, or domain sharing is off, or no peer is enabled.</summary>
    NotFound,
    /// <summary>No peer answered 5 and at least one failed (timeout, status 0/1/2, DNS, socket): <c>451 4.4.3</c>.</summary>
    TemporaryFailure,
    /// <summary>A peer answered 4 (exists, cannot receive now) and none answered 5: <c>450 4.2.1</c>. <see cref="AddressResolution.Peer"/> names it.</summary>
    CannotReceive,
}

/// <summary>A peer that gave no usable answer during a live lookup.</summary>
/// <param name="Peer">The peer's configured name.</param>
/// <param name="Failure">Timeout, DNS failure, socket error or rejected (status 0/1/2).</param>
/// <param name="Status">The status it answered (0, 1 or 2), or null when it never answered.</param>
/// <param name="Reason">A sentence for an administrator.</param>
public sealed record PeerFailure(string Peer, MingerFailure Failure, MingerStatus? Status, string Reason);

/// <summary>The outcome of resolving one address.</summary>
/// <param name="Address">The address as given.</param>
/// <param name="Result">Where mail for it goes.</param>
/// <param name="Peer">The peer that holds the address (<see cref="ResolutionResult.Peer"/>) or answered 4 (<see cref="ResolutionResult.CannotReceive"/>); otherwise null.</param>
/// <param name="FromCache">The answer came from the verification cache, no peer was asked.</param>
/// <param name="Elapsed">How long the resolution took.</param>
/// <param name="FailedPeers">The peers that failed during the live lookup (also listed when another peer's answer decided the result).</param>
public sealed record AddressResolution(
    string Address,
    ResolutionResult Result,
    string? Peer,
    bool FromCache,
    TimeSpan Elapsed,
    IReadOnlyList<PeerFailure> FailedPeers)
{
    /// <summary>Every peer's answer in a live lookup, in configuration order; empty when no peer was asked.</summary>
    public IReadOnlyList<MingerPeerResult> PeerAnswers { get; init; } = [];

    /// <summary>True for the results that make the sender retry later (4xx): <see cref="ResolutionResult.LocalCannotReceive"/>, <see cref="ResolutionResult.TemporaryFailure"/>, <see cref="ResolutionResult.CannotReceive"/>.</summary>
    public bool IsTemporary => Result is ResolutionResult.LocalCannotReceive or ResolutionResult.TemporaryFailure or ResolutionResult.CannotReceive;

    /// <summary>True when mail for the address is accepted: <see cref="ResolutionResult.Local"/> or <see cref="ResolutionResult.Peer"/>.</summary>
    public bool IsAccepted => Result is ResolutionResult.Local or ResolutionResult.Peer;
}

/// <summary>Options of one resolution.</summary>
public sealed record ResolveOptions
{
    public static readonly ResolveOptions Default = new();

    /// <summary>Skip the cache read and ask the peers live; the answer is still written to the cache.</summary>
    public bool NoCache { get; init; }

    /// <summary>
    /// Ask only these peers (configured names, case-insensitive; a disabled peer named here is asked too). Null asks every
    /// enabled peer. A "not found" from a subset is never cached, and a cached peer outside the subset is not used.
    /// </summary>
    public IReadOnlyCollection<string>? Peers { get; init; }

    /// <summary>The lookup answers a gateway's Minger query: the queries to the peers are marked so that no peer forwards them again.</summary>
    public bool Forwarded { get; init; }
}

/// <summary>
/// Thrown by <see cref="AddressResolver.ExistsOnPeerAsync"/> when the peers cannot give a definite answer (a peer failed,
/// or a peer answered 4): the Minger server then leaves the gateway's query unanswered, so it is retried, never taken as
/// "no such address".
/// </summary>
public sealed class AddressResolutionException : Exception
{
    public AddressResolutionException(AddressResolution resolution)
        : base(Describe(resolution))
    {
        Resolution = resolution;
    }

    public AddressResolution Resolution { get; }

    private static string Describe(AddressResolution r) => r.Result == ResolutionResult.CannotReceive
        ? $"'{r.Address}' exists on peer '{r.Peer}' but cannot receive mail now."
        : $"The peers could not say whether '{r.Address}' exists: " + string.Join(" ", r.FailedPeers.Select(f => f.Reason));
}
