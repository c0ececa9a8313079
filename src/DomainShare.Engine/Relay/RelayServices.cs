using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Routing;

namespace DomainShare.Engine.Relay;

/// <summary>The services a relay runs, built from one server's shared pieces.</summary>
public static class RelayServices
{
    /// <summary>The standard set: the Minger server (answering peers from the accounts, with the gateway option).</summary>
    public static IReadOnlyList<IRelayService> Create(RelayContext context) => [new MingerRelayService(context)];
}

/// <summary>
/// The Minger server of a relay, with the account store, the verification cache and the resolver behind its gateway
/// option. Secret, allowed sources, rate limit, peers and gateway follow configuration changes at once; a new
/// endpoint needs a restart (logged).
/// </summary>
public sealed class MingerRelayService : IRelayService
{
    private readonly RelayContext context;
    private AccountStore? accounts;
    private VerificationCache? cache;
    private MingerServer? server;
    private Endpoint? boundEndpoint;

    public MingerRelayService(RelayContext context) => this.context = context;

    public string Name => "Minger";

    public string? Endpoint => server?.LocalEndPoint is { } ep ? FormatEndpoint(ep) : null;

    public AddressResolver? Resolver { get; private set; }

    public async Task StartAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        accounts = AccountStore.Open(context.DataDirectory);
        cache = VerificationCache.Open(context.DataDirectory, () => context.Configuration().DomainSharing, context.Log);
        Resolver = new AddressResolver(context.Configuration, accounts, cache, new MingerClient(context.Log), context.Log);
        server = new MingerServer(accounts, Resolver, context.Log, await SettingsAsync(configuration, ct).ConfigureAwait(false));
        boundEndpoint = configuration.Minger.Endpoint;
        await server.StartAsync(new IPEndPoint(boundEndpoint.Address, boundEndpoint.Port), ct).ConfigureAwait(false);
    }

    public void Reconfigure(ServerConfiguration configuration)
    {
        if (server is null) return;
        if (configuration.Minger.Endpoint != boundEndpoint)
            context.Log.Write(LogLevel.Warning, $"The Minger endpoint changed to {configuration.Minger.Endpoint}; the relay keeps {boundEndpoint} until it is restarted.");
        // Peer names may need DNS: resolve off the reload loop, then swap the settings in one step.
        _ = Task.Run(async () =>
        {
            try { server.Configure(await SettingsAsync(configuration, CancellationToken.None).ConfigureAwait(false)); }
            catch (Exception ex) { context.Log.Write(LogLevel.Error, $"Minger settings not applied: {ex.Message}"); }
        });
    }

    /// <summary>Server settings from the configuration; the peers' addresses are looked up so that their queries are never forwarded on.</summary>
    private async Task<MingerServerSettings> SettingsAsync(ServerConfiguration configuration, CancellationToken ct)
    {
        var addresses = new List<IPAddress>();
        foreach (var peer in configuration.Peers)
        {
            string host = peer.Name.Trim('[', ']');
            if (IPAddress.TryParse(host, out var literal)) { addresses.Add(literal); continue; }
            try { addresses.AddRange(await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false)); }
            catch (SocketException ex) { context.Log.Write(LogLevel.Warning, $"Peer '{peer.Name}' does not resolve ({ex.Message}); its queries are treated as a gateway's until it does."); }
        }
        return MingerServerSettings.FromConfiguration(configuration, addresses);
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

    private static string FormatEndpoint(IPEndPoint ep)
        => ep.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ep.Address}]:{ep.Port}" : $"{ep.Address}:{ep.Port}";

    public async ValueTask DisposeAsync()
    {
        if (server is not null) await server.DisposeAsync().ConfigureAwait(false);
        cache?.Dispose();
        accounts?.Dispose();
    }
}
