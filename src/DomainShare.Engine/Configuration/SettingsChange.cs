using System.Collections.Immutable;

namespace DomainShare.Engine.Configuration;

/// <summary>A set of setting changes; null means "leave as it is". <see cref="Apply"/> validates every value it changes.</summary>
public sealed record SettingsChange
{
    public string? ServerName { get; init; }
    public string? DataDirectory { get; init; }
    public string? SmtpEndpoint { get; init; }
    public string? RelayHost { get; init; }
    public bool ClearRelayHost { get; init; }
    public IReadOnlyList<string>? TrustedNetworks { get; init; }
    public int? MaxHops { get; init; }
    public string? MingerEndpoint { get; init; }
    public string? MingerSecret { get; init; }
    public bool ClearMingerSecret { get; init; }
    public bool? AllowAnonymousMinger { get; init; }
    public IReadOnlyList<string>? MingerAllowedSources { get; init; }
    public int? MingerRateLimitPerSecond { get; init; }
    public TimeSpan? MingerTimeout { get; init; }
    public int? MingerRetries { get; init; }
    public bool? DomainSharingEnabled { get; init; }
    public TimeSpan? VerifiedCacheTtl { get; init; }
    public TimeSpan? NegativeCacheTtl { get; init; }
    public bool? KeepQueuedOnDeliveryError { get; init; }
    public bool? MingerGateway { get; init; }
    public TimeSpan? QueueLifetime { get; init; }
    public TimeSpan? QueueRetryInterval { get; init; }
    public TimeSpan? QueueMaxRetryInterval { get; init; }
    public TimeSpan? QueueConnectTimeout { get; init; }
    public TimeSpan? QueueCommandTimeout { get; init; }
    public int? QueuePeerAttemptsBeforeRelayHost { get; init; }
    public int? QueueMaxConnectionsPerPeer { get; init; }
    public TimeSpan? SmtpCommandTimeout { get; init; }
    public TimeSpan? SmtpDataTimeout { get; init; }
    public int? MaxMessageBytes { get; init; }
    public int? MaxRecipients { get; init; }
    public int? MaxConnections { get; init; }
    public int? MaxConnectionsPerSource { get; init; }
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    public bool ClearTls { get; init; }

    /// <summary>Checks every value without a configuration at hand, so a bad value is refused before anything is locked or written.</summary>
    public void Validate() => Apply(new ServerConfiguration { ServerName = "validation.invalid" });

    public ServerConfiguration Apply(ServerConfiguration c)
    {
        if (MingerSecret is not null && ClearMingerSecret)
            throw Invalid("-MingerSecret and -ClearMingerSecret", "they contradict each other", "Give one of them.");
        if (RelayHost is not null && ClearRelayHost)
            throw Invalid("-RelayHost and -ClearRelayHost", "they contradict each other", "Give one of them.");
        if (TlsKey is not null && TlsCertificate is null)
            throw Invalid("-TlsKey", "a key is given without its certificate", "Give -TlsCertificate with -TlsKey.");
        if (TlsCertificate is not null && ClearTls)
            throw Invalid("-TlsCertificate and -ClearTls", "they contradict each other", "Give one of them.");
        if (ServerName is not null) c = c with { ServerName = Names.NormalizeServerName(ServerName) };
        if (DataDirectory is not null)
        {
            if (string.IsNullOrWhiteSpace(DataDirectory) || DataDirectory.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
                throw Invalid("DataDirectory", "the path is empty or holds characters that are not allowed", "Give a folder path.");
            c = c with { DataDirectory = DataDirectory };
        }

        var smtp = c.Smtp;
        if (SmtpEndpoint is not null) smtp = smtp with { Endpoint = Endpoint.Parse(SmtpEndpoint, "SmtpEndpoint") };
        if (RelayHost is not null)
        {
            var (host, port) = Names.ParsePeerName(RelayHost);
            smtp = smtp with { RelayHost = $"{host}:{port ?? Defaults.SmtpPort}" };
        }
        if (ClearRelayHost) smtp = smtp with { RelayHost = null };
        if (TrustedNetworks is not null) smtp = smtp with { TrustedNetworks = Networks(TrustedNetworks, "TrustedNetwork") };
        if (MaxHops is int hops) smtp = smtp with { MaxHops = Range(hops, 1, Limits.MaxHops, "MaxHops") };
        if (MaxMessageBytes is int size) smtp = smtp with { MaxMessageBytes = Range(size, Limits.MinMessageBytes, int.MaxValue, "MaxMessageBytes") };
        if (MaxRecipients is int recipients) smtp = smtp with { MaxRecipients = Range(recipients, 1, Limits.MaxRecipients, "MaxRecipients") };
        if (MaxConnections is int connections) smtp = smtp with { MaxConnections = Range(connections, 1, Limits.MaxConnections, "MaxConnections") };
        if (MaxConnectionsPerSource is int perSource) smtp = smtp with { MaxConnectionsPerSource = Range(perSource, 1, Limits.MaxConnections, "MaxConnectionsPerSource") };
        if (SmtpCommandTimeout is TimeSpan commandTimeout) smtp = smtp with { CommandTimeout = Positive(commandTimeout, "SmtpCommandTimeout") };
        if (SmtpDataTimeout is TimeSpan dataTimeout) smtp = smtp with { DataTimeout = Positive(dataTimeout, "SmtpDataTimeout") };
        if (TlsCertificate is not null) smtp = smtp with { TlsCertificate = TlsCertificate, TlsKey = TlsKey };
        if (ClearTls) smtp = smtp with { TlsCertificate = null, TlsKey = null };

        var minger = c.Minger;
        if (MingerEndpoint is not null) minger = minger with { Endpoint = Endpoint.Parse(MingerEndpoint, "MingerEndpoint") };
        if (MingerSecret is not null) minger = minger with { Secret = Names.ValidateSecret(MingerSecret, "Minger secret") };
        if (ClearMingerSecret) minger = minger with { Secret = null };
        if (AllowAnonymousMinger is bool anon) minger = minger with { AllowAnonymous = anon };
        if (MingerAllowedSources is not null) minger = minger with { AllowedSources = Networks(MingerAllowedSources, "MingerAllowedSource") };
        if (MingerRateLimitPerSecond is int rate) minger = minger with { RateLimitPerSecond = Range(rate, 0, Limits.MaxRateLimitPerSecond, "MingerRateLimitPerSecond") };
        if (MingerTimeout is TimeSpan timeout) minger = minger with { Timeout = Positive(timeout, "MingerTimeout") };
        if (MingerRetries is int retries) minger = minger with { Retries = Range(retries, 0, Limits.MaxMingerRetries, "MingerRetries") };

        var sharing = c.DomainSharing;
        if (DomainSharingEnabled is bool enabled) sharing = sharing with { Enabled = enabled };
        if (VerifiedCacheTtl is TimeSpan ttl) sharing = sharing with { VerifiedCacheTtl = NotNegative(ttl, "VerifiedCacheTtl") };
        if (NegativeCacheTtl is TimeSpan nttl) sharing = sharing with { NegativeCacheTtl = NotNegative(nttl, "NegativeCacheTtl") };
        if (KeepQueuedOnDeliveryError is bool keep) sharing = sharing with { KeepQueuedOnDeliveryError = keep };
        if (MingerGateway is bool gateway) sharing = sharing with { Gateway = gateway };

        var queue = c.Queue;
        if (QueueLifetime is TimeSpan lifetime) queue = queue with { Lifetime = Positive(lifetime, "QueueLifetime") };
        if (QueueRetryInterval is TimeSpan retry) queue = queue with { RetryInterval = Positive(retry, "QueueRetryInterval") };
        if (QueueMaxRetryInterval is TimeSpan maxRetry) queue = queue with { MaxRetryInterval = Positive(maxRetry, "QueueMaxRetryInterval") };
        if (QueueConnectTimeout is TimeSpan connect) queue = queue with { ConnectTimeout = Positive(connect, "QueueConnectTimeout") };
        if (QueueCommandTimeout is TimeSpan command) queue = queue with { CommandTimeout = Positive(command, "QueueCommandTimeout") };
        if (QueuePeerAttemptsBeforeRelayHost is int attempts)
            queue = queue with { PeerAttemptsBeforeRelayHost = Range(attempts, 1, Limits.MaxPeerAttempts, "QueuePeerAttemptsBeforeRelayHost") };
        if (QueueMaxConnectionsPerPeer is int perPeer)
            queue = queue with { MaxConnectionsPerPeer = Range(perPeer, 1, Limits.MaxConnectionsPerPeer, "QueueMaxConnectionsPerPeer") };

        return c with { Smtp = smtp, Minger = minger, DomainSharing = sharing, Queue = queue };
    }

    private static ImmutableList<string> Networks(IEnumerable<string> values, string field)
        => values.Select(v => NetworkRange.TryParse(v, out var r) ? r.ToString()
            : throw Invalid(field, $"'{v}' is not an IP address or a network such as 192.0.2.0/24", "Give IP addresses or CIDR networks.")).Distinct().ToImmutableList();

    private static int Range(int value, int min, int max, string field)
        => value >= min && value <= max ? value : throw Invalid(field, $"{value} is outside {min}..{max}", $"Give a number from {min} to {max}.");

    private static TimeSpan Positive(TimeSpan value, string field)
        => value > TimeSpan.Zero ? value : throw Invalid(field, "the duration must be greater than zero", "Give a positive duration, for example 2s or 5d.");

    private static TimeSpan NotNegative(TimeSpan value, string field)
        => value >= TimeSpan.Zero ? value : throw Invalid(field, "the duration cannot be negative", "Give 0 to turn it off, or a positive duration such as 5d.");

    private static DomainShareException Invalid(string field, string why, string fix)
        => new(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument, $"Invalid value for {field}: {why}.", fix, field);
}
