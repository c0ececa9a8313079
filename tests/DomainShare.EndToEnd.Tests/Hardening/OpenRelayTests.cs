using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// Issue 7, "Open relay": one real relay hosting example.com (shared) and bücher.example, with accounts made by
/// New-DomainShareAccount, a relay host (an <see cref="SmtpSink"/>, where anything wrongly relayed would show) and a
/// trusted network that is not the test client's address. From an untrusted loopback address, over a raw socket (so
/// that exactly the bytes of each trick are sent, including ones MailKit refuses to send), the classic relay tricks are
/// tried one session each: outside domains, the <c>%</c> hack, <c>!</c> paths, source routes, quoted local parts with
/// <c>@</c>, trailing dots, address literals, names that start with a hosted domain, Unicode lookalikes and other
/// spellings of a hosted domain, null and local-looking senders, broken RCPT syntax and line injection. Not one recipient
/// may be accepted; each reply is checked against the rule that should refuse it. Controls show that the test can
/// fail: the local users are accepted and delivered from the same untrusted address, and the trusted network does relay
/// through the relay host. The battery is small: the quick size (plain <c>dotnet test</c>) is the full size.
/// </summary>
public sealed class OpenRelayTests(ITestOutputHelper output) : IDisposable
{
    private const string Area = "Open relay";
    private const string Alice = "alice@example.com";
    private const string IdnDomain = "bücher.example";
    private const string Jorg = "jörg@" + IdnDomain;
    private const string Outside = "alice@outside.test";
    private const string Sender = "MAIL FROM:<tester@client.test>";
    private const string Utf8Sender = "MAIL FROM:<tester@client.test> SMTPUTF8";

    private readonly Cluster cluster = new("openrelay");
    private readonly SmtpSink relayHost = new();

    public void Dispose()
    {
        cluster.KillRelays();
        cluster.Dispose();
        relayHost.Dispose();
    }

    /// <summary>One trick: the MAIL and RCPT command lines exactly as sent (CRLF added), and the reply that should refuse it.</summary>
    private sealed record Trick(string Name, string Mail, string Rcpt, string Expected);

    /// <summary>
    /// The tricks. <paramref name="self"/> is the relay's own address, for its address literal. Expected replies:
    /// 550 5.7.1 (the domain is not hosted: relaying denied), 550 5.1.1 (a hosted domain, no such mailbox: the local part
    /// is taken literally, never rewritten), 501 5.1.3 (not an address), 501 5.5.4 / 555 5.5.4 (not RCPT syntax),
    /// 553 5.6.7 (UTF-8 without SMTPUTF8), 500 5.5.2 (a control character or a bare LF in the line).
    /// </summary>
    private static List<Trick> Tricks(IPAddress self) =>
    [
        // Plain relaying, in every case and with every sender.
        new("outside domain", Sender, $"RCPT TO:<{Outside}>", "550 5.7.1"),
        new("outside domain in upper case", Sender, "RCPT TO:<ALICE@OUTSIDE.TEST>", "550 5.7.1"),
        new("lower-case verbs", "mail from:<tester@client.test>", $"rcpt to:<{Outside}>", "550 5.7.1"),
        new("space before the path", "MAIL FROM: <tester@client.test>", $"RCPT TO: <{Outside}>", "550 5.7.1"),
        new("postmaster of an outside domain", Sender, "RCPT TO:<postmaster@outside.test>", "550 5.7.1"),
        new("null sender to an outside domain", "MAIL FROM:<>", $"RCPT TO:<{Outside}>", "550 5.7.1"),
        new("local sender to an outside domain", $"MAIL FROM:<{Alice}>", $"RCPT TO:<{Outside}>", "550 5.7.1"),
        new("local sender with ESMTP parameters", $"MAIL FROM:<{Alice}> SMTPUTF8 BODY=8BITMIME SIZE=100", $"RCPT TO:<{Outside}>", "550 5.7.1"),
        new("outside sender to an outside domain", $"MAIL FROM:<{Outside}>", "RCPT TO:<bob@outside.test>", "550 5.7.1"),
        // The % hack and ! (UUCP) paths: the local part is a name, never a route.
        new("% hack", Sender, "RCPT TO:<alice%outside.test@example.com>", "550 5.1.1"),
        new("% hack, two hops", Sender, "RCPT TO:<alice%outside.test%example.com@example.com>", "550 5.1.1"),
        new("% hack with a null sender", "MAIL FROM:<>", "RCPT TO:<alice%outside.test@example.com>", "550 5.1.1"),
        new("% hack with the hosted domain inside", Sender, "RCPT TO:<alice%example.com@outside.test>", "550 5.7.1"),
        new("! path in the local part", Sender, "RCPT TO:<outside.test!alice@example.com>", "550 5.1.1"),
        new("! path and % hack", Sender, "RCPT TO:<outside.test!alice%example.com@example.com>", "550 5.1.1"),
        new("! path with the hosted domain first", Sender, "RCPT TO:<example.com!alice@outside.test>", "550 5.7.1"),
        new("! path after the domain", Sender, "RCPT TO:<alice@example.com!outside.test>", "501 5.1.3"),
        new("two @", Sender, "RCPT TO:<alice@outside.test@example.com>", "501 5.1.3"),
        // Quoted local parts.
        new("quoted local part with @", Sender, "RCPT TO:<\"alice@outside.test\"@example.com>", "550 5.1.1"),
        new("quoted local part with an escaped @", Sender, "RCPT TO:<\"alice\\@outside.test\"@example.com>", "550 5.1.1"),
        new("quoted local part with %", Sender, "RCPT TO:<\"alice%outside.test\"@example.com>", "550 5.1.1"),
        new("quoted source route", Sender, "RCPT TO:<\"@example.com:alice\"@outside.test>", "550 5.7.1"),
        // Source routes (RFC 5321 §4.1.1.3: the route is dropped, the mailbox decides).
        new("source route through us", Sender, $"RCPT TO:<@example.com:{Outside}>", "550 5.7.1"),
        new("source route, two hops", Sender, $"RCPT TO:<@example.com,@outside.test:{Outside}>", "550 5.7.1"),
        new("source route with a null sender", "MAIL FROM:<>", "RCPT TO:<@example.com:postmaster@outside.test>", "550 5.7.1"),
        // Trailing dots and address literals.
        new("trailing dot, outside domain", Sender, "RCPT TO:<alice@outside.test.>", "501 5.1.3"),
        new("trailing dot, hosted domain", Sender, "RCPT TO:<alice@example.com.>", "501 5.1.3"),
        new("IPv4 literal", Sender, "RCPT TO:<alice@[127.0.0.1]>", "550 5.7.1"),
        new("the relay's own IPv4 literal", Sender, $"RCPT TO:<alice@[{self}]>", "550 5.7.1"),
        new("IPv6 literal", Sender, "RCPT TO:<alice@[IPv6:::1]>", "550 5.7.1"),
        new("hosted name in brackets", Sender, "RCPT TO:<alice@[example.com]>", "550 5.7.1"),
        // Names built around a hosted domain.
        new("hosted domain as a prefix", Sender, "RCPT TO:<alice@example.com.outside.test>", "550 5.7.1"),
        new("hosted domain as an upper-case prefix", Sender, "RCPT TO:<alice@EXAMPLE.COM.outside.test>", "550 5.7.1"),
        new("sub-domain of a hosted domain", Sender, "RCPT TO:<alice@mail.example.com>", "550 5.7.1"),
        new("hosted domain glued to another", Sender, "RCPT TO:<alice@notexample.com>", "550 5.7.1"),
        new("hosted domain with a hyphen prefix", Sender, "RCPT TO:<alice@outside-example.com>", "550 5.7.1"),
        // Unicode lookalikes: other domains, so relaying.
        new("Cyrillic е for e", Utf8Sender, "RCPT TO:<alice@еxample.com>", "550 5.7.1"),
        new("Cyrillic а for a", Utf8Sender, "RCPT TO:<alice@exаmple.com>", "550 5.7.1"),
        new("Cyrillic о in the top-level domain", Utf8Sender, "RCPT TO:<alice@example.cоm>", "550 5.7.1"),
        new("dotless ı for l", Utf8Sender, "RCPT TO:<alice@exampıe.com>", "550 5.7.1"),
        new("A-label of the Cyrillic е lookalike", Sender, "RCPT TO:<alice@xn--xample-2of.com>", "550 5.7.1"),
        new("A-label of the Cyrillic а lookalike", Sender, "RCPT TO:<alice@xn--exmple-4nf.com>", "550 5.7.1"),
        new("ű for ü in an IDN domain", Utf8Sender, "RCPT TO:<jörg@bűcher.example>", "550 5.7.1"),
        new("A-label of the ű lookalike", Utf8Sender, "RCPT TO:<jörg@xn--bcher-mgb.example>", "550 5.7.1"),
        new("lookalike without SMTPUTF8", Sender, "RCPT TO:<alice@еxample.com>", "553 5.6.7"),
        // Spellings that only IDNA's mapping of typed input turns into a hosted domain: not a name on the wire.
        new("full-width letters", Utf8Sender, "RCPT TO:<alice@ｅｘａｍｐｌｅ.com>", "501 5.1.3"),
        new("full-width letters and full stop", Utf8Sender, "RCPT TO:<alice@ＥＸＡＭＰＬＥ．ＣＯＭ>", "501 5.1.3"),
        new("one full-width letter", Utf8Sender, "RCPT TO:<alice@ｅxample.com>", "501 5.1.3"),
        new("full-width letters in an IDN domain", Utf8Sender, "RCPT TO:<jörg@ｂüｃｈｅｒ.example>", "501 5.1.3"),
        new("ideographic full stop as the dot", Utf8Sender, "RCPT TO:<alice@example。com>", "501 5.1.3"),
        new("half-width ideographic full stop as the dot", Utf8Sender, "RCPT TO:<alice@example｡com>", "501 5.1.3"),
        new("trailing ideographic full stop", Utf8Sender, "RCPT TO:<alice@example.com。>", "501 5.1.3"),
        new("script ℯ for e", Utf8Sender, "RCPT TO:<alice@ℯxample.com>", "501 5.1.3"),
        new("zero-width joiner inside the domain", Utf8Sender, "RCPT TO:<alice@exa\u200Dmple.com>", "501 5.1.3"),
        new("zero-width non-joiner inside the domain", Utf8Sender, "RCPT TO:<alice@exa\u200Cmple.com>", "501 5.1.3"),
        new("zero-width space after the domain", Utf8Sender, "RCPT TO:<alice@example.com\u200B>", "501 5.1.3"),
        new("soft hyphen inside the domain", Utf8Sender, "RCPT TO:<alice@exam\u00ADple.com>", "501 5.1.3"),
        new("A-label of the full-width name", Sender, "RCPT TO:<alice@xn--mi7chab1aes7c.com>", "501 5.1.3"),
        new("one-dot leader as the dot", Utf8Sender, "RCPT TO:<alice@example\u2024com>", "501 5.1.3"),
        // Broken RCPT syntax: parameters, garbage, two paths, no brackets, an over-long local part.
        new("no angle brackets", Sender, $"RCPT TO:{Outside}", "501 5.5.4"),
        new("no angle brackets, after a space", Sender, $"RCPT TO: {Outside}", "501 5.5.4"),
        new("a DSN parameter (not offered)", Sender, $"RCPT TO:<{Outside}> NOTIFY=NEVER", "555 5.5.4"),
        new("garbage after the path", Sender, $"RCPT TO:<{Outside}>garbage", "501 5.5.4"),
        new("a second path after a space", Sender, $"RCPT TO:<{Outside}> <{Alice}>", "555 5.5.4"),
        new("a second path after a comma", Sender, $"RCPT TO:<{Alice}>,<{Outside}>", "501 5.5.4"),
        new("over-long local part with a % hack", Sender, $"RCPT TO:<{new string('a', 60)}%outside.test@example.com>", "501 5.1.3"),
        // Line injection: a NUL (C string truncation), a bare CR, a bare LF.
        new("NUL before a hosted domain", Sender, "RCPT TO:<alice@outside.test\0@example.com>", "500 5.5.2"),
        new("bare CR before a second RCPT", Sender, $"RCPT TO:<{Alice}>\rRCPT TO:<{Outside}>", "500 5.5.2"),
        new("bare LF before a second RCPT", Sender, $"RCPT TO:<{Alice}>\nRCPT TO:<{Outside}>", "500 5.5.2 + 550 5.7.1"),
    ];

    [Fact]
    public void No_relay_trick_from_an_untrusted_source_gets_a_recipient_accepted_while_local_users_and_the_trusted_network_still_work()
    {
        var total = Stopwatch.StartNew();
        var untrusted = Loopback.NextAddress();
        var trusted = Loopback.NextAddress();
        var server = cluster.Add("relay");
        var accounts = cluster.SetUpAndStart([server],
            configure:
            [
                $"Add-DomainShareDomain {IdnDomain} -Shared {server.Cfg}",
                $"Set-DomainShareConfig -RelayHost {relayHost.HostPort} -TrustedNetwork {trusted}/32 -QueueRetryInterval 500ms -QueueMaxRetryInterval 500ms {server.Cfg}",
            ],
            afterStart: [server.NewAccountScript(Alice), server.NewAccountScript(Jorg)])
            .OfKind<MailAccount>("Maildir").ToDictionary(a => a.Address, a => a.Maildir, StringComparer.OrdinalIgnoreCase);
        Assert.Equal(2, accounts.Count);
        output.WriteLine($"Relay {server} up with {string.Join(", ", accounts.Keys)} after {total.Elapsed.TotalSeconds:0.0} s; client {untrusted} (untrusted), trusted network {trusted}/32, relay host {relayHost.HostPort}.");

        // ---- the tricks, from the untrusted address ----
        var tricks = Tricks(server.Address);
        var results = new List<(Trick Trick, string Mail, string Replies, bool Accepted, string? Data)>();
        var watch = Stopwatch.StartNew();
        foreach (var trick in tricks)
        {
            var token = Mail.NewToken("trick");
            using var smtp = RawSmtp.Open(server, untrusted);
            var (mail, replies, accepted, data) = smtp.Transaction(trick.Mail, trick.Rcpt, token);
            results.Add((trick, mail, replies, accepted, data));
            output.WriteLine($"{(accepted ? "ACCEPTED" : "refused ")} {trick.Name}: {Show(trick.Mail)} → {mail} | {Show(trick.Rcpt)} → {replies}{(data is null ? "" : $" | DATA → {data}")}");
        }
        var tricksTime = watch.Elapsed;

        // Nothing may be queued or relayed because of them (a wrongly accepted trick would be in the queue or at the sink now).
        bool drained = Cluster.Eventually(() => server.QueueCount() == 0, TimeSpan.FromSeconds(15));
        var relayedByTricks = relayHost.Messages.ToList();

        // ---- controls from the same untrusted address: the test can fail ----
        var controls = new List<string>();
        var localToken = Mail.NewToken("local");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("local user", smtp.Transaction(Sender, $"RCPT TO:<{Alice}>", localToken), accounts[Alice], localToken));
        var caseToken = Mail.NewToken("case");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("local user in upper case", smtp.Transaction("MAIL FROM:<>", "RCPT TO:<ALICE@EXAMPLE.COM>", caseToken), accounts[Alice], caseToken));
        var idnToken = Mail.NewToken("idn");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("IDN user (U-label)", smtp.Transaction(Utf8Sender, $"RCPT TO:<{Jorg}>", idnToken), accounts[Jorg], idnToken));
        var upperIdnToken = Mail.NewToken("idnupper");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("IDN user, domain in upper case", smtp.Transaction(Utf8Sender, "RCPT TO:<jörg@BÜCHER.EXAMPLE>", upperIdnToken), accounts[Jorg], upperIdnToken));
        var aLabelToken = Mail.NewToken("alabel");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("IDN user, domain as an A-label", smtp.Transaction(Utf8Sender, "RCPT TO:<jörg@xn--bcher-kva.example>", aLabelToken), accounts[Jorg], aLabelToken));
        // RFC 5321 §4.1.1.3: a source route is dropped, not followed: the mailbox is ours, so it is delivered here.
        var routeToken = Mail.NewToken("route");
        using (var smtp = RawSmtp.Open(server, untrusted))
            controls.Add(Control("source route through an outside host to a local user", smtp.Transaction(Sender, $"RCPT TO:<@outside.test:{Alice}>", routeToken), accounts[Alice], routeToken));
        // A transaction with a local recipient and a refused outside one: only the local copy exists afterwards.
        var mixedToken = Mail.NewToken("mixed");
        using (var smtp = RawSmtp.Open(server, untrusted))
        {
            var (mail, replies, accepted, data) = smtp.Transaction(Sender, $"RCPT TO:<{Alice}>\r\nRCPT TO:<{Outside}>", mixedToken);
            output.WriteLine($"control mixed transaction: {mail} | {replies} | DATA → {data}");
            Assert.True(accepted && Codes(replies) == "250 2.1.5 + 550 5.7.1",
                $"local then outside recipient in one transaction: {replies}");
            Assert.StartsWith("250 2.0.0", data);
            Assert.Single(Mail.AwaitDelivery(accounts[Alice], mixedToken));
            controls.Add("mixed transaction: local copy delivered, outside recipient refused");
        }

        // ---- control from the trusted network: the relay host path works, so the sink would have shown a relayed trick ----
        Assert.True(drained, $"the queue still holds {server.QueueCount()} message(s) after the tricks");
        Assert.True(relayedByTricks.Count == 0, $"the relay host got {relayedByTricks.Count} message(s) while the tricks ran: "
            + string.Join("; ", relayedByTricks.Select(m => $"<{m.MailFrom}> → {string.Join(", ", m.Recipients)}")));
        var trustedToken = Mail.NewToken("trusted");
        using (var smtp = RawSmtp.Open(server, trusted))
        {
            var (mail, replies, accepted, data) = smtp.Transaction(Sender, $"RCPT TO:<{Outside}>", trustedToken);
            output.WriteLine($"control trusted network: {mail} | {replies} | DATA → {data}");
            Assert.True(accepted, $"the trusted network was refused: {replies}");
            Assert.StartsWith("250 2.0.0", data);
        }
        Assert.True(Cluster.Eventually(() => relayHost.With(trustedToken).Count > 0, TimeSpan.FromSeconds(15)), "the trusted client's message never reached the relay host");
        Assert.Equal([Outside], Assert.Single(relayHost.With(trustedToken)).Recipients);
        controls.Add("trusted network: relayed to the relay host");
        Assert.True(Cluster.Eventually(() => server.QueueCount() == 0, TimeSpan.FromSeconds(15)), $"the queue still holds {server.QueueCount()} message(s) at the end");

        // ---- verdict ----
        var acceptedTricks = results.Where(r => r.Accepted).ToList();
        var wrong = results.Where(r => !r.Accepted && Codes(r.Replies) != r.Trick.Expected).ToList();
        var distribution = results.GroupBy(r => r.Accepted ? "ACCEPTED" : Codes(r.Replies)).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => $"{g.Key} ×{g.Count()}");
        var tricksAtRelayHost = relayHost.Messages.Count(m => !m.Data.Contains(trustedToken, StringComparison.Ordinal));
        output.WriteLine($"{tricks.Count} tricks in {tricksTime.TotalSeconds:0.0} s, {controls.Count} controls ({string.Join("; ", controls)}), total {total.Elapsed.TotalSeconds:0.0} s.");
        Figures.Record(output, Area, "classic relay tricks tried from an untrusted source", "≥ 15", tricks.Count.ToString(CultureInfo.InvariantCulture));
        Figures.Record(output, Area, "tricks whose recipient was accepted (250)", "0", acceptedTricks.Count.ToString(CultureInfo.InvariantCulture));
        Figures.Record(output, Area, "replies to the tricks' RCPT TO", "5xx only", string.Join(", ", distribution));
        Figures.Record(output, Area, "tricks' messages at the relay host / in the queue", "0 / 0", $"{tricksAtRelayHost} / {(drained ? 0 : server.QueueCount())}");
        Figures.Record(output, Area, "controls accepted and delivered (local and IDN users, route dropped, mixed transaction, trusted network)", "all", $"{controls.Count} of {controls.Count}");

        Assert.True(acceptedTricks.Count == 0, $"{acceptedTricks.Count} trick(s) accepted from an untrusted source:\n"
            + string.Join("\n", acceptedTricks.Select(r => $"{r.Trick.Name}: {Show(r.Trick.Rcpt)} → {r.Replies}, DATA → {r.Data}")));
        Assert.True(wrong.Count == 0, $"{wrong.Count} trick(s) refused with another reply than expected:\n"
            + string.Join("\n", wrong.Select(r => $"{r.Trick.Name}: {Show(r.Trick.Mail)} → {r.Mail} | {Show(r.Trick.Rcpt)} → {r.Replies}, expected {r.Trick.Expected}")));
        Assert.Equal(0, tricksAtRelayHost);
    }

    /// <summary>A control transaction must be accepted (250 to RCPT and to the end of DATA) and land in <paramref name="maildir"/>.</summary>
    private string Control(string name, (string Mail, string Replies, bool Accepted, string? Data) result, string maildir, string token)
    {
        output.WriteLine($"control {name}: {result.Mail} | {result.Replies} | DATA → {result.Data}");
        Assert.True(result.Accepted, $"control '{name}' was refused: MAIL → {result.Mail}, RCPT → {result.Replies}");
        Assert.True(result.Data?.StartsWith("250 2.0.0", StringComparison.Ordinal) == true, $"control '{name}': DATA → {result.Data}");
        Assert.Single(Mail.AwaitDelivery(maildir, token));
        return $"{name}: delivered";
    }

    /// <summary>The reply codes of a reply list ("550 5.7.1 Relaying denied | 500 ..." → "550 5.7.1 + 500 ...").</summary>
    private static string Codes(string replies)
        => string.Join(" + ", replies.Split(" | ").Select(r => string.Join(' ', r.Split(' ').Take(2))));

    /// <summary>A command line with its control and invisible characters made visible, for the test output.</summary>
    private static string Show(string line)
    {
        var text = new StringBuilder(line.Length);
        foreach (var rune in line.EnumerateRunes())
        {
            if (rune.Value < 0x20 || rune.Value == 0x7F || Rune.GetUnicodeCategory(rune) is UnicodeCategory.Format)
                text.Append($"\\u{rune.Value:X4}");
            else
                text.Append(rune.ToString());
        }
        return text.ToString();
    }

    /// <summary>
    /// A session from a chosen loopback address over <see cref="RawSmtpClient"/>: it sends exactly the bytes it is given
    /// (UTF-8, CRLF added) and reads the replies (the last line of each), bounded by a 10 s receive timeout.
    /// </summary>
    private sealed class RawSmtp : IDisposable
    {
        private readonly RawSmtpClient client;

        private RawSmtp(RawSmtpClient client) => this.client = client;

        public static RawSmtp Open(Server server, IPAddress from)
        {
            var smtp = new RawSmtp(RawSmtpClient.Connect(server, from));
            try
            {
                var greeting = smtp.client.ReadReply().Last;
                Assert.True(greeting.StartsWith("220", StringComparison.Ordinal), $"greeting: {greeting}");
                var ehlo = smtp.Command("EHLO client.test");
                Assert.True(ehlo.StartsWith("250", StringComparison.Ordinal), $"EHLO: {ehlo}");
                return smtp;
            }
            catch
            {
                smtp.Dispose();
                throw;
            }
        }

        /// <summary>
        /// MAIL, then the RCPT text (which may hold several lines, or bare CR/LF: one reply per LF sent), then, if any
        /// reply to it was 2xx, DATA with a small message carrying <paramref name="token"/>, then QUIT.
        /// </summary>
        public (string Mail, string Replies, bool Accepted, string? Data) Transaction(string mailLine, string rcptText, string token)
        {
            var mail = Command(mailLine);
            var text = rcptText + "\r\n";
            client.Send(text);
            var replies = new List<string>();
            for (int i = text.Count(c => c == '\n'); i > 0; i--)
            {
                var reply = client.TryReadReply();
                if (reply is null) { replies.Add("(connection closed)"); break; }
                replies.Add(reply.Last);
            }
            bool accepted = replies.Any(r => r.StartsWith('2'));
            string? data = null;
            if (accepted)
            {
                var dataReply = Command("DATA");
                if (dataReply.StartsWith("354", StringComparison.Ordinal))
                {
                    client.Send($"From: <tester@client.test>\r\nTo: <{Outside}>\r\nSubject: Test {token}\r\nMessage-ID: <{token}@client.test>\r\n\r\nBody of {token}.\r\n.\r\n");
                    data = client.TryReadReply()?.Last ?? "(connection closed)";
                }
                else data = dataReply;
            }
            try { Command("QUIT"); }
            catch (Exception e) when (e is IOException or SocketException) { }
            return (mail, string.Join(" | ", replies), accepted, data);
        }

        /// <summary>Sends <paramref name="line"/> and CRLF; the last line of the reply, or "(connection closed)".</summary>
        private string Command(string line)
        {
            client.Send(line + "\r\n");
            return client.TryReadReply()?.Last ?? "(connection closed)";
        }

        public void Dispose() => client.Dispose();
    }
}
