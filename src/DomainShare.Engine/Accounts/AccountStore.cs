using System.Globalization;
using DomainShare.Engine.Routing;
using Microsoft.Data.Sqlite;

namespace DomainShare.Engine.Accounts;

/// <summary>What this server can say about an address: the answer the Minger server gives for it.</summary>
public enum AccountState
{
    /// <summary>No account here (Minger 3).</summary>
    Unknown,
    /// <summary>An enabled account (Minger 5).</summary>
    Active,
    /// <summary>A disabled account (Minger 4).</summary>
    Disabled,
    /// <summary>Reserved while its creation checks the peers (Minger 4).</summary>
    Reserved,
}

/// <summary>Read access to this server's accounts, as the Minger server and the resolver need it.</summary>
public interface IAccountDirectory
{
    AccountState GetState(string address);
}

/// <summary>An account row. <see cref="Maildir"/> is relative to the data directory.</summary>
/// <summary>
/// A reservation made by <see cref="AccountStore.Reserve"/>: the address and the moment the hold ends, in the store's
/// milliseconds, which tells this reservation apart from any later one of the same address.
/// </summary>
public readonly record struct Reservation(string Address, long Until);

public sealed record Account(string Address, string? DisplayName, bool Enabled, long? QuotaBytes, DateTimeOffset Created, string Maildir, bool Reserved = false);

/// <summary>
/// The accounts of one server in an embedded SQLite database (<c>accounts.db</c> in the data directory, WAL mode, full
/// synchronous commits): durable, safe for several processes at once (cmdlets in several sessions and the relay), and
/// fast for point lookups. Addresses are unique case-insensitively and kept as given. An address being created is a
/// reservation that answers 4 to peers; a reservation left by a crashed creation expires by itself.
/// </summary>
public sealed class AccountStore : IAccountDirectory, IDisposable
{
    public const string FileName = "accounts.db";
    private const int SchemaVersion = 1;
    private const string AccountColumns = "address, display_name, enabled, quota_bytes, created_utc, maildir, reserved";
    private readonly SqliteConnection readConnection;
    private readonly SqliteCommand stateQuery;
    private readonly object readLock = new();
    private readonly TimeProvider time;

    private AccountStore(string path, TimeProvider time)
    {
        this.time = time;
        DatabasePath = path;
        ConnectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using (var setup = OpenConnection())
            Migrate(setup);
        readConnection = OpenConnection();
        stateQuery = readConnection.CreateCommand();
        stateQuery.CommandText = "SELECT enabled, reserved, reserved_until FROM accounts WHERE address_key = $key";
        stateQuery.Parameters.Add("$key", SqliteType.Text);
        stateQuery.Prepare();
    }

    public string DatabasePath { get; }
    internal string ConnectionString { get; }

    /// <summary>Opens (creating if needed) the store in <paramref name="dataDirectory"/>.</summary>
    public static AccountStore Open(string dataDirectory, TimeProvider? time = null)
    {
        Directory.CreateDirectory(dataDirectory);
        return new AccountStore(Path.Combine(dataDirectory, FileName), time ?? TimeProvider.System);
    }

    internal SqliteConnection OpenConnection()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
        pragma.ExecuteNonQuery();
        return connection;
    }

    private static void Migrate(SqliteConnection connection)
    {
        using var version = connection.CreateCommand();
        version.CommandText = "PRAGMA user_version";
        long current = (long)version.ExecuteScalar()!;
        if (current >= SchemaVersion) return;
        using var tx = connection.BeginTransaction();
        using var create = connection.CreateCommand();
        create.Transaction = tx;
        create.CommandText = $"""
            CREATE TABLE IF NOT EXISTS accounts (
                address_key    TEXT PRIMARY KEY NOT NULL,
                address        TEXT NOT NULL,
                display_name   TEXT,
                enabled        INTEGER NOT NULL,
                reserved       INTEGER NOT NULL DEFAULT 0,
                reserved_until INTEGER,
                quota_bytes    INTEGER,
                created_utc    TEXT NOT NULL,
                maildir        TEXT NOT NULL
            ) WITHOUT ROWID;
            PRAGMA user_version = {SchemaVersion};
            """;
        create.ExecuteNonQuery();
        tx.Commit();
    }

    /// <summary>The key under which an address is unique: the whole address in lower case (Minger matching is case-insensitive).</summary>
    public static string Key(string address)
    {
        string key = address.Trim().ToLowerInvariant();
        int at = key.LastIndexOf('@');
        if (at < 0 || !NeedsDomainNormalisation(key.AsSpan(at + 1))) return key;
        // One spelling per domain, as the configuration stores it: 'xn--bcher-kva.example' and 'bücher.example' are one.
        return Configuration.Names.TryNormalizeDnsName(key[(at + 1)..], out _) is { } domain ? key[..(at + 1)] + domain : key;
    }

    private static bool NeedsDomainNormalisation(ReadOnlySpan<char> domain)
    {
        foreach (char c in domain)
            if (c > 0x7F) return true;
        return domain.StartsWith("xn--") || domain.Contains(".xn--", StringComparison.Ordinal) || (domain.Length > 0 && domain[^1] == '.');
    }

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    public AccountState GetState(string address)
    {
        lock (readLock)
        {
            stateQuery.Parameters[0].Value = Key(address);
            using var reader = stateQuery.ExecuteReader();
            if (!reader.Read()) return AccountState.Unknown;
            if (reader.GetInt64(1) != 0)
                return !reader.IsDBNull(2) && reader.GetInt64(2) <= Now ? AccountState.Unknown : AccountState.Reserved;
            return reader.GetInt64(0) != 0 ? AccountState.Active : AccountState.Disabled;
        }
    }

    /// <summary>Inserts a finished account (imports, tests); false when the address (in any case) already exists.</summary>
    public bool TryAdd(Account account)
    {
        using var connection = OpenConnection();
        return Insert(connection, null, account, reservedUntil: null);
    }

    private static bool Insert(SqliteConnection connection, SqliteTransaction? tx, Account account, long? reservedUntil)
    {
        using var insert = connection.CreateCommand();
        insert.Transaction = tx;
        insert.CommandText = """
            INSERT INTO accounts (address_key, address, display_name, enabled, reserved, reserved_until, quota_bytes, created_utc, maildir)
            VALUES ($key, $address, $name, $enabled, $reserved, $until, $quota, $created, $maildir)
            ON CONFLICT(address_key) DO NOTHING
            """;
        insert.Parameters.AddWithValue("$key", Key(account.Address));
        insert.Parameters.AddWithValue("$address", account.Address);
        insert.Parameters.AddWithValue("$name", (object?)account.DisplayName ?? DBNull.Value);
        insert.Parameters.AddWithValue("$enabled", account.Enabled ? 1 : 0);
        insert.Parameters.AddWithValue("$reserved", account.Reserved ? 1 : 0);
        insert.Parameters.AddWithValue("$until", (object?)reservedUntil ?? DBNull.Value);
        insert.Parameters.AddWithValue("$quota", (object?)account.QuotaBytes ?? DBNull.Value);
        insert.Parameters.AddWithValue("$created", account.Created.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        insert.Parameters.AddWithValue("$maildir", account.Maildir);
        return insert.ExecuteNonQuery() == 1;
    }

    /// <summary>
    /// Reserves <paramref name="account"/>'s address for <paramref name="holdFor"/>: from now on this server answers 4 for
    /// it, so a peer creating the same address at the same moment refuses. An expired reservation (a creation that
    /// crashed) is replaced. Throws AccountAlreadyExists when the address exists or is being created here. The
    /// reservation returned is the only key to commit or release it: a creation that stalled past its hold cannot
    /// commit or release the reservation another creation of the same address made after it expired.
    /// </summary>
    public Reservation Reserve(Account account, TimeSpan holdFor)
    {
        long until = Now + (long)holdFor.TotalMilliseconds;
        using var connection = OpenConnection();
        using var tx = connection.BeginTransaction(deferred: false);
        using (var expired = connection.CreateCommand())
        {
            expired.Transaction = tx;
            expired.CommandText = "DELETE FROM accounts WHERE address_key = $key AND reserved = 1 AND reserved_until <= $now";
            expired.Parameters.AddWithValue("$key", Key(account.Address));
            expired.Parameters.AddWithValue("$now", Now);
            expired.ExecuteNonQuery();
        }
        if (!Insert(connection, tx, account with { Reserved = true }, until))
        {
            tx.Rollback();
            var existing = Get(account.Address);
            throw new DomainShareException(ErrorIds.AccountAlreadyExists, ErrorKind.AlreadyExists,
                existing is { Reserved: true }
                    ? $"The address '{account.Address}' is being created on this server right now."
                    : $"The account '{existing?.Address ?? account.Address}' already exists on this server.",
                "Choose another address, or change the existing account with Set-DomainShareAccount.", account.Address);
        }
        tx.Commit();
        return new Reservation(account.Address, until);
    }

    /// <summary>
    /// Turns a reservation into an account. False when the reservation is gone or has expired: once expired, the address
    /// answered 3 to peers, which may have created it meanwhile.
    /// </summary>
    public bool CommitReservation(Reservation reservation)
        => Execute("UPDATE accounts SET reserved = 0, reserved_until = NULL WHERE address_key = $key AND reserved = 1 AND reserved_until = $until AND reserved_until > $now", reservation.Address, reservation.Until) == 1;

    /// <summary>Drops a reservation (the creation was refused); an account that exists, or a later reservation, is never touched.</summary>
    public bool ReleaseReservation(Reservation reservation)
        => Execute("DELETE FROM accounts WHERE address_key = $key AND reserved = 1 AND reserved_until = $until", reservation.Address, reservation.Until) == 1;

    private int Execute(string sql, string address, long? until)
    {
        using var connection = OpenConnection();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$key", Key(address));
        if (until is long u) command.Parameters.AddWithValue("$until", u);
        if (sql.Contains("$now", StringComparison.Ordinal)) command.Parameters.AddWithValue("$now", Now);
        return command.ExecuteNonQuery();
    }

    public Account? Get(string address)
    {
        using var connection = OpenConnection();
        using var query = connection.CreateCommand();
        query.CommandText = $"SELECT {AccountColumns} FROM accounts WHERE address_key = $key";
        query.Parameters.AddWithValue("$key", Key(address));
        using var r = query.ExecuteReader();
        return r.Read() ? ReadAccount(r) : null;
    }

    /// <summary>
    /// The accounts (not reservations) whose address matches <paramref name="pattern"/> (PowerShell wildcards,
    /// case-insensitive; all when null) and, when given, whose domain is <paramref name="domain"/>; in address order.
    /// </summary>
    public IEnumerable<Account> List(string? pattern = null, string? domain = null)
    {
        var matches = Wildcard.Compile(pattern?.ToLowerInvariant());
        using var connection = OpenConnection();
        using var query = connection.CreateCommand();
        query.CommandText = $"SELECT {AccountColumns}, address_key FROM accounts WHERE reserved = 0" +
                            (domain is null ? "" : " AND address_key LIKE $domain ESCAPE '\\'") + " ORDER BY address_key";
        if (domain is not null)
            query.Parameters.AddWithValue("$domain", "%@" + Key(domain).Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_"));
        using var r = query.ExecuteReader();
        while (r.Read())
            if (matches(r.GetString(7)))
                yield return ReadAccount(r);
    }

    public long Count()
    {
        using var connection = OpenConnection();
        using var query = connection.CreateCommand();
        query.CommandText = "SELECT COUNT(*) FROM accounts WHERE reserved = 0";
        return (long)query.ExecuteScalar()!;
    }

    /// <summary>Changes an account; null arguments leave a value as it is. Throws AccountNotFound.</summary>
    public Account Update(string address, string? displayName = null, bool? enabled = null, long? quotaBytes = null, bool clearQuota = false)
    {
        using var connection = OpenConnection();
        using var update = connection.CreateCommand();
        update.CommandText = """
            UPDATE accounts SET
                display_name = COALESCE($name, display_name),
                enabled = COALESCE($enabled, enabled),
                quota_bytes = CASE WHEN $clear = 1 THEN NULL ELSE COALESCE($quota, quota_bytes) END
            WHERE address_key = $key AND reserved = 0
            """;
        update.Parameters.AddWithValue("$key", Key(address));
        update.Parameters.AddWithValue("$name", (object?)displayName ?? DBNull.Value);
        update.Parameters.AddWithValue("$enabled", enabled is bool e ? (e ? 1 : 0) : DBNull.Value);
        update.Parameters.AddWithValue("$quota", (object?)quotaBytes ?? DBNull.Value);
        update.Parameters.AddWithValue("$clear", clearQuota ? 1 : 0);
        if (update.ExecuteNonQuery() != 1) throw NotFound(address);
        return Get(address)!;
    }

    /// <summary>Removes an account and returns it as it was. Throws AccountNotFound.</summary>
    public Account Remove(string address)
    {
        var existing = Get(address);
        if (existing is null || existing.Reserved || Execute("DELETE FROM accounts WHERE address_key = $key AND reserved = 0", address, until: null) != 1)
            throw NotFound(address);
        return existing;
    }

    public static DomainShareException NotFound(string address)
        => new(ErrorIds.AccountNotFound, ErrorKind.NotFound, $"No account '{address}' exists on this server.",
               "List the accounts with Get-DomainShareAccount.", address);

    private static Account ReadAccount(SqliteDataReader r)
        => new(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2) != 0, r.IsDBNull(3) ? null : r.GetInt64(3),
               DateTimeOffset.Parse(r.GetString(4), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal), r.GetString(5), r.GetInt64(6) != 0);

    public void Dispose()
    {
        stateQuery.Dispose();
        readConnection.Dispose();
    }
}
