using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Smtp;
using DomainShare.Testing;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// The "Hostile SMTP" figure of the hardening battery: a real relay process takes thousands (full: 100,000) of
/// malformed, truncated, slow and abusive SMTP sessions from raw sockets on several loopback addresses while MailKit
/// clients from an address of their own send real mail to a real account. Every attacker session checks the answers it
/// gets where the protocol defines them; afterwards the relay must be the same process, still serving, with no session,
/// draft or memory left behind, every legitimate message delivered exactly once and nothing else delivered at all.
/// </summary>
public sealed class HostileSmtpTests(ITestOutputHelper output) : IDisposable
{
    private const string Area = "Hostile SMTP";
    private const string User = "user@example.com";
    private const string Attacker = "attacker@evil.test";

    /// <summary>The relay's limits for this test (Set-DomainShareConfig), and the engine's fixed ones.</summary>
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(2), DataTimeout = TimeSpan.FromSeconds(2);
    private const int MaxMessageBytes = 512 * 1024;
    private const int MaxRecipients = 10;
    private const int MaxConnections = 500;
    private const int MaxConnectionsPerSource = 50;
    private const int MaxLineBytes = SmtpServerOptions.DefaultMaxLineBytes;
    private const int MaxDataLineBytes = SmtpServerOptions.DefaultMaxDataLineBytes;
    private const int MaxErrors = SmtpServerOptions.DefaultMaxErrors;
    private const int MaxHops = Defaults.MaxHops;

    /// <summary>Accounts that only attackers write to (the RCPT flood needs more of them than <see cref="MaxRecipients"/>).</summary>
    private static readonly string[] Victims = [.. Enumerable.Range(1, MaxRecipients + 2).Select(i => $"victim{i:00}@example.com")];

    /// <summary>Attacker sessions, concurrent sessions (spread over <see cref="AttackSources"/> addresses: far below both limits), and the attack's time budget.</summary>
    private static readonly int Sessions = Figures.Size(3_000, 100_000);
    private static readonly int Workers = Figures.Size(48, 96);
    private const int AttackSources = 6;
    private static readonly TimeSpan AttackBudget = Figures.Full ? TimeSpan.FromMinutes(12) : TimeSpan.FromSeconds(25);
    /// <summary>No attacker session may take longer than this: a server that leaves one hanging has failed.</summary>
    private static readonly TimeSpan SessionCap = TimeSpan.FromSeconds(20);
    /// <summary>Connections one source opens at once to hit <see cref="MaxConnectionsPerSource"/>.</summary>
    private const int HogConnections = MaxConnectionsPerSource + 10;
    private const int LegitClients = 2;
    private static readonly TimeSpan Baseline = TimeSpan.FromSeconds(Figures.Size(3, 10));
    private const double RssLimitMiB = 600;

    private static readonly Regex MessageId = new(@"^Message-ID:\s*<([^>\r\n]+)>", RegexOptions.Multiline | RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private readonly Cluster cluster = new("hostile");

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
    }

    /// <summary>What an attacker session does. Each one that the protocol defines checks every answer it gets.</summary>
    private enum Kind
    {
        Noise, CommandGarbage, CutTranscript, OverlongLine, HugeLine, LineLimit, BareLineEndings, NulAnd8Bit,
        PipelinedGarbage, PipelinedFlood, BrokenMailRcpt, RcptFlood, TruncatedData, StalledData, RefusedContent, Bdat,
        StartTlsGarbage, StartTlsStall, TlsTruncatedData, TlsNoise, SlowCommand, SlowData, Silent, ConnectClose, HalfClose,
    }

    /// <summary>How often each kind is drawn. The slow kinds (two seconds and more each) are rare.</summary>
    private static readonly (Kind Kind, int Weight)[] Mix =
    [
        (Kind.Noise, 10), (Kind.CommandGarbage, 10), (Kind.CutTranscript, 8), (Kind.OverlongLine, 4), (Kind.HugeLine, 2),
        (Kind.LineLimit, 5), (Kind.BareLineEndings, 5), (Kind.NulAnd8Bit, 5), (Kind.PipelinedGarbage, 6), (Kind.PipelinedFlood, 3),
        (Kind.BrokenMailRcpt, 6), (Kind.RcptFlood, 4), (Kind.TruncatedData, 10), (Kind.StalledData, 1), (Kind.RefusedContent, 6),
        (Kind.Bdat, 3), (Kind.StartTlsGarbage, 4), (Kind.StartTlsStall, 1), (Kind.TlsTruncatedData, 3), (Kind.TlsNoise, 3),
        (Kind.SlowCommand, 1), (Kind.SlowData, 1), (Kind.Silent, 1), (Kind.ConnectClose, 6), (Kind.HalfClose, 4),
    ];

    /// <summary>Kinds whose every answer is defined: a reset or a closed connection where an answer was due is a failure there.</summary>
    private static bool Checked(Kind kind) => kind is not (Kind.Noise or Kind.CommandGarbage or Kind.CutTranscript or Kind.OverlongLine or Kind.ConnectClose);

    private sealed class KindStats
    {
        public long Runs, Failures;
    }

    private readonly KindStats[] stats = [.. Enum.GetValues<Kind>().Select(_ => new KindStats())];
    private readonly ConcurrentQueue<string> failures = new();
    private IPEndPoint endpoint = null!;

    [Fact]
    public async Task Thousands_of_hostile_sessions_crash_nothing_leak_nothing_deliver_nothing_while_legitimate_mail_keeps_flowing()
    {
        var total = Stopwatch.StartNew();
        var server = cluster.Add("hostile");
        var (certificate, key) = WriteCertificate(server);
        var run = cluster.SetUpAndStart([server],
            configure:
            [
                $"Set-DomainShareConfig -SmtpCommandTimeout {CommandTimeout.TotalSeconds}s -SmtpDataTimeout {DataTimeout.TotalSeconds}s "
                + $"-MaxMessageBytes {MaxMessageBytes} -MaxRecipients {MaxRecipients} -MaxConnections {MaxConnections} "
                + $"-MaxConnectionsPerSource {MaxConnectionsPerSource} -TlsCertificate '{certificate}' -TlsKey '{key}' {server.Cfg}",
            ],
            afterStart: [server.NewAccountScript(User), .. Victims.Select(server.NewAccountScript)]);
        var maildirs = run.OfKind<MailAccount>("Maildir").ToDictionary(a => a.Address, a => a.Maildir, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(1 + Victims.Length, maildirs.Count);
        int pid = server.State!.ProcessId;
        endpoint = new IPEndPoint(server.Address, server.SmtpPort);
        var setUp = total.Elapsed;

        var attackSources = Enumerable.Range(0, AttackSources).Select(_ => Loopback.NextAddress()).ToArray();
        var hogSource = Loopback.NextAddress();
        var legitSource = Loopback.NextAddress();

        // ---- legitimate mail, before, during and after the attack ----------------------------------------------------
        var legit = new LegitTraffic(server, legitSource);
        var memory = new MemoryWatch(pid);
        var log = new LogWatch(server.DataDirectory);
        using var stopAll = new CancellationTokenSource();
        var sampler = Task.Run(() => memory.RunAsync(stopAll.Token));
        var logReader = Task.Run(() => log.RunAsync(stopAll.Token));
        legit.Start();
        AttackResult attack;
        HogResult hog;
        try
        {
            await Task.Delay(Baseline);
            memory.EndBaseline();
            legit.Phase = LegitTraffic.During;

            // ---- the attack ------------------------------------------------------------------------------------------
            using var attackOver = new CancellationTokenSource();
            var hogTask = Task.Run(() => HogAsync(hogSource, attackOver.Token));
            attack = await AttackAsync(attackSources);
            attackOver.Cancel();
            hog = await hogTask;
            memory.EndAttack();
        }
        finally
        {
            legit.Phase = LegitTraffic.After;
            legit.Stop();
        }

        // ---- afterwards ------------------------------------------------------------------------------------------------
        Assert.True(Cluster.IsAlive(pid, server.ConfigPath), $"The relay process {pid} is gone: it crashed under the attack.");
        Assert.Equal(pid, server.State?.ProcessId);
        // A fresh session is served as if nothing had happened.
        var freshToken = Mail.NewToken("fresh");
        using (var client = Mail.Connect(server, legitSource, TimeSpan.FromSeconds(30)))
        {
            client.NoOp();
            Assert.Contains("queued as", client.Send(Mail.Message(freshToken, User)));
            client.Disconnect(quit: true);
        }
        legit.Accepted[freshToken + "@client.test"] = 0;

        bool sessionsEnded = Cluster.Eventually(() => server.Counters()["SmtpActiveSessions"] == 0, TimeSpan.FromSeconds(15), 100);
        var counters = server.Counters();
        var draftFolder = Path.Combine(server.DataDirectory, Engine.Queue.MessageQueue.FolderName, "tmp");
        int expected = legit.Accepted.Count;
        var inboxFolder = Path.Combine(maildirs[User], "new");
        bool delivered = Cluster.Eventually(() => server.QueueCount() == 0 && Directory.Exists(inboxFolder) && Directory.GetFiles(inboxFolder).Length >= expected,
            TimeSpan.FromSeconds(60), 200);
        // Drafts left behind would be leaked files; the spare files of delivered messages (kept for reuse) are bounded.
        var tmpFiles = Directory.Exists(draftFolder) ? Directory.GetFiles(draftFolder) : [];
        var drafts = tmpFiles.Where(f => !f.EndsWith(".spare", StringComparison.Ordinal)).ToArray();
        int spares = tmpFiles.Length - drafts.Length;
        var afterMiB = memory.SettleAfter(TimeSpan.FromSeconds(15));
        stopAll.Cancel();
        await sampler;
        await logReader;
        log.Poll();

        var inbox = Mail.Delivered(maildirs[User]);
        var ids = inbox.Select(t => MessageId.Match(t) is { Success: true } m ? m.Groups[1].Value : "(no Message-ID)").ToList();
        var strangers = ids.Where(id => !legit.Accepted.ContainsKey(id)).ToList();
        var duplicates = ids.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        var found = ids.ToHashSet(StringComparer.Ordinal);
        var missing = legit.Accepted.Keys.Where(id => !found.Contains(id)).ToList();
        var victimMail = Victims.Sum(v => Mail.Delivered(maildirs[v]).Count);
        var errorLines = log.ErrorLines;

        // ---- figures -----------------------------------------------------------------------------------------------
        var byKind = string.Join(", ", Enum.GetValues<Kind>().Select(k => $"{k} {stats[(int)k].Runs}"));
        Figures.Record(output, Area, "malformed or truncated sessions against a real relay", Figures.Full ? "≥ 100,000" : $"{Sessions} (quick)",
            string.Create(CultureInfo.InvariantCulture, $"{attack.Sessions} sessions in {attack.Elapsed.TotalSeconds:0.0} s ({attack.Sessions / attack.Elapsed.TotalSeconds:0}/s), {Workers} at once from {AttackSources} addresses{(attack.BudgetHit ? ", stopped by the time budget" : "")}; by kind: {byKind}"));
        Figures.Record(output, Area, "relay crashes", "0",
            $"{(Cluster.IsAlive(pid, server.ConfigPath) ? 0 : 1)} (pid {pid} throughout; session failures {counters["SmtpSessionFailures"]}; ERROR lines in relay.log {errorLines.Count})");
        Figures.Record(output, Area, "wrong answers, hangs, truncated messages accepted", "0",
            $"{stats.Sum(k => k.Failures)} {FailuresByKind()}(attacker sessions that got a '250 ... queued as': {attack.QueuedReplies}; cut by a timeout after the loaded machine held the client silent for {CommandTimeout.TotalSeconds:0} s, not counted: {Interlocked.Read(ref starvedTimeouts)})");
        Figures.Record(output, Area, "relay memory (RSS) during the attack", $"bounded (< {RssLimitMiB:0} MiB), back near the baseline after",
            string.Create(CultureInfo.InvariantCulture, $"max {memory.MaxAttackMiB:0} MiB; baseline {memory.BaselineMiB:0} MiB; after {afterMiB:0} MiB"));
        Figures.Record(output, Area, "per-source connection limit", $"≤ {MaxConnectionsPerSource} from one address, the others served",
            $"{hog.Bursts} bursts of {HogConnections} from one address: at most {hog.MaxAccepted} accepted at once, {hog.Refused} refused with 421 4.7.0; legitimate client failures meanwhile {legit.Failures.Count}");
        Figures.Record(output, Area, "legitimate messages during the attack", "all accepted and delivered",
            $"sent {legit.Sent + 1}, accepted {legit.Accepted.Count}, delivered {ids.Count(legit.Accepted.ContainsKey)} (by Message-ID); failures {legit.Failures.Count}; other files in the Maildirs {strangers.Count + victimMail}");
        Figures.Record(output, Area, "relay.log lines written", "bounded (the log rolls at 10 MB)",
            string.Create(CultureInfo.InvariantCulture, $"{log.Lines} ({(double)log.Lines / Math.Max(1, attack.Sessions):0.0} per attacker session; {log.ByLevel}); rolled {log.Rolls} times"));
        Figures.Record(output, Area, "legitimate latency before the attack", "(reference)", legit.Describe(LegitTraffic.Before));
        Figures.Record(output, Area, "legitimate latency during the attack", "served", legit.Describe(LegitTraffic.During));
        output.WriteLine($"set-up {setUp.TotalSeconds:0.0} s, total {total.Elapsed.TotalSeconds:0.0} s; counters: {string.Join(", ", counters.Where(c => c.Key.StartsWith("Smtp", StringComparison.Ordinal)).Select(c => $"{c.Key} {c.Value}"))}");
        foreach (var failure in failures.Take(30)) output.WriteLine($"FAILED {failure}");
        foreach (var failure in legit.Failures.Take(10)) output.WriteLine($"LEGIT FAILED {failure}");
        foreach (var line in errorLines.Take(10)) output.WriteLine($"LOG {line}");

        // ---- assertions ----------------------------------------------------------------------------------------------
        Assert.True(failures.IsEmpty, $"{failures.Count} attacker sessions got a wrong answer or hung, first: {string.Join(" | ", failures.Take(5))}");
        Assert.Equal(0, attack.QueuedReplies);
        Assert.True(legit.Failures.IsEmpty, $"{legit.Failures.Count} legitimate sessions failed, first: {string.Join(" | ", legit.Failures.Take(5))}");
        Assert.True(legit.Counts[LegitTraffic.During] > 0, "no legitimate message was sent during the attack");
        Assert.True(attack.Sessions >= (Figures.Full ? Sessions : Math.Min(Sessions, 1000)), $"only {attack.Sessions} attacker sessions ran");
        Assert.True(hog.Bursts > 0 && hog.MaxAccepted <= MaxConnectionsPerSource && hog.Refused >= hog.Bursts * (HogConnections - MaxConnectionsPerSource),
            $"per-source limit: {hog.Bursts} bursts, at most {hog.MaxAccepted} accepted at once, {hog.Refused} refused; {hog.Problem}");
        Assert.True(hog.Problem is null, hog.Problem);
        Assert.True(counters["SmtpConnectionsRefused"] >= hog.Refused, $"{counters["SmtpConnectionsRefused"]} refusals counted, {hog.Refused} seen");
        Assert.True(sessionsEnded, $"{server.Counters()["SmtpActiveSessions"]} sessions still active after the attack: leaked");
        Assert.Equal(0, counters["SmtpSessionFailures"]);
        Assert.Equal(legit.Accepted.Count, counters["SmtpMessagesAccepted"]); // not one attacker message was ever accepted
        Assert.True(drafts.Length == 0, $"drafts left in {draftFolder}: {string.Join(", ", drafts.Take(5))}");
        Assert.True(spares <= 8192, $"{spares} spare files in {draftFolder}, more than the queue keeps (8,192)");
        Assert.True(delivered, $"the queue did not drain or mail is missing: queue {server.QueueCount()}, delivered {inbox.Count} of {expected}");
        Assert.True(missing.Count == 0, $"{missing.Count} accepted legitimate messages not delivered: {string.Join(", ", missing.Take(5))}");
        Assert.True(strangers.Count == 0, $"{strangers.Count} messages in the Maildir that no legitimate client sent: {string.Join(", ", strangers.Take(5))}");
        Assert.True(duplicates.Count == 0, $"delivered twice: {string.Join(", ", duplicates.Take(5))}");
        Assert.Equal(0, victimMail);
        Assert.True(errorLines.Count == 0, $"relay.log has {errorLines.Count} ERROR lines, first: {string.Join(" | ", errorLines.Take(3))}");
        Assert.True(memory.MaxAttackMiB is > 0 and < RssLimitMiB, $"RSS reached {memory.MaxAttackMiB:0} MiB");
        Assert.True(afterMiB <= memory.SettleLimit, $"RSS {afterMiB:0} MiB after the attack, baseline {memory.BaselineMiB:0} MiB, max {memory.MaxAttackMiB:0} MiB");
    }

    // ==== the attack ====================================================================================================

    private sealed record AttackResult(int Sessions, TimeSpan Elapsed, bool BudgetHit, long QueuedReplies);

    private long queuedReplies;

    private async Task<AttackResult> AttackAsync(IPAddress[] sources)
    {
        long next = -1, done = 0;
        var watch = Stopwatch.StartNew();
        using var budget = new CancellationTokenSource(AttackBudget);
        using var abort = new CancellationTokenSource(AttackBudget + SessionCap + TimeSpan.FromSeconds(30));
        int totalWeight = Mix.Sum(m => m.Weight);

        async Task WorkerAsync(int worker)
        {
            var from = sources[worker % sources.Length];
            while (!budget.IsCancellationRequested)
            {
                long i = Interlocked.Increment(ref next);
                if (i >= Sessions) break;
                int seed = 7_000_000 + (int)i;
                var random = new Random(seed);
                int pick = random.Next(totalWeight);
                var kind = Mix.First(m => (pick -= m.Weight) < 0).Kind;
                await SessionAsync(kind, seed, random, from, abort.Token);
                Interlocked.Increment(ref done);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(w => Task.Run(() => WorkerAsync(w))));
        return new AttackResult((int)Interlocked.Read(ref done), watch.Elapsed, budget.IsCancellationRequested && done < Sessions, Interlocked.Read(ref queuedReplies));
    }

    private async Task SessionAsync(Kind kind, int seed, Random random, IPAddress from, CancellationToken abort)
    {
        Interlocked.Increment(ref stats[(int)kind].Runs);
        using var cap = CancellationTokenSource.CreateLinkedTokenSource(abort);
        cap.CancelAfter(SessionCap);
        Wire? wire = null;
        try
        {
            wire = await Wire.OpenAsync(from, endpoint, this, cap.Token);
            await (kind switch
            {
                Kind.Noise => Unchecked(wire, random, HostileSmtpInput.Noise(random)),
                Kind.CommandGarbage => Unchecked(wire, random, HostileSmtpInput.CommandGarbage(random)),
                Kind.CutTranscript => Unchecked(wire, random, HostileSmtpInput.Transcript(random, User, mayComplete: false)),
                Kind.OverlongLine => Unchecked(wire, random, HostileSmtpInput.OverlongLine(random)),
                Kind.HugeLine => HugeLine(wire, random),
                Kind.LineLimit => LineLimit(wire, random),
                Kind.BareLineEndings => BareLineEndings(wire, random),
                Kind.NulAnd8Bit => NulAnd8Bit(wire, random),
                Kind.PipelinedGarbage => PipelinedGarbage(wire, random),
                Kind.PipelinedFlood => PipelinedFlood(wire, random),
                Kind.BrokenMailRcpt => BrokenMailRcpt(wire, random),
                Kind.RcptFlood => RcptFlood(wire, random),
                Kind.TruncatedData => TruncatedData(wire, random, stall: false),
                Kind.StalledData => TruncatedData(wire, random, stall: true),
                Kind.RefusedContent => RefusedContent(wire, random),
                Kind.Bdat => Bdat(wire, random),
                Kind.StartTlsGarbage => StartTlsGarbage(wire, random),
                Kind.StartTlsStall => StartTlsStall(wire, random),
                Kind.TlsTruncatedData => TlsTruncatedData(wire, random),
                Kind.TlsNoise => TlsNoise(wire, random),
                Kind.SlowCommand => SlowCommand(wire, random),
                Kind.SlowData => SlowData(wire, random),
                Kind.Silent => Silent(wire),
                Kind.ConnectClose => ConnectClose(wire, random),
                Kind.HalfClose => HalfClose(wire, random),
                _ => throw new ArgumentOutOfRangeException(nameof(kind)),
            });
        }
        catch (Violation v) when (wire is not null && v.TimeoutAnswer && wire.WasSilentFor(CommandTimeout - Slack))
        {
            // 421 4.4.2 (or the close of a timed-out handshake) where another answer was due, but the client had really
            // been silent for a whole timeout: the machine starved it (or the server), and the server did its duty.
            Interlocked.Increment(ref starvedTimeouts);
        }
        catch (Violation v)
        {
            Fail(kind, seed, v.Message);
        }
        catch (OperationCanceledException) when (!abort.IsCancellationRequested)
        {
            Fail(kind, seed, $"no end within {SessionCap.TotalSeconds:0} s (the server left the session hanging)");
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or AuthenticationException)
        {
            if (wire is not null && Checked(kind) && wire.WasSilentFor(CommandTimeout - Slack)) Interlocked.Increment(ref starvedTimeouts); // as above
            else if (Checked(kind) || wire is null) Fail(kind, seed, $"{e.GetType().Name}: {e.Message}");
        }
        catch (OperationCanceledException)
        {
            // The whole attack was aborted (its hard time limit): counted by the caller, not a failure of this session.
        }
        finally
        {
            wire?.Dispose();
        }
    }

    /// <summary>Timer and scheduling slack when telling a starved client from a server that cut too early.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(100);

    /// <summary>Sessions cut by the server's timeout while the client, starved by the loaded machine, had been silent for a whole timeout.</summary>
    private long starvedTimeouts;

    private string FailuresByKind()
    {
        var failed = Enum.GetValues<Kind>().Where(k => stats[(int)k].Failures > 0).Select(k => $"{k} {stats[(int)k].Failures}").ToList();
        return failed.Count == 0 ? "" : $"[{string.Join(", ", failed)}] ";
    }

    private void Fail(Kind kind, int seed, string what)
    {
        Interlocked.Increment(ref stats[(int)kind].Failures);
        if (failures.Count < 200) failures.Enqueue($"{kind} (seed {seed}): {what}");
    }

    /// <summary>Garbage with no defined answers: sent in random pieces, then a reset, a close, or a half-close and reading to the end.</summary>
    private static async Task Unchecked(Wire w, Random r, byte[] bytes)
    {
        try
        {
            if (r.Next(2) == 0) await w.ReplyAsync(); // read the greeting first, or not
            await w.SendInPiecesAsync(bytes, r);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return; // the server may close first (too many errors, a failed handshake): that is its right
        }
        await EndRandomlyAsync(w, r);
    }

    private static async Task EndRandomlyAsync(Wire w, Random r)
    {
        switch (r.Next(3))
        {
            case 0:
                w.Reset();
                break;
            case 1:
                w.Close();
                break;
            default:
                w.HalfClose();
                try { await w.RepliesToEndAsync(); } // every reply is checked for a '250 queued' on the way
                catch (Exception e) when (e is SocketException or IOException) { }
                break;
        }
    }

    /// <summary>A 1 MiB command line without CRLF: then a reset, or its CRLF and a NOOP, which must be answered 500 5.5.6 then 250.</summary>
    private static async Task HugeLine(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        var bytes = new byte[1024 * 1024 + r.Next(1024)];
        bytes.AsSpan().Fill((byte)'x');
        "MAIL FROM:<"u8.CopyTo(bytes);
        await w.SendInPiecesAsync(bytes, r, maxPieces: 16);
        if (r.Next(2) == 0)
        {
            w.Reset();
            return;
        }
        await w.SendAsync("\r\nNOOP\r\nQUIT\r\n");
        await w.ExpectAsync(500, "5.5.6");
        await w.ExpectAsync(250);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>Command lines of 512 and exactly <see cref="MaxLineBytes"/> octets are executed; one octet more is answered 500 5.5.6.</summary>
    private static async Task LineLimit(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        await w.SendAsync("EHLO limit.test\r\n");
        await w.ExpectAsync(250);
        int length = r.Next(4) switch { 0 => 512, 1 => MaxLineBytes, 2 => MaxLineBytes + 1, _ => MaxLineBytes + 1 + r.Next(20_000) };
        var line = Encoding.ASCII.GetBytes("NOOP " + new string('x', length - 7) + "\r\n");
        await w.SendInPiecesAsync(line, r);
        if (length <= MaxLineBytes) await w.ExpectAsync(250);
        else await w.ExpectAsync(500, "5.5.6");
        await w.SendAsync("NOOP\r\nQUIT\r\n");
        await w.ExpectAsync(250);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>Lines ended by a bare LF or holding a bare CR are refused, never executed (not even a QUIT in them).</summary>
    private static async Task BareLineEndings(Wire w, Random r)
    {
        string[] bad = ["NOOP\n", "\n", "NOOP\rQUIT\r\n", "EHLO x.test\r\r\n", "RSET\r \r\n", "QUIT\n", $"MAIL FROM:<{Attacker}>\n", "HELO a\rb\r\n"];
        await w.ExpectAsync(220);
        var lines = Pick(r, bad, 1, bad.Length);
        await w.SendInPiecesAsync(Encoding.ASCII.GetBytes(string.Concat(lines) + "NOOP\r\nQUIT\r\n"), r);
        foreach (var line in lines) await w.ExpectAsync(500, "5.5.2", line);
        await w.ExpectAsync(250);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>NUL, other control bytes, invalid UTF-8 and non-ASCII outside addresses: 500 5.5.2; a UTF-8 address without SMTPUTF8: 553.</summary>
    private static async Task NulAnd8Bit(Wire w, Random r)
    {
        (byte[] Line, int Code)[] bad =
        [
            ([.. "EHLO "u8, 0, .. "evil\r\n"u8], 500), ([.. "NOOP "u8, 0xFF, 0xFE, 13, 10], 500), ([0, 0, 0, 0, 13, 10], 500),
            ([.. "HELO "u8, .. "é.test"u8, 13, 10], 500), ([0x80, .. "QUIT\r\n"u8], 500), ([.. "QUIT"u8, 0, 13, 10], 500),
            ([.. "MAIL FROM:<"u8, .. "é"u8, .. "@evil.test>\r\n"u8], 553), ([.. "RCPT TO:<"u8, 0xC3, 0x28, .. "@x.test>\r\n"u8], 500),
            ([.. "NOOP "u8, 0x7F, 13, 10], 500), ([.. "VRFY "u8, 0xC0, 0xAF, 13, 10], 500),
        ];
        await w.ExpectAsync(220);
        await w.SendAsync("EHLO ok.test\r\n");
        await w.ExpectAsync(250);
        var lines = Pick(r, bad, 1, bad.Length);
        await w.SendInPiecesAsync([.. lines.SelectMany(l => l.Line), .. "NOOP\r\nQUIT\r\n"u8], r);
        foreach (var (line, code) in lines) await w.ExpectAsync(code, null, Encoding.Latin1.GetString(line));
        await w.ExpectAsync(250);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>Commands that are all errors, pipelined after EHLO in one write: each answered, and at <see cref="MaxErrors"/> the session ends with 421 4.7.0.</summary>
    private static async Task PipelinedGarbage(Wire w, Random r)
    {
        string[] errors =
        [
            "XYZZY plugh", "RCPT TO:<user@example.com>", "DATA", "HELO", "VRFY", "BDAT 10 LAST", "AUTH PLAIN AGFAAGI=",
            "STARTTLS now", "MAIL FROM:<<>>", "RSET x", "DATA x", "MAIL FROM:\u0001", "EHLO bad name", "MAIL", "RCPT",
        ];
        int k = r.Next(1, 3 * MaxErrors);
        var text = new StringBuilder("EHLO pipe.test\r\n");
        for (int i = 0; i < k; i++) text.Append(errors[r.Next(errors.Length)]).Append("\r\n");
        text.Append("QUIT\r\n");
        await w.SendAsync(text.ToString());
        var replies = await w.RepliesToEndAsync();
        int errorReplies = Math.Min(k, MaxErrors);
        var codes = replies.Select(x => x.Code).ToList();
        var expected = new List<int> { 220, 250 };
        if (k >= MaxErrors) expected.AddRange(Enumerable.Repeat(5, errorReplies).Append(421));
        else expected.AddRange(Enumerable.Repeat(5, errorReplies).Append(221));
        bool ok = codes.Count == expected.Count
                  && codes.Zip(expected).All(p => p.Second == 5 ? p.First / 100 == 5 : p.First == p.Second)
                  && (k < MaxErrors ? true : replies[^1].Text.Contains("4.7.0", StringComparison.Ordinal));
        if (!ok) throw new Violation($"{k} pipelined errors answered [{string.Join(" ", codes)}], expected [{string.Join(" ", expected.Select(c => c == 5 ? "5xx" : c.ToString(CultureInfo.InvariantCulture)))}]");
    }

    /// <summary>Thousands of NOOPs in one write: every one answered in order (or never read, and the connection reset).</summary>
    private static async Task PipelinedFlood(Wire w, Random r)
    {
        int m = r.Next(100, 20_000);
        var bytes = Encoding.ASCII.GetBytes("EHLO flood.test\r\n" + string.Concat(Enumerable.Repeat("NOOP\r\n", m)) + "QUIT\r\n");
        if (r.Next(3) == 0)
        {
            try { await w.SendAsync(bytes); } // never reading: the server's replies back up until its timeout
            catch (Exception e) when (e is SocketException or IOException) { }
            w.Reset();
            return;
        }
        var reading = w.RepliesToEndAsync();
        await w.SendInPiecesAsync(bytes, r, maxPieces: 8);
        var replies = await reading;
        int noops = replies.Count(x => x.Code == 250) - 1;
        if (replies.Count != m + 3 || replies[0].Code != 220 || noops != m || replies[^1].Code != 221)
            throw new Violation($"{m} pipelined NOOPs: {replies.Count} replies ({noops} NOOP answers), last {replies.LastOrDefault()}");
    }

    /// <summary>MAIL and RCPT with broken syntax, huge or unknown parameters and out of sequence: each refused with its code, the session in step.</summary>
    private static async Task BrokenMailRcpt(Wire w, Random r)
    {
        (string Line, int Code)[] mail =
        [
            ($"MAIL FROM:{Attacker}", 501), ($"MAIL FROM:<{Attacker}> SIZE=99999999999999999999999", 501),
            ($"MAIL FROM:<{Attacker}> SIZE={MaxMessageBytes + 1}", 552), ($"MAIL FROM:<{new string('a', 300)}@evil.test>", 501),
            ($"MAIL FROM:<{Attacker}> X-HUGE={new string('y', 900)}", 555), ($"MAIL FROM:<{Attacker}> BODY=9BIT", 501),
            ($"MAIL FROM:<attacker@{string.Join('.', Enumerable.Repeat("x", 140))}>", 501), ($"MAIL TO:<{Attacker}>", 501),
            ($"MAIL FROM:<{Attacker}> SIZE=10 SIZE=10", 501), ($"MAIL FROM:<{Attacker}> BODY=7BIT BODY=7BIT", 501),
            ($"MAIL FROM:<{Attacker}> SMTPUTF8=yes", 501), ($"MAIL FROM:<{Attacker}>>", 501), ("MAIL FROM:<attacker@@evil.test>", 501),
            ("MAIL FROM:<\"unterminated@evil.test>", 501), ($"RCPT TO:<{User}>", 503), ("MAIL FROM:", 501),
        ];
        (string Line, int Code)[] rcpt =
        [
            ("RCPT TO:<>", 501), ($"RCPT TO:{User}", 501), ($"RCPT TO:<{User}> NOTIFY=NEVER", 555),
            ($"RCPT TO:<{new string('u', 70)}@example.com>", 501), ("RCPT TO:<user@[999.1.1.1", 501), ("RCPT TO:<@bad..route:user@example.com>", 501),
            ($"MAIL FROM:<{Attacker}>", 503), ("DATA now", 501), ("RCPT TO:<user@exam ple.com>", 501), ($"RCPT TO:<{User}> {new string('z', 900)}", 555),
        ];
        await w.ExpectAsync(220);
        await w.SendAsync("EHLO broken.test\r\n");
        await w.ExpectAsync(250);
        List<(string Line, int Code)> lines = [.. Pick(r, mail, 1, 9), ($"MAIL FROM:<{Attacker}>", 250), .. Pick(r, rcpt, 1, 9), ("RSET", 250), ("QUIT", 221)];
        bool pipelined = r.Next(2) == 0;
        if (pipelined) await w.SendInPiecesAsync(Encoding.ASCII.GetBytes(string.Concat(lines.Select(l => l.Line + "\r\n"))), r);
        foreach (var (line, code) in lines)
        {
            if (!pipelined) await w.SendAsync(line + "\r\n");
            await w.ExpectAsync(code, null, line);
        }
        await w.ExpectEndAsync();
    }

    /// <summary>
    /// More RCPTs than <see cref="MaxRecipients"/> (real accounts, unknown ones, duplicates) in one write: the first
    /// <see cref="MaxRecipients"/> distinct accounts 250, the rest 452 4.5.3, unknown ones 550; then DATA and a truncated message.
    /// </summary>
    private static async Task RcptFlood(Wire w, Random r)
    {
        var targets = Victims.Concat(Enumerable.Range(0, r.Next(5, 40)).Select(i => $"nobody{i}@example.com")).OrderBy(_ => r.Next()).ToList();
        for (int i = r.Next(5); i > 0; i--) targets.Insert(r.Next(targets.Count), Victims[r.Next(Victims.Length)]);
        var accepted = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var expected = new List<int>();
        foreach (var t in targets)
        {
            if (accepted.Contains(t)) expected.Add(250);
            else if (accepted.Count >= MaxRecipients) expected.Add(452);
            else if (t.StartsWith("victim", StringComparison.Ordinal)) { accepted.Add(t); expected.Add(250); }
            else expected.Add(550);
        }
        await w.ExpectAsync(220);
        await w.SendAsync($"EHLO flood.test\r\nMAIL FROM:<{Attacker}>\r\n" + string.Concat(targets.Select(t => $"RCPT TO:<{t}>\r\n")) + "DATA\r\n");
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        for (int i = 0; i < targets.Count; i++) await w.ExpectAsync(expected[i], null, $"RCPT TO:<{targets[i]}> (#{i + 1})");
        await w.ExpectAsync(354);
        await w.SendInPiecesAsync(TruncatedBody(r, r.Next(0, 20_000)), r);
        await AbandonAsync(w, r);
    }

    /// <summary>
    /// A message to the real account, cut before its end: then a reset, a close, a half-close (nothing more may be answered),
    /// or (<paramref name="stall"/>) silence, answered 421 4.4.2 by the data timeout. Never 250.
    /// </summary>
    private static async Task TruncatedData(Wire w, Random r, bool stall)
    {
        await w.ExpectAsync(220);
        await w.SendAsync($"EHLO trunc.test\r\nMAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nDATA\r\n");
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(354);
        await w.SendInPiecesAsync(TruncatedBody(r, r.Next(0, MaxMessageBytes / 2)), r);
        if (stall)
        {
            await w.ExpectAsync(421, "4.4.2");
            await w.ExpectEndAsync();
            return;
        }
        await AbandonAsync(w, r);
    }

    private static async Task AbandonAsync(Wire w, Random r)
    {
        switch (r.Next(3))
        {
            case 0:
                w.Reset();
                break;
            case 1:
                w.Close();
                break;
            default:
                w.HalfClose();
                var after = await w.RepliesToEndAsync();
                if (after.Count > 0) throw new Violation($"after a half-close in the middle of DATA the server still answered: {after[0]}");
                break;
        }
    }

    /// <summary>Header and text lines of about <paramref name="size"/> octets that never hold the end of the content, ending anywhere but there.</summary>
    private static byte[] TruncatedBody(Random r, int size)
    {
        var b = new StringBuilder($"From: <{Attacker}>\r\nTo: <{User}>\r\nSubject: truncated\r\nMessage-ID: <attack-{r.Next()}@evil.test>\r\n\r\n");
        while (b.Length < size)
        {
            int n = r.Next(0, 200);
            for (int i = 0; i < n; i++) b.Append((char)r.Next('a', 'z' + 1));
            b.Append("\r\n");
        }
        b.Append(r.Next(5) switch { 0 => "", 1 => ".", 2 => ".\r", 3 => "partial line", _ => "\r\n." });
        return Encoding.ASCII.GetBytes(b.ToString());
    }

    /// <summary>Whole messages to the real account that must be refused: too big, bare LF (also as a smuggling attempt), a line too long, too many hops; SIZE too big.</summary>
    private static async Task RefusedContent(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        int variant = r.Next(6);
        if (variant == 5)
        {
            await w.SendAsync($"EHLO size.test\r\nMAIL FROM:<{Attacker}> SIZE={MaxMessageBytes + 1 + r.Next(1_000_000)}\r\nRCPT TO:<{User}>\r\nDATA\r\nQUIT\r\n");
            await w.ExpectAsync(250);
            await w.ExpectAsync(552, "5.3.4");
            await w.ExpectAsync(503);
            await w.ExpectAsync(503);
            await w.ExpectAsync(221);
            await w.ExpectEndAsync();
            return;
        }
        await w.SendAsync($"EHLO refused.test\r\nMAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nDATA\r\n");
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(354);
        var head = $"From: <{Attacker}>\r\nSubject: refused\r\nMessage-ID: <refused-{r.Next()}@evil.test>\r\n";
        (string body, int code, string enhanced) = variant switch
        {
            0 => (head + "\r\n" + string.Concat(Enumerable.Repeat(new string('b', 998) + "\r\n", MaxMessageBytes / 1000 + 1 + r.Next(64))), 552, "5.3.4"),
            1 => (head + "\r\nline one\nline two\r\n", 554, "5.6.0"),
            2 => (head + "\r\nsmuggled" + (r.Next(2) == 0 ? "\n.\r\n" : "\r\n.\n") + $"MAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nDATA\r\nsmuggled message\r\n", 554, "5.6.0"),
            3 => (head + "\r\n" + new string('l', MaxDataLineBytes + r.Next(1, 10_000)) + "\r\n", 554, "5.6.0"),
            _ => (string.Concat(Enumerable.Repeat("Received: from hop.test by hop.test; Tue, 1 Nov 2026 09:30:00 +0000\r\n", MaxHops + 1)) + head + "\r\nloop\r\n", 554, "5.4.6"),
        };
        await w.SendInPiecesAsync(Encoding.ASCII.GetBytes(body + ".\r\nQUIT\r\n"), r, maxPieces: 8);
        await w.ExpectAsync(code, enhanced);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>BDAT (not offered): 502, and the chunk that follows is taken as a (bad) command line, never as content.</summary>
    private static async Task Bdat(Wire w, Random r)
    {
        var chunk = new byte[r.Next(1, 900)];
        r.NextBytes(chunk);
        chunk[0] = 0x80; // never a command
        for (int i = 0; i < chunk.Length; i++)
            if (chunk[i] == (byte)'\n') chunk[i] = (byte)'?';
        await w.ExpectAsync(220);
        byte[] bytes = [.. Encoding.ASCII.GetBytes($"EHLO bdat.test\r\nMAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nBDAT {chunk.Length} LAST\r\n"), .. chunk, .. "\r\nQUIT\r\n"u8];
        await w.SendAsync(bytes);
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(502, "5.5.1");
        await w.ExpectAsync(500);
        await w.ExpectAsync(221);
        await w.ExpectEndAsync();
    }

    /// <summary>STARTTLS, then random bytes instead of a TLS handshake: the server answers nothing more in clear text and closes.</summary>
    private static async Task StartTlsGarbage(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        await w.SendAsync("EHLO tls.test\r\n");
        var ehlo = await w.ExpectAsync(250);
        if (!ehlo.Text.Contains("STARTTLS", StringComparison.Ordinal)) throw new Violation($"STARTTLS not offered: {ehlo}");
        await w.SendAsync("STARTTLS\r\n");
        await w.ExpectAsync(220, "2.0.0");
        var garbage = new byte[r.Next(1, 2000)];
        r.NextBytes(garbage);
        if (garbage[0] == 0x16) garbage[0] = 0x15;
        try { await w.SendInPiecesAsync(garbage, r); }
        catch (Exception e) when (e is SocketException or IOException) { return; } // closed while we wrote: that is the right answer
        await w.ExpectTlsEndAsync();
    }

    /// <summary>STARTTLS with garbage in the same write (discarded, RFC 3207) or a TLS record header and then nothing: cut by the command timeout.</summary>
    private static async Task StartTlsStall(Wire w, Random r)
    {
        byte[] bytes = r.Next(2) == 0
            ? HostileSmtpInput.StartTlsGarbage(r)
            : [.. "EHLO tls.test\r\nSTARTTLS\r\n"u8, 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03];
        await w.SendAsync(bytes);
        await w.ExpectAsync(220);
        await w.ExpectAsync(250);
        await w.ExpectAsync(220, "2.0.0");
        await w.ExpectTlsEndAsync();
    }

    /// <summary>STARTTLS and a real handshake, then EHLO again and a message to the real account cut before its end.</summary>
    private static async Task TlsTruncatedData(Wire w, Random r)
    {
        await w.StartTlsAsync();
        await w.SendAsync($"EHLO tls.test\r\nMAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nDATA\r\n");
        var ehlo = await w.ExpectAsync(250);
        if (ehlo.Text.Contains("STARTTLS", StringComparison.Ordinal)) throw new Violation($"STARTTLS offered again under TLS: {ehlo}");
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(354);
        await w.SendInPiecesAsync(TruncatedBody(r, r.Next(0, 64 * 1024)), r);
        await AbandonAsync(w, r);
    }

    /// <summary>STARTTLS and a real handshake, then noise inside TLS: no defined answers, and a reset, close or half-close.</summary>
    private static async Task TlsNoise(Wire w, Random r)
    {
        await w.StartTlsAsync();
        try
        {
            await w.SendInPiecesAsync(r.Next(2) == 0 ? HostileSmtpInput.Noise(r) : HostileSmtpInput.CommandGarbage(r), r);
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            return; // the server may close first
        }
        await EndRandomlyAsync(w, r);
    }

    /// <summary>A command line trickled a byte every few hundred milliseconds: cut by the command timeout (421 4.4.2) before it is complete.</summary>
    private static async Task SlowCommand(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        await TrickleAsync(w, r, Encoding.ASCII.GetBytes("EHLO slow.sender.example.test\r\n"), "command");
    }

    /// <summary>A message line trickled a byte every few hundred milliseconds: cut by the data timeout (421 4.4.2), never stored.</summary>
    private static async Task SlowData(Wire w, Random r)
    {
        await w.ExpectAsync(220);
        await w.SendAsync($"EHLO slow.test\r\nMAIL FROM:<{Attacker}>\r\nRCPT TO:<{User}>\r\nDATA\r\n");
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(250);
        await w.ExpectAsync(354);
        await w.SendAsync("Subject: slow\r\n");
        await TrickleAsync(w, r, Encoding.ASCII.GetBytes("X-Slow: " + new string('s', 40) + "\r\n"), "message line");
    }

    private static async Task TrickleAsync(Wire w, Random r, byte[] bytes, string what)
    {
        var answer = w.ReplyAsync();
        int sent = 0;
        var watch = Stopwatch.StartNew();
        try
        {
            for (; sent < bytes.Length && !answer.IsCompleted; sent++)
            {
                await w.SendAsync(bytes.AsMemory(sent, 1));
                await Task.WhenAny(answer, Task.Delay(r.Next(200, 400), w.Ct));
            }
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            // closed under us: the answer tells why
        }
        bool cut = answer.IsCompleted || sent < bytes.Length; // answered, or closed, before the whole line went
        var reply = await answer;
        if (!cut)
            throw new Violation($"a {what} trickled over {watch.Elapsed.TotalSeconds:0.0} s was not cut by the timeout");
        if (reply is not { Code: 421 } || !reply.Text.Contains("4.4.2", StringComparison.Ordinal))
            throw new Violation($"a {what} trickled a byte at a time for {watch.Elapsed.TotalSeconds:0.0} s ({sent} of {bytes.Length} bytes) got {reply?.ToString() ?? "no answer"}, not 421 4.4.2");
        await w.ExpectEndAsync(tolerateReset: true);
    }

    /// <summary>Connected and silent: 421 4.4.2 by the command timeout, then the close.</summary>
    private static async Task Silent(Wire w)
    {
        await w.ExpectAsync(220);
        await w.ExpectAsync(421, "4.4.2");
        await w.ExpectEndAsync();
    }

    private static Task ConnectClose(Wire w, Random r)
    {
        if (r.Next(2) == 0) w.Reset();
        else w.Close();
        return Task.CompletedTask;
    }

    /// <summary>Commands, then a half-close (possibly in the middle of a line): the complete ones are answered, then the server closes too.</summary>
    private static async Task HalfClose(Wire w, Random r)
    {
        bool midLine = r.Next(2) == 0;
        await w.SendAsync("EHLO half.test\r\nNOOP\r\n" + (midLine ? "NOO" : ""));
        w.HalfClose();
        var codes = (await w.RepliesToEndAsync()).Select(x => x.Code).ToList();
        if (!codes.SequenceEqual([220, 250, 250])) throw new Violation($"a half-closed session was answered [{string.Join(" ", codes)}], expected [220 250 250]");
    }

    private static List<T> Pick<T>(Random r, T[] from, int min, int max)
        => [.. from.OrderBy(_ => r.Next()).Take(r.Next(min, Math.Min(max, from.Length) + 1))];

    // ==== one source over its limit =======================================================================================

    private sealed record HogResult(int Bursts, int MaxAccepted, int Refused, string? Problem);

    /// <summary>
    /// Every second of the attack, <see cref="HogConnections"/> connections at once from one address: no more than
    /// <see cref="MaxConnectionsPerSource"/> may be greeted, the others must be told 421 4.7.0 (this address), while
    /// the legitimate clients on their own address go on being served.
    /// </summary>
    private async Task<HogResult> HogAsync(IPAddress source, CancellationToken stop)
    {
        int bursts = 0, maxAccepted = 0, refused = 0;
        string? problem = null;
        for (int n = 0; n < 1000 && !stop.IsCancellationRequested; n++)
        {
            using var cap = new CancellationTokenSource(SessionCap);
            var wires = new List<Wire>();
            try
            {
                var opening = Enumerable.Range(0, HogConnections).Select(_ => Wire.OpenAsync(source, endpoint, this, cap.Token)).ToList();
                foreach (var open in opening)
                {
                    try { wires.Add(await open); }
                    catch (Exception e) { problem ??= $"a connection of burst {n} failed: {e.Message}"; }
                }
                var replies = await Task.WhenAll(wires.Select(w => w.ReplyAsync()));
                int accepted = replies.Count(x => x?.Code == 220);
                int tooMany = replies.Count(x => x?.Code == 421 && x.Text.Contains("4.7.0", StringComparison.Ordinal) && x.Text.Contains("your address", StringComparison.Ordinal));
                if (accepted + tooMany != wires.Count)
                    problem ??= $"burst {n}: {accepted} greeted, {tooMany} refused for the address, others: {string.Join(" | ", replies.Where(x => x?.Code is not (220 or 421)).Take(3))}";
                bursts++;
                maxAccepted = Math.Max(maxAccepted, accepted);
                refused += tooMany;
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or Violation)
            {
                problem ??= $"burst {n}: {e.GetType().Name}: {e.Message}";
            }
            finally
            {
                foreach (var w in wires)
                {
                    w.Reset();
                    w.Dispose();
                }
            }
            try { await Task.Delay(1000, stop); }
            catch (OperationCanceledException) { break; }
        }
        return new HogResult(bursts, maxAccepted, refused, problem);
    }

    // ==== the raw client ===================================================================================================

    private sealed class Violation(string message, bool timeoutAnswer = false) : Exception(message)
    {
        /// <summary>The unexpected answer was the server's timeout (421 4.4.2) or a close.</summary>
        public bool TimeoutAnswer { get; } = timeoutAnswer;
    }

    private sealed record Reply(int Code, string Text)
    {
        public override string ToString() => Text.ReplaceLineEndings(" / ");
    }

    /// <summary>
    /// One attacker connection: raw bytes out, SMTP replies in (strictly: CRLF line ends, three digits, continuation
    /// lines). Every reply is checked for a <c>250 ... queued as</c>, which no attacker session may ever get.
    /// </summary>
    private sealed class Wire : IDisposable
    {
        private readonly Socket socket;
        private readonly HostileSmtpTests owner;
        private readonly byte[] buffer = new byte[64 * 1024];
        private Stream stream;
        private int start, end;
        private long lastSend = Stopwatch.GetTimestamp();
        private TimeSpan longestSilence;

        /// <summary>
        /// True when the client once went <paramref name="silence"/> or longer without writing (between two writes, or
        /// since the last): only then may a server rightly have timed it out. A TLS handshake counts as silence: its
        /// records are not written through <see cref="SendAsync"/>.
        /// </summary>
        public bool WasSilentFor(TimeSpan silence)
            => longestSilence >= silence || Stopwatch.GetElapsedTime(Interlocked.Read(ref lastSend)) >= silence;

        private Wire(Socket socket, HostileSmtpTests owner, CancellationToken ct)
        {
            this.socket = socket;
            this.owner = owner;
            stream = new NetworkStream(socket, ownsSocket: false);
            Ct = ct;
        }

        public CancellationToken Ct { get; }

        public static async Task<Wire> OpenAsync(IPAddress from, IPEndPoint to, HostileSmtpTests owner, CancellationToken ct)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(from, 0));
                await socket.ConnectAsync(to, ct);
                return new Wire(socket, owner, ct);
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                socket.Dispose();
                throw new Violation($"connecting from {from} failed: {e.Message}");
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public async Task SendAsync(ReadOnlyMemory<byte> bytes)
        {
            if (bytes.IsEmpty) return;
            var silence = Stopwatch.GetElapsedTime(Interlocked.Read(ref lastSend));
            if (silence > longestSilence) longestSilence = silence;
            await stream.WriteAsync(bytes, Ct);
            Interlocked.Exchange(ref lastSend, Stopwatch.GetTimestamp());
        }

        /// <summary>Greeting, EHLO (STARTTLS offered), STARTTLS (220), and a TLS handshake that trusts the server's self-signed certificate.</summary>
        public async Task StartTlsAsync()
        {
            await ExpectAsync(220);
            await SendAsync("EHLO tls.test\r\n");
            var ehlo = await ExpectAsync(250);
            if (!ehlo.Text.Contains("STARTTLS", StringComparison.Ordinal)) throw new Violation($"STARTTLS not offered: {ehlo}");
            await SendAsync("STARTTLS\r\n");
            await ExpectAsync(220, "2.0.0");
            if (start != end) throw new Violation("the server sent more after its 220 to STARTTLS");
            var ssl = new SslStream(stream, leaveInnerStreamOpen: true);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "hostile.example.net",
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, Ct);
            stream = ssl;
        }

        public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

        /// <summary>Sends <paramref name="bytes"/> in 1 to <paramref name="maxPieces"/> writes of random sizes.</summary>
        public async Task SendInPiecesAsync(byte[] bytes, Random r, int maxPieces = 32)
        {
            int pieces = r.Next(1, maxPieces + 1), offset = 0;
            for (int i = 1; offset < bytes.Length; i++)
            {
                int n = i >= pieces ? bytes.Length - offset : r.Next(1, bytes.Length - offset + 1);
                await SendAsync(bytes.AsMemory(offset, n));
                offset += n;
            }
        }

        /// <summary>The next reply, or null when the server has closed the connection.</summary>
        public async Task<Reply?> ReplyAsync()
        {
            var text = new StringBuilder();
            while (true)
            {
                var line = await LineAsync();
                if (line is null)
                {
                    if (text.Length > 0) throw new Violation($"the connection closed in the middle of a reply: {text}");
                    return null;
                }
                if (line.Length < 3 || !char.IsAsciiDigit(line[0]) || !char.IsAsciiDigit(line[1]) || !char.IsAsciiDigit(line[2]) || (line.Length > 3 && line[3] is not (' ' or '-')))
                    throw new Violation($"not an SMTP reply line: '{line}'");
                text.Append(line).Append('\n');
                if (line.Length > 3 && line[3] == '-') continue;
                var reply = new Reply(int.Parse(line.AsSpan(0, 3), CultureInfo.InvariantCulture), text.ToString().TrimEnd('\n'));
                if (reply.Code == 250 && reply.Text.Contains("queued as", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref owner.queuedReplies);
                    throw new Violation($"an attacker's message was accepted: {reply}");
                }
                return reply;
            }
        }

        /// <summary>Reads the next reply and checks its code (and enhanced code); <paramref name="about"/> names the command for the message.</summary>
        public async Task<Reply> ExpectAsync(int code, string? enhanced = null, string? about = null)
        {
            var reply = await ReplyAsync();
            if (reply is null || reply.Code != code || (enhanced is not null && !reply.Text.Contains($"{code} {enhanced}", StringComparison.Ordinal)))
                throw new Violation($"expected {code} {enhanced}{(about is null ? "" : $" to '{Printable(about)}'")}, got {reply?.ToString() ?? "the connection closed"}",
                    timeoutAnswer: reply is null || (reply.Code == 421 && reply.Text.StartsWith("421 4.4.2", StringComparison.Ordinal)));
            return reply;
        }

        /// <summary>The server must close now, saying nothing more.</summary>
        public async Task ExpectEndAsync(bool tolerateReset = false)
        {
            var more = await RepliesToEndAsync(tolerateReset);
            if (more.Count > 0) throw new Violation($"expected the close, got {more[0]}");
        }

        /// <summary>
        /// After STARTTLS and a handshake that cannot succeed: the server closes, saying nothing in clear text (a TLS alert
        /// record, content type 21, is all it may send).
        /// </summary>
        public async Task ExpectTlsEndAsync()
        {
            try
            {
                while (true)
                {
                    if (end > start && buffer[start] != 0x15)
                        throw new Violation($"after STARTTLS and a failed handshake the server sent '{Printable(Encoding.Latin1.GetString(buffer, start, Math.Min(end - start, 80)))}'");
                    start = end = 0;
                    int n = await stream.ReadAsync(buffer, Ct);
                    if (n == 0) return;
                    end = n;
                }
            }
            catch (Exception e) when (IsReset(e))
            {
            }
        }

        private static bool IsReset(Exception e)
            => e is SocketException { SocketErrorCode: SocketError.ConnectionReset } || (e is IOException && e.InnerException is { } inner && IsReset(inner));

        /// <summary>Every reply until the server closes (a reset ends it too when <paramref name="tolerateReset"/>).</summary>
        public async Task<List<Reply>> RepliesToEndAsync(bool tolerateReset = false)
        {
            var replies = new List<Reply>();
            try
            {
                while (await ReplyAsync() is { } reply) replies.Add(reply);
            }
            catch (Exception e) when (tolerateReset && IsReset(e))
            {
            }
            return replies;
        }

        private async Task<string?> LineAsync()
        {
            while (true)
            {
                int lf = Array.IndexOf(buffer, (byte)'\n', start, end - start);
                if (lf >= 0)
                {
                    if (lf == start || buffer[lf - 1] != (byte)'\r') throw new Violation("a reply line ended with a bare LF");
                    var line = Encoding.Latin1.GetString(buffer, start, lf - 1 - start);
                    start = lf + 1;
                    return line;
                }
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }
                if (end == buffer.Length) throw new Violation("a reply line longer than 64 KiB");
                int n = await stream.ReadAsync(buffer.AsMemory(end), Ct);
                if (n == 0)
                {
                    if (end > start) throw new Violation($"the connection closed after a partial reply line: '{Encoding.Latin1.GetString(buffer, start, end - start)}'");
                    return null;
                }
                end += n;
            }
        }

        /// <summary>RST: close with SO_LINGER 0.</summary>
        public void Reset()
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }

        /// <summary>FIN both ways without reading anything more.</summary>
        public void Close()
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
                socket.Close();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }

        /// <summary>FIN: nothing more will be sent; replies can still be read.</summary>
        public void HalfClose()
        {
            try { socket.Shutdown(SocketShutdown.Send); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }

        public void Dispose()
        {
            try { stream.Dispose(); }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
            socket.Dispose();
        }

        private static string Printable(string s)
        {
            var b = new StringBuilder();
            foreach (char c in s.Length > 80 ? s[..80] + "…" : s)
                b.Append(c is >= ' ' and <= '~' or '…' ? c.ToString() : $"\\x{(int)c:X2}");
            return b.ToString();
        }
    }

    // ==== legitimate mail ==================================================================================================

    /// <summary>MailKit clients from their own address sending to <see cref="User"/> continuously, one connection per message.</summary>
    private sealed class LegitTraffic(Server server, IPAddress source)
    {
        public const int Before = 0, During = 1, After = 2;
        private readonly List<Thread> threads = [];
        private readonly ConcurrentBag<double>[] latencies = [new(), new(), new()];
        private readonly Stopwatch[] clocks = [new(), new(), new()];
        private readonly long[] counts = new long[3];
        private volatile bool stopping;
        private volatile int phase;
        private long sent;

        /// <summary>Accepted messages by Message-ID.</summary>
        public ConcurrentDictionary<string, byte> Accepted { get; } = new(StringComparer.Ordinal);

        public ConcurrentQueue<string> Failures { get; } = new();

        public long Sent => Interlocked.Read(ref sent);

        public long[] Counts => counts;

        public int Phase
        {
            get => phase;
            set
            {
                clocks[phase].Stop();
                phase = value;
                clocks[value].Start();
            }
        }

        public void Start()
        {
            clocks[Before].Start();
            for (int n = 0; n < LegitClients; n++)
            {
                int client = n;
                var thread = new Thread(() => Run(client)) { IsBackground = true, Name = $"legit-{client}" };
                threads.Add(thread);
                thread.Start();
            }
        }

        public void Stop()
        {
            stopping = true;
            foreach (var thread in threads)
                Assert.True(thread.Join(TimeSpan.FromSeconds(60)), $"{thread.Name} did not stop");
            clocks[phase].Stop();
        }

        private void Run(int client)
        {
            // Bounded by count too: far more than any run sends.
            for (int seq = 0; !stopping && seq < 1_000_000; seq++)
            {
                var token = Mail.NewToken($"legit{client}");
                int at = phase;
                var watch = Stopwatch.StartNew();
                Interlocked.Increment(ref sent);
                try
                {
                    using var smtp = Mail.Connect(server, source, TimeSpan.FromSeconds(30));
                    var reply = smtp.Send(Mail.Message(token, User));
                    smtp.Disconnect(quit: true);
                    if (!reply.Contains("queued as", StringComparison.Ordinal)) throw new InvalidOperationException($"unexpected reply '{reply}'");
                    Accepted[token + "@client.test"] = 0;
                    latencies[at].Add(watch.Elapsed.TotalMilliseconds);
                    Interlocked.Increment(ref counts[at]);
                }
                catch (Exception e)
                {
                    Failures.Enqueue($"{token} ({(at == Before ? "before" : at == During ? "during" : "after")} the attack, {watch.ElapsedMilliseconds} ms): {e.GetType().Name}: {e.Message}");
                    Thread.Sleep(100);
                }
            }
        }

        public string Describe(int at)
        {
            var sorted = latencies[at].OrderBy(x => x).ToList();
            double seconds = clocks[at].Elapsed.TotalSeconds;
            return string.Create(CultureInfo.InvariantCulture,
                $"{counts[at]} messages in {seconds:0.0} s ({counts[at] / Math.Max(seconds, 0.001):0.0}/s, {LegitClients} clients, a connection each); session latency p50 {Figures.Percentile(sorted, 50):0} ms, p99 {Figures.Percentile(sorted, 99):0} ms");
        }
    }

    // ==== memory ===========================================================================================================

    /// <summary>The relay's RSS sampled every 200 ms: the baseline before the attack, the maximum during it, and the level after.</summary>
    private sealed class MemoryWatch(int pid)
    {
        private readonly List<double> baseline = [];
        private volatile int stage; // 0 baseline, 1 attack, 2 after
        private double maxAttack;

        public double BaselineMiB { get; private set; }
        public double MaxAttackMiB => Volatile.Read(ref maxAttack);

        /// <summary>What "back near the baseline" means: within 100 MiB or half the baseline above it.</summary>
        public double SettleLimit => BaselineMiB + Math.Max(100, BaselineMiB / 2);

        public async Task RunAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                double rss = Figures.ResidentMiB(pid);
                if (rss > 0)
                {
                    if (stage == 0) lock (baseline) baseline.Add(rss);
                    else if (stage == 1 && rss > maxAttack) Volatile.Write(ref maxAttack, rss);
                }
                try { await Task.Delay(200, ct); }
                catch (OperationCanceledException) { break; }
            }
        }

        public void EndBaseline()
        {
            lock (baseline)
            {
                baseline.Sort();
                BaselineMiB = baseline.Count == 0 ? Figures.ResidentMiB(pid) : Figures.Percentile(baseline, 50);
            }
            maxAttack = BaselineMiB;
            stage = 1;
        }

        public void EndAttack() => stage = 2;

        /// <summary>Waits (bounded) for the RSS to come back under <see cref="SettleLimit"/>; returns the last sample.</summary>
        public double SettleAfter(TimeSpan within)
        {
            double rss = Figures.ResidentMiB(pid);
            Cluster.Eventually(() => (rss = Figures.ResidentMiB(pid)) <= SettleLimit, within, 250);
            return rss;
        }
    }

    // ==== relay.log ========================================================================================================

    /// <summary>
    /// Follows relay.log as the relay writes it (it rolls to relay.log.1 at 10 MB, so reading it only at the end could
    /// miss a line): counts the lines by level and keeps every ERROR line and any unhandled exception.
    /// </summary>
    private sealed class LogWatch(string dataDirectory)
    {
        private readonly string path = Path.Combine(dataDirectory, "relay.log");
        private readonly Dictionary<string, long> levels = [];
        private long position;

        public long Lines { get; private set; }
        public int Rolls { get; private set; }
        public List<string> ErrorLines { get; } = [];
        public string ByLevel => string.Join(", ", levels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key} {l.Value}"));

        public async Task RunAsync(CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                Poll();
                try { await Task.Delay(500, ct); }
                catch (OperationCanceledException) { break; }
            }
        }

        /// <summary>Reads what was appended since the last call (the rest of relay.log.1 first, if the log rolled meanwhile).</summary>
        public void Poll()
        {
            long length = File.Exists(path) ? new FileInfo(path).Length : 0;
            if (length < position)
            {
                Read(path + ".1", position);
                position = 0;
                Rolls++;
            }
            position = Read(path, position);
        }

        private long Read(string file, long from)
        {
            byte[] bytes;
            try
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (stream.Length <= from) return from;
                stream.Position = from;
                bytes = new byte[stream.Length - from];
                stream.ReadExactly(bytes);
            }
            catch (FileNotFoundException)
            {
                return from;
            }
            int complete = Array.LastIndexOf(bytes, (byte)'\n') + 1; // a line still being written is read next time
            foreach (var line in Encoding.UTF8.GetString(bytes, 0, complete).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                Lines++;
                // 2026-11-23T06:00:00.000Z LEVEL message
                var level = line.Length > 30 ? line.Substring(25, 5).Trim() : "?";
                levels[level] = levels.GetValueOrDefault(level) + 1;
                if (level == "ERROR" || line.Contains("Unhandled exception", StringComparison.OrdinalIgnoreCase)) ErrorLines.Add(line);
            }
            return from + complete;
        }
    }

    // ==== helpers ==========================================================================================================

    /// <summary>A self-signed certificate and key as PEM files in the server's folder, for STARTTLS.</summary>
    private static (string Certificate, string Key) WriteCertificate(Server server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={server.ServerName}", key, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        string certificatePath = Path.Combine(server.Directory, "tls.crt"), keyPath = Path.Combine(server.Directory, "tls.key");
        File.WriteAllText(certificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certificatePath, keyPath);
    }

}
