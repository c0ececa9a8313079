using System.Net;
using DomainShare.Engine.Configuration;
using MailKit.Security;

namespace DomainShare.Engine.Delivery;

/// <summary>
/// When a message that could not be delivered is tried again (RFC 5321 §4.5.4.1): after <see cref="FirstDelay"/>, then
/// each wait <see cref="Factor"/> times the one before, never longer than <see cref="MaxDelay"/>. The default waits
/// 5, 10, 20, 40 minutes, then every hour, until the queue lifetime ends.
/// </summary>
public sealed record RetrySchedule(TimeSpan FirstDelay, double Factor, TimeSpan MaxDelay)
{
    public static readonly RetrySchedule Default = new(TimeSpan.FromMinutes(5), 2, TimeSpan.FromHours(1));

    /// <summary>The wait after the <paramref name="attempts"/>-th failed attempt (1 = the first).</summary>
    public TimeSpan DelayAfter(int attempts)
    {
        if (FirstDelay <= TimeSpan.Zero) return TimeSpan.Zero;
        double ms = FirstDelay.TotalMilliseconds * Math.Pow(Math.Max(1, Factor), Math.Max(0, attempts - 1));
        return double.IsFinite(ms) && ms < MaxDelay.TotalMilliseconds ? TimeSpan.FromMilliseconds(ms) : MaxDelay;
    }
}

/// <summary>
/// How the <see cref="DeliveryAgent"/> works. Everything that an administrator configures (peers, relay host, queue
/// lifetime, <c>KeepQueuedOnDeliveryError</c>) is read live through <see cref="Configuration"/> at every attempt; the
/// values here are the engine's tunables, with defaults for production and small values for tests.
/// </summary>
public sealed record DeliveryAgentOptions
{
    /// <summary>The live configuration (peers, relay host, queue lifetime, domain-sharing options).</summary>
    public required Func<ServerConfiguration> Configuration { get; init; }

    /// <summary>When a message with pending recipients is tried again.</summary>
    public RetrySchedule Retry { get; init; } = RetrySchedule.Default;

    /// <summary>
    /// With <c>KeepQueuedOnDeliveryError</c> off: after this many failed attempts to its peer, a recipient is handed to
    /// the relay host (when one is configured). With the option on (the default) this is never done.
    /// </summary>
    public int PeerAttemptsBeforeRelayHost { get; init; } = Defaults.PeerAttemptsBeforeRelayHost;

    /// <summary>SMTP connections open at once to one peer (or to the relay host), and messages being delivered to it at once.</summary>
    public int MaxConnectionsPerDestination { get; init; } = Defaults.MaxConnectionsPerPeer;

    /// <summary>Messages being delivered at once.</summary>
    public int MaxConcurrentMessages { get; init; } = 32;

    /// <summary>How long a connection to a peer stays open unused, waiting for the next message to that peer.</summary>
    public TimeSpan ConnectionIdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time to connect and read the greeting and EHLO answer.</summary>
    public TimeSpan ConnectTimeout { get; init; } = Defaults.DeliveryConnectTimeout;

    /// <summary>Time for each SMTP command's answer and each write (RFC 5321 §4.5.3.2 suggests minutes).</summary>
    public TimeSpan CommandTimeout { get; init; } = Defaults.DeliveryCommandTimeout;

    /// <summary>After a failed connection, other messages for the same destination wait this long instead of trying again at once.</summary>
    public TimeSpan UnreachableHold { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the agent re-reads the queue folder for changes made by another process (a cmdlet resuming a message).</summary>
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often one recipient may be routed again within one attempt (a peer says unknown and the address moved).</summary>
    public int MaxReroutesPerAttempt { get; init; } = 3;

    /// <summary>TLS to peers and the relay host: STARTTLS when offered (opportunistic, RFC 7435).</summary>
    public SecureSocketOptions Tls { get; init; } = SecureSocketOptions.StartTlsWhenAvailable;

    /// <summary>
    /// Check the certificate of peers and the relay host. Off by default: opportunistic TLS between mail servers
    /// protects against passive listening and must not make mail wait for a self-signed certificate.
    /// </summary>
    public bool ValidateCertificates { get; init; }

    /// <summary>How peer host names are looked up for loop protection (tests map names to loopback); null uses DNS.</summary>
    public Func<string, CancellationToken, Task<IPAddress[]>>? HostAddresses { get; init; }
}
