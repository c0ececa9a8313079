using System.Diagnostics;
using System.Net;
using DomainShare.EndToEnd.Tests.Infrastructure;
using MailKit.Net.Smtp;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// Three running relays that share example.com, each a peer of the others with its real SMTP and Minger ports, and a
/// relay host (an <see cref="SmtpSink"/>) behind A. A holds alice, B holds bob, C holds cora and cleo. A retries every
/// 500 ms (so its peer's six attempts before the relay host take seconds, not hours) and trusts 127.0.0.8 to relay.
/// B takes messages of at most 2 KB (Set-DomainShareConfig -MaxMessageBytes 2048; mail forwarded to it is smaller).
/// Accounts are created with New-DomainShareAccount once every relay runs, so each creation asks the other two.
/// </summary>
public sealed class MailCluster : IDisposable
{
    public readonly Cluster Cluster = new("smtp");
    public readonly SmtpSink RelayHost = new();
    public readonly Server A, B, C;
    /// <summary>A client address in A's trusted networks.</summary>
    public static readonly IPAddress TrustedClient = IPAddress.Parse("127.0.0.8");
    public readonly IReadOnlyDictionary<string, MailAccount> Accounts;

    /// <summary>B's message size limit.</summary>
    public const int SmallLimit = 2048;

    public const string Alice = "alice@example.com", Bob = "bob@example.com", Cora = "cora@example.com", Cleo = "cleo@example.com";

    public MailCluster()
    {
        try
        {
            A = Cluster.Add("a", "secret-of-a-0123456789");
            B = Cluster.Add("b", "secret-of-b-0123456789");
            C = Cluster.Add("c", "secret-of-c-0123456789");
            Server[] all = [A, B, C];
            var run = Cluster.SetUpAndStart(all,
                configure:
                [
                    .. from s in all from p in all where p != s select s.MailPeerScript(p),
                    .. all.Select(s => $"Set-DomainShareConfig -MingerTimeout 500ms -MingerRetries 1 -QueueRetryInterval 1s -QueueMaxRetryInterval 2s {s.Cfg}"),
                    $"Set-DomainShareConfig -QueueRetryInterval 500ms -QueueMaxRetryInterval 500ms -RelayHost {RelayHost.HostPort} -TrustedNetwork {TrustedClient}/32 {A.Cfg}",
                    $"Set-DomainShareConfig -MaxMessageBytes {SmallLimit} {B.Cfg}",
                ],
                afterStart: [A.NewAccountScript(Alice), B.NewAccountScript(Bob), C.NewAccountScript(Cora), C.NewAccountScript(Cleo)]);
            Accounts = run.OfKind<MailAccount>("Maildir").ToDictionary(a => a.Address, StringComparer.OrdinalIgnoreCase);
            Assert.Equal(4, Accounts.Count);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string MaildirOf(string address) => Accounts[address].Maildir;

    public void Dispose()
    {
        Cluster.KillRelays();
        Cluster.Dispose();
        RelayHost.Dispose();
    }
}

/// <summary>
/// Real SMTP, MailKit as the client, against real relay processes: local delivery, forwarding to the peer that holds
/// the mailbox, the RCPT TO refusals (550 5.1.1, 550 5.7.1, 451 4.4.3), relaying for a trusted client through the relay
/// host, the size limit (552, and the bounce when a peer refuses a message its sender's server took), a peer that is
/// down (cached recipients wait in the queue; uncached ones are deferred to the sender), the keep-queued option on and
/// off, and a temporary refusal of MAIL FROM by the next hop (deferred, never bounced). The tests of this class run one
/// after the other; each one that stops a relay or changes a setting puts it back.
/// </summary>
public sealed class SmtpFlowTests(MailCluster f, ITestOutputHelper output) : IClassFixture<MailCluster>
{
    private Server A => f.A;
    private Server B => f.B;
    private Server C => f.C;

    [Fact]
    public void Local_mail_lands_in_the_recipients_Maildir_behind_our_Received_header()
    {
        var token = Mail.NewToken("local");
        var watch = Stopwatch.StartNew();
        var reply = Mail.Send(A, Mail.Message(token, MailCluster.Alice));
        Assert.Contains("queued as", reply);

        var stored = Assert.Single(Mail.AwaitDelivery(f.MaildirOf(MailCluster.Alice), token));
        output.WriteLine($"Accepted and in alice's Maildir after {watch.ElapsedMilliseconds} ms.");
        Assert.Contains($"Subject: Test {token}", stored);
        var received = Mail.ReceivedHeaders(stored);
        var ours = Assert.Single(received);
        Assert.StartsWith("from client.test ([127.0.0.1])", ours);
        Assert.Contains($"by {A.ServerName} with ESMTP id ", ours);
        Assert.Contains($"for <{MailCluster.Alice}>", ours);
        Assert.StartsWith("Received: ", stored); // our trace header is the first line
        Assert.True(Directory.GetFiles(Path.Combine(f.MaildirOf(MailCluster.Alice), "tmp")).Length == 0, "a delivery left a file in tmp/");
        Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Mail_for_a_user_of_another_server_is_forwarded_and_stored_there_once_with_both_Received_headers()
    {
        var token = Mail.NewToken("peer");
        var watch = Stopwatch.StartNew();
        Mail.Send(A, Mail.Message(token, MailCluster.Bob));

        Mail.AwaitDelivery(f.MaildirOf(MailCluster.Bob), token);
        output.WriteLine($"Accepted by A and in bob's Maildir on B after {watch.ElapsedMilliseconds} ms.");
        // Both queues drained: nothing more can arrive.
        Assert.True(Cluster.Eventually(() => A.QueueCount() == 0 && B.QueueCount() == 0, TimeSpan.FromSeconds(10)), "a queue did not drain");
        var stored = Assert.Single(Mail.Delivered(f.MaildirOf(MailCluster.Bob), token));
        Assert.Contains($"Subject: Test {token}", stored);

        var received = Mail.ReceivedHeaders(stored);
        Assert.True(received.Count == 2, string.Join("\n", received));
        Assert.StartsWith($"from {A.ServerName} (", received[0]); // B's, on top: it got the message from A
        Assert.Contains($"by {B.ServerName} with ESMTP", received[0]);
        Assert.StartsWith("from client.test ([127.0.0.1])", received[1]); // A's, from our client
        Assert.Contains($"by {A.ServerName} with ESMTP", received[1]);
        Assert.Empty(Mail.Delivered(f.MaildirOf(MailCluster.Alice), token));
        Assert.Empty(f.RelayHost.With(token));
    }

    [Fact]
    public void An_address_that_exists_nowhere_is_refused_at_RCPT_with_550_5_1_1()
    {
        var token = Mail.NewToken("nobody");
        var e = Mail.Refused(A, Mail.Message(token, "nobody-at-all@example.com"));
        Assert.Equal(SmtpErrorCode.RecipientNotAccepted, e.ErrorCode);
        Assert.Equal(550, (int)e.StatusCode);
        Assert.Contains("5.1.1", e.Message);
        Assert.Equal("nobody-at-all@example.com", e.Mailbox?.Address);
    }

    [Fact]
    public void Relaying_to_an_outside_domain_is_refused_with_550_5_7_1_except_for_a_trusted_client_whose_mail_goes_to_the_relay_host()
    {
        const string outside = "someone@elsewhere.test";
        var refused = Mail.NewToken("openrelay");
        var e = Mail.Refused(A, Mail.Message(refused, outside));
        Assert.Equal(SmtpErrorCode.RecipientNotAccepted, e.ErrorCode);
        Assert.Equal(550, (int)e.StatusCode);
        Assert.Contains("5.7.1", e.Message);

        // B has no relay host and no trusted network: never a relay, whoever asks.
        var e2 = Mail.Refused(B, Mail.Message(refused, outside), from: MailCluster.TrustedClient);
        Assert.Equal(550, (int)e2.StatusCode);
        Assert.Contains("5.7.1", e2.Message);

        var trusted = Mail.NewToken("relayed");
        var watch = Stopwatch.StartNew();
        Mail.Send(A, Mail.Message(trusted, outside), from: MailCluster.TrustedClient);
        Assert.True(Cluster.Eventually(() => f.RelayHost.With(trusted).Count > 0, TimeSpan.FromSeconds(15)), "the relay host never got the message");
        output.WriteLine($"The trusted client's message reached the relay host after {watch.ElapsedMilliseconds} ms.");
        var relayed = Assert.Single(f.RelayHost.With(trusted));
        Assert.Equal([outside], relayed.Recipients);
        Assert.Equal(Mail.Sender, relayed.MailFrom);
        Assert.Contains($"by {A.ServerName} with ESMTP", Mail.ReceivedHeaders(relayed.Data)[0]);
        Assert.Contains("from client.test ([127.0.0.8])", Mail.ReceivedHeaders(relayed.Data)[0]);
        Assert.Empty(f.RelayHost.With(refused));
        Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void A_relay_host_that_refuses_MAIL_FROM_for_now_gets_the_message_again_later_and_nothing_bounces()
    {
        // A temporary refusal of the sender (452 at MAIL FROM) must defer the message. With PIPELINING the RCPT TO
        // behind it is answered "503 MAIL first": that is not the recipient's answer and must not bounce it.
        const string outside = "later@elsewhere.test";
        var before = A.Counters();
        int refusedBefore = f.RelayHost.MailFromRefused;
        var token = Mail.NewToken("later");
        f.RelayHost.MailFromReply = "452 4.3.1 Insufficient system storage";
        try
        {
            Mail.Send(A, Mail.Message(token, outside), from: MailCluster.TrustedClient);
            // Three attempts refused by the relay host and recorded by A as deferrals.
            Assert.True(Cluster.Eventually(() => f.RelayHost.MailFromRefused >= refusedBefore + 3
                                                 && A.Counters()["DeferredRecipients"] >= before["DeferredRecipients"] + 3, TimeSpan.FromSeconds(15)),
                $"the relay host was asked {f.RelayHost.MailFromRefused - refusedBefore} times");
            var during = A.Counters();
            Assert.Equal(before["FailedRecipients"], during["FailedRecipients"]);
            Assert.Equal(before["BouncesQueued"], during["BouncesQueued"]);
            Assert.True(A.QueueCount() >= 1, "the message left A's queue although the relay host never took it");
        }
        finally
        {
            f.RelayHost.MailFromReply = null;
        }
        Assert.True(Cluster.Eventually(() => f.RelayHost.With(token).Count > 0, TimeSpan.FromSeconds(15)), "the relay host never got the message");
        Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)), "A's queue did not drain");
        Assert.Equal([outside], Assert.Single(f.RelayHost.With(token)).Recipients);
        var after = A.Counters();
        Assert.Equal(before["FailedRecipients"], after["FailedRecipients"]);
        Assert.Equal(before["BouncesQueued"], after["BouncesQueued"]);
    }

    [Fact]
    public void A_message_over_the_size_limit_is_refused_with_552_and_a_small_one_still_passes()
    {
        // B was given -MaxMessageBytes 2048 with Set-DomainShareConfig; its EHLO says so.
        Assert.Equal(MailCluster.SmallLimit, AnnouncedSize(B));

        var small = Mail.NewToken("small");
        Mail.Send(B, Mail.Message(small, MailCluster.Bob));

        // MailKit announces the size in MAIL FROM (SIZE=): refused before any data is sent.
        var big = Mail.NewToken("big");
        var message = Mail.Message(big, new[] { MailCluster.Bob }, bodyBytes: 10 * 1024);
        var e = Mail.Refused(B, message);
        Assert.Equal(552, (int)e.StatusCode);
        Assert.Contains("5.3.4", e.Message);

        // A client that does not say the size is read to the end and refused after the data.
        Assert.StartsWith("552 5.3.4", RawSmtp(B, MailCluster.Bob, message.ToString()));

        // The same 10 KB through A, for a user of B: A takes it (its limit is the default), B refuses it for good, so A
        // bounces it to the sender (client.test, not hosted: through A's relay host) instead of keeping it.
        var forwarded = Mail.NewToken("bigfwd");
        Mail.Send(A, Mail.Message(forwarded, new[] { MailCluster.Bob }, bodyBytes: 10 * 1024));
        Assert.True(Cluster.Eventually(() => f.RelayHost.With(forwarded).Count > 0, TimeSpan.FromSeconds(15)), "no bounce reached the relay host");
        var bounce = Assert.Single(f.RelayHost.With(forwarded));
        output.WriteLine($"Bounce: MAIL FROM:<{bounce.MailFrom}> to {string.Join(", ", bounce.Recipients)}\n{bounce.Data[..Math.Min(3000, bounce.Data.Length)]}");
        Assert.Equal("", bounce.MailFrom); // a bounce has the null reverse path
        Assert.Equal([Mail.Sender], bounce.Recipients);
        Assert.Contains("552 5.3.4", bounce.Data); // B's own reason, not the "503 MAIL first" its pipelined RCPT got
        Assert.DoesNotContain("503 5.5.1", bounce.Data);
        Assert.Contains(MailCluster.Bob, bounce.Data);
        Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)), "A's queue did not drain");

        Mail.AwaitDelivery(f.MaildirOf(MailCluster.Bob), small);
        Assert.Empty(Mail.Delivered(f.MaildirOf(MailCluster.Bob), big));
        Assert.Empty(Mail.Delivered(f.MaildirOf(MailCluster.Bob), forwarded));
    }

    [Fact]
    public void A_down_peer_defers_uncached_addresses_with_451_and_keeps_mail_for_a_cached_one_queued_until_it_is_back()
    {
        // A learns where cora lives while C is up (the cache is shared by the cmdlets and the relay), then C stops.
        var run = f.Cluster.Invoke($"Resolve-DomainShareAddress {MailCluster.Cora} {A.Cfg}", $"Stop-DomainShareRelay {C.Cfg}").AssertSuccess();
        var resolution = run.Single<Resolution>();
        Assert.True(resolution.Result == "Peer" && resolution.Peer == C.PeerName, resolution.ToString());
        try
        {
            // Never asked before (cleo), or nowhere at all: no peer may be ignored, so it is a temporary failure.
            foreach (var address in new[] { MailCluster.Cleo, "nobody-while-c-is-down@example.com" })
            {
                var watch = Stopwatch.StartNew();
                var e = Mail.Refused(A, Mail.Message(Mail.NewToken("uncached"), address), expectLookupFailure: true);
                output.WriteLine($"RCPT TO:<{address}> with C down: {(int)e.StatusCode} {e.Message} after {watch.ElapsedMilliseconds} ms.");
                Assert.Equal(SmtpErrorCode.RecipientNotAccepted, e.ErrorCode);
                Assert.Equal(451, (int)e.StatusCode);
                Assert.Contains("4.4.3", e.Message);
            }

            // Cached: accepted, and it waits on A for C. The keep-queued option is on (the default) and A has a relay
            // host: it must not be used, however many attempts fail.
            long deferredBefore = A.Counters()["DeferredRecipients"];
            var token = Mail.NewToken("waits");
            var sent = Stopwatch.StartNew();
            Mail.Send(A, Mail.Message(token, MailCluster.Cora));
            Assert.True(Cluster.Eventually(() => A.Counters()["DeferredRecipients"] >= deferredBefore + 8, TimeSpan.FromSeconds(20)),
                "A did not retry the message for C 8 times");
            output.WriteLine($"8 failed attempts to C after {sent.ElapsedMilliseconds} ms; nothing went to the relay host.");
            Assert.Empty(f.RelayHost.With(token));

            // What the administrator sees; then C comes back and A is asked to retry now (one host process for the three).
            var back = Stopwatch.StartNew();
            var run2 = f.Cluster.InvokeStarting(C,
                $"Get-DomainShareQueue -Address {MailCluster.Cora} {A.Cfg}",
                $"Start-DomainShareRelay {C.Cfg}",
                $"Resume-DomainShareQueue {A.Cfg}");
            var entry = Assert.Single(run2.OfKind<QueueEntry>("Destinations"));
            output.WriteLine($"Get-DomainShareQueue on A: {entry}");
            Assert.Equal([MailCluster.Cora], entry.Recipients);
            Assert.Equal([C.PeerName], entry.Destinations);
            Assert.True(entry.Attempts > 6, entry.ToString()); // more than PeerAttemptsBeforeRelayHost: still for C
            Assert.Contains(C.PeerName, entry.LastError);
            Assert.Equal(Mail.Sender, entry.From);

            var stored = Assert.Single(Mail.AwaitDelivery(f.MaildirOf(MailCluster.Cora), token));
            output.WriteLine($"In cora's Maildir on C {back.ElapsedMilliseconds} ms after Get-DomainShareQueue, Start-DomainShareRelay and Resume-DomainShareQueue began.");
            Assert.Contains($"by {A.ServerName}", stored);
            Assert.Contains($"by {C.ServerName}", stored);
            Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)), "A's queue did not drain");
            Assert.Single(Mail.Delivered(f.MaildirOf(MailCluster.Cora), token));
            Assert.Empty(f.RelayHost.With(token));
        }
        finally
        {
            EnsureRunning(C);
        }
    }

    [Fact]
    public void With_keep_queued_off_mail_for_an_unreachable_peer_goes_to_the_relay_host_after_the_peer_retries()
    {
        // C's SMTP cannot be reached from A (A's peer entry now names a port where nothing listens), while C still
        // answers Minger: every delivery attempt to C fails, as with a down peer, and cora's address still resolves.
        int closed = Loopback.FreeTcpPort(C.Address);
        f.Cluster.Invoke(
            $"Set-DomainSharePeer {C.PeerName} -SmtpPort {closed} {A.Cfg}",
            $"Set-DomainShareConfig -KeepQueuedOnDeliveryError $false {A.Cfg}").AssertSuccess();
        try
        {
            A.AwaitReload();
            long deferredBefore = A.Counters()["DeferredRecipients"];
            var token = Mail.NewToken("fallback");
            var watch = Stopwatch.StartNew();
            Mail.Send(A, Mail.Message(token, MailCluster.Cora));
            Assert.True(Cluster.Eventually(() => f.RelayHost.With(token).Count > 0, TimeSpan.FromSeconds(25)), "the relay host never got the message");
            long deferred = A.Counters()["DeferredRecipients"] - deferredBefore;
            output.WriteLine($"Handed to the relay host {watch.ElapsedMilliseconds} ms after the 250, after {deferred} failed attempts to C.");
            // DeliveryAgentOptions.PeerAttemptsBeforeRelayHost (6, not configurable) attempts to C first.
            Assert.True(deferred >= 6, $"only {deferred} attempts to C before the relay host");
            var relayed = Assert.Single(f.RelayHost.With(token));
            Assert.Equal([MailCluster.Cora], relayed.Recipients);
            Assert.Equal(Mail.Sender, relayed.MailFrom);
            Assert.True(Cluster.Eventually(() => A.QueueCount() == 0, TimeSpan.FromSeconds(10)), "A's queue did not drain");
            Assert.Empty(Mail.Delivered(f.MaildirOf(MailCluster.Cora), token));
        }
        finally
        {
            f.Cluster.Invoke(
                $"Set-DomainShareConfig -KeepQueuedOnDeliveryError $true {A.Cfg}",
                $"Set-DomainSharePeer {C.PeerName} -SmtpPort {C.SmtpPort} {A.Cfg}").AssertSuccess();
            A.AwaitReload();
        }
    }

    private void EnsureRunning(Server server)
    {
        if (server.State is { } state && Cluster.IsAlive(state.ProcessId, server.ConfigPath)) return;
        f.Cluster.Start(server);
    }

    /// <summary>The SIZE the server announces in its EHLO answer.</summary>
    private static long AnnouncedSize(Server server)
    {
        using var client = Mail.Connect(server);
        long size = client.MaxSize;
        client.Disconnect(quit: true);
        return size;
    }

    /// <summary>EHLO, MAIL FROM (no SIZE), RCPT TO, DATA with <paramref name="content"/>; returns the reply to the final dot.</summary>
    private static string RawSmtp(Server server, string to, string content)
    {
        using var smtp = RawSmtpClient.Connect(server);
        Assert.StartsWith("220", smtp.ReadReply().Last);
        Assert.StartsWith("250", smtp.Command("EHLO raw.test").Last);
        Assert.StartsWith("250", smtp.Command($"MAIL FROM:<{Mail.Sender}>").Last);
        Assert.StartsWith("250", smtp.Command($"RCPT TO:<{to}>").Last);
        Assert.StartsWith("354", smtp.Command("DATA").Last);
        var final = smtp.Data(content).Last;
        smtp.Send("QUIT\r\n");
        return final;
    }
}
