using DomainShare.Engine.Configuration;
using DomainShare.Engine.Relay;

namespace DomainShare.Engine.Queue;

/// <summary>
/// The queue as the cmdlets see it: a shared (non-owner) view of the spool that never tidies anything, plus a nudge to
/// the running relay so that a removal or a resume takes effect at once rather than at its next rescan.
/// </summary>
public sealed class QueueAccess : IDisposable
{
    private QueueAccess(MessageQueue queue, string dataDirectory)
    {
        Queue = queue;
        DataDirectory = dataDirectory;
    }

    public MessageQueue Queue { get; }
    public string DataDirectory { get; }

    public static QueueAccess Open(ConfigurationStore store)
    {
        var config = store.Load();
        string dataDirectory = store.ResolveDataDirectory(config);
        return new QueueAccess(MessageQueue.Open(dataDirectory, new MessageQueueOptions { Owner = false }), dataDirectory);
    }

    /// <summary>Asks the running relay, if any, to re-read the queue now. False when no relay answered.</summary>
    public async Task<bool> NotifyRelayAsync(CancellationToken ct)
    {
        if (RelayState.Load(DataDirectory) is not { } state) return false;
        var answer = await RelayControlClient.SendAsync(state, "queue-refresh", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        return answer is { Ok: true };
    }

    public void Dispose() => Queue.Dispose();
}
