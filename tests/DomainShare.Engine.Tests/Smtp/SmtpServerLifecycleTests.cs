using System.Net;
using System.Text;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>Timeouts, connection limits, start and stop, and options replaced at run time.</summary>
public sealed class SmtpServerLifecycleTests
{
    private static async Task<RawSmtp> InDataAsync(SmtpFixture f)
    {
        var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.CommandAsync("EHLO client.test", 250);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("DATA", 354);
        await c.SendAsync("Subject: in progress\r\n\r\nfirst half\r\n");
        await SmtpFixture.EventuallyAsync(() => f.Sink.Begun == 1, "the draft exists");
        return c;
    }

    [Fact]
    public async Task An_idle_client_is_told_421_and_disconnected()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { CommandTimeout = TimeSpan.FromMilliseconds(300) });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.ExpectAsync(421, "4.4.2 mx.local.test Timeout");
        Assert.True(await c.IsClosedAsync());
        await SmtpFixture.EventuallyAsync(() => f.Server.GetStatistics().ActiveSessions == 0, "the session has ended");
        Assert.Empty(f.Log.At(LogLevel.Error));
    }

    [Fact]
    public async Task A_client_that_stalls_in_DATA_is_told_421_and_its_draft_is_dropped()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { DataTimeout = TimeSpan.FromMilliseconds(300) });
        await using var c = await InDataAsync(f);
        await c.ExpectAsync(421, "4.4.2");
        Assert.True(await c.IsClosedAsync());
        await SmtpFixture.EventuallyAsync(() => f.Sink.Deleted == 1, "the draft is deleted");
        Assert.Empty(f.Sink.Committed);
    }

    /// <summary>Sends <paramref name="text"/> a byte every <paramref name="interval"/> until the server answers; returns the answer and the bytes sent.</summary>
    private static async Task<(Reply Reply, int Sent)> TrickleAsync(RawSmtp c, string text, TimeSpan interval)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var answer = c.ReadReplyAsync();
        int sent = 0;
        for (; sent < bytes.Length && !answer.IsCompleted; sent++)
        {
            try { await c.SendAsync([bytes[sent]]); }
            catch (IOException) { break; } // closed under us: the answer says why
            await Task.WhenAny(answer, Task.Delay(interval));
        }
        return (await answer, sent);
    }

    [Fact]
    public async Task A_command_line_trickled_a_byte_at_a_time_is_cut_by_the_command_timeout()
    {
        // Slowloris: every byte comes well within the timeout, the line never does. The timeout bounds the whole command.
        await using var f = await SmtpFixture.StartAsync(o => o with { CommandTimeout = TimeSpan.FromMilliseconds(500) });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        var line = "EHLO a.slow.client.example.test\r\n"; // 3.3 s at 100 ms a byte
        var (reply, sent) = await TrickleAsync(c, line, TimeSpan.FromMilliseconds(100));
        Assert.Equal(421, reply.Code);
        Assert.StartsWith("4.4.2", reply.Text);
        Assert.True(sent < line.Length, "the whole line went through: the timeout was restarted by every byte");
        Assert.True(await c.IsClosedAsync());
        await SmtpFixture.EventuallyAsync(() => f.Server.GetStatistics().ActiveSessions == 0, "the session has ended");
    }

    [Fact]
    public async Task Each_command_gets_the_whole_command_timeout_anew()
    {
        // 3 s per command, 0.8 s between commands: 4 s in all, longer than one timeout, and 2.2 s of slack for a
        // loaded machine (1.5 s against 0.6 s once failed on a shared CI runner).
        await using var f = await SmtpFixture.StartAsync(o => o with { CommandTimeout = TimeSpan.FromMilliseconds(3000) });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        for (int i = 0; i < 5; i++)
        {
            await Task.Delay(700);
            await c.SendAsync("NO");
            await Task.Delay(100);
            await c.CommandAsync("OP", 250);
        }
        await c.CommandAsync("QUIT", 221);
    }

    [Fact]
    public async Task A_message_line_trickled_a_byte_at_a_time_is_cut_by_the_data_timeout_and_dropped()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { DataTimeout = TimeSpan.FromMilliseconds(500) });
        await using var c = await InDataAsync(f);
        var line = "X-Slow: " + new string('s', 30) + "\r\n"; // 4 s at 100 ms a byte
        var (reply, sent) = await TrickleAsync(c, line, TimeSpan.FromMilliseconds(100));
        Assert.Equal(421, reply.Code);
        Assert.StartsWith("4.4.2", reply.Text);
        Assert.True(sent < line.Length, "the whole line went through: the timeout was restarted by every byte");
        Assert.True(await c.IsClosedAsync());
        await SmtpFixture.EventuallyAsync(() => f.Sink.Deleted == 1, "the draft is deleted");
        Assert.Empty(f.Sink.Committed);
    }

    [Fact]
    public async Task Each_message_line_gets_the_whole_data_timeout_anew()
    {
        // 3 s per line, 0.8 s between lines: 4 s in all, longer than one timeout, and 2.2 s of slack for a loaded
        // machine (1.5 s against 0.6 s once failed on a shared CI runner).
        await using var f = await SmtpFixture.StartAsync(o => o with { DataTimeout = TimeSpan.FromMilliseconds(3000) });
        await using var c = await InDataAsync(f);
        for (int i = 0; i < 5; i++)
        {
            await Task.Delay(700);
            await c.SendAsync("line ");
            await Task.Delay(100);
            await c.SendAsync($"{i}\r\n");
        }
        await c.CommandAsync(".", 250);
        Assert.Single(f.Sink.Committed);
    }

    [Fact]
    public async Task A_session_ends_at_its_time_limit_however_busy()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { SessionTimeout = TimeSpan.FromMilliseconds(600) });
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        Reply reply;
        var until = DateTime.UtcNow.AddSeconds(5);
        do
        {
            await c.SendAsync("NOOP\r\n");
            reply = await c.ReadReplyAsync();
            await Task.Delay(50);
        }
        while (reply.Code == 250 && DateTime.UtcNow < until);
        Assert.Equal(421, reply.Code);
        Assert.StartsWith("4.4.2 mx.local.test Session time limit", reply.Text);
    }

    [Fact]
    public async Task Connections_over_the_limit_per_source_are_told_421_at_the_greeting()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxConnectionsPerSource = 2 });
        await using var first = await f.ConnectAsync();
        await first.ExpectAsync(220);
        await using var second = await f.ConnectAsync();
        await second.ExpectAsync(220);
        await using (var third = await f.ConnectAsync())
        {
            await third.ExpectAsync(421, "4.7.0 mx.local.test Too many connections from your address");
            Assert.True(await third.IsClosedAsync());
        }
        await first.CommandAsync("QUIT", 221);
        await SmtpFixture.EventuallyAsync(() => f.Server.GetStatistics().ActiveSessions == 1, "the first session has ended");
        await using var fourth = await f.ConnectAsync();
        await fourth.ExpectAsync(220);
        await second.CommandAsync("NOOP", 250);
        Assert.Equal(1, f.Server.GetStatistics().ConnectionsRefused);
    }

    [Fact]
    public async Task A_session_that_said_goodbye_frees_its_slot_even_while_the_client_keeps_the_socket_open()
    {
        // After QUIT the server lingers (up to a second) for the client's FIN. A client that reconnects at once
        // must not be refused for a connection whose conversation is over.
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxConnectionsPerSource = 1 });
        await using var first = await f.ConnectAsync();
        await first.ExpectAsync(220);
        await first.CommandAsync("QUIT", 221);
        // 'first' is deliberately not closed: the server lingers on it for up to a second. Reconnecting must succeed
        // well within that second (a few tries cover the instant between our reading 221 and the server's bookkeeping).
        var watch = System.Diagnostics.Stopwatch.StartNew();
        bool greeted = false;
        while (!greeted && watch.Elapsed < TimeSpan.FromMilliseconds(600))
        {
            await using var next = await f.ConnectAsync();
            greeted = (await next.ReadReplyAsync()).Code == 220;
            if (!greeted) await Task.Delay(20);
        }
        Assert.True(greeted, "a new connection was refused while the finished session lingered");
    }

    [Fact]
    public async Task Connections_over_the_total_limit_are_told_421_at_the_greeting()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with { MaxConnections = 1 });
        await using var first = await f.ConnectAsync();
        await first.ExpectAsync(220);
        await using var second = await f.ConnectAsync();
        await second.ExpectAsync(421, "4.7.0 mx.local.test Too many connections, try again later");
        Assert.True(await second.IsClosedAsync());
    }

    [Fact]
    public async Task Stopping_tells_an_idle_client_421_and_returns()
    {
        var f = await SmtpFixture.StartAsync();
        var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.CommandAsync("EHLO client.test", 250);
        var stopped = f.DisposeAsync().AsTask();
        await c.ExpectAsync(421, "4.3.2 mx.local.test Service shutting down");
        Assert.True(await c.IsClosedAsync());
        await c.DisposeAsync();
        await stopped.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Empty(f.Log.At(LogLevel.Error));
        Assert.Contains(f.Log.At(LogLevel.Information), m => m.EndsWith("stopped.", StringComparison.Ordinal));
        // The port is free again.
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => RawSmtp.ConnectAsync(f.EndPoint));
    }

    [Fact]
    public async Task Stopping_lets_a_transaction_in_progress_finish_then_says_421()
    {
        var f = await SmtpFixture.StartAsync(o => o with { ShutdownGracePeriod = TimeSpan.FromSeconds(10) });
        await using var c = await InDataAsync(f);
        var stopped = f.Server.StopAsync();
        await Task.Delay(200);
        Assert.False(stopped.IsCompleted, "the server waits for the transaction");
        await c.SendAsync("second half\r\n.\r\nMAIL FROM:<a@local.test>\r\n");
        await c.ExpectAsync(250, "2.0.0 OK queued as");
        await c.ExpectAsync(421, "4.3.2"); // no new transaction once stopping
        Assert.True(await c.IsClosedAsync());
        await stopped.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Single(f.Sink.Committed);
        await f.DisposeAsync();
    }

    [Fact]
    public async Task Stopping_closes_a_transaction_that_outlasts_the_grace_period_and_keeps_nothing()
    {
        var f = await SmtpFixture.StartAsync(o => o with { ShutdownGracePeriod = TimeSpan.FromMilliseconds(300) });
        await using var c = await InDataAsync(f);
        await f.Server.StopAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await c.ExpectAsync(421, "4.3.2");
        Assert.True(await c.IsClosedAsync());
        Assert.Empty(f.Sink.Committed);
        Assert.Equal(1, f.Sink.Deleted);
        await f.DisposeAsync();
    }

    [Fact]
    public async Task A_taken_port_is_a_clear_EndpointInUse_error_naming_the_endpoint()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var second = new SmtpServer(SmtpFixture.DefaultOptions(), new TestPolicy(), new FileSinkStub(), new ListLog());
        var e = await Assert.ThrowsAsync<DomainShareException>(() => second.StartAsync(f.EndPoint));
        Assert.Equal(ErrorIds.EndpointInUse, e.ErrorId);
        Assert.Contains(f.EndPoint.ToString(), e.Message);
        Assert.Contains("smtp.endpoint", e.RecommendedAction);
        Assert.Equal(f.EndPoint, e.Target);
    }

    [Fact]
    public async Task Options_replaced_at_run_time_apply_to_the_next_command()
    {
        await using var f = await SmtpFixture.StartAsync();
        await using var c = await f.ConnectAsync();
        await c.ExpectAsync(220);
        await c.CommandAsync("EHLO client.test", 250);
        f.Server.Configure(f.Server.Options with { MaxRecipients = 1, MaxMessageBytes = 5000, ServerName = "renamed.local.test" });
        var ehlo = await c.CommandAsync("EHLO client.test", 250);
        Assert.Equal("renamed.local.test", ehlo.Lines[0]);
        Assert.Contains("SIZE 5000", ehlo.Lines);
        await c.CommandAsync("MAIL FROM:<a@local.test> SIZE=5001", 552);
        await c.CommandAsync("MAIL FROM:<a@local.test>", 250);
        await c.CommandAsync("RCPT TO:<b@local.test>", 250);
        await c.CommandAsync("RCPT TO:<c@local.test>", 452, "4.5.3");
        Assert.Equal("renamed.local.test", f.Server.Options.ServerName);

        var invalid = Assert.Throws<DomainShareException>(() => f.Server.Configure(f.Server.Options with { MaxRecipients = 0 }));
        Assert.Equal(ErrorIds.InvalidSetting, invalid.ErrorId);
        Assert.Equal(1, f.Server.Options.MaxRecipients);
    }

    [Theory]
    [InlineData("ServerName")]
    [InlineData("MaxLineBytes")]
    [InlineData("MaxDataLineBytes")]
    [InlineData("CommandTimeout")]
    [InlineData("MaxHops")]
    [InlineData("Certificate")]
    public void Options_a_server_cannot_run_with_are_refused_by_name(string option)
    {
        var options = SmtpFixture.DefaultOptions();
        options = option switch
        {
            "ServerName" => options with { ServerName = "two words" },
            "MaxLineBytes" => options with { MaxLineBytes = 100 },
            "MaxDataLineBytes" => options with { MaxDataLineBytes = 998 },
            "CommandTimeout" => options with { CommandTimeout = TimeSpan.Zero },
            "MaxHops" => options with { MaxHops = 0 },
            _ => options with { Certificate = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(TestCertificates.Server.RawData) },
        };
        var e = Expect.Error(ErrorIds.InvalidSetting, () => new SmtpServer(options, new TestPolicy(), new FileSinkStub(), new ListLog()));
        Assert.Contains(option == "CommandTimeout" ? "timeouts" : option == "Certificate" ? "private key" : option, e.Message);
    }

    [Fact]
    public void Option_defaults_are_the_documented_ones()
    {
        var o = new SmtpServerOptions();
        Assert.Equal(25L * 1024 * 1024, o.MaxMessageBytes);
        Assert.Equal(100, o.MaxRecipients);
        Assert.Equal(1000, o.MaxLineBytes);
        Assert.Equal(64 * 1024, o.MaxDataLineBytes);
        Assert.Equal(20, o.MaxErrors);
        Assert.Equal(TimeSpan.FromMinutes(5), o.CommandTimeout);
        Assert.Equal(TimeSpan.FromMinutes(10), o.DataTimeout);
        Assert.Equal(TimeSpan.FromMinutes(30), o.SessionTimeout);
        Assert.Equal(500, o.MaxConnections);
        Assert.Equal(50, o.MaxConnectionsPerSource);
        Assert.Equal(Defaults.MaxHops, o.MaxHops);
        Assert.Null(o.Certificate);
        o.Validate();
        Assert.DoesNotContain("RawData", (o with { Certificate = TestCertificates.Server }).ToString());
    }

    private sealed class FileSinkStub : IMessageSink
    {
        public IMessageDraft Begin(SmtpEnvelope envelope) => throw new SmtpStorageException("not used");
    }
}
