using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;
using ResolverBench;

// Figures of the address resolver (see bench/resolver.sh):
//  A. live resolution (cold cache: NoCache) of an address no peer holds, so every peer's answer is awaited, across
//     1, 5, 20 and 50 real Minger responders on loopback, against a single round trip from a fresh socket;
//     once on bare loopback and once with a simulated network latency per answer;
//  B. cached resolution in-process (AddressResolver with a cache hit, and VerificationCache.Lookup alone).
// Markdown on standard output, progress on standard error. Exit 0 when every figure ran and every answer was right.

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int samples = 1000;
long cachedIterations = 1_000_000;
double[] latenciesMs = [0, 1];
int[] peerCounts = [1, 5, 20, 50];
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--samples": samples = int.Parse(args[++i]); break;
        case "--cached-iterations": cachedIterations = long.Parse(args[++i]); break;
        case "--latency-ms": latenciesMs = args[++i].Split(',').Select(double.Parse).ToArray(); break;
        case "--peers": peerCounts = args[++i].Split(',').Select(int.Parse).ToArray(); break;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}'. Options: --samples N, --cached-iterations N, --latency-ms 0,1, --peers 1,5,20,50");
            return 2;
    }
}

string work = Path.Combine(Path.GetTempPath(), "domainshare-resolverbench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(work);
var liveRows = new List<string>();
var cachedRows = new List<string>();
bool allCorrect = true;
const string Nobody = "nobody@example.com";
const string Holder = "user@example.com";

try
{
    // Distinct loopback addresses make distinct peer names (Linux routes all of 127/8 to lo); elsewhere fall back to 127.0.0.1.
    bool manyLoopbacks = CanBind(IPAddress.Parse("127.0.0.2"));
    int maxPeers = peerCounts.Max();

    foreach (double latencyMs in latenciesMs)
    {
        var delay = TimeSpan.FromMilliseconds(latencyMs);
        var responders = new List<Responder>();
        for (int i = 0; i < maxPeers; i++)
            responders.Add(new Responder(manyLoopbacks ? IPAddress.Parse($"127.0.{i / 250}.{i % 250 + 2}") : IPAddress.Loopback, delay));
        try
        {
            string network = latencyMs == 0 ? "loopback" : $"loopback + {latencyMs:0.#} ms per answer";
            // Warm-up pass, discarded: JIT tiering, socket and thread-pool start-up.
            Progress($"{network}: warm-up");
            await SingleRoundTripsAsync(responders[0].EndPoint, 200);
            foreach (int count in peerCounts)
                await LiveResolutionsAsync(Path.Combine(work, $"warm-{latencyMs}-{count}"), responders.Take(count)
                    .Select(r => new PeerConfiguration { Name = r.EndPoint.Address.ToString(), MingerPort = r.EndPoint.Port }).ToImmutableList(), 100);
            await Task.Delay(500);
            Progress($"{network}: single round trip");
            var single = await SingleRoundTripsAsync(responders[0].EndPoint, samples);
            liveRows.Add(Row($"single round trip (fresh socket, bare UDP), {network}", "1", single, null));

            foreach (int count in peerCounts)
            {
                Progress($"{network}: resolution across {count} peer(s)");
                var peers = responders.Take(count).Select(r => new PeerConfiguration
                {
                    Name = r.EndPoint.Address.ToString(),
                    MingerPort = r.EndPoint.Port,
                }).ToImmutableList();
                var (times, wrong) = await LiveResolutionsAsync(Path.Combine(work, $"live-{latencyMs}-{count}"), peers, samples);
                if (wrong > 0) allCorrect = false;
                liveRows.Add(Row($"resolution, cold cache, answer awaited from every peer, {network}", count.ToString(), times, single, wrong));
            }
        }
        finally
        {
            foreach (var r in responders) await r.DisposeAsync();
        }
    }

    Progress("cached resolution");
    allCorrect &= await CachedAsync(Path.Combine(work, "cached"), cachedIterations, cachedRows);
}
catch (Exception ex)
{
    Console.Error.WriteLine($"resolver bench failed: {ex}");
    return 1;
}
finally
{
    Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
    try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
}

var output = new StringBuilder();
string load = File.Exists("/proc/loadavg") ? $", load average {string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3))} at the end" : "";
output.AppendLine($"## Address resolver ({Environment.ProcessorCount} cores, .NET {Environment.Version}, {samples} samples per live row{load})");
output.AppendLine();
output.AppendLine("| figure | peers | p50 | p99 | max | p50 ÷ single p50 | p99 ÷ single p99 | goal: p99 ≤ 2× single round trip p99 |");
output.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|");
foreach (var row in liveRows) output.AppendLine(row);
output.AppendLine();
output.AppendLine("| figure | iterations | mean | p50 | p99 | goal: < 5 µs |");
output.AppendLine("|---|---:|---:|---:|---:|---|");
foreach (var row in cachedRows) output.AppendLine(row);
Console.Write(output.ToString());
if (!allCorrect) Console.Error.WriteLine("resolver bench: some answers were wrong (FAIL rows)");
return allCorrect ? 0 : 1;

static bool CanBind(IPAddress address)
{
    try
    {
        using var s = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(address, 0));
        return true;
    }
    catch (SocketException) { return false; }
}

// One query, one reply, from a fresh ephemeral socket each time: what the cheapest possible Minger lookup costs.
static async Task<double[]> SingleRoundTripsAsync(IPEndPoint server, int samples)
{
    var query = MingerCodec.EncodeQuery(Nobody, null);
    var buffer = new byte[2048];
    var times = new List<double>(samples);
    for (int i = 0; i < samples + samples / 10; i++)
    {
        long start = Stopwatch.GetTimestamp();
        using (var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            socket.Bind(new IPEndPoint(IPAddress.Any, 0));
            await socket.SendToAsync(query, SocketFlags.None, server);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), timeout.Token);
        }
        if (i >= samples / 10) times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
    }
    return times.ToArray();
}

static ServerConfiguration Config(ImmutableList<PeerConfiguration> peers) => new()
{
    ServerName = "bench.example.com",
    Domains = ImmutableList.Create(new DomainConfiguration("example.com", true)),
    Peers = peers,
};

static async Task<(double[] Times, int Wrong)> LiveResolutionsAsync(string dataDir, ImmutableList<PeerConfiguration> peers, int samples)
{
    var config = Config(peers);
    using var accounts = AccountStore.Open(dataDir);
    using var cache = VerificationCache.Open(dataDir, () => config.DomainSharing);
    var resolver = new AddressResolver(() => config, accounts, cache, new MingerClient());
    var options = new ResolveOptions { NoCache = true };
    var times = new List<double>(samples);
    int wrong = 0;
    int warmUp = Math.Max(20, samples / 10);
    for (int i = 0; i < warmUp + samples; i++)
    {
        long start = Stopwatch.GetTimestamp();
        var r = await resolver.ResolveAsync(Nobody, options);
        double us = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        if (i < warmUp) continue;
        times.Add(us);
        if (r.Result != ResolutionResult.NotFound || r.PeerAnswers.Count != peers.Count)
        {
            wrong++;
            if (wrong <= 3) Console.Error.WriteLine($"  unexpected: {r.Result}, {string.Join("; ", r.FailedPeers.Select(f => f.Reason))}");
        }
    }
    return (times.ToArray(), wrong);
}

static async Task<bool> CachedAsync(string dataDir, long iterations, List<string> rows)
{
    var config = Config([new PeerConfiguration { Name = "192.0.2.20" }]);
    using var accounts = AccountStore.Open(dataDir);
    for (int i = 0; i < 1000; i++)
        accounts.TryAdd(new Account($"local{i}@example.com", null, true, null, DateTimeOffset.UtcNow, $"maildir/{i}"));
    using var cache = VerificationCache.Open(dataDir, () => config.DomainSharing);
    for (int i = 0; i < 10_000; i++)
        cache.StorePositive($"remote{i}@example.com", "192.0.2.20");
    cache.StorePositive(Holder, "192.0.2.20");
    var resolver = new AddressResolver(() => config, accounts, cache, new MingerClient());

    var first = await resolver.ResolveAsync(Holder);
    bool correct = first is { Result: ResolutionResult.Peer, FromCache: true, Peer: "192.0.2.20" };

    rows.Add(Measure("cached resolution: AddressResolver.ResolveAsync, cache hit (account lookup included)", iterations,
        () => resolver.ResolveAsync(Holder).GetAwaiter().GetResult().FromCache, ref correct));
    rows.Add(Measure("… VerificationCache.Lookup alone", iterations, () => cache.Lookup(Holder) is not null, ref correct));
    rows.Add(Measure("… AccountStore.GetState alone (SQLite point read, part of every resolution)", Math.Min(iterations, 200_000),
        () => accounts.GetState(Holder) == AccountState.Unknown, ref correct, goal: false));
    return correct;
}

static string Measure(string name, long iterations, Func<bool> call, ref bool correct, bool goal = true)
{
    for (int i = 0; i < Math.Min(iterations, 200_000); i++)
        if (!call()) correct = false;
    // Mean over every iteration, timed as one block.
    long start = Stopwatch.GetTimestamp();
    for (long i = 0; i < iterations; i++)
        if (!call()) correct = false;
    double meanUs = Stopwatch.GetElapsedTime(start).TotalMicroseconds / iterations;
    // Distribution from individually timed calls.
    int n = (int)Math.Min(iterations, 200_000);
    var each = new double[n];
    for (int i = 0; i < n; i++)
    {
        long t = Stopwatch.GetTimestamp();
        call();
        each[i] = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
    }
    Array.Sort(each);
    string verdict = !goal ? "(not a goal)" : !correct ? "**FAIL** (wrong answer)" : meanUs < 5 && Percentile(each, 0.5) < 5 ? "met" : "**miss**";
    return $"| {name} | {iterations:N0} | {Us(meanUs)} | {Us(Percentile(each, 0.5))} | {Us(Percentile(each, 0.99))} | {verdict} |";
}

static string Row(string name, string peers, double[] timesUs, double[]? single, int wrong = 0)
{
    var sorted = timesUs.OrderBy(t => t).ToArray();
    double p50 = Percentile(sorted, 0.5), p99 = Percentile(sorted, 0.99), max = sorted[^1];
    if (single is null)
        return $"| {name} | {peers} | {Us(p50)} | {Us(p99)} | {Us(max)} | 1.00 | 1.00 | (reference) |";
    var singleSorted = single.OrderBy(t => t).ToArray();
    double ratio50 = p50 / Percentile(singleSorted, 0.5);
    double ratio = p99 / Percentile(singleSorted, 0.99);
    string verdict = wrong > 0 ? $"**FAIL** ({wrong} wrong answers)" : ratio <= 2 ? "met" : "**miss**";
    return $"| {name} | {peers} | {Us(p50)} | {Us(p99)} | {Us(max)} | {ratio50:0.00} | {ratio:0.00} | {verdict} |";
}

static double Percentile(double[] sorted, double p)
{
    int index = (int)Math.Ceiling(p * sorted.Length) - 1;
    return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
}

static string Us(double us) => us >= 1000 ? $"{us / 1000:0.00} ms" : us >= 10 ? $"{us:0} µs" : $"{us:0.00} µs";

static void Progress(string what) => Console.Error.WriteLine($"resolver bench: {what}");
