using System.Text;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>The SMTP server against a bare TCP client: exact replies, and everything a polite client would never send.</summary>
public sealed class SmtpServerProtocolTests
{
    private static async Task<RawSmtp> GreetedAsync(SmtpFixture f, string ehlo = "EHLO client.test")
    {
        var c = await f.ConnectAsync();
        await c.ExpectAsync(220, "mx.local.test ESMTP");
        await c.SendAsync(ehlo + "\r\n");
        await c.ExpectAsync(250);
        return c;
    }

    [Fact]
    public async Task Ehlo_advertises_the_extensions_and_helo_none()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxMessageBytes = 1_000_000 });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        var ehlo = await c.CommandAsync("EHLO client.test", 250);
        Assert.Equal(["mx.local.test", "PIPELINING", "SIZE 1000000", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"], ehlo.Lines);
        var helo = await c.CommandAsync("HELO client.test", 250);
        Assert.Equal(["mx.local.test"], helo.Lines);
        // After HELO there are no extensions: parameters are refused.
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=10", 555, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250, "2.1.0");
        await c.CommandAsync("QUIT", 221, "2.0.0");
        Assert.True(await c.IsClosedAsync());
    }

    [Fact]
    public async Task A_raw_transaction_is_stored_byte_for_byte_less_the_dot_stuffing()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f, "HELO old.client");
        await c.CommandAsync("MAIL FROM:<>", 250);
        await c.CommandAsync("RCPT TO:<alice@local.test>", 250, "2.1.5");
        await c.CommandAsync("DATA", 354);
        var content = new List<byte>();
        content.AddRange("Subject: raw\r\n\r\n..\r\n...\r\n.x\r\n"u8.ToArray());
        content.AddRange([0xC3, 0xA9, 0xFF, 0x00, 0x80, (byte)'\r', (byte)'\n']); // 8-bit, even a NUL: kept as sent
        content.AddRange(" .\r\nlast line without dot\r\n"u8.ToArray());
        await c.SendAsync([.. content, .. ".\r\n"u8.ToArray()]);
        var reply = await c.ExpectAsync(250, "2.0.0 OK queued as ");

        var stored = Assert.Single(f.Sink.Committed);
        Assert.EndsWith(stored.Id, reply.Text);
        var expected = "Subject: raw\r\n\r\n.\r\n..\r\nx\r\n"u8.ToArray().Concat(new byte[] { 0xC3, 0xA9, 0xFF, 0x00, 0x80, (byte)'\r', (byte)'\n' })
            .Concat(" .\r\nlast line without dot\r\n"u8.ToArray()).ToArray();
        Assert.Equal(expected, stored.ContentAfterOurReceived());
        Assert.Null(stored.Envelope.ReversePath);
        Assert.Contains(" with SMTP id ", stored.OurReceived());
        Assert.Equal(SmtpBodyType.Unspecified, stored.Envelope.BodyType);
    }

    [Fact]
    public async Task An_empty_message_is_accepted()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.SendAsync("MAIL FROM:<a@local.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n");
        await c.ExpectAsync(250);
        await c.ExpectAsync(250);
        await c.ExpectAsync(354);
        await c.SendAsync(".\r\n");
        await c.ExpectAsync(250);
        Assert.Empty(Assert.Single(f.Sink.Committed).ContentAfterOurReceived());
    }

    [Fact]
    public async Task A_pipelined_group_gets_its_replies_in_order()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        // Everything up to DATA in one write, as RFC 2920 allows, including a refused recipient and a syntax error.
        await c.SendAsync("EHLO client.test\r\nMAIL FROM:<s@local.test> BODY=7BIT SIZE=100\r\nRCPT TO:<a@local.test>\r\nRCPT TO:<unknown@local.test>\r\n"
                          + "RCPT TO:broken\r\nRCPT TO:<c@peer.test>\r\nNOOP\r\nDATA\r\n");
        await c.ExpectAsync(250);
        await c.ExpectAsync(250, "2.1.0");
        await c.ExpectAsync(250, "2.1.5");
        await c.ExpectAsync(550, "5.1.1 User unknown");
        await c.ExpectAsync(501, "5.5.4");
        await c.ExpectAsync(250, "2.1.5");
        await c.ExpectAsync(250, "2.0.0");
        await c.ExpectAsync(354);
        await c.SendAsync("Subject: pipelined\r\n\r\nhi\r\n.\r\nQUIT\r\n");
        await c.ExpectAsync(250, "2.0.0 OK queued as");
        await c.ExpectAsync(221);
        Assert.True(await c.IsClosedAsync());
        var stored = Assert.Single(f.Sink.Committed);
        Assert.Equal(["a@local.test", "c@peer.test"], stored.Envelope.Recipients.Select(r => r.Recipient));
        Assert.Equal(SmtpBodyType.SevenBit, stored.Envelope.BodyType);
    }

    [Fact]
    public async Task Size_over_the_limit_is_refused_at_MAIL()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxMessageBytes = 10_000 });
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=10001", 552, "5.3.4");
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=99999999999999999999", 501, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=10000", 250);
    }

    [Fact]
    public async Task Content_over_the_limit_is_read_to_the_end_then_refused_with_552()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxMessageBytes = 10_000 });
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        var line = new string('y', 98) + "\r\n";
        var big = new StringBuilder("Subject: big\r\n\r\n");
        for (int i = 0; i < 200; i++) big.Append(line);
        await c.SendAsync(big + ".\r\n");
        await c.ExpectAsync(552, "5.3.4");
        Assert.Empty(f.Sink.Committed);
        await FixtureEventually(f, () => f.Sink.Deleted == 1 && f.Sink.Open == 0);
        // In step with the client: the next command is a command again.
        await c.CommandAsync("NOOP", 250);
        Assert.Equal(1, f.Server.GetStatistics().MessagesRefused);
    }

    private static Task FixtureEventually(SmtpFixture f, Func<bool> condition) => SmtpFixture.EventuallyAsync(condition, "the sink settles");

    [Fact]
    public async Task Recipients_over_the_limit_get_452_and_the_accepted_ones_receive_the_message()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxRecipients = 2 });
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<r1@local.test>", 250);
        await c.CommandAsync("RCPT TO:<R1@LOCAL.TEST>", 250, "2.1.5 Recipient OK (duplicate"); // once only, not counted twice
        await c.CommandAsync("RCPT TO:<r2@local.test>", 250);
        await c.CommandAsync("RCPT TO:<r3@local.test>", 452, "4.5.3");
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: x\r\n\r\nx\r\n.\r\n");
        await c.ExpectAsync(250);
        Assert.Equal(["r1@local.test", "r2@local.test"], Assert.Single(f.Sink.Committed).Envelope.Recipients.Select(r => r.Recipient));
        Assert.Equal(2, f.Policy.Calls.Count);
    }

    [Fact]
    public async Task Rset_ends_the_transaction()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("RSET", 250, "2.0.0");
        await c.CommandAsync("DATA", 503, "5.5.1");
        await c.CommandAsync("RCPT TO:<b@local.test>", 503, "5.5.1");
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RSET now", 501, "5.5.4");
    }

    [Fact]
    public async Task Vrfy_and_Expn_disclose_nothing()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        var known = await c.CommandAsync("VRFY alice@local.test", 252, "2.5.2");
        var unknown = await c.CommandAsync("VRFY unknown@local.test", 252, "2.5.2");
        Assert.Equal(known.Text, unknown.Text);
        await c.CommandAsync("VRFY", 501, "5.5.4");
        await c.CommandAsync("EXPN staff", 502, "5.5.1");
        await c.CommandAsync("HELP", 214, "2.0.0");
        await c.CommandAsync("NOOP anything", 250);
        Assert.Empty(f.Policy.Calls);
    }

    [Fact]
    public async Task Addresses_source_routes_quoted_local_parts_and_postmaster()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM: <@relay.example:sender@local.test>", 250);
        await c.CommandAsync("RCPT TO:<@a.example,@b.example:alice@local.test>", 250);
        await c.CommandAsync("RCPT TO:<\"john \\\"q\\\" doe\"@local.test>", 250);
        await c.CommandAsync("RCPT TO:<bob@[192.0.2.1]>", 550, "5.7.1");
        await c.CommandAsync("RCPT TO:<Postmaster>", 550);
        await c.CommandAsync("RCPT TO:alice@local.test", 501, "5.5.4");
        await c.CommandAsync("RCPT TO:<alice@@local.test>", 501, "5.1.3");
        await c.CommandAsync("RCPT TO:<.alice@local.test>", 501, "5.1.3");
        await c.CommandAsync("RCPT TO:<alice@local..test>", 501, "5.1.3");
        await c.CommandAsync("RCPT TO:<alice@-local.test>", 501, "5.1.3");
        await c.CommandAsync($"RCPT TO:<{new string('a', 65)}@local.test>", 501, "5.1.3");
        await c.CommandAsync("RCPT TO:<>", 501, "5.1.3");
        await c.CommandAsync("RCPT TO:<alice@local.test> NOTIFY=NEVER", 555, "5.5.4");
        await c.CommandAsync("RCPT FROM:<alice@local.test>", 501, "5.5.4");
        Assert.Equal(["alice@local.test", "\"john \\\"q\\\" doe\"@local.test", "bob@[192.0.2.1]", "Postmaster"], f.Policy.Calls.Select(x => x.Recipient));
        Assert.All(f.Policy.Calls, x => Assert.Equal("sender@local.test", x.ReversePath));
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("\r\n.\r\n");
        await c.ExpectAsync(250);
        Assert.Equal(2, Assert.Single(f.Sink.Committed).Envelope.Recipients.Count);
    }

    [Fact]
    public async Task Mail_syntax_and_parameters()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:a@local.test", 501, "5.5.4");
        await c.CommandAsync("MAIL TO:<a@local.test>", 501, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@>", 501, "5.1.7");
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=12 SIZE=12", 501, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@local.test> BODY=BINARYMIME", 501, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@local.test> AUTH=<>", 555, "5.5.4");
        await c.CommandAsync("MAIL FROM:<a@local.test>trailing", 501, "5.5.4");
        await c.CommandAsync("mail from:<a@local.test> body=8bitmime smtputf8", 250);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 503, "5.5.1"); // nested
    }

    [Fact]
    public async Task Utf8_needs_SMTPUTF8_and_only_in_addresses()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<jösé@local.test>", 553, "5.6.7");
        await c.CommandAsync("NOOP ünïcode", 500, "5.5.2");
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<zoë@local.test>", 553, "5.6.7");
        await c.CommandAsync("RSET", 250);
        await c.CommandAsync("MAIL FROM:<jösé@bücher.local.test> SMTPUTF8", 250);
        await c.CommandAsync("RCPT TO:<zoë@local.test>", 250);
        await c.SendAsync([.. "RCPT TO:<z"u8.ToArray(), 0xC3, 0x28, .. "@local.test>\r\n"u8.ToArray()]); // not UTF-8
        await c.ExpectAsync(500, "5.5.2");
        Assert.Equal(["zoë@local.test"], f.Policy.Calls.Select(x => x.Recipient));
        Assert.Equal("jösé@bücher.local.test", f.Policy.Calls.Single().ReversePath);
    }

    [Fact]
    public async Task Commands_out_of_sequence_get_503()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 503, "5.5.1");
        await c.CommandAsync("RCPT TO:<a@local.test>", 503, "5.5.1");
        await c.CommandAsync("DATA", 503, "5.5.1");
        await c.CommandAsync("EHLO client.test", 250);
        await c.CommandAsync("DATA", 503, "5.5.1");
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("DATA", 554, "5.5.1 No valid recipients");
        await c.CommandAsync("RCPT TO:<unknown@local.test>", 550);
        await c.CommandAsync("DATA", 554, "5.5.1");
        await c.CommandAsync("DATA now", 501, "5.5.4");
        await c.CommandAsync("EHLO bad_name!", 501, "5.5.4");
        await c.CommandAsync("EHLO", 501, "5.5.4");
        await c.CommandAsync("STARTTLS", 502, "5.5.1"); // no certificate
        await c.CommandAsync("AUTH PLAIN", 502, "5.5.1");
        await c.CommandAsync("XYZZY", 500, "5.5.1");
    }

    [Fact]
    public async Task A_command_line_too_long_is_refused_and_the_session_resynchronises()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxLineBytes = 512 });
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("NOOP " + new string('x', 505), 250); // 510 + CRLF = 512: just fits
        await c.CommandAsync("NOOP " + new string('x', 506), 500, "5.5.6");
        // Far longer, in pieces, with a CR at a piece end: one reply, then in step again.
        await c.SendAsync("MAIL FROM:<" + new string('a', 3000) + "\r");
        await c.SendAsync(new string('b', 100_000));
        await c.SendAsync("@local.test>\r\nNOOP\r\n");
        await c.ExpectAsync(500, "5.5.6");
        await c.ExpectAsync(250);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
    }

    [Fact]
    public async Task Nul_control_bytes_and_bare_line_feeds_in_commands_are_refused_not_executed()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.SendAsync("NO\0OP\r\n");
        await c.ExpectAsync(500, "5.5.2");
        await c.SendAsync("NOOP\tx\r\n");
        await c.ExpectAsync(500, "5.5.2");
        await c.SendAsync("NOOP\rx\r\n");
        await c.ExpectAsync(500, "5.5.2");
        await c.SendAsync("QUIT\n"); // RFC 5321 §4.1.1.4: a bare LF is not a line end; not executed
        await c.ExpectAsync(500, "5.5.2");
        await c.SendAsync("\r\n");
        await c.ExpectAsync(500, "5.5.1");
        await c.CommandAsync("NOOP", 250);
    }

    [Fact]
    public async Task A_bare_LF_in_the_content_never_ends_it_and_refuses_the_message()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await GreetedAsync(f);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        // SMTP smuggling: "<LF>.<CRLF>" and "<CRLF>.<LF>" must not end the content, nor may what follows run as commands.
        await c.SendAsync("Subject: smuggle\r\n\r\nhello\n.\r\nMAIL FROM:<evil@local.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\n"
                          + "hi\r\n.\nRSET\r\n");
        await c.SendAsync("more\r\n.\r\n");
        await c.ExpectAsync(554, "5.6.0");
        await c.CommandAsync("NOOP", 250);
        Assert.Empty(f.Sink.Committed);
        Assert.Equal(["b@local.test"], f.Policy.Calls.Select(x => x.Recipient));

        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: bare CR\r\n\r\nhello\rworld\r\n.\r\n");
        await c.ExpectAsync(554, "5.6.0");
        Assert.Empty(f.Sink.Committed);
        Assert.Equal(2, f.Sink.Deleted);
    }

    [Fact]
    public async Task Long_text_lines_are_tolerated_up_to_the_limit()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxDataLineBytes = 20_000 });
        await using var c = await GreetedAsync(f);
        var longLine = ".x" + new string('l', 19_996) + "\r\n"; // 19,999 octets with CRLF, dot-stuffed: 20,000 on the wire minus the stuffing
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: long\r\n\r\n" + longLine + ".\r\n");
        await c.ExpectAsync(250);
        Assert.Equal("Subject: long\r\n\r\n" + longLine[1..], Encoding.ASCII.GetString(Assert.Single(f.Sink.Committed).ContentAfterOurReceived()));

        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: too long\r\n\r\n" + new string('z', 20_001) + "\r\n.\r\n");
        await c.ExpectAsync(554, "5.6.0");
        Assert.Single(f.Sink.Committed);
    }

    [Fact]
    public async Task Too_many_errors_close_the_session_with_421()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxErrors = 5 });
        var c = await GreetedAsync(f);
        var garbage = new StringBuilder();
        for (int i = 0; i < 50; i++) garbage.Append("GARBAGE ").Append(i).Append("\r\n");
        await c.SendAsync(garbage.ToString());
        for (int i = 0; i < 5; i++) await c.ExpectAsync(500, "5.5.1");
        await c.ExpectAsync(421, "4.7.0 mx.local.test");
        Assert.True(await c.IsClosedAsync());
        await c.DisposeAsync();
        await SmtpFixture.EventuallyAsync(() => f.Server.GetStatistics().ActiveSessions == 0, "the session has ended");
    }

    [Fact]
    public async Task Starttls_resets_the_session_and_discards_anything_sent_before_the_handshake()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { Certificate = TestCertificates.Server });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        var ehlo = await c.CommandAsync("EHLO client.test", 250);
        Assert.Contains("STARTTLS", ehlo.Lines);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("STARTTLS", 503, "5.5.1"); // in a transaction
        await c.CommandAsync("RSET", 250);
        await c.CommandAsync("STARTTLS x", 501);
        // A command injected behind STARTTLS in the same packet must not be run under TLS (CVE-2011-0411 class).
        await c.SendAsync("STARTTLS\r\nMAIL FROM:<injected@local.test>\r\n");
        await c.ExpectAsync(220, "2.0.0");
        await c.StartTlsAsync();
        await c.CommandAsync("MAIL FROM:<a@local.test>", 503, "5.5.1"); // EHLO first: the session starts over
        ehlo = await c.CommandAsync("EHLO client.test", 250);
        Assert.DoesNotContain("STARTTLS", ehlo.Lines);
        await c.CommandAsync("STARTTLS", 503, "5.5.1");
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: tls\r\n\r\nsecret\r\n.\r\n");
        await c.ExpectAsync(250);
        await c.CommandAsync("QUIT", 221);
        var stored = Assert.Single(f.Sink.Committed);
        Assert.True(stored.Envelope.Session.Secure);
        Assert.Contains(" with ESMTPS id ", stored.OurReceived());
    }

    [Fact]
    public async Task A_failed_tls_handshake_ends_only_that_session()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { Certificate = TestCertificates.Server });
        await using (var c = await GreetedAsync(f))
        {
            await c.CommandAsync("STARTTLS", 220);
            await c.SendAsync("this is not a TLS client hello\r\n\r\n");
            Assert.True(await c.IsClosedAsync());
        }
        await using var next = await GreetedAsync(f);
        await next.CommandAsync("NOOP", 250);
        Assert.Empty(f.Log.At(LogLevel.Error));
    }

    [Fact]
    public async Task A_client_that_vanishes_in_the_middle_of_DATA_leaves_nothing_behind()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using (var c = await GreetedAsync(f))
        {
            await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
            await c.CommandAsync("RCPT TO:<b@local.test>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: half\r\n\r\n" + new string('h', 50_000) + "\r\nand then\r\n");
            await SmtpFixture.EventuallyAsync(() => f.Sink.Begun == 1, "the draft exists");
            c.Abort();
        }
        await using (var c = await GreetedAsync(f))
        {
            await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
            await c.CommandAsync("RCPT TO:<b@local.test>", 250);
            await c.CommandAsync("DATA", 354);
            await c.SendAsync("Subject: half\r\n\r\nno end\r\n");
            c.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send); // a clean FIN, still no final dot
            Assert.True(await c.IsClosedAsync());
        }
        await SmtpFixture.EventuallyAsync(() => f.Sink.Deleted == 2 && f.Server.GetStatistics().ActiveSessions == 0, "both drafts are deleted and the sessions ended");
        Assert.Empty(f.Sink.Committed);
        Assert.Empty(f.Sink.Files);
        Assert.Equal(2, f.Server.GetStatistics().MessagesAbandoned);
        Assert.Empty(f.Log.At(LogLevel.Error));
    }
}
