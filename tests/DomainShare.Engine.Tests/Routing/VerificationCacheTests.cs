using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Tests.Routing;

/// <summary>The verification cache on its own: persistence, TTLs applied at read time, wildcards, and other writers.</summary>
public sealed class VerificationCacheTests : IDisposable
{
    private readonly TempFolder folder = new();
    private readonly ManualClock clock = new();
    private DomainSharingSettings settings = new() { VerifiedCacheTtl = TimeSpan.FromDays(5), NegativeCacheTtl = TimeSpan.FromMinutes(10) };

    private VerificationCache Open(TimeSpan? checkInterval = null)
        => VerificationCache.Open(folder.Path, () => settings, null, clock, checkInterval ?? VerificationCache.ChangeCheckInterval);

    [Fact]
    public void Entries_are_kept_in_a_file_in_the_data_directory_and_survive_reopening()
    {
        using (var cache = Open())
        {
            cache.StorePositive("Alice@Example.com", "mx2.example.com");
            Assert.True(cache.StoreNegative("ghost@example.com"));
            Assert.EndsWith(VerificationCache.FileName, cache.DatabasePath);
        }
        Assert.True(File.Exists(folder.File("cache.db")));

        using var reopened = Open();
        var alice = reopened.Lookup("ALICE@example.COM");
        Assert.NotNull(alice);
        Assert.Equal("alice@example.com", alice.Address);
        Assert.Equal("mx2.example.com", alice.Peer);
        Assert.Equal(clock.GetUtcNow(), alice.Verified);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromDays(5), alice.Expires);
        Assert.Equal(CacheEntryKind.Negative, reopened.Lookup("ghost@example.com")!.Kind);
        Assert.Null(reopened.Lookup("nobody@example.com"));
    }

    [Fact]
    public void Ttls_are_applied_when_reading_with_the_current_settings()
    {
        using var cache = Open();
        cache.StorePositive("a@example.com", "mx2");
        cache.StoreNegative("n@example.com");

        clock.Advance(TimeSpan.FromMinutes(11));
        Assert.NotNull(cache.Lookup("a@example.com"));
        Assert.Null(cache.Lookup("n@example.com"));
        Assert.Single(cache.List());
        Assert.Equal(2, cache.List(includeExpired: true).Count);

        settings = settings with { NegativeCacheTtl = TimeSpan.FromHours(1) };
        Assert.NotNull(cache.Lookup("n@example.com")); // a longer TTL revives it: only the verification time is stored

        settings = settings with { VerifiedCacheTtl = TimeSpan.FromMinutes(5) };
        Assert.Null(cache.Lookup("a@example.com"));
    }

    [Fact]
    public async Task A_tiny_real_ttl_expires()
    {
        using var cache = VerificationCache.Open(folder.Path, () => settings with { VerifiedCacheTtl = TimeSpan.FromMilliseconds(100) });
        cache.StorePositive("a@example.com", "mx2");
        await Task.Delay(250);
        Assert.Null(cache.Lookup("a@example.com"));
    }

    [Fact]
    public void Negative_ttl_zero_stores_and_returns_nothing_negative()
    {
        settings = settings with { NegativeCacheTtl = TimeSpan.Zero };
        using var cache = Open();

        Assert.False(cache.StoreNegative("ghost@example.com"));
        Assert.Null(cache.Lookup("ghost@example.com"));
        Assert.Empty(cache.List(includeExpired: true));
    }

    [Fact]
    public void A_positive_answer_replaces_a_negative_one_and_remove_can_require_the_peer()
    {
        using var cache = Open();
        cache.StoreNegative("a@example.com");
        cache.StorePositive("a@example.com", "mx2");
        Assert.Equal(CacheEntryKind.Positive, cache.Lookup("a@example.com")!.Kind);

        Assert.False(cache.Remove("a@example.com", "mx3"));
        Assert.True(cache.Remove("A@EXAMPLE.COM", "MX2"));
        Assert.Null(cache.Lookup("a@example.com"));
        Assert.False(cache.Remove("a@example.com"));
    }

    [Fact]
    public void Clear_takes_wildcards_or_everything()
    {
        using var cache = Open();
        cache.StorePositive("ann@example.com", "mx2");
        cache.StorePositive("bob@example.com", "mx2");
        cache.StorePositive("ann@example.org", "mx3");
        cache.StoreNegative("x[1]@example.com");

        Assert.Equal(2, cache.Clear("ANN@*"));
        Assert.Null(cache.Lookup("ann@example.com"));
        Assert.Equal(["bob@example.com", "x[1]@example.com"], cache.List().Select(e => e.Address));
        Assert.Equal(["bob@example.com"], cache.List("[a-c]*").Select(e => e.Address));
        Assert.Equal(1, cache.Clear("x`[1`]@example.com"));
        Assert.Equal(1, cache.Clear());
        Assert.Empty(cache.List(includeExpired: true));
    }

    [Fact]
    public async Task Changes_by_another_instance_on_the_same_file_are_seen()
    {
        using var relay = Open(TimeSpan.FromMilliseconds(50));
        using var shell = Open(); // e.g. Clear-DomainShareCache run from PowerShell while the relay runs

        // A miss checks at once.
        shell.StorePositive("a@example.com", "mx2");
        Assert.Equal("mx2", relay.Lookup("a@example.com")!.Peer);

        // A hit checks at most once per interval.
        shell.Clear();
        await Task.Delay(120);
        Assert.Null(relay.Lookup("a@example.com"));

        // And the relay's own writes are visible to the other instance.
        relay.StorePositive("b@example.com", "mx3");
        Assert.Equal("mx3", shell.Lookup("b@example.com")!.Peer);
        relay.Remove("b@example.com");
        Assert.Empty(shell.List());
    }

    [Fact]
    public void A_write_after_someone_elses_change_keeps_memory_equal_to_the_file()
    {
        using var relay = Open(TimeSpan.FromHours(1));
        using var shell = Open();
        relay.StorePositive("a@example.com", "mx2");
        Assert.NotNull(relay.Lookup("a@example.com"));

        shell.Clear();
        relay.StorePositive("b@example.com", "mx3"); // notices the clear before writing

        Assert.Null(relay.Lookup("a@example.com"));
        Assert.NotNull(relay.Lookup("b@example.com"));
    }

    [Fact]
    public void Expired_entries_can_be_purged()
    {
        using var cache = Open();
        cache.StorePositive("old@example.com", "mx2");
        clock.Advance(TimeSpan.FromDays(6));
        cache.StorePositive("new@example.com", "mx2");

        Assert.Equal(1, cache.PurgeExpired());
        Assert.Equal(["new@example.com"], cache.List(includeExpired: true).Select(e => e.Address));
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        folder.Dispose();
    }
}
