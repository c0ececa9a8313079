using System.Globalization;
using System.Net.Sockets;
using DomainShare.Engine.Configuration;
using MailKit;
using MailKit.Net.Smtp;
using MimeKit;

namespace DomainShare.Engine.Delivery;

/// <summary>Where an SMTP transaction goes: a peer or the relay host.</summary>
/// <param name="Key">Identifies the destination for connection reuse and limits (<c>peer:name</c>, <c>relayhost:host:port</c>).</param>
/// <param name="Host">Host name or IP address to connect to.</param>
/// <param name="Port">TCP port.</param>
/// <param name="Description">For logs and errors: <c>peer 'mx2.example.com' (mx2.example.com:25)</c>.</param>
/// <param name="Peer">The peer's configured name, or null for the relay host.</param>
internal sealed record SmtpDestination(string Key, string Host, int Port, string Description, string? Peer)
{
    /// <summary>The <see cref="Key"/> of the peer named <paramref name="name"/>.</summary>
    public static string PeerKey(string name) => "peer:" + name.ToLowerInvariant();

    public static SmtpDestination ForPeer(PeerConfiguration peer)
        => new(PeerKey(peer.Name), peer.Name.Trim('[', ']'), peer.SmtpPort, $"peer '{peer.Name}' ({peer.SmtpAddress})", peer.Name);

    /// <summary>The relay host from <c>smtp.relayHost</c> (<c>host:port</c>, <c>[v6]:port</c>, or a host alone for port 25); null when none or unusable.</summary>
    public static SmtpDestination? ForRelayHost(string? relayHost)
    {
        if (string.IsNullOrWhiteSpace(relayHost)) return null;
        string text = relayHost.Trim();
        string host;
        string? portText = null;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0) return null;
            host = text[1..close];
            if (close + 1 < text.Length)
            {
                if (text[close + 1] != ':') return null;
                portText = text[(close + 2)..];
            }
        }
        else
        {
            int colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':') != colon) return null;
            host = colon < 0 ? text : text[..colon];
            portText = colon < 0 ? null : text[(colon + 1)..];
        }
        int port = Defaults.SmtpPort;
        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)) return null;
        if (host.Length == 0) return null;
        return new SmtpDestination($"relayhost:{host.ToLowerInvariant()}:{port}", host, port, $"relay host {relayHost.Trim()}", null);
    }
}

internal enum RecipientResultKind { Delivered, Temporary, Permanent }

/// <summary>What one destination said about one recipient.</summary>
/// <param name="Reply">The SMTP reply (<c>550 5.1.1 User unknown</c>) or a reply-like line for local errors.</param>
/// <param name="AtRecipient">The answer was to this recipient's RCPT TO (not to MAIL FROM or the message as a whole).</param>
internal sealed record RecipientResult(RecipientResultKind Kind, string Reply, bool AtRecipient = false);

/// <summary>A MailKit client that records per-recipient refusals instead of aborting the whole message on the first one.</summary>
internal sealed class RecordingSmtpClient : SmtpClient
{
    public Dictionary<MailboxAddress, SmtpResponse> Rejected { get; } = new(ReferenceEqualityComparer.Instance);

    protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
        => Rejected[mailbox] = response;

    // MailKit then throws MessageNotAccepted and resets the transaction; the refusals recorded above tell why.
    protected override void OnNoRecipientsAccepted(MimeMessage message) { }
}

/// <summary>
/// SMTP delivery to peers and the relay host with MailKit: at most <see cref="DeliveryAgentOptions.MaxConnectionsPerDestination"/>
/// connections per destination, connections kept open for <see cref="DeliveryAgentOptions.ConnectionIdleTimeout"/> and
/// reused for the next message to the same destination, one transaction per message and destination with all its
/// recipients, and a short hold after a failed connection so a dead peer is not hammered by every queued message.
/// </summary>
internal sealed class SmtpTransport : IAsyncDisposable
{
    private readonly DeliveryAgentOptions options;
    private readonly IEngineLog log;
    private readonly TimeProvider time;
    private readonly Dictionary<string, Slot> slots = new(StringComparer.Ordinal);
    private long connectionsOpened;
    private long connectionsReused;
    private long transactions;

    public SmtpTransport(DeliveryAgentOptions options, IEngineLog log, TimeProvider time)
    {
        this.options = options;
        this.log = log;
        this.time = time;
    }

    public long ConnectionsOpened => Interlocked.Read(ref connectionsOpened);
    public long ConnectionsReused => Interlocked.Read(ref connectionsReused);
    public long Transactions => Interlocked.Read(ref transactions);

    private Slot SlotFor(SmtpDestination destination)
    {
        lock (slots)
        {
            if (!slots.TryGetValue(destination.Key, out var slot))
                slots[destination.Key] = slot = new Slot(Math.Max(1, options.MaxConnectionsPerDestination));
            return slot;
        }
    }

    /// <summary>Forgets every "unreachable, not tried again yet" hold: an administrator asked for a retry now.</summary>
    public void ClearHolds()
    {
        lock (slots)
            foreach (var slot in slots.Values) slot.ClearHold();
    }

    /// <summary>
    /// One transaction: MAIL FROM <paramref name="reversePath"/> (null for <c>&lt;&gt;</c>), RCPT TO each recipient, DATA.
    /// Never throws for a network or protocol failure: those are temporary results for every recipient.
    /// </summary>
    public async Task<IReadOnlyList<RecipientResult>> SendAsync(SmtpDestination destination, string heloName, string? reversePath,
        IReadOnlyList<string> recipients, Func<Stream> openContent, long size, bool smtpUtf8, CancellationToken ct)
    {
        var slot = SlotFor(destination);
        if (slot.HeldReason(time.GetUtcNow()) is { } held)
            return All(recipients, RecipientResultKind.Temporary, $"451 4.4.1 {destination.Description} is unreachable ({held}); not tried again yet");
        await slot.Gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (slot.HeldReason(time.GetUtcNow()) is { } heldNow)
                return All(recipients, RecipientResultKind.Temporary, $"451 4.4.1 {destination.Description} is unreachable ({heldNow}); not tried again yet");
            var client = await ReuseAsync(slot, ct).ConfigureAwait(false);
            if (client is null)
            {
                try
                {
                    client = await ConnectAsync(destination, heloName, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    string why = Describe(ex, options.ConnectTimeout);
                    slot.Hold(time.GetUtcNow() + options.UnreachableHold, why);
                    log.Write(LogLevel.Warning, $"Delivery: cannot connect to {destination.Description}: {why}.");
                    return All(recipients, RecipientResultKind.Temporary, $"451 4.4.1 cannot connect to {destination.Description}: {why}");
                }
                slot.ClearHold();
            }
            IReadOnlyList<RecipientResult> results;
            bool keep = true;
            if (smtpUtf8 && !client.Capabilities.HasFlag(SmtpCapabilities.UTF8))
                results = All(recipients, RecipientResultKind.Permanent, $"553 5.6.7 the message needs SMTPUTF8 (RFC 6531) and {destination.Description} does not offer it");
            else
                (results, keep) = await TransactAsync(client, destination, reversePath, recipients, openContent, size, ct).ConfigureAwait(false);
            if (keep && client.IsConnected) slot.Park(client, time.GetUtcNow());
            else await CloseAsync(client).ConfigureAwait(false);
            return results;
        }
        finally
        {
            slot.Gate.Release();
        }
    }

    private async Task<RecordingSmtpClient?> ReuseAsync(Slot slot, CancellationToken ct)
    {
        while (slot.TakeIdle(time.GetUtcNow(), options.ConnectionIdleTimeout, out var client, out var stale))
        {
            if (stale || !client.IsConnected)
            {
                await CloseAsync(client).ConfigureAwait(false);
                continue;
            }
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(options.CommandTimeout);
                await client.NoOpAsync(timeout.Token).ConfigureAwait(false);
                Interlocked.Increment(ref connectionsReused);
                return client;
            }
            catch (Exception) when (!ct.IsCancellationRequested)
            {
                // The peer closed the idle connection: open a new one.
                await CloseAsync(client).ConfigureAwait(false);
            }
        }
        return null;
    }

    private async Task<RecordingSmtpClient> ConnectAsync(SmtpDestination destination, string heloName, CancellationToken ct)
    {
        var client = new RecordingSmtpClient
        {
            Timeout = (int)Math.Clamp(options.CommandTimeout.TotalMilliseconds, 1, int.MaxValue),
            LocalDomain = heloName,
            CheckCertificateRevocation = options.ValidateCertificates,
        };
        if (!options.ValidateCertificates)
            client.ServerCertificateValidationCallback = (_, _, _, _) => true;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.ConnectTimeout);
            await client.ConnectAsync(destination.Host, destination.Port, options.Tls, timeout.Token).ConfigureAwait(false);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        Interlocked.Increment(ref connectionsOpened);
        return client;
    }

    private async Task<(IReadOnlyList<RecipientResult> Results, bool Keep)> TransactAsync(RecordingSmtpClient client, SmtpDestination destination,
        string? reversePath, IReadOnlyList<string> recipients, Func<Stream> openContent, long size, CancellationToken ct)
    {
        Interlocked.Increment(ref transactions);
        var mailboxes = new List<MailboxAddress>(recipients.Count);
        MailboxAddress sender;
        try
        {
            sender = Mailbox(reversePath);
            foreach (var r in recipients) mailboxes.Add(Mailbox(r));
        }
        catch (Exception ex) when (ex is ParseException or ArgumentException)
        {
            return (All(recipients, RecipientResultKind.Permanent, $"553 5.1.3 an address cannot be written in SMTP: {ex.Message}"), true);
        }
        client.Rejected.Clear();
        // MailKit times out each read and write by itself; this bounds the whole transaction too.
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        overall.CancelAfter(options.CommandTimeout * (4 + recipients.Count) + TimeSpan.FromSeconds(size / (64 * 1024)));
        try
        {
            var content = openContent();
            await using (content.ConfigureAwait(false))
            {
                var message = await MimeMessage.LoadAsync(content, persistent: true, overall.Token).ConfigureAwait(false);
                var format = FormatOptions.Default.Clone();
                format.NewLineFormat = NewLineFormat.Dos;
                string reply = await client.SendAsync(format, message, sender, mailboxes, overall.Token).ConfigureAwait(false);
                var results = new RecipientResult[mailboxes.Count];
                for (int i = 0; i < mailboxes.Count; i++)
                {
                    results[i] = client.Rejected.TryGetValue(mailboxes[i], out var refused)
                        ? FromResponse(refused, atRecipient: true)
                        : new RecipientResult(RecipientResultKind.Delivered, "250 " + reply.Trim());
                }
                return (results, true);
            }
        }
        catch (SmtpCommandException ex) when (!ct.IsCancellationRequested)
        {
            // MAIL FROM or the message was refused, or no recipient was accepted; MailKit has reset the transaction.
            // A refused MAIL FROM decides for every recipient: with PIPELINING the RCPT TO answers behind it are only
            // "503 MAIL first", which MailKit still reports as refused recipients; they are not the recipients' answers.
            bool senderRefused = ex.ErrorCode == SmtpErrorCode.SenderNotAccepted;
            var results = new RecipientResult[mailboxes.Count];
            var kind = (int)ex.StatusCode >= 500 ? RecipientResultKind.Permanent : RecipientResultKind.Temporary;
            string whole = $"{(int)ex.StatusCode} {ex.Message.Trim()}";
            for (int i = 0; i < mailboxes.Count; i++)
                results[i] = !senderRefused && client.Rejected.TryGetValue(mailboxes[i], out var refused)
                    ? FromResponse(refused, atRecipient: true)
                    : new RecipientResult(kind, whole);
            return (results, true);
        }
        catch (Exception ex) when (!ct.IsCancellationRequested)
        {
            string why = Describe(ex, options.CommandTimeout);
            log.Write(LogLevel.Warning, $"Delivery: transaction with {destination.Description} failed: {why}.");
            return (All(recipients, RecipientResultKind.Temporary, $"451 4.4.2 connection to {destination.Description} failed during the transaction: {why}"), false);
        }
    }

    private static MailboxAddress Mailbox(string? address)
        => string.IsNullOrEmpty(address) ? new MailboxAddress(string.Empty, string.Empty) : new MailboxAddress(string.Empty, address);

    private static RecipientResult FromResponse(SmtpResponse response, bool atRecipient)
    {
        int code = (int)response.StatusCode;
        var kind = code is >= 200 and < 300 ? RecipientResultKind.Delivered
                 : code >= 500 ? RecipientResultKind.Permanent
                 : RecipientResultKind.Temporary;
        return new RecipientResult(kind, $"{code} {response.Response.Trim()}", atRecipient);
    }

    private static IReadOnlyList<RecipientResult> All(IReadOnlyList<string> recipients, RecipientResultKind kind, string reply)
        => recipients.Select(_ => new RecipientResult(kind, reply)).ToArray();

    private static string Describe(Exception ex, TimeSpan timeout) => ex switch
    {
        OperationCanceledException or TimeoutException => $"no answer within {timeout.TotalSeconds:0.#} s",
        SocketException s => s.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused",
            SocketError.HostNotFound or SocketError.NoData => "host name not found",
            _ => s.Message,
        },
        SmtpProtocolException or ServiceNotConnectedException or IOException => ex.InnerException is SocketException inner ? $"{ex.Message.TrimEnd('.')} ({inner.Message})" : ex.Message.TrimEnd('.'),
        _ => ex.Message.TrimEnd('.'),
    };

    private static async Task CloseAsync(SmtpClient client)
    {
        try
        {
            if (client.IsConnected)
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await client.DisconnectAsync(true, quick.Token).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Closing is best effort: the socket goes away with the client.
        }
        finally
        {
            client.Dispose();
        }
    }

    /// <summary>Closes connections unused for longer than the idle timeout.</summary>
    public async Task CloseIdleAsync()
    {
        List<RecordingSmtpClient> stale = [];
        Slot[] all;
        lock (slots) all = slots.Values.ToArray();
        var now = time.GetUtcNow();
        foreach (var slot in all) slot.TakeStale(now, options.ConnectionIdleTimeout, stale);
        foreach (var client in stale) await CloseAsync(client).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        List<RecordingSmtpClient> all = [];
        Slot[] list;
        lock (slots) list = slots.Values.ToArray();
        foreach (var slot in list) slot.TakeStale(DateTimeOffset.MaxValue, TimeSpan.Zero, all);
        foreach (var client in all) await CloseAsync(client).ConfigureAwait(false);
    }

    /// <summary>One destination: its connection limit, its idle connections and its hold after a failed connection.</summary>
    private sealed class Slot(int maxConnections)
    {
        private readonly List<(RecordingSmtpClient Client, DateTimeOffset Since)> idle = [];
        private DateTimeOffset heldUntil;
        private string? heldReason;

        public SemaphoreSlim Gate { get; } = new(maxConnections, maxConnections);

        public string? HeldReason(DateTimeOffset now)
        {
            lock (idle) return now < heldUntil ? heldReason : null;
        }

        public void Hold(DateTimeOffset until, string reason)
        {
            lock (idle)
            {
                heldUntil = until;
                heldReason = reason;
            }
        }

        public void ClearHold()
        {
            lock (idle) heldUntil = default;
        }

        public void Park(RecordingSmtpClient client, DateTimeOffset now)
        {
            lock (idle) idle.Add((client, now));
        }

        /// <summary>The most recently used idle connection; <paramref name="stale"/> when it idled too long.</summary>
        public bool TakeIdle(DateTimeOffset now, TimeSpan maxIdle, out RecordingSmtpClient client, out bool stale)
        {
            lock (idle)
            {
                if (idle.Count == 0)
                {
                    client = null!;
                    stale = false;
                    return false;
                }
                var last = idle[^1];
                idle.RemoveAt(idle.Count - 1);
                client = last.Client;
                stale = now - last.Since > maxIdle;
                return true;
            }
        }

        public void TakeStale(DateTimeOffset now, TimeSpan maxIdle, List<RecordingSmtpClient> into)
        {
            lock (idle)
            {
                for (int i = idle.Count - 1; i >= 0; i--)
                {
                    if (now - idle[i].Since < maxIdle) continue;
                    into.Add(idle[i].Client);
                    idle.RemoveAt(i);
                }
            }
        }
    }
}
