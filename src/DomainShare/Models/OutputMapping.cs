using DomainShare.Engine.Configuration;

namespace DomainShare;

/// <summary>Engine models to output objects: the one place where the secret is dropped.</summary>
internal static class OutputMapping
{
    public static DomainSharePeer ToOutput(this PeerConfiguration p, string configPath) => new()
    {
        Name = p.Name,
        SmtpPort = p.SmtpPort,
        MingerPort = p.MingerPort,
        Enabled = p.Enabled,
        HasSecret = p.Secret is not null,
        SmtpAddress = p.SmtpAddress,
        ConfigPath = configPath,
    };

    public static DomainShareDomain ToOutput(this DomainConfiguration d, string configPath) => new()
    {
        Name = d.Name,
        Shared = d.Shared,
        ConfigPath = configPath,
    };

    public static DomainShareConfig ToOutput(this ServerConfiguration c, ConfigurationStore store) => new()
    {
        ServerName = c.ServerName,
        ConfigPath = store.FilePath,
        DataDirectory = store.ResolveDataDirectory(c),
        SmtpEndpoint = c.Smtp.Endpoint.ToString(),
        RelayHost = c.Smtp.RelayHost,
        TrustedNetwork = [.. c.Smtp.TrustedNetworks],
        MaxHops = c.Smtp.MaxHops,
        MingerEndpoint = c.Minger.Endpoint.ToString(),
        MingerSecretSet = c.Minger.Secret is not null,
        AllowAnonymousMinger = c.Minger.AllowAnonymous,
        MingerAllowedSource = [.. c.Minger.AllowedSources],
        MingerRateLimitPerSecond = c.Minger.RateLimitPerSecond,
        MingerTimeout = c.Minger.Timeout,
        MingerRetries = c.Minger.Retries,
        DomainSharingEnabled = c.DomainSharing.Enabled,
        VerifiedCacheTtl = c.DomainSharing.VerifiedCacheTtl,
        NegativeCacheTtl = c.DomainSharing.NegativeCacheTtl,
        KeepQueuedOnDeliveryError = c.DomainSharing.KeepQueuedOnDeliveryError,
        MingerGateway = c.DomainSharing.Gateway,
        QueueLifetime = c.Queue.Lifetime,
        Domain = [.. c.Domains.Select(d => d.Name)],
        PeerCount = c.Peers.Count,
    };
}
