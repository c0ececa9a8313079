using DomainShare.Engine.Configuration;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Smtp;

/// <summary>
/// The SMTP server (RFC 5321, with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 and STARTTLS) that
/// receives mail for the relay: each RCPT is decided by an <see cref="IRecipientPolicy"/>, each message is streamed
/// into an <see cref="IMessageSink"/> and answered 250 only once the sink has committed it.
/// </summary>
/// <remarks>
/// <para>One task per connection, reading through <see cref="System.IO.Pipelines"/>. A session's failure is caught,
/// logged and ends that session only; the accept loop never stops on a client's doing.</para>
/// <para>Options can be replaced while running with <see cref="Configure"/>; each command and each new connection sees
/// one consistent set. A server is started once; after <see cref="StopAsync"/> make a new one.</para>
/// <para>Stopping: the listener closes, sessions between transactions are answered <c>421 4.3.2</c> at once, sessions
/// in the middle of a transaction may finish it within <see cref="SmtpServerOptions.ShutdownGracePeriod"/> (and are
/// then answered 421 before their next one); whatever is still open after that is closed with 421, and a message
/// whose content was not complete is dropped (the client will send it again).</para>
/// </remarks>
public sealed class SmtpServer : IAsyncDisposable
{
    private const int ListenBacklog = 512;
    private static readonly long ErrorLogIntervalMs = 5_000;
    private static readonly TimeSpan AbortWait = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan RefusalTimeout = TimeSpan.FromSeconds(1);

    private readonly IEngineLog log;
    private readonly CancellationTokenSource stopping = new();
    private readonly CancellationTokenSource aborting = new();
    private readonly object lifecycle = new();
    private readonly object sources = new();
    private readonly Dictionary<SourceKey, int> perSource = [];
    private readonly ConcurrentDictionary<SmtpSession, byte> sessions = new();
    private readonly string idPrefix = Convert.ToHexString(RandomNumberGenerator.GetBytes(4));
    private volatile State state;
    private Socket? listener;
    private Task acceptLoop = Task.CompletedTask;
    private LifecycleStage stage;
    private int connections;
    private long sessionCounter;
    private long accepted, refused, messagesAccepted, messagesRefused, messagesAbandoned, failures;
    private long lastErrorLog = long.MinValue / 2;
    private long suppressedErrors;
    private string name = "SMTP server";

    /// <param name="options">Limits, timeouts, names and the STARTTLS certificate.</param>
    /// <param name="policy">Decides each RCPT TO.</param>
    /// <param name="sink">Takes each accepted message.</param>
    /// <param name="log">Where start, stop, accepted messages and failures are reported.</param>
    /// <exception cref="DomainShareException"><see cref="ErrorIds.InvalidSetting"/> for options a server cannot run with.</exception>
    public SmtpServer(SmtpServerOptions options, IRecipientPolicy policy, IMessageSink sink, IEngineLog log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(sink);
        ArgumentNullException.ThrowIfNull(log);
        options.Validate();
        Policy = policy;
        Sink = sink;
        this.log = log;
        state = new State(options);
    }

    /// <summary>The options in force.</summary>
    public SmtpServerOptions Options => state.Options;

    /// <summary>The address and port the server listens on (the real port when port 0 was asked); null before <see cref="StartAsync"/>.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    internal IRecipientPolicy Policy { get; }
    internal IMessageSink Sink { get; }
    internal State Current => state;
    internal CancellationToken StoppingToken => stopping.Token;
    internal CancellationToken AbortToken => aborting.Token;

    /// <summary>Replaces the options of a running (or not yet started) server; thread-safe, takes effect for the next command and connection.</summary>
    /// <exception cref="DomainShareException"><see cref="ErrorIds.InvalidSetting"/>; the options in force are kept.</exception>
    public void Configure(SmtpServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var compiled = new State(options);
        lock (lifecycle)
        {
            state = compiled;
            if (stage == LifecycleStage.Running) Log(LogLevel.Information, $"{name}: options changed ({options}).");
        }
    }

    /// <summary>Binds <paramref name="endpoint"/> (IPv4 or IPv6; <c>[::]</c> also takes IPv4) and starts accepting. Returns once listening.</summary>
    /// <param name="ct">Cancels the start only; stop a running server with <see cref="StopAsync"/>.</param>
    /// <exception cref="DomainShareException"><see cref="ErrorIds.EndpointInUse"/> when another socket listens there;
    /// <see cref="ErrorIds.InvalidEndpoint"/> when the address is not this machine's or the port is not allowed.</exception>
    public Task StartAsync(IPEndPoint endpoint, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ct.ThrowIfCancellationRequested();
        lock (lifecycle)
        {
            if (stage != LifecycleStage.New)
                throw new InvalidOperationException(stage == LifecycleStage.Running
                    ? $"The SMTP server is already listening on {LocalEndPoint}."
                    : "A stopped SMTP server cannot be started again; create a new one.");
            var bound = Bind(endpoint);
            listener = bound;
            LocalEndPoint = (IPEndPoint)bound.LocalEndPoint!;
            name = $"SMTP server {LocalEndPoint}";
            stage = LifecycleStage.Running;
            acceptLoop = Task.Run(() => AcceptLoopAsync(bound, stopping.Token), CancellationToken.None);
            Log(LogLevel.Information, $"{name}: listening ({state.Options}).");
        }
        return Task.CompletedTask;
    }

    private static Socket Bind(IPEndPoint endpoint)
    {
        var bound = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Windows would otherwise let another program bind the same port over ours.
            if (OperatingSystem.IsWindows()) bound.ExclusiveAddressUse = true;
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
                bound.DualMode = true;
            bound.Bind(endpoint);
            bound.Listen(ListenBacklog);
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
        => ListenerErrors.BindFailed("SMTP", "TCP", "smtp.endpoint", endpoint, e);

    /// <summary>
    /// Stops accepting, answers idle sessions 421 at once, lets sessions finish their transaction within the grace
    /// period, then closes whatever is left with 421. Returns when every session has ended.
    /// </summary>
    /// <param name="ct">Stops waiting (the sessions are still told to close).</param>
    public async Task StopAsync(CancellationToken ct = default)
    {
        Socket? bound;
        lock (lifecycle)
        {
            if (stage == LifecycleStage.Stopped) return;
            bool wasRunning = stage == LifecycleStage.Running;
            stage = LifecycleStage.Stopped;
            if (!wasRunning) return;
            bound = listener;
        }
        bound?.Dispose();
        stopping.Cancel();
        try
        {
            await acceptLoop.WaitAsync(ct).ConfigureAwait(false);
            if (!await WaitForSessionsAsync(state.Options.ShutdownGracePeriod, ct).ConfigureAwait(false))
            {
                Log(LogLevel.Information, $"{name}: closing {sessions.Count.ToString(CultureInfo.InvariantCulture)} session(s) still open after the grace period.");
                aborting.Cancel();
                await WaitForSessionsAsync(AbortWait, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            if (!aborting.IsCancellationRequested && ct.IsCancellationRequested) aborting.Cancel();
        }
        Log(LogLevel.Information, $"{name}: stopped.");
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); }
        catch (Exception e) { Log(LogLevel.Warning, $"{name}: stopping failed: {e.Message}"); }
    }

    /// <summary>A snapshot of the counters.</summary>
    public SmtpServerStatistics GetStatistics() => new()
    {
        ConnectionsAccepted = Interlocked.Read(ref accepted),
        ConnectionsRefused = Interlocked.Read(ref refused),
        ActiveSessions = Volatile.Read(ref connections),
        MessagesAccepted = Interlocked.Read(ref messagesAccepted),
        MessagesRefused = Interlocked.Read(ref messagesRefused),
        MessagesAbandoned = Interlocked.Read(ref messagesAbandoned),
        SessionFailures = Interlocked.Read(ref failures),
    };

    private async Task<bool> WaitForSessionsAsync(TimeSpan wait, CancellationToken ct)
    {
        long until = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        while (!sessions.IsEmpty)
        {
            if (Environment.TickCount64 >= until) return false;
            await Task.Delay(10, ct).ConfigureAwait(false);
        }
        return true;
    }

    private async Task AcceptLoopAsync(Socket bound, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                Socket client;
                try
                {
                    client = await bound.AcceptAsync(ct).ConfigureAwait(false);
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    continue; // the client gave up before we took the connection
                }
                catch (Exception e)
                {
                    Fault($"{name}: accepting a connection failed", e);
                    try { await Task.Delay(50, ct).ConfigureAwait(false); } // no busy loop when out of file descriptors
                    catch (OperationCanceledException) { break; }
                    continue;
                }
                try
                {
                    Admit(client);
                }
                catch (Exception e)
                {
                    Fault($"{name}: starting a session failed", e);
                    client.Dispose();
                }
            }
        }
        catch (Exception e)
        {
            // Nothing above should get here; a background loop must never let an exception escape.
            Log(LogLevel.Error, $"{name}: the accept loop ended on an unexpected error: {e}");
        }
    }

    private void Admit(Socket client)
    {
        if (client.RemoteEndPoint is not IPEndPoint remote || client.LocalEndPoint is not IPEndPoint local)
        {
            client.Dispose(); // already disconnected
            return;
        }
        if (remote.Address.IsIPv4MappedToIPv6) remote = new IPEndPoint(remote.Address.MapToIPv4(), remote.Port);
        if (local.Address.IsIPv4MappedToIPv6) local = new IPEndPoint(local.Address.MapToIPv4(), local.Port);
        var current = state;
        var source = SourceKey.From(remote.Address);
        byte[]? refusal = null;
        lock (sources)
        {
            if (connections >= current.Options.MaxConnections) refusal = current.TooManyConnections;
            else if (perSource.GetValueOrDefault(source) >= current.Options.MaxConnectionsPerSource) refusal = current.TooManyFromSource;
            else
            {
                connections++;
                perSource[source] = perSource.GetValueOrDefault(source) + 1;
            }
        }
        if (refusal is not null)
        {
            Interlocked.Increment(ref refused);
            Warn($"{name}: refused a connection from {remote.Address}: {(ReferenceEquals(refusal, current.TooManyConnections) ? "too many connections" : "too many connections from this address")}.");
            _ = RefuseAsync(client, refusal);
            return;
        }
        Interlocked.Increment(ref accepted);
        SmtpSession session;
        try
        {
            client.NoDelay = true;
            session = new SmtpSession(this, client, NewSessionId(), remote, local, current.Options);
        }
        catch
        {
            Release(remote.Address);
            throw;
        }
        sessions.TryAdd(session, 0);
        _ = session.RunAsync(); // never throws; ends with SessionEnded
    }

    private static async Task RefuseAsync(Socket client, byte[] reply)
    {
        try
        {
            using var timeout = new CancellationTokenSource(RefusalTimeout);
            await client.SendAsync(reply, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
            var scratch = new byte[512];
            while (await client.ReceiveAsync(scratch, SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0) { }
        }
        catch (Exception)
        {
            // Refusing is best effort.
        }
        finally
        {
            client.Dispose();
        }
    }

    private string NewSessionId() => string.Create(CultureInfo.InvariantCulture, $"{idPrefix}{Interlocked.Increment(ref sessionCounter):X6}");

    private void Release(IPAddress address)
    {
        var source = SourceKey.From(address);
        lock (sources)
        {
            connections--;
            int left = perSource.GetValueOrDefault(source) - 1;
            if (left > 0) perSource[source] = left;
            else perSource.Remove(source);
        }
    }

    /// <summary>The session has said its last word and is closing: its connection no longer counts against the limits.</summary>
    internal void SessionClosing(SmtpSession session) => Release(session.Remote.Address);

    internal void SessionEnded(SmtpSession session) => sessions.TryRemove(session, out _);

    internal void SessionFailed(SmtpSession session, Exception e)
    {
        Interlocked.Increment(ref failures);
        Throttled(LogLevel.Error, $"{name}: SMTP session {session.Id} from {session.Remote.Address} failed: {e}");
    }

    internal void CountAccepted() => Interlocked.Increment(ref messagesAccepted);
    internal void CountRefused() => Interlocked.Increment(ref messagesRefused);
    internal void CountAbandoned() => Interlocked.Increment(ref messagesAbandoned);

    internal void Log(LogLevel level, string message)
    {
        try { log.Write(level, message); }
        catch (Exception) { } // a failing log must not take a session down
    }

    /// <summary>Logs an expected kind of failure (a spool error, a refused connection) as a warning; at most one line every few seconds.</summary>
    internal void Fault(string what, Exception e)
    {
        var detail = e is SocketException or IOException or TimeoutException or OperationCanceledException or SmtpStorageException
            ? $"{e.GetType().Name}: {e.Message}" : e.ToString();
        Warn($"{what}: {detail}");
    }

    internal void Warn(string message) => Throttled(LogLevel.Warning, message);

    private void Throttled(LogLevel level, string message)
    {
        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref lastErrorLog);
        if (now - last < ErrorLogIntervalMs || Interlocked.CompareExchange(ref lastErrorLog, now, last) != last)
        {
            Interlocked.Increment(ref suppressedErrors);
            return;
        }
        long suppressed = Interlocked.Exchange(ref suppressedErrors, 0);
        var more = suppressed > 0 ? $" ({suppressed.ToString(CultureInfo.InvariantCulture)} more failures in the last seconds were not logged)" : "";
        Log(level, message + more);
    }

    private enum LifecycleStage { New, Running, Stopped }

    /// <summary>One set of options with the replies that depend on them, encoded once.</summary>
    internal sealed class State
    {
        public State(SmtpServerOptions options)
        {
            Options = options;
            var host = options.ServerName;
            Greeting = Ascii($"220 {host} ESMTP DomainShare ready");
            Ehlo = Ascii(EhloReply(options, startTls: false));
            EhloWithStartTls = Ascii(EhloReply(options, startTls: true));
            HeloReply = Ascii($"250 {host}");
            Bye = Ascii($"221 2.0.0 {host} closing connection");
            ShuttingDown = Ascii($"421 4.3.2 {host} Service shutting down, closing connection");
            TooManyErrors = Ascii($"421 4.7.0 {host} Too many errors, closing connection");
            IdleTimeout = Ascii($"421 4.4.2 {host} Timeout waiting for the client, closing connection");
            SessionTimeLimit = Ascii($"421 4.4.2 {host} Session time limit reached, closing connection");
            TooManyConnections = Ascii($"421 4.7.0 {host} Too many connections, try again later");
            TooManyFromSource = Ascii($"421 4.7.0 {host} Too many connections from your address, try again later");
            TlsContext = options.Certificate is null ? null : SslStreamCertificateContext.Create(options.Certificate, additionalCertificates: null, offline: true);
        }

        public SmtpServerOptions Options { get; }
        public byte[] Greeting { get; }
        public byte[] Ehlo { get; }
        public byte[] EhloWithStartTls { get; }
        public byte[] HeloReply { get; }
        public byte[] Bye { get; }
        public byte[] ShuttingDown { get; }
        public byte[] TooManyErrors { get; }
        public byte[] IdleTimeout { get; }
        public byte[] SessionTimeLimit { get; }
        public byte[] TooManyConnections { get; }
        public byte[] TooManyFromSource { get; }
        public SslStreamCertificateContext? TlsContext { get; }

        private static string EhloReply(SmtpServerOptions options, bool startTls)
        {
            var lines = new List<string>
            {
                options.ServerName,
                "PIPELINING",
                string.Create(CultureInfo.InvariantCulture, $"SIZE {options.MaxMessageBytes}"),
                "8BITMIME",
                "ENHANCEDSTATUSCODES",
                "SMTPUTF8",
            };
            if (startTls) lines.Add("STARTTLS");
            var b = new StringBuilder();
            for (int i = 0; i < lines.Count; i++)
                b.Append(i == lines.Count - 1 ? "250 " : "250-").Append(lines[i]).Append("\r\n");
            return b.ToString(0, b.Length - 2);
        }

        private static byte[] Ascii(string reply) => Encoding.ASCII.GetBytes(reply + "\r\n");
    }
}

/// <summary>What an SMTP server has done since it started.</summary>
public sealed record SmtpServerStatistics
{
    public long ConnectionsAccepted { get; init; }
    /// <summary>Connections answered 421 at once because of <see cref="SmtpServerOptions.MaxConnections"/> or <see cref="SmtpServerOptions.MaxConnectionsPerSource"/>.</summary>
    public long ConnectionsRefused { get; init; }
    public int ActiveSessions { get; init; }
    /// <summary>Messages committed to the sink and answered 250.</summary>
    public long MessagesAccepted { get; init; }
    /// <summary>Messages refused after their content: too big, too many hops, bare CR/LF, a line too long.</summary>
    public long MessagesRefused { get; init; }
    /// <summary>Messages whose content never ended: the client went away or timed out, or the server stopped first. Nothing of them is kept.</summary>
    public long MessagesAbandoned { get; init; }
    /// <summary>Sessions that ended on an unexpected exception (logged as errors).</summary>
    public long SessionFailures { get; init; }
}
