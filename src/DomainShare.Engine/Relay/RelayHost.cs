using System.Diagnostics;
using System.Runtime.InteropServices;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Relay;

/// <summary>
/// The relay process: runs the services of one server (Minger now, SMTP later) from its configuration until it is
/// told to stop, publishes its state for Get-/Stop-DomainShareRelay, and picks up configuration changes by itself.
/// A second relay on the same data directory is refused (an exclusive lock the kernel releases if the process dies,
/// so a crash never blocks the next start).
/// </summary>
public sealed class RelayHost
{
    private static readonly TimeSpan ConfigurationPollInterval = TimeSpan.FromSeconds(1);
    private readonly ConfigurationStore store;
    private readonly Func<RelayContext, IReadOnlyList<IRelayService>> createServices;
    private readonly IEngineLog? echo;
    private readonly Stopwatch sinceStart = new();
    private volatile ServerConfiguration? configuration;
    private DateTimeOffset configurationLoaded;
    private string? configurationError;
    private IReadOnlyList<IRelayService> services = [];

    public RelayHost(ConfigurationStore store, Func<RelayContext, IReadOnlyList<IRelayService>> createServices, IEngineLog? echo = null)
    {
        this.store = store;
        this.createServices = createServices;
        this.echo = echo;
    }

    /// <summary>Raised once the services are listening and the state file is written (tests and the launcher wait for it).</summary>
    public event Action<RelayState>? Started;

    /// <summary>Runs until <paramref name="ct"/> is cancelled, a stop command arrives, or SIGTERM/SIGINT is received.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var config = store.Load();
        string dataDirectory = store.ResolveDataDirectory(config);
        Directory.CreateDirectory(dataDirectory);
        using var relayLock = AcquireLock(dataDirectory);
        using var log = new FileLog(Path.Combine(dataDirectory, RelayState.LogFileName), also: echo);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var signals = RegisterSignals(stop, log);
        configuration = config;
        configurationLoaded = DateTimeOffset.UtcNow;
        sinceStart.Start();
        var context = new RelayContext(store, dataDirectory, () => configuration!, log);
        log.Write(LogLevel.Information, $"Relay starting for {config.ServerName} (configuration {store.FilePath}, process {Environment.ProcessId}).");
        services = createServices(context);
        var started = new List<IRelayService>();
        RelayControlServer? control = null;
        try
        {
            foreach (var service in services)
            {
                await service.StartAsync(config, stop.Token).ConfigureAwait(false);
                started.Add(service);
                log.Write(LogLevel.Information, $"{service.Name} listening on {service.Endpoint}.");
            }
            control = new RelayControlServer(RelayControlServer.NewToken(), (command, _) => HandleAsync(command, stop), log);
            control.Start();
            var state = new RelayState
            {
                ProcessId = Environment.ProcessId,
                Started = DateTimeOffset.UtcNow,
                ConfigPath = store.FilePath,
                ControlPort = control.Port,
                Token = control.Token,
                MingerEndpoint = services.FirstOrDefault(s => s.Name == "Minger")?.Endpoint,
                SmtpEndpoint = services.FirstOrDefault(s => s.Name == "SMTP")?.Endpoint,
                Version = typeof(RelayHost).Assembly.GetName().Version?.ToString(3),
            };
            state.Save(dataDirectory);
            Started?.Invoke(state);
            log.Write(LogLevel.Information, "Relay started.");
            await WatchConfiguration(log, stop.Token).ConfigureAwait(false);
            log.Write(LogLevel.Information, "Relay stopping.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.Write(LogLevel.Error, ex is DomainShareException ? ex.Message : ex.ToString());
            throw;
        }
        finally
        {
            RelayState.Delete(dataDirectory, Environment.ProcessId);
            if (control is not null) await control.DisposeAsync().ConfigureAwait(false);
            for (int i = started.Count - 1; i >= 0; i--)
            {
                try { await started[i].DisposeAsync().ConfigureAwait(false); }
                catch (Exception ex) { log.Write(LogLevel.Error, $"{started[i].Name} did not stop cleanly: {ex.Message}"); }
            }
            foreach (var service in services.Except(started))
                await service.DisposeAsync().ConfigureAwait(false);
            log.Write(LogLevel.Information, "Relay stopped.");
        }
    }

    private Task<ControlResponse> HandleAsync(string command, CancellationTokenSource stop)
    {
        switch (command)
        {
            case "status":
                return Task.FromResult(new ControlResponse(true, Status: Snapshot()));
            case "stop":
                var status = Snapshot();
                // Answer first, then stop: the caller waits for the process to exit.
                _ = Task.Delay(50).ContinueWith(_ => stop.Cancel(), TaskScheduler.Default);
                return Task.FromResult(new ControlResponse(true, Status: status));
            default:
                foreach (var service in services)
                    if (service.TryHandle(command))
                        return Task.FromResult(new ControlResponse(true, Status: Snapshot()));
                return Task.FromResult(new ControlResponse(false, $"Unknown command '{command}'."));
        }
    }

    private RelayStatus Snapshot()
    {
        var counters = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var service in services)
            foreach (var (name, value) in service.Counters())
                counters[name] = value;
        return new RelayStatus
        {
            ProcessId = Environment.ProcessId,
            Started = DateTimeOffset.UtcNow - sinceStart.Elapsed,
            ConfigPath = store.FilePath,
            MingerEndpoint = services.FirstOrDefault(s => s.Name == "Minger")?.Endpoint,
            SmtpEndpoint = services.FirstOrDefault(s => s.Name == "SMTP")?.Endpoint,
            ConfigurationLoaded = configurationLoaded,
            ConfigurationError = configurationError,
            Counters = counters,
            Version = typeof(RelayHost).Assembly.GetName().Version?.ToString(3),
        };
    }

    /// <summary>
    /// Reloads the configuration whenever the file changes (checked every second: cheap, because the store parses a
    /// file only when its content hash changed). An invalid file is logged and ignored: the relay keeps the last good one.
    /// </summary>
    private async Task WatchConfiguration(IEngineLog log, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(ConfigurationPollInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                ServerConfiguration next;
                try
                {
                    next = store.Load();
                }
                catch (DomainShareException ex)
                {
                    if (configurationError != ex.Message)
                        log.Write(LogLevel.Error, $"Configuration change ignored, running on the last good one: {ex.Message}");
                    configurationError = ex.Message;
                    continue;
                }
                configurationError = null;
                if (ReferenceEquals(next, configuration)) continue;
                configuration = next;
                configurationLoaded = DateTimeOffset.UtcNow;
                log.Write(LogLevel.Information, "Configuration reloaded.");
                foreach (var service in services)
                {
                    try { service.Reconfigure(next); }
                    catch (Exception ex) { log.Write(LogLevel.Error, $"{service.Name} could not apply the new configuration: {ex.Message}"); }
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static FileStream AcquireLock(string dataDirectory)
    {
        string path = Path.Combine(dataDirectory, RelayState.LockFileName);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            var holder = RelayState.Load(dataDirectory);
            throw new DomainShareException(ErrorIds.RelayAlreadyRunning, ErrorKind.AlreadyExists,
                $"A relay is already running on the data directory '{dataDirectory}'{(holder is null ? "" : $" (process {holder.ProcessId})")}.",
                "Stop it with Stop-DomainShareRelay, or look at it with Get-DomainShareRelay.", dataDirectory, ex);
        }
    }

    private static IDisposable RegisterSignals(CancellationTokenSource stop, IEngineLog log)
    {
        var registrations = new List<IDisposable>();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true; // graceful: let RunAsync unwind
            log.Write(LogLevel.Information, $"Received {context.Signal}.");
            stop.Cancel();
        }
        registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop));
        registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop));
        if (!OperatingSystem.IsWindows())
            // A detached relay must outlive the terminal that started it.
            registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, context => context.Cancel = true));
        return new Registrations(registrations);
    }

    private sealed class Registrations(List<IDisposable> items) : IDisposable
    {
        public void Dispose() => items.ForEach(i => i.Dispose());
    }
}
