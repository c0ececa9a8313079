using System.Text;
using DomainShare.Engine.Smtp;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>The SMTP server driven by MailKit, a real and strict client, over loopback.</summary>
public sealed class SmtpServerMailKitTests
{
    private static MimeMessage Message(string from, string subject, string body, params string[] to)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var address in to) message.To.Add(MailboxAddress.Parse(address));
        message.Subject = subject;
        var part = new TextPart("plain");
        part.SetText("utf-8", body);
        part.ContentTransferEncoding = ContentEncoding.EightBit;
        message.Body = part;
        return message;
    }

    /// <summary>What MailKit puts on the wire between DATA and the final dot, before dot-stuffing.</summary>
    private static byte[] AsSent(MimeMessage message)
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        format.EnsureNewLine = true;
        format.HiddenHeaders.Add(HeaderId.ContentLength);
        format.HiddenHeaders.Add(HeaderId.ResentBcc);
        format.HiddenHeaders.Add(HeaderId.Bcc);
        using var buffer = new MemoryStream();
        message.WriteTo(format, buffer);
        return buffer.ToArray();
    }

    [Fact]
    public async Task A_message_to_several_recipients_is_stored_byte_exact_behind_our_Received_header()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.EightBitMime));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.EnhancedStatusCodes));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.UTF8));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Size));
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.StartTLS), "no certificate, no STARTTLS");
        Assert.Equal((uint)SmtpServerOptions.DefaultMaxMessageBytes, client.MaxSize);

        // Lines that start with dots are dot-stuffed by the client and must come out as written; the body is 8-bit UTF-8.
        var body = "Grüße aus Köln, ça va ? ½ €\n.\n..two dots\n.leading dot\n\n. \nend";
        var message = Message("Sender <sender@local.test>", "Several recipients", body, "alice@local.test", "bob@local.test", "carol@peer.test");
        var response = await client.SendAsync(message);
        await client.DisconnectAsync(quit: true);

        var stored = Assert.Single(f.Sink.Committed);
        Assert.Contains($"queued as {stored.Id}", response);
        Assert.Equal(AsSent(message), stored.ContentAfterOurReceived());
        Assert.Contains("\r\n.\r\n..two dots\r\n.leading dot\r\n", stored.Text);
        Assert.Matches(@"^Received: from client\.test \(\[127\.0\.0\.1\]\) by mx\.local\.test with ESMTP id [0-9A-F]{14,}; [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$",
            stored.OurReceived());

        var envelope = stored.Envelope;
        Assert.Equal("sender@local.test", envelope.ReversePath);
        Assert.Equal(
            [new RecipientRoute("alice@local.test", RouteKind.Local), new RecipientRoute("bob@local.test", RouteKind.Local), new RecipientRoute("carol@peer.test", RouteKind.Peer, "mx2")],
            envelope.Recipients);
        Assert.Equal("client.test", envelope.Session.HeloName);
        Assert.Equal("127.0.0.1", envelope.Session.Remote.Address.ToString());
        Assert.False(envelope.Session.Secure);
        Assert.Equal(SmtpBodyType.EightBitMime, envelope.BodyType);
        Assert.False(envelope.SmtpUtf8);
        Assert.Equal(["alice@local.test", "bob@local.test", "carol@peer.test"], f.Policy.Calls.Select(c => c.Recipient));
        Assert.All(f.Policy.Calls, c => Assert.Equal("sender@local.test", c.ReversePath));
        Assert.Equal(0, f.Sink.Open);
    }

    [Fact]
    public async Task Several_messages_in_one_session_and_a_single_recipient_is_named_in_Received()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        for (int i = 0; i < 3; i++)
            await client.SendAsync(Message("sender@local.test", $"Message {i}", $"Body {i}", "alice@local.test"));
        await client.DisconnectAsync(quit: true);

        var stored = f.Sink.Committed.ToArray();
        Assert.Equal(3, stored.Length);
        Assert.Equal(3, stored.Select(s => s.Id).Distinct().Count());
        foreach (var s in stored)
            Assert.Matches(@"^Received: from client\.test \(\[127\.0\.0\.1\]\) by mx\.local\.test with ESMTP id \w+ for <alice@local\.test>; ", s.OurReceived());
        Assert.Equal(3, f.Server.GetStatistics().MessagesAccepted);
    }

    /// <summary>MailKit pipelines MAIL and every RCPT (PIPELINING is advertised) and reads the replies afterwards.</summary>
    private sealed class RecordingClient : SmtpClient
    {
        public List<(string Mailbox, int Code, string Text)> Refused { get; } = [];

        protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
            Refused.Add((mailbox.Address, (int)response.StatusCode, response.Response));
    }

    [Fact]
    public async Task The_policy_decisions_are_passed_through_recipient_by_recipient_in_a_pipelined_group()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = new RecordingClient { LocalDomain = "client.test" };
        await client.ConnectAsync("127.0.0.1", f.Port, SecureSocketOptions.None);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));

        var message = Message("sender@local.test", "Mixed", "body",
            "unknown@local.test", "alice@local.test", "busy@local.test", "lookup-fails@local.test", "someone@elsewhere.test", "throws@local.test", "carol@peer.test");
        await client.SendAsync(message);
        await client.DisconnectAsync(quit: true);

        Assert.Equal(
        [
            ("unknown@local.test", 550, "5.1.1 User unknown"),
            ("busy@local.test", 450, "4.2.1 Mailbox unavailable, try again later"),
            ("lookup-fails@local.test", 451, "4.4.3 Temporary lookup failure, try again later"),
            ("someone@elsewhere.test", 550, "5.7.1 Relaying denied"),
            ("throws@local.test", 451, "4.3.0 Temporary failure checking the recipient, try again later"),
        ], client.Refused);
        var stored = Assert.Single(f.Sink.Committed);
        Assert.Equal(["alice@local.test", "carol@peer.test"], stored.Envelope.Recipients.Select(r => r.Recipient));
        Assert.Contains(f.Log.At(LogLevel.Warning), m => m.Contains("throws@local.test", StringComparison.Ordinal) && m.Contains("the test policy throws", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Starttls_with_a_self_signed_certificate_secures_the_session()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { Certificate = TestCertificates.Server });
        using (var plain = await f.MailKitAsync())
        {
            Assert.True(plain.Capabilities.HasFlag(SmtpCapabilities.StartTLS), "a certificate is set: STARTTLS is advertised");
            await plain.DisconnectAsync(quit: true);
        }

        using var client = await f.MailKitAsync(SecureSocketOptions.StartTls);
        Assert.True(client.IsSecure);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
        await client.SendAsync(Message("sender@local.test", "Secret", "under TLS", "alice@local.test"));
        await client.DisconnectAsync(quit: true);

        var stored = Assert.Single(f.Sink.Committed);
        Assert.True(stored.Envelope.Session.Secure);
        Assert.Equal("client.test", stored.Envelope.Session.HeloName);
        Assert.Contains(" with ESMTPS id ", stored.OurReceived());
        Assert.True(f.Policy.Calls.Single().Session.Secure, "the policy sees the session as secure");
    }

    [Fact]
    public async Task Utf8_addresses_go_through_with_SMTPUTF8()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        var message = Message("Jösé <jösé@local.test>", "Internationalised", "Grüße", "zoë@local.test");
        await client.SendAsync(message);
        await client.DisconnectAsync(quit: true);

        var stored = Assert.Single(f.Sink.Committed);
        Assert.Equal("jösé@local.test", stored.Envelope.ReversePath);
        Assert.Equal("zoë@local.test", stored.Envelope.Recipients.Single().Recipient);
        Assert.True(stored.Envelope.SmtpUtf8);
        Assert.Contains(" with UTF8SMTP id ", stored.OurReceived());
        Assert.Contains(" for <zoë@local.test>;", stored.OurReceived());
        Assert.Equal(AsSent(message), stored.ContentAfterOurReceived());
    }

    [Fact]
    public async Task A_message_over_the_hop_limit_is_refused_and_nothing_is_committed()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();

        var looping = Message("sender@local.test", "Loop", "round and round", "alice@local.test");
        for (int i = 0; i < 31; i++)
            looping.Headers.Insert(0, new Header("Received", $"from hop{i}.example by hop{i + 1}.example with ESMTP id {i}; Tue, 01 Nov 2026 09:30:00 +0000"));
        var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(looping));
        Assert.Equal(SmtpErrorCode.MessageNotAccepted, e.ErrorCode);
        Assert.Equal(554, (int)e.StatusCode);
        Assert.StartsWith("5.4.6 ", e.Message);
        Assert.Empty(f.Sink.Committed);
        Assert.Equal(1, f.Sink.Deleted);

        // At the limit is fine; the session goes on after a refusal.
        looping.Headers.RemoveAt(0);
        await client.SendAsync(looping);
        Assert.Single(f.Sink.Committed);
        await client.DisconnectAsync(quit: true);
        Assert.Equal(0, f.Sink.Open);
    }

    [Theory]
    [InlineData("begin")]
    [InlineData("write")]
    [InlineData("commit")]
    public async Task A_spool_failure_is_a_452_and_nothing_half_written_is_kept(string where)
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        switch (where)
        {
            case "begin": f.Sink.FailAtBegin = true; break;
            case "write": f.Sink.FailAtWrite = true; break;
            default: f.Sink.FailAtCommit = true; break;
        }
        var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("sender@local.test", "Disk full", "body", "alice@local.test")));
        Assert.Equal(452, (int)e.StatusCode);
        Assert.StartsWith("4.3.1 ", e.Message);
        Assert.Empty(f.Sink.Committed);
        Assert.Equal(0, f.Sink.Open);
        Assert.Empty(f.Sink.Files);
        Assert.Equal(where == "begin" ? 0 : 1, f.Sink.Deleted);

        // The session survives and the next message, once the disk has room again, is stored.
        f.Sink.FailAtBegin = f.Sink.FailAtWrite = f.Sink.FailAtCommit = false;
        await client.SendAsync(Message("sender@local.test", "Retry", "body", "alice@local.test"));
        await client.DisconnectAsync(quit: true);
        Assert.Single(f.Sink.Committed);
        Assert.Empty(f.Log.At(LogLevel.Error));
    }

    [Fact]
    public async Task A_sink_that_fails_unexpectedly_is_a_451_and_an_error_in_the_log()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        f.Sink.ThrowUnexpectedAtWrite = true;
        var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("sender@local.test", "Bug", "body", "alice@local.test")));
        Assert.Equal(451, (int)e.StatusCode);
        Assert.StartsWith("4.3.0 ", e.Message);
        Assert.Equal(1, f.Sink.Deleted);
        Assert.Contains(f.Log.At(LogLevel.Error), m => m.Contains("the test sink has a bug", StringComparison.Ordinal));
        await client.NoOpAsync();
    }

    [Fact]
    public async Task A_large_message_streams_through_in_many_writes()
    {
        await using var f = await SmtpFixture.StartAsync();
        using var client = await f.MailKitAsync();
        var body = new StringBuilder();
        for (int i = 0; body.Length < 3_000_000; i++)
            body.Append(i % 7 == 0 ? "." : "").Append("Line ").Append(i).Append(" ").Append('x', i % 200).Append('\n');
        var message = Message("sender@local.test", "Big", body.ToString(), "alice@local.test");
        await client.SendAsync(message);
        await client.DisconnectAsync(quit: true);
        Assert.Equal(AsSent(message), Assert.Single(f.Sink.Committed).ContentAfterOurReceived());
    }
}
