using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using DomainShare.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// Load: 500 SMTP sessions opened against one real relay process and held open together, and mail flowing through all
/// of them at once (each session sends its messages over its own connection, with pauses between them, as a busy
/// office's clients and peers do). Every message carries a token in its Message-ID; every one that got 250 must be in
/// its recipient's Maildir exactly once. Reported: sessions held, throughput, end-of-DATA latency p50/p99, the relay's
/// memory. Quick under <c>dotnet test</c> (500 sessions, 2 messages each); full under bench/hardening.sh (500 × 20).
/// </summary>
public sealed class LoadTests(ITestOutputHelper output) : IDisposable
{
    private readonly Cluster cluster = new("load");

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
    }

    private const int Sessions = 500;
    /// <summary>Client source addresses: the sessions are spread over them, below the per-source limit of each.</summary>
    private const int SourceAddresses = 10;
    private static readonly string[] Users = ["load1@example.com", "load2@example.com", "load3@example.com", "load4@example.com"];
    private static readonly Regex MessageToken = new(@"^Message-ID: <(load-\d+-\d+)@client\.test>\r?$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

    [Fact]
    public async Task Five_hundred_sessions_held_open_at_once_all_get_their_mail_through_and_every_message_is_delivered_once()
    {
        int perSession = Figures.Size(2, 20);
        var a = cluster.Add("load", "secret-of-load-0123456789");
        var accounts = cluster.SetUpAndStart([a],
                configure: [$"Set-DomainShareConfig -MaxConnections {Sessions + 100} -MaxConnectionsPerSource {Sessions / SourceAddresses + 10} {a.Cfg}"],
                afterStart: [.. Users.Select(a.NewAccountScript)])
            .OfKind<MailAccount>("Maildir").ToDictionary(x => x.Address, x => x.Maildir, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(Users.Length, accounts.Count);
        int pid = a.State!.ProcessId;
        double idleMiB = Figures.ResidentMiB(pid);

        var sources = Enumerable.Range(0, SourceAddresses).Select(_ => Loopback.NextAddress()).ToArray();
        var latencies = new ConcurrentBag<double>();
        var acknowledged = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var problems = new ConcurrentQueue<string>();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(Figures.Full ? 600 : 90));
        var allOpen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int open = 0, maxActive = 0;
        double peakMiB = idleMiB;

        async Task Session(int n)
        {
            var ct = deadline.Token;
            using var smtp = await RawSmtpClient.ConnectAsync(a, sources[n % sources.Length], ct);
            Expect(await smtp.ReadReplyAsync(ct), "220", n, "greeting");
            Expect(await smtp.CommandAsync("EHLO load.client.test", ct), "250", n, "EHLO");
            if (Interlocked.Increment(ref open) == Sessions) allOpen.TrySetResult();
            await allOpen.Task.WaitAsync(ct); // every session is open before any mail flows
            var random = new Random(n);
            for (int seq = 0; seq < perSession; seq++)
            {
                await Task.Delay(random.Next(0, 200), ct);
                string token = $"load-{n}-{seq}", to = Users[(n + seq) % Users.Length];
                var watch = Stopwatch.StartNew();
                Expect(await smtp.CommandAsync($"MAIL FROM:<sender{n}@client.test>", ct), "250", n, "MAIL FROM");
                Expect(await smtp.CommandAsync($"RCPT TO:<{to}>", ct), "250", n, "RCPT TO");
                Expect(await smtp.CommandAsync("DATA", ct), "354", n, "DATA");
                await smtp.SendAsync(MessageText(token, n, to), ct);
                Expect(await smtp.ReadReplyAsync(ct), "250", n, "end of DATA");
                latencies.Add(watch.Elapsed.TotalMilliseconds);
                acknowledged[token] = to;
            }
            await smtp.CommandAsync("QUIT", ct);
        }

        void Expect(SmtpReply reply, string code, int n, string step)
        {
            if (!reply.Text.StartsWith(code, StringComparison.Ordinal))
                throw new InvalidOperationException($"session {n}, {step}: expected {code}, got '{reply.Text.Trim()}'");
        }

        var sampler = Task.Run(async () =>
        {
            // The first sample is taken the moment every session is open (they all hold their connection until their
            // last message is sent), then every 200 ms for the peak of memory.
            try { await allOpen.Task.WaitAsync(deadline.Token); }
            catch (OperationCanceledException) { return; }
            while (!deadline.IsCancellationRequested && (open < Sessions || acknowledged.Count < Sessions * perSession))
            {
                try
                {
                    var counters = a.Counters();
                    if (counters.TryGetValue("SmtpActiveSessions", out var active)) maxActive = Math.Max(maxActive, (int)active);
                }
                catch (Exception e) when (e is not OutOfMemoryException) { /* the control channel is busy: next time */ }
                peakMiB = Math.Max(peakMiB, Figures.ResidentMiB(pid));
                await Task.Delay(200);
                if (problems.Count > 0) break;
            }
        });

        var total = Stopwatch.StartNew();
        var sessions = Enumerable.Range(0, Sessions).Select(n => Task.Run(async () =>
        {
            try { await Session(n); }
            catch (Exception e) { problems.Enqueue($"session {n}: {e.GetType().Name}: {e.Message}"); allOpen.TrySetResult(); }
        })).ToArray();
        await Task.WhenAll(sessions);
        double seconds = total.Elapsed.TotalSeconds;
        await sampler;

        var drain = Stopwatch.StartNew();
        bool drained = Cluster.Eventually(() => a.QueueCount() == 0, TimeSpan.FromSeconds(Figures.Full ? 120 : 30), 200);
        var delivered = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (_, maildir) in accounts)
            foreach (var text in Mail.Delivered(maildir))
                foreach (Match m in MessageToken.Matches(text))
                    delivered[m.Groups[1].Value] = delivered.GetValueOrDefault(m.Groups[1].Value) + 1;
        int lost = acknowledged.Keys.Count(t => !delivered.ContainsKey(t));
        int duplicates = delivered.Values.Where(c => c > 1).Sum(c => c - 1);

        var sorted = latencies.OrderBy(x => x).ToList();
        Figures.Record(output, "load", "SMTP sessions held open at once while mail flows", "500", $"{Math.Min(open, Sessions)} opened, {maxActive} active at the peak (relay counter)");
        Figures.Record(output, "load", "throughput with 500 sessions", "report",
            $"{acknowledged.Count} messages in {seconds:0.0} s = {acknowledged.Count / seconds:0} msg/s accepted; queue drained {drain.Elapsed.TotalSeconds:0.0} s later");
        Figures.Record(output, "load", "MAIL FROM → 250 after DATA, per message", "report p50/p99",
            $"p50 {Figures.Percentile(sorted, 50):0.0} ms, p99 {Figures.Percentile(sorted, 99):0.0} ms, max {sorted.LastOrDefault():0.0} ms");
        Figures.Record(output, "load", "relay memory (RSS)", "< 250 MB loaded", $"idle {idleMiB:0} MB, peak {peakMiB:0} MB");
        Figures.Record(output, "load", "messages lost / duplicated", "0 lost", $"{lost} lost, {duplicates} duplicates of {acknowledged.Count}");

        Assert.True(problems.IsEmpty, $"{problems.Count} sessions failed: {string.Join("; ", problems.Take(10))}");
        Assert.Equal(Sessions * perSession, acknowledged.Count);
        Assert.True(maxActive >= Sessions * 9 / 10, $"only {maxActive} sessions were active at once (expected about {Sessions})");
        Assert.True(drained, $"the queue did not drain: {a.QueueCount()} left");
        Assert.Equal(0, lost);
        Assert.Equal(0, duplicates);
        Assert.True(Cluster.IsAlive(pid, a.ConfigPath), "the relay process is gone");
    }

    private static string MessageText(string token, int n, string to)
        => $"From: <sender{n}@client.test>\r\nTo: <{to}>\r\nSubject: Load {token}\r\nMessage-ID: <{token}@client.test>\r\n" +
           $"Date: {DateTimeOffset.UtcNow:R}\r\n\r\n" + string.Concat(Enumerable.Repeat($"Body of {token}, a line of about eighty characters to fill one KB.\r\n", 12)) + ".\r\n";
}
