using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Smtp;

/// <summary>
/// What the SMTP server enforces and advertises. Immutable: make a variant with <c>with { ... }</c> and hand it to a
/// running server with <see cref="SmtpServer.Configure"/>; it takes effect for the next command of every session and
/// for the next connection.
/// </summary>
/// <remarks>
/// <para>Line endings: RFC 5321 §4.1.1.4 says a server MUST NOT take a bare LF as the end of a line. A command line that
/// ends in a bare LF is refused (<c>500 5.5.2</c>, not executed); message content that holds a bare LF or a bare CR is
/// read to its end (only <c>CRLF.CRLF</c> ends it, never <c>LF.LF</c> or <c>LF.CRLF</c>: no SMTP smuggling) and refused
/// with <c>554 5.6.0</c>. Content is therefore stored byte for byte as received, less the dot-stuffing.</para>
/// <para>Line lengths: a command line may have <see cref="MaxLineBytes"/> octets with its CRLF (RFC 5321 §4.5.3.1.4 asks
/// for at least 512; the default leaves room for extension parameters). A text line of the message may have
/// <see cref="MaxDataLineBytes"/> (RFC 5322 says 998 + CRLF, but real mail breaks that, so the default tolerates up to
/// 64 KiB; content is streamed, so the limit is about sanity, not memory). A longer text line refuses the message
/// with <c>554 5.6.0</c>; content is never rewrapped, which would break signatures.</para>
/// </remarks>
public sealed record SmtpServerOptions
{
    public const long DefaultMaxMessageBytes = 25L * 1024 * 1024;
    public const int DefaultMaxRecipients = 100;
    public const int DefaultMaxLineBytes = 1000;
    public const int MinimumLineBytes = 512;
    public const int MaximumLineBytes = 64 * 1024;
    public const int DefaultMaxDataLineBytes = 64 * 1024;
    public const int MinimumDataLineBytes = 1000;
    public const int DefaultMaxErrors = 20;
    public const int DefaultMaxConnections = 500;
    public const int DefaultMaxConnectionsPerSource = 50;
    public static readonly TimeSpan DefaultCommandTimeout = Defaults.SmtpCommandTimeout;
    public static readonly TimeSpan DefaultDataTimeout = Defaults.SmtpDataTimeout;
    public static readonly TimeSpan DefaultSessionTimeout = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan DefaultShutdownGracePeriod = TimeSpan.FromSeconds(30);

    /// <summary>This server's host name: in the greeting, the EHLO reply, 421 replies and our <c>Received:</c> header.</summary>
    public string ServerName { get; init; } = DefaultServerName();

    /// <summary>The largest message accepted, in octets of content (after dot-unstuffing, without our Received: header). Advertised as SIZE.</summary>
    public long MaxMessageBytes { get; init; } = DefaultMaxMessageBytes;

    /// <summary>Recipients accepted in one transaction; the next RCPT is answered <c>452 4.5.3</c> and the client sends the rest in another transaction.</summary>
    public int MaxRecipients { get; init; } = DefaultMaxRecipients;

    /// <summary>The longest command line, CRLF included; a longer one is answered <c>500 5.5.6</c> and skipped up to its line end.</summary>
    public int MaxLineBytes { get; init; } = DefaultMaxLineBytes;

    /// <summary>The longest text line of a message, CRLF included; a message with a longer line is refused with <c>554 5.6.0</c>.</summary>
    public int MaxDataLineBytes { get; init; } = DefaultMaxDataLineBytes;

    /// <summary>Protocol errors (unknown commands, syntax, sequence) allowed in one session; at this many the session is closed with <c>421 4.7.0</c>.</summary>
    public int MaxErrors { get; init; } = DefaultMaxErrors;

    /// <summary>
    /// The longest a client may take to send a command line, counted from when the server waits for it however its
    /// bytes trickle in (or to take a reply); then <c>421 4.4.2</c> and close.
    /// </summary>
    public TimeSpan CommandTimeout { get; init; } = DefaultCommandTimeout;

    /// <summary>During DATA, the longest a text line of the message may take to arrive in full (counted from the end of the previous one, however its bytes trickle in), and the spool to store it.</summary>
    public TimeSpan DataTimeout { get; init; } = DefaultDataTimeout;

    /// <summary>The longest a connection may last, whatever it does; then <c>421 4.4.2</c> and close.</summary>
    public TimeSpan SessionTimeout { get; init; } = DefaultSessionTimeout;

    /// <summary>Connections open at once; one more is answered <c>421 4.7.0</c> and closed.</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>Connections open at once from one IP address; one more is answered <c>421 4.7.0</c> and closed.</summary>
    public int MaxConnectionsPerSource { get; init; } = DefaultMaxConnectionsPerSource;

    /// <summary>The most <c>Received:</c> headers a message may carry in its header section; one more and it is refused with <c>554 5.4.6</c> (a mail loop).</summary>
    public int MaxHops { get; init; } = Defaults.MaxHops;

    /// <summary>The certificate (with its private key) for STARTTLS; null: STARTTLS is neither advertised nor accepted.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>On stop, how long sessions in the middle of a transaction may go on to finish it before they are closed with <c>421 4.3.2</c>.</summary>
    public TimeSpan ShutdownGracePeriod { get; init; } = DefaultShutdownGracePeriod;

    /// <summary>Throws a <see cref="DomainShareException"/> (<see cref="ErrorIds.InvalidSetting"/>) naming the first option a server cannot run with.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(ServerName) || ServerName.Length > 255 || ServerName.Any(c => c is <= ' ' or > '~' or '(' or ')' or '<' or '>' or ';'))
            throw Invalid(nameof(ServerName), ServerName, "a host name of printable ASCII without spaces (the name in the greeting and in Received: headers)");
        if (MaxMessageBytes < 1024)
            throw Invalid(nameof(MaxMessageBytes), MaxMessageBytes, "at least 1024 octets");
        if (MaxRecipients < 1)
            throw Invalid(nameof(MaxRecipients), MaxRecipients, "at least 1 (RFC 5321 asks servers to take 100)");
        if (MaxLineBytes is < MinimumLineBytes or > MaximumLineBytes)
            throw Invalid(nameof(MaxLineBytes), MaxLineBytes, $"between {MinimumLineBytes} (RFC 5321 §4.5.3.1.4) and {MaximumLineBytes}");
        if (MaxDataLineBytes < MinimumDataLineBytes)
            throw Invalid(nameof(MaxDataLineBytes), MaxDataLineBytes, $"at least {MinimumDataLineBytes} (RFC 5321 §4.5.3.1.6)");
        if (MaxErrors < 1)
            throw Invalid(nameof(MaxErrors), MaxErrors, "at least 1");
        if (CommandTimeout <= TimeSpan.Zero || DataTimeout <= TimeSpan.Zero || SessionTimeout <= TimeSpan.Zero || ShutdownGracePeriod < TimeSpan.Zero)
            throw Invalid("timeouts", $"{CommandTimeout}, {DataTimeout}, {SessionTimeout}, {ShutdownGracePeriod}", "positive time spans (the grace period may be zero)");
        if (MaxConnections < 1)
            throw Invalid(nameof(MaxConnections), MaxConnections, "at least 1");
        if (MaxConnectionsPerSource < 1)
            throw Invalid(nameof(MaxConnectionsPerSource), MaxConnectionsPerSource, "at least 1");
        if (MaxHops is < 1 or > Limits.MaxHops)
            throw Invalid(nameof(MaxHops), MaxHops, $"between 1 and {Limits.MaxHops}");
        if (Certificate is { HasPrivateKey: false })
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                $"The STARTTLS certificate '{Certificate.Subject}' has no private key.",
                "Load the certificate together with its private key (a PKCS#12/PFX file, or PEM certificate and key).", Certificate.Subject);
    }

    private static DomainShareException Invalid(string option, object value, string expected) =>
        new(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
            string.Create(CultureInfo.InvariantCulture, $"The SMTP server option {option} = '{value}' is not valid: it must be {expected}."),
            $"Set {option} to {expected}.", value);

    private static string DefaultServerName()
    {
        var name = Environment.MachineName;
        return string.IsNullOrWhiteSpace(name) || name.Any(c => c is <= ' ' or > '~') ? "localhost" : name.ToLowerInvariant();
    }

    // A certificate prints as its subject and thumbprint, not as a whole object dump.
    private bool PrintMembers(StringBuilder b)
    {
        b.Append(CultureInfo.InvariantCulture,
            $"ServerName = {ServerName}, MaxMessageBytes = {MaxMessageBytes}, MaxRecipients = {MaxRecipients}, MaxLineBytes = {MaxLineBytes}, MaxDataLineBytes = {MaxDataLineBytes}, ");
        b.Append(CultureInfo.InvariantCulture,
            $"MaxErrors = {MaxErrors}, CommandTimeout = {CommandTimeout}, DataTimeout = {DataTimeout}, SessionTimeout = {SessionTimeout}, ");
        b.Append(CultureInfo.InvariantCulture,
            $"MaxConnections = {MaxConnections}, MaxConnectionsPerSource = {MaxConnectionsPerSource}, MaxHops = {MaxHops}, ");
        b.Append(CultureInfo.InvariantCulture,
            $"Certificate = {(Certificate is null ? "none" : $"{Certificate.Subject} ({Certificate.Thumbprint})")}, ShutdownGracePeriod = {ShutdownGracePeriod}");
        return true;
    }
}
