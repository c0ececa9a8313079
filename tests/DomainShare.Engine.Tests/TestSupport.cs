using System.Collections.Immutable;

namespace DomainShare.Engine.Tests;

/// <summary>A folder of its own for one test, deleted with everything in it when the test ends.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "domainshare-engine-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>The names of the files in the folder, sorted.</summary>
    public string[] FileNames() => Directory.GetFiles(Path).Select(System.IO.Path.GetFileName).OrderBy(n => n, StringComparer.Ordinal).ToArray()!;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }
}

/// <summary>A fact that only makes sense where files have Unix permission bits.</summary>
public sealed class UnixFactAttribute : FactAttribute
{
    public UnixFactAttribute()
    {
        if (OperatingSystem.IsWindows()) Skip = "Unix file modes do not exist on Windows.";
    }
}

internal static class Expect
{
    /// <summary>Runs <paramref name="action"/> and checks it fails with exactly the engine error <paramref name="errorId"/>.</summary>
    public static DomainShareException Error(string errorId, Action action)
    {
        var ex = Assert.ThrowsAny<DomainShareException>(action);
        Assert.True(ex.ErrorId == errorId, $"Expected ErrorId {errorId} but got {ex.ErrorId}: {ex.Message}");
        Assert.False(string.IsNullOrWhiteSpace(ex.RecommendedAction), "every engine error names a fix");
        return ex;
    }

    public static DomainShareException Error(string errorId, Func<object?> func) => Error(errorId, () => { func(); });

    /// <summary>Compares two configurations field by field, lists by content (records compare immutable lists by reference).</summary>
    public static void SameConfiguration(ServerConfiguration expected, ServerConfiguration actual)
    {
        Assert.Equal(expected.Smtp.TrustedNetworks, actual.Smtp.TrustedNetworks);
        Assert.Equal(expected.Minger.AllowedSources, actual.Minger.AllowedSources);
        Assert.Equal(expected.Domains, actual.Domains);
        Assert.Equal(expected.Peers, actual.Peers);
        Assert.Equal(expected.Smtp with { TrustedNetworks = actual.Smtp.TrustedNetworks }, actual.Smtp);
        Assert.Equal(expected.Minger with { AllowedSources = actual.Minger.AllowedSources }, actual.Minger);
        Assert.Equal(expected.DomainSharing, actual.DomainSharing);
        Assert.Equal(expected.Queue, actual.Queue);
        Assert.Equal(expected with { Smtp = actual.Smtp, Minger = actual.Minger, Domains = actual.Domains, Peers = actual.Peers }, actual);
    }
}

internal static class Samples
{
    public const string MingerSecret = "minger-secret-'quoted'-#1";
    public const string PeerSecret = "peer two secret with spaces";

    /// <summary>A configuration in which every setting differs from its default.</summary>
    public static ServerConfiguration FullyPopulated() => new()
    {
        ServerName = "mx1.example.com",
        DataDirectory = "/var/lib/domain share/data #1",
        Smtp = new SmtpSettings
        {
            Endpoint = Endpoint.Parse("[::]:2525", "test"),
            RelayHost = "smarthost.example.net:587",
            TrustedNetworks = ImmutableList.Create("192.0.2.0/24", "2001:db8::/32", "203.0.113.7"),
            MaxHops = 42,
            MaxMessageBytes = 10 * 1024 * 1024,
            MaxRecipients = 250,
            MaxConnections = 1000,
            MaxConnectionsPerSource = 20,
            CommandTimeout = TimeSpan.FromSeconds(45),
            DataTimeout = TimeSpan.FromMinutes(3),
            TlsCertificate = "/etc/domainshare/tls/cert 1.pem",
            TlsKey = "tls/key'1'.pem",
        },
        Minger = new MingerSettings
        {
            Endpoint = Endpoint.Parse("127.0.0.1:14069", "test"),
            Secret = MingerSecret,
            AllowAnonymous = true,
            AllowedSources = ImmutableList.Create("198.51.100.0/24", "2001:db8:1::/48"),
            RateLimitPerSecond = 250,
            Timeout = TimeSpan.FromMilliseconds(1500),
            Retries = 5,
        },
        DomainSharing = new DomainSharingSettings
        {
            Enabled = false,
            VerifiedCacheTtl = TimeSpan.FromHours(36),
            NegativeCacheTtl = TimeSpan.FromMinutes(10),
            KeepQueuedOnDeliveryError = false,
            Gateway = true,
        },
        Queue = new QueueSettings { Lifetime = TimeSpan.FromDays(3), RetryInterval = TimeSpan.FromSeconds(90), MaxRetryInterval = TimeSpan.FromHours(2),
            ConnectTimeout = TimeSpan.FromSeconds(7), CommandTimeout = TimeSpan.FromSeconds(90), PeerAttemptsBeforeRelayHost = 3,
            MaxConnectionsPerPeer = 4 },
        Domains = ImmutableList.Create(
            new DomainConfiguration("example.com", true),
            new DomainConfiguration("example.org", false),
            new DomainConfiguration("bücher.example", true)),
        Peers = ImmutableList.Create(
            new PeerConfiguration { Name = "mx2.example.com", SmtpPort = 2525, MingerPort = 14070, Secret = PeerSecret },
            new PeerConfiguration { Name = "192.0.2.20", Enabled = false },
            new PeerConfiguration { Name = "[2001:db8::20]", SmtpPort = 587, Secret = "ipv6 peer secret 0123" },
            new PeerConfiguration { Name = "mx3.example.net", MingerPort = 4070 }),
    };

    public const string MinimalYaml = "serverName: mx1.example.com\n";
}
