namespace DomainShare.Engine.Routing;

/// <summary>Whether a cache entry says where an address lives or that it exists nowhere.</summary>
public enum CacheEntryKind
{
    /// <summary>A peer answered 5: mail for the address goes to <see cref="VerificationCacheEntry.Peer"/>.</summary>
    Positive,
    /// <summary>Every enabled peer answered 3: the address exists nowhere (only kept when the negative TTL is above zero).</summary>
    Negative,
}

/// <summary>One verification cache entry as Get-DomainShareCache shows it.</summary>
/// <param name="Address">The address, in lower case (the cache key).</param>
/// <param name="Peer">The peer that holds the address; null for a negative entry.</param>
/// <param name="Kind">Positive or negative.</param>
/// <param name="Verified">When a peer last confirmed the answer.</param>
/// <param name="Expires">When the entry stops counting, under the TTL configured now.</param>
public sealed record VerificationCacheEntry(string Address, string? Peer, CacheEntryKind Kind, DateTimeOffset Verified, DateTimeOffset Expires)
{
    public bool IsPositive => Kind == CacheEntryKind.Positive;

    /// <summary>True when the entry is past its expiry at <paramref name="now"/>.</summary>
    public bool IsExpired(DateTimeOffset now) => now >= Expires;
}
