using System.Collections.Concurrent;
using System.Diagnostics;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Smtp;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// Two servers A and B sharing example.com, each the other's peer (SMTP and Minger ports both given, with secrets),
/// relays running; an import server I that has A as its peer and no relay of its own (creating accounts needs none);
/// a server N whose relay is not running, with peers A (up) and Down (configured, its relay never started). One
/// started cluster serves the import, nightly-check and move-account scripts. A holds taken@example.com, N holds
/// nina@example.com.
/// </summary>
public sealed class ExampleScriptCluster : IDisposable
{
    public readonly Cluster Cluster = new("examples");
    public readonly Server A;
    public readonly Server B;
    public readonly Server I;
    public readonly Server N;
    public readonly Server Down;

    /// <summary>An account on A, so that the import on I meets an address that already exists on a peer.</summary>
    public const string Taken = "taken@example.com";

    /// <summary>An account on N, so that N's nightly check has an address to ask its peers about.</summary>
    public const string Nina = "nina@example.com";

    public ExampleScriptCluster()
    {
        try
        {
            A = Cluster.Add("a", "secret-of-a-0123456789");
            B = Cluster.Add("b", "secret-of-b-0123456789");
            I = Cluster.Add("i");
            N = Cluster.Add("n");
            Down = Cluster.Add("down");
            Cluster.Configure(Cluster.Servers, PeerScript(A, B), PeerScript(B, A), PeerScript(I, A), PeerScript(N, A), PeerScript(N, Down));
            A.AddAccount(Taken);
            N.AddAccount(Nina);
            Cluster.Start(A, B);
        }
        catch
        {
            Cluster.Dispose();
            throw;
        }
    }

    /// <summary>Adds <paramref name="peer"/> to <paramref name="server"/> as ip:smtp-port, so that forwarded mail reaches its relay.</summary>
    public static string PeerScript(Server server, Server peer)
        => $"Add-DomainSharePeer {peer.Address}:{peer.SmtpPort} -MingerPort {peer.MingerPort}"
           + (peer.Secret is null ? "" : $" -Secret '{peer.Secret}'") + $" {server.Cfg}";

    public void Dispose() => Cluster.Dispose();
}

/// <summary>
/// The scripts of examples/ run as an administrator runs them: <c>domainshare -File examples/&lt;script&gt;.ps1 ...</c>, a
/// real host process, judged by its exit code, its output and the files it writes; the state it leaves is read back
/// through other host processes (Get-DomainShareAccount) and the Maildirs.
/// </summary>
public sealed class ExampleScriptTests(ExampleScriptCluster f, ITestOutputHelper output) : IClassFixture<ExampleScriptCluster>
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(90);

    private ScriptRun Script(string name, params string[] arguments)
    {
        var run = ScriptProcess.Run(ScriptProcess.Example(name), arguments, f.Cluster.Root, ScriptTimeout);
        output.WriteLine(run.ToString());
        return run;
    }

    private IReadOnlyList<AccountRow> Accounts(Server server)
        => [.. f.Cluster.Invoke($"Get-DomainShareAccount {server.Cfg}").AssertSuccess().All<AccountRow>()];

    // ------------------------------------------------------------------ import-accounts.ps1

    [Fact]
    public void Import_creates_the_good_rows_reports_each_refused_one_with_its_error_and_exits_1()
    {
        string csv = Path.Combine(f.I.Directory, "users.csv");
        string report = Path.Combine(f.I.Directory, "import-report.txt");
        File.WriteAllText(csv, """
            Address,DisplayName,Quota
            ann@example.com,Ann Smith,500MB
            bob@example.com,"Smith, Bob",2GB
            not an address,Broken,1GB
            ann@example.com,Ann Again,
            zed@example.org,Zed,
            cid@example.com,Cid,
            taken@example.com,Taken Elsewhere,
            kim@example.com,Kim,lots
            dee@example.com,"Dee ""the"" Dev",1048576

            """.ReplaceLineEndings("\n"));

        var run = Script("import-accounts.ps1", "-Path", csv, "-ConfigPath", f.I.ConfigPath, "-ReportPath", report);

        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.True(File.Exists(report), $"No report was written.\n{run}");
        var lines = File.ReadAllLines(report);
        Assert.Equal(["created  ann@example.com", "created  bob@example.com", "created  cid@example.com", "created  dee@example.com"],
            lines.Where(l => l.StartsWith("created", StringComparison.Ordinal)).ToArray());
        var refused = lines.Where(l => l.StartsWith("refused", StringComparison.Ordinal)).ToArray();
        Assert.Equal(5, refused.Length);
        Assert.StartsWith("refused  not an address  InvalidAddress: ", refused[0]);
        Assert.StartsWith("refused  ann@example.com  AccountAlreadyExists: ", refused[1]);
        Assert.StartsWith("refused  zed@example.org  DomainNotHosted: ", refused[2]);
        Assert.StartsWith($"refused  {ExampleScriptCluster.Taken}  AccountExistsOnPeer: ", refused[3]);
        Assert.Contains($"peer '{f.A.PeerName}'", refused[3]);
        // A quota that is not a size is refused, not dropped (piped, it would silently leave the account without one).
        Assert.StartsWith("refused  kim@example.com  InvalidQuota: 'lots' is not a quota", refused[4]);
        Assert.Equal($"4 created, 5 refused, from 9 row(s) of '{csv}'.", lines[^1]);
        Assert.Equal(lines.Length, lines.Distinct().Count());
        // The report is printed too, for a log.
        foreach (var line in lines) Assert.Contains(line, run.Stdout);

        var both = f.Cluster.Invoke($"Get-DomainShareAccount {f.I.Cfg}", $"Get-DomainShareAccount {ExampleScriptCluster.Taken} {f.A.Cfg}")
            .AssertSuccess().All<AccountRow>().ToList();
        // The address that exists on the peer stayed there only.
        Assert.Single(both, a => a.Address == ExampleScriptCluster.Taken && a.ConfigPath == f.A.ConfigPath);
        var accounts = both.Where(a => a.ConfigPath == f.I.ConfigPath).ToDictionary(a => a.Address);
        Assert.Equal(["ann@example.com", "bob@example.com", "cid@example.com", "dee@example.com"],
            accounts.Keys.Where(k => k is not ("eve@example.com" or "fay@example.com")).Order().ToArray());
        Assert.Equal("Ann Smith", accounts["ann@example.com"].DisplayName);
        Assert.Equal(500L * 1024 * 1024, accounts["ann@example.com"].Quota);
        Assert.Equal("Smith, Bob", accounts["bob@example.com"].DisplayName);
        Assert.Equal(2L * 1024 * 1024 * 1024, accounts["bob@example.com"].Quota);
        Assert.Equal("Cid", accounts["cid@example.com"].DisplayName);
        Assert.Null(accounts["cid@example.com"].Quota); // an empty Quota cell: no quota, not 0
        Assert.Equal("Dee \"the\" Dev", accounts["dee@example.com"].DisplayName);
        Assert.Equal(1048576L, accounts["dee@example.com"].Quota);
        Assert.All(accounts.Values, a => Assert.True(a.Enabled));
        Assert.All(accounts.Values, a => Assert.True(Directory.Exists(Path.Combine(a.Maildir, "new")), $"No Maildir for {a.Address} at {a.Maildir}."));
    }

    [Fact]
    public void Import_of_a_file_whose_rows_are_all_good_exits_0()
    {
        string csv = Path.Combine(f.I.Directory, "good.csv");
        string report = Path.Combine(f.I.Directory, "good-report.txt");
        // Written on Windows: CRLF line ends and every field quoted.
        File.WriteAllText(csv, "\"Address\",\"DisplayName\",\"Quota\"\r\n\"eve@example.com\",\"Eve, the second\",\"\"\r\n\"fay@example.com\",\"Fay\",\"10MB\"\r\n");

        var run = Script("import-accounts.ps1", "-Path", csv, "-ConfigPath", f.I.ConfigPath, "-ReportPath", report);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(["created  eve@example.com", "created  fay@example.com", $"2 created, 0 refused, from 2 row(s) of '{csv}'."],
            File.ReadAllLines(report));
        var accounts = Accounts(f.I).ToDictionary(a => a.Address);
        Assert.Equal("Eve, the second", accounts["eve@example.com"].DisplayName);
        Assert.Null(accounts["eve@example.com"].Quota);
        Assert.Equal(10L * 1024 * 1024, accounts["fay@example.com"].Quota);
    }

    [Fact]
    public void Import_of_a_missing_file_exits_2_and_writes_no_report()
    {
        string csv = Path.Combine(f.I.Directory, "no-such-file.csv");
        string report = Path.Combine(f.I.Directory, "missing-report.txt");

        var run = Script("import-accounts.ps1", "-Path", csv, "-ConfigPath", f.I.ConfigPath, "-ReportPath", report);

        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains($"Cannot read '{csv}'", run.Stderr);
        Assert.False(File.Exists(report));
    }

    // ------------------------------------------------------------------ nightly-check.ps1

    [Fact]
    public void Nightly_check_reports_OK_then_a_duplicate_account_as_a_conflict()
    {
        // 1. All is well.
        string report = Path.Combine(f.A.Directory, "nightly-ok.txt");
        var run = Script("nightly-check.ps1", "-ConfigPath", f.A.ConfigPath, "-ReportPath", report);
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = File.ReadAllLines(report);
        Assert.Equal("STATUS: OK", lines[^1]);
        Assert.StartsWith($"DomainShare nightly check of {f.A.ServerName} at ", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("relay     running, process ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith($"peer      {f.B.PeerName} ok (", StringComparison.Ordinal));
        Assert.Equal(4, lines.Length); // the heading, the relay, the one peer, the status: no finding, no queue line
        Assert.Contains("STATUS: OK", run.Stdout);

        // 2. dup@example.com is on both servers, as a restore from a backup or a split network leaves it: a row in each
        //    server's account table. A's relay and B's answer from those tables at once.
        const string dup = "dup@example.com";
        f.A.AddAccount(dup);
        f.B.AddAccount(dup);
        try
        {
            report = Path.Combine(f.A.Directory, "nightly-dup.txt");
            run = Script("nightly-check.ps1", "-ConfigPath", f.A.ConfigPath, "-ReportPath", report);
            Assert.True(run.ExitCode == 1, run.ToString());
            lines = File.ReadAllLines(report);
            Assert.Contains($"conflict  {dup} also exists on {f.B.PeerName}", lines);
            Assert.Equal("STATUS: 1 PROBLEM(S)", lines[^1]);
            Assert.Contains("STATUS: 1 PROBLEM(S)", run.Stdout);
        }
        finally
        {
            foreach (var server in new[] { f.A, f.B })
            {
                using var store = AccountStore.Open(server.DataDirectory);
                store.Remove(dup);
            }
        }
    }

    [Fact]
    public void Nightly_check_of_a_server_whose_relay_and_one_peer_are_down_reports_each_problem_and_exits_1()
    {
        string report = Path.Combine(f.N.Directory, "nightly-down.txt");

        var run = Script("nightly-check.ps1", "-ConfigPath", f.N.ConfigPath, "-ReportPath", report);

        Assert.True(run.ExitCode == 1, run.ToString());
        var lines = File.ReadAllLines(report);
        Assert.Contains("relay     NOT RUNNING", lines);
        Assert.Contains(lines, l => l.StartsWith($"peer      {f.A.PeerName} ok (", StringComparison.Ordinal));
        var failed = Assert.Single(lines, l => l.StartsWith($"peer      {f.Down.PeerName} FAILED: ", StringComparison.Ordinal));
        Assert.Contains("did not answer", failed);
        // N cannot tell whether the down peer also has nina; A said it does not, so A is no finding.
        Assert.Single(lines, l => l.StartsWith($"unchecked {ExampleScriptCluster.Nina} on {f.Down.PeerName}: ", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains($" on {f.A.PeerName}", StringComparison.Ordinal));
        Assert.Equal("STATUS: 3 PROBLEM(S)", lines[^1]);
    }

    [Fact]
    public void Nightly_check_that_cannot_read_its_configuration_reports_each_failed_check_and_never_OK()
    {
        string missing = Path.Combine(f.Cluster.Root, "no-such-config.yaml");
        string report = Path.Combine(f.Cluster.Root, "nightly-no-config.txt");

        var run = Script("nightly-check.ps1", "-ConfigPath", missing, "-ReportPath", report);

        Assert.True(run.ExitCode == 1, run.ToString());
        var lines = File.ReadAllLines(report);
        var errors = lines.Where(l => l.StartsWith("error     ", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Count >= 4, string.Join("\n", lines));
        Assert.All(errors, e => Assert.StartsWith("error     ConfigurationNotFound: ", e));
        Assert.StartsWith("STATUS: ", lines[^1]);
        Assert.NotEqual("STATUS: OK", lines[^1]);
    }

    // ------------------------------------------------------------------ move-account.ps1

    [Fact]
    public async Task Move_account_takes_carl_from_A_to_B_with_his_mail_and_no_sender_ever_gets_a_5xx()
    {
        const string carl = "carl@example.com";
        // No quota: the script passes the old account's (null) quota on, which must mean "none" on the new server too.
        var created = f.Cluster.Invoke($"New-DomainShareAccount {carl} -DisplayName 'Carl' {f.A.Cfg}").AssertSuccess().Single<AccountRow>();
        var before = f.Cluster.Invoke(string.Join("\n", Enumerable.Range(1, 3).Select(n =>
                $"Send-DomainShareTestMessage {carl} -Server {f.A.Address}:{f.A.SmtpPort} -From 'sender@example.org' -Subject 'before the move {n}' -NoTls {f.A.Cfg}")))
            .AssertSuccess().All<TestMessageRow>().ToList();
        Assert.Equal(3, before.Count);
        Assert.All(before, m => Assert.True(m.Accepted, m.Reply));
        Assert.True(Cluster.Eventually(() => MessageIdsIn(created.Maildir).IsSupersetOf(before.Select(m => m.MessageId)), TimeSpan.FromSeconds(20)),
            $"The messages sent before the move did not reach A's Maildir {created.Maildir}.");

        // Senders keep writing to carl through both servers for the whole move (and a little after it).
        using var stop = new CancellationTokenSource();
        var replies = new ConcurrentQueue<LoopReply>();
        var loop = Task.Run(() => SendLoopAsync(carl, replies, stop.Token));
        ScriptRun run;
        try
        {
            await Task.Delay(300); // a few messages go out before the move starts
            run = await Task.Run(() => Script("move-account.ps1", "-Address", carl, "-FromConfig", f.A.ConfigPath, "-ToConfig", f.B.ConfigPath));
            await Task.Delay(700);
        }
        finally
        {
            stop.Cancel();
        }
        await loop.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"Moved {carl}.", run.Stdout);

        var all = replies.ToList();
        output.WriteLine($"{all.Count} messages sent during the move: " + string.Join(", ",
            all.GroupBy(r => (r.Via, r.Code)).Select(g => $"{g.Count()}x {g.Key.Code?.ToString() ?? "error"} via {g.Key.Via}")));
        Assert.True(all.Count(r => r.Via == "A") >= 5 && all.Count(r => r.Via == "B") >= 5, $"Too few messages were sent during the move: {all.Count}.");
        var bad = all.Where(r => r.Code is null or >= 500).ToList();
        Assert.True(bad.Count == 0, "Replies of 5xx (or no reply) during the move:\n" + string.Join("\n", bad));

        // carl exists on B only.
        var lookups = f.Cluster.Invoke($"Get-DomainShareAccount {carl} {f.A.Cfg}", $"Get-DomainShareAccount {carl} {f.B.Cfg}");
        Assert.Equal(["AccountNotFound,DomainShare.Commands.GetDomainShareAccountCommand"], lookups.ErrorIds.ToArray());
        var moved = lookups.Single<AccountRow>();
        Assert.Equal(carl, moved.Address);
        Assert.Equal("Carl", moved.DisplayName);
        Assert.Null(moved.Quota);
        Assert.True(moved.Enabled);
        Assert.StartsWith(f.B.DataDirectory, moved.Maildir);

        // His mail is in B's Maildir: what came before the move, and everything accepted during it.
        var accepted = all.Where(r => r.Code == 250).Select(r => r.MessageId).ToList();
        var expected = before.Select(m => m.MessageId).Concat(accepted).ToHashSet();
        Assert.True(Cluster.Eventually(() => MessageIdsIn(moved.Maildir).IsSupersetOf(expected), TimeSpan.FromSeconds(30), 250),
            $"Missing in B's Maildir: {string.Join(", ", expected.Except(MessageIdsIn(moved.Maildir)))}; " +
            $"in A's old Maildir: {string.Join(", ", expected.Except(MessageIdsIn(moved.Maildir)).Intersect(MessageIdsIn(created.Maildir)))}");

        // A message for carl sent through A now: A no longer has him, asks B live, and forwards it there.
        var after = f.Cluster.Invoke($"Send-DomainShareTestMessage {carl} -Server {f.A.Address}:{f.A.SmtpPort} -From 'sender@example.org' -Subject 'after the move' -NoTls {f.A.Cfg}")
            .AssertSuccess().Single<TestMessageRow>();
        Assert.True(after.Accepted, after.Reply);
        Assert.True(Cluster.Eventually(() => MessageIdsIn(moved.Maildir).Contains(after.MessageId), TimeSpan.FromSeconds(20), 100),
            $"The message sent through A after the move did not reach B's Maildir {moved.Maildir}.");
        Assert.DoesNotContain(after.MessageId, MessageIdsIn(created.Maildir));
    }

    /// <summary>
    /// Sends to <paramref name="to"/> through A and B in turn until cancelled (at most 60 s or 2,000 messages), each
    /// message with a Message-ID of its own, recording every reply.
    /// </summary>
    private async Task SendLoopAsync(string to, ConcurrentQueue<LoopReply> replies, CancellationToken stop)
    {
        var watch = Stopwatch.StartNew();
        for (int n = 0; !stop.IsCancellationRequested && n < 2000 && watch.Elapsed < TimeSpan.FromSeconds(60); n++)
        {
            var (via, server) = n % 2 == 0 ? ("A", f.A) : ("B", f.B);
            try
            {
                var r = await TestMessageSender.SendAsync(server.Address.ToString(), server.SmtpPort, "loop@example.org", to, $"during the move {n}",
                    useStartTls: false, TimeSpan.FromSeconds(10), CancellationToken.None);
                replies.Enqueue(new LoopReply(n, via, r.StatusCode, r.Reply, r.MessageId, watch.Elapsed));
            }
            catch (DomainShareException e)
            {
                replies.Enqueue(new LoopReply(n, via, null, e.Message, "", watch.Elapsed));
            }
            await Task.Delay(20, CancellationToken.None);
        }
    }

    /// <summary>The Message-IDs of the messages in a Maildir (new/ and cur/), without angle brackets.</summary>
    private static HashSet<string> MessageIdsIn(string maildir)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var folder in new[] { "new", "cur" })
        {
            string dir = Path.Combine(maildir, folder);
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.GetFiles(dir))
            {
                try
                {
                    using var reader = new StreamReader(file);
                    for (string? line = reader.ReadLine(); !string.IsNullOrEmpty(line); line = reader.ReadLine())
                        if (line.StartsWith("Message-ID:", StringComparison.OrdinalIgnoreCase))
                            ids.Add(line["Message-ID:".Length..].Trim().Trim('<', '>'));
                }
                catch (IOException)
                {
                    // renamed into cur/ meanwhile: seen on the next poll
                }
            }
        }
        return ids;
    }

    private sealed record LoopReply(int N, string Via, int? Code, string Reply, string MessageId, TimeSpan At)
    {
        public override string ToString() => $"#{N} via {Via} at {At.TotalMilliseconds:0} ms: {Code?.ToString() ?? "no reply"} {Reply}";
    }

    /// <summary>DomainShare.DomainShareAccount as it comes back over JSON.</summary>
    private sealed record AccountRow(string Address, string? DisplayName, bool Enabled, long? Quota, string Domain, string Maildir, string ConfigPath);

    /// <summary>DomainShare.DomainShareTestMessageResult as it comes back over JSON.</summary>
    private sealed record TestMessageRow(string To, bool Accepted, int? StatusCode, string Reply, string MessageId);

    // ------------------------------------------------------------------ demo.ps1 and quickstart.ps1

    /// <summary>
    /// The two self-contained scripts: each builds its own servers on fixed loopback endpoints (the demo 127.42.0.2-4
    /// with ports 2525/4069, the quickstart 127.0.0.1 with 40691/40692) in a temporary folder, and must leave nothing
    /// behind. TMPDIR points the script's temporary folder into one this test owns, so that every relay it started is
    /// found by that folder in its command line. Their own class: they run beside the cluster tests, one after the other.
    /// </summary>
    public sealed class SelfContained(ITestOutputHelper output)
    {
        /// <summary>
        /// The endpoints of these scripts are fixed, so two test runs on one machine (two worktrees, a developer and CI)
        /// must not run them at once: an exclusive lock on a file, machine-wide, taken for the whole script.
        /// </summary>
        private static FileStream FixedEndpointsLock()
        {
            string path = Path.Combine(Path.GetTempPath(), "domainshare-e2e-fixed-endpoints.lock");
            var watch = Stopwatch.StartNew();
            while (true)
            {
                try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
                catch (IOException) when (watch.Elapsed < TimeSpan.FromMinutes(3)) { Thread.Sleep(250); }
            }
        }

        private ScriptRun RunInOwnTemp(string name, string okLine, out string temp)
        {
            using var exclusive = FixedEndpointsLock();
            temp = Directory.CreateTempSubdirectory($"domainshare-e2e-{Path.GetFileNameWithoutExtension(name)}-").FullName;
            var tmp = temp;
            try
            {
                var run = ScriptProcess.Run(ScriptProcess.Example(name), [], temp, TimeSpan.FromSeconds(150),
                    new Dictionary<string, string?> { ["TMPDIR"] = temp + "/" });
                output.WriteLine(run.ToString());
                Assert.True(run.ExitCode == 0, run.ToString());
                Assert.Contains(run.Lines, l => l.StartsWith(okLine, StringComparison.Ordinal));
                Assert.DoesNotContain("FAILED", run.Stdout);
                Assert.True(run.Stderr.Trim().Length == 0, run.ToString());
                // Nothing left running: no relay whose command line names the script's folder.
                Assert.True(Cluster.Eventually(() => ScriptProcess.ProcessesWith("Start-DomainShareRelay", tmp).Count == 0, TimeSpan.FromSeconds(5)),
                    "Relays left running:\n" + string.Join("\n", ScriptProcess.ProcessesWith("Start-DomainShareRelay", tmp).Select(p => $"{p.Pid}: {p.CommandLine}")));
                // ... and nothing left on disk: the script removed its folder.
                Assert.Empty(Directory.GetFileSystemEntries(temp));
                return run;
            }
            finally
            {
                foreach (var (pid, _) in ScriptProcess.ProcessesWith("Start-DomainShareRelay", tmp))
                {
                    try
                    {
                        using var process = Process.GetProcessById(pid);
                        process.Kill(entireProcessTree: true);
                        process.WaitForExit(5000);
                    }
                    catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
                }
                try { Directory.Delete(temp, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }

        [Fact]
        public void Demo_runs_three_servers_end_to_end_prints_DEMO_OK_and_leaves_no_relay_running()
        {
            var run = RunInOwnTemp("demo.ps1", "DEMO OK", out var temp);
            Assert.Contains($"== Three servers share example.com, in {temp}/domainshare-demo-", run.Stdout);
            Assert.Contains("AccountExistsOnPeer: 'carl@example.com' already exists on peer '127.42.0.3'", run.Stdout);
            Assert.Contains("16 of 18 accepted", run.Stdout);
            Assert.Contains("550 5.1.1", run.Stdout);
            Assert.Contains("451 4.4.3", run.Stdout);
            Assert.Contains("carl@example.com now has 4 messages in Lyon", run.Stdout);
        }

        [Fact]
        public void Quickstart_runs_to_QUICKSTART_OK_and_leaves_no_relay_running()
        {
            var run = RunInOwnTemp("quickstart.ps1", "QUICKSTART OK", out _);
            Assert.Contains("refused: PeerAlreadyExists", run.Stdout);
            Assert.Contains("TemporaryFailure", run.Stdout);
        }
    }
}
