using System.Net;
using System.Text;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Smtp;
using DomainShare.Engine.Tests.Routing;

// Not "DomainShare.Engine.Tests.Queue": a namespace of that name would shadow DomainShare.Engine.Queue.
namespace DomainShare.Engine.Tests.QueueTests;

public sealed class MessageQueueTests : IDisposable
{
    private readonly TempFolder folder = new();
    private readonly ListLog log = new();
    private static readonly SmtpSessionInfo Session =
        new("s1", new IPEndPoint(IPAddress.Parse("192.0.2.7"), 40000), new IPEndPoint(IPAddress.Loopback, 25), "client.test", false);

    public void Dispose() => folder.Dispose();

    private string QueueDir => Path.Combine(folder.Path, MessageQueue.FolderName);
    private string[] QueueFiles() => Directory.GetFiles(QueueDir).Select(Path.GetFileName).Where(n => n != ".owner.lock").Order(StringComparer.Ordinal).ToArray()!;
    private string[] TempFiles() => Directory.GetFiles(Path.Combine(QueueDir, "tmp"));

    private static SmtpEnvelope Envelope(string? from = "ann@example.com", params RecipientRoute[] to)
        => new(from, to.Length > 0 ? to : [new RecipientRoute("bob@example.com", RouteKind.Peer, "mx2.example.net"), new RecipientRoute("cat@example.com", RouteKind.Local)],
               Session, DateTimeOffset.UtcNow);

    private static async Task<string> CommitAsync(MessageQueue queue, byte[] content, SmtpEnvelope? envelope = null)
    {
        await using var draft = queue.Begin(envelope ?? Envelope());
        await draft.WriteAsync(content, CancellationToken.None);
        return await draft.CommitAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_committed_message_is_on_disk_listed_and_survives_reopening()
    {
        var content = Encoding.UTF8.GetBytes("Received: from x\r\nSubject: hi\r\n\r\nbody\r\n");
        string id;
        using (var queue = MessageQueue.Open(folder.Path, log: log))
        {
            id = await CommitAsync(queue, content);
            Assert.True(QueueFormat.IsValidId(id));
            var listed = Assert.Single(queue.List());
            Assert.Equal(id, listed.Id);
            Assert.Equal("ann@example.com", listed.ReversePath);
            Assert.Equal(content.Length, listed.Size);
            Assert.Equal("192.0.2.7", listed.Source?.Address);
            // One file: the content as received, the envelope, a footer that says where each ends.
            Assert.Equal([id + ".msg"], QueueFiles());
            Assert.Empty(TempFiles());
            var file = File.ReadAllBytes(Path.Combine(QueueDir, id + ".msg"));
            Assert.Equal(content, file[..content.Length]);
            Assert.Equal(QueueFormat.Serialize(listed), file[content.Length..^QueueRecord.FooterBytes]);
            Assert.Equal($"\nDSQUEUE1 {content.Length:D12} {file.Length - content.Length - 32:D8}\n", Encoding.ASCII.GetString(file[^32..]));
        }
        using (var reopened = MessageQueue.Open(folder.Path, log: log))
        {
            var message = Assert.Single(reopened.List());
            Assert.Equal(id, message.Id);
            Assert.Collection(message.Recipients,
                r => { Assert.Equal("bob@example.com", r.Address); Assert.Equal(QueueRoute.Peer, r.Route); Assert.Equal("mx2.example.net", r.Peer); Assert.Equal(RecipientState.Pending, r.State); },
                r => { Assert.Equal("cat@example.com", r.Address); Assert.Equal(QueueRoute.Local, r.Route); });
            Assert.Equal(new QueueRecovery(1, 0, 0, 0), reopened.Recovery);
            await using var stream = reopened.OpenContent(id);
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
        }
    }

    [Fact]
    public async Task The_null_reverse_path_is_kept_as_null()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        string id = await CommitAsync(queue, "Subject: x\r\n\r\n."u8.ToArray(), Envelope(from: ""));
        Assert.True(queue.Get(id)!.IsBounce);
        Assert.Null(queue.Get(id)!.ReversePath);
    }

    [Fact]
    public async Task A_draft_disposed_without_commit_leaves_nothing()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        await using (var draft = queue.Begin(Envelope()))
            await draft.WriteAsync("Subject: never\r\n\r\n"u8.ToArray(), CancellationToken.None);
        Assert.Empty(queue.List());
        Assert.Empty(QueueFiles());
        Assert.Empty(TempFiles());
    }

    [Fact]
    public async Task Ids_are_unique_and_sort_by_arrival_even_for_concurrent_commits()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        var ids = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => CommitAsync(queue, Encoding.ASCII.GetBytes($"Subject: {i}\r\n\r\n{i}\r\n")))));
        Assert.Equal(40, ids.Distinct().Count());
        Assert.Equal(40, queue.List().Count);
        Assert.True(queue.FolderSyncs >= 1 && queue.FolderSyncs <= 40, $"{queue.FolderSyncs} folder syncs for 40 commits");
        string later = await CommitAsync(queue, "Subject: later\r\n\r\n"u8.ToArray());
        Assert.True(ids.All(id => string.CompareOrdinal(id[..17], later[..17]) <= 0));
        var listed = queue.List().Select(m => m.Id).ToArray();
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
    }

    [Fact]
    public async Task Opening_as_owner_deletes_drafts_and_content_without_envelope_and_keeps_committed_mail()
    {
        string id;
        using (var queue = MessageQueue.Open(folder.Path, log: log))
            id = await CommitAsync(queue, "Subject: kept\r\n\r\n"u8.ToArray());
        // What a crash leaves: a draft being received, an envelope rewrite not yet renamed, and (from an earlier
        // version's two-file layout) a commit that moved its content but never its envelope.
        File.WriteAllText(Path.Combine(QueueDir, "tmp", "20250101000000000-aaaaaaaaaa.msg"), "half a message");
        File.WriteAllText(Path.Combine(QueueDir, "tmp", "20250101000000000-aaaaaaaaaa.0123.json.tmp"), "{");
        string orphan = "20250101000000001-bbbbbbbbbb";
        File.WriteAllText(Path.Combine(QueueDir, orphan + ".eml"), "Subject: never committed\r\n\r\n");

        using var reopened = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(1, 2, 1, 0), reopened.Recovery);
        Assert.Equal(id, Assert.Single(reopened.List()).Id);
        Assert.Equal([id + ".msg"], QueueFiles());
        Assert.Empty(TempFiles());
    }

    /// <summary>The envelope stored in a committed message file, as JSON text.</summary>
    private string EmbeddedEnvelope(string id, long contentBytes)
    {
        var file = File.ReadAllBytes(Path.Combine(QueueDir, id + ".msg"));
        return Encoding.UTF8.GetString(file[(int)contentBytes..^QueueRecord.FooterBytes]);
    }

    [Fact]
    public async Task A_corrupt_message_or_envelope_is_quarantined_with_a_log_line_and_the_queue_still_opens()
    {
        string good, rewritten;
        var content = "Subject: good\r\n\r\n"u8.ToArray();
        using (var queue = MessageQueue.Open(folder.Path, log: log))
        {
            good = await CommitAsync(queue, content);
            rewritten = await CommitAsync(queue, content);
        }
        string goodJson = EmbeddedEnvelope(good, content.Length);
        // A message file that is not one (no footer), and a message whose rewritten envelope was broken by hand.
        string garbled = "20250101000000004-eeeeeeeeee";
        File.WriteAllText(Path.Combine(QueueDir, garbled + ".msg"), "Subject: no footer\r\n\r\n" + new string('z', 100));
        File.WriteAllText(Path.Combine(QueueDir, rewritten + ".json"), "{ \"id\": \"" + rewritten + "\", \"recipients\": [ ");
        // An earlier version's two-file layout: a broken envelope beside its content, and an envelope without content.
        string bad = "20250101000000002-cccccccccc";
        File.WriteAllText(Path.Combine(QueueDir, bad + ".json"), "{ \"id\": \"" + bad + "\", \"recipients\": [ ");
        File.WriteAllText(Path.Combine(QueueDir, bad + ".eml"), "Subject: bad envelope\r\n\r\n");
        string noContent = "20250101000000003-dddddddddd";
        File.WriteAllText(Path.Combine(QueueDir, noContent + ".json"), goodJson.Replace(good, noContent));

        using (var reopened = MessageQueue.Open(folder.Path, log: log))
        {
            Assert.Equal(good, Assert.Single(reopened.List()).Id);
            Assert.Equal(4, reopened.Recovery!.Quarantined);
        }
        var quarantined = Directory.GetFiles(Path.Combine(QueueDir, "quarantine")).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { bad + ".eml", bad + ".json", noContent + ".json", garbled + ".msg", rewritten + ".json", rewritten + ".msg" }.Order(StringComparer.Ordinal), quarantined);
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(bad) && l.Contains("quarantine"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(noContent) && l.Contains("message file is missing"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(garbled) && l.Contains("no DomainShare footer"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(rewritten) && l.Contains("quarantine"));

        // No crash loop: the next start finds a clean queue.
        using var again = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(1, 0, 0, 0), again.Recovery);
    }

    [Fact]
    public async Task A_message_file_cut_short_emptied_grown_or_with_bytes_missing_is_quarantined_never_delivered_in_part()
    {
        string good, cut, emptied, grown, holed;
        var content = Encoding.ASCII.GetBytes("Subject: whole\r\n\r\n" + new string('x', 5000) + "\r\n");
        using (var queue = MessageQueue.Open(folder.Path, log: log))
        {
            good = await CommitAsync(queue, content);
            cut = await CommitAsync(queue, content);
            emptied = await CommitAsync(queue, content);
            grown = await CommitAsync(queue, content);
            holed = await CommitAsync(queue, content);
        }
        string Msg(string id) => Path.Combine(QueueDir, id + ".msg");
        var whole = File.ReadAllBytes(Msg(cut));
        File.WriteAllBytes(Msg(cut), whole[..(content.Length / 2)]);
        File.WriteAllBytes(Msg(emptied), []);
        File.AppendAllText(Msg(grown), "appended by hand\r\n");
        File.WriteAllBytes(Msg(holed), [.. whole[..100], .. whole[200..]]); // the footer is intact, the lengths are not

        using (var reopened = MessageQueue.Open(folder.Path, log: log))
        {
            Assert.Equal(good, Assert.Single(reopened.List()).Id);
            Assert.Equal(4, reopened.Recovery!.Quarantined);
        }
        var quarantined = Directory.GetFiles(Path.Combine(QueueDir, "quarantine")).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { cut, emptied, grown, holed }.Select(id => id + ".msg").Order(StringComparer.Ordinal), quarantined);
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(cut) && l.Contains("no DomainShare footer"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(emptied) && l.Contains("fewer than its footer"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(grown) && l.Contains("no DomainShare footer"));
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(holed) && l.Contains($"its footer says {content.Length} of content"));
    }

    [Fact]
    public async Task A_queue_written_by_an_earlier_version_is_read_delivered_and_removed_as_it_is()
    {
        // The two-file layout: <id>.eml (the content) beside <id>.json (the envelope).
        var content = "Subject: queued before the upgrade\r\n\r\nbody\r\n"u8.ToArray();
        string template;
        using (var queue = MessageQueue.Open(folder.Path, log: log))
            template = await CommitAsync(queue, content);
        string old = "20250101000000005-ffffffffff", cutOld = "20250101000000006-ffffffffff";
        foreach (var id in new[] { old, cutOld })
            File.WriteAllText(Path.Combine(QueueDir, id + ".json"), EmbeddedEnvelope(template, content.Length).Replace(template, id));
        File.WriteAllBytes(Path.Combine(QueueDir, old + ".eml"), content);
        File.WriteAllBytes(Path.Combine(QueueDir, cutOld + ".eml"), content[..10]);
        File.Delete(Path.Combine(QueueDir, template + ".msg"));

        using (var shared = MessageQueue.Open(folder.Path, new MessageQueueOptions { Owner = false }, log))
            Assert.Equal(old, Assert.Single(shared.List()).Id); // the cut one is skipped with a warning; only the owner quarantines
        Assert.Contains(log.Lines, l => l.StartsWith("Warning:", StringComparison.Ordinal) && l.Contains(cutOld) && l.Contains("skipped"));
        using var reopened = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(1, 0, 0, 1), reopened.Recovery);
        Assert.Equal(old, Assert.Single(reopened.List()).Id);
        await using (var stream = reopened.OpenContent(old))
        {
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(content, copy.ToArray());
        }
        Assert.Contains(log.Lines, l => l.StartsWith("Error:", StringComparison.Ordinal) && l.Contains(cutOld) && l.Contains($"the envelope says {content.Length}"));
        Assert.True(reopened.Remove(old));
        Assert.Empty(QueueFiles());
    }

    [Fact]
    public void Each_content_file_without_an_envelope_is_deleted_with_a_log_line_naming_it()
    {
        string[] orphans = ["20250101000000001-bbbbbbbbbb", "20250101000000002-bbbbbbbbbb"];
        Directory.CreateDirectory(QueueDir);
        foreach (var id in orphans) File.WriteAllText(Path.Combine(QueueDir, id + ".eml"), "Subject: never committed\r\n\r\n");

        using var queue = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(0, 0, 2, 0), queue.Recovery);
        Assert.Empty(QueueFiles());
        foreach (var id in orphans)
            Assert.Single(log.Lines, l => l.StartsWith("Warning:", StringComparison.Ordinal) && l.Contains(id + ".eml") && l.Contains("no envelope"));
    }

    [Theory]
    [InlineData("CreateDraft")]
    [InlineData("WriteContent")]
    [InlineData("WriteEnvelope")]
    [InlineData("FlushContent")]
    [InlineData("MoveIntoQueue")]
    public async Task A_storage_failure_before_the_commit_point_throws_SmtpStorageException_and_leaves_nothing(string step)
    {
        var failAt = Enum.Parse<QueueStep>(step);
        var options = new MessageQueueOptions { Fault = s => s == failAt ? new IOException("No space left on device") : null };
        using var queue = MessageQueue.Open(folder.Path, options, log);
        var ex = await Assert.ThrowsAsync<SmtpStorageException>(async () =>
        {
            await using var draft = queue.Begin(Envelope());
            await draft.WriteAsync("Subject: x\r\n\r\nbody\r\n"u8.ToArray(), CancellationToken.None);
            await draft.CommitAsync(CancellationToken.None);
        });
        Assert.StartsWith("4.3.1", ex.Message);
        Assert.IsType<IOException>(ex.InnerException);
        Assert.Empty(queue.List());
        Assert.Empty(QueueFiles());
        Assert.Empty(TempFiles());
        Assert.Equal(1, queue.CommitFailures);
    }

    [Fact]
    public async Task Only_one_owner_at_a_time_but_a_shared_instance_can_list_resume_and_remove()
    {
        using var owner = MessageQueue.Open(folder.Path, log: log);
        string id = await CommitAsync(owner, "Subject: x\r\n\r\n"u8.ToArray());
        var refused = Assert.Throws<DomainShareException>(() => MessageQueue.Open(folder.Path, log: log));
        Assert.Equal(ErrorIds.RelayAlreadyRunning, refused.ErrorId);

        using var shared = MessageQueue.Open(folder.Path, new MessageQueueOptions { Owner = false }, log);
        Assert.Null(shared.Recovery);
        Assert.Equal(id, Assert.Single(shared.List()).Id);
        Assert.True(shared.Remove(id));
        Assert.False(shared.Remove(id));
        Assert.Empty(QueueFiles());
        owner.Refresh();
        Assert.Null(owner.Get(id));
        Assert.False(owner.Remove("../../etc/passwd"));
    }

    [Fact]
    public async Task Resume_sets_the_next_attempt_to_now_and_signals_delivery()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        string id = await CommitAsync(queue, "Subject: x\r\n\r\n"u8.ToArray());
        var later = queue.Get(id)! with { NextAttempt = DateTimeOffset.UtcNow.AddHours(1), Attempts = 3 };
        Assert.True(await queue.UpdateAsync(later, CancellationToken.None));
        var ready = new List<string>();
        queue.MessageReady += ready.Add;

        Assert.True(queue.Resume(id));
        Assert.True(queue.Get(id)!.NextAttempt <= DateTimeOffset.UtcNow);
        Assert.Equal([id], ready);
        Assert.Equal(1, queue.ResumeAll());
        Assert.False(queue.Resume("20250101000000000-0000000000"));

        using var shared = MessageQueue.Open(folder.Path, new MessageQueueOptions { Owner = false }, log);
        Assert.Equal(3, shared.Get(id)!.Attempts); // the envelope on disk was rewritten, not lost
    }

    [Fact]
    public async Task A_message_removed_by_another_process_is_dropped_not_rewritten()
    {
        using var owner = MessageQueue.Open(folder.Path, log: log);
        string id = await CommitAsync(owner, "Subject: x\r\n\r\n"u8.ToArray());
        var attempt = owner.BeginAttempt(id)!;
        using (var shared = MessageQueue.Open(folder.Path, new MessageQueueOptions { Owner = false }, log))
            Assert.True(shared.Remove(id));

        Assert.False(await owner.UpdateAsync(attempt with { Attempts = 1 }, CancellationToken.None));
        Assert.Null(owner.Get(id));
        Assert.Null(owner.BeginAttempt(id));
        Assert.Empty(QueueFiles());
    }

    [Fact]
    public async Task An_update_never_brings_back_a_removed_message()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        string id = await CommitAsync(queue, "Subject: x\r\n\r\n"u8.ToArray());
        var attempt = queue.BeginAttempt(id)!;
        Assert.True(queue.Remove(id));
        Assert.False(await queue.UpdateAsync(attempt with { Attempts = 1 }, CancellationToken.None));
        Assert.Empty(QueueFiles());
    }

    private string[] Spares() => Directory.GetFiles(Path.Combine(QueueDir, "tmp"), "*.spare");

    [Fact]
    public async Task A_delivered_message_file_is_reused_for_the_next_message_with_nothing_of_the_old_one_left()
    {
        var longer = Encoding.ASCII.GetBytes("Subject: first, longer\r\n\r\n" + new string('L', 20_000) + "\r\n");
        var shorter = "Subject: second\r\n\r\nshort\r\n"u8.ToArray();
        using (var queue = MessageQueue.Open(folder.Path, log: log))
        {
            string first = await CommitAsync(queue, longer);
            var attempt = queue.BeginAttempt(first)!;
            Assert.True(await queue.UpdateAsync(attempt with { Attempts = 1 }, CancellationToken.None)); // a rewritten envelope too
            Assert.Equal([first + ".json", first + ".msg"], QueueFiles());
            await queue.CompleteAsync(first, CancellationToken.None);
            Assert.Empty(QueueFiles()); // out of the queue, rewritten envelope included
            var spare = Assert.Single(Spares());
            Assert.True(new FileInfo(spare).Length > longer.Length);

            string second = await CommitAsync(queue, shorter);
            Assert.Empty(Spares()); // the spare became the second message
            Assert.Equal([second + ".msg"], QueueFiles());
            var file = File.ReadAllBytes(Path.Combine(QueueDir, second + ".msg"));
            Assert.Equal(shorter, file[..shorter.Length]);
            Assert.Equal(QueueFormat.Serialize(queue.Get(second)!), file[shorter.Length..^QueueRecord.FooterBytes]);
            Assert.DoesNotContain(new string('L', 16), Encoding.ASCII.GetString(file)); // nothing of the longer first message
            await using var stream = queue.OpenContent(second);
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(shorter, copy.ToArray());
            await queue.CompleteAsync(second, CancellationToken.None);
            Assert.Single(Spares());
        }
        // Spares are no drafts and no messages: the next owner deletes them and reports nothing.
        using var reopened = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(0, 0, 0, 0), reopened.Recovery);
        Assert.Empty(Spares());
    }

    [Fact]
    public async Task Spare_files_are_bounded_in_disk_and_only_the_owner_keeps_them()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        // 300 messages of 250 KB: the spares keep at most 64 MB (content + 4 KB each counted), the rest is deleted;
        // a message over 256 KB is never kept.
        var big = Encoding.ASCII.GetBytes("Subject: big\r\n\r\n" + new string('x', 250 * 1024));
        var ids = new List<string>();
        for (int i = 0; i < 300; i++) ids.Add(await CommitAsync(queue, big));
        ids.Add(await CommitAsync(queue, Encoding.ASCII.GetBytes("Subject: large\r\n\r\n" + new string('x', 300 * 1024))));
        await Task.WhenAll(ids.Select(id => queue.CompleteAsync(id, CancellationToken.None).AsTask()));
        Assert.Empty(QueueFiles());
        Assert.Equal(64L * 1024 * 1024 / (big.Length + 4096), Spares().Length);
        Assert.All(Spares(), f => Assert.True(new FileInfo(f).Length < 256 * 1024));
        long spareDisk = Spares().Sum(f => new FileInfo(f).Length);
        Assert.True(spareDisk <= 64L * 1024 * 1024, $"{spareDisk} bytes of spares");

        // A shared instance (a cmdlet) deletes what it removes; the owner's spares are left alone.
        int before = Spares().Length;
        string kept = await CommitAsync(queue, "Subject: kept\r\n\r\n"u8.ToArray());
        Assert.Equal(before - 1, Spares().Length);
        using var shared = MessageQueue.Open(folder.Path, new MessageQueueOptions { Owner = false }, log);
        Assert.True(shared.Remove(kept));
        Assert.Empty(QueueFiles());
        Assert.Equal(before - 1, Spares().Length);
    }
}
