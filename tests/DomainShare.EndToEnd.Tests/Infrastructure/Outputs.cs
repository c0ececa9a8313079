namespace DomainShare.EndToEnd.Tests.Infrastructure;

// The module's output types as they come back over JSON from the host process (the module is never referenced).

/// <summary>DomainShare.DomainShareResolution.</summary>
public sealed record Resolution(
    string Address, string Result, string? Peer, bool FromCache, TimeSpan Elapsed, string[] FailedPeers, string SmtpReply, string ConfigPath)
{
    public override string ToString()
        => $"{Address}: {Result} peer={Peer ?? "-"} fromCache={FromCache} elapsed={Elapsed.TotalMilliseconds:0} ms reply='{SmtpReply}' failed=[{string.Join("; ", FailedPeers)}]";
}

/// <summary>DomainShare.DomainShareRelay.</summary>
public sealed record Relay(
    bool Running, int? ProcessId, string ConfigPath, string? MingerEndpoint, string? ConfigurationError, Dictionary<string, long> Counters)
{
    public long Counter(string name) => Counters.TryGetValue(name, out var value) ? value : throw new Xunit.Sdk.XunitException(
        $"No counter '{name}'; the relay reports: {string.Join(", ", Counters.Keys)}");
}

/// <summary>DomainShare.DomainSharePeerTest.</summary>
public sealed record PeerTest(
    string Name, bool Enabled, bool Reachable, bool SecretAccepted, int? Status, TimeSpan? RoundTrip, string? MingerEndpoint, string? Error, bool Passed);

/// <summary>DomainShare.DomainShareCacheEntry.</summary>
public sealed record CacheEntry(string Address, string? Peer, bool Positive, DateTimeOffset Verified, DateTimeOffset Expires);
