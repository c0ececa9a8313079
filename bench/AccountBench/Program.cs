using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using DomainShare.Engine;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using Microsoft.Data.Sqlite;

namespace DomainShare.AccountBench;

/// <summary>
/// Figures of account creation and lookup, all in one process on loopback (see bench/accounts.sh):
/// <list type="number">
/// <item>latency of <see cref="AccountCreator.CreateAsync"/> with 1, 10 and 50 peers, each a real in-process
/// <see cref="MingerServer"/> over its own account store on its own loopback address, asked over UDP with a secret;</item>
/// <item>10,000 accounts created one after the other with 5 peers (the engine path; the New-DomainShareAccount cmdlet
/// adds PowerShell's pipeline on top);</item>
/// <item><see cref="AccountStore.GetState"/> of one address among 1,000,000 accounts (bulk-loaded straight into the
/// store's schema), hits and misses, and the size of accounts.db.</item>
/// </list>
/// Markdown on standard output, progress on standard error. Exit 0 when every figure ran and every check held (a timing
/// over its goal is a **miss** but does not change the exit code), 1 when a figure failed, 2 on bad arguments.
/// </summary>
internal static class Program
{
    private const string Secret = "account bench shared secret";
    private const string Domain = "example.com";

    private static async Task<int> Main(string[] args)
    {
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        if (args is ["--help"] or ["-h"])
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }
        Options options;
        try { options = Options.Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"AccountBench: {e.Message}");
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }

        string folder = Path.Combine(Path.GetTempPath(), "domainshare-accountbench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var report = new Report();
            bool ok = await RunAsync(options, folder, report);
            Console.Write(report.ToMarkdown(options, folder));
            return ok ? 0 : 1;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"AccountBench: failed: {e}");
            return 1;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException e) { Console.Error.WriteLine($"AccountBench: could not delete {folder}: {e.Message}"); }
        }
    }

    private static async Task<bool> RunAsync(Options options, string folder, Report report)
    {
        bool ok = true;
        int maxPeers = Math.Max(options.PeerCounts.Max(), options.SequentialPeers);
        bool manyLoopbacks = CanBind(IPAddress.Parse("127.0.0.2"));
        Progress($"starting {maxPeers} peer Minger servers on {(manyLoopbacks ? "127.0.0.10 and up" : "127.0.0.1 (distinct ports)")}");
        var peers = new List<Peer>();
        try
        {
            for (int i = 0; i < maxPeers; i++)
                peers.Add(await Peer.StartAsync(Path.Combine(folder, $"peer{i}"), manyLoopbacks ? IPAddress.Parse($"127.0.{(i + 10) / 250}.{(i + 10) % 250}") : IPAddress.Loopback));
            // Each peer holds a few accounts of its own, none of which the bench creates.
            foreach (var (peer, i) in peers.Select((p, i) => (p, i)))
                for (int j = 0; j < 100; j++)
                    peer.Store.TryAdd(new Account($"peer{i}-user{j}@{Domain}", null, true, null, DateTimeOffset.UtcNow, $"mail/{Domain}/peer{i}-user{j}"));

            // 1. Creation latency against 0 (storage only), 1, 10, 50 peers.
            foreach (int count in new[] { 0 }.Concat(options.PeerCounts))
            {
                var creator = NewCreator(Path.Combine(folder, $"creator-{count}"), peers.Take(count), out var store);
                using (store)
                {
                    string prefix = $"c{count}-";
                    Progress($"figure 1: {options.Creations} creations with {count} peers (+{options.Warmup} warm-up)");
                    for (int i = 0; i < options.Warmup; i++)
                        await creator.CreateAsync(new AccountRequest($"{prefix}warm{i}@{Domain}"), skipUnreachablePeers: false);
                    var created = await TimeCreationsAsync(creator, prefix, options.Creations, options.FigureLimit);
                    ok &= Check(report, created.Failures == 0 && created.Samples.Count == options.Creations,
                        $"{count} peers: {created.Samples.Count} of {options.Creations} creations, {created.Failures} refused");
                    ok &= Check(report, store.Count() == options.Warmup + created.Samples.Count, $"{count} peers: every created account is in the store");

                    // The fan-out alone, to the same peers, for an address none of them holds.
                    var fanOut = new Samples();
                    var client = new MingerClient();
                    var peerConfigs = peers.Take(count).Select(p => p.AsPeer).ToList();
                    if (count > 0)
                    {
                        for (int i = 0; i < options.Warmup; i++)
                            await client.AskAsync($"warm{i}@{Domain}", peerConfigs, MingerFanOutMode.WaitForAll);
                        for (int i = 0; i < options.Creations; i++)
                        {
                            long t = Stopwatch.GetTimestamp();
                            var answer = await client.AskAsync($"{prefix}probe{i}@{Domain}", peerConfigs, MingerFanOutMode.WaitForAll);
                            fanOut.Add(Stopwatch.GetElapsedTime(t));
                            if (answer.Peers.Any(p => p.Status != MingerStatus.Unknown)) ok &= Check(report, false, $"{count} peers: a fan-out got an answer other than 3");
                        }
                    }
                    report.Creation.Add((count, created.Samples, fanOut));
                    Progress($"  p50 {created.Samples.Percentile(0.5):F2} ms, p99 {created.Samples.Percentile(0.99):F2} ms; fan-out alone p50 {fanOut.Percentile(0.5):F2} ms");
                }
            }

            // 2. Sequential creations with 5 peers.
            {
                var creator = NewCreator(Path.Combine(folder, "sequential"), peers.Take(options.SequentialPeers), out var store);
                using (store)
                {
                    Progress($"figure 2: {options.Sequential:N0} creations one after the other with {options.SequentialPeers} peers (at most {options.SequentialLimit.TotalSeconds:F0} s)");
                    var whole = Stopwatch.StartNew();
                    var created = await TimeCreationsAsync(creator, "seq-", options.Sequential, options.SequentialLimit, everyN: 1000);
                    whole.Stop();
                    long count = store.Count();
                    ok &= Check(report, created.Failures == 0 && count == created.Samples.Count && count == options.Sequential,
                        $"sequential: {created.Samples.Count:N0} of {options.Sequential:N0} created in the time allowed, {created.Failures} refused, {count:N0} in the store");
                    report.Sequential = (created.Samples, whole.Elapsed, count);
                }
            }
        }
        finally
        {
            foreach (var peer in peers) await peer.DisposeAsync();
        }

        // 3. One lookup among a million.
        ok &= Lookups(options, Path.Combine(folder, "million"), report);
        return ok;
    }

    private static bool Check(Report report, bool holds, string what)
    {
        report.Checks.Add((what, holds));
        if (!holds) Progress("CHECK FAILED: " + what);
        return holds;
    }

    private static AccountCreator NewCreator(string dataDirectory, IEnumerable<Peer> peers, out AccountStore store)
    {
        store = AccountStore.Open(dataDirectory);
        var configuration = new ServerConfiguration
        {
            ServerName = "bench.example.com",
            Domains = ImmutableList.Create(new DomainConfiguration(Domain, true)),
            Peers = peers.Select(p => p.AsPeer).ToImmutableList(),
            Minger = new MingerSettings { Secret = Secret }, // default timeout (2 s) and retries (2): every peer answers at once
        };
        return new AccountCreator(() => configuration, store, dataDirectory, new MingerClient());
    }

    private static async Task<(Samples Samples, int Failures)> TimeCreationsAsync(AccountCreator creator, string prefix, int count, TimeSpan limit, int everyN = 0)
    {
        var samples = new Samples();
        int failures = 0;
        var deadline = Stopwatch.StartNew();
        for (int i = 0; i < count && deadline.Elapsed < limit; i++)
        {
            long t = Stopwatch.GetTimestamp();
            try
            {
                await creator.CreateAsync(new AccountRequest($"{prefix}user{i}@{Domain}"), skipUnreachablePeers: false);
                samples.Add(Stopwatch.GetElapsedTime(t));
            }
            catch (DomainShareException e)
            {
                if (failures++ < 3) Progress($"  refused: {e.ErrorId}: {e.Message}");
            }
            if (everyN > 0 && (i + 1) % everyN == 0)
                Progress($"  {i + 1:N0} created, {(i + 1) / deadline.Elapsed.TotalSeconds:N0}/s");
        }
        return (samples, failures);
    }

    private static bool Lookups(Options options, string dataDirectory, Report report)
    {
        int n = options.Accounts;
        Progress($"figure 3: bulk-loading {n:N0} accounts");
        AccountStore.Open(dataDirectory).Dispose(); // creates accounts.db with the store's own schema
        SqliteConnection.ClearAllPools();
        string path = Path.Combine(dataDirectory, AccountStore.FileName);
        var load = Stopwatch.StartNew();
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            connection.Open();
            using (var pragma = connection.CreateCommand())
            {
                pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-131072;";
                pragma.ExecuteNonQuery();
            }
            using var tx = connection.BeginTransaction();
            using var insert = connection.CreateCommand();
            insert.Transaction = tx;
            insert.CommandText = """
                INSERT INTO accounts (address_key, address, display_name, enabled, reserved, reserved_until, quota_bytes, created_utc, maildir)
                VALUES ($key, $address, NULL, $enabled, 0, NULL, NULL, $created, $maildir)
                """;
            var key = insert.Parameters.Add("$key", SqliteType.Text);
            var address = insert.Parameters.Add("$address", SqliteType.Text);
            var enabled = insert.Parameters.Add("$enabled", SqliteType.Integer);
            insert.Parameters.AddWithValue("$created", DateTimeOffset.UtcNow.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            var maildir = insert.Parameters.Add("$maildir", SqliteType.Text);
            insert.Prepare();
            for (int i = 0; i < n; i++)
            {
                // Keys in ascending order (the table is clustered on them), as an import of a sorted list would be.
                string given = HitAddress(i, upper: i % 3 == 0);
                key.Value = given.ToLowerInvariant();
                address.Value = given;
                enabled.Value = i % 50 == 0 ? 0 : 1;
                maildir.Value = $"mail/{DomainOf(i)}/user{i:D7}";
                insert.ExecuteNonQuery();
            }
            tx.Commit();
            using var checkpoint = connection.CreateCommand();
            checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            checkpoint.ExecuteNonQuery();
        }
        load.Stop();
        long bytes = new[] { "", "-wal", "-shm" }.Select(s => new FileInfo(path + s)).Where(f => f.Exists).Sum(f => f.Length);
        Progress($"  loaded in {load.Elapsed.TotalSeconds:F1} s; accounts.db {bytes / 1048576.0:F1} MiB");

        using var store = AccountStore.Open(dataDirectory);
        long counted = store.Count();
        bool ok = Check(report, counted == n, $"lookup: {counted:N0} accounts in the store after the bulk load");

        // The addresses to look up, made before timing: half hits (in another case than stored), half misses.
        var random = new Random(1);
        int lookups = options.Lookups;
        var queries = new string[lookups];
        var expected = new AccountState[lookups];
        for (int q = 0; q < lookups; q++)
        {
            int i = random.Next(n);
            if (q % 2 == 0)
            {
                queries[q] = HitAddress(i, upper: i % 3 != 0);
                expected[q] = i % 50 == 0 ? AccountState.Disabled : AccountState.Active;
            }
            else
            {
                queries[q] = q % 4 == 1 ? $"nobody{i:D7}@{DomainOf(i)}" : $"user{i:D7}@elsewhere.example";
                expected[q] = AccountState.Unknown;
            }
        }
        Progress($"  {options.Warmup * 50:N0} warm-up lookups, then {lookups:N0} timed (at most {options.FigureLimit.TotalSeconds:F0} s)");
        for (int q = 0; q < Math.Min(options.Warmup * 50, lookups); q++) store.GetState(queries[q]);
        var hits = new Samples();
        var misses = new Samples();
        int wrong = 0;
        var deadline = Stopwatch.StartNew();
        for (int q = 0; q < lookups && deadline.Elapsed < options.FigureLimit; q++)
        {
            long t = Stopwatch.GetTimestamp();
            var state = store.GetState(queries[q]);
            var elapsed = Stopwatch.GetElapsedTime(t);
            (expected[q] == AccountState.Unknown ? misses : hits).Add(elapsed);
            if (state != expected[q]) wrong++;
        }
        ok &= Check(report, wrong == 0 && hits.Count + misses.Count == lookups, $"lookup: {hits.Count + misses.Count:N0} of {lookups:N0} lookups done, {wrong} wrong answers");
        report.Lookup = (n, load.Elapsed, bytes, hits, misses);
        Progress($"  hits p50 {hits.Percentile(0.5) * 1000:F1} µs p99 {hits.Percentile(0.99) * 1000:F1} µs; misses p50 {misses.Percentile(0.5) * 1000:F1} µs p99 {misses.Percentile(0.99) * 1000:F1} µs");
        return ok;
    }

    private static string DomainOf(int i) => $"d{i % 20:D2}.example";

    private static string HitAddress(int i, bool upper) => upper ? $"User{i:D7}@D{i % 20:D2}.Example" : $"user{i:D7}@{DomainOf(i)}";

    private static bool CanBind(IPAddress address)
    {
        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(address, 0));
            return true;
        }
        catch (SocketException) { return false; }
    }

    internal static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");

    /// <summary>A peer server: an account store and a Minger server answering from it.</summary>
    private sealed class Peer : IAsyncDisposable
    {
        private Peer(AccountStore store, MingerServer server)
        {
            Store = store;
            Server = server;
        }

        public AccountStore Store { get; }
        public MingerServer Server { get; }

        public PeerConfiguration AsPeer => new()
        {
            Name = Server.LocalEndPoint!.Address.ToString(),
            MingerPort = Server.LocalEndPoint.Port,
            Secret = Secret,
        };

        public static async Task<Peer> StartAsync(string dataDirectory, IPAddress address)
        {
            var store = AccountStore.Open(dataDirectory);
            // No rate limit: the creating server asks every peer once per creation, thousands of times a minute from one address.
            var server = new MingerServer(store, null, new WarningLog(), new MingerServerSettings { Secret = Secret, RateLimitPerSecond = 0 }, receiveLoops: 1);
            await server.StartAsync(new IPEndPoint(address, 0));
            return new Peer(store, server);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            Store.Dispose();
        }
    }

    private sealed class WarningLog : IEngineLog
    {
        public void Write(LogLevel level, string message)
        {
            if (level >= LogLevel.Warning) Progress($"peer {level}: {message}");
        }
    }
}

/// <summary>Durations in milliseconds.</summary>
internal sealed class Samples
{
    private readonly List<double> values = [];
    private double[]? sorted;

    public int Count => values.Count;

    public void Add(TimeSpan elapsed)
    {
        values.Add(elapsed.TotalMilliseconds);
        sorted = null;
    }

    public double Percentile(double p)
    {
        if (values.Count == 0) return double.NaN;
        sorted ??= values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public double Mean => values.Count == 0 ? double.NaN : values.Average();
}

internal sealed class Report
{
    public List<(int Peers, Samples Creation, Samples FanOut)> Creation { get; } = [];
    public (Samples Samples, TimeSpan Elapsed, long Stored)? Sequential { get; set; }
    public (int Accounts, TimeSpan Load, long Bytes, Samples Hits, Samples Misses)? Lookup { get; set; }
    public List<(string What, bool Holds)> Checks { get; } = [];

    private static string Verdict(bool pass) => pass ? "pass" : "**miss**";

    public string ToMarkdown(Options options, string folder)
    {
        var culture = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(culture, $"Account bench, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} logical CPUs, " +
                                 $".NET {Environment.Version}; creator, peers and stores in one process, loopback only, data in {Path.GetDirectoryName(folder)}.");
        text.AppendLine("Creation = AccountCreator.CreateAsync (validate, reserve, ask every peer over Minger with a secret, create the Maildir, commit; " +
                        "SQLite with synchronous=FULL, so each creation waits for two commits to reach the disk). The New-DomainShareAccount cmdlet adds PowerShell's pipeline on top; this is the engine path.");
        text.AppendLine();
        text.AppendLine("| figure | goal | measured | result |");
        text.AppendLine("|---|---|---|---|");
        double? flatBase = null;
        foreach (var (peers, creation, fanOut) in Creation)
        {
            string measured = string.Create(culture, $"p50 {creation.Percentile(0.5):F2} ms, p99 {creation.Percentile(0.99):F2} ms ({creation.Count} creations)");
            if (peers == 0)
            {
                flatBase = creation.Percentile(0.5);
                text.AppendLine(culture, $"| 1. creation, 0 peers (storage, fsync and Maildir only) | (reported) | {measured} | info |");
                continue;
            }
            string fan = string.Create(culture, $"; the fan-out alone: p50 {fanOut.Percentile(0.5):F2} ms, p99 {fanOut.Percentile(0.99):F2} ms");
            string goal = peers == Creation.Max(c => c.Peers) ? "< 10 ms (p50), nearly flat" : "nearly flat";
            bool pass = peers == Creation.Max(c => c.Peers) ? creation.Percentile(0.5) < 10 : true;
            text.AppendLine(culture, $"| 1. creation, {peers} peer{(peers == 1 ? "" : "s")} | {goal} | {measured}{fan} | {(peers == Creation.Max(c => c.Peers) ? Verdict(pass) : "info")} |");
        }
        var withPeers = Creation.Where(c => c.Peers > 0).ToList();
        if (withPeers.Count >= 2)
        {
            var first = withPeers.First();
            var last = withPeers.Last();
            double growth = last.Creation.Percentile(0.5) - first.Creation.Percentile(0.5);
            string storage = flatBase is double b ? string.Create(culture, $"; storage alone is {b:F2} ms") : "";
            text.AppendLine(culture, $"| 1. … growth from {first.Peers} to {last.Peers} peers | nearly flat: < +2 ms at p50 | " +
                                     $"{growth:+0.00;-0.00} ms at p50 ({growth / Math.Max(1, last.Peers - first.Peers) * 1000:F0} µs per extra peer){storage} | {Verdict(growth < 2.0)} |");
        }
        if (Sequential is var (seq, elapsed, stored))
        {
            double rate = seq.Count / elapsed.TotalSeconds;
            text.AppendLine(culture, $"| 2. {options.Sequential:N0} accounts created one after the other, {options.SequentialPeers} peers | (reported) | " +
                                     $"{rate:N0} accounts/s ({seq.Count:N0} in {elapsed.TotalSeconds:F1} s; each p50 {seq.Percentile(0.5):F2} ms, p99 {seq.Percentile(0.99):F2} ms; {stored:N0} in the store) | info |");
        }
        if (Lookup is var (accounts, load, bytes, hits, misses))
        {
            double p99Hits = hits.Percentile(0.99) * 1000, p99Misses = misses.Percentile(0.99) * 1000;
            text.AppendLine(culture, $"| 3. AccountStore.GetState among {accounts:N0} accounts, hits (another case than stored) | < 50 µs | " +
                                     $"p50 {hits.Percentile(0.5) * 1000:F1} µs, p99 {p99Hits:F1} µs, mean {hits.Mean * 1000:F1} µs ({hits.Count:N0} lookups) | {Verdict(p99Hits < 50)} (p99) |");
            text.AppendLine(culture, $"| 3. … misses (unknown local part or domain) | < 50 µs | " +
                                     $"p50 {misses.Percentile(0.5) * 1000:F1} µs, p99 {p99Misses:F1} µs, mean {misses.Mean * 1000:F1} µs ({misses.Count:N0} lookups) | {Verdict(p99Misses < 50)} (p99) |");
            text.AppendLine(culture, $"| 3. … accounts.db on disk | (reported) | {bytes / 1048576.0:F1} MiB ({(double)bytes / accounts:F0} bytes per account); bulk load {load.TotalSeconds:F1} s in one transaction | info |");
        }
        foreach (var (what, holds) in Checks.Where(c => !c.Holds))
            text.AppendLine(culture, $"| check: {what} | holds | does not hold | **FAIL** |");
        text.AppendLine(culture, $"| checks | all hold | {Checks.Count(c => c.Holds)} of {Checks.Count} | {(Checks.All(c => c.Holds) ? "pass" : "**FAIL**")} |");
        return text.ToString();
    }
}

/// <summary>The bench's parameters, from the command line.</summary>
internal sealed record Options
{
    public int[] PeerCounts { get; init; } = [1, 10, 50];
    public int Creations { get; init; } = 200;
    public int Warmup { get; init; } = 20;
    public int Sequential { get; init; } = 10_000;
    public int SequentialPeers { get; init; } = 5;
    public TimeSpan SequentialLimit { get; init; } = TimeSpan.FromSeconds(180);
    public int Accounts { get; init; } = 1_000_000;
    public int Lookups { get; init; } = 200_000;
    public TimeSpan FigureLimit { get; init; } = TimeSpan.FromSeconds(60);

    public const string Usage = """
        usage: AccountBench [--peers 1,10,50] [--creations N] [--sequential N] [--sequential-peers N] [--accounts N] [--lookups N]
          --creations   timed creations per peer count (figure 1), after 20 warm-up ones; default 200
          --sequential  accounts created one after the other with --sequential-peers peers (figure 2); default 10,000, at most 180 s
          --accounts    accounts bulk-loaded for the lookup figure (3); default 1,000,000
          --lookups     timed GetState calls, half hits and half misses; default 200,000, at most 60 s
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int(int min, int max) => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
                ? v : throw new ArgumentException($"{args[i]} needs a whole number from {min} to {max}");
            o = args[i] switch
            {
                "--peers" => o with
                {
                    PeerCounts = Value().Split(',').Select(s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= 1 and <= 200
                        ? v : throw new ArgumentException("--peers needs a list of counts from 1 to 200, e.g. 1,10,50")).Distinct().Order().ToArray(),
                },
                "--creations" => o with { Creations = Int(10, 100_000) },
                "--sequential" => o with { Sequential = Int(1, 1_000_000) },
                "--sequential-peers" => o with { SequentialPeers = Int(1, 200) },
                "--accounts" => o with { Accounts = Int(1000, 50_000_000) },
                "--lookups" => o with { Lookups = Int(1000, 10_000_000) },
                _ => throw new ArgumentException($"unknown option '{args[i]}'"),
            };
        }
        return o;
    }
}
