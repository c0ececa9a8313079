using System.Management.Automation;
using System.Security;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Changes settings of a server's configuration. Only the parameters given are changed.</summary>
[Cmdlet(VerbsCommon.Set, "DomainShareConfig", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareConfig))]
public sealed class SetDomainShareConfigCommand : DomainShareCmdlet
{
    [Parameter] [ValidateNotNullOrEmpty] public string? ServerName { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? DataDirectory { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? SmtpEndpoint { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? RelayHost { get; set; }
    [Parameter] public SwitchParameter ClearRelayHost { get; set; }
    [Parameter] [AllowEmptyCollection] public string[]? TrustedNetwork { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxHops)] public int? MaxHops { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? MingerEndpoint { get; set; }
    [Parameter] [SecretTransformation] public SecureString? MingerSecret { get; set; }
    [Parameter] public SwitchParameter ClearMingerSecret { get; set; }
    [Parameter] public bool? AllowAnonymousMinger { get; set; }
    [Parameter] [AllowEmptyCollection] public string[]? MingerAllowedSource { get; set; }
    [Parameter] [ValidateRange(0, Limits.MaxRateLimitPerSecond)] public int? MingerRateLimitPerSecond { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? MingerTimeout { get; set; }
    [Parameter] [ValidateRange(0, Limits.MaxMingerRetries)] public int? MingerRetries { get; set; }
    [Parameter] public bool? DomainSharingEnabled { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? VerifiedCacheTtl { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? NegativeCacheTtl { get; set; }
    [Parameter] public bool? KeepQueuedOnDeliveryError { get; set; }
    [Parameter] public bool? MingerGateway { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? QueueLifetime { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? QueueRetryInterval { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? QueueMaxRetryInterval { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? QueueConnectTimeout { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? QueueCommandTimeout { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxPeerAttempts)] public int? QueuePeerAttemptsBeforeRelayHost { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxConnectionsPerPeer)] public int? QueueMaxConnectionsPerPeer { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? SmtpCommandTimeout { get; set; }
    [Parameter] [DurationTransformation] public TimeSpan? SmtpDataTimeout { get; set; }
    [Parameter] [ValidateRange(Limits.MinMessageBytes, int.MaxValue)] public int? MaxMessageBytes { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxRecipients)] public int? MaxRecipients { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxConnections)] public int? MaxConnections { get; set; }
    [Parameter] [ValidateRange(1, Limits.MaxConnections)] public int? MaxConnectionsPerSource { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? TlsCertificate { get; set; }
    [Parameter] [ValidateNotNullOrEmpty] public string? TlsKey { get; set; }
    [Parameter] public SwitchParameter ClearTls { get; set; }
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void EndProcessing()
    {
        var change = new SettingsChange
        {
            ServerName = ServerName,
            DataDirectory = DataDirectory,
            SmtpEndpoint = SmtpEndpoint,
            RelayHost = RelayHost,
            ClearRelayHost = ClearRelayHost,
            TrustedNetworks = TrustedNetwork,
            MaxHops = MaxHops,
            MingerEndpoint = MingerEndpoint,
            MingerSecret = SecretTransformationAttribute.Reveal(MingerSecret),
            ClearMingerSecret = ClearMingerSecret,
            AllowAnonymousMinger = AllowAnonymousMinger,
            MingerAllowedSources = MingerAllowedSource,
            MingerRateLimitPerSecond = MingerRateLimitPerSecond,
            MingerTimeout = MingerTimeout,
            MingerRetries = MingerRetries,
            DomainSharingEnabled = DomainSharingEnabled,
            VerifiedCacheTtl = VerifiedCacheTtl,
            NegativeCacheTtl = NegativeCacheTtl,
            KeepQueuedOnDeliveryError = KeepQueuedOnDeliveryError,
            MingerGateway = MingerGateway,
            QueueLifetime = QueueLifetime,
            QueueRetryInterval = QueueRetryInterval,
            QueueMaxRetryInterval = QueueMaxRetryInterval,
            QueueConnectTimeout = QueueConnectTimeout,
            QueueCommandTimeout = QueueCommandTimeout,
            QueuePeerAttemptsBeforeRelayHost = QueuePeerAttemptsBeforeRelayHost,
            QueueMaxConnectionsPerPeer = QueueMaxConnectionsPerPeer,
            SmtpCommandTimeout = SmtpCommandTimeout,
            SmtpDataTimeout = SmtpDataTimeout,
            MaxMessageBytes = MaxMessageBytes,
            MaxRecipients = MaxRecipients,
            MaxConnections = MaxConnections,
            MaxConnectionsPerSource = MaxConnectionsPerSource,
            TlsCertificate = TlsCertificate is null ? null : GetUnresolvedProviderPathFromPSPath(TlsCertificate),
            TlsKey = TlsKey is null ? null : GetUnresolvedProviderPathFromPSPath(TlsKey),
            ClearTls = ClearTls,
        };
        OrTerminate(change.Validate);
        var store = OpenStore();
        var names = MyInvocation.BoundParameters.Keys
            .Where(k => k is not (nameof(ConfigPath) or nameof(PassThru)) && !CommonParameters.Contains(k) && !OptionalCommonParameters.Contains(k))
            .ToList();
        if (names.Count == 0)
        {
            if (PassThru) WriteObject(LoadConfiguration(store).ToOutput(store));
            return;
        }
        if (!ShouldProcess($"configuration '{store.FilePath}'", $"Set {string.Join(", ", names)}"))
            return;
        var updated = OrTerminate(() => store.Update(change.Apply));
        if (PassThru) WriteObject(updated.ToOutput(store));
    }
}
