using System.Text.RegularExpressions;
using DomainShare.Engine.Delivery;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Queue;
using static DomainShare.Engine.Tests.DeliveryTests.DeliveryRig;

namespace DomainShare.Engine.Tests.DeliveryTests;

public sealed class LocalDeliveryTests
{
    [Fact]
    public async Task A_local_recipient_gets_a_byte_exact_copy_in_new_under_a_Maildir_name()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        string other = rig.AddAccount("cat@example.com");
        await rig.StartAgentAsync();
        var content = Content("Local");

        string id = await rig.CommitAsync("someone@outside.test", [Local("ann@example.com"), Local("cat@example.com"), Local("ANN@example.com")], content);
        await rig.WaitUntilGoneAsync(id);

        var file = Assert.Single(NewMail(maildir)); // the same mailbox named twice gets one copy
        Assert.Equal(content, await File.ReadAllBytesAsync(file));
        Assert.Matches(new Regex(@"^\d+\.M\d+P\d+Q\d+\.[^/:]+,S=" + content.Length + "$"), Path.GetFileName(file));
        Assert.Equal(content, await File.ReadAllBytesAsync(Assert.Single(NewMail(other))));
        Assert.Empty(Directory.GetFiles(Path.Combine(maildir, "tmp")));
        Assert.Empty(rig.Queue.List());
    }

    [Fact]
    public async Task A_committed_message_is_delivered_after_a_restart_and_uncommitted_leftovers_are_not()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        // Accepted (250) but the relay was killed before delivering it.
        string id = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        string queueDir = rig.Queue.Folder;
        await File.WriteAllTextAsync(Path.Combine(queueDir, "20250101000000000-eeeeeeeeee.eml"), "Subject: content without envelope\r\n\r\n");
        await File.WriteAllTextAsync(Path.Combine(queueDir, "tmp", "20250101000000000-ffffffffff.eml"), "Subject: draft\r\n\r\n");

        await rig.RestartAsync();
        await rig.WaitUntilGoneAsync(id);

        Assert.Single(NewMail(maildir));
        Assert.Equal(new QueueRecovery(1, 1, 1, 0), rig.Queue.Recovery);
        Assert.DoesNotContain(Directory.GetFiles(queueDir), f => !f.EndsWith(".owner.lock", StringComparison.Ordinal));
    }

    /// <summary>Nothing of the message in the Maildir (new/ or tmp/); then, with the plain store again, it is delivered once.</summary>
    private static async Task AssertNothingStoredThenDeliveredOnceAsync(DeliveryRig rig, string id, string maildir)
    {
        Assert.Empty(NewMail(maildir));
        Assert.Empty(Directory.GetFiles(Path.Combine(maildir, "tmp")));
        await rig.StopAgentAsync();
        rig.Store = null;
        await rig.StartAgentAsync();
        rig.Queue.Resume(id);
        await rig.WaitUntilGoneAsync(id);
        Assert.Single(NewMail(maildir));
    }

    [Fact]
    public async Task A_full_disk_at_the_Maildir_keeps_the_message_queued_and_leaves_nothing_in_new()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        rig.Store = new MaildirMessageStore(createFile: path => new DiskFullStream(File.Create(path), bytesBeforeFull: 40));
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 2 }, "two failed attempts");

        var message = rig.Queue.Get(id)!;
        var recipient = Assert.Single(message.Recipients);
        Assert.Equal(RecipientState.Pending, recipient.State);
        Assert.Contains("No space left on device", recipient.LastError);
        Assert.StartsWith("451 4.3.0", recipient.LastError);
        await AssertNothingStoredThenDeliveredOnceAsync(rig, id, maildir); // space again: the next attempt delivers it
    }

    [Fact]
    public async Task A_Maildir_folder_that_cannot_be_flushed_to_disk_keeps_the_message_queued_and_takes_it_out_of_new()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        int flushes = 0;
        rig.Store = new MaildirMessageStore(flushFolder: folder =>
        {
            Interlocked.Increment(ref flushes);
            throw new IOException("fsync: Input/output error");
        });
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 2 }, "two failed attempts");

        var recipient = Assert.Single(rig.Queue.Get(id)!.Recipients);
        Assert.Equal(RecipientState.Pending, recipient.State);
        Assert.Contains("could not be flushed to disk", recipient.LastError);
        Assert.True(flushes >= 2);
        await AssertNothingStoredThenDeliveredOnceAsync(rig, id, maildir); // the disk works again
    }

    [Fact]
    public async Task A_mailbox_over_quota_keeps_the_message_queued_with_4_2_2()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com", quota: 100);
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 1 }, "an attempt");

        Assert.StartsWith("452 4.2.2", Assert.Single(rig.Queue.Get(id)!.Recipients).LastError);
        Assert.Empty(NewMail(maildir));
    }

    [Fact]
    public async Task An_account_removed_since_acceptance_is_looked_up_again_and_follows_it_to_a_peer()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        peer.Minger.With("ann@example.com", MingerStatus.Exists);
        await rig.StartAgentAsync();

        // Accepted as local, then the account moved to the peer.
        string id = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        await rig.WaitUntilGoneAsync(id);

        var received = Assert.Single(peer.Sink!.Messages);
        Assert.Equal(["ann@example.com"], received.Recipients);
        Assert.Contains(rig.Log.Lines, l => l.Contains("no local account <ann@example.com> any more"));
    }

    [Fact]
    public void The_retry_schedule_grows_from_the_first_delay_to_the_maximum()
    {
        var schedule = new RetrySchedule(TimeSpan.FromMinutes(1), 2, TimeSpan.FromHours(1));
        Assert.Equal([1, 2, 4, 8, 16, 32, 60, 60], Enumerable.Range(1, 8).Select(n => schedule.DelayAfter(n).TotalMinutes));
        Assert.Equal(TimeSpan.FromHours(1), schedule.DelayAfter(10_000));
        Assert.Equal(TimeSpan.FromMinutes(5), RetrySchedule.Default.DelayAfter(1));
    }
}

/// <summary>A file that fills up: the first bytes are written, then every write fails as a full disk does.</summary>
internal sealed class DiskFullStream(Stream inner, int bytesBeforeFull) : Stream
{
    private int left = bytesBeforeFull;
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() => inner.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count)
    {
        int now = Math.Min(left, count);
        inner.Write(buffer, offset, now);
        left -= now;
        if (now < count) throw new IOException("No space left on device");
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct)
    {
        Write(buffer, offset, count);
        return Task.CompletedTask;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
    {
        Write(buffer.ToArray(), 0, buffer.Length);
        return ValueTask.CompletedTask;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
