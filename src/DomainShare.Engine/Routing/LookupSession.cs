using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Routing;

/// <summary>
/// Everything a lookup needs outside the relay (Resolve-DomainShareAddress, Test-DomainSharePeer, the cache cmdlets):
/// the configuration as loaded, the account store, the shared verification cache and a Minger client.
/// </summary>
public sealed class LookupSession : IDisposable
{
    private LookupSession(ServerConfiguration configuration, string dataDirectory, IEngineLog log)
    {
        Configuration = configuration;
        DataDirectory = dataDirectory;
        Accounts = AccountStore.Open(dataDirectory);
        try
        {
            Cache = VerificationCache.Open(dataDirectory, () => Configuration.DomainSharing, log);
        }
        catch
        {
            Accounts.Dispose();
            throw;
        }
        Client = new MingerClient(log);
        Resolver = new AddressResolver(() => Configuration, Accounts, Cache, Client, log);
    }

    public ServerConfiguration Configuration { get; }
    public string DataDirectory { get; }
    public AccountStore Accounts { get; }
    public VerificationCache Cache { get; }
    public MingerClient Client { get; }
    public AddressResolver Resolver { get; }

    public MingerQueryOptions QueryOptions => MingerQueryOptions.From(Configuration.Minger);

    public static LookupSession Open(ConfigurationStore store, IEngineLog? log = null)
    {
        var configuration = store.Load();
        return new LookupSession(configuration, store.ResolveDataDirectory(configuration), log ?? NullEngineLog.Instance);
    }

    public void Dispose()
    {
        Cache.Dispose();
        Accounts.Dispose();
    }
}
