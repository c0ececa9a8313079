using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Queue;

/// <summary>Where a queued recipient goes. Like <see cref="RouteKind"/>, plus <see cref="Unresolved"/> for mail the server writes itself (bounces).</summary>
public enum QueueRoute
{
    /// <summary>An account of this server: written into its Maildir.</summary>
    Local,
    /// <summary>A user of a peer: delivered over SMTP to the peer's host:port.</summary>
    Peer,
    /// <summary>Handed to the configured relay (smart) host.</summary>
    RelayHost,
    /// <summary>Not routed yet: the delivery agent resolves the address when it delivers (bounces to their sender).</summary>
    Unresolved,
}

/// <summary>How far one recipient of a queued message has come.</summary>
public enum RecipientState
{
    /// <summary>Not delivered yet: retried at the message's next attempt.</summary>
    Pending,
    /// <summary>Delivered (written into the Maildir, or accepted by the peer or relay host).</summary>
    Delivered,
    /// <summary>Undeliverable: failed permanently or the queue lifetime ended; the sender was sent a bounce (unless the message was a bounce itself).</summary>
    Failed,
}

/// <summary>One recipient of a queued message, with its route and state.</summary>
public sealed record QueuedRecipient
{
    /// <summary>The address, without angle brackets.</summary>
    public required string Address { get; init; }
    public QueueRoute Route { get; init; }
    /// <summary>The peer's configured name when <see cref="Route"/> is <see cref="QueueRoute.Peer"/>.</summary>
    public string? Peer { get; init; }
    public RecipientState State { get; init; }
    /// <summary>Failed delivery attempts to the current route (reset when the recipient is routed elsewhere).</summary>
    public int Attempts { get; init; }
    /// <summary>The last error for this recipient: an SMTP-style reply (<c>451 4.4.1 ...</c>), kept for the bounce's Diagnostic-Code.</summary>
    public string? LastError { get; init; }
    /// <summary>When the recipient was delivered or failed.</summary>
    public DateTimeOffset? Completed { get; init; }
    /// <summary>The peer the recipient was first routed to, when it has since been handed to the relay host.</summary>
    public string? OriginalPeer { get; init; }

    public static QueuedRecipient From(RecipientRoute route) => new()
    {
        Address = route.Recipient,
        Route = route.Kind switch
        {
            RouteKind.Local => QueueRoute.Local,
            RouteKind.Peer => QueueRoute.Peer,
            RouteKind.RelayHost => QueueRoute.RelayHost,
            _ => throw new ArgumentOutOfRangeException(nameof(route), route.Kind, "Unknown route kind."),
        },
        Peer = route.Kind == RouteKind.Peer ? route.Peer : null,
    };
}

/// <summary>Where a queued message came from: what loop protection and an administrator need to know.</summary>
/// <param name="Address">The client's IP address (IPv4-mapped addresses written as IPv4); null for mail this server wrote itself.</param>
/// <param name="HeloName">The name the client gave in HELO/EHLO.</param>
/// <param name="SessionId">The SMTP session that received the message.</param>
/// <param name="Authenticated">The client had authenticated.</param>
public sealed record MessageSource(string? Address, string? HeloName = null, string? SessionId = null, bool Authenticated = false)
{
    /// <summary>Mail this server writes itself (bounces).</summary>
    public static readonly MessageSource Internal = new((string?)null);

    public static MessageSource From(SmtpSessionInfo session)
    {
        var ip = session.Remote.Address;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        return new MessageSource(ip.ToString(), session.HeloName, session.SessionId, session.Authenticated);
    }

    /// <summary>The client's address, parsed; null when none or unparsable.</summary>
    public IPAddress? ParseAddress() => Address is not null && IPAddress.TryParse(Address, out var ip) ? ip : null;
}

/// <summary>
/// A message in the queue: its envelope as stored in <c>queue/&lt;id&gt;.json</c> beside the content <c>queue/&lt;id&gt;.eml</c>.
/// Immutable: the queue rewrites the whole envelope atomically on every change.
/// </summary>
public sealed record QueuedMessage
{
    public const int CurrentVersion = 1;

    /// <summary>Envelope format version.</summary>
    public int Version { get; init; } = CurrentVersion;
    /// <summary>Queue id: UTC time to the millisecond and a random part, so ids sort by arrival and never collide.</summary>
    public required string Id { get; init; }
    /// <summary>The MAIL FROM address; null for the null reverse path <c>&lt;&gt;</c> (bounces, which are never bounced).</summary>
    public string? ReversePath { get; init; }
    public required IReadOnlyList<QueuedRecipient> Recipients { get; init; }
    /// <summary>When the message was committed; the queue lifetime counts from here.</summary>
    public DateTimeOffset Created { get; init; }
    /// <summary>When delivery is tried next.</summary>
    public DateTimeOffset NextAttempt { get; init; }
    public DateTimeOffset? LastAttempt { get; init; }
    /// <summary>Delivery attempts that left recipients pending.</summary>
    public int Attempts { get; init; }
    public string? LastError { get; init; }
    /// <summary>Content size in bytes.</summary>
    public long Size { get; init; }
    public MessageSource? Source { get; init; }
    /// <summary>MAIL FROM carried SMTPUTF8 (RFC 6531): the next hop must offer SMTPUTF8.</summary>
    public bool SmtpUtf8 { get; init; }
    /// <summary>MAIL FROM's BODY= parameter (RFC 6152).</summary>
    public SmtpBodyType BodyType { get; init; }

    /// <summary>A message with the null reverse path: a bounce, never bounced itself.</summary>
    [JsonIgnore]
    public bool IsBounce => string.IsNullOrEmpty(ReversePath);

    [JsonIgnore]
    public bool IsFinished => Recipients.All(r => r.State != RecipientState.Pending);
}

/// <summary>Queue ids and the envelope file format.</summary>
public static class QueueFormat
{
    private const string IdTimeFormat = "yyyyMMddHHmmssfff";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>A new queue id, <c>yyyyMMddHHmmssfff-xxxxxxxxxx</c> (UTC time, 40 random bits).</summary>
    public static string NewId(DateTimeOffset now)
        => now.UtcDateTime.ToString(IdTimeFormat, CultureInfo.InvariantCulture) + "-" +
           Convert.ToHexString(RandomNumberGenerator.GetBytes(5)).ToLowerInvariant();

    /// <summary>True when <paramref name="id"/> has the form of a queue id (so it can never name a path outside the queue).</summary>
    public static bool IsValidId(string? id)
    {
        if (id is null || id.Length != IdTimeFormat.Length + 11 || id[IdTimeFormat.Length] != '-') return false;
        for (int i = 0; i < id.Length; i++)
        {
            if (i == IdTimeFormat.Length) continue;
            char c = id[i];
            if (i < IdTimeFormat.Length ? !char.IsAsciiDigit(c) : !(char.IsAsciiDigit(c) || c is >= 'a' and <= 'f')) return false;
        }
        return true;
    }

    public static byte[] Serialize(QueuedMessage message) => JsonSerializer.SerializeToUtf8Bytes(message, Json);

    /// <summary>Reads an envelope; throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static QueuedMessage Deserialize(ReadOnlySpan<byte> json, string expectedId)
    {
        QueuedMessage? message;
        try { message = JsonSerializer.Deserialize<QueuedMessage>(json, Json); }
        catch (JsonException ex) { throw new InvalidDataException($"not a valid envelope: {ex.Message}", ex); }
        if (message is null) throw new InvalidDataException("the envelope is empty (null)");
        if (message.Version != QueuedMessage.CurrentVersion) throw new InvalidDataException($"unknown envelope version {message.Version}");
        if (message.Id != expectedId) throw new InvalidDataException($"the envelope names id '{message.Id}', not '{expectedId}'");
        if (message.Recipients is null || message.Recipients.Count == 0) throw new InvalidDataException("the envelope has no recipients");
        foreach (var r in message.Recipients)
        {
            if (r is null || string.IsNullOrWhiteSpace(r.Address)) throw new InvalidDataException("a recipient has no address");
            if (!Enum.IsDefined(r.Route) || !Enum.IsDefined(r.State)) throw new InvalidDataException($"recipient '{r.Address}' has an unknown route or state");
            if (r.Route == QueueRoute.Peer && string.IsNullOrWhiteSpace(r.Peer)) throw new InvalidDataException($"recipient '{r.Address}' is routed to a peer but names none");
        }
        return message;
    }
}
