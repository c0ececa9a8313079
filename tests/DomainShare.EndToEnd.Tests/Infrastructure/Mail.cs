using System.Diagnostics;
using System.Net;
using System.Text.Json;
using DomainShare.Engine.Relay;
using MailKit.Net.Smtp;
using MimeKit;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Real SMTP against the relays of a <see cref="Cluster"/>, with MailKit's <see cref="SmtpClient"/> as the client, and
/// the places mail ends up: Maildirs (<c>new/</c>), the queue (Get-DomainShareQueue) and a relay host (<see cref="SmtpSink"/>).
/// Every message carries a unique token in its Subject, Message-ID and body, so a test finds exactly its own mail.
/// </summary>
public static class Mail
{
    public const string Sender = "tester@client.test";
    public static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(10);

    private static long sequence;

    /// <summary>A token no other message of this test run has.</summary>
    public static string NewToken(string prefix)
        => $"{prefix}-{Interlocked.Increment(ref sequence)}-{Guid.NewGuid().ToString("N")[..12]}";

    /// <summary>A small text message to <paramref name="to"/>, the token in Subject, Message-ID and body; <paramref name="bodyBytes"/> pads the body.</summary>
    public static MimeMessage Message(string token, IEnumerable<string> to, int bodyBytes = 0)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(Sender));
        foreach (var address in to) message.To.Add(MailboxAddress.Parse(address));
        message.Subject = $"Test {token}";
        message.MessageId = $"{token}@client.test";
        var body = $"Body of {token}.\n";
        if (bodyBytes > body.Length)
        {
            var line = new string('x', 76) + "\n";
            body += string.Concat(Enumerable.Repeat(line, (bodyBytes - body.Length) / line.Length + 1));
        }
        message.Body = new TextPart("plain") { Text = body };
        return message;
    }

    public static MimeMessage Message(string token, params string[] to) => Message(token, (IEnumerable<string>)to);

    /// <summary>A connected client (EHLO done) to <paramref name="server"/>'s SMTP endpoint, from <paramref name="from"/> (127.0.0.1 by default).</summary>
    public static SmtpClient Connect(Server server, IPAddress? from = null, TimeSpan? timeout = null)
    {
        var client = new SmtpClient
        {
            LocalDomain = "client.test",
            Timeout = (int)(timeout ?? ClientTimeout).TotalMilliseconds,
            CheckCertificateRevocation = false,
        };
        if (from is not null) client.LocalEndPoint = new IPEndPoint(from, 0);
        try
        {
            client.Connect(server.Address.ToString(), server.SmtpPort, MailKit.Security.SecureSocketOptions.None);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Sends one message through <paramref name="server"/> and returns the server's final reply text (the 250 to the end
    /// of DATA). A <c>451 4.4.3</c> at RCPT TO (a peer did not answer the lookup within the Minger timeout, which a
    /// loaded test machine can cause) is tried again, twice at most, as a sending server would.
    /// </summary>
    public static string Send(Server server, MimeMessage message, IPAddress? from = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            using var client = Connect(server, from);
            try
            {
                var reply = client.Send(message);
                client.Disconnect(quit: true);
                return reply;
            }
            catch (SmtpCommandException e) when (attempt < 3 && IsLookupFailure(e))
            {
                Thread.Sleep(200);
            }
        }
    }

    /// <summary>
    /// Sends and expects a refusal; returns MailKit's exception (its StatusCode is the server's reply code). Unless
    /// <paramref name="expectLookupFailure"/>, a <c>451 4.4.3</c> is tried again as in <see cref="Send"/>.
    /// </summary>
    public static SmtpCommandException Refused(Server server, MimeMessage message, IPAddress? from = null, bool expectLookupFailure = false)
    {
        for (int attempt = 1; ; attempt++)
        {
            using var client = Connect(server, from);
            var e = Assert.Throws<SmtpCommandException>(() => client.Send(message));
            if (client.IsConnected) client.Disconnect(quit: true);
            if (expectLookupFailure || attempt >= 3 || !IsLookupFailure(e)) return e;
            Thread.Sleep(200);
        }
    }

    private static bool IsLookupFailure(SmtpCommandException e)
        => e.ErrorCode == SmtpErrorCode.RecipientNotAccepted && (int)e.StatusCode == 451 && e.Message.Contains("4.4.3", StringComparison.Ordinal);

    /// <summary>The content of every message in <c>new/</c> of <paramref name="maildir"/> (none when the folder does not exist).</summary>
    public static IReadOnlyList<string> Delivered(string maildir)
    {
        var folder = Path.Combine(maildir, "new");
        if (!Directory.Exists(folder)) return [];
        var texts = new List<string>();
        foreach (var file in Directory.EnumerateFiles(folder))
        {
            try { texts.Add(File.ReadAllText(file)); }
            catch (FileNotFoundException) { } // moved to cur/ by a reader: not here
        }
        return texts;
    }

    /// <summary>The messages in <c>new/</c> of <paramref name="maildir"/> that contain <paramref name="token"/>.</summary>
    public static IReadOnlyList<string> Delivered(string maildir, string token)
        => [.. Delivered(maildir).Where(t => t.Contains(token, StringComparison.Ordinal))];

    /// <summary>Waits (bounded) until <paramref name="maildir"/> holds at least one message with <paramref name="token"/>; returns them all.</summary>
    public static IReadOnlyList<string> AwaitDelivery(string maildir, string token, TimeSpan? within = null)
    {
        IReadOnlyList<string> found = [];
        Cluster.Eventually(() => (found = Delivered(maildir, token)).Count > 0, within ?? TimeSpan.FromSeconds(15));
        Assert.True(found.Count > 0, $"No message with {token} arrived in {maildir} within {(within ?? TimeSpan.FromSeconds(15)).TotalSeconds:0} s.");
        return found;
    }

    /// <summary>The <c>Received:</c> header fields of a stored message, unfolded, in order (ours first).</summary>
    public static IReadOnlyList<string> ReceivedHeaders(string text)
    {
        var message = MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text)));
        return [.. message.Headers.Where(h => h.Id == HeaderId.Received).Select(h => h.Value.ReplaceLineEndings(" "))];
    }
}

/// <summary>Cmdlet scripts and relay handling for servers that exchange mail.</summary>
public static class MailServerExtensions
{
    /// <summary>Adds <paramref name="peer"/> with its own SMTP port (host:port) and Minger port, signed with its secret.</summary>
    public static string MailPeerScript(this Server server, Server peer)
        => $"Add-DomainSharePeer {peer.Address}:{peer.SmtpPort} -MingerPort {peer.MingerPort}"
           + (peer.Secret is null ? "" : $" -Secret '{peer.Secret}'") + $" {server.Cfg}";

    /// <summary>New-DomainShareAccount for <paramref name="address"/> on <paramref name="server"/> (every enabled peer is asked first).</summary>
    public static string NewAccountScript(this Server server, string address) => $"New-DomainShareAccount '{address}' {server.Cfg}";

    /// <summary>The number of messages in the running relay's queue (its QueueMessages counter).</summary>
    public static long QueueCount(this Server server) => server.Counters().TryGetValue("QueueMessages", out var n) ? n : -1;

    /// <summary>
    /// Waits (bounded) until the running relay has loaded the configuration file as it is now: it reads the file every
    /// second, so a change made by a cmdlet applies within about a second. Loaded after the file's last write = applied.
    /// </summary>
    public static void AwaitReload(this Server server, TimeSpan? within = null)
    {
        var written = new DateTimeOffset(File.GetLastWriteTimeUtc(server.ConfigPath), TimeSpan.Zero);
        Assert.True(Cluster.Eventually(() => server.Status().ConfigurationLoaded >= written, within ?? TimeSpan.FromSeconds(10)),
            $"The relay of {server} did not load its configuration written at {written:O} (loaded {server.Status().ConfigurationLoaded:O}).");
    }

    /// <summary>
    /// Runs <paramref name="commands"/> in one host process, one of them Start-DomainShareRelay for <paramref name="server"/>;
    /// the new relay's process id is kept for the clean-up and the relay must run afterwards.
    /// </summary>
    public static ShellRun InvokeStarting(this Cluster cluster, Server server, params string[] commands)
    {
        var run = cluster.Invoke(commands);
        var state = server.State;
        if (state is not null) server.RelayProcessIds.Add(state.ProcessId);
        run.AssertSuccess();
        Assert.True(state is not null && Cluster.IsAlive(state.ProcessId, server.ConfigPath), $"The relay of {server} does not run.\n{run}");
        return run;
    }

    /// <summary>
    /// Sets up and starts <paramref name="servers"/> in one host process (host start-ups are what a test on a busy machine
    /// waits for): their configurations (initialize scripts, then <paramref name="configure"/>), Start-DomainShareRelay for
    /// each, then <paramref name="afterStart"/> (commands that need the relays, such as New-DomainShareAccount). Every
    /// relay must run afterwards; their process ids are kept for the clean-up.
    /// </summary>
    public static ShellRun SetUpAndStart(this Cluster cluster, IReadOnlyList<Server> servers, IEnumerable<string> configure, IEnumerable<string> afterStart)
    {
        var run = cluster.Invoke([
            .. servers.Select(s => s.InitializeScript()),
            .. configure,
            .. servers.Select(s => $"Start-DomainShareRelay {s.Cfg}"),
            .. afterStart]);
        foreach (var s in servers)
            if (s.State is { } state) s.RelayProcessIds.Add(state.ProcessId);
        run.AssertSuccess();
        foreach (var s in servers)
            Assert.True(s.State is { } state && Cluster.IsAlive(state.ProcessId, s.ConfigPath), $"The relay of {s} does not run.\n{run}");
        return run;
    }

    /// <summary>The output objects of a run that have <paramref name="property"/> (to pick one cmdlet's objects out of several).</summary>
    public static IEnumerable<T> OfKind<T>(this ShellRun run, string property)
        => run.Objects.Where(o => o.TryGetProperty(property, out _)).Select(o => o.Deserialize<T>(DomainShareShell.Json)!);

    /// <summary>
    /// Ends every relay the cluster started with SIGKILL, by process id: a fixture's tear-down needs no graceful stop
    /// (it costs seconds per relay), and <see cref="Cluster.Dispose"/> then finds nothing left to stop.
    /// </summary>
    public static void KillRelays(this Cluster cluster)
    {
        foreach (var server in cluster.Servers)
            foreach (var pid in server.RelayProcessIds.Distinct())
                Cluster.KillIfRelayOf(server, pid);
    }

    /// <summary>
    /// Kills the running relay of <paramref name="server"/> with SIGKILL (the pid from its relay.json), as a crash or the
    /// OOM killer would: no clean-up at all, relay.json and the lock files stay. Waits until the process is gone.
    /// </summary>
    public static int KillRelay(this Server server)
    {
        var state = RelayState.Load(server.DataDirectory);
        Assert.True(state is not null, $"{server} has no relay.json.");
        int pid = state.ProcessId;
        Assert.True(Cluster.IsAlive(pid, server.ConfigPath), $"Process {pid} of relay.json is not a live relay of {server}.");
        using (var process = Process.GetProcessById(pid))
            process.Kill(entireProcessTree: false); // SIGKILL on Unix
        Assert.True(Cluster.Eventually(() => !Cluster.IsAlive(pid, server.ConfigPath), TimeSpan.FromSeconds(10), 20), $"Relay {pid} survived SIGKILL.");
        return pid;
    }
}

/// <summary>DomainShare.DomainShareAccount (New-DomainShareAccount, Get-DomainShareAccount).</summary>
public sealed record MailAccount(string Address, bool Enabled, string Domain, string Maildir, string ConfigPath);

/// <summary>DomainShare.DomainShareQueueMessage (Get-DomainShareQueue).</summary>
public sealed record QueueEntry(
    string Id, string From, string[] Recipients, string[] Destinations, DateTimeOffset Created, DateTimeOffset NextAttempt,
    int Attempts, string? LastError, long Size, string ConfigPath)
{
    public override string ToString()
        => $"{Id} from <{From}> to [{string.Join(", ", Recipients)}] via [{string.Join(", ", Destinations)}] attempts={Attempts} last='{LastError}'";
}
