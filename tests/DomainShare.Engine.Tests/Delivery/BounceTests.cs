using DomainShare.Engine.Delivery;
using DomainShare.Engine.Minger;
using MimeKit;
using static DomainShare.Engine.Tests.DeliveryTests.DeliveryRig;

namespace DomainShare.Engine.Tests.DeliveryTests;

public sealed class BounceTests
{
    /// <summary>The one message in the Maildir, parsed as a bounce: the report's per-recipient fields, and the attached headers.</summary>
    private static (MimeMessage Dsn, HeaderList Recipient, string Headers) ReadBounce(string maildir)
    {
        var dsn = MimeMessage.Load(Assert.Single(NewMail(maildir)));
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("delivery-status", report.ReportType);
        var status = Assert.Single(report.OfType<MessageDeliveryStatus>());
        Assert.Equal("dns; mx1.example.com", status.StatusGroups[0]["Reporting-MTA"]);
        var headersPart = Assert.IsType<TextRfc822Headers>(Assert.Single(report, p => p.ContentType.IsMimeType("text", "rfc822-headers")));
        string headers = string.Join("\r\n", headersPart.Message!.Headers.Select(h => h.ToString()));
        // MimeKit reads the blank line that ends the last group as one more, empty, group.
        return (dsn, Assert.Single(status.StatusGroups.Skip(1), g => g.Count > 0), headers);
    }

    [Fact]
    public async Task A_5xx_from_the_peer_drops_the_cache_entry_looks_again_and_bounces_to_the_local_sender()
    {
        await using var rig = new DeliveryRig();
        string senderMaildir = rig.AddAccount("ann@example.com");
        var peer = rig.AddPeer(); // its Minger answers 3 (unknown) for bob
        rig.Cache.StorePositive("bob@example.com", peer.Name);
        peer.Sink!.RecipientReplies["bob@example.com"] = "550 5.1.1 <bob@example.com>: User unknown";
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)], Content("Lost letter"));
        await rig.WaitUntilGoneAsync(id);
        await rig.WaitUntilAsync(() => NewMail(senderMaildir).Length == 1 && rig.Queue.Count == 0, "the bounce reaches the sender");

        Assert.True(rig.Cache.Lookup("bob@example.com") is not { IsPositive: true }, "the cached route to the peer was dropped");
        Assert.True(peer.Minger.Received >= 1, "the peers were asked again before bouncing");
        var (dsn, recipient, headers) = ReadBounce(senderMaildir);
        Assert.Equal("MAILER-DAEMON@mx1.example.com", dsn.From.Mailboxes.Single().Address);
        Assert.Equal("ann@example.com", dsn.To.Mailboxes.Single().Address);
        Assert.Equal("auto-replied", dsn.Headers["Auto-Submitted"]);
        Assert.Equal("rfc822; bob@example.com", recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.Contains("550 5.1.1 <bob@example.com>: User unknown", recipient["Diagnostic-Code"]);
        Assert.Contains("Subject: Lost letter", headers);
        Assert.DoesNotContain("Body line one", headers);
        Assert.Contains("bob@example.com", dsn.TextBody);
    }

    [Fact]
    public async Task A_5xx_from_the_peer_for_an_address_that_moved_delivers_it_to_the_new_peer()
    {
        await using var rig = new DeliveryRig();
        string senderMaildir = rig.AddAccount("ann@example.com");
        var old = rig.AddPeer();
        var moved = rig.AddPeer();
        moved.Minger.With("bob@example.com", MingerStatus.Exists);
        rig.Cache.StorePositive("bob@example.com", old.Name);
        old.Sink!.RecipientReplies["bob@example.com"] = "550 5.1.1 User unknown";
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", old)]);
        await rig.WaitUntilGoneAsync(id);

        Assert.Equal(["bob@example.com"], Assert.Single(moved.Sink!.Messages).Recipients);
        Assert.Equal(moved.Name, rig.Cache.Lookup("bob@example.com")?.Peer);
        Assert.Empty(NewMail(senderMaildir));
    }

    [Fact]
    public async Task At_the_end_of_the_queue_lifetime_the_sender_gets_a_bounce_with_the_last_error()
    {
        await using var rig = new DeliveryRig();
        rig.Config = rig.Config with { Queue = new QueueSettings { Lifetime = TimeSpan.FromSeconds(1.5) } };
        string senderMaildir = rig.AddAccount("ann@example.com");
        var peer = rig.AddPeer(down: true);
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilGoneAsync(id);
        await rig.WaitUntilAsync(() => NewMail(senderMaildir).Length == 1, "the bounce reaches the sender");

        var (_, recipient, _) = ReadBounce(senderMaildir);
        Assert.Equal("rfc822; bob@example.com", recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("4.4.1", recipient["Status"]);
        Assert.Contains("cannot connect", recipient["Diagnostic-Code"]);
        Assert.Contains("queue lifetime", recipient["Diagnostic-Code"]);
    }

    [Fact]
    public async Task A_bounce_that_cannot_be_delivered_is_dropped_never_bounced()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        peer.Sink!.RecipientReplies["bob@example.com"] = "550 5.1.1 User unknown";
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync(null, [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilGoneAsync(id);
        await Task.Delay(200);

        Assert.Equal(0, rig.Queue.Count);
        Assert.Contains(rig.Log.Lines, l => l.Contains("never bounced"));
    }

    [Fact]
    public async Task A_message_refused_as_a_whole_is_bounced_to_a_sender_on_a_peer()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        var senderHome = rig.AddPeer();
        senderHome.Minger.With("ann@example.com", MingerStatus.Exists);
        peer.Sink!.DataReply = "554 5.6.0 Message refused";
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilGoneAsync(id);
        await rig.WaitUntilAsync(() => !senderHome.Sink!.Messages.IsEmpty && rig.Queue.Count == 0, "the bounce reaches the sender's server");

        var bounce = Assert.Single(senderHome.Sink!.Messages);
        Assert.Equal("", bounce.MailFrom);
        Assert.Equal(["ann@example.com"], bounce.Recipients);
        var dsn = MimeMessage.Load(new MemoryStream(bounce.Data));
        var status = Assert.Single(Assert.IsType<MultipartReport>(dsn.Body).OfType<MessageDeliveryStatus>());
        Assert.Equal("5.6.0", status.StatusGroups[1]["Status"]);
    }

    [Fact]
    public async Task An_SMTPUTF8_message_is_not_sent_to_a_next_hop_without_SMTPUTF8()
    {
        await using var rig = new DeliveryRig();
        string senderMaildir = rig.AddAccount("ann@example.com");
        var peer = rig.AddPeer();
        peer.Sink!.WithoutSmtpUtf8 = true;
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("jürgen@example.com", peer)], smtpUtf8: true);
        await rig.WaitUntilGoneAsync(id);
        await rig.WaitUntilAsync(() => NewMail(senderMaildir).Length == 1, "the bounce reaches the sender");

        Assert.Empty(peer.Sink.Messages);
        Assert.Equal("5.6.7", ReadBounce(senderMaildir).Recipient["Status"]);
    }

    [Fact]
    public void The_status_of_a_bounce_comes_from_the_last_error()
    {
        Assert.Equal("5.1.1", BounceBuilder.StatusOf("550 5.1.1 User unknown"));
        Assert.Equal("4.4.1", BounceBuilder.StatusOf("451 4.4.1 cannot connect"));
        Assert.Equal("4.0.0", BounceBuilder.StatusOf("421 closing"));
        Assert.Equal("5.0.0", BounceBuilder.StatusOf(null));
    }
}
