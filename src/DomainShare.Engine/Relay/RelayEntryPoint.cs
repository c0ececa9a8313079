using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Relay;

/// <summary>
/// The relay as a process of its own without PowerShell: the bundled host runs it for <c>domainshare -Relay
/// &lt;config&gt;</c>, which Start-DomainShareRelay uses for a background relay when it runs in that host. It is the
/// same <see cref="RelayHost"/> as <c>Start-DomainShareRelay -Wait</c>, without a runspace: the engine alone needs about
/// half the memory.
/// </summary>
public static class RelayEntryPoint
{
    /// <summary>
    /// The relay of <paramref name="store"/>, its log echoed to the console unless it was started in the background
    /// (<see cref="RelayLauncher.DetachedVariable"/>), announcing itself on standard output once it listens.
    /// </summary>
    public static RelayHost CreateHost(ConfigurationStore store)
    {
        bool detached = Environment.GetEnvironmentVariable(RelayLauncher.DetachedVariable) == "1";
        var host = new RelayHost(store, RelayServices.Create, detached ? null : new ConsoleLog());
        host.Started += state => Console.Out.WriteLine($"Relay running (process {state.ProcessId}); Minger {state.MingerEndpoint}. Stop with Ctrl+C or Stop-DomainShareRelay.");
        return host;
    }

    /// <summary>
    /// Runs the relay of the configuration file <paramref name="configPath"/> until Stop-DomainShareRelay, SIGTERM or
    /// Ctrl+C. Returns the exit code: 0 after a stop, 1 when the relay could not run (the reason on standard error and
    /// in relay.log).
    /// </summary>
    public static int Run(string configPath)
    {
        try
        {
            CreateHost(new ConfigurationStore(Path.GetFullPath(configPath))).RunAsync(CancellationToken.None).GetAwaiter().GetResult();
            return 0;
        }
        catch (DomainShareException ex)
        {
            Console.Error.WriteLine($"domainshare relay: {ex.Message}{(ex.RecommendedAction is { Length: > 0 } fix ? " " + fix : "")}");
            return 1;
        }
    }

    /// <summary>In the foreground the relay's log lines also go to the console (journald collects them under systemd).</summary>
    private sealed class ConsoleLog : IEngineLog
    {
        public void Write(LogLevel level, string message)
            => (level >= LogLevel.Warning ? Console.Error : Console.Out).WriteLine($"{level}: {message}");
    }
}
