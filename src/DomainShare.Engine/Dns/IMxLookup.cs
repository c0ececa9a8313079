namespace DomainShare.Engine.DnsRecords;

/// <summary>How a DNS query for a domain's MX records ended.</summary>
public enum MxLookupStatus
{
    /// <summary>The server answered with one or more MX records.</summary>
    Ok,
    /// <summary>The name exists but has no MX record (NOERROR, empty answer): senders fall back to its A/AAAA record.</summary>
    NoMxRecords,
    /// <summary>NXDOMAIN: the domain does not exist in DNS.</summary>
    NonExistentDomain,
    /// <summary>SERVFAIL: the server could not answer (often a broken delegation or DNSSEC failure).</summary>
    ServerFailure,
    /// <summary>REFUSED: the server will not answer this client (it is no resolver for it).</summary>
    Refused,
    /// <summary>No answer arrived within the timeout, after the retries.</summary>
    Timeout,
    /// <summary>Any other failure: another response code, an unreachable server, no resolver configured.</summary>
    Failed,
}

/// <summary>One live MX record as DNS returned it: the preference and the exchange host (no trailing dot).</summary>
public readonly record struct MxAnswer(int Preference, string Exchange);

/// <summary>The outcome of one MX query: the status, the records, which server was asked and how long it took.</summary>
public sealed record MxLookupResult(MxLookupStatus Status, IReadOnlyList<MxAnswer> Records, string Server, TimeSpan Elapsed, string? Error = null);

/// <summary>Resolves a domain's live MX records. Implementations never throw for DNS failures: they return a status.</summary>
public interface IMxLookup
{
    /// <summary>The server(s) asked, for reports: <c>127.0.0.1:5353</c> or <c>system resolvers (192.0.2.53:53)</c>.</summary>
    string Server { get; }

    /// <summary>Queries the MX records of <paramref name="domain"/> (ASCII form). Cancelling <paramref name="ct"/> throws <see cref="OperationCanceledException"/>.</summary>
    Task<MxLookupResult> LookupAsync(string domain, CancellationToken ct);
}
