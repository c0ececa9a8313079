using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.DnsRecords;

/// <summary>
/// Works out the MX records a hosted domain needs: this server (its server name) as the primary MX and, for a shared
/// domain, every enabled peer as a backup MX, so mail from the Internet reaches a server that holds or forwards the
/// domain's users while any one of them is down.
/// </summary>
/// <remarks>
/// Each server plans itself as the primary: run the planner on the server that should take the domain's mail first.
/// A peer named by an IP address is left out (an MX record must name a host; the peer entry has no other name) and is
/// reported in <see cref="MxPlan.PeersNamedByAddress"/>. Disabled peers are left out, as the relay does not use them.
/// </remarks>
public static class MxPlanner
{
    /// <summary>Plans the records of the hosted domain <paramref name="domain"/>; throws DomainNotFound when it is not hosted here.</summary>
    public static MxPlan Plan(ServerConfiguration config, string domain, int ttl = MxDefaults.Ttl)
    {
        var hosted = DomainCatalog.Get(config, domain);
        var records = new List<PlannedMxRecord> { new(hosted.Name, MxDefaults.PrimaryPriority, config.ServerName, MxRole.Primary, ttl) };
        var byAddress = new List<string>();
        var disabled = new List<string>();
        if (hosted.Shared)
        {
            foreach (var peer in config.Peers)
            {
                if (!peer.Enabled)
                {
                    disabled.Add(peer.Name);
                    continue;
                }
                if (DnsNames.IsAddress(peer.Name))
                {
                    byAddress.Add(peer.Name);
                    continue;
                }
                // Two peer entries cannot share a name, but one may carry this server's own name: one record per host.
                if (records.Any(r => DnsNames.SameHost(r.Host, peer.Name)))
                    continue;
                records.Add(new(hosted.Name, MxDefaults.BackupPriority, peer.Name, MxRole.Backup, ttl));
            }
        }
        return new MxPlan(hosted.Name, hosted.Shared, records, byAddress, disabled);
    }
}
