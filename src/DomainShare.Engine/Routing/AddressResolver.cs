using System.Diagnostics;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Routing;

/// <summary>
/// Decides where mail for one address goes, as docs/domain-sharing.md "Receiving a message" says: domain hosted? local
/// account? domain shared? then the verification cache, then every enabled peer in parallel over Minger.
/// <para>
/// The configuration is read through a delegate on every call, so a change (a peer added, a TTL changed, sharing turned
/// off) applies to the next resolution. Live answers are written to the cache: a 5 as a positive entry, an "unknown
/// everywhere" as a negative entry when the negative TTL is above zero; a cached peer that now answers 3 loses its entry.
/// </para>
/// Safe to share between threads and sessions; one resolution never blocks another.
/// </summary>
public sealed class AddressResolver : IGatewayLookup
{
    private readonly Func<ServerConfiguration> configuration;
    private readonly IAccountDirectory accounts;
    private readonly VerificationCache cache;
    private readonly MingerClient client;
    private readonly IEngineLog log;

    public AddressResolver(Func<ServerConfiguration> configuration, IAccountDirectory accounts, VerificationCache cache, MingerClient client, IEngineLog? log = null)
    {
        this.configuration = configuration ?? throw new ArgumentNullException(nameof(configuration));
        this.accounts = accounts ?? throw new ArgumentNullException(nameof(accounts));
        this.cache = cache ?? throw new ArgumentNullException(nameof(cache));
        this.client = client ?? throw new ArgumentNullException(nameof(client));
        this.log = log ?? NullEngineLog.Instance;
    }

    /// <summary>
    /// Resolves <paramref name="address"/> (<c>local@domain</c>, without angle brackets).
    /// Throws <see cref="DomainShareException"/> <see cref="ErrorIds.InvalidAddress"/> for an address that is not
    /// syntactically valid, <see cref="ErrorIds.PeerNotFound"/> when <see cref="ResolveOptions.Peers"/> names an unknown
    /// peer, and <see cref="OperationCanceledException"/> when cancelled. Peer failures are results, never exceptions.
    /// </summary>
    public async Task<AddressResolution> ResolveAsync(string address, ResolveOptions? options = null, CancellationToken cancellationToken = default)
    {
        long started = Stopwatch.GetTimestamp();
        options ??= ResolveOptions.Default;
        var parsed = RoutingAddress.Parse(address);
        var config = configuration();

        AddressResolution Done(ResolutionResult result, string? peer = null, bool fromCache = false)
            => new(address, result, peer, fromCache, Stopwatch.GetElapsedTime(started), []);

        var domain = parsed.Domain is null ? null : config.FindDomain(parsed.Domain);
        if (domain is null)
            return Done(ResolutionResult.DomainNotHosted);

        switch (accounts.GetState(parsed.Canonical))
        {
            case AccountState.Active: return Done(ResolutionResult.Local);
            case AccountState.Disabled:
            case AccountState.Reserved: return Done(ResolutionResult.LocalCannotReceive);
        }

        if (!domain.Shared || !config.DomainSharing.Enabled)
            return Done(ResolutionResult.NotFound);

        var subset = options.Peers is null ? null : SelectPeers(config, options.Peers);
        bool allPeers = subset is null;

        if (!options.NoCache && cache.Lookup(parsed.Canonical) is { } hit)
        {
            if (hit.IsPositive)
            {
                var cachedPeer = config.FindPeer(hit.Peer!);
                if (cachedPeer is not null && (allPeers ? cachedPeer.Enabled : subset!.Contains(cachedPeer)))
                    return Done(ResolutionResult.Peer, cachedPeer.Name, fromCache: true);
                // The cached peer was removed or disabled since: its answer no longer routes anything.
                if (cachedPeer is not { Enabled: true })
                    TryCache(() => cache.Remove(parsed.Canonical, hit.Peer), "drop the entry of a peer no longer enabled");
            }
            else if (allPeers)
            {
                return Done(ResolutionResult.NotFound, fromCache: true);
            }
        }

        var peers = subset ?? config.Peers.Where(p => p.Enabled).ToList();
        if (peers.Count == 0)
            return Done(ResolutionResult.NotFound);

        var fanOut = await client.AskAsync(address, peers, MingerFanOutMode.StopAtFirstExists, MingerQueryOptions.From(config.Minger) with { Forwarded = options.Forwarded }, cancellationToken)
                                 .ConfigureAwait(false);
        var failed = fanOut.Failures.Select(f => new PeerFailure(f.Peer, f.Failure, f.Status, f.Error ?? f.Failure.ToString())).ToArray();

        AddressResolution Live(ResolutionResult result, string? peer)
        {
            var resolution = new AddressResolution(address, result, peer, false, Stopwatch.GetElapsedTime(started), failed) { PeerAnswers = fanOut.Peers };
            log.Write(LogLevel.Debug, $"Resolver: '{address}' → {result}{(peer is null ? "" : " (" + peer + ")")} in {resolution.Elapsed.TotalMilliseconds:0.0} ms, {peers.Count} peer(s) asked, {failed.Length} failed.");
            return resolution;
        }

        if (fanOut.Winner is { } winner)
        {
            TryCache(() => cache.StorePositive(parsed.Canonical, winner.Peer), "store a positive answer");
            return Live(ResolutionResult.Peer, winner.Peer);
        }

        // No 5. A cached peer that now says 3 no longer holds the address.
        ForgetPeersThatSayUnknown(parsed.Canonical, fanOut);

        var cannotReceive = fanOut.Peers.FirstOrDefault(p => p.Answered && p.Status == MingerStatus.CannotReceive);
        if (cannotReceive is not null)
            return Live(ResolutionResult.CannotReceive, cannotReceive.Peer);
        if (failed.Length > 0)
            return Live(ResolutionResult.TemporaryFailure, null);

        if (allPeers)
            TryCache(() =>
            {
                if (!cache.StoreNegative(parsed.Canonical))
                    cache.Remove(parsed.Canonical);
            }, "store a negative answer");
        return Live(ResolutionResult.NotFound, null);
    }

    /// <summary>Gateway lookups mark their queries as forwarded, so no peer forwards them again.</summary>
    private static readonly ResolveOptions GatewayOptions = new() { Forwarded = true };

    /// <summary>
    /// <see cref="IGatewayLookup"/>: true when a peer holds <paramref name="mailbox"/> (answered 5, live or cached); false when
    /// it exists nowhere, is local, or is not in a shared domain. Throws <see cref="AddressResolutionException"/> when a peer
    /// failed or answered 4, so the Minger server leaves the query unanswered instead of saying "unknown".
    /// </summary>
    public async ValueTask<bool> ExistsOnPeerAsync(string mailbox, CancellationToken ct)
    {
        AddressResolution resolution;
        try
        {
            resolution = await ResolveAsync(mailbox, GatewayOptions, ct).ConfigureAwait(false);
        }
        catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidAddress)
        {
            return false;
        }
        return resolution.Result switch
        {
            ResolutionResult.Peer => true,
            ResolutionResult.TemporaryFailure or ResolutionResult.CannotReceive => throw new AddressResolutionException(resolution),
            _ => false,
        };
    }

    /// <summary>Drops the cache entry of <paramref name="address"/>, whatever it says. True when there was one.</summary>
    public bool Invalidate(string address) => cache.Remove(address);

    /// <summary>
    /// Called when <paramref name="peer"/> rejects <paramref name="address"/> permanently (SMTP 550 to a cached recipient,
    /// or Minger 3): drops the cache entry if it still names that peer, so the next resolution asks the peers again.
    /// True when an entry was dropped.
    /// </summary>
    public bool OnPeerSaysUnknown(string address, string peer) => cache.Remove(address, peer);

    private void ForgetPeersThatSayUnknown(string key, MingerFanOutResult fanOut)
    {
        VerificationCacheEntry? cached;
        try { cached = cache.Lookup(key); }
        catch (Exception ex) when (ex is not OperationCanceledException) { return; }
        if (cached is not { IsPositive: true }) return;
        if (fanOut.Peers.Any(p => p.Status == MingerStatus.Unknown && string.Equals(p.Peer, cached.Peer, StringComparison.OrdinalIgnoreCase)))
            TryCache(() => cache.Remove(key, cached.Peer), "drop the entry of a peer that answered 3");
    }

    private static List<PeerConfiguration> SelectPeers(ServerConfiguration config, IReadOnlyCollection<string> names)
    {
        var selected = new List<PeerConfiguration>(names.Count);
        foreach (var name in names)
        {
            string host = name;
            try { host = Names.ParsePeerName(name).Host; }
            catch (DomainShareException) { }
            var peer = config.FindPeer(host) ?? config.FindPeer(name)
                ?? throw new DomainShareException(ErrorIds.PeerNotFound, ErrorKind.NotFound, $"No peer named '{name}' is configured.",
                    "List the configured peers with Get-DomainSharePeer, or leave the peer out.", name);
            if (!selected.Contains(peer)) selected.Add(peer);
        }
        return selected;
    }

    private void TryCache(Action action, string what)
    {
        try { action(); }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The cache only saves round trips: a failure to update it never fails a resolution.
            log.Write(LogLevel.Warning, $"Resolver: could not {what} in the verification cache: {ex.Message}");
        }
    }
}
