using System.Net;

namespace DomainShare.Engine.Smtp;

/// <summary>Who is talking to the SMTP server: what the recipient policy and the queue need to know about a session.</summary>
public sealed record SmtpSessionInfo(string SessionId, IPEndPoint Remote, IPEndPoint Local, string? HeloName, bool Secure, bool Authenticated = false);

/// <summary>Where one accepted recipient goes.</summary>
public enum RouteKind
{
    /// <summary>An account of this server: delivered into its Maildir.</summary>
    Local,
    /// <summary>A user of a peer: delivered over SMTP to the peer's host:port.</summary>
    Peer,
    /// <summary>A domain not hosted here, from a trusted client: handed to the configured relay (smart) host.</summary>
    RelayHost,
}

/// <summary>An accepted recipient and its route. <see cref="Peer"/> is the peer's configured name for <see cref="RouteKind.Peer"/>.</summary>
public sealed record RecipientRoute(string Recipient, RouteKind Kind, string? Peer = null);

/// <summary>
/// The answer to one RCPT TO. <see cref="Route"/> is set exactly when the recipient is accepted (2xx). The texts are the
/// whole reply line after the code, enhanced status code first (<c>5.1.1 User unknown</c>).
/// </summary>
public sealed record RecipientDecision(int Code, string Text, RecipientRoute? Route)
{
    public bool Accepted => Code is >= 200 and < 300;

    public static RecipientDecision Accept(RecipientRoute route, string text = "2.1.5 Recipient OK") => new(250, text, route);
}

/// <summary>Decides RCPT TO (domain-sharing.md §"Receiving a message"). Implemented by the relay on top of the resolver.</summary>
public interface IRecipientPolicy
{
    ValueTask<RecipientDecision> CheckRecipientAsync(SmtpSessionInfo session, string? reversePath, string recipient, CancellationToken ct);
}

/// <summary>What a message is, apart from its content.</summary>
public sealed record SmtpEnvelope(string? ReversePath, IReadOnlyList<RecipientRoute> Recipients, SmtpSessionInfo Session, DateTimeOffset Received)
{
    /// <summary>MAIL FROM carried SMTPUTF8 (RFC 6531): addresses or headers may be UTF-8; delivery must find SMTPUTF8 at the next hop.</summary>
    public bool SmtpUtf8 { get; init; }

    /// <summary>MAIL FROM's BODY= parameter (RFC 6152); <see cref="SmtpBodyType.EightBitMime"/> needs 8BITMIME at the next hop.</summary>
    public SmtpBodyType BodyType { get; init; }
}

/// <summary>
/// Where accepted messages go: the durable queue. The SMTP server streams the content (already dot-unstuffed, with its
/// Received: header first) into a draft and answers 250 only after <see cref="IMessageDraft.CommitAsync"/> returned,
/// i.e. once the message is on durable storage.
/// </summary>
public interface IMessageSink
{
    /// <summary>Starts a message. Throws <see cref="SmtpStorageException"/> when the spool cannot take it (answer 452).</summary>
    IMessageDraft Begin(SmtpEnvelope envelope);

    /// <summary>
    /// False when the spool has no room now for a message of <paramref name="bytes"/> bytes, the size a client announced
    /// with MAIL FROM's SIZE= (RFC 1870 §6.1): the client is told 452 4.3.1 before it sends the content. True when unsure.
    /// </summary>
    bool HasRoomFor(long bytes) => true;
}

/// <summary>A message being received. Disposing a draft that was not committed deletes everything it wrote.</summary>
public interface IMessageDraft : IAsyncDisposable
{
    /// <summary>Appends content. Throws <see cref="SmtpStorageException"/> on a storage failure (disk full).</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct);

    /// <summary>Makes the message durable (fsync of file and folder) and hands it to delivery. Returns the queue id.</summary>
    ValueTask<string> CommitAsync(CancellationToken ct);
}

/// <summary>The spool could not store a message (disk full, I/O error): the client is told 452 4.3.1 and retries later; nothing half-written is ever delivered.</summary>
public sealed class SmtpStorageException(string message, Exception? inner = null) : Exception(message, inner);
