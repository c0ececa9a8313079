using System.Diagnostics;
using System.Net;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Relay;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Several DomainShare servers of one test (or one class fixture): each with its own folder, configuration file,
/// data directory and loopback address. Relays are started and stopped with the cmdlets through the bundled host;
/// <see cref="Dispose"/> stops every relay it started (Stop-DomainShareRelay, then a kill by the process id if one
/// is still alive) and deletes the folder.
/// </summary>
public sealed class Cluster : IDisposable
{
    /// <summary>The domain every server of the tests hosts, shared between them.</summary>
    public const string Domain = "example.com";

    private readonly List<Server> servers = [];

    public Cluster(string name)
    {
        Root = Directory.CreateTempSubdirectory($"domainshare-e2e-{name}-").FullName;
    }

    public string Root { get; }

    public IReadOnlyList<Server> Servers => servers;

    /// <summary>
    /// A server named <paramref name="label"/> with its own loopback address and ports; nothing is written yet (see
    /// <see cref="Server.InitializeScript"/>). <paramref name="secret"/> is the Minger secret its peers must use.
    /// </summary>
    public Server Add(string label, string? secret = null)
    {
        var server = new Server(this, label, secret);
        servers.Add(server);
        return server;
    }

    /// <summary>Runs <paramref name="commands"/> in one host process; see <see cref="DomainShareShell.Invoke"/>.</summary>
    public ShellRun Invoke(params string[] commands) => DomainShareShell.Invoke(Root, commands);

    /// <summary>Writes the configurations of <paramref name="toCreate"/> (their initialize scripts plus <paramref name="more"/>) in one host process.</summary>
    public void Configure(IEnumerable<Server> toCreate, params string[] more)
        => Invoke([.. toCreate.Select(s => s.InitializeScript()), .. more]).AssertSuccess();

    /// <summary>Starts the relays of <paramref name="toStart"/> in the background with Start-DomainShareRelay, one host process for all.</summary>
    public IReadOnlyList<Relay> Start(params Server[] toStart)
    {
        var run = Invoke([.. toStart.Select(s => $"Start-DomainShareRelay {s.Cfg}")]);
        foreach (var s in toStart)
            if (RelayState.Load(s.DataDirectory) is { } state) s.RelayProcessIds.Add(state.ProcessId);
        run.AssertSuccess();
        var relays = run.All<Relay>().ToList();
        Assert.Equal(toStart.Length, relays.Count);
        for (int i = 0; i < toStart.Length; i++)
        {
            Assert.True(relays[i].Running, $"The relay of {toStart[i]} does not run.\n{run}");
            toStart[i].RelayProcessIds.Add(relays[i].ProcessId!.Value);
        }
        return relays;
    }

    /// <summary>Stops the relays of <paramref name="toStop"/> with Stop-DomainShareRelay in one host process.</summary>
    public ShellRun Stop(params Server[] toStop) => Invoke([.. toStop.Select(s => $"Stop-DomainShareRelay {s.Cfg}")]);

    /// <summary>Get-DomainShareRelay for <paramref name="server"/>.</summary>
    public Relay GetRelay(Server server) => Invoke($"Get-DomainShareRelay {server.Cfg}").AssertSuccess().Single<Relay>();

    public void Dispose()
    {
        var running = servers.Where(s => s.RelayProcessIds.Any(IsRelayOf(s))).ToArray();
        if (running.Length > 0)
        {
            try { Stop(running); }
            catch (Exception) { /* killed below */ }
        }
        foreach (var s in servers)
            foreach (var pid in s.RelayProcessIds.Distinct())
                KillIfRelayOf(s, pid);
        try { Directory.Delete(Root, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static Func<int, bool> IsRelayOf(Server s) => pid => IsAlive(pid, s.ConfigPath);

    /// <summary>True when process <paramref name="pid"/> lives and is a relay of <paramref name="configPath"/> (never another process that got its id).</summary>
    public static bool IsAlive(int pid, string configPath)
    {
        try
        {
            string cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            if (!cmdline.Contains(configPath, StringComparison.Ordinal)) return false;
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || stat.Length <= close + 2 || stat[close + 2] != 'Z';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static void KillIfRelayOf(Server s, int pid)
    {
        if (!IsAlive(pid, s.ConfigPath)) return;
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }

    /// <summary>Waits (polling) until <paramref name="condition"/> holds or <paramref name="within"/> passes; returns whether it held.</summary>
    public static bool Eventually(Func<bool> condition, TimeSpan within, int pollMs = 100)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            if (condition()) return true;
            if (watch.Elapsed > within) return false;
            Thread.Sleep(pollMs);
        }
    }
}

/// <summary>One DomainShare server of a <see cref="Cluster"/>.</summary>
public sealed class Server
{
    private readonly Cluster cluster;

    internal Server(Cluster cluster, string label, string? secret)
    {
        this.cluster = cluster;
        Label = label;
        Secret = secret;
        Address = Loopback.NextAddress();
        MingerPort = Loopback.FreeUdpPort(Address);
        SmtpPort = Loopback.FreeTcpPort(Address);
        Directory = System.IO.Directory.CreateDirectory(Path.Combine(cluster.Root, label)).FullName;
        ConfigPath = Path.Combine(Directory, "domainshare.yaml");
        DataDirectory = Path.Combine(Directory, "data");
    }

    public string Label { get; }
    public string ServerName => $"{Label}.example.net";
    /// <summary>The Minger secret this server asks its peers for; null: none.</summary>
    public string? Secret { get; }
    public IPAddress Address { get; }
    public int MingerPort { get; }
    public int SmtpPort { get; }
    public IPEndPoint MingerEndPoint => new(Address, MingerPort);
    public string Directory { get; }
    public string ConfigPath { get; }
    public string DataDirectory { get; }
    /// <summary>The name this server has in its peers' configurations (its IP address).</summary>
    public string PeerName => Address.ToString();
    /// <summary>Every relay process id seen for this server, for the clean-up.</summary>
    public List<int> RelayProcessIds { get; } = [];

    /// <summary><c>-ConfigPath '...'</c> for a command line.</summary>
    public string Cfg => $"-ConfigPath '{ConfigPath}'";

    /// <summary>
    /// Creates the configuration: the server's own loopback endpoints, its secret, the shared domain, and short Minger
    /// timeouts (300 ms, 1 retry) so that a peer that is down costs 0.6 s, not 6.
    /// </summary>
    public string InitializeScript()
        => $"Initialize-DomainShare -ServerName {ServerName} -MingerEndpoint {Address}:{MingerPort} -SmtpEndpoint {Address}:{SmtpPort}"
           + (Secret is null ? "" : $" -MingerSecret '{Secret}'") + $" {Cfg} | Out-Null\n"
           + $"Add-DomainShareDomain {Cluster.Domain} -Shared {Cfg}\n"
           + $"Set-DomainShareConfig -MingerTimeout 300ms -MingerRetries 1 {Cfg}";

    /// <summary>Adds <paramref name="peer"/> to this server's peers, signing queries with <paramref name="secret"/> (the peer's own secret when not given; "" for none).</summary>
    public string AddPeerScript(Server peer, string? secret = null)
    {
        secret ??= peer.Secret ?? "";
        return $"Add-DomainSharePeer {peer.PeerName} -MingerPort {peer.MingerPort}" + (secret.Length == 0 ? "" : $" -Secret '{secret}'") + $" {Cfg}";
    }

    /// <summary>Inserts an account into the server's account table (there are no account cmdlets yet).</summary>
    public void AddAccount(string address, bool enabled = true)
    {
        using var store = AccountStore.Open(DataDirectory);
        Assert.True(store.TryAdd(new Account(address, null, enabled, null, DateTimeOffset.UtcNow, Path.Combine(DataDirectory, "mail", address))));
    }

    public RelayState? State => RelayState.Load(DataDirectory);

    /// <summary>
    /// The running relay's counters, read over its control channel by the engine itself: cheaper than a host process
    /// running Get-DomainShareRelay, for tests whose subject is not that cmdlet (or that poll).
    /// </summary>
    public IReadOnlyDictionary<string, long> Counters() => Status().Counters;

    /// <summary>The running relay's status over its control channel (see <see cref="Counters"/>).</summary>
    public RelayStatus Status()
    {
        var status = RelayControlClient.GetStatusAsync(DataDirectory).GetAwaiter().GetResult();
        Assert.True(status is not null, $"The relay of {this} does not answer on its control channel.");
        return status;
    }

    /// <summary>Resolve-DomainShareAddress on this server, one address per call, through the host.</summary>
    public Resolution Resolve(string address, string parameters = "")
        => cluster.Invoke($"Resolve-DomainShareAddress -Address '{address}' {parameters} {Cfg}").AssertSuccess().Single<Resolution>();

    public override string ToString() => $"{Label} ({Address}:{MingerPort})";
}
