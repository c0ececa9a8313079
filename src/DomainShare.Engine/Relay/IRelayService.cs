using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Relay;

/// <summary>One listener or worker the relay runs (the Minger server now; the SMTP server and queue later).</summary>
public interface IRelayService : IAsyncDisposable
{
    string Name { get; }

    /// <summary>The endpoint the service listens on, once started (for the state file and Get-DomainShareRelay).</summary>
    string? Endpoint { get; }

    /// <summary>Binds and starts. A failure (port in use) throws a DomainShareException naming the endpoint.</summary>
    Task StartAsync(ServerConfiguration configuration, CancellationToken ct);

    /// <summary>Applies a changed configuration while running. Settings that need a new socket are logged as needing a restart.</summary>
    void Reconfigure(ServerConfiguration configuration);

    /// <summary>Counters for Get-DomainShareRelay, such as queries answered by status.</summary>
    IEnumerable<KeyValuePair<string, long>> Counters();

    /// <summary>Handles a control-channel command meant for this service (queue-refresh); false when it is not one.</summary>
    bool TryHandle(string command) => false;
}

/// <summary>What a relay service is built from: the shared pieces of one server.</summary>
public sealed record RelayContext(ConfigurationStore Store, string DataDirectory, Func<ServerConfiguration> Configuration, IEngineLog Log);
