using System.Collections.Immutable;
using System.Text;

namespace DomainShare.Engine.Configuration;

/// <summary>One server's configuration, as read from and written to its YAML file. Immutable: change it with <c>with</c>.</summary>
public sealed record ServerConfiguration
{
    public required string ServerName { get; init; }
    /// <summary>The data directory as written in the file; relative paths are relative to the file's folder.</summary>
    public string DataDirectory { get; init; } = Defaults.DataDirectory;
    public SmtpSettings Smtp { get; init; } = new();
    public MingerSettings Minger { get; init; } = new();
    public DomainSharingSettings DomainSharing { get; init; } = new();
    public QueueSettings Queue { get; init; } = new();
    public ImmutableList<DomainConfiguration> Domains { get; init; } = ImmutableList<DomainConfiguration>.Empty;
    public ImmutableList<PeerConfiguration> Peers { get; init; } = ImmutableList<PeerConfiguration>.Empty;

    public PeerConfiguration? FindPeer(string host)
        => Peers.Find(p => string.Equals(p.Name, host, StringComparison.OrdinalIgnoreCase));

    public DomainConfiguration? FindDomain(string name)
        => Domains.Find(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
}

public sealed record SmtpSettings
{
    public Endpoint Endpoint { get; init; } = Defaults.SmtpEndpoint;
    /// <summary>Smart host (<c>host:port</c>) for mail to domains not hosted here, used only for trusted clients; null when none.</summary>
    public string? RelayHost { get; init; }
    /// <summary>Networks (CIDR) whose clients may relay to other domains through the relay host.</summary>
    public ImmutableList<string> TrustedNetworks { get; init; } = ImmutableList<string>.Empty;
    public int MaxHops { get; init; } = Defaults.MaxHops;
    public int MaxMessageBytes { get; init; } = Defaults.MaxMessageBytes;
    public int MaxRecipients { get; init; } = Defaults.MaxRecipients;
    public int MaxConnections { get; init; } = Defaults.MaxSmtpConnections;
    public int MaxConnectionsPerSource { get; init; } = Defaults.MaxSmtpConnectionsPerSource;
    /// <summary>How long a client may take to send its next command before it gets 421 and is disconnected.</summary>
    public TimeSpan CommandTimeout { get; init; } = Defaults.SmtpCommandTimeout;
    /// <summary>How long a client may pause while it sends a message (DATA) before it gets 421 and is disconnected.</summary>
    public TimeSpan DataTimeout { get; init; } = Defaults.SmtpDataTimeout;
    /// <summary>PEM certificate for STARTTLS (relative paths from the configuration's folder); null: no STARTTLS.</summary>
    public string? TlsCertificate { get; init; }
    /// <summary>PEM private key of <see cref="TlsCertificate"/>; null when the certificate file holds it.</summary>
    public string? TlsKey { get; init; }
}

public sealed record MingerSettings
{
    public Endpoint Endpoint { get; init; } = Defaults.MingerEndpoint;
    /// <summary>Secret peers must use to query this server; null when none is set.</summary>
    public string? Secret { get; init; }
    public bool AllowAnonymous { get; init; }
    /// <summary>Source addresses or networks (CIDR) allowed to query; empty means any.</summary>
    public ImmutableList<string> AllowedSources { get; init; } = ImmutableList<string>.Empty;
    public int RateLimitPerSecond { get; init; } = Defaults.MingerRateLimitPerSecond;
    public TimeSpan Timeout { get; init; } = Defaults.MingerTimeout;
    public int Retries { get; init; } = Defaults.MingerRetries;

    // The secret never appears in text: records print every property by default.
    private bool PrintMembers(StringBuilder b)
    {
        b.Append($"Endpoint = {Endpoint}, SecretSet = {Secret is not null}, AllowAnonymous = {AllowAnonymous}");
        return true;
    }
}

public sealed record DomainSharingSettings
{
    public bool Enabled { get; init; } = true;
    public TimeSpan VerifiedCacheTtl { get; init; } = Defaults.VerifiedCacheTtl;
    public TimeSpan NegativeCacheTtl { get; init; } = Defaults.NegativeCacheTtl;
    public bool KeepQueuedOnDeliveryError { get; init; } = true;
    /// <summary>"Minger checks also trigger domain-sharing checks".</summary>
    public bool Gateway { get; init; }
}

public sealed record QueueSettings
{
    public TimeSpan Lifetime { get; init; } = Defaults.QueueLifetime;
    /// <summary>The wait before the first retry; it doubles after each failed attempt up to <see cref="MaxRetryInterval"/>.</summary>
    public TimeSpan RetryInterval { get; init; } = Defaults.RetryInterval;
    public TimeSpan MaxRetryInterval { get; init; } = Defaults.MaxRetryInterval;
    /// <summary>Time to connect to a peer or the relay host and read its greeting and EHLO answer.</summary>
    public TimeSpan ConnectTimeout { get; init; } = Defaults.DeliveryConnectTimeout;
    /// <summary>Time for each SMTP answer of a peer or the relay host; a peer silent for longer is a failed attempt (the mail stays queued).</summary>
    public TimeSpan CommandTimeout { get; init; } = Defaults.DeliveryCommandTimeout;
    /// <summary>With <see cref="DomainSharingSettings.KeepQueuedOnDeliveryError"/> off: failed attempts to a peer before its mail goes to the relay host.</summary>
    public int PeerAttemptsBeforeRelayHost { get; init; } = Defaults.PeerAttemptsBeforeRelayHost;
    /// <summary>SMTP connections the delivery agent keeps open at once to one peer (or the relay host).</summary>
    public int MaxConnectionsPerPeer { get; init; } = Defaults.MaxConnectionsPerPeer;
}

public sealed record DomainConfiguration(string Name, bool Shared);

public sealed record PeerConfiguration
{
    /// <summary>Host name (lower case), IPv4 address or bracketed IPv6 address; identifies the peer.</summary>
    public required string Name { get; init; }
    public int SmtpPort { get; init; } = Defaults.SmtpPort;
    public int MingerPort { get; init; } = Defaults.MingerPort;
    /// <summary>Secret used to sign our queries to this peer; null when none.</summary>
    public string? Secret { get; init; }
    public bool Enabled { get; init; } = true;

    /// <summary>The SMTP delivery address, <c>host:port</c>.</summary>
    public string SmtpAddress => $"{Name}:{SmtpPort}";

    private bool PrintMembers(StringBuilder b)
    {
        b.Append($"Name = {Name}, SmtpPort = {SmtpPort}, MingerPort = {MingerPort}, SecretSet = {Secret is not null}, Enabled = {Enabled}");
        return true;
    }
}
