using System.Threading.Channels;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Accounts;

/// <summary>One finding of the audit: a local account that a peer also has (a conflict), or that could not be checked.</summary>
public sealed record ConsistencyFinding(string Address, AccountState LocalState, string Peer, MingerStatus? PeerStatus, bool Conflict, string Detail);

/// <summary>
/// The split-brain audit: asks every enabled peer about every local account of the shared domains (all peers in
/// parallel per address, several addresses at once) and reports each address that also exists elsewhere — what can
/// appear when accounts were created while a peer was down — and each address a peer could not confirm.
/// </summary>
public static class ConsistencyAudit
{
    public const int AddressesInFlight = 16;

    /// <param name="onChecked">Called after each address with (checked so far, total), for progress.</param>
    public static async IAsyncEnumerable<ConsistencyFinding> RunAsync(ServerConfiguration configuration, AccountStore store, MingerClient client,
        string? domain, Action<int, int>? onChecked, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var shared = configuration.Domains.Where(d => d.Shared && (domain is null || string.Equals(d.Name, domain, StringComparison.OrdinalIgnoreCase)))
            .Select(d => d.Name).ToList();
        if (domain is not null && shared.Count == 0)
            throw new DomainShareException(ErrorIds.DomainNotHosted, ErrorKind.InvalidArgument,
                $"'{domain}' is not a shared domain of this server.", "Give a domain listed by Get-DomainShareDomain with Shared True.", domain);
        var peers = configuration.Peers.Where(p => p.Enabled).ToList();
        var accounts = shared.SelectMany(d => store.List(null, d)).ToList();
        if (peers.Count == 0 || accounts.Count == 0) yield break;
        var options = MingerQueryOptions.From(configuration.Minger);
        var findings = Channel.CreateUnbounded<ConsistencyFinding>();
        int done = 0;
        var worker = Task.Run(async () =>
        {
            try
            {
                await Parallel.ForEachAsync(accounts, new ParallelOptions { MaxDegreeOfParallelism = AddressesInFlight, CancellationToken = ct }, async (account, token) =>
                {
                    var answer = await client.AskAsync(account.Address, peers, MingerFanOutMode.WaitForAll, options, token).ConfigureAwait(false);
                    var local = store.GetState(account.Address);
                    foreach (var p in answer.Peers)
                    {
                        if (p.Status is MingerStatus.Exists or MingerStatus.CannotReceive)
                            findings.Writer.TryWrite(new ConsistencyFinding(account.Address, local, p.Peer, p.Status, true,
                                $"also exists on '{p.Peer}' ({MingerClient.Describe(p.Status.Value)})"));
                        else if (p.Failed)
                            findings.Writer.TryWrite(new ConsistencyFinding(account.Address, local, p.Peer, p.Status, false,
                                p.Error ?? $"peer '{p.Peer}' could not be asked"));
                    }
                    onChecked?.Invoke(Interlocked.Increment(ref done), accounts.Count);
                }).ConfigureAwait(false);
                findings.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                findings.Writer.TryComplete(ex);
            }
        }, CancellationToken.None);
        await foreach (var finding in findings.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            yield return finding;
        await worker.ConfigureAwait(false);
    }
}
