using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DomainShare.EndToEnd.Tests.Infrastructure;
using MailKit.Net.Smtp;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// The durability promise of docs/domain-sharing.md: "once the server answers 250 to the end of DATA, the message is on
/// durable storage; a crash, kill or power cut after that never loses it; at worst it is delivered twice". Clients send
/// continuously to relay A (its own users, and users of peer B) while A's relay process is killed with SIGKILL again and
/// again and restarted with Start-DomainShareRelay over the stale relay.json and lock files of the killed process.
/// </summary>
public sealed class SmtpCrashTests(ITestOutputHelper output) : IDisposable
{
    private readonly Cluster cluster = new("crash");

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
    }

    /// <summary>Kill rounds: 5 here; $DOMAINSHARE_E2E_CRASH_ROUNDS asks for more (a bench run: 20).</summary>
    private static int Rounds
        => int.TryParse(Environment.GetEnvironmentVariable("DOMAINSHARE_E2E_CRASH_ROUNDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 5;

    /// <summary>
    /// After 3 rounds, no new round starts once the kill phase has taken this long (Start-DomainShareRelay is slow on a
    /// busy machine), unless the rounds were asked for explicitly.
    /// </summary>
    private static TimeSpan KillPhaseBudget
        => Environment.GetEnvironmentVariable("DOMAINSHARE_E2E_CRASH_ROUNDS") is { Length: > 0 } ? TimeSpan.MaxValue : TimeSpan.FromSeconds(20);

    private const int Clients = 3;
    private static readonly string[] Locals = ["l1@example.com", "l2@example.com", "l3@example.com"];
    private static readonly string[] Remotes = ["p1@example.com", "p2@example.com"];
    private static readonly Regex SubjectToken = new(@"^Subject: Test (crash-\d+-\d+)\r?$", RegexOptions.Multiline | RegexOptions.CultureInvariant);

    [Fact]
    public void No_message_that_got_250_is_lost_when_the_relay_is_killed_with_SIGKILL_again_and_again()
    {
        var total = Stopwatch.StartNew();
        var a = cluster.Add("crasha", "secret-of-crasha-0123456789");
        var b = cluster.Add("crashb", "secret-of-crashb-0123456789");
        var accounts = cluster.SetUpAndStart([a, b],
            configure:
            [
                a.MailPeerScript(b), b.MailPeerScript(a),
                $"Set-DomainShareConfig -MingerTimeout 500ms -MingerRetries 1 -QueueRetryInterval 1s -QueueMaxRetryInterval 1s {a.Cfg}",
                $"Set-DomainShareConfig -MingerTimeout 500ms -MingerRetries 1 -QueueRetryInterval 1s -QueueMaxRetryInterval 1s {b.Cfg}",
            ],
            afterStart: [.. Locals.Select(a.NewAccountScript), .. Remotes.Select(b.NewAccountScript)])
            .OfKind<MailAccount>("Maildir").ToDictionary(x => x.Address, x => x.Maildir, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(Locals.Length + Remotes.Length, accounts.Count);
        var setUp = total.Elapsed;

        var acknowledged = new ConcurrentDictionary<string, string[]>(StringComparer.Ordinal);
        var refused = new ConcurrentQueue<string>();
        long transactions = 0, failures = 0;
        using var stop = new CancellationTokenSource();

        void Client(int n)
        {
            SmtpClient? client = null;
            try
            {
                for (int seq = 0; !stop.IsCancellationRequested; seq++)
                {
                    var token = $"crash-{n}-{seq}";
                    string[] to = (seq % 6) switch
                    {
                        2 => [Remotes[seq % Remotes.Length]],
                        5 => [Locals[seq % Locals.Length], Remotes[(seq / 6) % Remotes.Length]],
                        _ => [Locals[(seq + n) % Locals.Length]],
                    };
                    var message = Mail.Message(token, to);
                    // The same message (same token) until it gets its 250: a retry after a lost answer is a duplicate, never a loss.
                    while (!stop.IsCancellationRequested)
                    {
                        try
                        {
                            client ??= Mail.Connect(a, timeout: TimeSpan.FromSeconds(5));
                            Interlocked.Increment(ref transactions);
                            client.Send(message);
                            acknowledged[token] = to;
                            Thread.Sleep(5); // leave the 2-core test machine some room for the relays' restarts
                            break;
                        }
                        catch (SmtpCommandException e) when ((int)e.StatusCode >= 500)
                        {
                            refused.Enqueue($"{token}: {(int)e.StatusCode} {e.Message}");
                            break;
                        }
                        catch (Exception)
                        {
                            // Killed under us (connection reset or refused), or a 4xx while it starts: connect again.
                            Interlocked.Increment(ref failures);
                            client?.Dispose();
                            client = null;
                            Thread.Sleep(50);
                        }
                    }
                }
            }
            finally
            {
                try { if (client?.IsConnected == true) client.Disconnect(quit: true); } catch (Exception) { }
                client?.Dispose();
            }
        }

        var threads = Enumerable.Range(0, Clients).Select(n => new Thread(() => Client(n)) { IsBackground = true, Name = $"smtp-client-{n}" }).ToList();
        threads.ForEach(t => t.Start());
        var rounds = new List<string>();
        var random = new Random(4069);
        var killing = Stopwatch.StartNew();
        try
        {
            for (int round = 1; round <= Rounds; round++)
            {
                if (round > 3 && killing.Elapsed > KillPhaseBudget)
                {
                    rounds.Add($"stopped after {round - 1} rounds: the kill phase took {killing.Elapsed.TotalSeconds:0} s (a loaded machine); budget {KillPhaseBudget.TotalSeconds:0} s");
                    break;
                }
                Thread.Sleep(600 + random.Next(900)); // traffic, with messages in every stage of reception and delivery
                int before = acknowledged.Count;
                var kill = Stopwatch.StartNew();
                int killed = a.KillRelay();
                Assert.True(File.Exists(Path.Combine(a.DataDirectory, "relay.json")), "the killed relay's relay.json should still be there");
                var relay = Assert.Single(cluster.Start(a));
                Assert.Equal(relay.ProcessId, a.State?.ProcessId); // the new relay.json replaced the stale one
                rounds.Add($"round {round}: killed {killed} with {before} acknowledged so far; {relay.ProcessId} running {kill.ElapsedMilliseconds} ms later");
            }
            Thread.Sleep(1000); // the clients see the last restart through
        }
        finally
        {
            stop.Cancel();
            foreach (var t in threads)
                Assert.True(t.Join(TimeSpan.FromSeconds(20)), $"{t.Name} did not stop");
        }
        var sending = total.Elapsed - setUp;

        // Every queue drains (A's own deliveries, A→B forwarding, B's deliveries): nothing more can arrive after that.
        var drain = Stopwatch.StartNew();
        bool drained = Cluster.Eventually(() => a.QueueCount() == 0 && b.QueueCount() == 0, TimeSpan.FromSeconds(30), 200);

        var delivered = new Dictionary<(string Token, string To), int>();
        foreach (var (address, maildir) in accounts)
            foreach (var text in Mail.Delivered(maildir))
                foreach (Match m in SubjectToken.Matches(text))
                    delivered[(m.Groups[1].Value, address.ToLowerInvariant())] = delivered.GetValueOrDefault((m.Groups[1].Value, address.ToLowerInvariant())) + 1;

        var expected = acknowledged.SelectMany(kv => kv.Value.Select(to => (Token: kv.Key, To: to.ToLowerInvariant()))).ToList();
        var lost = expected.Where(e => !delivered.ContainsKey(e)).ToList();
        int duplicates = delivered.Values.Where(c => c > 1).Sum(c => c - 1);
        int unacknowledged = delivered.Keys.Count(k => !acknowledged.ContainsKey(k.Token));
        int quarantined = Directory.Exists(Path.Combine(a.DataDirectory, "queue", "quarantine"))
            ? Directory.GetFiles(Path.Combine(a.DataDirectory, "queue", "quarantine")).Length : 0;
        var recoveries = File.ReadLines(Path.Combine(a.DataDirectory, "relay.log")).Where(l => l.Contains("Queue: ", StringComparison.Ordinal) && l.Contains("draft", StringComparison.Ordinal)).ToList();

        foreach (var line in rounds) output.WriteLine(line);
        foreach (var line in recoveries) output.WriteLine(line);
        output.WriteLine($"{Rounds} SIGKILL rounds, {Clients} clients; set-up {setUp.TotalSeconds:0.0} s, sending {sending.TotalSeconds:0.0} s, drain {drain.Elapsed.TotalSeconds:0.0} s, total {total.Elapsed.TotalSeconds:0.0} s.");
        output.WriteLine($"transactions tried {Interlocked.Read(ref transactions)} (client errors {Interlocked.Read(ref failures)}), 250s {acknowledged.Count} messages / {expected.Count} recipient copies, " +
                         $"delivered {expected.Count - lost.Count}, duplicates {duplicates}, lost {lost.Count}, delivered without a 250 seen {unacknowledged}, refused {refused.Count}, quarantined {quarantined}.");

        Figures.Record(output, "crash", $"SIGKILL of the relay during a sustained send × {rounds.Count(r => r.StartsWith("round", StringComparison.Ordinal))}, restart, count",
            "every 250 delivered, none lost",
            $"{acknowledged.Count} messages got 250 ({expected.Count} recipient copies, local and forwarded to the peer); {expected.Count - lost.Count} delivered, " +
            $"{lost.Count} lost, {duplicates} duplicates, {quarantined} quarantined; {Interlocked.Read(ref failures)} client errors while the relay was down");
        Assert.True(drained, $"the queues did not drain: A {a.QueueCount()}, B {b.QueueCount()}");
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged copies lost: {string.Join(", ", lost.Take(20))}");
        Assert.True(refused.IsEmpty, $"refused: {string.Join("; ", refused.Take(5))}");
        Assert.True(acknowledged.Count >= Rounds * Clients, $"only {acknowledged.Count} messages got 250: the test did not exercise much");
        Assert.Equal(0, quarantined);
    }
}
