using System.Globalization;
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

/// <summary>An account row.</summary>
public sealed record Account(string Address, string? DisplayName, bool Enabled, long? QuotaBytes, DateTimeOffset Created, string Maildir, bool Reserved = false);

/// <summary>
/// The accounts of one server in an embedded SQLite database (<c>accounts.db</c> in the data directory, WAL mode):
/// durable, safe for several processes at once, and fast for point lookups. Addresses are unique case-insensitively
/// and kept as given.
/// </summary>
public sealed class AccountStore : IAccountDirectory, IDisposable
{
    public const string FileName = "accounts.db";
    private const int SchemaVersion = 1;
    private readonly SqliteConnection readConnection;
    private readonly SqliteCommand stateQuery;
    private readonly object readLock = new();

    private AccountStore(string path)
    {
        DatabasePath = path;
        ConnectionString = new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString();
        using (var setup = OpenConnection())
            Migrate(setup);
        readConnection = OpenConnection();
        stateQuery = readConnection.CreateCommand();
        stateQuery.CommandText = "SELECT enabled, reserved FROM accounts WHERE address_key = $key";
        stateQuery.Parameters.Add("$key", SqliteType.Text);
        stateQuery.Prepare();
    }

    public string DatabasePath { get; }
    internal string ConnectionString { get; }

    /// <summary>Opens (creating if needed) the store in <paramref name="dataDirectory"/>.</summary>
    public static AccountStore Open(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        return new AccountStore(Path.Combine(dataDirectory, FileName));
    }

    internal SqliteConnection OpenConnection()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;";
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
                address_key  TEXT PRIMARY KEY NOT NULL,
                address      TEXT NOT NULL,
                display_name TEXT,
                enabled      INTEGER NOT NULL,
                reserved     INTEGER NOT NULL DEFAULT 0,
                quota_bytes  INTEGER,
                created_utc  TEXT NOT NULL,
                maildir      TEXT NOT NULL
            ) WITHOUT ROWID;
            PRAGMA user_version = {SchemaVersion};
            """;
        create.ExecuteNonQuery();
        tx.Commit();
    }

    /// <summary>The key under which an address is unique: the whole address in lower case (Minger matching is case-insensitive).</summary>
    public static string Key(string address) => address.Trim().ToLowerInvariant();

    public AccountState GetState(string address)
    {
        lock (readLock)
        {
            stateQuery.Parameters[0].Value = Key(address);
            using var reader = stateQuery.ExecuteReader();
            if (!reader.Read()) return AccountState.Unknown;
            if (reader.GetInt64(1) != 0) return AccountState.Reserved;
            return reader.GetInt64(0) != 0 ? AccountState.Active : AccountState.Disabled;
        }
    }

    /// <summary>Inserts an account; false when the address (in any case) already exists.</summary>
    public bool TryAdd(Account account)
    {
        using var connection = OpenConnection();
        using var insert = connection.CreateCommand();
        insert.CommandText = """
            INSERT INTO accounts (address_key, address, display_name, enabled, reserved, quota_bytes, created_utc, maildir)
            VALUES ($key, $address, $name, $enabled, $reserved, $quota, $created, $maildir)
            ON CONFLICT(address_key) DO NOTHING
            """;
        insert.Parameters.AddWithValue("$key", Key(account.Address));
        insert.Parameters.AddWithValue("$address", account.Address);
        insert.Parameters.AddWithValue("$name", (object?)account.DisplayName ?? DBNull.Value);
        insert.Parameters.AddWithValue("$enabled", account.Enabled ? 1 : 0);
        insert.Parameters.AddWithValue("$reserved", account.Reserved ? 1 : 0);
        insert.Parameters.AddWithValue("$quota", (object?)account.QuotaBytes ?? DBNull.Value);
        insert.Parameters.AddWithValue("$created", account.Created.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
        insert.Parameters.AddWithValue("$maildir", account.Maildir);
        return insert.ExecuteNonQuery() == 1;
    }

    public Account? Get(string address)
    {
        using var connection = OpenConnection();
        using var query = connection.CreateCommand();
        query.CommandText = $"SELECT {AccountColumns} FROM accounts WHERE address_key = $key";
        query.Parameters.AddWithValue("$key", Key(address));
        using var r = query.ExecuteReader();
        if (!r.Read()) return null;
        return ReadAccount(r);
    }

    /// <summary>Every account, in address order.</summary>
    public IEnumerable<Account> List()
    {
        using var connection = OpenConnection();
        using var query = connection.CreateCommand();
        query.CommandText = $"SELECT {AccountColumns} FROM accounts ORDER BY address_key";
        using var r = query.ExecuteReader();
        while (r.Read())
            yield return ReadAccount(r);
    }

    private const string AccountColumns = "address, display_name, enabled, quota_bytes, created_utc, maildir, reserved";

    private static Account ReadAccount(SqliteDataReader r)
        => new(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetInt64(2) != 0, r.IsDBNull(3) ? null : r.GetInt64(3),
               DateTimeOffset.Parse(r.GetString(4), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal), r.GetString(5), r.GetInt64(6) != 0);

    public bool Remove(string address)
    {
        using var connection = OpenConnection();
        using var delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM accounts WHERE address_key = $key";
        delete.Parameters.AddWithValue("$key", Key(address));
        return delete.ExecuteNonQuery() == 1;
    }

    public void Dispose()
    {
        stateQuery.Dispose();
        readConnection.Dispose();
    }
}
