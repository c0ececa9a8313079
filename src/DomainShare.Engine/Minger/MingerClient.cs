using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Minger;

/// <summary>
/// Asks peers over Minger whether they hold a mailbox (docs/minger-protocol.md, "Client rules").
/// <para>
/// One fan-out asks every peer at once from one fresh ephemeral UDP socket per address family, so its cost is one round
/// trip to the slowest answering peer, not a sum over peers. A reply counts only when it comes from the exact address and
/// port that was asked and echoes the exact mailbox asked; anything else is dropped. Each attempt waits
/// <see cref="MingerQueryOptions.Timeout"/>; peers that have not answered are asked again up to
/// <see cref="MingerQueryOptions.Retries"/> times. Host names are resolved with DNS (IP literals and bracketed IPv6
/// names are used as they are), within the peer's whole time budget; a name with several addresses is asked at the
/// next address on each retry.
/// </para>
/// <para>
/// A fan-out is one driver loop (sends, retries, time-outs) plus one receive loop per socket that records replies; there
/// is no task per peer, so 50 peers cost 50 datagrams each way and little else.
/// </para>
/// The client holds no state between calls and is safe to share between threads.
/// </summary>
public sealed class MingerClient
{
    private const int ReceiveBufferBytes = 2048;
    private readonly HostAddressResolver resolveHost;
    private readonly IEngineLog log;

    /// <param name="log">Where dropped datagrams and peer failures are reported (debug level).</param>
    /// <param name="resolveHost">Name resolution; <see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/> when null. It should not block.</param>
    public MingerClient(IEngineLog? log = null, HostAddressResolver? resolveHost = null)
    {
        this.log = log ?? NullEngineLog.Instance;
        this.resolveHost = resolveHost ?? ((host, ct) => Dns.GetHostAddressesAsync(host, ct));
    }

    /// <summary>
    /// Asks every peer in <paramref name="peers"/> about <paramref name="mailbox"/> in parallel.
    /// Throws <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> is cancelled; every other
    /// problem (DNS, socket, timeout, status 0/1/2) is reported per peer, never thrown.
    /// </summary>
    /// <param name="onPeerResult">
    /// Progress: called once for each peer as soon as it has answered or failed (not for peers abandoned after a 5), from
    /// whichever thread learnt it, never under a lock; an exception it throws is logged and ignored.
    /// </param>
    public async Task<MingerFanOutResult> AskAsync(string mailbox, IReadOnlyList<PeerConfiguration> peers, MingerFanOutMode mode,
        MingerQueryOptions? options = null, CancellationToken cancellationToken = default, Action<MingerPeerResult>? onPeerResult = null)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        ArgumentNullException.ThrowIfNull(peers);
        if (!MingerCodec.IsValidMailbox(mailbox))
            throw new ArgumentException($"'{mailbox}' is not a mailbox Minger can ask about.", nameof(mailbox));
        options ??= MingerQueryOptions.Default;
        options.Validate();
        cancellationToken.ThrowIfCancellationRequested();
        long started = Stopwatch.GetTimestamp();
        if (peers.Count == 0)
            return new MingerFanOutResult(mailbox, [], null, TimeSpan.Zero);

        var fanOut = new FanOut(this, mailbox, mode, options, peers, onPeerResult);
        try
        {
            await fanOut.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await fanOut.DisposeAsync().ConfigureAwait(false);
        }
        var results = fanOut.Results();
        return new MingerFanOutResult(mailbox, results, fanOut.Winner, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>
    /// Sends the liveness probe <c>*</c> (signed with the peer's secret, if any) to one peer: is it reachable, does it
    /// accept our secret and source address, and how long does a round trip take.
    /// </summary>
    public async Task<MingerProbeResult> ProbeAsync(PeerConfiguration peer, MingerQueryOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(peer);
        var fanOut = await AskAsync(MingerCodec.Probe, [peer], MingerFanOutMode.WaitForAll, options, cancellationToken).ConfigureAwait(false);
        var r = fanOut.Peers[0];
        bool accepted = r.Status == MingerStatus.Exists;
        string? error = r.Error;
        if (!accepted && error is null && r.Status is { } status)
            error = $"Peer '{peer.Name}' answered the probe with {(int)status} ({Describe(status)}) instead of 5.";
        return new MingerProbeResult(peer.Name, r.Status is not null, accepted, r.Status, r.RoundTrip, r.Failure, r.EndPoint, error);
    }

    /// <summary>A short English meaning of a status digit.</summary>
    public static string Describe(MingerStatus status) => status switch
    {
        MingerStatus.Invalid => "invalid request",
        MingerStatus.AccessDenied => "access denied to our address",
        MingerStatus.BadCredentials => "credentials missing or wrong",
        MingerStatus.Unknown => "address unknown",
        MingerStatus.CannotReceive => "address exists but cannot receive mail",
        MingerStatus.Exists => "address exists",
        _ => "unknown status",
    };

    /// <summary>True for <c>192.0.2.1</c>, <c>[2001:db8::1]</c> and <c>2001:db8::1</c>; false for host names.</summary>
    internal static bool TryParseLiteral(string name, out IPAddress address)
    {
        address = IPAddress.None;
        if (name.Length > 2 && name[0] == '[' && name[^1] == ']')
        {
            if (IPAddress.TryParse(name.AsSpan(1, name.Length - 2), out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6)
            {
                address = v6;
                return true;
            }
            return false;
        }
        if ((name.Contains(':') || Endpoint.IsDottedQuad(name)) && IPAddress.TryParse(name, out var ip))
        {
            address = ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
            return true;
        }
        return false;
    }

    /// <summary>Host names through the resolver, bounded by <paramref name="budget"/>; only IPv4 and IPv6 addresses are kept.</summary>
    private async Task<IPAddress[]> ResolveAsync(string name, TimeSpan budget, CancellationToken cancellationToken)
    {
        var lookup = resolveHost(name, cancellationToken);
        IPAddress[] found;
        try
        {
            found = await lookup.WaitAsync(budget, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The abandoned lookup may still fail later: observe it so it never surfaces as an unobserved exception.
            _ = lookup.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            throw;
        }
        var usable = found.Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                          .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
                          .Distinct()
                          .ToArray();
        if (usable.Length == 0)
            throw new SocketException((int)SocketError.HostNotFound);
        return usable;
    }

    /// <summary>One peer within a fan-out. Every field is guarded by the fan-out's lock.</summary>
    private sealed class PeerState(PeerConfiguration peer, byte[] query, int maxAttempts)
    {
        public readonly PeerConfiguration Peer = peer;
        public readonly byte[] Query = query;
        public readonly long[] SendTimes = new long[maxAttempts];
        public readonly List<IPEndPoint> Asked = new(1);
        /// <summary>Null while the host name is being resolved.</summary>
        public IPAddress[]? Addresses;
        /// <summary>Datagrams attempted (sent or failed to send).</summary>
        public int Attempts;
        /// <summary>Datagrams really sent.</summary>
        public int Sent;
        /// <summary>When the current attempt times out (a <see cref="Stopwatch"/> timestamp).</summary>
        public long Deadline;
        public string? SendError;
        public MingerPeerResult? Result;
        public bool Done => Result is not null;
    }

    /// <summary>
    /// The state of one fan-out: the peers, the sockets (one per address family, opened on first use), their receive
    /// loops, and the driver loop that sends, retries and times out.
    /// </summary>
    private sealed class FanOut : IAsyncDisposable
    {
        private readonly object gate = new();
        private readonly MingerClient client;
        private readonly string mailbox;
        private readonly MingerFanOutMode mode;
        private readonly MingerQueryOptions options;
        private readonly PeerState[] states;
        private readonly Dictionary<IPEndPoint, List<PeerState>> byEndPoint = [];
        private readonly CancellationTokenSource closing = new();
        private readonly long timeoutTicks;
        private TaskCompletionSource wake = NewSignal();
        private Socket? v4;
        private Socket? v6;
        private int open;
        private bool stopped;
        private bool disposed;
        private MingerPeerResult? winner;

        private readonly Action<MingerPeerResult>? onPeerResult;

        public FanOut(MingerClient client, string mailbox, MingerFanOutMode mode, MingerQueryOptions options, IReadOnlyList<PeerConfiguration> peers,
            Action<MingerPeerResult>? onPeerResult)
        {
            this.onPeerResult = onPeerResult;
            this.client = client;
            this.mailbox = mailbox;
            this.mode = mode;
            this.options = options;
            timeoutTicks = (long)(options.Timeout.TotalSeconds * Stopwatch.Frequency);
            states = new PeerState[peers.Count];
            open = peers.Count;
            for (int i = 0; i < peers.Count; i++)
            {
                var peer = peers[i] ?? throw new ArgumentException("A peer in the list is null.", nameof(peers));
                states[i] = new PeerState(peer, MingerCodec.EncodeQuery(mailbox, peer.Secret, options.Forwarded ? MingerCodec.ForwardedTags : null), options.Retries + 1);
            }
        }

        public MingerPeerResult? Winner
        {
            get { lock (gate) return winner; }
        }

        private IEngineLog Log => client.log;

        public async Task RunAsync(CancellationToken cancellationToken)
        {
            // Literals are ready at once; host names are resolved concurrently and join when they resolve.
            var budget = options.Timeout * (options.Retries + 1);
            foreach (var s in states)
            {
                if (TryParseLiteral(s.Peer.Name, out var literal))
                    s.Addresses = [literal];
                else
                    _ = ResolveIntoAsync(s, budget, cancellationToken);
            }

            var toSend = new List<(PeerState State, IPEndPoint EndPoint, int Attempt)>(states.Length);
            var timedOut = new List<MingerPeerResult>();
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                long now = Stopwatch.GetTimestamp();
                long next = long.MaxValue;
                bool waiting = false;
                Task signal;
                lock (gate)
                {
                    if (stopped || open == 0) return;
                    // A fresh signal before looking at the state: anything that happens from here on completes it.
                    wake = NewSignal();
                    signal = wake.Task;
                    foreach (var s in states)
                    {
                        if (s.Done) continue;
                        waiting = true;
                        if (s.Addresses is null) continue; // still resolving
                        if (s.Attempts == 0 || now >= s.Deadline)
                        {
                            if (s.Attempts >= s.SendTimes.Length)
                            {
                                timedOut.Add(FinishUnanswered(s));
                                continue;
                            }
                            var endPoint = new IPEndPoint(s.Addresses[s.Attempts % s.Addresses.Length], s.Peer.MingerPort);
                            if (!byEndPoint.TryGetValue(endPoint, out var list))
                                byEndPoint[endPoint] = list = new List<PeerState>(1);
                            if (!list.Contains(s)) list.Add(s);
                            s.Asked.Add(endPoint);
                            s.SendTimes[s.Attempts] = now; // before sending: a reply can never predate its query
                            s.Deadline = now + timeoutTicks;
                            toSend.Add((s, endPoint, s.Attempts));
                            s.Attempts++;
                        }
                        next = Math.Min(next, s.Deadline);
                    }
                }
                foreach (var result in timedOut) Report(result);
                timedOut.Clear();
                if (!waiting || Volatile.Read(ref open) == 0) return;

                foreach (var (s, endPoint, attempt) in toSend)
                {
                    try
                    {
                        var socket = SocketFor(endPoint.AddressFamily);
                        await socket.SendToAsync(s.Query, SocketFlags.None, endPoint, cancellationToken).ConfigureAwait(false);
                        lock (gate) s.Sent++;
                    }
                    catch (SocketException ex)
                    {
                        lock (gate)
                        {
                            s.SendError = $"cannot send to {endPoint}: {ex.Message}";
                            s.SendTimes[attempt] = long.MaxValue;
                            s.Deadline = Stopwatch.GetTimestamp(); // try the next attempt (next address) at once
                        }
                        next = 0;
                    }
                }
                toSend.Clear();

                long waitTicks = next == long.MaxValue ? -1 : next - Stopwatch.GetTimestamp();
                if (next != long.MaxValue && waitTicks <= 0) continue;
                try
                {
                    if (waitTicks < 0)
                        await signal.WaitAsync(cancellationToken).ConfigureAwait(false);
                    else
                        await signal.WaitAsync(TimeSpan.FromSeconds((double)waitTicks / Stopwatch.Frequency + 0.0005), cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                }
            }
        }

        /// <summary>The results in peer order; peers left open when a 5 ended the fan-out are abandoned.</summary>
        public MingerPeerResult[] Results()
        {
            lock (gate)
            {
                var results = new MingerPeerResult[states.Length];
                for (int i = 0; i < states.Length; i++)
                {
                    var s = states[i];
                    results[i] = s.Result ?? new MingerPeerResult(s.Peer.Name, null, MingerFailure.Abandoned, null, s.Attempts, s.Asked.LastOrDefault(), null);
                }
                return results;
            }
        }

        private async Task ResolveIntoAsync(PeerState s, TimeSpan budget, CancellationToken cancellationToken)
        {
            try
            {
                var addresses = await client.ResolveAsync(s.Peer.Name, budget, cancellationToken).ConfigureAwait(false);
                lock (gate)
                {
                    if (!s.Done) s.Addresses = addresses;
                }
            }
            catch (Exception ex)
            {
                string why = ex is TimeoutException or OperationCanceledException ? "the lookup timed out" : ex.Message;
                var failed = new MingerPeerResult(s.Peer.Name, null, MingerFailure.DnsFailure, null, 0, null,
                    $"Cannot resolve the host name of peer '{s.Peer.Name}': {why}.");
                bool finished = false;
                lock (gate)
                {
                    if (!s.Done && !disposed)
                    {
                        Finish(s, failed);
                        finished = true;
                    }
                }
                if (finished) Report(failed);
            }
            Wake();
        }

        /// <summary>Every attempt is used up and the last one timed out (or none could be sent). Under the lock.</summary>
        private MingerPeerResult FinishUnanswered(PeerState s)
        {
            var last = s.Asked.LastOrDefault();
            var result = s.Sent == 0
                ? new MingerPeerResult(s.Peer.Name, null, MingerFailure.SocketError, null, s.Attempts, last,
                    $"Peer '{s.Peer.Name}': {s.SendError ?? "the query could not be sent"}.")
                : new MingerPeerResult(s.Peer.Name, null, MingerFailure.Timeout, null, s.Attempts, last,
                    $"Peer '{s.Peer.Name}' ({last}) did not answer: {s.Attempts} attempt(s) of {options.Timeout.TotalMilliseconds:0} ms each"
                    + (s.SendError is null ? "." : $"; {s.SendError}."));
            Finish(s, result);
            return result;
        }

        /// <summary>Tells the caller's progress callback, outside the lock.</summary>
        private void Report(MingerPeerResult result)
        {
            if (onPeerResult is null) return;
            try { onPeerResult(result); }
            catch (Exception ex) { Log.Write(LogLevel.Warning, $"Minger: the progress callback failed: {ex.Message}"); }
        }

        /// <summary>
        /// Records a peer's result. Under the lock. Returns true when the driver must wake up (all answered, or a 5 ends
        /// the fan-out); the caller wakes it after reporting progress, so every callback has run before the fan-out returns.
        /// </summary>
        private bool Finish(PeerState s, MingerPeerResult result)
        {
            s.Result = result;
            open--;
            if (result.Error is not null)
                Log.Write(LogLevel.Debug, "Minger: " + result.Error);
            if (result.Status == MingerStatus.Exists && result.Failure == MingerFailure.None && winner is null)
            {
                winner = result;
                if (mode == MingerFanOutMode.StopAtFirstExists)
                    stopped = true;
            }
            return stopped || open == 0;
        }

        /// <summary>
        /// Wakes the driver. Never under the lock: the signal runs its continuation inline, so the driver (and the caller
        /// after it) goes on in this thread without a thread-pool hop.
        /// </summary>
        private void Wake()
        {
            TaskCompletionSource current;
            lock (gate) current = wake;
            current.TrySetResult();
        }

        private static TaskCompletionSource NewSignal() => new();

        private Socket SocketFor(AddressFamily family)
        {
            lock (gate)
            {
                ObjectDisposedException.ThrowIf(disposed, this);
                if (family == AddressFamily.InterNetwork)
                {
                    if (v4 is null)
                    {
                        v4 = Open(family);
                        _ = ReceiveLoopAsync(v4);
                    }
                    return v4;
                }
                if (v6 is null)
                {
                    v6 = Open(family);
                    _ = ReceiveLoopAsync(v6);
                }
                return v6;
            }
        }

        private static Socket Open(AddressFamily family)
        {
            var socket = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                if (OperatingSystem.IsWindows())
                {
                    // Without this, an ICMP "port unreachable" from one peer fails the next receive on Windows (WSAECONNRESET).
                    const int SIO_UDP_CONNRESET = unchecked((int)0x9800000C);
                    socket.IOControl(SIO_UDP_CONNRESET, [0, 0, 0, 0], null);
                }
                socket.Bind(new IPEndPoint(family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0));
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        /// <summary>Runs inline up to its first pending receive (no data can be there yet), then on socket completions.</summary>
        private async Task ReceiveLoopAsync(Socket socket)
        {
            var buffer = new byte[ReceiveBufferBytes];
            EndPoint any = socket.AddressFamily == AddressFamily.InterNetwork ? new IPEndPoint(IPAddress.Any, 0) : new IPEndPoint(IPAddress.IPv6Any, 0);
            var token = closing.Token;
            while (!token.IsCancellationRequested)
            {
                SocketReceiveFromResult received;
                try
                {
                    received = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) { return; }
                catch (ObjectDisposedException) { return; }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize
                                                   or SocketError.NetworkReset or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
                {
                    continue;
                }
                catch (SocketException ex)
                {
                    if (!token.IsCancellationRequested)
                        Log.Write(LogLevel.Warning, $"Minger: the reply socket failed ({ex.SocketErrorCode}: {ex.Message}); unanswered peers will time out.");
                    return;
                }
                catch (Exception ex)
                {
                    Log.Write(LogLevel.Error, $"Minger: unexpected error in the reply loop: {ex}");
                    return;
                }
                try
                {
                    Dispatch((IPEndPoint)received.RemoteEndPoint, buffer.AsSpan(0, received.ReceivedBytes));
                }
                catch (Exception ex)
                {
                    Log.Write(LogLevel.Error, $"Minger: a reply could not be handled: {ex}");
                }
            }
        }

        /// <summary>Matches a datagram to the peer asked at exactly that address and port, for exactly our mailbox.</summary>
        private void Dispatch(IPEndPoint from, ReadOnlySpan<byte> datagram)
        {
            long at = Stopwatch.GetTimestamp();
            if (!MingerCodec.TryParseReply(datagram, out var echoed, out var status))
            {
                Log.Write(LogLevel.Debug, $"Minger: dropped a malformed reply from {from}.");
                return;
            }
            if (!string.Equals(echoed, mailbox, StringComparison.Ordinal))
            {
                Log.Write(LogLevel.Debug, $"Minger: dropped a reply from {from} for '{echoed}', not the mailbox asked.");
                return;
            }
            if (from.Address.IsIPv4MappedToIPv6)
                from = new IPEndPoint(from.Address.MapToIPv4(), from.Port);
            MingerPeerResult? recorded = null;
            bool wakeDriver = false;
            lock (gate)
            {
                if (byEndPoint.TryGetValue(from, out var candidates))
                {
                    foreach (var s in candidates)
                    {
                        if (s.Done) continue;
                        long askedAt = long.MinValue;
                        for (int i = 0; i < s.Attempts; i++)
                            if (s.SendTimes[i] <= at && s.SendTimes[i] > askedAt) askedAt = s.SendTimes[i];
                        TimeSpan? rtt = askedAt == long.MinValue ? null : Stopwatch.GetElapsedTime(askedAt, at);
                        var result = status is MingerStatus.Unknown or MingerStatus.CannotReceive or MingerStatus.Exists
                            ? new MingerPeerResult(s.Peer.Name, status, MingerFailure.None, rtt, s.Attempts, from, null)
                            : new MingerPeerResult(s.Peer.Name, status, MingerFailure.Rejected, rtt, s.Attempts, from,
                                $"Peer '{s.Peer.Name}' ({from}) answered {(int)status}: {Describe(status)}.");
                        wakeDriver = Finish(s, result);
                        recorded = result;
                        break;
                    }
                }
            }
            if (recorded is not null)
            {
                Report(recorded);
                if (wakeDriver) Wake();
            }
            else
                Log.Write(LogLevel.Debug, $"Minger: dropped a reply from {from}, which was not asked (or already answered).");
        }

        /// <summary>
        /// Closes the sockets. The receive loops end on their own right after (they catch everything and touch nothing
        /// but this fan-out); not waiting for them saves a thread-pool hop on every lookup.
        /// </summary>
        public ValueTask DisposeAsync()
        {
            lock (gate)
            {
                if (disposed) return ValueTask.CompletedTask;
                disposed = true;
            }
            closing.Cancel();
            v4?.Dispose();
            v6?.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
