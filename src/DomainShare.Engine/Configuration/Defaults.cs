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
    /// <summary>How long the SMTP server gives a client to send its next command line (RFC 5321 §4.5.3.2.7: at least 5 minutes).</summary>
    public static readonly TimeSpan SmtpCommandTimeout = TimeSpan.FromMinutes(5);
    /// <summary>How long the SMTP server gives a client to send each text line of a message during DATA (RFC 5321 §4.5.3.2.6: 3 minutes at least).</summary>
    public static readonly TimeSpan SmtpDataTimeout = TimeSpan.FromMinutes(10);
    /// <summary>Time for the delivery agent to connect to a peer or the relay host and read its greeting and EHLO answer.</summary>
    public static readonly TimeSpan DeliveryConnectTimeout = TimeSpan.FromSeconds(30);
    /// <summary>Time for the delivery agent to get each SMTP answer of a peer or the relay host (RFC 5321 §4.5.3.2 suggests minutes).</summary>
    public static readonly TimeSpan DeliveryCommandTimeout = TimeSpan.FromMinutes(5);
    /// <summary>With keep-queued off: failed attempts to a peer before its mail goes to the relay host.</summary>
    public const int PeerAttemptsBeforeRelayHost = 6;
    /// <summary>
    /// SMTP connections the delivery agent keeps open at once to one peer (or the relay host). 10: with 4, forwarding
    /// to one busy peer fell behind receiving under load (bench/smtp.sh); Postfix allows 20 per destination.
    /// </summary>
    public const int MaxConnectionsPerPeer = 10;
    public static readonly TimeSpan RetryInterval = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan MaxRetryInterval = TimeSpan.FromHours(1);
    public static readonly Endpoint SmtpEndpoint = Endpoint.Parse("0.0.0.0:25", "smtp.endpoint");
    public static readonly Endpoint MingerEndpoint = Endpoint.Parse("0.0.0.0:4069", "minger.endpoint");
    /// <summary>How long a writer waits for another process's configuration lock.</summary>
    public static readonly TimeSpan ConfigLockTimeout = TimeSpan.FromSeconds(30);
}
