using System.Collections.Concurrent;
using System.Data.Common;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Delivery;

/// <summary>
/// Delivers the messages of the <see cref="MessageQueue"/> (docs/domain-sharing.md, "Storing and forwarding"):
/// <list type="bullet">
/// <item>local recipients: one copy each into their Maildir through <see cref="IMessageStore"/>; an account that is gone
/// is looked up again (it may have moved to a peer), a disabled or full mailbox keeps the message queued (4.2.1/4.2.2);</item>
/// <item>peer recipients: one SMTP transaction per peer and message with all that peer's recipients; 4xx and
/// unreachable peers are retried on the <see cref="RetrySchedule"/>; a 5xx to RCPT drops the verification-cache entry
/// and looks the address up again before anything is bounced;</item>
/// <item>with <c>KeepQueuedOnDeliveryError</c> (default) mail for a peer waits for that peer; without it, a recipient
/// goes to the relay host after <see cref="DeliveryAgentOptions.PeerAttemptsBeforeRelayHost"/> failed attempts;</item>
/// <item>relay-host recipients go to <c>smtp.relayHost</c>;</item>
/// <item>scheduling: new mail and retries take turns at the free delivery slots, and a destination never has more
/// messages in delivery than <see cref="DeliveryAgentOptions.MaxConnectionsPerDestination"/>, so a backlog for a peer
/// that is down, or a peer that hangs in the middle of a session, never holds up mail for others;</item>
/// <item>loop protection: a recipient is never sent back to the peer the message came from;</item>
/// <item>failures (permanent, or pending when the queue lifetime ends) are bounced to the sender through the queue
/// itself, except for bounces, which are never bounced.</item>
/// </list>
/// A message leaves the queue only when every recipient is delivered or failed; a crash at any point means at worst
/// a second delivery after the restart, never a lost message. Background loops catch and log every exception.
/// </summary>
public sealed class DeliveryAgent : IAsyncDisposable
{
    private static readonly TimeSpan HostCacheTime = TimeSpan.FromMinutes(5);
    private readonly MessageQueue queue;
    private readonly AccountStore accounts;
    private readonly AddressResolver resolver;
    private readonly string dataDirectory;
    private readonly DeliveryAgentOptions options;
    private readonly IMessageStore store;
    private readonly IEngineLog log;
    private readonly TimeProvider time;
    private readonly SmtpTransport transport;
    private readonly Channel<bool> wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<string, Task> inFlight = new(StringComparer.Ordinal);
    /// <summary>Messages whose last attempt failed unexpectedly and could not even be postponed on disk: not before this time.</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> heldInMemory = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (IPAddress[] Addresses, DateTimeOffset Until)> hostCache = new(StringComparer.OrdinalIgnoreCase);
    private CancellationTokenSource? stop;
    private Task? scheduler;
    private Task? reaper;
    private long delivered, deferred, failed, bounces, reroutes, loopsHeld, attempts;
    /// <summary>The scheduler's turn: true when the next free slot goes to a retry rather than to new mail (scheduler thread only).</summary>
    private bool retryTurn;
    /// <summary>Messages being delivered per SMTP destination (a peer's <see cref="SmtpDestination.Key"/>, or <c>relayhost</c>), never more than its connections.</summary>
    private readonly Dictionary<string, int> busyDestinations = new(StringComparer.Ordinal);

    /// <param name="queue">The queue to deliver from (opened as owner).</param>
    /// <param name="accounts">This server's accounts (local recipients' Maildirs, enabled flag, quota).</param>
    /// <param name="resolver">Routes addresses again when an account moved, a peer refuses, or a bounce needs a route.</param>
    /// <param name="dataDirectory">The data directory Maildir paths are relative to.</param>
    /// <param name="options">Tunables and the live configuration.</param>
    /// <param name="log">Where the agent reports; null drops everything.</param>
    /// <param name="store">Where local mail is written; null for <see cref="MaildirMessageStore"/>.</param>
    /// <param name="time">The clock; null for the system clock.</param>
    public DeliveryAgent(MessageQueue queue, AccountStore accounts, AddressResolver resolver, string dataDirectory, DeliveryAgentOptions options,
        IEngineLog? log = null, IMessageStore? store = null, TimeProvider? time = null)
    {
        this.queue = queue ?? throw new ArgumentNullException(nameof(queue));
        this.accounts = accounts ?? throw new ArgumentNullException(nameof(accounts));
        this.resolver = resolver ?? throw new ArgumentNullException(nameof(resolver));
        this.dataDirectory = Path.GetFullPath(dataDirectory ?? throw new ArgumentNullException(nameof(dataDirectory)));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        this.log = log ?? NullEngineLog.Instance;
        this.time = time ?? TimeProvider.System;
        this.store = store ?? new MaildirMessageStore(time: this.time);
        transport = new SmtpTransport(options, this.log, this.time);
    }

    /// <summary>Counters for Get-DomainShareRelay.</summary>
    /// <summary>Lets the next attempts reach destinations held as unreachable (Resume-DomainShareQueue).</summary>
    public void ClearHolds() => transport.ClearHolds();

    public IEnumerable<KeyValuePair<string, long>> Counters()
    {
        yield return new("QueueMessages", queue.Count);
        yield return new("DeliveryAttempts", Interlocked.Read(ref attempts));
        yield return new("DeliveredRecipients", Interlocked.Read(ref delivered));
        yield return new("DeferredRecipients", Interlocked.Read(ref deferred));
        yield return new("FailedRecipients", Interlocked.Read(ref failed));
        yield return new("BouncesQueued", Interlocked.Read(ref bounces));
        yield return new("Reroutes", Interlocked.Read(ref reroutes));
        yield return new("LoopsHeld", Interlocked.Read(ref loopsHeld));
        yield return new("SmtpConnectionsOpened", transport.ConnectionsOpened);
        yield return new("SmtpConnectionsReused", transport.ConnectionsReused);
        yield return new("SmtpTransactions", transport.Transactions);
    }

    /// <summary>Starts the background workers; returns at once. They stop on <see cref="DisposeAsync"/> or when <paramref name="ct"/> is cancelled.</summary>
    public Task StartAsync(CancellationToken ct)
    {
        if (stop is not null) throw new InvalidOperationException("The delivery agent is already started.");
        stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        queue.MessageReady += OnMessageReady;
        var token = stop.Token;
        scheduler = Task.Run(() => ScheduleAsync(token), CancellationToken.None);
        reaper = Task.Run(() => ReapAsync(token), CancellationToken.None);
        log.Write(LogLevel.Information, $"Delivery: started with {queue.Count} message(s) in the queue.");
        return Task.CompletedTask;
    }

    private void OnMessageReady(string id)
    {
        heldInMemory.TryRemove(id, out _);
        Wake();
    }

    private void Wake() => wake.Writer.TryWrite(true);

    // ---------------------------------------------------------------- scheduling

    private async Task ScheduleAsync(CancellationToken ct)
    {
        var nextRescan = time.GetUtcNow() + options.RescanInterval;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var now = time.GetUtcNow();
                if (now >= nextRescan)
                {
                    queue.Refresh();
                    nextRescan = now + options.RescanInterval;
                }
                DateTimeOffset wakeAt = nextRescan;
                var fresh = new Queue<QueuedMessage>();
                var retries = new Queue<QueuedMessage>();
                // Only what is not in delivery is sorted: during a burst the queue holds many messages, and this runs
                // at every commit and every finished delivery.
                var waiting = new List<QueuedMessage>(queue.Count);
                foreach (var message in queue.Snapshot())
                    if (!inFlight.ContainsKey(message.Id)) waiting.Add(message);
                waiting.Sort(ByNextAttemptThenId);
                foreach (var message in waiting)
                {
                    if (heldInMemory.TryGetValue(message.Id, out var heldUntil))
                    {
                        if (heldUntil > now)
                        {
                            if (heldUntil < wakeAt) wakeAt = heldUntil;
                            continue;
                        }
                        heldInMemory.TryRemove(message.Id, out _);
                    }
                    if (message.NextAttempt > now)
                    {
                        if (message.NextAttempt < wakeAt) wakeAt = message.NextAttempt;
                        break;
                    }
                    (message.Attempts == 0 ? fresh : retries).Enqueue(message);
                }
                // New mail and retries take turns at the free slots: a backlog of retries for a peer that is down never
                // makes new mail (for a local user, for a working peer) wait behind all of it, and a flood of new mail
                // never starves the retries. A destination gets no more messages at once than it has connections: mail
                // for a peer that hangs mid-session waits in the queue, not in a slot that mail for others needs.
                bool full = false;
                while (fresh.Count + retries.Count > 0)
                {
                    if (inFlight.Count >= Math.Max(1, options.MaxConcurrentMessages))
                    {
                        full = true; // a finishing delivery wakes the scheduler
                        break;
                    }
                    var next = retries.Count == 0 || (fresh.Count > 0 && !retryTurn) ? fresh : retries;
                    var message = next.Dequeue();
                    var destinations = SmtpDestinationsOf(message);
                    if (!TryReserve(destinations)) continue; // a finishing delivery to that destination wakes the scheduler
                    retryTurn = next == fresh;
                    Launch(message.Id, destinations, ct);
                }
                var wait = full ? options.RescanInterval : wakeAt - time.GetUtcNow();
                if (wait > TimeSpan.Zero) await WaitForWakeAsync(wait, ct).ConfigureAwait(false);
                else await Task.Yield();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                log.Write(LogLevel.Error, $"Delivery: scheduler error (continuing): {ex}");
                try { await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }
        }
    }

    private async Task WaitForWakeAsync(TimeSpan wait, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(wait < TimeSpan.FromDays(1) ? wait : TimeSpan.FromDays(1));
        try
        {
            await wake.Reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
            while (wake.Reader.TryRead(out _)) { }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Time for the next due message or rescan.
        }
    }

    private static int ByNextAttemptThenId(QueuedMessage a, QueuedMessage b)
    {
        int c = a.NextAttempt.CompareTo(b.NextAttempt);
        return c != 0 ? c : string.CompareOrdinal(a.Id, b.Id);
    }

    /// <summary>The SMTP destinations the pending recipients of <paramref name="message"/> are routed to now.</summary>
    private static string[] SmtpDestinationsOf(QueuedMessage message)
    {
        // Called for every waiting message at each scheduling pass: no LINQ.
        var found = new List<string>(1);
        foreach (var r in message.Recipients)
        {
            if (r.State != RecipientState.Pending) continue;
            string? key = r.Route switch
            {
                QueueRoute.Peer when r.Peer is not null => SmtpDestination.PeerKey(r.Peer),
                QueueRoute.RelayHost => "relayhost", // whichever it is now
                _ => null,
            };
            if (key is not null && !found.Contains(key, StringComparer.Ordinal)) found.Add(key);
        }
        return found.Count == 0 ? [] : found.ToArray();
    }

    /// <summary>Counts a message against each of its destinations; false (nothing counted) when one has as many messages as connections.</summary>
    private bool TryReserve(string[] destinations)
    {
        if (destinations.Length == 0) return true;
        int limit = Math.Max(1, options.MaxConnectionsPerDestination);
        lock (busyDestinations)
        {
            if (destinations.Any(d => busyDestinations.GetValueOrDefault(d) >= limit)) return false;
            foreach (var d in destinations) busyDestinations[d] = busyDestinations.GetValueOrDefault(d) + 1;
            return true;
        }
    }

    private void Release(string[] destinations)
    {
        if (destinations.Length == 0) return;
        lock (busyDestinations)
        {
            foreach (var d in destinations)
                if (busyDestinations.TryGetValue(d, out int n))
                {
                    if (n <= 1) busyDestinations.Remove(d);
                    else busyDestinations[d] = n - 1;
                }
        }
    }

    private void Launch(string id, string[] destinations, CancellationToken ct)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int released = 0;
        // The destinations are free again once the message's SMTP transactions are over, before its queue files are
        // rewritten or deleted and flushed: a connection never waits for the disk.
        void ReleaseDestinations()
        {
            if (Interlocked.Exchange(ref released, 1) != 0) return;
            Release(destinations);
            Wake();
        }
        var task = Task.Run(async () =>
        {
            await started.Task.ConfigureAwait(false);
            try
            {
                await DeliverAsync(id, ReleaseDestinations, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Stopping: what was not recorded is delivered again after the restart.
            }
            catch (Exception ex)
            {
                log.Write(LogLevel.Error, $"Delivery: {id}: unexpected error (the message stays queued): {ex}");
                // Never a tight retry loop, even when the envelope cannot be rewritten (a full disk).
                int n = (queue.Get(id)?.Attempts ?? 0) + 1;
                heldInMemory[id] = time.GetUtcNow() + options.Retry.DelayAfter(n);
                await PostponeAfterErrorAsync(id, ex, ct).ConfigureAwait(false);
            }
            finally
            {
                ReleaseDestinations();
                inFlight.TryRemove(id, out _);
                Wake();
            }
        }, CancellationToken.None);
        inFlight[id] = task;
        started.SetResult();
    }

    /// <summary>After an unexpected error the message must not be retried in a tight loop: it waits like any deferral.</summary>
    private async Task PostponeAfterErrorAsync(string id, Exception error, CancellationToken ct)
    {
        try
        {
            if (queue.Get(id) is not { } message) return;
            int n = message.Attempts + 1;
            await queue.UpdateAsync(message with
            {
                Attempts = n,
                LastAttempt = time.GetUtcNow(),
                NextAttempt = time.GetUtcNow() + options.Retry.DelayAfter(n),
                LastError = $"451 4.3.0 internal error: {error.Message}",
            }, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.Write(LogLevel.Error, $"Delivery: {id}: could not postpone after an error: {ex.Message}");
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ReapAsync(CancellationToken ct)
    {
        var period = options.ConnectionIdleTimeout / 2;
        if (period < TimeSpan.FromMilliseconds(50)) period = TimeSpan.FromMilliseconds(50);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(period, ct).ConfigureAwait(false);
                await transport.CloseIdleAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                log.Write(LogLevel.Error, $"Delivery: closing idle connections failed (continuing): {ex.Message}");
            }
        }
    }

    // ---------------------------------------------------------------- one attempt

    private enum OutcomeKind { Delivered, Deferred, Failed, Rerouted }

    private sealed record Outcome(OutcomeKind Kind, string? Reply = null, QueuedRecipient? Route = null)
    {
        public static Outcome Delivered(string? reply = null) => new(OutcomeKind.Delivered, reply);
        public static Outcome Defer(string reply) => new(OutcomeKind.Deferred, reply);
        public static Outcome Fail(string reply) => new(OutcomeKind.Failed, reply);
        public static Outcome Reroute(QueuedRecipient to) => new(OutcomeKind.Rerouted, Route: to);
    }

    private enum PlanKind { Local, Smtp, Done }

    /// <summary>Where a recipient goes in this round: local, an SMTP destination, or an outcome decided without sending.</summary>
    private sealed record Plan(PlanKind Kind, SmtpDestination? Destination = null, Outcome? Outcome = null)
    {
        public static readonly Plan Local = new(PlanKind.Local);
        public static Plan Smtp(SmtpDestination d) => new(PlanKind.Smtp, d);
        public static Plan Decided(Outcome o) => new(PlanKind.Done, Outcome: o);
    }

    /// <summary>One delivery attempt of a message; <paramref name="sent"/> is called once no more SMTP transaction is made for it.</summary>
    private async Task DeliverAsync(string id, Action sent, CancellationToken ct)
    {
        var message = queue.BeginAttempt(id);
        if (message is null) return;
        Interlocked.Increment(ref attempts);
        var config = options.Configuration();
        var started = time.GetUtcNow();
        var work = message.Recipients.ToArray();
        var done = work.Select(r => r.State != RecipientState.Pending).ToArray();
        var failedNow = new List<int>();
        string? lastError = null;

        void Apply(int i, Outcome outcome)
        {
            var r = work[i];
            switch (outcome.Kind)
            {
                case OutcomeKind.Delivered:
                    work[i] = r with { State = RecipientState.Delivered, Completed = time.GetUtcNow(), LastError = null };
                    done[i] = true;
                    Interlocked.Increment(ref delivered);
                    break;
                case OutcomeKind.Deferred:
                    work[i] = r with { Attempts = r.Attempts + 1, LastError = outcome.Reply };
                    done[i] = true;
                    lastError = outcome.Reply;
                    Interlocked.Increment(ref deferred);
                    log.Write(LogLevel.Information, $"Delivery: {message.Id} to <{r.Address}> deferred: {outcome.Reply}");
                    break;
                case OutcomeKind.Failed:
                    work[i] = r with { State = RecipientState.Failed, Completed = time.GetUtcNow(), LastError = outcome.Reply };
                    done[i] = true;
                    failedNow.Add(i);
                    lastError = outcome.Reply;
                    log.Write(LogLevel.Warning, $"Delivery: {message.Id} to <{r.Address}> failed: {outcome.Reply}");
                    break;
                case OutcomeKind.Rerouted:
                    var to = outcome.Route!;
                    bool moved = to.Route != r.Route || !string.Equals(to.Peer, r.Peer, StringComparison.OrdinalIgnoreCase);
                    work[i] = moved ? to with { Attempts = 0 } : to;
                    Interlocked.Increment(ref reroutes);
                    log.Write(LogLevel.Information, $"Delivery: {message.Id} <{r.Address}> routed again: {Describe(r)} → {Describe(to)}.");
                    break;
            }
        }

        for (int round = 0; round <= Math.Max(0, options.MaxReroutesPerAttempt); round++)
        {
            var todo = Enumerable.Range(0, work.Length).Where(i => !done[i]).ToList();
            if (todo.Count == 0) break;
            var local = new List<int>();
            var groups = new Dictionary<string, (SmtpDestination Destination, List<int> Items)>(StringComparer.Ordinal);
            foreach (int i in todo)
            {
                var (recipient, plan) = await PlanAsync(message, work[i], config, depth: 0, ct).ConfigureAwait(false);
                work[i] = recipient;
                switch (plan.Kind)
                {
                    case PlanKind.Local:
                        local.Add(i);
                        break;
                    case PlanKind.Smtp:
                        if (!groups.TryGetValue(plan.Destination!.Key, out var group))
                            groups[plan.Destination.Key] = group = (plan.Destination, []);
                        group.Items.Add(i);
                        break;
                    default:
                        Apply(i, plan.Outcome!);
                        break;
                }
            }
            var tasks = new List<Task<List<(int Index, Outcome Outcome)>>>();
            if (local.Count > 0) tasks.Add(DeliverLocalAsync(message, work, local, config, ct));
            foreach (var (destination, items) in groups.Values) tasks.Add(DeliverSmtpAsync(message, work, destination, items, config, ct));
            foreach (var batch in await Task.WhenAll(tasks).ConfigureAwait(false))
                foreach (var (i, outcome) in batch)
                    Apply(i, outcome);
        }
        for (int i = 0; i < work.Length; i++)
            if (!done[i]) Apply(i, Outcome.Defer($"451 4.4.6 the route of <{work[i].Address}> changed too often in one attempt; trying again later"));
        sent();

        // The end of the queue lifetime: what is still pending fails with its last error.
        var now = time.GetUtcNow();
        var expires = message.Created + config.Queue.Lifetime;
        if (now >= expires)
        {
            for (int i = 0; i < work.Length; i++)
            {
                if (work[i].State != RecipientState.Pending) continue;
                string reason = work[i].LastError ?? "451 4.4.7 no delivery attempt succeeded";
                Apply(i, Outcome.Fail($"{reason} (gave up: the message was in the queue for {FormatAge(now - message.Created)}, the queue lifetime is {FormatAge(config.Queue.Lifetime)})"));
            }
        }

        if (failedNow.Count > 0)
        {
            var failedRecipients = failedNow.Select(i => work[i]).ToList();
            Interlocked.Add(ref failed, failedNow.Count);
            if (message.IsBounce)
            {
                log.Write(LogLevel.Warning,
                    $"Delivery: bounce {message.Id} could not be delivered to {string.Join(", ", failedRecipients.Select(r => $"<{r.Address}>"))}; dropped (a bounce is never bounced).");
            }
            else if (!await QueueBounceAsync(message, failedRecipients, config, ct).ConfigureAwait(false))
            {
                // Without a bounce on disk the failure must not be recorded: the recipients wait for the next attempt.
                foreach (int i in failedNow) work[i] = work[i] with { State = RecipientState.Pending, Completed = null };
            }
        }

        var updated = message with { Recipients = work, LastAttempt = started };
        if (updated.IsFinished)
        {
            await queue.CompleteAsync(message.Id, ct).ConfigureAwait(false);
            log.Write(LogLevel.Information,
                $"Delivery: {message.Id} done: {work.Count(r => r.State == RecipientState.Delivered)} delivered, {work.Count(r => r.State == RecipientState.Failed)} failed.");
            return;
        }
        int n = message.Attempts + 1;
        var next = time.GetUtcNow() + options.Retry.DelayAfter(n);
        if (next > expires && expires > now) next = expires;
        await queue.UpdateAsync(updated with { Attempts = n, NextAttempt = next, LastError = lastError ?? message.LastError }, ct).ConfigureAwait(false);
    }

    private static string Describe(QueuedRecipient r) => r.Route switch
    {
        QueueRoute.Peer => $"peer '{r.Peer}'",
        QueueRoute.Local => "local mailbox",
        QueueRoute.RelayHost => "relay host",
        _ => "unresolved",
    };

    private static string FormatAge(TimeSpan t)
        => t.TotalDays >= 1 ? $"{t.TotalDays:0.#} days" : t.TotalHours >= 1 ? $"{t.TotalHours:0.#} hours" : t.TotalMinutes >= 1 ? $"{t.TotalMinutes:0.#} minutes" : $"{t.TotalSeconds:0.#} seconds";

    // ---------------------------------------------------------------- routing

    private async Task<(QueuedRecipient Recipient, Plan Plan)> PlanAsync(QueuedMessage message, QueuedRecipient r, ServerConfiguration config, int depth, CancellationToken ct)
    {
        switch (r.Route)
        {
            case QueueRoute.Local:
                return (r, Plan.Local);

            case QueueRoute.RelayHost:
                return SmtpDestination.ForRelayHost(config.Smtp.RelayHost) is { } relay
                    ? (r, Plan.Smtp(relay))
                    : (r, Plan.Decided(Outcome.Defer("451 4.4.0 no usable relay host is configured (smtp.relayHost); the message waits for one")));

            case QueueRoute.Unresolved:
            {
                var resolution = await ResolveAsync(r.Address, noCache: false, ct).ConfigureAwait(false);
                return await FollowAsync(message, r, resolution, config, depth, ct).ConfigureAwait(false);
            }

            default:
            {
                var peer = config.FindPeer(r.Peer!);
                if (peer is null)
                {
                    log.Write(LogLevel.Warning, $"Delivery: {message.Id}: peer '{r.Peer}' of <{r.Address}> is no longer configured; looking the address up again.");
                    var resolution = await ResolveAsync(r.Address, noCache: true, ct).ConfigureAwait(false);
                    if (resolution?.Result == ResolutionResult.Peer && string.Equals(resolution.Peer, r.Peer, StringComparison.OrdinalIgnoreCase))
                        return (r, Plan.Decided(Outcome.Defer($"451 4.4.1 peer '{r.Peer}' is not configured")));
                    return await FollowAsync(message, r, resolution, config, depth + 1, ct).ConfigureAwait(false);
                }
                if (!peer.Enabled)
                    return (r, Plan.Decided(Outcome.Defer($"451 4.4.1 peer '{peer.Name}' is disabled; the message waits for it")));
                if (await CameFromAsync(message, peer, ct).ConfigureAwait(false))
                {
                    var resolution = depth == 0 ? await ResolveAsync(r.Address, noCache: true, ct).ConfigureAwait(false) : null;
                    if (resolution is null || (resolution.Result == ResolutionResult.Peer && string.Equals(resolution.Peer, peer.Name, StringComparison.OrdinalIgnoreCase)))
                    {
                        Interlocked.Increment(ref loopsHeld);
                        log.Write(LogLevel.Warning,
                            $"Delivery: {message.Id} came from peer '{peer.Name}' ({message.Source?.Address}) and <{r.Address}> still resolves to it; held, never sent back.");
                        return (r, Plan.Decided(Outcome.Defer($"451 4.4.6 mail loop: the message came from peer '{peer.Name}', which is where <{r.Address}> is routed; held")));
                    }
                    log.Write(LogLevel.Information, $"Delivery: {message.Id} came from peer '{peer.Name}'; <{r.Address}> looked up again without the cache.");
                    return await FollowAsync(message, r, resolution, config, depth + 1, ct).ConfigureAwait(false);
                }
                if (!config.DomainSharing.KeepQueuedOnDeliveryError && r.Attempts >= Math.Max(1, options.PeerAttemptsBeforeRelayHost)
                    && SmtpDestination.ForRelayHost(config.Smtp.RelayHost) is { } fallback)
                {
                    log.Write(LogLevel.Information,
                        $"Delivery: {message.Id} <{r.Address}>: peer '{peer.Name}' failed {r.Attempts} times; handing it to the relay host (keepQueuedOnDeliveryError is off).");
                    return (r with { Route = QueueRoute.RelayHost, OriginalPeer = peer.Name, Peer = null, Attempts = 0 }, Plan.Smtp(fallback));
                }
                return (r, Plan.Smtp(SmtpDestination.ForPeer(peer)));
            }
        }
    }

    /// <summary>Turns a fresh resolution into a plan; a new peer route is planned in turn (loop check included).</summary>
    private async Task<(QueuedRecipient Recipient, Plan Plan)> FollowAsync(QueuedMessage message, QueuedRecipient r, AddressResolution? resolution,
        ServerConfiguration config, int depth, CancellationToken ct)
    {
        var outcome = AfterLookup(r, resolution, failure: null, config);
        if (outcome.Kind != OutcomeKind.Rerouted) return (r, Plan.Decided(outcome));
        var to = outcome.Route!;
        bool moved = to.Route != r.Route || !string.Equals(to.Peer, r.Peer, StringComparison.OrdinalIgnoreCase);
        if (moved)
        {
            Interlocked.Increment(ref reroutes);
            to = to with { Attempts = 0 };
            if (r.Route != QueueRoute.Unresolved)
                log.Write(LogLevel.Information, $"Delivery: {message.Id} <{r.Address}> routed again: {Describe(r)} → {Describe(to)}.");
        }
        if (depth >= 3) return (to, Plan.Decided(Outcome.Defer($"451 4.4.6 the route of <{r.Address}> keeps changing; trying again later")));
        return await PlanAsync(message, to, config, depth + 1, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// What a lookup means for a recipient: a new route (<see cref="OutcomeKind.Rerouted"/>), or a decided outcome.
    /// <paramref name="failure"/> is the reply of a destination that refused the address permanently; it is the reason
    /// given in the bounce when the address exists nowhere.
    /// </summary>
    private Outcome AfterLookup(QueuedRecipient r, AddressResolution? resolution, string? failure, ServerConfiguration config)
    {
        if (resolution is null) return Outcome.Fail(failure ?? $"553 5.1.3 <{r.Address}> is not a valid address");
        return resolution.Result switch
        {
            ResolutionResult.Local => Outcome.Reroute(r with { Route = QueueRoute.Local, Peer = null }),
            ResolutionResult.Peer => Outcome.Reroute(r with { Route = QueueRoute.Peer, Peer = resolution.Peer }),
            ResolutionResult.NotFound => Outcome.Fail(failure ?? $"550 5.1.1 <{r.Address}>: no such user here or on any peer"),
            ResolutionResult.DomainNotHosted when r.Route == QueueRoute.Unresolved =>
                SmtpDestination.ForRelayHost(config.Smtp.RelayHost) is not null
                    ? Outcome.Reroute(r with { Route = QueueRoute.RelayHost, Peer = null })
                    : Outcome.Fail($"550 5.4.4 no route to <{r.Address}>: its domain is not hosted here and no relay host is configured"),
            ResolutionResult.DomainNotHosted => Outcome.Fail(failure ?? $"550 5.1.2 the domain of <{r.Address}> is no longer hosted here"),
            ResolutionResult.LocalCannotReceive => Outcome.Defer($"450 4.2.1 the mailbox <{r.Address}> is disabled or being created"),
            ResolutionResult.CannotReceive => Outcome.Defer($"450 4.2.1 <{r.Address}> exists on peer '{resolution.Peer}' but cannot receive now"),
            _ => Outcome.Defer($"451 4.4.3 the peers could not say where <{r.Address}> is: " +
                               string.Join(" ", resolution.FailedPeers.Select(f => f.Reason)).Trim()),
        };
    }

    /// <summary>Resolves an address; null when it is not a valid address at all.</summary>
    private async Task<AddressResolution?> ResolveAsync(string address, bool noCache, CancellationToken ct)
    {
        try
        {
            return await resolver.ResolveAsync(address, noCache ? new ResolveOptions { NoCache = true } : null, ct).ConfigureAwait(false);
        }
        catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidAddress)
        {
            return null;
        }
    }

    /// <summary>True when the message was received from <paramref name="peer"/> (its client address is one of the peer's).</summary>
    private async Task<bool> CameFromAsync(QueuedMessage message, PeerConfiguration peer, CancellationToken ct)
    {
        if (message.Source?.ParseAddress() is not { } source) return false;
        string host = peer.Name.Trim('[', ']');
        if (IPAddress.TryParse(host, out var literal)) return Same(literal, source);
        var now = time.GetUtcNow();
        if (!hostCache.TryGetValue(host, out var known) || known.Until < now)
        {
            IPAddress[] addresses;
            try
            {
                addresses = options.HostAddresses is { } lookup
                    ? await lookup(host, ct).ConfigureAwait(false)
                    : await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                log.Write(LogLevel.Debug, $"Delivery: peer '{peer.Name}' does not resolve ({ex.Message}); cannot tell whether {message.Id} came from it.");
                addresses = [];
            }
            known = (addresses, now + HostCacheTime);
            hostCache[host] = known;
        }
        return known.Addresses.Any(a => Same(a, source));
    }

    private static bool Same(IPAddress a, IPAddress b)
    {
        if (a.IsIPv4MappedToIPv6) a = a.MapToIPv4();
        if (b.IsIPv4MappedToIPv6) b = b.MapToIPv4();
        return a.Equals(b);
    }

    // ---------------------------------------------------------------- local delivery

    private async Task<List<(int Index, Outcome Outcome)>> DeliverLocalAsync(QueuedMessage message, QueuedRecipient[] work, List<int> items,
        ServerConfiguration config, CancellationToken ct)
    {
        var results = new List<(int, Outcome)>(items.Count);
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (int i in items)
        {
            var r = work[i];
            Outcome outcome;
            try
            {
                outcome = await DeliverLocalAsync(message, r, stored, config, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or DbException)
            {
                log.Write(LogLevel.Warning, $"Delivery: {message.Id} to <{r.Address}>: cannot write to the mailbox: {ex.Message}");
                outcome = Outcome.Defer($"451 4.3.0 the mailbox of <{r.Address}> cannot be written now: {ex.Message}");
            }
            results.Add((i, outcome));
        }
        return results;
    }

    private async Task<Outcome> DeliverLocalAsync(QueuedMessage message, QueuedRecipient r, Dictionary<string, string> stored, ServerConfiguration config, CancellationToken ct)
    {
        var account = accounts.Get(r.Address);
        if (account is { Reserved: true })
            return Outcome.Defer($"450 4.2.1 the account <{r.Address}> is being created");
        if (account is null)
        {
            // Removed since the message was accepted: it may live on a peer now.
            log.Write(LogLevel.Information, $"Delivery: {message.Id}: no local account <{r.Address}> any more; looking it up again.");
            var resolution = await ResolveAsync(r.Address, noCache: true, ct).ConfigureAwait(false);
            if (resolution?.Result == ResolutionResult.Local)
                return Outcome.Defer($"451 4.3.0 the account <{r.Address}> changed during delivery");
            return AfterLookup(r, resolution, failure: null, config);
        }
        if (!account.Enabled)
            return Outcome.Defer($"450 4.2.1 the mailbox <{r.Address}> is disabled");
        string key = AccountStore.Key(account.Address);
        if (stored.ContainsKey(key))
            return Outcome.Delivered(); // the same mailbox twice in one message: one copy
        string maildir = Path.GetFullPath(Path.Combine(dataDirectory, account.Maildir));
        if (account.QuotaBytes is long quota)
        {
            long used = store.UsedBytes(maildir);
            if (used + message.Size > quota)
                return Outcome.Defer($"452 4.2.2 the mailbox <{r.Address}> is full ({used} of {quota} bytes used, the message has {message.Size})");
        }
        string name;
        var content = queue.OpenContent(message.Id);
        await using (content.ConfigureAwait(false))
            name = await store.StoreAsync(maildir, content, message.Size, ct).ConfigureAwait(false);
        stored[key] = name;
        log.Write(LogLevel.Information, $"Delivery: {message.Id} delivered to <{r.Address}> ({Path.Combine(account.Maildir, "new", name)}).");
        return Outcome.Delivered();
    }

    // ---------------------------------------------------------------- SMTP delivery

    private async Task<List<(int Index, Outcome Outcome)>> DeliverSmtpAsync(QueuedMessage message, QueuedRecipient[] work, SmtpDestination destination,
        List<int> items, ServerConfiguration config, CancellationToken ct)
    {
        var addresses = items.Select(i => work[i].Address).ToList();
        var replies = await transport.SendAsync(destination, config.ServerName, message.ReversePath, addresses,
            () => queue.OpenContent(message.Id), message.Size, message.SmtpUtf8, ct).ConfigureAwait(false);
        var results = new List<(int, Outcome)>(items.Count);
        for (int k = 0; k < items.Count; k++)
        {
            int i = items[k];
            var r = work[i];
            var reply = replies[k];
            switch (reply.Kind)
            {
                case RecipientResultKind.Delivered:
                    log.Write(LogLevel.Information, $"Delivery: {message.Id} delivered to <{r.Address}> via {destination.Description}: {reply.Reply}");
                    results.Add((i, Outcome.Delivered(reply.Reply)));
                    break;
                case RecipientResultKind.Temporary:
                    results.Add((i, Outcome.Defer($"{reply.Reply} ({destination.Description})")));
                    break;
                default:
                    string because = $"{reply.Reply} ({destination.Description})";
                    if (destination.Peer is { } peer && reply.AtRecipient)
                        results.Add((i, await AfterPeerRefusedAsync(message, r, peer, because, config, ct).ConfigureAwait(false)));
                    else
                        results.Add((i, Outcome.Fail(because)));
                    break;
            }
        }
        return results;
    }

    /// <summary>
    /// A peer refused a recipient permanently: the cache entry naming that peer is dropped and the address looked up
    /// again without the cache. Elsewhere → routed there; nowhere → bounced with the peer's reply; the peers cannot
    /// say → tried again later.
    /// </summary>
    private async Task<Outcome> AfterPeerRefusedAsync(QueuedMessage message, QueuedRecipient r, string peer, string because, ServerConfiguration config, CancellationToken ct)
    {
        bool dropped = resolver.OnPeerSaysUnknown(r.Address, peer);
        log.Write(LogLevel.Warning,
            $"Delivery: {message.Id}: peer '{peer}' refused <{r.Address}> ({because}); {(dropped ? "cache entry dropped, " : "")}looking it up again.");
        var resolution = await ResolveAsync(r.Address, noCache: true, ct).ConfigureAwait(false);
        if (resolution?.Result == ResolutionResult.Peer && string.Equals(resolution.Peer, peer, StringComparison.OrdinalIgnoreCase))
            return Outcome.Fail(because); // it does live there, and the peer refuses it: the peer's answer stands
        return AfterLookup(r, resolution, failure: because, config);
    }

    // ---------------------------------------------------------------- bounces

    /// <summary>Commits a bounce for <paramref name="failedRecipients"/> to the sender. False when it could not be stored.</summary>
    private async Task<bool> QueueBounceAsync(QueuedMessage message, List<QueuedRecipient> failedRecipients, ServerConfiguration config, CancellationToken ct)
    {
        try
        {
            byte[] headers;
            try
            {
                var content = queue.OpenContent(message.Id);
                await using (content.ConfigureAwait(false))
                    headers = BounceBuilder.ReadHeaders(content);
            }
            catch (FileNotFoundException)
            {
                headers = [];
            }
            var dsn = BounceBuilder.Build(config.ServerName, message, failedRecipients, headers, time.GetUtcNow());
            string id = await queue.EnqueueAsync(null, [new QueuedRecipient { Address = message.ReversePath!, Route = QueueRoute.Unresolved }],
                dsn, MessageSource.Internal, ct).ConfigureAwait(false);
            Interlocked.Increment(ref bounces);
            log.Write(LogLevel.Information,
                $"Delivery: {message.Id}: bounce {id} queued to <{message.ReversePath}> for {string.Join(", ", failedRecipients.Select(r => $"<{r.Address}>"))}.");
            return true;
        }
        catch (Exception ex) when (ex is Smtp.SmtpStorageException or IOException or UnauthorizedAccessException)
        {
            log.Write(LogLevel.Error, $"Delivery: {message.Id}: the bounce to <{message.ReversePath}> cannot be stored ({ex.Message}); the failed recipients stay queued.");
            return false;
        }
    }

    // ---------------------------------------------------------------- stopping

    /// <summary>Stops the workers, waits for the deliveries in progress to end (cancelled), and closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        queue.MessageReady -= OnMessageReady;
        if (stop is not null)
        {
            stop.Cancel();
            try
            {
                if (scheduler is not null) await scheduler.ConfigureAwait(false);
                if (reaper is not null) await reaper.ConfigureAwait(false);
                await Task.WhenAll(inFlight.Values.ToArray()).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                log.Write(LogLevel.Error, $"Delivery: error while stopping: {ex.Message}");
            }
        }
        await transport.DisposeAsync().ConfigureAwait(false);
        stop?.Dispose();
        log.Write(LogLevel.Information, "Delivery: stopped.");
    }
}
