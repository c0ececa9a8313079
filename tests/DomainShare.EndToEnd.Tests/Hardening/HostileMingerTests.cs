using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Relay;
using DomainShare.Engine.Tests.Minger.Server;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// The hostile Minger figure (issue 7): a real relay process with a Minger secret and accounts, under fuzzed datagrams
/// from several sources, a flood from one source far above the rate limit, and a directory-harvest attempt from a
/// source without the secret. It must not crash, the rate limit must hold, a good peer must keep getting its answers,
/// and nothing it says to a source without the secret may tell an existing address from a missing one.
/// </summary>
public sealed class HostileMingerTests(ITestOutputHelper output) : IDisposable
{
    private const string Area = "Hostile Minger";

    /// <summary>
    /// The secret <see cref="MingerFuzz"/> signs its seed queries with: on the relay, the share of fuzzed datagrams that
    /// are still well signed passes the credentials check and reaches the account lookup.
    /// </summary>
    private const string FuzzSecret = "0123456789abcdef";

    /// <summary>Queries per second and source on the storm relay (also the burst a source may send at once): ten times the default.</summary>
    private const int RateLimit = 1_000;

    /// <summary>Each fuzzing source sends at this share of the rate limit, so its datagrams reach the parser instead of the limiter.</summary>
    private const double FuzzShareOfLimit = 0.8;

    /// <summary>The flood source sends at this multiple of the rate limit.</summary>
    private const int FloodTimesLimit = 10;

    /// <summary>The good peer's pace. It asks as a DomainShare peer does: the default Minger timeout and retries.</summary>
    private const int GoodPeerPerSecond = 20;
    private static readonly TimeSpan GoodPeerTimeout = Defaults.MingerTimeout;
    private const int GoodPeerRetries = Defaults.MingerRetries;

    private readonly Cluster cluster = new("hostile-minger");

    public void Dispose()
    {
        cluster.KillRelays(); // no graceful stop needed: it costs seconds per relay
        cluster.Dispose();
    }

    /// <summary>
    /// Fuzzed datagrams from several sources (50,000 here, 1,000,000 in a full run), a flood of signed queries from one
    /// other source at ten times the rate limit, and a good peer asking real queries at a modest pace, all at once.
    /// </summary>
    [Fact]
    public void Fuzz_and_a_flood_neither_crash_the_relay_nor_lift_the_rate_limit_nor_starve_a_good_peer()
    {
        int fuzzTotal = Figures.Size(50_000, 1_000_000);
        int fuzzSources = Figures.Size(8, 16);
        var budget = TimeSpan.FromSeconds(Figures.Size(30, 360));

        var setUp = Stopwatch.StartNew();
        var server = cluster.Add("storm", FuzzSecret);
        // The fuzzer's own mailboxes, so that its well-signed datagrams find accounts, plus one disabled account.
        AddAccounts(server, ["alice@example.com", "bob@example.com", "user@example.com"], ["dis@example.com"]);
        cluster.SetUpAndStart([server], [$"Set-DomainShareConfig -MingerRateLimitPerSecond {RateLimit} {server.Cfg}"], afterStart: []);
        int pid = server.State!.ProcessId;
        output.WriteLine($"Relay {pid} set up and started in {setUp.Elapsed.TotalSeconds:0.0} s.");
        (string Mailbox, MingerStatus Expected)[] cases =
        [
            ("alice@example.com", MingerStatus.Exists), ("bob@example.com", MingerStatus.Exists), ("dis@example.com", MingerStatus.CannotReceive),
            ("nobody@example.com", MingerStatus.Unknown), ("*", MingerStatus.Exists),
        ];
        var goodAddress = Loopback.NextAddress();
        foreach (var (mailbox, expected) in cases)
            Assert.Equal(expected, MingerProbe.Ask(server.MingerEndPoint, mailbox, server.Secret, from: goodAddress));
        double rssBefore = Figures.ResidentMiB(pid);
        double cpuBefore = CpuSeconds(pid);
        var before = server.Counters();

        using var stop = new CancellationTokenSource();
        var storm = Stopwatch.StartNew();

        // The fuzzers: one thread, the sources in turn, each at FuzzShareOfLimit of the limit.
        var fuzzers = Enumerable.Range(0, fuzzSources).Select(_ => new UdpSource(Loopback.NextAddress(), server.MingerEndPoint)).ToArray();
        long fuzzSent = 0, fuzzSendErrors = 0, fuzzReplies = 0, fuzzBadReplies = 0;
        TimeSpan fuzzElapsed = default;
        var fuzzThread = new Thread(() =>
        {
            var fuzz = new MingerFuzz(seed: 4069);
            double perSecond = fuzzSources * RateLimit * FuzzShareOfLimit;
            void OnReply(ReadOnlySpan<byte> reply)
            {
                fuzzReplies++;
                if (!MingerCodec.TryParseReply(reply, out _, out _)) fuzzBadReplies++;
            }
            var watch = Stopwatch.StartNew();
            while (fuzzSent < fuzzTotal && watch.Elapsed < budget)
            {
                long due = Math.Min(fuzzTotal, (long)(watch.Elapsed.TotalSeconds * perSecond) + 1);
                if (fuzzSent >= due) { Thread.Sleep(1); continue; }
                for (int n = 0; fuzzSent < due && n < 500; n++)
                {
                    if (!fuzzers[(int)(fuzzSent % fuzzSources)].TrySend(fuzz.Next())) fuzzSendErrors++;
                    fuzzSent++;
                }
                foreach (var f in fuzzers) f.Drain(OnReply);
            }
            fuzzElapsed = watch.Elapsed;
            Thread.Sleep(500); // the last replies
            foreach (var f in fuzzers) f.Drain(OnReply);
        }) { IsBackground = true, Name = "minger-fuzz" };

        // The flood: signed queries for existing and missing addresses from one source, far above the limit.
        using var flooder = new UdpSource(Loopback.NextAddress(), server.MingerEndPoint);
        byte[][] floodQueries = [.. cases.Select(c => MingerCodec.EncodeQuery(c.Mailbox, server.Secret))];
        long floodSent = 0, floodSendErrors = 0, floodReplies = 0;
        long floodFirstSend = 0, floodLastReply = 0;
        var floodThread = new Thread(() =>
        {
            double perSecond = (double)FloodTimesLimit * RateLimit;
            void OnReply(ReadOnlySpan<byte> reply)
            {
                floodReplies++;
                floodLastReply = Stopwatch.GetTimestamp();
            }
            floodFirstSend = Stopwatch.GetTimestamp();
            var watch = Stopwatch.StartNew();
            while (!stop.IsCancellationRequested && watch.Elapsed < budget)
            {
                long due = (long)(watch.Elapsed.TotalSeconds * perSecond) + 1;
                if (floodSent >= due) { Thread.Sleep(1); continue; }
                for (int n = 0; floodSent < due && n < 500; n++)
                {
                    if (!flooder.TrySend(floodQueries[floodSent % floodQueries.Length])) floodSendErrors++;
                    floodSent++;
                }
                flooder.Drain(OnReply);
            }
            // Replies still on their way (the relay may be behind): drain until none came for half a second.
            var quiet = Stopwatch.StartNew();
            var settle = Stopwatch.StartNew();
            while (quiet.ElapsedMilliseconds < 500 && settle.Elapsed < TimeSpan.FromSeconds(10))
            {
                if (flooder.Drain(OnReply) > 0) quiet.Restart();
                Thread.Sleep(5);
            }
        }) { IsBackground = true, Name = "minger-flood" };

        // The good peer: real lookups, each from a fresh socket on its own address, as a peer asks (timeout, retries).
        var latencies = new List<double>();
        var wrong = new List<string>();
        int goodAsked = 0, goodUnanswered = 0, goodFirstAttempt = 0;
        var goodThread = new Thread(() =>
        {
            var watch = Stopwatch.StartNew();
            while (!stop.IsCancellationRequested && watch.Elapsed < budget)
            {
                var (mailbox, expected) = cases[goodAsked % cases.Length];
                var (status, attempts, elapsed) = AskAsAPeer(server.MingerEndPoint, mailbox, server.Secret!, goodAddress);
                goodAsked++;
                if (status is null) goodUnanswered++;
                else if (status != expected) wrong.Add($"{mailbox}: {status} (expected {expected})");
                else
                {
                    latencies.Add(elapsed.TotalMilliseconds);
                    if (attempts == 1) goodFirstAttempt++;
                }
                var next = TimeSpan.FromSeconds((double)goodAsked / GoodPeerPerSecond) - watch.Elapsed;
                if (next > TimeSpan.Zero) Thread.Sleep(next);
            }
        }) { IsBackground = true, Name = "minger-good-peer" };

        try
        {
            goodThread.Start();
            floodThread.Start();
            fuzzThread.Start();
            Assert.True(fuzzThread.Join(budget + TimeSpan.FromSeconds(10)), "The fuzzing thread did not end within its budget.");
        }
        finally
        {
            stop.Cancel();
            floodThread.Join(TimeSpan.FromSeconds(20));
            goodThread.Join(GoodPeerTimeout * (GoodPeerRetries + 1) + TimeSpan.FromSeconds(5));
            foreach (var f in fuzzers) f.Dispose();
        }
        var stormTime = storm.Elapsed;
        var after = server.Counters();
        double rssAfter = Figures.ResidentMiB(pid);
        double cpu = CpuSeconds(pid) - cpuBefore;

        // The relay is the same process, alive, and still answers correctly: the good peer, and the flooder once its bucket refilled.
        Assert.True(Cluster.IsAlive(pid, server.ConfigPath), $"The relay (process {pid}) died during the storm.");
        Assert.Equal(pid, server.State?.ProcessId);
        foreach (var (mailbox, expected) in cases)
            Assert.Equal(expected, MingerProbe.Ask(server.MingerEndPoint, mailbox, server.Secret, from: goodAddress));
        Thread.Sleep(1_100);
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(server.MingerEndPoint, "alice@example.com", server.Secret, from: flooder.Address));

        long Delta(string counter) => after[counter] - before[counter];
        long received = Delta("MingerReceived");
        long rateLimited = Delta("MingerRateLimited");
        double floodSeconds = (floodLastReply - floodFirstSend) / (double)Stopwatch.Frequency;
        double floodAllowed = RateLimit * Math.Max(0, floodSeconds) + RateLimit; // the steady rate over the flood, plus one burst
        latencies.Sort();
        double answeredShare = goodAsked == 0 ? 0 : (double)latencies.Count / goodAsked;
        double firstAttemptShare = goodAsked == 0 ? 0 : (double)goodFirstAttempt / goodAsked;
        var log = RelayLogProblems(server);

        Figures.Record(output, Area, "fuzzed datagrams sent", "≥ 1,000,000 (full)", $"{fuzzSent:N0} from {fuzzSources} sources in {fuzzElapsed.TotalSeconds:0.0} s ({fuzzSent / fuzzElapsed.TotalSeconds:N0}/s; {fuzzSendErrors} send errors, {fuzzReplies:N0} replies, {fuzzBadReplies} malformed)");
        Figures.Record(output, Area, "flood from one source", $"{FloodTimesLimit}× the limit of {RateLimit}/s", $"{floodSent:N0} signed queries in {floodSeconds:0.0} s ({floodSent / Math.Max(floodSeconds, 0.001):N0}/s; {floodSendErrors} send errors)");
        Figures.Record(output, Area, "answers to the flooder vs allowed", "≤ rate × duration + burst", $"{floodReplies:N0} of {floodAllowed:N0} allowed ({floodReplies / floodAllowed:P1})");
        Figures.Record(output, Area, "good peer answered", $"≥ 99% of lookups ({GoodPeerTimeout.TotalSeconds:0} s, {GoodPeerRetries} retries), all correct",
            $"{answeredShare:P2} of {goodAsked} lookups ({goodUnanswered} unanswered, {wrong.Count} wrong); {firstAttemptShare:P2} at the first attempt");
        Figures.Record(output, Area, "good peer latency", "reported", $"p50 {Figures.Percentile(latencies, 50):0.0} ms, p99 {Figures.Percentile(latencies, 99):0.0} ms, max {(latencies.Count > 0 ? latencies[^1] : double.NaN):0.0} ms");
        Figures.Record(output, Area, "relay datagrams", "reported", $"received {received:N0} of {fuzzSent + floodSent + goodAsked:N0} sent ({received / (double)Math.Max(1, fuzzSent + floodSent + goodAsked):P1}), rate-limited {rateLimited:N0}, answered 0 {Delta("MingerAnswered0Invalid"):N0}, 2 {Delta("MingerAnswered2BadCredentials"):N0}, 3 {Delta("MingerAnswered3Unknown"):N0}, 4 {Delta("MingerAnswered4CannotReceive"):N0}, 5 {Delta("MingerAnswered5Exists"):N0}, errors {Delta("MingerErrors")}");
        Figures.Record(output, Area, "relay CPU", "reported", $"{cpu:0.0} s in {stormTime.TotalSeconds:0.0} s ({cpu / stormTime.TotalSeconds:P0} of one core; {cpu * 1e6 / Math.Max(1, received):0.0} µs per datagram received)");
        Figures.Record(output, Area, "relay RSS", "bounded", $"{rssBefore:0.0} MiB before, {rssAfter:0.0} MiB after");
        Figures.Record(output, Area, "relay process", "alive, same pid, no crash", $"pid {pid} alive after {stormTime.TotalSeconds:0.0} s; {log.Count} problem lines in relay.log/relay.out");

        Assert.True(fuzzSent == fuzzTotal, $"Only {fuzzSent} of {fuzzTotal} fuzzed datagrams were sent within {budget}.");
        Assert.Equal(0, fuzzBadReplies);
        Assert.True(fuzzReplies > 0, "No fuzzed datagram was answered.");
        Assert.Equal(0, Delta("MingerErrors"));
        Assert.Empty(log);
        // The flood was far above the limit (else the next check could not fail), and the limit held.
        Assert.True(floodSent > 3 * floodAllowed, $"The flood ({floodSent} datagrams) was not far enough above the {floodAllowed:0} answers the limit allows.");
        Assert.True(rateLimited > 0, "The relay rate-limited nothing.");
        Assert.True(floodReplies <= floodAllowed + 1, $"The flooder got {floodReplies} answers; the limit allows {floodAllowed:0} over {floodSeconds:0.00} s.");
        // The good peer was served all along, and never told anything wrong.
        Assert.True(wrong.Count == 0, "The good peer got wrong answers: " + string.Join("; ", wrong.Take(10)));
        Assert.True(goodAsked >= 50, $"The good peer asked only {goodAsked} queries.");
        Assert.True(answeredShare >= 0.99, $"The good peer got answers to {answeredShare:P2} of {goodAsked} lookups ({goodUnanswered} unanswered).");
        Assert.True(firstAttemptShare >= 0.9, $"The good peer got answers to only {firstAttemptShare:P2} of {goodAsked} lookups at the first attempt.");
        Assert.True(rssAfter > 0 && rssAfter < rssBefore + 200, $"The relay's RSS grew from {rssBefore:0.0} MiB to {rssAfter:0.0} MiB.");
    }

    /// <summary>
    /// Directory harvest: a source without the secret asks for existing and missing addresses in every way it can
    /// (anonymous, a wrong, random, malformed or replayed digest, a forwarded tag, a line end); each pair of replies is
    /// the same byte for byte but for the echoed mailbox, on a plain server and on a gateway server whose peer holds
    /// half the addresses. With the secret, existing and missing addresses are told apart (the control).
    /// </summary>
    [Fact]
    public void A_source_without_the_secret_cannot_tell_an_existing_address_from_a_missing_one()
    {
        int count = Figures.Size(40, 400);
        var setUp = Stopwatch.StartNew();
        var x = cluster.Add("harvestx", "secret-of-harvestx-0123456789");
        var y = cluster.Add("harvesty", "secret-of-harvesty-0123456789");
        // Every fifth account is disabled (answered 4 with the secret): it must not show either.
        string[] onX = [.. Enumerable.Range(0, count).Select(i => $"xh{i}@example.com")];
        string[] onY = [.. Enumerable.Range(0, count).Select(i => $"yh{i}@example.com")];
        // postmaster is the address whose captured query the "replayed digest" queries reuse.
        AddAccounts(x, [.. onX.Where((_, i) => i % 5 != 4), "postmaster@example.com"], onX.Where((_, i) => i % 5 == 4));
        AddAccounts(y, [.. onY.Where((_, i) => i % 5 != 4), "postmaster@example.com"], onY.Where((_, i) => i % 5 == 4));
        cluster.SetUpAndStart([x, y],
            [
                $"Set-DomainShareConfig -MingerGateway $true -MingerRateLimitPerSecond 0 {x.Cfg}",
                $"Set-DomainShareConfig -MingerRateLimitPerSecond 0 {y.Cfg}",
                x.AddPeerScript(y), y.AddPeerScript(x),
            ],
            afterStart: []);
        output.WriteLine($"Relays set up and started in {setUp.Elapsed.TotalSeconds:0.0} s.");
        string[] missing = [.. Enumerable.Range(0, count).Select(i => $"mh{i}@example.com")];
        var harvester = Loopback.NextAddress();

        // Y: a plain server asked about its own accounts. X: a gateway, asked about its own accounts and its peer Y's.
        Harvest(y, "plain", onY, missing, harvester);
        // On the gateway, Y's disabled addresses are left out: asked with the secret, the gateway leaves an address its
        // peer answers 4 for unanswered (AddressResolver.ExistsOnPeerAsync), which would cost the control a timeout each.
        Harvest(x, "gateway", [.. Enumerable.Range(0, count).Select(i => i % 2 == 0 || i % 5 == 4 ? onX[i] : onY[i])], missing, harvester);
    }

    /// <summary>
    /// Asks <paramref name="server"/> about each of <paramref name="existing"/> and <paramref name="missing"/> (pairwise)
    /// from <paramref name="from"/>, in every way a source without the secret can, and then with the secret.
    /// </summary>
    private void Harvest(Server server, string label, IReadOnlyList<string> existing, IReadOnlyList<string> missing, IPAddress from)
    {
        string secret = server.Secret!;
        long lookupsBefore = server.Counters()["MingerGatewayLookups"];
        var differences = new List<string>();
        var timing = new List<string>();
        var existingMicros = new List<double>();
        var missingMicros = new List<double>();
        foreach (var (mode, query) in HostileQueries(secret))
        {
            var tails = new SortedSet<string>(StringComparer.Ordinal);
            double e = 0, m = 0;
            for (int i = 0; i < existing.Count; i++)
            {
                var (echoE, datagramE) = query(existing[i]);
                var (echoM, datagramM) = query(missing[i]);
                // In turns, existing or missing first, so that the order does not show in the mean times.
                (byte[]? Reply, double Micros) askedE, askedM;
                if (i % 2 == 0)
                {
                    askedE = AskRaw(server.MingerEndPoint, datagramE, from);
                    askedM = AskRaw(server.MingerEndPoint, datagramM, from);
                }
                else
                {
                    askedM = AskRaw(server.MingerEndPoint, datagramM, from);
                    askedE = AskRaw(server.MingerEndPoint, datagramE, from);
                }
                var (replyE, microsE) = askedE;
                var (replyM, microsM) = askedM;
                string tailE = Tail(replyE, echoE), tailM = Tail(replyM, echoM);
                if (tailE != tailM) differences.Add($"{mode}: {existing[i]} → {Show(replyE)}, {missing[i]} → {Show(replyM)}");
                tails.Add(tailE);
                e += microsE;
                m += microsM;
                existingMicros.Add(microsE);
                missingMicros.Add(microsM);
            }
            timing.Add($"{mode} [{string.Join(" ", tails)}] {e / existing.Count:0} vs {m / existing.Count:0} µs");
        }
        output.WriteLine($"{label}: " + string.Join("; ", timing));

        // A source without the secret never starts a gateway lookup: no work, and no time, depends on the address.
        long lookups = server.Counters()["MingerGatewayLookups"];
        Assert.Equal(lookupsBefore, lookups);

        // The control: with the secret the same addresses are told apart, so the comparison above could have failed.
        int toldApart = 0;
        for (int i = 0; i < existing.Count; i++)
        {
            var (replyE, _) = AskRaw(server.MingerEndPoint, MingerCodec.EncodeQuery(existing[i], secret), from);
            var (replyM, _) = AskRaw(server.MingerEndPoint, MingerCodec.EncodeQuery(missing[i], secret), from);
            Assert.True(MingerCodec.TryParseReply(replyE ?? [], out _, out var statusE) && statusE is MingerStatus.Exists or MingerStatus.CannotReceive,
                $"With the secret, {existing[i]} got {Show(replyE)} from the {label} server.");
            Assert.Equal(Tail(MingerCodec.EncodeReply(missing[i], MingerStatus.Unknown), missing[i]), Tail(replyM, missing[i]));
            if (Tail(replyE, existing[i]) != Tail(replyM, missing[i])) toldApart++;
        }

        Figures.Record(output, Area, $"directory harvest without the secret ({label})", "existing and missing answered alike",
            $"{differences.Count} differences in {existingMicros.Count:N0} pairs ({HostileQueries(secret).Count()} kinds of query, {existing.Count} addresses); with the secret {toldApart} of {existing.Count} told apart");
        Figures.Record(output, Area, $"harvest timing without the secret ({label})", "reported, not asserted",
            $"existing addresses: mean {existingMicros.Average():0} µs, median {Median(existingMicros):0} µs; missing: mean {missingMicros.Average():0} µs, median {Median(missingMicros):0} µs");
        Assert.True(differences.Count == 0, $"A source without the secret can tell existing from missing addresses on the {label} server:\n" + string.Join("\n", differences.Take(20)));
        Assert.Equal(existing.Count, toldApart);
        if (label == "gateway")
            Assert.True(server.Counters()["MingerGatewayLookups"] > lookups, "The gateway server looked nothing up for the control: its gateway is off.");
    }

    /// <summary>
    /// The queries of a source that has no secret, each as (the mailbox the server echoes, the datagram), for one mailbox.
    /// The replay of the exact query of the same mailbox is left out on purpose: the protocol has no nonce (see the
    /// security notes of docs/minger-protocol.md), and who captured that query already knows the address is asked about.
    /// </summary>
    private static IEnumerable<(string Mode, Func<string, (string Echo, byte[] Datagram)> Query)> HostileQueries(string secret)
    {
        static (string, byte[]) Raw(string echo, string text) => (echo, Encoding.UTF8.GetBytes(text));
        yield return ("anonymous (no digest)", m => (m, MingerCodec.EncodeQuery(m, null)));
        yield return ("wrong secret", m => (m, MingerCodec.EncodeQuery(m, "not-the-secret-of-anyone-0123")));
        yield return ("random digest", m => Raw(m, $"{m} d={Convert.ToBase64String(RandomNumberGenerator.GetBytes(16))}"));
        yield return ("malformed digest", m => Raw(m, $"{m} d=not-base64!"));
        yield return ("replayed probe digest", m => Raw(m, $"{m} d={MingerCodec.ComputeDigest(secret, MingerCodec.Probe)}"));
        yield return ("replayed digest of another address", m => Raw(m, $"{m} d={MingerCodec.ComputeDigest(secret, "postmaster@example.com")}"));
        yield return ("digest of the lower case, asked in upper case", m => Raw(m.ToUpperInvariant(), $"{m.ToUpperInvariant()} d={MingerCodec.ComputeDigest(secret, m)}"));
        yield return ("no digest, forwarded tag", m => (m, MingerCodec.EncodeQuery(m, null, MingerCodec.ForwardedTags)));
        yield return ("no digest, CRLF", m => Raw(m, m + "\r\n"));
    }

    /// <summary>The reply without the echoed mailbox it starts with: what must not depend on the address. "no answer" when none came.</summary>
    private static string Tail(byte[]? reply, string echo)
    {
        if (reply is null) return "no answer";
        var prefix = Encoding.UTF8.GetBytes(echo);
        return reply.AsSpan().StartsWith(prefix) ? "…" + Convert.ToHexString(reply.AsSpan(prefix.Length)) : "!" + Convert.ToHexString(reply);
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return Figures.Percentile(values, 50);
    }

    private static string Show(byte[]? reply) => reply is null ? "no answer" : $"'{Encoding.UTF8.GetString(reply)}'";

    /// <summary>
    /// One lookup as a DomainShare peer makes it (see docs/minger-protocol.md, client rules): the signed query from a
    /// fresh socket on <paramref name="from"/>, sent again when no reply came within the timeout, the reply accepted only
    /// from exactly <paramref name="server"/> echoing exactly the mailbox. Returns the status (null: none after every
    /// attempt), the attempts made and the time from the first send.
    /// </summary>
    private static (MingerStatus? Status, int Attempts, TimeSpan Elapsed) AskAsAPeer(IPEndPoint server, string mailbox, string secret, IPAddress from)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(from, 0));
        var query = MingerCodec.EncodeQuery(mailbox, secret);
        var buffer = new byte[2048];
        var watch = Stopwatch.StartNew();
        MingerStatus status = default;
        for (int attempt = 1; attempt <= GoodPeerRetries + 1; attempt++)
        {
            socket.SendTo(query, server);
            if (MingerProbe.ReceiveFrom(socket, server, buffer, watch, watch.Elapsed + GoodPeerTimeout,
                    n => MingerCodec.TryParseReply(buffer.AsSpan(0, n), out var echoed, out status) && echoed == mailbox) >= 0)
                return (status, attempt, watch.Elapsed);
        }
        return (null, GoodPeerRetries + 1, watch.Elapsed);
    }

    /// <summary>Sends <paramref name="datagram"/> from a fresh socket on <paramref name="from"/> and returns the raw reply from exactly <paramref name="server"/> (null after 2 s) and the round trip in µs.</summary>
    private static (byte[]? Reply, double Micros) AskRaw(IPEndPoint server, byte[] datagram, IPAddress from)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(from, 0));
        var buffer = new byte[2048];
        var watch = Stopwatch.StartNew();
        socket.SendTo(datagram, server);
        int n = MingerProbe.ReceiveFrom(socket, server, buffer, watch, TimeSpan.FromSeconds(2), _ => true);
        return (n < 0 ? null : buffer[..n], watch.Elapsed.TotalMicroseconds);
    }

    /// <summary>Adds accounts to the server's table in one store session (before its relay starts).</summary>
    private static void AddAccounts(Server server, IEnumerable<string> enabled, IEnumerable<string> disabled)
    {
        using var store = AccountStore.Open(server.DataDirectory);
        foreach (var (address, isEnabled) in enabled.Select(a => (a, true)).Concat(disabled.Select(a => (a, false))))
            Assert.True(store.TryAdd(new Account(address, null, isEnabled, null, DateTimeOffset.UtcNow, Path.Combine(server.DataDirectory, "mail", address))));
    }

    /// <summary>
    /// The lines of relay.log (and its rolled .1) that tell of a failure: ERROR, an exception or a stack, and of relay.out
    /// (the process's own standard output and error) that tell of an unhandled exception.
    /// </summary>
    private static List<string> RelayLogProblems(Server server)
    {
        var problems = new List<string>();
        foreach (var name in new[] { "relay.log.1", "relay.log" })
        {
            var path = Path.Combine(server.DataDirectory, name);
            if (!File.Exists(path)) continue;
            foreach (var line in ReadShared(path))
                if (line.Contains(" ERROR ", StringComparison.Ordinal) || line.Contains("Exception", StringComparison.Ordinal)
                    || (line.Contains(" at ", StringComparison.Ordinal) && line.Contains("DomainShare.", StringComparison.Ordinal)))
                    problems.Add($"{name}: {line}");
        }
        var outPath = Path.Combine(server.DataDirectory, RelayState.OutputFileName);
        if (File.Exists(outPath))
            foreach (var line in ReadShared(outPath))
                if (line.Contains("Unhandled", StringComparison.OrdinalIgnoreCase) || line.Contains("Exception", StringComparison.Ordinal))
                    problems.Add($"{RelayState.OutputFileName}: {line}");
        return problems;
    }

    /// <summary>The CPU time (user and system) process <paramref name="pid"/> has used, in seconds, from /proc (clock ticks of 1/100 s).</summary>
    private static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // After the name: state is field 3 of the line, utime 14 and stime 15.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static IEnumerable<string> ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line) yield return line;
    }

    /// <summary>One source address of the storm: a socket bound to it, sending to the relay and reading its replies without waiting.</summary>
    private sealed class UdpSource : IDisposable
    {
        private readonly Socket socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        private readonly IPEndPoint server;
        private readonly byte[] buffer = new byte[2048];

        public UdpSource(IPAddress address, IPEndPoint server)
        {
            this.server = server;
            Address = address;
            socket.ReceiveBufferSize = 4 << 20; // the replies wait here between two drains
            socket.Bind(new IPEndPoint(address, 0));
        }

        public IPAddress Address { get; }

        /// <summary>Sends one datagram; false when the kernel refused it (a full buffer).</summary>
        public bool TrySend(byte[] datagram)
        {
            try
            {
                socket.SendTo(datagram, SocketFlags.None, server);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        /// <summary>Reads every reply from the relay waiting now; returns how many.</summary>
        public int Drain(Action<ReadOnlySpan<byte>> onReply)
        {
            int count = 0;
            EndPoint sender = new IPEndPoint(IPAddress.Any, 0);
            while (socket.Available > 0)
            {
                int n;
                try { n = socket.ReceiveFrom(buffer, ref sender); }
                catch (SocketException) { break; }
                if (!sender.Equals(server)) continue;
                onReply(buffer.AsSpan(0, n));
                count++;
            }
            return count;
        }

        public void Dispose() => socket.Dispose();
    }
}
