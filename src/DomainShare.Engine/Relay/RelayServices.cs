using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Delivery;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Routing;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Relay;

/// <summary>The services a relay runs, built from one server's shared pieces.</summary>
public static class RelayServices
{
    /// <summary>
    /// The standard set, in start order: the shared core (accounts, verification cache, resolver), the Minger server
    /// (answering peers, with the gateway option), and the SMTP relay (reception, queue, delivery). They stop in reverse.
    /// </summary>
    public static IReadOnlyList<IRelayService> Create(RelayContext context)
    {
        var core = new ServerCore(context);
        return [core, new MingerRelayService(context, core), new SmtpRelayService(context, core)];
    }

    internal static string Format(IPEndPoint ep)
        => ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";
}

/// <summary>
/// What the Minger and SMTP services share: the account store, the verification cache, the Minger client and the
/// resolver, plus the addresses of the configured peers (queries and mail from a peer are told apart from a gateway's).
/// </summary>
public sealed class ServerCore(RelayContext context) : IRelayService
{
    private volatile IReadOnlyDictionary<IPAddress, string> peerAddresses = new Dictionary<IPAddress, string>();
    private Lookups? lookups;

    public string Name => "Core";
    public string? Endpoint => null;
    public AccountStore Accounts => Started.Accounts;
    public AddressResolver Resolver => Started.Resolver;

    private Lookups Started => lookups ?? throw new InvalidOperationException("The server core has not started.");

    /// <summary>Raised after the peers' addresses were looked up again (configuration change).</summary>
    public event Action? PeersChanged;

    public IReadOnlyCollection<IPAddress> PeerAddresses => peerAddresses.Keys.ToArray();

    /// <summary>The configured peer a client address belongs to, or null.</summary>
    public string? PeerAt(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        return peerAddresses.TryGetValue(address, out var name) ? name : null;
    }

    public async Task StartAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        lookups = new Lookups(context.DataDirectory, context.Configuration, context.Log);
        peerAddresses = await LookUpPeersAsync(configuration, ct).ConfigureAwait(false);
    }

    public void Reconfigure(ServerConfiguration configuration)
        => _ = Task.Run(async () =>
        {
            try
            {
                peerAddresses = await LookUpPeersAsync(configuration, CancellationToken.None).ConfigureAwait(false);
                PeersChanged?.Invoke();
            }
            catch (Exception ex) { context.Log.Write(LogLevel.Error, $"Peer addresses not refreshed: {ex.Message}"); }
        });

    private async Task<IReadOnlyDictionary<IPAddress, string>> LookUpPeersAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        var map = new Dictionary<IPAddress, string>();
        foreach (var peer in configuration.Peers)
        {
            string host = peer.Name.Trim('[', ']');
            if (IPAddress.TryParse(host, out var literal)) { map.TryAdd(literal, peer.Name); continue; }
            try
            {
                foreach (var address in await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false))
                    map.TryAdd(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, peer.Name);
            }
            catch (SocketException ex)
            {
                context.Log.Write(LogLevel.Warning, $"Peer '{peer.Name}' does not resolve ({ex.Message}); until it does, its queries count as a gateway's and its mail as a client's.");
            }
        }
        return map;
    }

    public IEnumerable<KeyValuePair<string, long>> Counters() => [];

    public ValueTask DisposeAsync()
    {
        lookups?.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The Minger server of a relay, answering from the shared account store, with the resolver behind its gateway
/// option. Secret, allowed sources, rate limit, peers and gateway follow configuration changes at once; a new
/// endpoint needs a restart (logged).
/// </summary>
public sealed class MingerRelayService(RelayContext context, ServerCore core) : IRelayService
{
    private MingerServer? server;
    private Configuration.Endpoint? boundEndpoint;

    public string Name => "Minger";

    public string? Endpoint => server?.LocalEndPoint is { } ep ? RelayServices.Format(ep) : null;

    public async Task StartAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        server = new MingerServer(core.Accounts, core.Resolver, context.Log, MingerServerSettings.FromConfiguration(configuration, core.PeerAddresses));
        boundEndpoint = configuration.Minger.Endpoint;
        await server.StartAsync(new IPEndPoint(boundEndpoint.Address, boundEndpoint.Port), ct).ConfigureAwait(false);
        core.PeersChanged += () => Apply(context.Configuration());
    }

    public void Reconfigure(ServerConfiguration configuration)
    {
        if (configuration.Minger.Endpoint != boundEndpoint)
            context.Log.Write(LogLevel.Warning, $"The Minger endpoint changed to {configuration.Minger.Endpoint}; the relay keeps {boundEndpoint} until it is restarted.");
        Apply(configuration);
    }

    private void Apply(ServerConfiguration configuration)
    {
        try { server?.Configure(MingerServerSettings.FromConfiguration(configuration, core.PeerAddresses)); }
        catch (DomainShareException ex) { context.Log.Write(LogLevel.Error, $"Minger settings not applied: {ex.Message}"); }
    }

    public IEnumerable<KeyValuePair<string, long>> Counters()
    {
        if (server is null) yield break;
        var s = server.GetStatistics();
        yield return new("MingerReceived", s.Received);
        yield return new("MingerAnswered0Invalid", s.AnsweredInvalid);
        yield return new("MingerAnswered1AccessDenied", s.AnsweredAccessDenied);
        yield return new("MingerAnswered2BadCredentials", s.AnsweredBadCredentials);
        yield return new("MingerAnswered3Unknown", s.AnsweredUnknown);
        yield return new("MingerAnswered4CannotReceive", s.AnsweredCannotReceive);
        yield return new("MingerAnswered5Exists", s.AnsweredExists);
        yield return new("MingerRateLimited", s.RateLimited);
        yield return new("MingerGatewayLookups", s.GatewayLookups);
        yield return new("MingerErrors", s.Errors);
    }

    public async ValueTask DisposeAsync()
    {
        if (server is not null) await server.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// The SMTP side of a relay: reception (RCPT TO decided by <see cref="RecipientPolicy"/>), the durable queue, and the
/// delivery agent (Maildirs, peers, relay host, bounces). Limits and the TLS certificate follow configuration changes;
/// a new endpoint or retry schedule needs a restart (logged).
/// </summary>
public sealed class SmtpRelayService(RelayContext context, ServerCore core) : IRelayService
{
    private MessageQueue? queue;
    private DeliveryAgent? agent;
    private SmtpServer? server;
    private ServerConfiguration? started;

    public string Name => "SMTP";

    public string? Endpoint => server?.LocalEndPoint is { } ep ? RelayServices.Format(ep) : null;

    public async Task StartAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        started = configuration;
        queue = MessageQueue.Open(context.DataDirectory, log: context.Log);
        if (queue.Recovery is { } recovery && (recovery.Messages > 0 || recovery.DraftsDeleted > 0 || recovery.Quarantined > 0))
            context.Log.Write(LogLevel.Information, $"Queue: {recovery.Messages} message(s) to deliver, {recovery.DraftsDeleted} unfinished draft(s) deleted, {recovery.Quarantined} quarantined.");
        agent = new DeliveryAgent(queue, core.Accounts, core.Resolver, context.DataDirectory, DeliveryOptions(configuration, context.Configuration), context.Log);
        await agent.StartAsync(ct).ConfigureAwait(false);
        server = new SmtpServer(Options(configuration), new RecipientPolicy(context.Configuration, core.Resolver, core.PeerAt, OverQuota), queue, context.Log);
        var endpoint = configuration.Smtp.Endpoint;
        await server.StartAsync(new IPEndPoint(endpoint.Address, endpoint.Port), ct).ConfigureAwait(false);
    }

    /// <summary>The delivery agent's options from the queue settings; read once at start (a change applies after a restart).</summary>
    internal static DeliveryAgentOptions DeliveryOptions(ServerConfiguration configuration, Func<ServerConfiguration> live) => new()
    {
        Configuration = live,
        Retry = new RetrySchedule(configuration.Queue.RetryInterval, 2, configuration.Queue.MaxRetryInterval),
        // An unreachable peer is not tried again before the next retry is due anyway.
        UnreachableHold = configuration.Queue.RetryInterval < TimeSpan.FromMinutes(1) ? configuration.Queue.RetryInterval : TimeSpan.FromMinutes(1),
        ConnectTimeout = configuration.Queue.ConnectTimeout,
        CommandTimeout = configuration.Queue.CommandTimeout,
        PeerAttemptsBeforeRelayHost = configuration.Queue.PeerAttemptsBeforeRelayHost,
        MaxConnectionsPerDestination = configuration.Queue.MaxConnectionsPerPeer,
    };

    private bool OverQuota(string address)
        => core.Accounts.Get(address) is { } account && Maildir.IsOverQuota(account, context.DataDirectory);

    private SmtpServerOptions Options(ServerConfiguration c) => new()
    {
        ServerName = c.ServerName,
        MaxMessageBytes = c.Smtp.MaxMessageBytes,
        MaxRecipients = c.Smtp.MaxRecipients,
        MaxConnections = c.Smtp.MaxConnections,
        MaxConnectionsPerSource = c.Smtp.MaxConnectionsPerSource,
        MaxHops = c.Smtp.MaxHops,
        CommandTimeout = c.Smtp.CommandTimeout,
        DataTimeout = c.Smtp.DataTimeout,
        Certificate = LoadCertificate(c),
    };

    /// <summary>The STARTTLS certificate from PEM files (relative to the configuration's folder), or null for none.</summary>
    private X509Certificate2? LoadCertificate(ServerConfiguration c)
    {
        if (c.Smtp.TlsCertificate is null) return null;
        string folder = Path.GetDirectoryName(context.Store.FilePath)!;
        string certificate = Path.GetFullPath(c.Smtp.TlsCertificate, folder);
        string? key = c.Smtp.TlsKey is null ? null : Path.GetFullPath(c.Smtp.TlsKey, folder);
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificate, key);
            // An ephemeral PEM key cannot serve TLS on every platform: round-trip through PKCS#12.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidData,
                $"The STARTTLS certificate '{certificate}' cannot be used: {ex.Message}",
                "Give a PEM certificate and key (smtp.tlsCertificate, smtp.tlsKey), or remove them with Set-DomainShareConfig -ClearTls.", certificate, ex);
        }
    }

    public void Reconfigure(ServerConfiguration configuration)
    {
        if (server is null || started is null) return;
        if (configuration.Smtp.Endpoint != started.Smtp.Endpoint)
            context.Log.Write(LogLevel.Warning, $"The SMTP endpoint changed to {configuration.Smtp.Endpoint}; the relay keeps {started.Smtp.Endpoint} until it is restarted.");
        if (configuration.Queue with { Lifetime = started.Queue.Lifetime } != started.Queue)
            context.Log.Write(LogLevel.Warning, "The retry schedule, delivery timeouts or connections per peer changed; they apply when the relay is restarted.");
        try { server.Configure(Options(configuration)); }
        catch (DomainShareException ex) { context.Log.Write(LogLevel.Error, $"SMTP settings not applied: {ex.Message}"); }
    }

    public bool TryHandle(string command)
    {
        if (command != "queue-refresh" || queue is null) return false;
        agent?.ClearHolds();
        queue.Refresh();
        return true;
    }

    public IEnumerable<KeyValuePair<string, long>> Counters()
    {
        if (server is not null)
        {
            var s = server.GetStatistics();
            yield return new("SmtpConnectionsAccepted", s.ConnectionsAccepted);
            yield return new("SmtpConnectionsRefused", s.ConnectionsRefused);
            yield return new("SmtpActiveSessions", s.ActiveSessions);
            yield return new("SmtpMessagesAccepted", s.MessagesAccepted);
            yield return new("SmtpMessagesRefused", s.MessagesRefused);
            yield return new("SmtpMessagesAbandoned", s.MessagesAbandoned);
            yield return new("SmtpSessionFailures", s.SessionFailures);
        }
        if (queue is not null) yield return new("QueueMessages", queue.Count);
        if (agent is not null)
            foreach (var counter in agent.Counters())
                yield return counter;
    }

    public async ValueTask DisposeAsync()
    {
        if (server is not null) await server.DisposeAsync().ConfigureAwait(false);
        if (agent is not null) await agent.DisposeAsync().ConfigureAwait(false);
        queue?.Dispose();
    }
}
