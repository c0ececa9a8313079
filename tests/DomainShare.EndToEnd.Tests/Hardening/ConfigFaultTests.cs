using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Configuration;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// Configuration faults (issue 7), through the bundled host as an administrator meets them: ten writer processes that
/// change one file at once, and a file that is cut short or broken by hand under a running relay. No update may be
/// lost; a broken file is refused with its file, line and field, is never overwritten, and the relay keeps serving on
/// the last good configuration until the file is repaired.
/// </summary>
public sealed class ConfigFaultTests(ITestOutputHelper output) : IDisposable
{
    private const string Area = "Configuration faults";
    private const string Dora = "dora@example.com";
    private static readonly Regex Located = new(@"^Invalid configuration '(?<file>[^']+)', line (?<line>\d+), field '(?<field>[^']+)': ", RegexOptions.CultureInvariant);
    private readonly Cluster cluster = new("config");

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
    }

    /// <summary>
    /// A writer, as an administrator's script: warm up (the module loaded, the reader compiled), say it is ready, wait for
    /// the go file, then pipe its peers into Add-DomainSharePeer, which updates the file once per peer.
    /// </summary>
    private const string WriterScript = """
        param([string]$ConfigPath, [int]$Writer, [int]$Count, [string]$Go)
        $ErrorActionPreference = 'Stop'
        Get-DomainShareConfig -ConfigPath $ConfigPath | Out-Null
        [IO.File]::WriteAllText("$Go.ready-$Writer", '')
        $wait = [Diagnostics.Stopwatch]::StartNew()
        while (-not [IO.File]::Exists($Go) -and $wait.Elapsed.TotalSeconds -lt 120) { [Threading.Thread]::Sleep(10) }
        "start $([DateTime]::UtcNow.Ticks)"
        try {
            1..$Count | ForEach-Object { "w$Writer-p$_.peers.test" } | Add-DomainSharePeer -MingerPort (5000 + $Writer) -Disabled -ConfigPath $ConfigPath
        } catch {
            "error $($_.FullyQualifiedErrorId): $($_.Exception.Message)"
            exit 1
        }
        "end $([DateTime]::UtcNow.Ticks)"
        """;

    [Fact]
    public void Ten_writer_processes_adding_peers_to_one_file_at_once_lose_no_update()
    {
        const int writers = 10;
        int perWriter = Figures.Size(10, 100);
        var bound = TimeSpan.FromSeconds(Figures.Size(180, 900));
        var s = cluster.Add("writers");
        cluster.Configure([s]);
        string script = Path.Combine(cluster.Root, "add-peers.ps1");
        File.WriteAllText(script, WriterScript);
        string go = Path.Combine(cluster.Root, "go");

        var runs = new ScriptRun?[writers];
        var failures = new ConcurrentQueue<string>();
        var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
        {
            try
            {
                runs[w] = ScriptProcess.Run(script, ["-ConfigPath", s.ConfigPath, "-Writer", $"{w}", "-Count", $"{perWriter}", "-Go", go], cluster.Root, bound);
            }
            catch (Exception e)
            {
                failures.Enqueue($"writer {w}: {e.Message}");
            }
        }) { IsBackground = true, Name = $"writer-{w}" }).ToList();
        var wall = Stopwatch.StartNew();
        threads.ForEach(t => t.Start());
        // All ten start their updates at once, whatever their host start-ups took on a busy machine.
        bool ready = Cluster.Eventually(() => Enumerable.Range(0, writers).All(w => File.Exists($"{go}.ready-{w}")), TimeSpan.FromSeconds(120), 20);
        File.WriteAllText(go, "");
        foreach (var t in threads)
            Assert.True(t.Join(bound + TimeSpan.FromSeconds(30)), $"{t.Name} did not finish");
        wall.Stop();
        Assert.True(failures.IsEmpty, string.Join("\n", failures));
        Assert.True(ready, "not every writer got ready within 120 s");
        foreach (var run in runs)
            Assert.True(run!.ExitCode == 0 && run.Stderr.Trim().Length == 0, run.ToString());

        static long Ticks(ScriptRun run, string mark)
            => long.Parse(run.Lines.Single(l => l.StartsWith(mark + " ", StringComparison.Ordinal))[(mark.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        var window = TimeSpan.FromTicks(runs.Max(r => Ticks(r!, "end")) - runs.Min(r => Ticks(r!, "start")));

        var peers = new ConfigurationStore(s.ConfigPath).Load().Peers;
        var expected = (from w in Enumerable.Range(0, writers) from p in Enumerable.Range(1, perWriter) select ($"w{w}-p{p}.peers.test", 5000 + w)).ToList();
        var missing = expected.Where(e => !peers.Any(p => p.Name == e.Item1 && p.MingerPort == e.Item2)).ToList();
        var leftovers = Directory.GetFiles(s.Directory).Select(Path.GetFileName).Where(n => n!.EndsWith(".tmp", StringComparison.Ordinal)).ToList();
        int total = writers * perWriter;

        Figures.Record(output, Area, $"concurrent writers: {writers} processes x {perWriter} Add-DomainSharePeer, updates", $"{total}", $"{peers.Count} peers in the file");
        Figures.Record(output, Area, "concurrent writers: updates lost", "0", $"{missing.Count}");
        Figures.Record(output, Area, "concurrent writers: updates/s (all ten at once; each a locked read-modify-fsync-rename)", "-",
            $"{total / window.TotalSeconds:0} /s ({total} in {window.TotalSeconds:0.0} s; {wall.Elapsed.TotalSeconds:0.0} s with host start-ups; load average {LoadAverage()})");

        Assert.True(missing.Count == 0, $"{missing.Count} updates lost, such as {string.Join(", ", missing.Take(5))}");
        Assert.Equal(total, peers.Count);
        Assert.Empty(leftovers);
    }

    [Fact]
    public void A_cut_short_or_hand_broken_file_is_refused_with_file_line_and_field_never_overwritten_and_the_relay_serves_on_the_last_good_one()
    {
        var watch = Stopwatch.StartNew();
        var s = cluster.Add("broken");
        var run = cluster.SetUpAndStart([s], configure: [], afterStart:
        [
            s.NewAccountScript(Dora),
            // Peers (disabled: never asked) so that the file has the section a cut would silently lose.
            $"Add-DomainSharePeer {Loopback.NextAddress()} -Disabled {s.Cfg}",
            $"Add-DomainSharePeer {Loopback.NextAddress()} -Disabled {s.Cfg}",
        ]);
        var maildir = Assert.Single(run.OfKind<MailAccount>("Maildir")).Maildir;
        int pid = s.State!.ProcessId;
        s.AwaitReload();
        byte[] good = File.ReadAllBytes(s.ConfigPath);
        string goodText = Encoding.UTF8.GetString(good);
        long goodSize = new ConfigurationStore(s.ConfigPath).Load().Smtp.MaxMessageBytes;

        var variants = Variants(goodText, s);
        output.WriteLine($"{variants.Count} broken variants of {s.ConfigPath} ({good.Length} bytes).");

        // Mail flows all along, from another thread: the relay must take every message with its last good settings.
        var sent = new ConcurrentQueue<(string Token, string Outcome)>();
        using var stop = new CancellationTokenSource();
        var sender = new Thread(() =>
        {
            for (int i = 0; i < 2000 && !stop.IsCancellationRequested; i++)
            {
                var token = Mail.NewToken("cfgfault");
                try
                {
                    using var client = Mail.Connect(s);
                    long size = client.MaxSize;
                    client.Send(Mail.Message(token, Dora));
                    client.Disconnect(quit: true);
                    sent.Enqueue((token, size == goodSize ? "250" : $"250 but SIZE {size}, not the last good {goodSize}"));
                }
                catch (Exception e)
                {
                    sent.Enqueue((token, $"{e.GetType().Name}: {e.Message}"));
                }
                stop.Token.WaitHandle.WaitOne(150);
            }
        }) { IsBackground = true, Name = "mail-sender" };
        sender.Start();

        var results = new List<VariantResult>();
        try
        {
            // Ten variants per host process (each waits for the relay to notice its file), one process per ten.
            foreach (var chunk in variants.Chunk(10))
                results.AddRange(RunVariants(s, chunk));
        }
        finally
        {
            stop.Cancel();
            Assert.True(sender.Join(TimeSpan.FromSeconds(30)), "the mail sender did not stop");
        }

        // Repaired (and changed: a new size limit), the file is picked up again by the same relay.
        const int repairedSize = 3_000_000;
        File.WriteAllText(s.ConfigPath, goodText.Replace($"maxMessageBytes: {goodSize}", $"maxMessageBytes: {repairedSize}"));
        s.AwaitReload();
        bool errorCleared = Cluster.Eventually(() => s.Status().ConfigurationError is null, TimeSpan.FromSeconds(10));
        long sizeAfterRepair;
        using (var client = Mail.Connect(s))
        {
            sizeAfterRepair = client.MaxSize;
            client.Disconnect(quit: true);
        }
        var afterRepair = cluster.Invoke($"Set-DomainShareConfig -MaxHops 20 {s.Cfg}", $"Get-DomainShareConfig {s.Cfg}");

        var mail = sent.ToList();
        foreach (var (token, _) in mail.Where(m => m.Outcome.StartsWith("250", StringComparison.Ordinal)))
            Mail.AwaitDelivery(maildir, token, TimeSpan.FromSeconds(20));
        bool samePid = Cluster.IsAlive(pid, s.ConfigPath) && s.Status().ProcessId == pid;

        foreach (var r in results) output.WriteLine(r.ToString());
        int truncated = variants.Count(v => v.Kind == "cut"), broken = variants.Count - truncated;
        int located = results.Count(r => r.GetLocated && r.SetLocated);
        int overwritten = results.Count(r => !r.Unchanged);
        int shown = results.Count(r => r.RelayShowsError);
        int served = mail.Count(m => m.Outcome == "250");
        Figures.Record(output, Area, "broken files tried (cut short at line ends and inside lines; hand-broken)", "-", $"{variants.Count} ({truncated} cut, {broken} hand-broken)");
        Figures.Record(output, Area, "refused by Get- and Set-DomainShareConfig naming file, line and field", $"{variants.Count}", $"{located}");
        Figures.Record(output, Area, "broken files overwritten by the failing Set-DomainShareConfig", "0", $"{overwritten}");
        Figures.Record(output, Area, "relay shows each file's error (Get-DomainShareRelay), same process", $"{variants.Count}", $"{shown}");
        Figures.Record(output, Area, "relay still serving on the last good configuration: messages taken (and delivered) while broken", $"{mail.Count}", $"{served}");
        Figures.Record(output, Area, "repaired file picked up by the running relay", "yes", errorCleared && sizeAfterRepair == repairedSize ? "yes" : $"error cleared {errorCleared}, SIZE {sizeAfterRepair}");
        output.WriteLine($"Took {watch.Elapsed.TotalSeconds:0.0} s.");

        var wrong = results.Where(r => !r.Passed).ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.True(mail.Count >= variants.Count, $"only {mail.Count} messages were sent while {variants.Count} broken files were tried");
        Assert.True(served == mail.Count, string.Join("\n", mail.Where(m => m.Outcome != "250").Take(10)));
        Assert.True(samePid, "the relay did not keep running");
        Assert.True(errorCleared, "the relay still shows an error after the repair");
        Assert.Equal(repairedSize, sizeAfterRepair);
        afterRepair.AssertSuccess();
    }

    /// <summary>The 1-minute load average (what else the shared machine was doing), or "?".</summary>
    private static string LoadAverage()
    {
        try { return File.ReadAllText("/proc/loadavg").Split(' ')[0]; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "?"; }
    }

    private sealed record Variant(string Kind, string Name, byte[] Bytes, string? Field);

    private sealed record VariantResult(Variant Variant, ShellError? GetError, ShellError? SetError, bool Unchanged, Relay? Relay, int Pid, IReadOnlyList<ShellError> OtherErrors)
    {
        private Match? GetMatch => GetError is null ? null : Located.Match(GetError.Message);
        public bool GetLocated => IsLocated(GetError);
        public bool SetLocated => IsLocated(SetError) && SetError!.Message == GetError?.Message;
        public bool RelayShowsError => Relay is { Running: true } relay && relay.ProcessId == Pid && relay.ConfigurationError == GetError?.Message;
        public bool Passed => GetLocated && SetLocated && Unchanged && RelayShowsError && OtherErrors.Count == 0;

        private bool IsLocated(ShellError? e)
            => e is not null && e.Id.StartsWith("InvalidConfiguration,", StringComparison.Ordinal) && Located.Match(e.Message) is { Success: true } m
               && int.Parse(m.Groups["line"].Value) >= 1 && (Variant.Field is null || m.Groups["field"].Value == Variant.Field);

        public override string ToString()
            => $"{(Passed ? "ok  " : "FAIL")} {Variant.Kind,-4} {Variant.Name,-34} line {GetMatch?.Groups["line"].Value ?? "?"}, field '{GetMatch?.Groups["field"].Value ?? "?"}'"
               + $"{(Unchanged ? "" : ", OVERWRITTEN")}{(RelayShowsError ? "" : $", relay shows: {Relay?.ConfigurationError ?? "(no relay object)"}")}"
               + $" | Get: {GetError?.Message ?? "(no error)"} | Set: {(SetError is null ? "(no error)" : SetError.Message == GetError?.Message ? "same" : SetError.Message)}"
               + string.Concat(OtherErrors.Select(e => $" | unexpected: {e}"));
    }

    /// <summary>The good file cut short at several points (at line ends, where the rest is valid YAML, and inside lines), and broken by hand.</summary>
    private static List<Variant> Variants(string good, Server s)
    {
        var list = new List<Variant>();
        var bytes = Encoding.UTF8.GetBytes(good);
        var lineEnds = Enumerable.Range(0, bytes.Length).Where(i => bytes[i] == (byte)'\n').Select(i => i + 1).ToArray();
        int points = Figures.Size(3, 20);
        for (int k = 1; k <= points; k++)
        {
            int at = bytes.Length * k / (points + 1);
            int lineEnd = lineEnds.Last(e => e <= Math.Max(at, lineEnds[0]));
            list.Add(new Variant("cut", $"at a line end, byte {lineEnd}", bytes[..lineEnd], "(document)"));
            if (bytes[at - 1] != (byte)'\n')
                list.Add(new Variant("cut", $"inside a line, byte {at}", bytes[..at], "(document)"));
        }
        // All of it but the last line: every setting, domain and peer is there, only the end is missing.
        list.Add(new Variant("cut", "all but its last line", bytes[..lineEnds[^2]], "(document)"));

        string smtpEndpoint = $"endpoint: {s.Address}:{s.SmtpPort}";
        Assert.Contains(smtpEndpoint, good);
        Variant Edit(string name, string from, string to, string? field)
        {
            Assert.Contains(from, good);
            return new Variant("hand", name, Encoding.UTF8.GetBytes(good.Replace(from, to)), field);
        }
        list.Add(Edit("tab indentation", "  maxHops: 30", "\tmaxHops: 30", "(document)"));
        list.Add(Edit("unknown key", "  maxHops: 30", "  maxHops: 30\n  colour: blue", "smtp.colour"));
        list.Add(Edit("bad value type", "  maxMessageBytes: ", "  maxMessageBytes: big # was ", "smtp.maxMessageBytes"));
        list.Add(Edit("duplicate key", "  maxHops: 30", "  maxHops: 30\n  maxHops: 31", "smtp.maxHops"));
        list.Add(Edit("invalid endpoint", smtpEndpoint, "endpoint: localhost:25", "smtp.endpoint"));
        var garbage = new byte[1024];
        new Random(7).NextBytes(garbage);
        list.Add(new Variant("hand", "binary garbage", garbage, "(document)"));
        list.Add(new Variant("hand", "empty file", [], "(document)"));
        return list;
    }

    /// <summary>
    /// In one host process, for each variant: write it, Get-DomainShareConfig, Set-DomainShareConfig (both must fail),
    /// the file's bytes after the failed write, then Get-DomainShareRelay until the running relay reports the same error
    /// (it re-reads the file every second; bounded at 10 s).
    /// </summary>
    private List<VariantResult> RunVariants(Server s, IReadOnlyList<Variant> variants)
    {
        var commands = new List<string>();
        foreach (var (v, i) in variants.Select((v, i) => (v, i)))
        {
            commands.Add($"'variant {i}'");
            commands.Add($"[IO.File]::WriteAllBytes('{s.ConfigPath}', [Convert]::FromBase64String('{Convert.ToBase64String(v.Bytes)}'))");
            commands.Add($"Get-DomainShareConfig {s.Cfg}");
            commands.Add($"Set-DomainShareConfig -MaxHops 20 {s.Cfg}");
            commands.Add($"'bytes ' + [Convert]::ToBase64String([IO.File]::ReadAllBytes('{s.ConfigPath}'))");
            commands.Add($$"""
                $want = $null
                try { Get-DomainShareConfig {{s.Cfg}} -ErrorAction Stop | Out-Null } catch { $want = $_.Exception.Message }
                $watch = [Diagnostics.Stopwatch]::StartNew()
                do { $relay = Get-DomainShareRelay {{s.Cfg}}; if ($relay.ConfigurationError -eq $want) { break }; [Threading.Thread]::Sleep(100) } while ($watch.Elapsed.TotalSeconds -lt 10)
                $relay
                """);
        }
        var run = cluster.Invoke([.. commands]);
        Assert.True(run.Stderr.Trim().Length == 0, run.ToString());

        // The emitted lines in order, split at the variant markers.
        var groups = new List<List<(bool Error, string Json)>>();
        foreach (var line in run.Stdout.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            bool error = line.StartsWith("##ERR ", StringComparison.Ordinal);
            if (!error && !line.StartsWith("##OUT ", StringComparison.Ordinal)) continue;
            string json = line[6..];
            if (!error && json.StartsWith("\"variant ", StringComparison.Ordinal)) groups.Add([]);
            else groups[^1].Add((error, json));
        }
        Assert.True(groups.Count == variants.Count, run.ToString());
        var results = new List<VariantResult>();
        for (int i = 0; i < variants.Count; i++)
        {
            var errors = groups[i].Where(g => g.Error).Select(g => JsonSerializer.Deserialize<string[]>(g.Json)!).Select(a => new ShellError(a[0], a[1], a[2], a[3])).ToList();
            var objects = groups[i].Where(g => !g.Error).Select(g => JsonDocument.Parse(g.Json).RootElement.Clone()).ToList();
            var after = objects.FirstOrDefault(o => o.ValueKind == JsonValueKind.String && o.GetString()!.StartsWith("bytes ", StringComparison.Ordinal));
            bool unchanged = after.ValueKind == JsonValueKind.String && Convert.FromBase64String(after.GetString()!["bytes ".Length..]).AsSpan().SequenceEqual(variants[i].Bytes);
            var relay = objects.Where(o => o.ValueKind == JsonValueKind.Object).Select(o => o.Deserialize<Relay>(DomainShareShell.Json)).LastOrDefault();
            results.Add(new VariantResult(variants[i], errors.ElementAtOrDefault(0), errors.ElementAtOrDefault(1), unchanged, relay, s.State?.ProcessId ?? -1, errors.Skip(2).ToList()));
        }
        return results;
    }
}
