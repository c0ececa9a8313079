using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Routing;

/// <summary>
/// The lookup pieces of one server, over its data directory: the account store, the verification cache, a Minger
/// client and the resolver on top of them. The relay holds one for its life (with the live configuration); the
/// cmdlets open one per command through <see cref="LookupSession"/>.
/// </summary>
public sealed class Lookups : IDisposable
{
    public Lookups(string dataDirectory, Func<ServerConfiguration> configuration, IEngineLog log)
    {
        Accounts = AccountStore.Open(dataDirectory);
        try
        {
            Cache = VerificationCache.Open(dataDirectory, () => configuration().DomainSharing, log);
        }
        catch
        {
            Accounts.Dispose();
            throw;
        }
        Client = new MingerClient(log);
        Resolver = new AddressResolver(configuration, Accounts, Cache, Client, log);
    }

    public AccountStore Accounts { get; }
    public VerificationCache Cache { get; }
    public MingerClient Client { get; }
    public AddressResolver Resolver { get; }

    public void Dispose()
    {
        Cache.Dispose();
        Accounts.Dispose();
    }
}

/// <summary>
/// Everything a lookup needs outside the relay (Resolve-DomainShareAddress, Test-DomainSharePeer, the account and
/// cache cmdlets): the configuration as loaded, and the server's <see cref="Lookups"/>.
/// </summary>
public sealed class LookupSession : IDisposable
{
    private readonly Lookups lookups;

    private LookupSession(ServerConfiguration configuration, string dataDirectory, IEngineLog log)
    {
        Configuration = configuration;
        DataDirectory = dataDirectory;
        lookups = new Lookups(dataDirectory, () => Configuration, log);
    }

    public ServerConfiguration Configuration { get; }
    public string DataDirectory { get; }
    public AccountStore Accounts => lookups.Accounts;
    public VerificationCache Cache => lookups.Cache;
    public MingerClient Client => lookups.Client;
    public AddressResolver Resolver => lookups.Resolver;

    public MingerQueryOptions QueryOptions => MingerQueryOptions.From(Configuration.Minger);

    public static LookupSession Open(ConfigurationStore store, IEngineLog? log = null)
    {
        var configuration = store.Load();
        return new LookupSession(configuration, store.ResolveDataDirectory(configuration), log ?? NullEngineLog.Instance);
    }

    public void Dispose() => lookups.Dispose();
}
