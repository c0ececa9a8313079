namespace DomainShare;

/// <summary>A peer as the cmdlets show it. The secret itself is never part of an output object.</summary>
public sealed class DomainSharePeer
{
    public string Name { get; init; } = "";
    public int SmtpPort { get; init; }
    public int MingerPort { get; init; }
    public bool Enabled { get; init; }
    /// <summary>True when queries to this peer are signed with a shared secret.</summary>
    public bool HasSecret { get; init; }
    /// <summary>Where mail for this peer's users is delivered: <c>host:port</c>.</summary>
    public string SmtpAddress { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => SmtpAddress;
}

/// <summary>A domain hosted by this server.</summary>
public sealed class DomainShareDomain
{
    public string Name { get; init; } = "";
    /// <summary>True when other servers (the peers) hold some of this domain's users.</summary>
    public bool Shared { get; init; }
    public string ConfigPath { get; init; } = "";

    public override string ToString() => Name;
}

/// <summary>A server's configuration as the cmdlets show it: every setting, never the secret.</summary>
public sealed class DomainShareConfig
{
    public string ServerName { get; init; } = "";
    public string ConfigPath { get; init; } = "";
    public string DataDirectory { get; init; } = "";
    public string SmtpEndpoint { get; init; } = "";
    public string? RelayHost { get; init; }
    public string[] TrustedNetwork { get; init; } = [];
    public int MaxHops { get; init; }
    public string MingerEndpoint { get; init; } = "";
    /// <summary>True when peers must sign their queries with this server's Minger secret.</summary>
    public bool MingerSecretSet { get; init; }
    public bool AllowAnonymousMinger { get; init; }
    public string[] MingerAllowedSource { get; init; } = [];
    public int MingerRateLimitPerSecond { get; init; }
    public TimeSpan MingerTimeout { get; init; }
    public int MingerRetries { get; init; }
    public bool DomainSharingEnabled { get; init; }
    public TimeSpan VerifiedCacheTtl { get; init; }
    public TimeSpan NegativeCacheTtl { get; init; }
    public bool KeepQueuedOnDeliveryError { get; init; }
    /// <summary>"Minger checks also trigger domain-sharing checks".</summary>
    public bool MingerGateway { get; init; }
    public TimeSpan QueueLifetime { get; init; }
    public string[] Domain { get; init; } = [];
    public int PeerCount { get; init; }

    public override string ToString() => ServerName;
}
