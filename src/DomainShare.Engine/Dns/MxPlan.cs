using System.Globalization;

namespace DomainShare.Engine.DnsRecords;

/// <summary>What an MX target is for a domain: the server the mail should reach first, or a backup.</summary>
public enum MxRole
{
    Primary,
    Backup,
}

/// <summary>One MX record a hosted domain needs. <see cref="Domain"/> and <see cref="Host"/> are spelled as in the configuration (lower case, Unicode); <see cref="ZoneLine"/> is in ASCII (punycode), as zone files are.</summary>
public sealed record PlannedMxRecord(string Domain, int Priority, string Host, MxRole Role, int Ttl)
{
    /// <summary>The record as a line of a BIND-style zone file: <c>example.com. 3600 IN MX 10 paris.example.com.</c></summary>
    public string ZoneLine => string.Create(CultureInfo.InvariantCulture,
        $"{DnsNames.ToAscii(Domain)}. {Ttl} IN MX {Priority} {DnsNames.ToAscii(Host)}.");
}

/// <summary>
/// The MX records a hosted domain needs so that mail from the Internet reaches the servers that hold its users, and
/// what could not be planned: the peers that cannot be MX targets and whether a backup MX exists.
/// </summary>
public sealed record MxPlan(
    string Domain,
    bool Shared,
    IReadOnlyList<PlannedMxRecord> Records,
    IReadOnlyList<string> PeersNamedByAddress,
    IReadOnlyList<string> DisabledPeers)
{
    /// <summary>True when the records name a second server that takes the mail while the primary is unavailable.</summary>
    public bool HasBackup => Records.Any(r => r.Role == MxRole.Backup);

    /// <summary>The host names the records point at (this server first).</summary>
    public IEnumerable<string> Hosts => Records.Select(r => r.Host);

    /// <summary>The things an administrator should know about the plan, one sentence each, naming the fix.</summary>
    public IReadOnlyList<string> Warnings
    {
        get
        {
            var warnings = new List<string>();
            foreach (var peer in PeersNamedByAddress)
                warnings.Add($"The peer '{peer}' is named by an IP address and cannot be an MX target (an MX record names a host): it is left out of the MX records of {Domain}. "
                             + "To make it a backup MX, give it a DNS name with an A/AAAA record and add the peer by that name (Add-DomainSharePeer), then remove the entry by address.");
            if (!HasBackup)
                warnings.Add(Shared
                    ? $"{Domain} is shared but no enabled peer can be its backup MX: the only MX is {Records[0].Host}, and mail waits at the senders while it is unavailable. Add or enable a peer named by its host name."
                    : $"{Domain} is not shared: its only MX is {Records[0].Host}, with no backup MX; mail waits at the senders while it is unavailable.");
            return warnings;
        }
    }
}
