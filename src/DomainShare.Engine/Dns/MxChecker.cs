using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.DnsRecords;

/// <summary>What the host of a live MX record is, as this server's configuration sees it.</summary>
public enum MxTarget
{
    /// <summary>This server (its server name).</summary>
    ThisServer,
    /// <summary>An enabled peer, named by its host name.</summary>
    Peer,
    /// <summary>A peer that is configured but disabled: the relay does not use it.</summary>
    DisabledPeer,
    /// <summary>A host that is neither this server nor a peer.</summary>
    Unknown,
    /// <summary>An IP address written as the MX host: not valid in an MX record, senders cannot use it.</summary>
    IpAddress,
    /// <summary>The null MX (<c>0 .</c>, RFC 7505): the domain declares that it accepts no mail.</summary>
    NullMx,
}

/// <summary>One live MX record, classified against the configuration.</summary>
public sealed record LiveMxRecord(int Priority, string Host, MxTarget Target, MxRole Role)
{
    /// <summary>True when the host is this server or an enabled peer (case-insensitive, trailing dot ignored).</summary>
    public bool ConfiguredServer => Target is MxTarget.ThisServer or MxTarget.Peer;
}

/// <summary>
/// The live MX records of one domain compared with what it needs (<see cref="MxPlanner"/>): the servers missing from
/// DNS, the MX hosts that are not servers of this domain, whether a backup MX exists, and whether the check passed.
/// </summary>
public sealed record MxCheckResult(
    string Domain,
    MxLookupStatus Status,
    IReadOnlyList<LiveMxRecord> Records,
    IReadOnlyList<string> MissingServers,
    IReadOnlyList<string> UnexpectedHosts,
    bool HasBackup,
    bool Passed,
    string? Reason,
    string DnsServer,
    TimeSpan Elapsed);

/// <summary>Checks the live MX records of hosted domains against the records they need.</summary>
/// <remarks>
/// A check passes when DNS answered with MX records, every server of the plan (this server and, for a shared domain,
/// every enabled peer with a host name) is an MX target, no MX points anywhere else, and a backup MX exists whenever
/// the plan has one. Priorities are not compared: every server plans itself as the primary, and which server is
/// first is the administrator's choice.
/// </remarks>
public sealed class MxChecker(IMxLookup lookup)
{
    public IMxLookup Lookup { get; } = lookup;

    /// <summary>Queries the live MX records of the planned domain and compares them with the plan.</summary>
    public async Task<MxCheckResult> CheckAsync(ServerConfiguration config, MxPlan plan, CancellationToken ct)
    {
        var live = await Lookup.LookupAsync(DnsNames.ToAscii(plan.Domain), ct).ConfigureAwait(false);
        return Evaluate(config, plan, live);
    }

    /// <summary>Compares a lookup's records with the plan; pure, so it is tested without DNS.</summary>
    public static MxCheckResult Evaluate(ServerConfiguration config, MxPlan plan, MxLookupResult live)
    {
        if (live.Status != MxLookupStatus.Ok)
        {
            string why = live.Error ?? live.Status.ToString();
            return new(plan.Domain, live.Status, [], [.. plan.Hosts], [], false, false,
                $"The MX records of {plan.Domain} could not be read: {why}.", live.Server, live.Elapsed);
        }

        int best = live.Records.Min(r => r.Preference);
        var records = live.Records
            .Select(r => new LiveMxRecord(r.Preference, r.Exchange, Classify(config, r.Exchange), r.Preference == best ? MxRole.Primary : MxRole.Backup))
            .ToList();
        var missing = plan.Hosts.Where(h => !records.Any(r => DnsNames.SameHost(r.Host, h))).ToList();
        var unexpected = records.Where(r => !plan.Hosts.Any(h => DnsNames.SameHost(r.Host, h)))
            .Select(r => r.Host).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        int configuredTargets = records.Where(r => r.ConfiguredServer).Select(r => DnsNames.ToAscii(r.Host)).Distinct().Count();
        bool hasBackup = configuredTargets >= 2;

        var problems = new List<string>();
        if (records.Any(r => r.Target == MxTarget.NullMx))
            problems.Add($"{plan.Domain} has a null MX (RFC 7505): it declares that it accepts no mail");
        if (missing.Count > 0)
            problems.Add($"{Join(missing)} {(missing.Count == 1 ? "is" : "are")} not an MX target");
        foreach (var r in records.Where(r => unexpected.Contains(r.Host) && r.Target != MxTarget.NullMx))
            problems.Add(r.Target switch
            {
                MxTarget.IpAddress => $"the MX host {r.Host} is an IP address, which senders cannot use (an MX record names a host)",
                MxTarget.DisabledPeer => $"the MX host {r.Host} is a disabled peer",
                MxTarget.Peer or MxTarget.ThisServer => $"the MX host {r.Host} is a peer, but {plan.Domain} is not shared: that server does not take its mail",
                _ => $"the MX host {r.Host} is not a configured server",
            });
        if (!hasBackup && plan.HasBackup && missing.Count == 0)
            problems.Add("there is no backup MX");
        bool passed = problems.Count == 0;
        string? reason = passed ? null : Capitalize(string.Join("; ", problems.Distinct())) + ".";
        return new(plan.Domain, live.Status, records, missing, unexpected, hasBackup, passed, reason, live.Server, live.Elapsed);
    }

    private static MxTarget Classify(ServerConfiguration config, string host)
    {
        if (host.Length == 0 || host == ".")
            return MxTarget.NullMx;
        if (DnsNames.IsAddress(host))
            return MxTarget.IpAddress;
        if (DnsNames.SameHost(host, config.ServerName))
            return MxTarget.ThisServer;
        var peer = config.Peers.FirstOrDefault(p => DnsNames.SameHost(p.Name, host));
        return peer is null ? MxTarget.Unknown : peer.Enabled ? MxTarget.Peer : MxTarget.DisabledPeer;
    }

    private static string Join(IReadOnlyList<string> names)
        => names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " and " + names[^1];

    private static string Capitalize(string text) => text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..];
}
