using DomainShare.Engine.Configuration;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Minger;

/// <summary>
/// The Minger server (UDP): answers peers' "do you accept mail for this address?" from this server's accounts, under
/// the rules of docs/minger-protocol.md and the gateway option of docs/domain-sharing.md.
/// </summary>
/// <remarks>
/// <para>Order of the checks for each datagram: the per-source rate limit (over it: dropped, no reply, so the server
/// can never be used to reflect a flood), the allowed sources (1), the syntax (0), the credentials (2), the
/// <c>*</c> probe (5), then the account: Active 5, Disabled or Reserved 4, Unknown 3, or a gateway lookup.</para>
/// <para>Credentials, when a secret is set: a missing digest is refused (2) unless anonymous queries are allowed; a
/// digest that is present and wrong is always refused (2), anonymous or not. Without a secret any digest is ignored.</para>
/// <para>Each receive loop is a thread of its own that waits in a blocking receive (closing the socket ends the wait).
/// On Linux an asynchronous receive on a socket that is mostly empty costs a trip through the socket engine's epoll
/// thread and the thread pool for every datagram, about five times the CPU of the blocking receive; under a flood that
/// the rate limit drops, that trip was most of the cost, and a server that spends its CPU on dropping datagrams lets
/// the kernel drop everyone's, good peers' included. Threads of their own also keep the server answering when the
/// thread pool is starved by other work in the process.</para>
/// <para>The receive loops never wait for a gateway lookup: it runs on its own, at most
/// <see cref="MaxConcurrentGatewayLookups"/> at a time (a query that finds them all busy is dropped and the asking
/// server retries), and its reply is sent when it completes. A failed lookup leaves the query unanswered.</para>
/// <para>A datagram that fails (a store error, a send error) is counted and logged, with at most one log line every
/// few seconds so that a flood cannot flood the log; it never stops the listener.</para>
/// <para>Settings can be replaced while running with <see cref="Configure"/>; every datagram is judged by one
/// consistent set. A server is started once; after <see cref="StopAsync"/> make a new one.</para>
/// </remarks>
public sealed class MingerServer : IAsyncDisposable
{
    /// <summary>Gateway lookups running at once, at most.</summary>
    public const int MaxConcurrentGatewayLookups = 64;
    private const int ReceiveBufferBytes = MingerCodec.MaxDatagramBytes + 1; // one more, so an oversized datagram shows as such
    private const int ReplyBufferBytes = MingerCodec.MaxDatagramBytes + 2;
    private const int SocketBufferBytes = 1 << 20;
    private static readonly long ErrorLogIntervalMs = 5_000;
    private static readonly TimeSpan StopGatewayWait = TimeSpan.FromSeconds(5);

    private readonly IAccountDirectory accounts;
    private readonly IGatewayLookup? gateway;
    private readonly IEngineLog log;
    private readonly int receiveLoops;
    private readonly Counters counters = new();
    private readonly SemaphoreSlim gatewaySlots = new(MaxConcurrentGatewayLookups, MaxConcurrentGatewayLookups);
    private readonly CancellationTokenSource stopping = new();
    private readonly object lifecycle = new();
    private volatile State state;
    private Socket? socket;
    private Task[] loops = [];
    private LifecycleStage stage;
    private int gatewayInFlight;
    private long lastErrorLog = long.MinValue / 2;
    private long suppressedErrors;
    private string name = "Minger server";

    /// <param name="accounts">This server's accounts.</param>
    /// <param name="gateway">The peers, for the gateway option; null when the gateway is never used.</param>
    /// <param name="log">Where start, stop, configuration changes and failures are reported.</param>
    /// <param name="settings">The initial settings; the defaults (no secret, any source, default rate limit, no gateway) when null.</param>
    /// <param name="receiveLoops">Receive loops on the socket; 0 picks one per processor, 1 to 4.</param>
    public MingerServer(IAccountDirectory accounts, IGatewayLookup? gateway, IEngineLog log, MingerServerSettings? settings = null, int receiveLoops = 0)
    {
        ArgumentNullException.ThrowIfNull(accounts);
        ArgumentNullException.ThrowIfNull(log);
        ArgumentOutOfRangeException.ThrowIfNegative(receiveLoops);
        this.accounts = accounts;
        this.gateway = gateway;
        this.log = log;
        this.receiveLoops = receiveLoops == 0 ? Math.Clamp(Environment.ProcessorCount, 1, 4) : receiveLoops;
        settings ??= new MingerServerSettings();
        settings.Validate();
        state = new State(settings, previous: null);
    }

    /// <summary>The settings in force.</summary>
    public MingerServerSettings Settings => state.Settings;

    /// <summary>The address and port the server is bound to (the real port when port 0 was asked); null before <see cref="StartAsync"/>.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    /// <summary>Replaces the settings of a running (or not yet started) server; thread-safe, takes effect for the next datagram.</summary>
    /// <remarks>The per-source rate limit state is kept when the rate does not change, and starts afresh when it does.</remarks>
    public void Configure(MingerServerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        lock (lifecycle)
        {
            state = new State(settings, state);
            if (stage == LifecycleStage.Running)
                log.Write(LogLevel.Information, $"{name}: settings changed ({settings}).");
        }
    }

    /// <summary>
    /// Binds the UDP socket to <paramref name="endpoint"/> (IPv4 or IPv6; <c>[::]</c> also receives IPv4) and starts
    /// receiving. Returns once the socket is bound.
    /// </summary>
    /// <param name="ct">Cancels the start only; stop a running server with <see cref="StopAsync"/>.</param>
    /// <exception cref="DomainShareException"><see cref="ErrorIds.EndpointInUse"/> when another socket holds the
    /// endpoint; <see cref="ErrorIds.InvalidEndpoint"/> when the address is not on this machine or the port is not allowed.</exception>
    public Task StartAsync(IPEndPoint endpoint, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ct.ThrowIfCancellationRequested();
        lock (lifecycle)
        {
            if (stage != LifecycleStage.New)
                throw new InvalidOperationException(stage == LifecycleStage.Running
                    ? $"The Minger server is already listening on {LocalEndPoint}."
                    : "A stopped Minger server cannot be started again; create a new one.");
            var bound = Bind(endpoint);
            socket = bound;
            LocalEndPoint = (IPEndPoint)bound.LocalEndPoint!;
            name = $"Minger server {LocalEndPoint}";
            stage = LifecycleStage.Running;
            var token = stopping.Token;
            loops = new Task[receiveLoops];
            for (int i = 0; i < loops.Length; i++)
            {
                string threadName = $"Minger receive {(i + 1).ToString(CultureInfo.InvariantCulture)}";
                loops[i] = Task.Factory.StartNew(() => ReceiveLoop(bound, threadName, token), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default); // LongRunning: a thread of its own, not the pool's
            }
            log.Write(LogLevel.Information, $"{name}: listening ({receiveLoops.ToString(CultureInfo.InvariantCulture)} receive loops; {state.Settings}).");
        }
        return Task.CompletedTask;
    }

    private static Socket Bind(IPEndPoint endpoint)
    {
        var bound = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // Another socket on the same port must fail our bind, not share the port with us.
            bound.ExclusiveAddressUse = true;
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
                bound.DualMode = true;
            if (OperatingSystem.IsWindows())
            {
                // SIO_UDP_CONNRESET off: an ICMP "port unreachable" for one of our replies must not fail the next receive.
                // (The receive loop ignores ConnectionReset as well, should this not be honoured.)
                const int SioUdpConnReset = unchecked((int)0x9800000C);
                try { bound.IOControl(SioUdpConnReset, [0, 0, 0, 0], null); }
                catch (SocketException) { }
            }
            try { bound.ReceiveBufferSize = SocketBufferBytes; }
            catch (SocketException) { } // the system caps it; a smaller buffer only means earlier drops in a burst
            bound.Bind(endpoint);
            return bound;
        }
        catch (SocketException e)
        {
            bound.Dispose();
            throw BindFailed(endpoint, e);
        }
        catch
        {
            bound.Dispose();
            throw;
        }
    }

    private static DomainShareException BindFailed(IPEndPoint endpoint, SocketException e)
        => ListenerErrors.BindFailed("Minger", "UDP", "minger.endpoint", endpoint, e);

    /// <summary>Stops receiving, lets running gateway lookups finish (up to a few seconds) and closes the socket.</summary>
    /// <param name="ct">Stops waiting for the loops and lookups to finish.</param>
    public async Task StopAsync(CancellationToken ct = default)
    {
        Socket? bound;
        Task[] running;
        lock (lifecycle)
        {
            if (stage == LifecycleStage.Stopped) return;
            bool wasRunning = stage == LifecycleStage.Running;
            stage = LifecycleStage.Stopped;
            if (!wasRunning) return;
            bound = socket;
            running = loops;
        }
        stopping.Cancel();
        bound?.Dispose(); // also ends a receive that the token did not reach
        await Task.WhenAll(running).WaitAsync(ct).ConfigureAwait(false);
        var deadline = Environment.TickCount64 + (long)StopGatewayWait.TotalMilliseconds;
        while (Volatile.Read(ref gatewayInFlight) > 0 && Environment.TickCount64 < deadline)
            await Task.Delay(10, ct).ConfigureAwait(false);
        log.Write(LogLevel.Information, $"{name}: stopped.");
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); }
        catch (Exception e) { log.Write(LogLevel.Warning, $"{name}: stopping failed: {e.Message}"); }
    }

    /// <summary>A snapshot of the counters.</summary>
    public MingerServerStatistics GetStatistics()
    {
        var c = counters;
        return new MingerServerStatistics
        {
            Received = Interlocked.Read(ref c.Received),
            AnsweredInvalid = Interlocked.Read(ref c.Answered[0]),
            AnsweredAccessDenied = Interlocked.Read(ref c.Answered[1]),
            AnsweredBadCredentials = Interlocked.Read(ref c.Answered[2]),
            AnsweredUnknown = Interlocked.Read(ref c.Answered[3]),
            AnsweredCannotReceive = Interlocked.Read(ref c.Answered[4]),
            AnsweredExists = Interlocked.Read(ref c.Answered[5]),
            RateLimited = Interlocked.Read(ref c.RateLimited),
            Malformed = Interlocked.Read(ref c.Malformed),
            GatewayLookups = Interlocked.Read(ref c.GatewayLookups),
            GatewayFailures = Interlocked.Read(ref c.GatewayFailures),
            GatewayBusy = Interlocked.Read(ref c.GatewayBusy),
            Errors = Interlocked.Read(ref c.Errors),
        };
    }

    /// <summary>One receive loop, on a thread of its own: blocking receives until the socket is closed by <see cref="StopAsync"/>.</summary>
    private void ReceiveLoop(Socket bound, string threadName, CancellationToken ct)
    {
        try
        {
            Thread.CurrentThread.Name = threadName;
            var buffer = GC.AllocateUninitializedArray<byte>(ReceiveBufferBytes);
            var reply = GC.AllocateUninitializedArray<byte>(ReplyBufferBytes);
            var from = new SocketAddress(bound.AddressFamily);
            while (!ct.IsCancellationRequested)
            {
                int received;
                try
                {
                    // Blocking: the socket only ever sees synchronous calls, so it stays a blocking socket and the
                    // receive waits in the kernel. Closing the socket ends the wait (Interrupted or ObjectDisposed).
                    received = bound.ReceiveFrom(buffer, SocketFlags.None, from);
                }
                catch (Exception) when (ct.IsCancellationRequested) { break; }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    continue; // Windows reports an ICMP "port unreachable" for an earlier reply here
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.MessageSize)
                {
                    Interlocked.Increment(ref counters.Malformed); // Windows: a datagram larger than any valid query
                    continue;
                }
                catch (Exception e)
                {
                    Fault("receiving a datagram failed", e);
                    if (ct.WaitHandle.WaitOne(50)) break; // no busy loop on a broken socket
                    continue;
                }

                try
                {
                    Handle(bound, buffer.AsSpan(0, received), from, reply);
                }
                catch (Exception) when (ct.IsCancellationRequested) { break; }
                catch (Exception e)
                {
                    Fault("answering a datagram failed", e);
                }
            }
        }
        catch (Exception e)
        {
            // Nothing above should get here; a background loop must never let an exception escape.
            log.Write(LogLevel.Error, $"{name}: a receive loop ended on an unexpected error: {e}");
        }
    }

    private void Handle(Socket bound, ReadOnlySpan<byte> datagram, SocketAddress from, byte[] reply)
    {
        Interlocked.Increment(ref counters.Received);
        var current = state;
        var source = SourceKey.From(from);
        if (current.Limiter is { } limiter && !limiter.TryAcquire(source))
        {
            Interlocked.Increment(ref counters.RateLimited);
            return;
        }
        var outcome = Decide(current, datagram, source, out string mailbox, out var status);
        if (outcome == Outcome.Gateway)
        {
            StartGatewayLookup(bound, mailbox, from, current);
            return;
        }
        Send(bound, reply.AsSpan(0, MingerCodec.WriteReply(mailbox, status, reply)), from, status);
    }

    /// <summary>
    /// Sends a reply. Synchronous on purpose: a UDP send does not wait for the peer (it only copies the datagram to the
    /// socket's send buffer), and unlike <c>SendToAsync(…, SocketAddress, …)</c>, which on .NET 10 on Linux fails now and
    /// then with a NullReferenceException inside the runtime when two of them run at once on one socket, it shares no
    /// state between the receive loops and the gateway lookups.
    /// </summary>
    private void Send(Socket bound, ReadOnlySpan<byte> datagram, SocketAddress to, MingerStatus status)
    {
        // Counted before it leaves: whoever reads the counters after seeing the answer must find it counted.
        Interlocked.Increment(ref counters.Answered[(int)status]);
        try
        {
            bound.SendTo(datagram, SocketFlags.None, to);
        }
        catch
        {
            Interlocked.Decrement(ref counters.Answered[(int)status]);
            throw;
        }
    }

    private enum Outcome { Reply, Gateway }

    /// <summary>Everything but the rate limit and the I/O: which status a datagram from <paramref name="source"/> gets, or that the gateway must be asked.</summary>
    private Outcome Decide(State current, ReadOnlySpan<byte> datagram, SourceKey source, out string mailbox, out MingerStatus status)
    {
        if (current.AllowedSources is { } allowed && !allowed.Contains(source))
        {
            mailbox = MingerCodec.EchoToken(datagram);
            status = MingerStatus.AccessDenied;
            return Outcome.Reply;
        }
        if (!MingerCodec.TryParseQuery(datagram, out var query))
        {
            Interlocked.Increment(ref counters.Malformed);
            mailbox = MingerCodec.EchoToken(datagram);
            status = MingerStatus.Invalid;
            return Outcome.Reply;
        }
        mailbox = query!.Mailbox;
        var settings = current.Settings;
        if (settings.Secret is { } secret
            && (query.Digest is null ? !settings.AllowAnonymous : !MingerCodec.VerifyDigest(secret, mailbox, query.Digest)))
        {
            status = MingerStatus.BadCredentials;
            return Outcome.Reply;
        }
        if (query.IsProbe)
        {
            status = MingerStatus.Exists;
            return Outcome.Reply;
        }
        if (!Ascii.IsValid(mailbox) && !RoutingAddress.IsWellFormed(mailbox))
        {
            status = MingerStatus.Unknown; // a spelling SMTP refuses (501 5.1.3) is never an address that exists here
            return Outcome.Reply;
        }
        status = accounts.GetState(mailbox) switch
        {
            AccountState.Active => MingerStatus.Exists,
            AccountState.Disabled or AccountState.Reserved => MingerStatus.CannotReceive,
            _ => MingerStatus.Unknown,
        };
        if (status == MingerStatus.Unknown && settings.Gateway && gateway is not null
            && !current.Peers.Contains(source) && !query.IsForwarded && current.IsShared(mailbox))
            return Outcome.Gateway;
        return Outcome.Reply;
    }

    private void StartGatewayLookup(Socket bound, string mailbox, SocketAddress from, State current)
    {
        if (!gatewaySlots.Wait(0))
        {
            Interlocked.Increment(ref counters.GatewayBusy);
            return;
        }
        Interlocked.Increment(ref gatewayInFlight);
        Interlocked.Increment(ref counters.GatewayLookups);
        var replyTo = new SocketAddress(from.Family, from.Size);
        from.Buffer.Span[..from.Size].CopyTo(replyTo.Buffer.Span);
        // Off the receive loop: a lookup that does synchronous work before its first await must not hold the loop either.
        _ = Task.Run(() => GatewayLookupAsync(bound, mailbox, replyTo, current.Settings.GatewayTimeout), CancellationToken.None);
    }

    private async Task GatewayLookupAsync(Socket bound, string mailbox, SocketAddress replyTo, TimeSpan timeout)
    {
        try
        {
            bool exists;
            using (var limit = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token))
            {
                limit.CancelAfter(timeout);
                try
                {
                    exists = await gateway!.ExistsOnPeerAsync(mailbox, limit.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (!stopping.IsCancellationRequested)
                {
                    Interlocked.Increment(ref counters.GatewayFailures);
                    Fault($"the gateway lookup of '{mailbox}' failed, the query is left unanswered", e, countAsError: false);
                    return;
                }
            }
            var status = exists ? MingerStatus.Exists : MingerStatus.Unknown;
            Send(bound, MingerCodec.EncodeReply(mailbox, status), replyTo, status);
        }
        catch (Exception) when (stopping.IsCancellationRequested) { }
        catch (Exception e)
        {
            Fault($"answering the gateway lookup of '{mailbox}' failed", e);
        }
        finally
        {
            gatewaySlots.Release();
            Interlocked.Decrement(ref gatewayInFlight);
        }
    }

    /// <summary>Counts and logs a failure; at most one line every few seconds, with the number of those not logged.</summary>
    private void Fault(string what, Exception e, bool countAsError = true)
    {
        if (countAsError) Interlocked.Increment(ref counters.Errors);
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref lastErrorLog);
        if (now - last < ErrorLogIntervalMs || Interlocked.CompareExchange(ref lastErrorLog, now, last) != last)
        {
            Interlocked.Increment(ref suppressedErrors);
            return;
        }
        long suppressed = Interlocked.Exchange(ref suppressedErrors, 0);
        var more = suppressed > 0 ? $" ({suppressed.ToString(CultureInfo.InvariantCulture)} more failures in the last seconds were not logged)" : "";
        // Socket and time-out failures are expected now and then: their message says it all. Anything else is a bug: keep the stack.
        var detail = e is SocketException or TimeoutException or OperationCanceledException ? $"{e.GetType().Name}: {e.Message}" : e.ToString();
        try { log.Write(LogLevel.Warning, $"{name}: {what}: {detail}{more}"); }
        catch (Exception) { } // a failing log must not take the loop down either
    }

    private enum LifecycleStage { New, Running, Stopped }

    private sealed class Counters
    {
        public long Received;
        public long RateLimited;
        public long Malformed;
        public long GatewayLookups;
        public long GatewayFailures;
        public long GatewayBusy;
        public long Errors;
        public readonly long[] Answered = new long[6];
    }

    /// <summary>One set of settings, compiled for the datagram path.</summary>
    private sealed class State
    {
        public State(MingerServerSettings settings, State? previous)
        {
            Settings = settings;
            AllowedSources = settings.AllowedSources.Count == 0 ? null : new SourceFilter(settings.AllowedSources);
            Peers = settings.PeerAddresses.Select(SourceKey.From).ToHashSet();
            SharedDomains = CompileDomains(settings.SharedDomains);
            Limiter = settings.RateLimitPerSecond == 0 ? null
                : previous?.Limiter is { } kept && kept.RatePerSecond == settings.RateLimitPerSecond ? kept
                : new SourceRateLimiter(settings.RateLimitPerSecond);
        }

        public MingerServerSettings Settings { get; }
        public SourceFilter? AllowedSources { get; }
        public HashSet<SourceKey> Peers { get; }
        public HashSet<string> SharedDomains { get; }
        public SourceRateLimiter? Limiter { get; }

        public bool IsShared(string mailbox)
        {
            int at = mailbox.LastIndexOf('@');
            return at >= 0 && SharedDomains.Contains(mailbox[(at + 1)..]);
        }

        /// <summary>Case-insensitive, and each name in both its Unicode and its ASCII (punycode) form.</summary>
        private static HashSet<string> CompileDomains(IEnumerable<string> names)
        {
            var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            var idn = new IdnMapping();
            foreach (var raw in names)
            {
                var domain = raw?.Trim().TrimEnd('.');
                if (string.IsNullOrEmpty(domain)) continue;
                set.Add(domain);
                try { set.Add(idn.GetAscii(domain)); } catch (ArgumentException) { }
                try { set.Add(idn.GetUnicode(domain)); } catch (ArgumentException) { }
            }
            return set;
        }
    }
}
