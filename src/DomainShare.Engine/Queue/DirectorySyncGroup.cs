using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Queue;

/// <summary>
/// Group commit for one folder: callers that renamed a file into the folder ask for an fsync of it; concurrent callers
/// share one fsync. A caller's request is served by an fsync that <em>starts after</em> the request, so its rename is
/// always covered; while one fsync runs, every request that arrives meanwhile is served together by the next one.
/// </summary>
internal sealed class DirectorySyncGroup(string directory, Action<string>? flush = null)
{
    private readonly Action<string> flush = flush ?? DurableFile.FlushDirectoryOrThrow;
    private readonly object gate = new();
    private TaskCompletionSource? next;
    private bool running;
    private long syncs;

    public string Directory { get; } = directory;

    /// <summary>fsyncs performed (for tests and counters).</summary>
    public long Syncs => Interlocked.Read(ref syncs);

    /// <summary>Completes once an fsync of the folder that started after this call has finished.</summary>
    public Task SyncAsync()
    {
        lock (gate)
        {
            next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var task = next.Task;
            if (!running)
            {
                running = true;
                _ = Task.Run(Loop);
            }
            return task;
        }
    }

    private void Loop()
    {
        while (true)
        {
            TaskCompletionSource batch;
            lock (gate)
            {
                if (next is null)
                {
                    running = false;
                    return;
                }
                batch = next;
                next = null;
            }
            try
            {
                flush(Directory);
                Interlocked.Increment(ref syncs);
                batch.SetResult();
            }
            catch (Exception ex)
            {
                batch.SetException(ex);
            }
        }
    }
}
