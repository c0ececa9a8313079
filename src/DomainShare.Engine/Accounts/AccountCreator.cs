using System.Diagnostics;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Accounts;

/// <summary>What an administrator asks for when creating an account.</summary>
/// <param name="MovingFrom">
/// The peer the account is moving from: its "exists" answer is expected and does not refuse the creation (every other
/// peer is still checked). Mail keeps flowing to the old server until the old account is removed, then it follows.
/// </param>
public sealed record AccountRequest(string Address, string? DisplayName = null, bool Enabled = true, long? QuotaBytes = null, string? MovingFrom = null);

/// <summary>A created account, what each peer said, and the peers skipped because they could not be reached.</summary>
public sealed record AccountCreation(Account Account, IReadOnlyList<MingerPeerResult> Peers, IReadOnlyList<MingerPeerResult> SkippedPeers, TimeSpan Elapsed);

/// <summary>
/// Creates accounts so that an address never exists on two servers: the address is reserved here first (it answers 4
/// to peers from that moment), then every enabled peer is asked in parallel; any peer that has it (4 or 5) refuses the
/// creation, any peer that cannot be reached refuses it too unless the administrator explicitly skips unreachable
/// peers. Two servers creating the same address at the same moment cannot both succeed: each one's reservation is in
/// place before it asks the other, so at least one of them sees a 4.
/// </summary>
public sealed class AccountCreator
{
    private readonly Func<ServerConfiguration> configuration;
    private readonly AccountStore store;
    private readonly string dataDirectory;
    private readonly MingerClient client;

    public AccountCreator(Func<ServerConfiguration> configuration, AccountStore store, string dataDirectory, MingerClient client)
    {
        this.configuration = configuration;
        this.store = store;
        this.dataDirectory = dataDirectory;
        this.client = client;
    }

    /// <summary>Checks the address syntax and that its domain is hosted here. Returns the parsed address and whether its domain is shared.</summary>
    public (MailAddress Address, bool Shared) Validate(string address)
    {
        var parsed = MailAddress.Parse(address);
        var domain = configuration().FindDomain(parsed.Domain)
            ?? throw new DomainShareException(ErrorIds.DomainNotHosted, ErrorKind.InvalidArgument,
                $"The domain '{parsed.Domain}' of '{address}' is not hosted on this server.",
                $"Add it with Add-DomainShareDomain {parsed.Domain} [-Shared], or create the account on a server that hosts it.", address);
        return (parsed, domain.Shared && configuration().DomainSharing.Enabled);
    }

    /// <summary>How long a reservation holds: far longer than a fan-out can take, short enough that a crash mid-creation does not block the address for long.</summary>
    private TimeSpan ReservationHold
    {
        get
        {
            var m = configuration().Minger;
            var fanOut = m.Timeout * (m.Retries + 1);
            return fanOut * 4 > TimeSpan.FromMinutes(2) ? fanOut * 4 : TimeSpan.FromMinutes(2);
        }
    }

    /// <param name="onPeerAnswer">Called as each peer answers or fails (progress); may be called from another thread.</param>
    public async Task<AccountCreation> CreateAsync(AccountRequest request, bool skipUnreachablePeers,
        Action<MingerPeerResult>? onPeerAnswer = null, CancellationToken ct = default)
    {
        long started = Stopwatch.GetTimestamp();
        var (address, shared) = Validate(request.Address);
        if (request.QuotaBytes is < 0)
            throw new DomainShareException(ErrorIds.InvalidQuota, ErrorKind.InvalidArgument, $"The quota {request.QuotaBytes} is negative.",
                "Give a quota in bytes (500MB, 2GB) or none.", request.QuotaBytes);
        var config = configuration();
        string maildir = Maildir.RelativePathFor(address);
        var account = new Account(address.Address, request.DisplayName, request.Enabled, request.QuotaBytes, DateTimeOffset.UtcNow, maildir);
        var reservation = store.Reserve(account, ReservationHold);
        bool committed = false;
        try
        {
            var peers = shared ? config.Peers.Where(p => p.Enabled).ToList() : [];
            var fanOut = await client.AskAsync(address.Address, peers, MingerFanOutMode.WaitForAll, MingerQueryOptions.From(config.Minger), ct, onPeerAnswer)
                .ConfigureAwait(false);
            var holders = fanOut.Peers.Where(p => p.Status is MingerStatus.Exists or MingerStatus.CannotReceive
                                                  && !string.Equals(p.Peer, request.MovingFrom, StringComparison.OrdinalIgnoreCase)).ToList();
            if (request.MovingFrom is not null && !fanOut.Peers.Any(p => string.Equals(p.Peer, request.MovingFrom, StringComparison.OrdinalIgnoreCase)))
                throw new DomainShareException(ErrorIds.PeerNotFound, ErrorKind.NotFound,
                    $"'{request.MovingFrom}' is not an enabled peer of this server, so '{address}' cannot move from it.",
                    "Name the old server as it is configured here (Get-DomainSharePeer).", request.MovingFrom);
            if (holders.Count > 0)
                throw new DomainShareException(ErrorIds.AccountExistsOnPeer, ErrorKind.AlreadyExists,
                    $"'{address}' already exists on {string.Join(", ", holders.Select(h => $"peer '{h.Peer}' (answered {(int)h.Status!}: {MingerClient.Describe(h.Status!.Value)})"))}; it was not created.",
                    "An address lives on one server only: use the existing account, or choose another address.", request.Address);
            var failed = fanOut.Failures.ToList();
            if (failed.Count > 0 && !skipUnreachablePeers)
                throw new DomainShareException(ErrorIds.PeerUnreachable, ErrorKind.ResourceUnavailable,
                    $"'{address}' was not created: {string.Join("; ", failed.Select(f => (f.Error ?? $"peer '{f.Peer}' failed").TrimEnd('.')))}.",
                    "Retry when the peer is back (Test-DomainSharePeer), or use -SkipUnreachablePeer if you are sure it does not hold the address.", request.Address);
            Maildir.Create(Path.Combine(dataDirectory, maildir));
            if (!store.CommitReservation(reservation))
                throw new DomainShareException(ErrorIds.AccountAlreadyExists, ErrorKind.AlreadyExists,
                    $"The reservation of '{address}' expired before the peers answered; it was not created.", "Retry.", request.Address);
            committed = true;
            return new AccountCreation(store.Get(address.Address)!, fanOut.Peers, failed, Stopwatch.GetElapsedTime(started));
        }
        finally
        {
            if (!committed) store.ReleaseReservation(reservation);
        }
    }
}
