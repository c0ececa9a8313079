namespace DomainShare.Engine.Configuration;

/// <summary>Allowed ranges of numeric settings, shared by the YAML reader and the cmdlet parameter validation.</summary>
public static class Limits
{
    public const int MaxMingerRetries = 10;
    public const int MaxRateLimitPerSecond = 1_000_000;
    public const int MaxHops = 1000;
    public const int MinMessageBytes = 1024;
    public const int MaxRecipients = 100_000;
    public const int MaxConnections = 100_000;
    public const int MaxPeerAttempts = 1000;
    public const int MaxConnectionsPerPeer = 100;
}
