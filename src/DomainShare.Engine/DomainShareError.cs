namespace DomainShare.Engine;

/// <summary>What kind of failure an <see cref="DomainShareException"/> reports. The cmdlet layer maps it to a PowerShell error category.</summary>
public enum ErrorKind
{
    InvalidArgument,
    InvalidData,
    NotFound,
    AlreadyExists,
    ResourceUnavailable,
    PermissionDenied,
    OperationTimeout,
    WriteError,
}

/// <summary>The catalogue of error identifiers: one source of truth shared by the engine and the cmdlets.</summary>
public static class ErrorIds
{
    public const string InvalidConfiguration = nameof(InvalidConfiguration);
    public const string ConfigurationNotFound = nameof(ConfigurationNotFound);
    public const string ConfigurationExists = nameof(ConfigurationExists);
    public const string ConfigurationLocked = nameof(ConfigurationLocked);
    public const string ConfigurationWriteFailed = nameof(ConfigurationWriteFailed);
    public const string InvalidServerName = nameof(InvalidServerName);
    public const string InvalidEndpoint = nameof(InvalidEndpoint);
    public const string InvalidSecret = nameof(InvalidSecret);
    public const string InvalidSetting = nameof(InvalidSetting);
    public const string InvalidPeerName = nameof(InvalidPeerName);
    public const string InvalidPort = nameof(InvalidPort);
    public const string PeerAlreadyExists = nameof(PeerAlreadyExists);
    public const string PeerNotFound = nameof(PeerNotFound);
    public const string InvalidDomainName = nameof(InvalidDomainName);
    public const string DomainAlreadyExists = nameof(DomainAlreadyExists);
    public const string DomainNotFound = nameof(DomainNotFound);
    public const string InvalidAddress = nameof(InvalidAddress);
    public const string EndpointInUse = nameof(EndpointInUse);
    public const string DomainNotHosted = nameof(DomainNotHosted);
    public const string AccountAlreadyExists = nameof(AccountAlreadyExists);
    public const string AccountExistsOnPeer = nameof(AccountExistsOnPeer);
    public const string AccountNotFound = nameof(AccountNotFound);
    public const string PeerUnreachable = nameof(PeerUnreachable);
    public const string InvalidQuota = nameof(InvalidQuota);
    public const string QueueMessageNotFound = nameof(QueueMessageNotFound);
    public const string SmtpServerUnreachable = nameof(SmtpServerUnreachable);
    public const string RelayAlreadyRunning = nameof(RelayAlreadyRunning);
    public const string RelayNotRunning = nameof(RelayNotRunning);
    public const string RelayStartFailed = nameof(RelayStartFailed);
    public const string RelayStopFailed = nameof(RelayStopFailed);
    public const string InvalidDnsServer = nameof(InvalidDnsServer);
}

/// <summary>A failure the engine reports to its callers, with a stable identifier, a kind and a recommended action.</summary>
public class DomainShareException : Exception
{
    public DomainShareException(string errorId, ErrorKind kind, string message, string? recommendedAction = null, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Kind = kind;
        RecommendedAction = recommendedAction;
        Target = target;
    }

    public string ErrorId { get; }
    public ErrorKind Kind { get; }
    public string? RecommendedAction { get; }
    public object? Target { get; }
}
