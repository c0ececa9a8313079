using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Routing;

/// <summary>
/// The verification cache of domain sharing: which peer holds an address (positive entries) and, when the negative TTL is
/// above zero, which addresses exist nowhere (negative entries).
/// <para>
/// Entries live in <c>cache.db</c> (SQLite, WAL) in the data directory, so they survive restarts and are shared by every
/// process of the server (the relay and the cmdlets). Each instance keeps all entries in memory in front of SQLite and
/// writes through, so a cached lookup costs a dictionary read. Changes made by other connections (another process, another
/// instance) are noticed through <c>PRAGMA data_version</c>, checked at most every <see cref="ChangeCheckInterval"/> on the
/// hit path and on every miss, and the entries are then reloaded.
/// </para>
/// <para>
/// Only the verification time is stored. The TTLs (<see cref="DomainSharingSettings.VerifiedCacheTtl"/>,
/// <see cref="DomainSharingSettings.NegativeCacheTtl"/>) are applied when an entry is read, from the settings the cache
/// was opened with (a live delegate), so a changed TTL applies at once. Expired entries are ignored and purged lazily.
/// </para>
/// Keys are the whole address in lower case. Every member is safe to call from several threads.
/// </summary>
public sealed class VerificationCache : IDisposable
{
    public const string FileName = "cache.db";
    private const int SchemaVersion = 1;

    /// <summary>How often, at most, a cache hit checks whether another process changed the file.</summary>
    public static readonly TimeSpan ChangeCheckInterval = TimeSpan.FromSeconds(1);

    private static readonly TimeSpan PurgeInterval = TimeSpan.FromHours(1);

    private readonly Func<DomainSharingSettings> settings;
    private readonly TimeProvider time;
    private readonly IEngineLog log;
    private readonly object gate = new();
    private readonly SqliteConnection connection;
    private readonly SqliteCommand dataVersionQuery;
    private volatile ConcurrentDictionary<string, Stored> entries;
    private long lastDataVersion;
    private long nextCheckTicks;
    private long nextPurgeTicks;
    private readonly long checkIntervalMs;
    private bool disposed;

    private VerificationCache(string path, Func<DomainSharingSettings> settings, TimeProvider time, IEngineLog log, TimeSpan changeCheckInterval)
    {
        DatabasePath = path;
        checkIntervalMs = (long)changeCheckInterval.TotalMilliseconds;
        this.settings = settings;
        this.time = time;
        this.log = log;
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false, DefaultTimeout = 10 };
        connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;");
            Migrate();
            dataVersionQuery = connection.CreateCommand();
            dataVersionQuery.CommandText = "PRAGMA data_version";
            dataVersionQuery.Prepare();
            lastDataVersion = (long)dataVersionQuery.ExecuteScalar()!;
            entries = LoadAll();
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        nextCheckTicks = Environment.TickCount64 + checkIntervalMs;
        nextPurgeTicks = Environment.TickCount64;
    }

    /// <summary>The full path of <c>cache.db</c>.</summary>
    public string DatabasePath { get; }

    /// <summary>
    /// Opens (creating if needed) the cache in <paramref name="dataDirectory"/>. <paramref name="settings"/> gives the
    /// current TTLs each time an entry is read or stored (defaults when null); <paramref name="timeProvider"/> is the clock.
    /// </summary>
    public static VerificationCache Open(string dataDirectory, Func<DomainSharingSettings>? settings = null, IEngineLog? log = null, TimeProvider? timeProvider = null)
        => Open(dataDirectory, settings, log, timeProvider, ChangeCheckInterval);

    /// <summary>As the public <c>Open</c>, with another interval between change checks on the hit path (tests).</summary>
    internal static VerificationCache Open(string dataDirectory, Func<DomainSharingSettings>? settings, IEngineLog? log, TimeProvider? timeProvider, TimeSpan changeCheckInterval)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        Directory.CreateDirectory(dataDirectory);
        var defaults = new DomainSharingSettings();
        return new VerificationCache(Path.Combine(dataDirectory, FileName), settings ?? (() => defaults), timeProvider ?? TimeProvider.System,
            log ?? NullEngineLog.Instance, changeCheckInterval);
    }

    /// <summary>The cache key of an address: the whole address, trimmed, in lower case.</summary>
    public static string Key(string address) => address.Trim().ToLowerInvariant();

    /// <summary>
    /// The entry for <paramref name="address"/> that is valid now, or null. A negative entry is returned only while the
    /// negative TTL is above zero. This is the fast path: a dictionary read, plus a change check at most once a second
    /// (and on a miss).
    /// </summary>
    public VerificationCacheEntry? Lookup(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (Environment.TickCount64 >= Volatile.Read(ref nextCheckTicks))
            RefreshIfChanged(force: false);
        if (!entries.TryGetValue(address.Trim(), out var stored))
        {
            if (!RefreshIfChanged(force: true) || !entries.TryGetValue(address.Trim(), out stored))
                return null;
        }
        var current = settings();
        var ttl = stored.Positive ? current.VerifiedCacheTtl : current.NegativeCacheTtl;
        if (ttl <= TimeSpan.Zero) return null;
        var verified = DateTimeOffset.FromUnixTimeMilliseconds(stored.VerifiedMs);
        var expires = Expiry(verified, ttl);
        if (time.GetUtcNow() >= expires) return null;
        return new VerificationCacheEntry(stored.Key, stored.Peer, stored.Positive ? CacheEntryKind.Positive : CacheEntryKind.Negative, verified, expires);
    }

    /// <summary>Records that <paramref name="peer"/> answered 5 for <paramref name="address"/> now (replacing any entry).</summary>
    public void StorePositive(string address, string peer)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentException.ThrowIfNullOrEmpty(peer);
        Store(Key(address), peer);
    }

    /// <summary>
    /// Records that every enabled peer answered 3 for <paramref name="address"/> now. Does nothing and returns false while
    /// the negative TTL is zero (negative caching off).
    /// </summary>
    public bool StoreNegative(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (settings().NegativeCacheTtl <= TimeSpan.Zero) return false;
        Store(Key(address), null);
        return true;
    }

    /// <summary>
    /// Drops the entry of <paramref name="address"/>; with <paramref name="peer"/>, only when the entry names that peer
    /// (so a late rejection by a former peer never drops a newer answer). True when an entry was removed.
    /// </summary>
    public bool Remove(string address, string? peer = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        string key = Key(address);
        lock (gate)
        {
            ThrowIfDisposed();
            SyncBeforeWrite();
            using var delete = connection.CreateCommand();
            delete.CommandText = peer is null
                ? "DELETE FROM verification_cache WHERE address_key = $key"
                : "DELETE FROM verification_cache WHERE address_key = $key AND peer = $peer COLLATE NOCASE";
            delete.Parameters.AddWithValue("$key", key);
            if (peer is not null) delete.Parameters.AddWithValue("$peer", peer);
            bool removed = delete.ExecuteNonQuery() > 0;
            if (removed) entries.TryRemove(key, out _);
            return removed;
        }
    }

    /// <summary>
    /// Removes every entry whose address matches <paramref name="pattern"/> (PowerShell wildcards, case-insensitive), or
    /// every entry when it is null or <c>*</c>. Returns how many entries were removed, expired ones included.
    /// </summary>
    public int Clear(string? pattern = null)
    {
        lock (gate)
        {
            ThrowIfDisposed();
            SyncBeforeWrite();
            int removed;
            if (Wildcard.MatchesAll(pattern))
            {
                removed = Execute("DELETE FROM verification_cache");
                entries = NewDictionary();
                return removed;
            }
            var matches = Wildcard.Compile(pattern);
            var keys = new List<string>();
            using (var select = connection.CreateCommand())
            {
                select.CommandText = "SELECT address_key FROM verification_cache";
                using var reader = select.ExecuteReader();
                while (reader.Read())
                {
                    string key = reader.GetString(0);
                    if (matches(key)) keys.Add(key);
                }
            }
            removed = DeleteKeys(keys);
            return removed;
        }
    }

    /// <summary>
    /// The entries whose address matches <paramref name="pattern"/> (every entry when null), in address order, read from the
    /// file (so they include what other processes stored). Expired entries, and negative entries while negative caching is
    /// off, are left out unless <paramref name="includeExpired"/>.
    /// </summary>
    public IReadOnlyList<VerificationCacheEntry> List(string? pattern = null, bool includeExpired = false)
    {
        var matches = Wildcard.Compile(pattern);
        var current = settings();
        var now = time.GetUtcNow();
        var list = new List<VerificationCacheEntry>();
        lock (gate)
        {
            ThrowIfDisposed();
            using var select = connection.CreateCommand();
            select.CommandText = "SELECT address_key, peer, positive, verified_ms FROM verification_cache ORDER BY address_key";
            using var reader = select.ExecuteReader();
            while (reader.Read())
            {
                var stored = ReadRow(reader);
                if (!matches(stored.Key)) continue;
                var ttl = stored.Positive ? current.VerifiedCacheTtl : current.NegativeCacheTtl;
                var verified = DateTimeOffset.FromUnixTimeMilliseconds(stored.VerifiedMs);
                var expires = Expiry(verified, ttl > TimeSpan.Zero ? ttl : TimeSpan.Zero);
                if (!includeExpired && now >= expires) continue;
                list.Add(new VerificationCacheEntry(stored.Key, stored.Peer, stored.Positive ? CacheEntryKind.Positive : CacheEntryKind.Negative, verified, expires));
            }
        }
        return list;
    }

    /// <summary>Deletes the entries that have expired under the current TTLs; returns how many.</summary>
    public int PurgeExpired()
    {
        lock (gate)
        {
            ThrowIfDisposed();
            return PurgeExpiredLocked();
        }
    }

    private int PurgeExpiredLocked()
    {
        var current = settings();
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        using var delete = connection.CreateCommand();
        delete.CommandText = """
            DELETE FROM verification_cache
            WHERE (positive = 1 AND verified_ms <= $positiveLimit) OR (positive = 0 AND verified_ms <= $negativeLimit)
            """;
        delete.Parameters.AddWithValue("$positiveLimit", Limit(now, current.VerifiedCacheTtl));
        delete.Parameters.AddWithValue("$negativeLimit", Limit(now, current.NegativeCacheTtl));
        int removed = delete.ExecuteNonQuery();
        if (removed > 0) entries = LoadAll();
        return removed;

        static long Limit(long now, TimeSpan ttl)
            => ttl <= TimeSpan.Zero ? long.MaxValue : now - (long)Math.Min(ttl.TotalMilliseconds, now);
    }

    private void Store(string key, string? peer)
    {
        long now = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (gate)
        {
            ThrowIfDisposed();
            SyncBeforeWrite();
            using var upsert = connection.CreateCommand();
            upsert.CommandText = """
                INSERT INTO verification_cache (address_key, peer, positive, verified_ms) VALUES ($key, $peer, $positive, $verified)
                ON CONFLICT(address_key) DO UPDATE SET peer = excluded.peer, positive = excluded.positive, verified_ms = excluded.verified_ms
                """;
            upsert.Parameters.AddWithValue("$key", key);
            upsert.Parameters.AddWithValue("$peer", (object?)peer ?? DBNull.Value);
            upsert.Parameters.AddWithValue("$positive", peer is null ? 0 : 1);
            upsert.Parameters.AddWithValue("$verified", now);
            upsert.ExecuteNonQuery();
            entries[key] = new Stored(key, peer, peer is not null, now);
            if (Environment.TickCount64 >= nextPurgeTicks)
            {
                nextPurgeTicks = Environment.TickCount64 + (long)PurgeInterval.TotalMilliseconds;
                try { PurgeExpiredLocked(); }
                catch (SqliteException ex) { log.Write(LogLevel.Warning, $"Verification cache: purging expired entries failed: {ex.Message}"); }
            }
        }
    }

    private int DeleteKeys(List<string> keys)
    {
        if (keys.Count == 0) return 0;
        int removed = 0;
        using var tx = connection.BeginTransaction();
        using var delete = connection.CreateCommand();
        delete.Transaction = tx;
        delete.CommandText = "DELETE FROM verification_cache WHERE address_key = $key";
        var parameter = delete.Parameters.Add("$key", SqliteType.Text);
        foreach (var key in keys)
        {
            parameter.Value = key;
            removed += delete.ExecuteNonQuery();
        }
        tx.Commit();
        foreach (var key in keys)
            entries.TryRemove(key, out _);
        return removed;
    }

    /// <summary>Before a write: take in what others changed, so that the write-through leaves memory equal to the file.</summary>
    private void SyncBeforeWrite()
    {
        long version = (long)dataVersionQuery.ExecuteScalar()!;
        if (version != lastDataVersion)
        {
            lastDataVersion = version;
            entries = LoadAll();
        }
    }

    /// <summary>
    /// Reloads the entries when another connection committed since the last check. <paramref name="force"/> checks even
    /// inside the interval (on a miss). Returns true when the entries were reloaded. Never waits for the lock (a writer
    /// holding it syncs anyway, and a lookup must never queue behind a write that waits for another process) and never
    /// throws: a failing check keeps the entries in memory and is logged.
    /// </summary>
    private bool RefreshIfChanged(bool force)
    {
        bool taken = false;
        try
        {
            Monitor.TryEnter(gate, ref taken);
            if (!taken || disposed) return false;
            if (!force && Environment.TickCount64 < Volatile.Read(ref nextCheckTicks)) return false;
            Volatile.Write(ref nextCheckTicks, Environment.TickCount64 + checkIntervalMs);
            long version = (long)dataVersionQuery.ExecuteScalar()!;
            if (version == lastDataVersion) return false;
            lastDataVersion = version;
            entries = LoadAll();
            return true;
        }
        catch (SqliteException ex)
        {
            log.Write(LogLevel.Warning, $"Verification cache: cannot check '{DatabasePath}' for changes: {ex.Message}");
            return false;
        }
        finally
        {
            if (taken) Monitor.Exit(gate);
        }
    }

    private ConcurrentDictionary<string, Stored> LoadAll()
    {
        var loaded = NewDictionary();
        using var select = connection.CreateCommand();
        select.CommandText = "SELECT address_key, peer, positive, verified_ms FROM verification_cache";
        using var reader = select.ExecuteReader();
        while (reader.Read())
        {
            var stored = ReadRow(reader);
            loaded[stored.Key] = stored;
        }
        return loaded;
    }

    private static Stored ReadRow(SqliteDataReader reader)
        => new(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2) != 0, reader.GetInt64(3));

    private static ConcurrentDictionary<string, Stored> NewDictionary() => new(LowerInvariantComparer.Instance);

    private static DateTimeOffset Expiry(DateTimeOffset verified, TimeSpan ttl)
        => ttl >= DateTimeOffset.MaxValue - verified ? DateTimeOffset.MaxValue : verified + ttl;

    private void Migrate()
    {
        using var version = connection.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        if ((long)version.ExecuteScalar()! >= SchemaVersion) return;
        using var tx = connection.BeginTransaction();
        using var create = connection.CreateCommand();
        create.Transaction = tx;
        create.CommandText = $"""
            CREATE TABLE IF NOT EXISTS verification_cache (
                address_key TEXT PRIMARY KEY NOT NULL,
                peer        TEXT,
                positive    INTEGER NOT NULL,
                verified_ms INTEGER NOT NULL
            ) WITHOUT ROWID;
            PRAGMA user_version = {SchemaVersion};
            """;
        create.ExecuteNonQuery();
        tx.Commit();
    }

    private int Execute(string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteNonQuery();
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            dataVersionQuery.Dispose();
            connection.Dispose();
        }
    }

    /// <summary>One row, as kept in memory. <see cref="VerifiedMs"/> is Unix time in milliseconds.</summary>
    private sealed record Stored(string Key, string? Peer, bool Positive, long VerifiedMs);

    /// <summary>Compares like <see cref="string.ToLowerInvariant()"/> would, without allocating a lower-case copy on lookup.</summary>
    private sealed class LowerInvariantComparer : IEqualityComparer<string>
    {
        public static readonly LowerInvariantComparer Instance = new();

        public bool Equals(string? x, string? y)
        {
            if (ReferenceEquals(x, y)) return true;
            if (x is null || y is null || x.Length != y.Length) return false;
            for (int i = 0; i < x.Length; i++)
            {
                char a = x[i], b = y[i];
                if (a != b && char.ToLowerInvariant(a) != char.ToLowerInvariant(b)) return false;
            }
            return true;
        }

        public int GetHashCode(string s)
        {
            var hash = new HashCode();
            foreach (char c in s)
                hash.Add(c < 128 ? (char)(c is >= 'A' and <= 'Z' ? c | 0x20 : c) : char.ToLowerInvariant(c));
            return hash.ToHashCode();
        }
    }
}
