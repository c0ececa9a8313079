using System.Net;
using System.Text;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Smtp;
using MailKit.Net.Smtp;
using MimeKit;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>
/// Storage faults at the boundary between the SMTP server and the durable spool, with both real: the
/// <see cref="SmtpServer"/> on a loopback socket and the <see cref="MessageQueue"/> in a temporary folder. The faults are
/// INJECTED through the queue's test hook (<see cref="MessageQueueOptions"/>.Fault), which throws at a named storage step
/// what a full or failing disk would throw there: an <see cref="IOException"/> with the ENOSPC HResult while writing,
/// an I/O error from fsync, a failed rename. This runs everywhere; the end-to-end battery shows the same on a real full
/// file system (a small tmpfs) where the machine allows one. Each fault must give the client <c>452 4.3.1</c>, keep the
/// session and the server going, and leave nothing in the queue that recovery (the next start) would deliver.
/// </summary>
public sealed class SmtpSpoolFaultTests : IDisposable
{
    private const int Enospc = 28, Eio = 5;
    private readonly TempFolder folder = new();
    private readonly ListLog log = new();

    public void Dispose() => folder.Dispose();

    private string QueueDir => Path.Combine(folder.Path, MessageQueue.FolderName);

    /// <summary>Every file of the queue but its lock: committed messages, drafts in tmp/, quarantined files.</summary>
    private string[] SpoolFiles()
        => Directory.GetFiles(QueueDir, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != ".owner.lock").ToArray();

    private static SmtpServerOptions Options() => new() { ServerName = "mx.local.test", ShutdownGracePeriod = TimeSpan.FromSeconds(2) };

    public static TheoryData<string, string> Faults() => new()
    {
        { nameof(QueueStep.CreateDraft), "ENOSPC" },
        { nameof(QueueStep.WriteContent), "ENOSPC" },
        { nameof(QueueStep.WriteEnvelope), "ENOSPC" },
        { nameof(QueueStep.FlushContent), "EIO from fsync" },
        { nameof(QueueStep.MoveIntoQueue), "rename failed" },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task A_storage_fault_in_the_real_spool_is_a_452_and_leaves_nothing_that_recovery_would_deliver(string step, string kind)
    {
        var failAt = Enum.Parse<QueueStep>(step);
        bool failing = true;
        Exception? Fault(QueueStep s) => !failing || s != failAt ? null : kind switch
        {
            "ENOSPC" => new IOException("No space left on device", Enospc),
            "EIO from fsync" => new IOException("Input/output error (fsync)", Eio),
            _ => new IOException("rename: Input/output error", Eio),
        };
        var queue = MessageQueue.Open(folder.Path, new MessageQueueOptions { Fault = Fault }, log);
        try
        {
            await using var server = new SmtpServer(Options(), new TestPolicy(), queue, log);
            await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));

            // A raw client that sends 200 KB without SIZE=: the fault hits in the middle of the content (the draft is
            // written in 64 KB pieces) or at the commit; either way the server reads to the final dot, then says 452.
            // A draft that cannot even be created is refused at DATA.
            await using (var raw = await RawSmtp.ConnectAsync(server.LocalEndPoint!))
            {
                await raw.ExpectAsync(220);
                await raw.CommandAsync("EHLO client.test", 250);
                await raw.CommandAsync("MAIL FROM:<ann@client.test>", 250);
                await raw.CommandAsync("RCPT TO:<bob@local.test>", 250);
                if (failAt == QueueStep.CreateDraft)
                {
                    // No draft can be started: DATA itself is answered 452, before any content.
                    await raw.CommandAsync("DATA", 452, "4.3.1");
                }
                else
                {
                    await raw.CommandAsync("DATA", 354);
                    var body = new StringBuilder("Subject: big\r\n\r\n");
                    while (body.Length < 200 * 1024) body.Append(new string('x', 78)).Append("\r\n");
                    await raw.SendAsync(body.Append(".\r\n").ToString());
                    await raw.ExpectAsync(452, "4.3.1");
                }
                await raw.CommandAsync("NOOP", 250); // the session goes on
                await raw.CommandAsync("QUIT", 221);
            }

            // MailKit, a small message: the same 452, as an SmtpCommandException a sending server retries on.
            using (var client = await ConnectAsync(server))
            {
                var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("Disk full")));
                Assert.Equal(452, (int)e.StatusCode);
                Assert.StartsWith("4.3.1", e.Message);
                await client.DisconnectAsync(quit: true);
            }

            Assert.Empty(queue.List());
            Assert.Empty(SpoolFiles());
            Assert.Equal(2, queue.CommitFailures);
            Assert.Equal(0, server.GetStatistics().MessagesAccepted);
            Assert.Equal(0, server.GetStatistics().SessionFailures);

            // The disk has room again: the next message is stored.
            failing = false;
            using (var client = await ConnectAsync(server))
            {
                var reply = await client.SendAsync(Message("Room again"));
                Assert.Contains("queued as", reply);
                await client.DisconnectAsync(quit: true);
            }
            Assert.Single(queue.List());
        }
        finally
        {
            queue.Dispose();
        }

        // What the next start finds: the one message that got 250, and nothing left of the refused ones.
        using var reopened = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(1, 0, 0, 0), reopened.Recovery);
        Assert.Empty(log.At(LogLevel.Error));
    }

    [Fact]
    public async Task A_failed_flush_of_the_queue_folder_after_the_commit_keeps_the_message_and_tells_the_client_452_to_send_it_again()
    {
        // Past the commit point nothing is undone (delivery may already have started): the message stays queued, and
        // the client, told 452, sends it again. At worst it arrives twice; it is never lost behind a 250.
        var queue = MessageQueue.Open(folder.Path, new MessageQueueOptions
        {
            Fault = s => s == QueueStep.FlushFolder ? new IOException("fsync: Input/output error", Eio) : null,
        }, log);
        try
        {
            await using var server = new SmtpServer(Options(), new TestPolicy(), queue, log);
            await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
            using var client = await ConnectAsync(server);
            var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("Folder flush fails")));
            Assert.Equal(452, (int)e.StatusCode);
            Assert.StartsWith("4.3.1", e.Message);
            await client.DisconnectAsync(quit: true);

            Assert.Single(queue.List());
            Assert.Equal(1, queue.CommitFailures);
            Assert.Equal(0, server.GetStatistics().MessagesAccepted);
            Assert.Contains(log.At(LogLevel.Warning), l => l.Contains("may arrive twice", StringComparison.Ordinal));
        }
        finally
        {
            queue.Dispose();
        }
        using var reopened = MessageQueue.Open(folder.Path, log: log);
        Assert.Equal(new QueueRecovery(1, 0, 0, 0), reopened.Recovery);
    }

    [Fact]
    public async Task A_client_that_announces_more_than_the_spool_has_room_for_is_told_452_at_MAIL_FROM()
    {
        await using var f = await SmtpFixture.StartAsync();
        f.Sink.Room = 10_000;
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.CommandAsync("EHLO client.test", 250);
        await c.CommandAsync("MAIL FROM:<ann@client.test> SIZE=20000", 452, "4.3.1");
        // Refused before anything was started, and the transaction never began: a smaller message passes.
        await c.CommandAsync("RCPT TO:<bob@local.test>", 503);
        await c.CommandAsync("MAIL FROM:<ann@client.test> SIZE=5000", 250);
        await c.CommandAsync("RCPT TO:<bob@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: fits\r\n\r\nbody\r\n.\r\n");
        await c.ExpectAsync(250);
        Assert.Equal(0, f.Sink.Deleted);
        Assert.Single(f.Sink.Committed);
    }

    [Fact]
    public void The_queue_tells_the_free_space_of_its_file_system()
    {
        using var queue = MessageQueue.Open(folder.Path, log: log);
        Assert.True(queue.HasRoomFor(1));
        Assert.False(queue.HasRoomFor(long.MaxValue));
    }

    private static async Task<SmtpClient> ConnectAsync(SmtpServer server)
    {
        var client = new SmtpClient { LocalDomain = "client.test", Timeout = 10_000 };
        await client.ConnectAsync("127.0.0.1", server.LocalEndPoint!.Port, MailKit.Security.SecureSocketOptions.None);
        return client;
    }

    private static MimeMessage Message(string subject)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse("ann@client.test"));
        m.To.Add(MailboxAddress.Parse("bob@local.test"));
        m.Subject = subject;
        m.Body = new TextPart("plain") { Text = "body" };
        return m;
    }
}
