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

namespace DomainShare.MingerBench;

/// <summary>
/// Starts a Minger server on 127.0.0.1 over a real account store and drives it with a closed-loop load generator in the
/// same process: several client sockets (each its own source address), each keeping a fixed number of queries in flight.
/// Prints a Markdown table (standard output) with the goals and the measured figures; progress goes to standard error.
/// </summary>
internal static class Program
{
    private const string Secret = "bench secret, sixteen+ characters";

    private static async Task<int> Main(string[] args)
    {
        if (args is ["--help"] or ["-h"])
        {
            Console.WriteLine(Options.Usage);
            return 0;
        }
        Options options;
        try { options = Options.Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"MingerBench: {e.Message}");
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }

        var folder = Path.Combine(Path.GetTempPath(), "domainshare-mingerbench-" + Guid.NewGuid().ToString("N"));
        try
        {
            return await RunAsync(options, folder);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"MingerBench: failed: {e}");
            return 1;
        }
        finally
        {
            try { Directory.Delete(folder, recursive: true); }
            catch (IOException) { }
        }
    }

    private static async Task<int> RunAsync(Options options, string folder)
    {
        Progress($"creating {options.Accounts:N0} accounts in {folder}");
        var setup = Stopwatch.StartNew();
        using var store = AccountStore.Open(folder);
        var workload = Workload.Create(store, options.Accounts, options.Secret ? Secret : null);
        setup.Stop();
        Progress($"accounts ready in {setup.Elapsed.TotalSeconds:F1} s");

        Assert127Aliases(options.Sockets);
        var settings = new MingerServerSettings
        {
            Secret = options.Secret ? Secret : null,
            AllowedSources = [NetworkRange.TryParse("127.0.0.0/8", out var loopback) ? loopback : throw new InvalidOperationException()],
            RateLimitPerSecond = 1_000_000, // checked on every datagram, never reached by the bench's few sources
        };
        await using var server = new MingerServer(store, null, new StandardErrorLog(), settings, options.ReceiveLoops);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        var endpoint = server.LocalEndPoint!;
        Progress($"server on {endpoint}");

        Progress($"warm-up ({options.WarmupSeconds:0.#} s)");
        await LoadGenerator.RunAsync(endpoint, workload, options.Sockets, options.Window, long.MaxValue, TimeSpan.FromSeconds(options.WarmupSeconds));

        var results = new List<(string Name, PhaseResult Result, bool Judged)>();
        foreach (var (name, window, judged) in new[]
                 {
                     ($"{options.Sockets} sockets × {options.Window} in flight (goal load)", options.Window, true),
                     ($"{options.Sockets} sockets × 1 in flight (light load)", 1, false),
                     ($"{options.Sockets} sockets × {options.SaturationWindow} in flight (saturation)", options.SaturationWindow, false),
                 })
        {
            Progress($"measuring: {name}, up to {options.Queries:N0} queries or {options.Seconds:0.#} s");
            var result = await LoadGenerator.RunAsync(endpoint, workload, options.Sockets, window, options.Queries, TimeSpan.FromSeconds(options.Seconds));
            Progress($"  {result.QueriesPerSecond:N0} q/s, p50 {result.Percentile(0.50):F3} ms, p99 {result.Percentile(0.99):F3} ms, lost {result.Lost}, wrong {result.Wrong}, {result.CpuMicrosecondsPerQuery:F1} µs CPU/query");
            results.Add((name, result, judged));
        }
        var stats = server.GetStatistics();
        await server.StopAsync();

        Console.Write(Report(options, setup.Elapsed, results, stats));
        return results.Any(r => r.Result.Wrong > 0) || stats.Errors > 0 ? 1 : 0;
    }

    private static string Report(Options options, TimeSpan setup, List<(string Name, PhaseResult Result, bool Judged)> results, MingerServerStatistics stats)
    {
        var culture = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine(culture, $"Minger server bench, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {RuntimeInformation.OSDescription}, " +
                                 $"{Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}, server and load generator in one process on loopback.");
        text.AppendLine(culture, $"{options.Accounts:N0} accounts in SQLite (set up in {setup.TotalSeconds:F1} s); queries {(options.Secret ? "signed (digest checked)" : "unsigned")}, " +
                                 $"70 % existing / 30 % unknown addresses in mixed case; allowed-source filter and per-source rate limiter active; " +
                                 $"{(options.ReceiveLoops == 0 ? "default" : options.ReceiveLoops.ToString(culture))} receive loops.");
        text.AppendLine();
        text.AppendLine("| figure | goal | measured | result |");
        text.AppendLine("|---|---|---|---|");
        foreach (var (name, r, judged) in results)
        {
            string rate = r.QueriesPerSecond.ToString("N0", culture) + " q/s";
            string latency = string.Create(culture, $"p50 {r.Percentile(0.50):F3} ms, p99 {r.Percentile(0.99):F3} ms, p99.9 {r.Percentile(0.999):F3} ms");
            string counts = string.Create(culture, $"{r.Completed:N0} answers in {r.Elapsed.TotalSeconds:F1} s, {r.Lost} lost, {r.Wrong} wrong; {r.CpuMicrosecondsPerQuery:F1} µs CPU per query (both sides)");
            if (judged)
            {
                text.AppendLine(culture, $"| throughput, {name} | ≥ 50,000 q/s | {rate} | {Verdict(r.Wrong == 0 && r.QueriesPerSecond >= 50_000, r.Wrong)} |");
                text.AppendLine(culture, $"| latency, {name} | p99 < 1 ms | {latency} | {Verdict(r.Wrong == 0 && r.Percentile(0.99) < 1.0, r.Wrong)} |");
                text.AppendLine(culture, $"| … answers | every answer right | {counts} | {(r.Wrong == 0 ? "pass" : "**FAIL**")} |");
            }
            else
            {
                text.AppendLine(culture, $"| {name} | (reported) | {rate}; {latency}; {counts} | {(r.Wrong == 0 ? "info" : "**FAIL**")} |");
            }
        }
        text.AppendLine(culture, $"| server counters | no errors | received {stats.Received:N0}, answered {stats.Answered:N0} (5: {stats.AnsweredExists:N0}, 3: {stats.AnsweredUnknown:N0}), " +
                                 $"rate limited {stats.RateLimited:N0}, malformed {stats.Malformed:N0}, errors {stats.Errors:N0} | {(stats.Errors == 0 ? "pass" : "**FAIL**")} |");
        return text.ToString();
    }

    private static string Verdict(bool pass, long wrong) => wrong > 0 ? "**FAIL**" : pass ? "pass" : "**miss**";

    /// <summary>Each client socket uses its own source address 127.0.0.N (Linux routes all of 127/8 to lo; elsewhere only 127.0.0.1 may exist).</summary>
    private static void Assert127Aliases(int sockets)
    {
        for (int i = 0; i < sockets; i++)
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(LoadGenerator.SourceAddress(i), 0));
        }
    }

    internal static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}

/// <summary>The server's warnings and errors, on standard error with the progress lines.</summary>
internal sealed class StandardErrorLog : IEngineLog
{
    public void Write(LogLevel level, string message)
    {
        if (level >= LogLevel.Warning) Program.Progress($"server {level}: {message}");
    }
}

/// <summary>The bench's parameters, from the command line.</summary>
internal sealed record Options
{
    public int Accounts { get; init; } = 10_000;
    public long Queries { get; init; } = 1_000_000;
    public double Seconds { get; init; } = 8;
    public double WarmupSeconds { get; init; } = 2;
    public int Sockets { get; init; } = 4;
    public int Window { get; init; } = 4;
    public int SaturationWindow { get; init; } = 32;
    public int ReceiveLoops { get; init; }
    public bool Secret { get; init; } = true;

    public const string Usage = """
        usage: MingerBench [--accounts N] [--queries N] [--seconds S] [--warmup S] [--sockets N] [--window N]
                           [--saturation-window N] [--loops N] [--no-secret]
          --queries and --seconds bound each measured phase (whichever comes first).
          --window is the number of queries each socket keeps in flight in the judged phase.
          --loops sets the server's receive loops (0: its default).
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int(int min) => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min ? v : throw new ArgumentException($"{args[i]} needs a whole number ≥ {min}");
            double Secs() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0 && v <= 600 ? v : throw new ArgumentException($"{args[i]} needs seconds in (0, 600]");
            o = args[i] switch
            {
                "--accounts" => o with { Accounts = Int(10) },
                "--queries" => o with { Queries = Int(1000) },
                "--seconds" => o with { Seconds = Secs() },
                "--warmup" => o with { WarmupSeconds = Secs() },
                "--sockets" => o with { Sockets = Math.Min(Int(1), 64) },
                "--window" => o with { Window = Math.Min(Int(1), 1024) },
                "--saturation-window" => o with { SaturationWindow = Math.Min(Int(1), 1024) },
                "--loops" => o with { ReceiveLoops = Math.Min(Int(0), 16) },
                "--no-secret" => o with { Secret = false },
                _ => throw new ArgumentException($"unknown option '{args[i]}'"),
            };
        }
        return o;
    }
}
