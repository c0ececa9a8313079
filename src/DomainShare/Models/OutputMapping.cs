using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Relay;
using DomainShare.Engine.Routing;

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
        QueueRetryInterval = c.Queue.RetryInterval,
        QueueMaxRetryInterval = c.Queue.MaxRetryInterval,
        QueueConnectTimeout = c.Queue.ConnectTimeout,
        QueueCommandTimeout = c.Queue.CommandTimeout,
        QueuePeerAttemptsBeforeRelayHost = c.Queue.PeerAttemptsBeforeRelayHost,
        QueueMaxConnectionsPerPeer = c.Queue.MaxConnectionsPerPeer,
        SmtpCommandTimeout = c.Smtp.CommandTimeout,
        SmtpDataTimeout = c.Smtp.DataTimeout,
        MaxMessageBytes = c.Smtp.MaxMessageBytes,
        MaxRecipients = c.Smtp.MaxRecipients,
        MaxConnections = c.Smtp.MaxConnections,
        MaxConnectionsPerSource = c.Smtp.MaxConnectionsPerSource,
        TlsCertificate = c.Smtp.TlsCertificate,
        TlsKey = c.Smtp.TlsKey,
        Domain = [.. c.Domains.Select(d => d.Name)],
        PeerCount = c.Peers.Count,
    };

    /// <param name="stopped">The status is the last one of a relay that has stopped since.</param>
    public static DomainShareRelay ToOutput(this RelayStatus? s, string configPath, bool stopped = false) => s is null
        ? new DomainShareRelay { Running = false, ConfigPath = configPath }
        : new DomainShareRelay
        {
            Running = !stopped,
            ProcessId = s.ProcessId,
            ConfigPath = s.ConfigPath,
            StartTime = s.Started,
            Uptime = DateTimeOffset.UtcNow - s.Started,
            MingerEndpoint = s.MingerEndpoint,
            SmtpEndpoint = s.SmtpEndpoint,
            ConfigurationError = s.ConfigurationError,
            Counters = s.Counters,
            Version = s.Version,
        };

    public static DomainShareResolution ToOutput(this AddressResolution r, string configPath) => new()
    {
        Address = r.Address,
        Result = r.Result.ToString(),
        Peer = r.Peer,
        FromCache = r.FromCache,
        Elapsed = r.Elapsed,
        FailedPeers = [.. r.FailedPeers.Select(f => $"{f.Peer}: {f.Reason}")],
        SmtpReply = SmtpReplies.ForRecipient(r.Result),
        ConfigPath = configPath,
    };

    public static DomainSharePeerTest ToOutput(this MingerProbeResult p, PeerConfiguration peer, string configPath) => new()
    {
        Name = peer.Name,
        Enabled = peer.Enabled,
        Reachable = p.Reachable,
        SecretAccepted = p.SecretAccepted,
        Status = p.Status is { } status ? (int)status : null,
        RoundTrip = p.RoundTrip,
        MingerEndpoint = p.EndPoint?.ToString() ?? $"{peer.Name}:{peer.MingerPort}",
        Error = p.Error,
        ConfigPath = configPath,
    };

    public static DomainShareCacheEntry ToOutput(this VerificationCacheEntry e, string configPath) => new()
    {
        Address = e.Address,
        Peer = e.Peer,
        Positive = e.IsPositive,
        Verified = e.Verified,
        Expires = e.Expires,
        ConfigPath = configPath,
    };

    public static DomainShareAccount ToOutput(this Account a, string dataDirectory, string configPath) => new()
    {
        Address = a.Address,
        DisplayName = a.DisplayName,
        Enabled = a.Enabled,
        Quota = a.QuotaBytes,
        Created = a.Created,
        Domain = a.Address[(a.Address.LastIndexOf('@') + 1)..],
        Maildir = Path.Combine(dataDirectory, a.Maildir),
        ConfigPath = configPath,
    };

    public static DomainShareConsistencyFinding ToOutput(this ConsistencyFinding f, string configPath) => new()
    {
        Address = f.Address,
        Peer = f.Peer,
        Conflict = f.Conflict,
        PeerStatus = f.PeerStatus is { } s ? (int)s : null,
        LocalState = f.LocalState.ToString(),
        Detail = f.Detail,
        ConfigPath = configPath,
    };

    public static DomainShareQueueMessage ToOutput(this QueuedMessage m, string configPath)
    {
        var pending = m.Recipients.Where(r => r.State == RecipientState.Pending).ToList();
        return new()
        {
            Id = m.Id,
            From = m.ReversePath ?? "",
            Recipients = [.. pending.Select(r => r.Address)],
            Destinations = [.. pending.Select(r => r.Route == QueueRoute.Peer ? r.Peer ?? "?" : r.Route.ToString()).Distinct()],
            Created = m.Created,
            NextAttempt = m.NextAttempt,
            Attempts = m.Attempts,
            LastError = m.LastError ?? pending.Select(r => r.LastError).FirstOrDefault(e => e is not null),
            Size = m.Size,
            ConfigPath = configPath,
        };
    }
}

/// <summary>MX plans and checks to output objects.</summary>
internal static class MxOutputMapping
{
    public static DomainShareMxRecord ToOutput(this Engine.DnsRecords.PlannedMxRecord r, string configPath) => new()
    {
        Domain = r.Domain,
        Priority = r.Priority,
        Host = r.Host,
        Role = r.Role.ToString(),
        Ttl = r.Ttl,
        ZoneLine = r.ZoneLine,
        ConfigPath = configPath,
    };

    public static DomainShareMxTest ToOutput(this Engine.DnsRecords.MxCheckResult c, string configPath) => new()
    {
        Domain = c.Domain,
        Passed = c.Passed,
        Status = c.Status.ToString(),
        Records = [.. c.Records.Select(r => new DomainShareMxTestRecord
        {
            Priority = r.Priority,
            Host = r.Host,
            Role = r.Role.ToString(),
            Target = r.Target.ToString(),
            ConfiguredServer = r.ConfiguredServer,
        })],
        MissingServers = [.. c.MissingServers],
        UnexpectedHosts = [.. c.UnexpectedHosts],
        HasBackup = c.HasBackup,
        Reason = c.Reason,
        DnsServer = c.DnsServer,
        Elapsed = c.Elapsed,
        ConfigPath = configPath,
    };
}
