using System.Globalization;
using System.Net;
using System.Text;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Minger;

/// <summary>
/// What the Minger server enforces and answers. Immutable; a running server takes a new one with
/// <see cref="MingerServer.Configure"/> (the relay reloads its configuration without a restart).
/// </summary>
public sealed record MingerServerSettings
{
    /// <summary>The default limit for one gateway lookup (the peers' own timeouts and retries are the resolver's business).</summary>
    public static readonly TimeSpan DefaultGatewayTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Queries must carry a digest made with this secret (at least <see cref="Defaults.MinimumSecretLength"/> characters); null: no digest is checked.</summary>
    public string? Secret { get; init; }

    /// <summary>
    /// With a secret set, also answer queries that carry no digest. A digest that is present but wrong is refused (2)
    /// all the same: the client meant to authenticate and got its secret wrong, and answering would hide that.
    /// </summary>
    public bool AllowAnonymous { get; init; }

    /// <summary>Sources that may query; every other source is answered 1. Empty: any source.</summary>
    public IReadOnlyList<NetworkRange> AllowedSources { get; init; } = [];

    /// <summary>Queries per second per source address, also the burst size; datagrams over it are dropped without a reply. 0: no limit.</summary>
    public int RateLimitPerSecond { get; init; } = Defaults.MingerRateLimitPerSecond;

    /// <summary>"Minger checks also trigger domain-sharing checks": ask the peers about unknown addresses of shared domains for queries from non-peers.</summary>
    public bool Gateway { get; init; }

    /// <summary>The addresses of the configured peers. A query from one of them is never forwarded to the peers, so lookups cannot loop.</summary>
    public IReadOnlyCollection<IPAddress> PeerAddresses { get; init; } = [];

    /// <summary>The shared domains (case-insensitive; a Unicode name and its punycode form are the same domain). Only their addresses are looked up through the gateway.</summary>
    public IReadOnlyCollection<string> SharedDomains { get; init; } = [];

    /// <summary>How long one gateway lookup may take before the query is left unanswered.</summary>
    public TimeSpan GatewayTimeout { get; init; } = DefaultGatewayTimeout;

    /// <summary>
    /// The Minger server settings of a configuration. Peer host names are the caller's to resolve: pass the addresses of
    /// the enabled peers in <paramref name="peerAddresses"/>. The gateway is on only when domain sharing is enabled.
    /// </summary>
    public static MingerServerSettings FromConfiguration(ServerConfiguration configuration, IEnumerable<IPAddress> peerAddresses)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(peerAddresses);
        var sources = new List<NetworkRange>();
        foreach (var text in configuration.Minger.AllowedSources)
        {
            if (!NetworkRange.TryParse(text, out var range))
                throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidData,
                    $"The Minger allowed source '{text}' is not an IP address or a network in CIDR notation.",
                    "Write an address such as 192.0.2.10 or a network such as 192.0.2.0/24 in minger.allowedSources.", text);
            sources.Add(range);
        }
        return new MingerServerSettings
        {
            Secret = configuration.Minger.Secret,
            AllowAnonymous = configuration.Minger.AllowAnonymous,
            AllowedSources = sources,
            RateLimitPerSecond = configuration.Minger.RateLimitPerSecond,
            Gateway = configuration.DomainSharing.Enabled && configuration.DomainSharing.Gateway,
            PeerAddresses = peerAddresses.ToArray(),
            SharedDomains = configuration.Domains.Where(d => d.Shared).Select(d => d.Name).ToArray(),
        };
    }

    /// <summary>Throws a <see cref="DomainShareException"/> naming the first setting a server cannot run with.</summary>
    public void Validate()
    {
        if (Secret is not null && Secret.Length < Defaults.MinimumSecretLength)
            throw new DomainShareException(ErrorIds.InvalidSecret, ErrorKind.InvalidArgument,
                $"The Minger secret has {Secret.Length.ToString(CultureInfo.InvariantCulture)} characters; it needs at least {Defaults.MinimumSecretLength.ToString(CultureInfo.InvariantCulture)}.",
                "Choose a longer shared secret (a random passphrase), or none.");
        if (RateLimitPerSecond < 0)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                $"The Minger rate limit {RateLimitPerSecond.ToString(CultureInfo.InvariantCulture)} is negative.",
                "Give the queries allowed per second and source, or 0 for no limit.", RateLimitPerSecond);
        if (GatewayTimeout <= TimeSpan.Zero)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                $"The gateway timeout {GatewayTimeout} is not positive.", "Give a positive time limit for gateway lookups.", GatewayTimeout);
        if (AllowedSources is null || PeerAddresses is null || SharedDomains is null)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                "A list in the Minger server settings is null.", "Pass an empty list for 'none'.");
    }

    // The secret never appears in text: records print every property by default.
    private bool PrintMembers(StringBuilder b)
    {
        b.Append(CultureInfo.InvariantCulture,
            $"SecretSet = {Secret is not null}, AllowAnonymous = {AllowAnonymous}, AllowedSources = [{string.Join(", ", AllowedSources ?? [])}], ");
        b.Append(CultureInfo.InvariantCulture,
            $"RateLimitPerSecond = {RateLimitPerSecond}, Gateway = {Gateway}, PeerAddresses = [{string.Join(", ", PeerAddresses ?? [])}], SharedDomains = [{string.Join(", ", SharedDomains ?? [])}], GatewayTimeout = {GatewayTimeout}");
        return true;
    }
}
