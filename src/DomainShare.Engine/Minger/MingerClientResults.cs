using System.Net;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Minger;

/// <summary>How long a <see cref="MingerClient"/> fan-out waits for the peers.</summary>
public enum MingerFanOutMode
{
    /// <summary>Resolution: the first peer that answers 5 wins; the peers that have not answered yet are abandoned.</summary>
    StopAtFirstExists,
    /// <summary>Account creation: wait until every peer has answered or failed.</summary>
    WaitForAll,
}

/// <summary>Why a peer gave no usable answer. <see cref="None"/> means it answered 3, 4 or 5.</summary>
public enum MingerFailure
{
    /// <summary>The peer answered 3, 4 or 5.</summary>
    None,
    /// <summary>No valid reply within the timeout, after every retry.</summary>
    Timeout,
    /// <summary>The peer's host name could not be resolved.</summary>
    DnsFailure,
    /// <summary>The query could not be sent (no route, address family not supported, ...).</summary>
    SocketError,
    /// <summary>The peer answered 0, 1 or 2 (invalid request, access denied, bad credentials); <see cref="MingerPeerResult.Status"/> says which.</summary>
    Rejected,
    /// <summary>Not waited for: another peer answered 5 first (<see cref="MingerFanOutMode.StopAtFirstExists"/>). Not a failure.</summary>
    Abandoned,
}

/// <summary>Per-attempt timeout and number of retries of a Minger query. Defaults come from <see cref="Defaults"/>.</summary>
public sealed record MingerQueryOptions
{
    public static readonly MingerQueryOptions Default = new();

    /// <summary>How long one attempt waits for the reply.</summary>
    public TimeSpan Timeout { get; init; } = Defaults.MingerTimeout;

    /// <summary>How many times an unanswered query is sent again (so up to <c>Retries + 1</c> attempts).</summary>
    public int Retries { get; init; } = Defaults.MingerRetries;

    /// <summary>The queries answer a gateway's query: they carry <see cref="MingerCodec.ForwardedTag"/>, so no peer forwards them again.</summary>
    public bool Forwarded { get; init; }

    /// <summary>The options a server's configuration asks for.</summary>
    public static MingerQueryOptions From(MingerSettings settings)
        => new() { Timeout = settings.Timeout, Retries = settings.Retries };

    internal void Validate()
    {
        if (Timeout <= TimeSpan.Zero || Timeout.TotalMilliseconds > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "The Minger timeout must be positive.");
        if (Retries < 0)
            throw new ArgumentOutOfRangeException(nameof(Retries), Retries, "The Minger retry count cannot be negative.");
    }
}

/// <summary>What one peer said about one mailbox.</summary>
/// <param name="Peer">The peer's name as configured.</param>
/// <param name="Status">The status it answered, also for 0, 1 and 2 (which count as failures); null when it never answered.</param>
/// <param name="Failure">Why the answer is not usable; <see cref="MingerFailure.None"/> for 3, 4 and 5.</param>
/// <param name="RoundTrip">From the sending of the answered attempt to its reply; null without a reply.</param>
/// <param name="Attempts">How many datagrams were sent to the peer.</param>
/// <param name="EndPoint">The address and port that answered, or the last one asked; null when the name did not resolve.</param>
/// <param name="Error">A sentence for an administrator when <see cref="Failed"/>; otherwise null.</param>
public sealed record MingerPeerResult(
    string Peer,
    MingerStatus? Status,
    MingerFailure Failure,
    TimeSpan? RoundTrip,
    int Attempts,
    IPEndPoint? EndPoint,
    string? Error)
{
    /// <summary>True when the peer could not give an answer (timeout, DNS, socket, status 0/1/2). Abandoned peers have not failed.</summary>
    public bool Failed => Failure is not (MingerFailure.None or MingerFailure.Abandoned);

    /// <summary>True when the peer answered 3, 4 or 5.</summary>
    public bool Answered => Failure == MingerFailure.None;
}

/// <summary>The outcome of one fan-out: one result per peer asked, in the order given.</summary>
/// <param name="Mailbox">The mailbox asked, exactly as sent.</param>
/// <param name="Peers">One entry per peer, in the order of the request.</param>
/// <param name="Winner">The first peer (in time) that answered 5, or null.</param>
/// <param name="Elapsed">Wall-clock time of the whole fan-out, name resolution included.</param>
public sealed record MingerFanOutResult(string Mailbox, IReadOnlyList<MingerPeerResult> Peers, MingerPeerResult? Winner, TimeSpan Elapsed)
{
    /// <summary>The peers that failed (timeout, DNS, socket, status 0/1/2).</summary>
    public IEnumerable<MingerPeerResult> Failures => Peers.Where(p => p.Failed);
}

/// <summary>The outcome of a <c>*</c> probe to one peer (what Test-DomainSharePeer shows).</summary>
/// <param name="Peer">The peer's name as configured.</param>
/// <param name="Reachable">The peer sent back a valid Minger reply (any status).</param>
/// <param name="SecretAccepted">The peer answered 5: it accepts our credentials (or needs none) and our source address.</param>
/// <param name="Status">The status it answered, or null.</param>
/// <param name="RoundTrip">Time from the answered attempt to the reply, or null.</param>
/// <param name="Failure">Why the probe did not succeed; <see cref="MingerFailure.None"/> when the peer answered 3, 4 or 5.</param>
/// <param name="EndPoint">The address and port asked.</param>
/// <param name="Error">A sentence for an administrator, or null when <paramref name="SecretAccepted"/>.</param>
public sealed record MingerProbeResult(
    string Peer,
    bool Reachable,
    bool SecretAccepted,
    MingerStatus? Status,
    TimeSpan? RoundTrip,
    MingerFailure Failure,
    IPEndPoint? EndPoint,
    string? Error);

/// <summary>Resolves a host name to addresses; <see cref="System.Net.Dns.GetHostAddressesAsync(string, CancellationToken)"/> unless a test injects another.</summary>
public delegate Task<IPAddress[]> HostAddressResolver(string host, CancellationToken cancellationToken);
