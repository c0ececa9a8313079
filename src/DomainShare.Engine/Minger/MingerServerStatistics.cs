namespace DomainShare.Engine.Minger;

/// <summary>A snapshot of a Minger server's counters since it was created.</summary>
public sealed record MingerServerStatistics
{
    /// <summary>Datagrams received.</summary>
    public long Received { get; init; }
    public long AnsweredInvalid { get; init; }
    public long AnsweredAccessDenied { get; init; }
    public long AnsweredBadCredentials { get; init; }
    public long AnsweredUnknown { get; init; }
    public long AnsweredCannotReceive { get; init; }
    public long AnsweredExists { get; init; }
    /// <summary>Datagrams dropped without a reply because their source was over its rate.</summary>
    public long RateLimited { get; init; }
    /// <summary>Malformed datagrams (answered 0, or dropped when too large to be received whole on Windows).</summary>
    public long Malformed { get; init; }
    /// <summary>Gateway lookups started.</summary>
    public long GatewayLookups { get; init; }
    /// <summary>Gateway lookups that failed or timed out (the query was left unanswered).</summary>
    public long GatewayFailures { get; init; }
    /// <summary>Queries dropped because the maximum number of gateway lookups was already running.</summary>
    public long GatewayBusy { get; init; }
    /// <summary>Datagrams that could not be answered because of an error (account store, socket); each is logged, with throttling.</summary>
    public long Errors { get; init; }

    /// <summary>Replies sent, all statuses.</summary>
    public long Answered => AnsweredInvalid + AnsweredAccessDenied + AnsweredBadCredentials + AnsweredUnknown + AnsweredCannotReceive + AnsweredExists;

    public long AnsweredWith(MingerStatus status) => status switch
    {
        MingerStatus.Invalid => AnsweredInvalid,
        MingerStatus.AccessDenied => AnsweredAccessDenied,
        MingerStatus.BadCredentials => AnsweredBadCredentials,
        MingerStatus.Unknown => AnsweredUnknown,
        MingerStatus.CannotReceive => AnsweredCannotReceive,
        MingerStatus.Exists => AnsweredExists,
        _ => 0,
    };
}
