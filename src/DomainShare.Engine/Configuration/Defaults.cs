namespace DomainShare.Engine.Configuration;

/// <summary>Every default of the product in one place: ports, lifetimes, limits.</summary>
public static class Defaults
{
    public const int SmtpPort = 25;
    public const int MingerPort = 4069;
    public const int MinimumSecretLength = 16;
    public const string ConfigFileName = "domainshare.yaml";
    public const string ConfigEnvironmentVariable = "DOMAINSHARE_CONFIG";
    public const string ApplicationFolder = "DomainShare";
    public const string DataDirectory = "data";
    public static readonly TimeSpan VerifiedCacheTtl = TimeSpan.FromDays(5);
    public static readonly TimeSpan NegativeCacheTtl = TimeSpan.Zero;
    public static readonly TimeSpan MingerTimeout = TimeSpan.FromSeconds(2);
    public const int MingerRetries = 2;
    public const int MingerRateLimitPerSecond = 100;
    public static readonly TimeSpan QueueLifetime = TimeSpan.FromDays(5);
    public const int MaxHops = 30;
    public const int MaxMessageBytes = 25 * 1024 * 1024;
    public const int MaxRecipients = 100;
    public const int MaxSmtpConnections = 500;
    public const int MaxSmtpConnectionsPerSource = 50;
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan MaxRetryInterval = TimeSpan.FromHours(1);
    public static readonly Endpoint SmtpEndpoint = Endpoint.Parse("0.0.0.0:25", "smtp.endpoint");
    public static readonly Endpoint MingerEndpoint = Endpoint.Parse("0.0.0.0:4069", "minger.endpoint");
    /// <summary>How long a writer waits for another process's configuration lock.</summary>
    public static readonly TimeSpan ConfigLockTimeout = TimeSpan.FromSeconds(30);
}
