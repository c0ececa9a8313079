using System.Diagnostics;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Queue;
using MailKit;
using MailKit.Net.Smtp;
using MimeKit;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// The "Peer faults" figure of issue 7: a peer that is down, one that accepts TCP and never answers, one that answers
/// 4xx forever and one that drops the connection during DATA. A real relay process A, with users of its own, forwards to
/// four <see cref="FaultyPeer"/>s (a real Minger server each, and an SMTP side the test controls) and has a relay host
/// (an <see cref="SmtpSink"/>). With keepQueuedOnDeliveryError on, mail for a faulty peer waits in A's queue, is tried
/// again and again with the reason recorded, nothing goes to the relay host, nothing is bounced, A stays responsive and
/// its own users' mail and mail for a peer that works flow; after the peers recover every message arrives, none lost.
/// (With the option off, see <see cref="PeerFaultFallbackTests"/>.)
/// </summary>
public sealed class PeerFaultTests(ITestOutputHelper output)
{
    internal const string Area = "Peer faults";
    private const string Local = "anna@example.com";
    /// <summary>Delivery connect and command timeouts of A: a peer that accepts TCP and never answers costs this much per try.</summary>
    internal const string DeliveryTimeout = "2s";
    /// <summary>What each fault leaves in the recipient's last error.</summary>
    private static readonly Dictionary<PeerFault, string[]> Reasons = new()
    {
        [PeerFault.Down] = ["connection refused"],
        [PeerFault.BlackHole] = ["no answer within 2 s"],
        [PeerFault.TemporaryFailure] = ["Temporary failure", "Greylisted", "queue file write error", "Service shutting down", "Service not available"],
        [PeerFault.DropDuringData] = ["failed during the transaction"],
    };

    [Fact]
    public void Mail_for_faulty_peers_waits_in_the_queue_never_reaches_the_relay_host_and_all_arrives_after_recovery()
    {
        int perPeer = Figures.Size(20, 500);
        int mixed = Figures.Size(2, 20);
        var maxFault = TimeSpan.FromSeconds(Figures.Size(25, 180));
        var maxDrain = TimeSpan.FromSeconds(Figures.Size(60, 600));
        var clock = Stopwatch.StartNew();
        using var relayHost = new SmtpSink();
        using var cluster = new Cluster("peerfaults");
        var peers = new List<FaultyPeer>();
        try
        {
            foreach (var fault in new[] { PeerFault.Down, PeerFault.BlackHole, PeerFault.TemporaryFailure, PeerFault.DropDuringData })
                peers.Add(new FaultyPeer(Label(fault), fault, cluster.Root, $"secret-of-{Label(fault)}-0123456789", clock));
            var users = peers.ToDictionary(p => p, p => new[] { $"{p.Label}1@example.com", $"{p.Label}2@example.com" });
            foreach (var (peer, addresses) in users)
                foreach (var address in addresses) peer.AddAccount(address);
            // A peer that works throughout: mail for it must not wait for the faulty ones.
            var healthy = new FaultyPeer("healthy", PeerFault.Healthy, cluster.Root, "secret-of-healthy-0123456789", clock);
            peers.Add(healthy);
            const string Working = "hanna@example.com";
            healthy.AddAccount(Working);
            var faulty = peers.Where(p => p != healthy).ToList();

            var a = cluster.Add("pfa", "secret-of-pfa-0123456789");
            var run = cluster.SetUpAndStart([a],
                configure:
                [
                    .. peers.Select(p => p.PeerScript(a)),
                    $"Set-DomainShareConfig -MingerTimeout 1s -MingerRetries 1 -QueueRetryInterval 500ms -QueueMaxRetryInterval 1s " +
                    $"-QueueConnectTimeout {DeliveryTimeout} -QueueCommandTimeout {DeliveryTimeout} -RelayHost {relayHost.HostPort} -KeepQueuedOnDeliveryError $true {a.Cfg}",
                ],
                afterStart: [a.NewAccountScript(Local)]);
            string maildir = Assert.Single(run.OfKind<MailAccount>("Maildir")).Maildir;
            var setUp = clock.Elapsed;
            int socketsBefore = Sockets(a);

            // N messages for the users of each peer, some to a user of every peer and A's own user at once, and mail
            // for A's own user alone: counted by Message-ID and recipient.
            var expected = faulty.ToDictionary(p => p, _ => new HashSet<(string Id, string To)>());
            var localTokens = new List<string>();
            var messages = new List<MimeMessage>();
            for (int i = 0; i < perPeer; i++)
                foreach (var peer in faulty)
                {
                    string to = users[peer][i % 2];
                    var token = Mail.NewToken($"pf-{peer.Label}");
                    messages.Add(Mail.Message(token, [to], bodyBytes: 4096));
                    expected[peer].Add(($"{token}@client.test", to));
                }
            for (int i = 0; i < mixed; i++)
            {
                var token = Mail.NewToken("pf-mixed");
                messages.Add(Mail.Message(token, [Local, .. faulty.Select(p => users[p][0])], bodyBytes: 4096));
                foreach (var peer in faulty) expected[peer].Add(($"{token}@client.test", users[peer][0]));
                localTokens.Add(token);
            }
            for (int i = 0; i < 2; i++)
            {
                var token = Mail.NewToken("pf-local");
                messages.Add(Mail.Message(token, Local));
                localTokens.Add(token);
            }
            var sending = Stopwatch.StartNew();
            SendAll(a, messages);
            var sent = sending.Elapsed;
            output.WriteLine($"Set up in {setUp.TotalSeconds:0.0} s; {messages.Count} messages sent through A in {sent.TotalSeconds:0.0} s.");

            // The fault lasts several retry rounds: until every waiting recipient was tried three times, or the bound.
            // Meanwhile a fresh session gets its greeting and A's own user gets mail, each probe timed.
            var greetings = new List<double>();
            var localLatencies = new List<double>();
            var workingLatencies = new List<double>();
            var workingIds = new List<string>();
            var window = Stopwatch.StartNew();
            Dictionary<FaultyPeer, List<QueuedRecipient>> waiting;
            while (true)
            {
                var probe = Stopwatch.StartNew();
                using (var client = Mail.Connect(a))
                {
                    greetings.Add(probe.Elapsed.TotalMilliseconds);
                    var token = Mail.NewToken("pf-probe");
                    var working = Mail.NewToken("pf-working");
                    var probeSent = Stopwatch.StartNew();
                    client.Send(Mail.Message(token, Local));
                    client.Send(Mail.Message(working, Working));
                    client.Disconnect(quit: true);
                    workingIds.Add($"{working}@client.test");
                    localTokens.Add(token);
                    double? local = null, peer = null;
                    Assert.True(Cluster.Eventually(() =>
                    {
                        if (local is null && Mail.Delivered(maildir, token).Count > 0) local = probeSent.Elapsed.TotalMilliseconds;
                        if (peer is null && healthy.Stored.Any(d => d.MessageId == workingIds[^1])) peer = probeSent.Elapsed.TotalMilliseconds;
                        return local is not null && peer is not null;
                    }, TimeSpan.FromSeconds(30), pollMs: 20), $"During the faults, A's own user (after {local} ms) or the working peer (after {peer} ms) did not get its mail within 30 s.");
                    localLatencies.Add(local!.Value);
                    workingLatencies.Add(peer!.Value);
                }
                waiting = Waiting(a, faulty);
                bool enough = waiting.All(w => w.Value.Count > 0 && w.Value.Min(r => r.Attempts) >= 3);
                if (enough || window.Elapsed > maxFault) break;
                Thread.Sleep(1000);
            }
            var faultLasted = window.Elapsed;
            var counters = a.Counters();
            output.WriteLine($"Fault window {faultLasted.TotalSeconds:0.0} s; A's counters: {string.Join(", ", counters.Select(c => $"{c.Key}={c.Value}"))}");
            foreach (var peer in faulty)
                output.WriteLine($"{peer}: {peer.Connections} connections, {peer.Transactions} transactions, played: " +
                                 string.Join(", ", peer.FaultsPlayed.Select(f => $"{f.Key} ×{f.Value}")));

            // While faulty: every recipient of a faulty peer is still queued for that peer, was tried again, and says why.
            foreach (var peer in faulty)
            {
                var rs = waiting[peer];
                output.WriteLine($"{peer.Label}: {rs.Count} recipients waiting, attempts {rs.Min(r => r.Attempts)}..{rs.Max(r => r.Attempts)}; last errors: " +
                                 string.Join(" | ", rs.Select(r => r.LastError).Distinct().Take(6)));
                int committed = peer.Stored.Count(d => d.During == PeerFault.DropDuringData);
                Assert.True(rs.Count == expected[peer].Count, $"{peer.Label}: {rs.Count} recipients wait for the peer, {expected[peer].Count} were sent to it (committed unacknowledged: {committed}).");
                Assert.All(rs, r => Assert.True(r.Attempts >= 2, $"{peer.Label}: <{r.Address}> was tried {r.Attempts} time(s) in {faultLasted.TotalSeconds:0} s: {r.LastError}"));
                Assert.All(rs, r => Assert.True(r.LastError is { } e && e.StartsWith('4') && Reasons[peer.Kind].Any(x => e.Contains(x, StringComparison.Ordinal)),
                    $"{peer.Label}: <{r.Address}> last error '{r.LastError}' does not say {string.Join(" or ", Reasons[peer.Kind])}"));
                Assert.True(peer.Stored.All(d => d.During == PeerFault.DropDuringData), $"{peer.Label} stored mail while faulty without a drop after the final dot.");
            }
            Assert.Empty(relayHost.Messages);
            Assert.Equal(0, counters["BouncesQueued"]);
            Assert.Equal(0, counters["FailedRecipients"]);
            Assert.Equal(perPeer * faulty.Count + mixed, counters["QueueMessages"]);
            foreach (var token in localTokens) Assert.Single(Mail.Delivered(maildir, token));

            // What the administrator sees: every message waiting, with its destination, attempts and reason.
            var queueRun = cluster.Invoke($"Get-DomainShareQueue {a.Cfg}").AssertSuccess();
            var entries = queueRun.OfKind<QueueEntry>("Destinations").ToList();
            Assert.Equal(perPeer * faulty.Count + mixed, entries.Count);
            foreach (var peer in faulty)
            {
                var own = entries.Where(e => e.Destinations.SequenceEqual([peer.PeerName])).ToList();
                Assert.Equal(perPeer, own.Count);
                Assert.All(own, e => Assert.True(e.Attempts >= 2 && e.LastError is { } le && le.Contains(peer.PeerName, StringComparison.Ordinal), e.ToString()));
                output.WriteLine($"Get-DomainShareQueue, {peer.Label}: {own[0]}");
            }
            Assert.Empty(relayHost.Messages);

            // Recovery: every peer works again (the one that was down starts listening); nobody tells A.
            var recovered = clock.Elapsed;
            foreach (var peer in faulty) peer.Recover();
            bool drained = Cluster.Eventually(
                () => faulty.All(p => Missing(p, expected[p]).Count == 0) && a.QueueCount() == 0, maxDrain, pollMs: 250);
            var drainTime = clock.Elapsed - recovered;
            output.WriteLine($"{(drained ? "Drained" : "NOT drained")} {drainTime.TotalSeconds:0.0} s after the recovery; queue {a.QueueCount()}.");

            // Connections: A keeps at most its per-destination limit open to a peer; none hang from the fault.
            bool settled = Cluster.Eventually(() => faulty.All(p => p.OpenSessions <= Defaults.MaxConnectionsPerPeer), TimeSpan.FromSeconds(15));
            int socketsAfter = Sockets(a);
            counters = a.Counters();

            foreach (var peer in faulty)
            {
                var copies = Copies(peer);
                var lost = Missing(peer, expected[peer]);
                var duplicated = copies.Where(c => c.Value > 1).Select(c => c.Key).ToList();
                var acknowledgedLate = peer.Stored.Where(d => d.During == PeerFault.DropDuringData).Select(d => d.MessageId).ToHashSet();
                var attempts = waiting[peer].Select(r => r.Attempts).ToList();
                var drainedAt = peer.Stored.Where(d => d.During == PeerFault.Healthy).Select(d => d.At).DefaultIfEmpty(recovered).Max() - recovered;
                string kind = Label(peer.Kind);
                Figures.Record(output, Area, $"{kind}: messages queued (recipients)", $"{expected[peer].Count}", $"{waiting[peer].Count}");
                Figures.Record(output, Area, $"{kind}: attempts per recipient during the fault ({faultLasted.TotalSeconds:0} s)", "≥ 2 (tried again)",
                    $"min {attempts.Min()}, max {attempts.Max()}; {peer.Connections} connections, {peer.Transactions} transactions at the peer in all");
                Figures.Record(output, Area, $"{kind}: relay-host deliveries", "0", $"{relayHost.Messages.Count(m => m.Recipients.Any(r => users[peer].Contains(r)))}");
                Figures.Record(output, Area, $"{kind}: delivered after recovery", $"{expected[peer].Count}", $"{expected[peer].Count - lost.Count}");
                Figures.Record(output, Area, $"{kind}: lost", "0", $"{lost.Count}");
                int droppedAfterDot = peer.FaultsPlayed.GetValueOrDefault("closed after the final dot (stored)");
                Figures.Record(output, Area, $"{kind}: duplicates", "0 (a drop after the final dot may duplicate)",
                    $"{duplicated.Count} ({duplicated.Count(d => acknowledgedLate.Contains(d.Id))} of them stored by the peer at a drop after the final dot; {droppedAfterDot} such drops)");
                Figures.Record(output, Area, $"{kind}: time to drain after recovery", "seconds", $"{drainedAt.TotalSeconds:0.0} s");
            }
            greetings.Sort();
            localLatencies.Sort();
            Figures.Record(output, Area, "relay host: messages received during and after the faults", "0", $"{relayHost.Messages.Count}");
            Figures.Record(output, Area, "bounces to the sender", "0", $"{counters["BouncesQueued"]}");
            Figures.Record(output, Area, "fresh session during the faults: 220 and EHLO answered (ms)", "prompt",
                $"p50 {Figures.Percentile(greetings, 50):0} ms, max {greetings[^1]:0} ms over {greetings.Count} probes");
            Figures.Record(output, Area, "A's own user during the faults: sent to in the Maildir (ms)", "at once",
                $"p50 {Figures.Percentile(localLatencies, 50):0} ms, max {localLatencies[^1]:0} ms over {localLatencies.Count} probes");
            workingLatencies.Sort();
            Figures.Record(output, Area, "a working peer during the faults: sent to stored at the peer (ms)", "at once",
                $"p50 {Figures.Percentile(workingLatencies, 50):0} ms, max {workingLatencies[^1]:0} ms over {workingLatencies.Count} probes");
            Figures.Record(output, Area, "queue drained after recovery (all peers)", "yes", drained ? $"yes, {drainTime.TotalSeconds:0.0} s" : $"no, {a.QueueCount()} left");
            Figures.Record(output, Area, "A's open sockets before the fault / after the drain", "no growth beyond the connection limits",
                $"{socketsBefore} / {socketsAfter}; sessions still open at the peers: {string.Join(", ", faulty.Select(p => $"{p.Label} {p.OpenSessions}"))}");

            foreach (var peer in faulty)
            {
                var lost = Missing(peer, expected[peer]);
                Assert.True(lost.Count == 0, $"{peer.Label}: {lost.Count} message(s) never arrived, e.g. {string.Join(", ", lost.Take(3))}");
                var acknowledgedLate = peer.Stored.Where(d => d.During == PeerFault.DropDuringData).Select(d => d.MessageId).ToHashSet();
                var wrong = Copies(peer).Where(c => c.Value > 1 && !acknowledgedLate.Contains(c.Key.Id)).ToList();
                Assert.True(wrong.Count == 0, $"{peer.Label}: delivered more than once without a drop after the final dot: {string.Join(", ", wrong.Take(3))}");
                Assert.DoesNotContain(Copies(peer).Keys, k => !expected[peer].Contains(k));
            }
            Assert.True(drained, $"A's queue did not drain within {maxDrain.TotalSeconds:0} s of the recovery ({a.QueueCount()} left).");
            Assert.Empty(relayHost.Messages);
            Assert.Equal(0, counters["BouncesQueued"]);
            Assert.Equal(0, counters["FailedRecipients"]);
            foreach (var token in localTokens) Assert.Single(Mail.Delivered(maildir, token));
            Assert.All(workingIds, id => Assert.Single(healthy.Stored, d => d.MessageId == id));
            Assert.True(settled, $"Sessions A left open at the peers: {string.Join(", ", faulty.Select(p => $"{p.Label} {p.OpenSessions}"))}");
            output.WriteLine($"Whole test {clock.Elapsed.TotalSeconds:0.0} s.");
        }
        finally
        {
            cluster.KillRelays();
            foreach (var peer in peers) peer.Dispose();
        }
    }

    internal static string Label(PeerFault fault) => fault switch
    {
        PeerFault.Down => "down",
        PeerFault.BlackHole => "blackhole",
        PeerFault.TemporaryFailure => "tempfail",
        PeerFault.DropDuringData => "dropdata",
        _ => "healthy",
    };

    /// <summary>
    /// Sends every message through <paramref name="server"/> in one session (a new one if A closes it); a lookup that
    /// timed out (451 4.4.3) is tried again, twice at most, as a sending server would.
    /// </summary>
    internal static void SendAll(Server server, IReadOnlyList<MimeMessage> messages)
    {
        SmtpClient? client = null;
        try
        {
            foreach (var message in messages)
            {
                for (int attempt = 1; ; attempt++)
                {
                    client ??= Mail.Connect(server);
                    try
                    {
                        client.Send(message);
                        break;
                    }
                    catch (SmtpCommandException e) when (attempt < 3 && (int)e.StatusCode == 451 && e.Message.Contains("4.4.3", StringComparison.Ordinal))
                    {
                        Thread.Sleep(200);
                    }
                    catch (Exception e) when (attempt < 3 && e is ServiceNotConnectedException or SmtpProtocolException or IOException)
                    {
                        client.Dispose();
                        client = null;
                    }
                }
            }
            client?.Disconnect(quit: true);
        }
        finally
        {
            client?.Dispose();
        }
    }

    /// <summary>The pending recipients of A's queue per peer, read as the cmdlets read it (a non-owner view of the spool).</summary>
    private static Dictionary<FaultyPeer, List<QueuedRecipient>> Waiting(Server server, IReadOnlyList<FaultyPeer> peers)
    {
        using var queue = MessageQueue.Open(server.DataDirectory, new MessageQueueOptions { Owner = false });
        var all = queue.List().SelectMany(m => m.Recipients).Where(r => r.State == RecipientState.Pending).ToList();
        return peers.ToDictionary(p => p,
            p => all.Where(r => r.Route == QueueRoute.Peer && string.Equals(r.Peer, p.PeerName, StringComparison.OrdinalIgnoreCase)).ToList());
    }

    /// <summary>How many times each (Message-ID, recipient) was stored by <paramref name="peer"/>.</summary>
    private static Dictionary<(string Id, string To), int> Copies(FaultyPeer peer)
        => peer.Stored.SelectMany(d => d.Recipients.Select(r => (d.MessageId, r)))
            .GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());

    private static List<(string Id, string To)> Missing(FaultyPeer peer, HashSet<(string Id, string To)> expected)
    {
        var copies = Copies(peer);
        return [.. expected.Where(e => !copies.ContainsKey(e))];
    }

    internal static Dictionary<(string Id, string To), int> RelayHostCopies(SmtpSink sink)
        => sink.Messages.SelectMany(m => m.Recipients.Select(r => (MessageId(m.Data), r)))
            .GroupBy(k => k).ToDictionary(g => g.Key, g => g.Count());

    private static string MessageId(string data)
    {
        foreach (var line in data.Split("\r\n"))
        {
            if (line.Length == 0) break;
            if (line.StartsWith("Message-Id:", StringComparison.OrdinalIgnoreCase)) return line["Message-Id:".Length..].Trim().Trim('<', '>');
        }
        return "";
    }

    /// <summary>The open sockets of A's relay process (its /proc fd table).</summary>
    private static int Sockets(Server server)
    {
        if (server.State is not { } state) return -1;
        try
        {
            return new DirectoryInfo($"/proc/{state.ProcessId}/fd").EnumerateFileSystemInfos()
                .Count(f => f.LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }
}
