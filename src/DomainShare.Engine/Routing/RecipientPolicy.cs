using System.Net;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Routing;

/// <summary>
/// RCPT TO as domain-sharing.md specifies it, on top of the resolver: local → accept; a peer (cached or asked live)
/// → accept and route there; a peer failed and none has it → 451 4.4.3; nobody has it → 550 5.1.1; exists but cannot
/// receive → 450 4.2.1; domain not hosted → 550 5.7.1, unless the client is in a trusted network and a relay host is
/// configured. Never an open relay. Mail is never routed back to the peer it came from: such a recipient is resolved
/// again without the cache, and refused for now (450 4.4.6) if it still points there. A local account whose Maildir
/// has reached its quota is refused with 552 5.2.2.
/// </summary>
public sealed class RecipientPolicy : IRecipientPolicy
{
    private readonly Func<ServerConfiguration> configuration;
    private readonly AddressResolver resolver;
    private readonly Func<IPAddress, string?> peerAt;
    private readonly Func<string, bool> overQuota;

    /// <param name="peerAt">The configured peer a client address belongs to, or null.</param>
    /// <param name="overQuota">True when a local recipient's mailbox has reached its quota; never over quota when null.</param>
    public RecipientPolicy(Func<ServerConfiguration> configuration, AddressResolver resolver, Func<IPAddress, string?> peerAt,
        Func<string, bool>? overQuota = null)
    {
        this.configuration = configuration;
        this.resolver = resolver;
        this.peerAt = peerAt;
        this.overQuota = overQuota ?? (_ => false);
    }

    /// <summary>The reply to a recipient whose mailbox is full (domain-sharing.md: over quota → 552 5.2.2).</summary>
    public static readonly RecipientDecision MailboxFull = new(552, "5.2.2 Mailbox full, quota exceeded", null);

    public async ValueTask<RecipientDecision> CheckRecipientAsync(SmtpSessionInfo session, string? reversePath, string recipient, CancellationToken ct)
    {
        if (recipient.IndexOf('@') < 0)
        {
            // RFC 5321 §4.5.1: RCPT TO:<Postmaster> without a domain must be accepted; it is the postmaster of the first
            // hosted domain (an account like any other: refused as unknown when that domain has none).
            if (configuration().Domains is not [var first, ..]) return Refusal(ResolutionResult.NotFound);
            recipient = $"postmaster@{first.Name}";
        }
        AddressResolution resolution;
        try
        {
            resolution = await resolver.ResolveAsync(recipient, null, ct).ConfigureAwait(false);
        }
        catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidAddress)
        {
            return new RecipientDecision(501, "5.1.3 Bad recipient address syntax", null);
        }

        if (resolution.Result == ResolutionResult.Peer && peerAt(session.Remote.Address) is { } source &&
            string.Equals(source, resolution.Peer, StringComparison.OrdinalIgnoreCase))
        {
            // The peer that sent this thinks we hold the mailbox, and we think it does: ask again, live.
            resolution = await resolver.ResolveAsync(recipient, new ResolveOptions { NoCache = true }, ct).ConfigureAwait(false);
            if (resolution.Result == ResolutionResult.Peer && string.Equals(source, resolution.Peer, StringComparison.OrdinalIgnoreCase))
                return new RecipientDecision(450, "4.4.6 Routing loop: the mailbox is reported on the sending server; try again later", null);
        }

        return resolution.Result switch
        {
            ResolutionResult.Local when overQuota(recipient) => MailboxFull,
            ResolutionResult.Local => RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.Local)),
            ResolutionResult.Peer => RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.Peer, resolution.Peer)),
            ResolutionResult.DomainNotHosted => RelayOrDeny(session, recipient),
            _ => Refusal(resolution.Result),
        };
    }

    private RecipientDecision RelayOrDeny(SmtpSessionInfo session, string recipient)
    {
        var smtp = configuration().Smtp;
        var remote = session.Remote.Address.IsIPv4MappedToIPv6 ? session.Remote.Address.MapToIPv4() : session.Remote.Address;
        bool trusted = smtp.TrustedNetworks.Any(n => NetworkRange.TryParse(n, out var range) && range.Contains(remote));
        return trusted && smtp.RelayHost is not null
            ? RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.RelayHost))
            : Refusal(ResolutionResult.DomainNotHosted);
    }

    /// <summary>The refusal for a result, from the one table of replies (<see cref="SmtpReplies"/>).</summary>
    private static RecipientDecision Refusal(ResolutionResult result)
    {
        var line = SmtpReplies.ForRecipient(result);
        return new RecipientDecision(int.Parse(line.AsSpan(0, 3), System.Globalization.CultureInfo.InvariantCulture), line[4..], null);
    }
}
