using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Queue;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// Disk faults against a real relay process (issue 7): a disk that fills up while the relay receives (452 4.3.1, never
/// 250, nothing half-written kept or delivered, mail flows again once there is room) and while it delivers to a
/// Maildir (the message stays queued and arrives later), on a real small tmpfs where the machine allows mounting one;
/// and corrupt queue files (quarantined with a log line each, no crash loop, good mail still delivered). Where tmpfs
/// cannot be mounted the tests say so in their output: the proof is then the injection test of the engine,
/// DomainShare.Engine.Tests.Smtp.SmtpSpoolFaultTests, which fails the spool's writes, fsyncs and renames in-process.
/// </summary>
public sealed class DiskFaultTests(ITestOutputHelper output) : IDisposable
{
    private const string Area = "Disk faults";
    private const string Dora = "dora@example.com";
    private static readonly TimeSpan Delivery = TimeSpan.FromSeconds(20);
    private readonly Cluster cluster = new("disk");

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
    }

    /// <summary>One server with Dora's account, quick retries, started; returns Dora's Maildir and the relay's process id.</summary>
    private (Server Server, string Maildir, int Pid) StartWithDora(Server s)
    {
        var run = cluster.SetUpAndStart([s],
            configure: [$"Set-DomainShareConfig -QueueRetryInterval 1s -QueueMaxRetryInterval 2s {s.Cfg}"],
            afterStart: [s.NewAccountScript(Dora)]);
        var maildir = Assert.Single(run.OfKind<MailAccount>("Maildir")).Maildir;
        return (s, maildir, s.State!.ProcessId);
    }

    private Tmpfs? MountOrExplain(string folder, string size)
    {
        var fs = Tmpfs.TryMount(folder, size, out var whyNot);
        if (fs is null)
        {
            output.WriteLine($"NO TMPFS HERE ({whyNot}): this test cannot fill a real disk on this machine. The proof of the " +
                             "same behaviour is the injection test DomainShare.Engine.Tests.Smtp.SmtpSpoolFaultTests.");
            Figures.Record(output, Area, "tmpfs available", "yes (else injection is the proof)", $"no: {whyNot}");
        }
        return fs;
    }

    [Fact]
    public void A_disk_that_fills_up_while_receiving_gets_452_never_250_keeps_nothing_half_written_and_takes_mail_again_once_there_is_room()
    {
        var watch = Stopwatch.StartNew();
        var s = cluster.Add("full");
        // The whole data directory (queue, Maildirs, account table, relay.log) on a 2 MB tmpfs.
        using var tmpfs = MountOrExplain(s.DataDirectory, "2m");
        if (tmpfs is null) return;
        try
        {
            var (_, maildir, pid) = StartWithDora(s);
            var before = Mail.NewToken("before");
            Mail.Send(s, Mail.Message(before, Dora));
            Mail.AwaitDelivery(maildir, before, Delivery);

            // Close to full: 48 KB left, and every message below is 256 KB.
            string filler = tmpfs.Fill(leave: 48 * 1024);
            long free = tmpfs.Free;
            output.WriteLine($"tmpfs {tmpfs.Folder}: {free} bytes free after the filler.");

            int tries = Figures.Size(6, 30), refused452 = 0, accepted250 = 0, atMail = 0, atData = 0;
            var other = new List<string>();
            var tokens = new List<string>();
            for (int i = 0; i < tries; i++)
            {
                var token = Mail.NewToken("nospace");
                tokens.Add(token);
                var message = Mail.Message(token, new[] { Dora }, bodyBytes: 256 * 1024);
                var (stage, reply) = (i % 3) switch
                {
                    // MailKit announces SIZE=: refused at MAIL FROM, before the content is sent.
                    0 => MailKitReply(s, message),
                    // A client that does not announce the size: read to the final dot, refused there.
                    1 => RawSmtp(s, message.ToString(), size: null),
                    // A client whose SIZE= is a lie: passes MAIL FROM, refused at the final dot.
                    _ => RawSmtp(s, message.ToString(), size: 1000),
                };
                output.WriteLine($"try {i + 1} ({(i % 3 == 0 ? "MailKit, SIZE=" : i % 3 == 1 ? "raw, no SIZE" : "raw, SIZE=1000")}): at {stage}: {reply}");
                if (reply.StartsWith("452 4.3.1", StringComparison.Ordinal))
                {
                    refused452++;
                    if (stage == "MAIL FROM") atMail++;
                    else if (stage == "end of DATA") atData++;
                }
                else if (reply.StartsWith("250", StringComparison.Ordinal)) accepted250++;
                else other.Add(reply);
            }

            // Nothing half-written anywhere: not in the queue (committed or draft), not in the Maildir (new/ or tmp/).
            var partial = QueueFiles(s).Concat(Files(Path.Combine(maildir, "tmp")))
                .Concat(Files(Path.Combine(maildir, "new")).Where(f => !File.ReadAllText(f).Contains(before, StringComparison.Ordinal)))
                .ToList();
            bool alive = Cluster.IsAlive(pid, s.ConfigPath) && s.Status().ProcessId == pid;
            long sessionFailures = s.Counters()["SmtpSessionFailures"];

            // Room again: the filler goes, and mail (both kinds of client) is taken and delivered.
            File.Delete(filler);
            var afterMailKit = Mail.NewToken("room");
            var afterRaw = Mail.NewToken("roomraw");
            Mail.Send(s, Mail.Message(afterMailKit, new[] { Dora }, bodyBytes: 256 * 1024));
            string rawReply = RawSmtp(s, Mail.Message(afterRaw, new[] { Dora }, bodyBytes: 256 * 1024).ToString(), size: null).Reply;
            Mail.AwaitDelivery(maildir, afterMailKit, Delivery);
            Mail.AwaitDelivery(maildir, afterRaw, Delivery);
            var refusedDelivered = tokens.Where(t => Mail.Delivered(maildir, t).Count > 0).ToList();

            Figures.Record(output, Area, "disk full while receiving: messages tried (256 KB, 48 KB free on a 2 MB tmpfs)", "-", $"{tries}");
            Figures.Record(output, Area, "disk full while receiving: answered 452 4.3.1", $"{tries}", $"{refused452} ({atMail} at MAIL FROM with SIZE=, {atData} at the end of DATA)");
            Figures.Record(output, Area, "disk full while receiving: answered 250", "0", $"{accepted250}");
            Figures.Record(output, Area, "disk full while receiving: partial files in queue or Maildir", "0", $"{partial.Count}");
            Figures.Record(output, Area, "disk full while receiving: refused messages delivered anyway", "0", $"{refusedDelivered.Count}");
            Figures.Record(output, Area, "disk full while receiving: relay still the same process, no session failure", "yes", alive && sessionFailures == 0 ? "yes" : $"alive={alive} failures={sessionFailures}");
            Figures.Record(output, Area, "disk full while receiving: mail taken and delivered after space was freed", "2 of 2", rawReply.StartsWith("250", StringComparison.Ordinal) ? "2 of 2" : $"raw client got '{rawReply}'");
            output.WriteLine($"Took {watch.Elapsed.TotalSeconds:0.0} s.");

            Assert.True(refused452 == tries, $"{refused452} of {tries} tries got 452 4.3.1; other answers: {string.Join(" | ", other)}");
            // MailKit announces the size and is refused before it sends the content; the others after it.
            Assert.Equal((tries + 2) / 3, atMail);
            Assert.Equal(tries - atMail, atData);
            Assert.Equal(0, accepted250);
            Assert.True(partial.Count == 0, $"half-written files left: {string.Join(", ", partial)}");
            Assert.Empty(refusedDelivered);
            Assert.True(alive, "the relay did not survive the full disk");
            Assert.Equal(0, sessionFailures);
            Assert.StartsWith("250", rawReply);
        }
        finally
        {
            cluster.KillRelays(); // nothing may hold the tmpfs when it is unmounted
        }
    }

    [Fact]
    public void A_Maildir_disk_that_is_full_at_delivery_keeps_the_message_queued_and_it_arrives_once_there_is_room()
    {
        var watch = Stopwatch.StartNew();
        var s = cluster.Add("mailfull");
        // The queue on the test disk, the Maildirs (<data>/mail) on a 1 MB tmpfs of their own.
        using var tmpfs = MountOrExplain(Path.Combine(s.DataDirectory, "mail"), "1m");
        if (tmpfs is null) return;
        try
        {
            var (_, maildir, pid) = StartWithDora(s);
            Assert.StartsWith(tmpfs.Folder, maildir);
            string filler = tmpfs.Fill(leave: 0);
            output.WriteLine($"tmpfs {tmpfs.Folder}: {tmpfs.Free} bytes free after the filler.");

            int messages = Figures.Size(3, 20);
            var tokens = new List<string>();
            for (int i = 0; i < messages; i++)
            {
                var token = Mail.NewToken("mailfull");
                tokens.Add(token);
                Assert.StartsWith("2.0.0 OK queued as", Mail.Send(s, Mail.Message(token, new[] { Dora }, bodyBytes: 16 * 1024)));
            }
            // Every message meets the full disk at least twice (two delivery attempts), and stays queued.
            long attemptsBefore = s.Counters()["DeliveryAttempts"];
            bool attempted = Cluster.Eventually(() => s.Counters()["DeliveryAttempts"] >= attemptsBefore + 2 * messages, TimeSpan.FromSeconds(20), 200);
            var queued = cluster.Invoke($"Get-DomainShareQueue {s.Cfg}").AssertSuccess().All<QueueEntry>().ToList();
            foreach (var q in queued) output.WriteLine($"queued: {q}");
            var partial = Files(Path.Combine(maildir, "new")).Concat(Files(Path.Combine(maildir, "tmp"))).ToList();
            int deliveredWhileFull = s.Counters().TryGetValue("DeliveredRecipients", out var d) ? (int)d : -1;

            File.Delete(filler);
            var arrivals = Stopwatch.StartNew();
            foreach (var token in tokens) Mail.AwaitDelivery(maildir, token, Delivery);
            var arrivedAfter = arrivals.Elapsed;
            bool drained = Cluster.Eventually(() => s.QueueCount() == 0, TimeSpan.FromSeconds(10));
            var copies = tokens.Sum(t => Mail.Delivered(maildir, t).Count);
            bool alive = Cluster.IsAlive(pid, s.ConfigPath);

            Figures.Record(output, Area, "Maildir disk full at delivery: messages accepted (250) while full", $"{messages}", $"{messages}");
            Figures.Record(output, Area, "Maildir disk full at delivery: still queued while full, with the disk's error", $"{messages}",
                $"{queued.Count(q => q.LastError?.Contains("No space left", StringComparison.OrdinalIgnoreCase) == true)}");
            Figures.Record(output, Area, "Maildir disk full at delivery: partial files in new/ or tmp/", "0", $"{partial.Count}");
            Figures.Record(output, Area, "Maildir disk full at delivery: delivered after space was freed (copies)", $"{messages}", $"{copies} in {arrivedAfter.TotalSeconds:0.0} s");
            output.WriteLine($"Took {watch.Elapsed.TotalSeconds:0.0} s.");

            Assert.True(attempted, "the relay did not try to deliver while the disk was full");
            Assert.Equal(messages, queued.Count);
            Assert.All(queued, q => Assert.Contains("No space left", q.LastError ?? "", StringComparison.OrdinalIgnoreCase));
            Assert.True(partial.Count == 0, $"partial files in the Maildir: {string.Join(", ", partial)}");
            Assert.Equal(0, deliveredWhileFull);
            Assert.True(drained, "the queue did not drain after space was freed");
            Assert.Equal(messages, copies);
            Assert.True(alive, "the relay did not survive the full Maildir disk");
        }
        finally
        {
            cluster.KillRelays();
        }
    }

    [Fact]
    public void Corrupt_queue_files_are_quarantined_with_a_log_line_each_and_the_relay_keeps_running_and_delivering()
    {
        var watch = Stopwatch.StartNew();
        // Set up with the relay stopped (New-DomainShareAccount needs no relay when there are no peers to ask).
        var s = cluster.Add("corrupt");
        var setUp = cluster.Invoke(s.InitializeScript(), $"Set-DomainShareConfig -QueueRetryInterval 1s -QueueMaxRetryInterval 2s {s.Cfg}", s.NewAccountScript(Dora));
        var maildir = Assert.Single(setUp.AssertSuccess().OfKind<MailAccount>("Maildir")).Maildir;
        string queueDir = Path.Combine(s.DataDirectory, MessageQueue.FolderName);

        // Good mail queued while the relay is stopped, and a template envelope for the corrupt ones.
        int good = Figures.Size(2, 10);
        var goodTokens = new List<string>();
        string templateId;
        using (var queue = MessageQueue.Open(s.DataDirectory))
        {
            templateId = "";
            for (int i = 0; i < good; i++)
            {
                var token = Mail.NewToken("goodqueued");
                goodTokens.Add(token);
                templateId = Enqueue(queue, token);
            }
        }
        var template = JsonNode.Parse(EmbeddedEnvelope(File.ReadAllBytes(Path.Combine(queueDir, templateId + MessageQueue.MessageExtension))))!;

        // The corrupt files, each with a message of its own that must never be delivered: message files (content,
        // envelope, footer) cut or changed, and the two-file layout of earlier versions (<id>.json beside <id>.eml).
        var corrupt = new List<(string Kind, string Id, string[] Quarantined)>();
        var random = new Random(7);
        (string Id, byte[] Eml, byte[] Json) NewCorrupt()
        {
            string id = QueueFormat.NewId(DateTimeOffset.UtcNow.AddMinutes(-corrupt.Count - 1));
            var eml = Encoding.ASCII.GetBytes($"Subject: Test {Mail.NewToken("corrupt")}\r\n\r\n{new string('c', 4000)}\r\n");
            return (id, eml, Envelope(template, id, eml.Length));
        }
        void Place(string kind, Func<byte[], string, byte[]?> envelope, Func<byte[], byte[]?> content, bool expectQuarantine = true)
        {
            var (id, eml, json) = NewCorrupt();
            var envelopeBytes = envelope(json, id);
            var contentBytes = content(eml);
            var files = new List<string>();
            if (contentBytes is not null) Write(id + MessageQueue.ContentExtension, contentBytes);
            if (envelopeBytes is not null) Write(id + MessageQueue.EnvelopeExtension, envelopeBytes);
            corrupt.Add((kind, id, expectQuarantine ? files.ToArray() : []));
            void Write(string name, byte[] bytes)
            {
                File.WriteAllBytes(Path.Combine(queueDir, name), bytes);
                files.Add(name);
            }
        }
        void PlaceMessage(string kind, Func<byte[], byte[]> message, byte[]? rewrittenEnvelope = null)
        {
            var (id, eml, json) = NewCorrupt();
            var names = new List<string> { id + MessageQueue.MessageExtension };
            File.WriteAllBytes(Path.Combine(queueDir, names[0]), message([.. eml, .. json, .. Footer(eml.Length, json.Length)]));
            if (rewrittenEnvelope is not null)
            {
                names.Add(id + MessageQueue.EnvelopeExtension);
                File.WriteAllBytes(Path.Combine(queueDir, names[1]), rewrittenEnvelope);
            }
            corrupt.Add((kind, id, names.ToArray()));
        }
        PlaceMessage("message cut in its content", whole => whole[..2000]);
        PlaceMessage("message without its footer", whole => whole[..^32]);
        PlaceMessage("message with bytes missing", whole => [.. whole[..100], .. whole[200..]]);
        PlaceMessage("message with a byte appended", whole => [.. whole, (byte)'\n']);
        PlaceMessage("zero-length message", _ => []);
        PlaceMessage("message with binary garbage", _ => RandomBytes(random, 700));
        PlaceMessage("garbage rewritten envelope", whole => whole, "{ \"id\": oops ]] not json"u8.ToArray());
        Place("truncated envelope", (json, _) => json[..(json.Length / 2)], eml => eml);
        Place("garbage JSON", (_, _) => "{ \"id\": oops ]] not json"u8.ToArray(), eml => eml);
        Place("binary garbage envelope", (_, _) => RandomBytes(random, 300), eml => eml);
        Place("zero-length envelope", (_, _) => [], eml => eml);
        Place("envelope naming another id", (json, id) => Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(json).Replace(id, templateId)), eml => eml);
        Place("envelope without content", (json, _) => json, _ => null);
        Place("zero-length content", (json, _) => json, _ => []);
        Place("truncated content", (json, _) => json, eml => eml[..(eml.Length / 3)]);
        Place("content without envelope", (_, _) => null, eml => eml, expectQuarantine: false);

        var relay = Assert.Single(cluster.Start(s));
        int pid = relay.ProcessId!.Value;
        // No crash loop: the same process is still there a few seconds on, and answers.
        Thread.Sleep(3000);
        bool samePid = Cluster.IsAlive(pid, s.ConfigPath) && s.Status().ProcessId == pid;

        foreach (var token in goodTokens) Mail.AwaitDelivery(maildir, token, Delivery);
        var fresh = Mail.NewToken("fresh");
        Mail.Send(s, Mail.Message(fresh, Dora));
        Mail.AwaitDelivery(maildir, fresh, Delivery);

        // A corrupt envelope that appears while the relay runs: its next scan of the folder (Resume-DomainShareQueue asks
        // for one now) quarantines it.
        Place("garbage JSON while running", (_, _) => "][ garbage"u8.ToArray(), eml => eml);
        cluster.Invoke($"Resume-DomainShareQueue {s.Cfg}").AssertSuccess();
        var runtime = corrupt[^1];
        bool runtimeQuarantined = Cluster.Eventually(() => runtime.Quarantined.All(f => File.Exists(Path.Combine(queueDir, "quarantine", f))), TimeSpan.FromSeconds(10));
        var afterRuntime = Mail.NewToken("afterruntime");
        Mail.Send(s, Mail.Message(afterRuntime, Dora));
        Mail.AwaitDelivery(maildir, afterRuntime, Delivery);
        bool stillSamePid = Cluster.IsAlive(pid, s.ConfigPath) && s.Status().ProcessId == pid;

        var log = File.ReadAllLines(Path.Combine(s.DataDirectory, "relay.log"));
        var quarantine = Path.Combine(queueDir, "quarantine");
        var report = new List<string>();
        int handled = 0, logged = 0;
        foreach (var (kind, id, quarantined) in corrupt)
        {
            bool inQueue = new[] { ".msg", ".json", ".eml" }.Any(extension => File.Exists(Path.Combine(queueDir, id + extension)));
            bool moved = quarantined.All(f => File.Exists(Path.Combine(quarantine, f)));
            var lines = log.Where(l => l.Contains(id, StringComparison.Ordinal) && (l.Contains("quarantine", StringComparison.Ordinal) || l.Contains("no envelope", StringComparison.Ordinal))).ToList();
            if (!inQueue && moved) handled++;
            if (lines.Count == 1) logged++;
            report.Add($"{kind,-28} {id}: {(inQueue ? "STILL IN QUEUE" : quarantined.Length > 0 ? "quarantined" : "deleted")}, {lines.Count} log line(s): {lines.FirstOrDefault()}");
        }
        foreach (var line in report) output.WriteLine(line);
        int corruptDelivered = Mail.Delivered(maildir).Count(t => t.Contains("Test corrupt-", StringComparison.Ordinal));

        Figures.Record(output, Area, "corrupt queue files placed (16 kinds at start-up, 1 while running)", "-", $"{corrupt.Count}");
        Figures.Record(output, Area, "corrupt queue files quarantined (content without envelope: deleted, never acknowledged)", $"{corrupt.Count}", $"{handled}");
        Figures.Record(output, Area, "corrupt queue files with exactly one log line naming them", $"{corrupt.Count}", $"{logged}");
        Figures.Record(output, Area, "corrupt queue files: messages delivered from them", "0", $"{corruptDelivered}");
        Figures.Record(output, Area, "corrupt queue files: relay restarts (same process after start, scan and new mail)", "0", samePid && stillSamePid ? "0" : "the process changed or died");
        Figures.Record(output, Area, "corrupt queue files: good queued mail and new mail delivered", $"{good + 2}", $"{good + 2}");
        output.WriteLine($"Took {watch.Elapsed.TotalSeconds:0.0} s.");

        Assert.True(samePid, "the relay did not keep running after it quarantined the corrupt files");
        Assert.True(runtimeQuarantined, "the corrupt envelope that appeared while running was not quarantined");
        Assert.True(stillSamePid, "the relay did not keep running after the scan at run time");
        Assert.True(handled == corrupt.Count, string.Join("\n", report));
        Assert.True(logged == corrupt.Count, string.Join("\n", report));
        Assert.Equal(0, corruptDelivered);
        Assert.Equal(0, s.QueueCount());
    }

    /// <summary>Queues a message for Dora straight into the stopped relay's queue; returns its id.</summary>
    private static string Enqueue(MessageQueue queue, string token)
    {
        var content = Encoding.ASCII.GetBytes($"From: {Mail.Sender}\r\nTo: {Dora}\r\nSubject: Test {token}\r\nMessage-ID: <{token}@client.test>\r\n\r\nBody of {token}.\r\n");
        return queue.EnqueueAsync(Mail.Sender, [new QueuedRecipient { Address = Dora, Route = QueueRoute.Local }], content, null, CancellationToken.None)
            .AsTask().GetAwaiter().GetResult();
    }

    /// <summary>
    /// The footer of a queue message file, written here from the format's description (docs in QueueRecord), not with the
    /// engine's code: <c>\nDSQUEUE1 &lt;content length, 12 digits&gt; &lt;envelope length, 8 digits&gt;\n</c>.
    /// </summary>
    private static byte[] Footer(long content, long envelope)
        => Encoding.ASCII.GetBytes(FormattableString.Invariant($"\nDSQUEUE1 {content:D12} {envelope:D8}\n"));

    /// <summary>The envelope in a queue message file, read by its footer.</summary>
    private static string EmbeddedEnvelope(byte[] file)
    {
        var footer = Encoding.ASCII.GetString(file[^32..]);
        Assert.StartsWith("\nDSQUEUE1 ", footer);
        long content = long.Parse(footer[10..22], System.Globalization.CultureInfo.InvariantCulture);
        int envelope = int.Parse(footer[23..31], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(file.Length, content + envelope + 32);
        return Encoding.UTF8.GetString(file, (int)content, envelope);
    }

    /// <summary>The template envelope made into a well-formed one for <paramref name="id"/> and content of <paramref name="size"/> bytes.</summary>
    private static byte[] Envelope(JsonNode template, string id, long size)
    {
        var copy = template.DeepClone();
        copy["id"] = id;
        copy["size"] = size;
        return Encoding.UTF8.GetBytes(copy.ToJsonString());
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        var bytes = new byte[n];
        random.NextBytes(bytes);
        return bytes;
    }

    private static IEnumerable<string> Files(string folder) => Directory.Exists(folder) ? Directory.GetFiles(folder) : [];

    /// <summary>
    /// Files of a message in the queue: committed (.msg, .json, or an earlier version's .eml) or drafts in tmp/ (not the
    /// spare files of delivered messages, kept there for reuse).
    /// </summary>
    private static IEnumerable<string> QueueFiles(Server s)
    {
        string queue = Path.Combine(s.DataDirectory, MessageQueue.FolderName);
        return Files(queue).Where(f => f.EndsWith(".msg", StringComparison.Ordinal) || f.EndsWith(".eml", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal))
            .Concat(Files(Path.Combine(queue, "tmp")).Where(f => !f.EndsWith(".spare", StringComparison.Ordinal)));
    }

    /// <summary>MailKit's answer: the 250 line, or the refusal's code and text; and the command that got it.</summary>
    private static (string Stage, string Reply) MailKitReply(Server s, MimeKit.MimeMessage message)
    {
        try
        {
            return ("end of DATA", "250 " + Mail.Send(s, message));
        }
        catch (MailKit.Net.Smtp.SmtpCommandException e)
        {
            var stage = e.ErrorCode switch
            {
                MailKit.Net.Smtp.SmtpErrorCode.SenderNotAccepted => "MAIL FROM",
                MailKit.Net.Smtp.SmtpErrorCode.RecipientNotAccepted => "RCPT TO",
                _ => "end of DATA",
            };
            return (stage, $"{(int)e.StatusCode} {e.Message}");
        }
    }

    /// <summary>
    /// EHLO, MAIL FROM (with SIZE=<paramref name="size"/> when given), RCPT TO Dora, DATA with <paramref name="content"/>;
    /// returns the first refusal or the reply to the final dot, and the command that got it. Bounded by socket timeouts.
    /// </summary>
    private static (string Stage, string Reply) RawSmtp(Server server, string content, long? size)
    {
        using var smtp = RawSmtpClient.Connect(server, timeout: TimeSpan.FromSeconds(15));
        Assert.StartsWith("220", smtp.ReadReply().Last);
        Assert.StartsWith("250", smtp.Command("EHLO raw.test").Last);
        var reply = smtp.Command($"MAIL FROM:<{Mail.Sender}>" + (size is null ? "" : $" SIZE={size}")).Last;
        if (!reply.StartsWith("250", StringComparison.Ordinal)) return ("MAIL FROM", reply);
        reply = smtp.Command($"RCPT TO:<{Dora}>").Last;
        if (!reply.StartsWith("250", StringComparison.Ordinal)) return ("RCPT TO", reply);
        reply = smtp.Command("DATA").Last;
        if (!reply.StartsWith("354", StringComparison.Ordinal)) return ("DATA", reply);
        var final = smtp.Data(content).Last;
        smtp.Command("QUIT");
        return ("end of DATA", final);
    }
}
