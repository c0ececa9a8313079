using System.Collections.Concurrent;
using DomainShare.Engine.Accounts;
using Microsoft.Data.Sqlite;
using DomainShare.Engine.Tests.Routing;

namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>The accounts of one server in a real <c>accounts.db</c>, each test in its own folder.</summary>
public sealed class AccountStoreTests : IDisposable
{
    private readonly TempFolder folder = new();
    private readonly ManualClock clock = new();
    private readonly List<AccountStore> opened = [];

    private AccountStore Open(TimeProvider? time = null)
    {
        var store = AccountStore.Open(folder.Path, time ?? clock);
        opened.Add(store);
        return store;
    }

    public void Dispose()
    {
        foreach (var store in opened) store.Dispose();
        SqliteConnection.ClearAllPools();
        folder.Dispose();
    }

    private static Account NewAccount(string address, bool enabled = true, string? name = null, long? quota = null)
        => new(address, name, enabled, quota, new DateTimeOffset(2025, 5, 1, 10, 30, 0, TimeSpan.Zero), "mail/x/" + address.ToLowerInvariant());

    [Fact]
    public void Addresses_are_unique_whatever_their_case_and_are_kept_as_given()
    {
        var store = Open();
        Assert.True(store.TryAdd(NewAccount("Ann@Example.com", name: "Ann Lee", quota: 1000)));
        Assert.False(store.TryAdd(NewAccount("ann@example.com")));
        Assert.False(store.TryAdd(NewAccount("ANN@EXAMPLE.COM")));
        Assert.True(store.TryAdd(NewAccount("José@exemple.com")));
        Assert.False(store.TryAdd(NewAccount("josé@EXEMPLE.com")));

        var ann = store.Get("aNN@eXAMPLE.cOM");
        Assert.NotNull(ann);
        Assert.Equal(NewAccount("Ann@Example.com", name: "Ann Lee", quota: 1000), ann);
        Assert.Equal(AccountState.Active, store.GetState("ann@example.com"));
        Assert.Equal(AccountState.Active, store.GetState("JOSÉ@exemple.com"));
        Assert.Equal(2, store.Count());
        Assert.Equal(["Ann@Example.com", "José@exemple.com"], store.List().Select(a => a.Address));
        // A second instance (another process) sees the same rows, with the same spelling.
        Assert.Equal("Ann@Example.com", Open().Get("ann@example.com")!.Address);
    }

    [Fact]
    public void An_internationalised_domain_matches_in_punycode_and_in_unicode()
    {
        var store = Open();
        Assert.True(store.TryAdd(NewAccount("anna@bücher.example")));
        // A peer may ask in either spelling (Minger carries whatever the client wrote).
        Assert.Equal(AccountState.Active, store.GetState("anna@xn--bcher-kva.example"));
        Assert.Equal(AccountState.Active, store.GetState("Anna@BÜCHER.example"));
        Assert.False(store.TryAdd(NewAccount("anna@xn--bcher-kva.example")));
        Assert.Equal(AccountState.Unknown, store.GetState("anna@bucher.example"));
    }

    [Fact]
    public void States_follow_the_row()
    {
        var store = Open();
        store.TryAdd(NewAccount("on@example.com"));
        store.TryAdd(NewAccount("off@example.com", enabled: false));
        Assert.Equal(AccountState.Active, store.GetState("on@example.com"));
        Assert.Equal(AccountState.Disabled, store.GetState("off@example.com"));
        Assert.Equal(AccountState.Unknown, store.GetState("nobody@example.com"));
        Assert.Null(store.Get("nobody@example.com"));
    }

    [Fact]
    public void A_reservation_answers_Reserved_until_it_expires_by_itself()
    {
        var store = Open();
        var other = Open(); // another process on the same file judges expiry the same way
        store.Reserve(NewAccount("New@Example.com"), TimeSpan.FromSeconds(30));

        Assert.Equal(AccountState.Reserved, store.GetState("new@example.com"));
        Assert.Equal(AccountState.Reserved, other.GetState("NEW@example.com"));
        Assert.True(store.Get("new@example.com")!.Reserved);
        Assert.Empty(store.List());
        Assert.Equal(0, store.Count());
        Assert.False(other.TryAdd(NewAccount("new@example.com")));
        var busy = Expect.Error(ErrorIds.AccountAlreadyExists, () => other.Reserve(NewAccount("new@EXAMPLE.com"), TimeSpan.FromSeconds(30)));
        Assert.Contains("being created", busy.Message);

        clock.Advance(TimeSpan.FromSeconds(29.9));
        Assert.Equal(AccountState.Reserved, other.GetState("new@example.com"));
        clock.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal(AccountState.Unknown, store.GetState("new@example.com"));
        Assert.Equal(AccountState.Unknown, other.GetState("new@example.com"));

        // An expired reservation (a crashed creation) is replaced by the next one, spelling included.
        var replacing = other.Reserve(NewAccount("NEW@example.com"), TimeSpan.FromSeconds(30));
        Assert.Equal(AccountState.Reserved, store.GetState("new@example.com"));
        Assert.True(other.CommitReservation(replacing));
        Assert.Equal("NEW@example.com", store.Get("new@example.com")!.Address);
    }

    [Fact]
    public void A_reservation_held_for_a_moment_expires_on_the_real_clock()
    {
        var store = Open(TimeProvider.System);
        var brief = store.Reserve(NewAccount("brief@example.com"), TimeSpan.FromMilliseconds(50));
        Assert.Equal(AccountState.Reserved, store.GetState("brief@example.com"));
        Thread.Sleep(120);
        Assert.Equal(AccountState.Unknown, store.GetState("brief@example.com"));
        Assert.False(store.CommitReservation(brief));
    }

    [Fact]
    public void Commit_turns_a_reservation_into_an_account_once()
    {
        var store = Open();
        var reservation = store.Reserve(NewAccount("c@example.com", enabled: false, name: "C"), TimeSpan.FromMinutes(2));
        Assert.True(store.CommitReservation(reservation with { Address = "C@EXAMPLE.COM" }));
        Assert.Equal(AccountState.Disabled, store.GetState("c@example.com"));
        Assert.Equal(NewAccount("c@example.com", enabled: false, name: "C"), store.Get("c@example.com"));
        Assert.False(store.CommitReservation(reservation));
        // Releasing never touches an account that exists.
        Assert.False(store.ReleaseReservation(reservation));
        Assert.Equal(1, store.Count());
        Assert.False(store.CommitReservation(reservation with { Address = "never@example.com" }));
    }

    [Fact]
    public void An_expired_reservation_cannot_be_committed()
    {
        // A peer asked after the expiry was told 3 and may have created the address itself.
        var store = Open();
        var late = store.Reserve(NewAccount("late@example.com"), TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(31));
        Assert.False(store.CommitReservation(late));
        Assert.Equal(AccountState.Unknown, store.GetState("late@example.com"));
        Assert.True(store.ReleaseReservation(late));
        Assert.Null(store.Get("late@example.com"));
    }

    [Fact]
    public void A_creation_that_stalled_past_its_hold_can_neither_commit_nor_release_the_next_creations_reservation()
    {
        var store = Open();
        var stalled = store.Reserve(NewAccount("twice@example.com", name: "stalled"), TimeSpan.FromSeconds(30));
        clock.Advance(TimeSpan.FromSeconds(31));
        var next = store.Reserve(NewAccount("twice@example.com", name: "next"), TimeSpan.FromSeconds(30)); // replaces the expired one

        Assert.False(store.CommitReservation(stalled));
        Assert.False(store.ReleaseReservation(stalled));
        Assert.Equal(AccountState.Reserved, store.GetState("twice@example.com"));
        Assert.True(store.CommitReservation(next));
        Assert.Equal("next", store.Get("twice@example.com")!.DisplayName);
    }

    [Fact]
    public void Release_drops_a_reservation_and_the_address_is_free_again()
    {
        var store = Open();
        var reservation = store.Reserve(NewAccount("r@example.com"), TimeSpan.FromMinutes(2));
        Assert.True(store.ReleaseReservation(reservation with { Address = "R@example.com" }));
        Assert.Equal(AccountState.Unknown, store.GetState("r@example.com"));
        Assert.Null(store.Get("r@example.com"));
        Assert.False(store.ReleaseReservation(reservation));
        Assert.True(store.TryAdd(NewAccount("r@example.com")));
    }

    [Fact]
    public void Reserve_refuses_an_address_that_exists_in_any_case()
    {
        var store = Open();
        store.TryAdd(NewAccount("Ann@Example.com"));
        var ex = Expect.Error(ErrorIds.AccountAlreadyExists, () => store.Reserve(NewAccount("ann@example.com"), TimeSpan.FromMinutes(2)));
        Assert.Contains("'Ann@Example.com' already exists", ex.Message);
        Assert.Equal(AccountState.Active, store.GetState("ann@example.com"));
    }

    [Fact]
    public void Update_changes_only_what_is_given()
    {
        var store = Open();
        store.TryAdd(NewAccount("Ann@Example.com", name: "Ann", quota: 500));
        var changed = store.Update("ann@example.com", enabled: false);
        Assert.Equal(NewAccount("Ann@Example.com", enabled: false, name: "Ann", quota: 500), changed);
        Assert.Equal(AccountState.Disabled, store.GetState("ann@example.com"));
        changed = store.Update("ANN@example.com", displayName: "Ann Lee", quotaBytes: 2000, enabled: true);
        Assert.Equal(NewAccount("Ann@Example.com", name: "Ann Lee", quota: 2000), changed);
        changed = store.Update("ann@example.com", clearQuota: true);
        Assert.Null(changed.QuotaBytes);
        Assert.Equal("Ann Lee", changed.DisplayName);
        Assert.Equal(changed, store.Get("ann@example.com"));
    }

    [Fact]
    public void Update_and_Remove_of_a_missing_or_reserved_address_fail_with_AccountNotFound()
    {
        var store = Open();
        store.Reserve(NewAccount("pending@example.com"), TimeSpan.FromMinutes(2));
        foreach (var address in new[] { "nobody@example.com", "pending@example.com" })
        {
            var ex = Expect.Error(ErrorIds.AccountNotFound, () => store.Update(address, displayName: "x"));
            Assert.Equal(ErrorKind.NotFound, ex.Kind);
            Assert.Equal(address, ex.Target);
            Expect.Error(ErrorIds.AccountNotFound, () => store.Remove(address));
        }
        // The reservation is untouched by either.
        Assert.Equal(AccountState.Reserved, store.GetState("pending@example.com"));
        Assert.Null(store.Get("pending@example.com")!.DisplayName);
    }

    [Fact]
    public void Remove_returns_the_account_as_it_was_and_frees_the_address()
    {
        var store = Open();
        store.TryAdd(NewAccount("Ann@Example.com", name: "Ann"));
        store.TryAdd(NewAccount("bob@example.com"));
        var removed = store.Remove("ann@EXAMPLE.com");
        Assert.Equal(NewAccount("Ann@Example.com", name: "Ann"), removed);
        Assert.Equal(AccountState.Unknown, store.GetState("ann@example.com"));
        Assert.Equal(1, store.Count());
        Expect.Error(ErrorIds.AccountNotFound, () => store.Remove("ann@example.com"));
        Assert.True(store.TryAdd(NewAccount("ann@example.com")));
    }

    [Fact]
    public void List_filters_by_wildcard_and_by_domain_in_address_order()
    {
        var store = Open();
        foreach (var address in new[]
                 {
                     "Ann@Example.com", "bob@example.com", "carol@example.org", "dave@sub.example.com",
                     "eve@x_y.example", "frank@xay.example", "gina@x%y.example", "hal@xzzzy.example", "ivan@a\\b.example", "joe@ab.example",
                 })
            Assert.True(store.TryAdd(NewAccount(address)));
        store.Reserve(NewAccount("zed@example.com"), TimeSpan.FromMinutes(2));

        string[] List(string? pattern, string? domain) => store.List(pattern, domain).Select(a => a.Address).ToArray();

        Assert.Equal(10, List(null, null).Length);
        Assert.Equal(["Ann@Example.com", "bob@example.com"], List(null, "example.com"));
        Assert.Equal(["Ann@Example.com", "bob@example.com"], List(null, "EXAMPLE.COM"));
        Assert.Equal(["dave@sub.example.com"], List(null, "sub.example.com"));
        // '_' and '%' in a domain are characters, not LIKE wildcards; so is the escape character itself.
        Assert.Equal(["eve@x_y.example"], List(null, "x_y.example"));
        Assert.Equal(["gina@x%y.example"], List(null, "x%y.example"));
        Assert.Equal(["ivan@a\\b.example"], List(null, "a\\b.example"));
        Assert.Empty(List(null, "%"));
        Assert.Empty(List(null, "_"));
        Assert.Empty(List(null, "%.example"));
        Assert.Empty(List(null, "nowhere.example"));

        Assert.Equal(["Ann@Example.com"], List("a*", null));
        Assert.Equal(["Ann@Example.com"], List("ANN@*", null));
        Assert.Equal(["Ann@Example.com", "bob@example.com", "carol@example.org"], List("*@example.*", null));
        Assert.Equal(["bob@example.com"], List("?ob@*", null));
        Assert.Equal(["Ann@Example.com", "bob@example.com"], List("[ab]*", null));
        Assert.Equal(["bob@example.com"], List("b*", "example.com"));
        Assert.Empty(List("b*", "example.org"));
        Assert.Equal(["eve@x_y.example"], List("*_*", null));
        Assert.Empty(List("zed*", null)); // a reservation is not an account yet
    }

    [Fact]
    public void Two_stores_on_one_file_opened_at_once_both_work()
    {
        for (int round = 0; round < 5; round++)
        {
            using var fresh = new TempFolder();
            var stores = new AccountStore[6];
            var errors = new ConcurrentQueue<Exception>();
            using var start = new Barrier(stores.Length);
            var threads = Enumerable.Range(0, stores.Length).Select(i => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    stores[i] = AccountStore.Open(fresh.Path);
                    Assert.True(stores[i].TryAdd(NewAccount($"t{i}@example.com")));
                }
                catch (Exception e) { errors.Enqueue(e); }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            try
            {
                Assert.Empty(errors);
                Assert.All(stores, s => Assert.Equal(stores.Length, s.Count()));
            }
            finally
            {
                foreach (var s in stores) s?.Dispose();
                SqliteConnection.ClearAllPools();
            }
        }
    }

    [Fact]
    public void Two_stores_on_one_file_used_from_two_threads_lose_no_write_and_never_report_a_locked_database()
    {
        const int Own = 60, Contested = 60, Updates = 60;
        var stores = new[] { Open(TimeProvider.System), Open(TimeProvider.System) };
        stores[0].TryAdd(NewAccount("shared@example.com", name: "start"));
        var won = new bool[2, Contested];
        var errors = new ConcurrentQueue<Exception>();
        using var start = new Barrier(2);

        void Work(int me)
        {
            var store = stores[me];
            var random = new Random(me);
            try
            {
                start.SignalAndWait();
                for (int i = 0; i < Own; i++)
                {
                    Assert.True(store.TryAdd(NewAccount($"own{me}-{i}@example.com")));
                    // Contested addresses, spelt differently by each thread: exactly one may get each.
                    string contested = me == 0 ? $"race{i}@example.com" : $"RACE{i}@Example.com";
                    if (i % 2 == 0)
                        won[me, i] = store.TryAdd(NewAccount(contested));
                    else
                    {
                        try
                        {
                            var mine = store.Reserve(NewAccount(contested), TimeSpan.FromMinutes(2));
                            Assert.True(store.CommitReservation(mine));
                            won[me, i] = true;
                        }
                        catch (DomainShareException e) when (e.ErrorId == ErrorIds.AccountAlreadyExists) { }
                    }
                    // Two columns of one account changed at once by the two threads: neither change may undo the other.
                    if (i < Updates)
                    {
                        if (me == 0) store.Update("shared@example.com", displayName: $"name {i}");
                        else store.Update("SHARED@example.com", quotaBytes: i);
                    }
                    _ = store.GetState($"own{1 - me}-{random.Next(Own)}@example.com");
                    _ = store.List("race*").Count();
                }
            }
            catch (Exception e) { errors.Enqueue(e); }
        }

        var threads = new[] { new Thread(() => Work(0)), new Thread(() => Work(1)) };
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();

        Assert.Empty(errors);
        for (int i = 0; i < Contested; i++)
        {
            Assert.True(won[0, i] ^ won[1, i], $"race{i}: exactly one thread gets it (got {won[0, i]} and {won[1, i]})");
            Assert.Equal(won[0, i] ? $"race{i}@example.com" : $"RACE{i}@Example.com", stores[0].Get($"race{i}@example.com")!.Address);
        }
        Assert.Equal(2 * Own + Contested + 1, stores[0].Count());
        Assert.Equal(2 * Own + Contested + 1, stores[1].Count());
        var shared = stores[1].Get("shared@example.com")!;
        Assert.Equal($"name {Updates - 1}", shared.DisplayName);
        Assert.Equal(Updates - 1, shared.QuotaBytes);
    }

    [Fact]
    public void A_failed_transaction_leaves_no_half_row_and_the_store_keeps_working()
    {
        var store = Open();
        store.TryAdd(NewAccount("ann@example.com", name: "Ann"));
        store.Reserve(NewAccount("boom@example.com", name: "first"), TimeSpan.FromSeconds(10));
        clock.Advance(TimeSpan.FromSeconds(20)); // the first reservation has expired: the next Reserve deletes it, then inserts
        var before = Rows();

        // A failure injected inside the store's own statements, the way a full disk or an I/O error would strike.
        Sql("""
            CREATE TRIGGER fail_insert BEFORE INSERT ON accounts WHEN NEW.address_key LIKE 'boom%' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
            CREATE TRIGGER fail_update AFTER UPDATE ON accounts WHEN NEW.enabled = 0 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
            """);
        Assert.Contains("injected", Assert.Throws<SqliteException>(() => store.Reserve(NewAccount("boom@example.com", name: "second"), TimeSpan.FromMinutes(2))).Message);
        Assert.Throws<SqliteException>(() => store.TryAdd(NewAccount("boom2@example.com")));
        Assert.Throws<SqliteException>(() => store.Update("ann@example.com", displayName: "Changed", enabled: false, quotaBytes: 7));
        // Every row is exactly as before: the expired reservation deleted inside the failed transaction is back, whole.
        Assert.Equal(before, Rows());
        Assert.Equal("Ann", store.Get("ann@example.com")!.DisplayName);
        Assert.Equal(AccountState.Active, store.GetState("ann@example.com"));
        Assert.Null(store.Get("boom2@example.com"));

        Sql("DROP TRIGGER fail_insert; DROP TRIGGER fail_update;");
        var second = store.Reserve(NewAccount("boom@example.com", name: "second"), TimeSpan.FromMinutes(2));
        Assert.True(store.CommitReservation(second));
        Assert.Equal("second", store.Get("boom@example.com")!.DisplayName);
        Assert.False(store.Update("ann@example.com", enabled: false).Enabled);
        Assert.Equal(AccountState.Disabled, store.GetState("ann@example.com"));

        string Rows()
        {
            using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = store.DatabasePath, Pooling = false }.ToString());
            c.Open();
            using var q = c.CreateCommand();
            q.CommandText = "SELECT * FROM accounts ORDER BY address_key";
            using var r = q.ExecuteReader();
            var text = new System.Text.StringBuilder();
            while (r.Read())
            {
                for (int i = 0; i < r.FieldCount; i++) text.Append(r.IsDBNull(i) ? "NULL" : r.GetValue(i)).Append('|');
                text.AppendLine();
            }
            return text.ToString();
        }

        void Sql(string sql)
        {
            using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = store.DatabasePath, Pooling = false }.ToString());
            c.Open();
            using var command = c.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }
    }

    [Fact]
    public void The_database_is_a_file_named_accounts_db_in_the_data_directory()
    {
        var store = Open();
        Assert.Equal(Path.Combine(folder.Path, AccountStore.FileName), store.DatabasePath);
        Assert.True(File.Exists(store.DatabasePath));
    }
}
