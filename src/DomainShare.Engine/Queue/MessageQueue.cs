using System.Collections.Concurrent;
using DomainShare.Engine.Smtp;
using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Queue;

/// <summary>How a <see cref="MessageQueue"/> is opened.</summary>
public sealed record MessageQueueOptions
{
    /// <summary>
    /// True for the process that receives and delivers mail (the relay): it takes the queue's owner lock (a second owner
    /// is refused; the kernel releases the lock if the process dies) and recovers the folder when it opens it: drafts
    /// in <c>tmp/</c> and content files without an envelope are deleted, unreadable messages are quarantined.
    /// False for a process that only looks at or manages the queue while a relay may run (cmdlets): it never recovers,
    /// because the relay's drafts in flight look exactly like leftovers.
    /// </summary>
    public bool Owner { get; init; } = true;

    /// <summary>Test hook: called at each storage step; an exception it returns is thrown there, as a failing disk would.</summary>
    internal Func<QueueStep, Exception?>? Fault { get; init; }
}

/// <summary>The storage steps of the queue, named for fault injection in tests.</summary>
internal enum QueueStep { CreateDraft, WriteContent, WriteEnvelope, FlushContent, MoveIntoQueue, FlushFolder, RewriteEnvelope }

/// <summary>What the queue found and tidied when its owner opened it.</summary>
public sealed record QueueRecovery(int Messages, int DraftsDeleted, int OrphanedContentDeleted, int Quarantined);

/// <summary>
/// The durable spool in <c>&lt;data&gt;/queue/</c> (docs/domain-sharing.md, "Storing and forwarding"). Each message is one
/// file, <c>&lt;id&gt;.msg</c> (<see cref="QueueRecord"/>): its content, exactly the bytes the SMTP server received (our
/// <c>Received:</c> header first), followed by its envelope (<see cref="QueuedMessage"/>) and a footer.
/// <para>
/// Committing a message: the content is written to <c>tmp/&lt;id&gt;.msg</c> (or over a spare file, see <see cref="Recycle"/>),
/// the envelope and footer are appended, the file is flushed to disk and renamed into the queue: <b>the rename is the
/// commit point</b>. Then the queue folder is flushed (one fsync shared by the commits that arrive together) and only
/// then does <see cref="IMessageDraft.CommitAsync"/> return, so the SMTP server answers 250 only for a message on durable storage.
/// A storage failure before the commit point removes everything the message wrote and throws
/// <see cref="SmtpStorageException"/>; nothing half-written can ever be delivered, because only a whole file is ever
/// renamed into the queue, and a file that is not whole when read (cut or changed later) is quarantined.
/// </para>
/// <para>
/// Every later change (a recipient delivered, the next attempt) writes the envelope beside the message,
/// <c>&lt;id&gt;.json</c>, atomically (temporary file, flush, rename); it then overrides the envelope in the message file.
/// A message leaves the queue only when every recipient is delivered or failed: the message file is deleted first, so
/// a crash never leaves a message whose latest envelope is gone (a leftover <c>.json</c> is quarantined at the next start).
/// Queues written by earlier versions (<c>&lt;id&gt;.eml</c> content beside a <c>&lt;id&gt;.json</c> envelope) are read and
/// delivered as they are.
/// </para>
/// Thread-safe. One owner process at a time; other processes may open it shared to list, remove and resume messages.
/// </summary>
public sealed class MessageQueue : IMessageSink, IDisposable
{
    public const string FolderName = "queue";
    /// <summary>A queued message: content, envelope at the commit, footer (<see cref="QueueRecord"/>).</summary>
    public const string MessageExtension = ".msg";
    /// <summary>An envelope rewritten after the commit, beside its message (or, in a queue of an earlier version, the envelope of a <see cref="ContentExtension"/> file).</summary>
    public const string EnvelopeExtension = ".json";
    /// <summary>The content of a message queued by an earlier version (beside its <see cref="EnvelopeExtension"/> envelope).</summary>
    public const string ContentExtension = ".eml";
    private const string LockFileName = ".owner.lock";
    private const int BufferSize = 64 * 1024;
    private const string SpareExtension = ".spare";
    /// <summary>Spare files kept for reuse at most (a backlog of several seconds under load); beyond it a delivered message is deleted.</summary>
    private const int MaxSpares = 8192;
    /// <summary>Disk the spares may take in all (estimated: content + 4 KB each); a message that does not fit is deleted.</summary>
    private const long MaxSpareBytes = 64L * 1024 * 1024;
    /// <summary>Larger messages are never kept as spares.</summary>
    private const long MaxSpareMessageBytes = 256 * 1024;

    private readonly ConcurrentDictionary<string, Entry> entries = new(StringComparer.Ordinal);
    private readonly object indexLock = new();
    private readonly DirectorySyncGroup rootSync;
    private readonly MessageQueueOptions options;
    private readonly IEngineLog log;
    private readonly TimeProvider time;
    private readonly FileStream? ownerLock;
    private readonly ConcurrentQueue<(string Path, long Bytes)> spares = new();
    private int spareCount;
    private long spareBytes;
    private long spareNumber;
    private long committed;
    private long commitFailures;
    private volatile bool disposed;

    private MessageQueue(string root, MessageQueueOptions options, IEngineLog log, TimeProvider time, FileStream? ownerLock)
    {
        Folder = root;
        TempFolder = Path.Combine(root, "tmp");
        QuarantineFolder = Path.Combine(root, "quarantine");
        this.options = options;
        this.log = log;
        this.time = time;
        this.ownerLock = ownerLock;
        rootSync = new DirectorySyncGroup(root);
    }

    /// <summary>The queue folder, <c>&lt;data&gt;/queue</c>.</summary>
    public string Folder { get; }

    /// <summary>Where drafts and envelope rewrites are written before they are renamed into the queue.</summary>
    public string TempFolder { get; }

    /// <summary>Where unreadable envelopes (and their content) are moved.</summary>
    public string QuarantineFolder { get; }

    public bool IsOwner => ownerLock is not null;

    /// <summary>What the owner found when it opened the queue; null for a shared instance.</summary>
    public QueueRecovery? Recovery { get; private set; }

    /// <summary>Raised with the id of a message that is ready for delivery now: committed or resumed. Handlers must be quick.</summary>
    public event Action<string>? MessageReady;

    /// <summary>Messages in the queue.</summary>
    public int Count => entries.Count;

    /// <summary>Messages committed since the queue was opened.</summary>
    public long Committed => Interlocked.Read(ref committed);

    /// <summary>Commits that failed on a storage error (the client was told 452).</summary>
    public long CommitFailures => Interlocked.Read(ref commitFailures);

    /// <summary>Folder fsyncs made by commits and updates; fewer than commits when commits are grouped.</summary>
    public long FolderSyncs => rootSync.Syncs;

    /// <summary>
    /// Opens (creating if needed) the queue in <paramref name="dataDirectory"/>. The owner takes the owner lock
    /// (throws <see cref="ErrorIds.RelayAlreadyRunning"/> when another process holds it) and recovers the folder.
    /// </summary>
    public static MessageQueue Open(string dataDirectory, MessageQueueOptions? options = null, IEngineLog? log = null, TimeProvider? time = null)
    {
        options ??= new MessageQueueOptions();
        log ??= NullEngineLog.Instance;
        string root = Path.GetFullPath(Path.Combine(dataDirectory, FolderName));
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(Path.Combine(root, "tmp"));
        Directory.CreateDirectory(Path.Combine(root, "quarantine"));
        FileStream? ownerLock = null;
        if (options.Owner)
        {
            try
            {
                ownerLock = new FileStream(Path.Combine(root, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException ex)
            {
                throw new DomainShareException(ErrorIds.RelayAlreadyRunning, ErrorKind.ResourceUnavailable,
                    $"Another process (a running relay) owns the queue in '{root}'.",
                    "Stop the relay with Stop-DomainShareRelay, or open the queue shared to look at it.", root, ex);
            }
        }
        var queue = new MessageQueue(root, options, log, time ?? TimeProvider.System, ownerLock);
        try
        {
            if (options.Owner) queue.Recover();
            else queue.Refresh();
        }
        catch
        {
            queue.Dispose();
            throw;
        }
        return queue;
    }

    private string MessagePath(string id) => Path.Combine(Folder, id + MessageExtension);
    private string EnvelopePath(string id) => Path.Combine(Folder, id + EnvelopeExtension);
    private string ContentPath(string id) => Path.Combine(Folder, id + ContentExtension);

    private void Fault(QueueStep step)
    {
        if (options.Fault?.Invoke(step) is { } ex) throw ex;
    }

    // ---------------------------------------------------------------- receiving

    /// <summary>
    /// <see cref="IMessageSink"/>: starts a message from the SMTP server. Throws <see cref="SmtpStorageException"/> when the
    /// spool cannot take it.
    /// </summary>
    public IMessageDraft Begin(SmtpEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (envelope.Recipients.Count == 0) throw new ArgumentException("A message needs at least one recipient.", nameof(envelope));
        var recipients = envelope.Recipients.Select(QueuedRecipient.From).ToArray();
        var draft = BeginDraft(envelope.ReversePath, recipients, MessageSource.From(envelope.Session));
        draft.Message = draft.Message with { SmtpUtf8 = envelope.SmtpUtf8, BodyType = envelope.BodyType };
        return draft;
    }

    /// <summary>Starts a message the server writes itself (a bounce); routes may be <see cref="QueueRoute.Unresolved"/>.</summary>
    public IMessageDraft Begin(string? reversePath, IReadOnlyList<QueuedRecipient> recipients, MessageSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        if (recipients.Count == 0) throw new ArgumentException("A message needs at least one recipient.", nameof(recipients));
        var fresh = recipients.Select(r => r with { State = RecipientState.Pending, Attempts = 0, LastError = null, Completed = null }).ToArray();
        return BeginDraft(reversePath, fresh, source ?? MessageSource.Internal);
    }

    /// <summary>
    /// <see cref="IMessageSink"/>: false when the file system of the queue has fewer than <paramref name="bytes"/> bytes
    /// free (the SMTP server then refuses MAIL FROM with that SIZE= with 452); true when it cannot tell.
    /// </summary>
    public bool HasRoomFor(long bytes)
    {
        try
        {
            return bytes <= new DriveInfo(Folder).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return true;
        }
    }

    /// <summary>Commits a whole message in one call (bounces). Returns the queue id.</summary>
    public async ValueTask<string> EnqueueAsync(string? reversePath, IReadOnlyList<QueuedRecipient> recipients, ReadOnlyMemory<byte> content, MessageSource? source, CancellationToken ct)
    {
        await using var draft = Begin(reversePath, recipients, source);
        await draft.WriteAsync(content, ct).ConfigureAwait(false);
        return await draft.CommitAsync(ct).ConfigureAwait(false);
    }

    private Draft BeginDraft(string? reversePath, QueuedRecipient[] recipients, MessageSource source)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        string id = QueueFormat.NewId(time.GetUtcNow());
        string tempPath = Path.Combine(TempFolder, id + MessageExtension);
        FileStream stream;
        try
        {
            Fault(QueueStep.CreateDraft);
            stream = OpenSpare(ref tempPath) ?? new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref commitFailures);
            log.Write(LogLevel.Warning, $"Queue: cannot start a message in {TempFolder}: {ex.Message}");
            throw new SmtpStorageException($"4.3.1 The queue cannot store the message now: {ex.Message}", ex);
        }
        var message = new QueuedMessage
        {
            Id = id,
            ReversePath = string.IsNullOrEmpty(reversePath) ? null : reversePath,
            Recipients = recipients,
            Source = source,
        };
        return new Draft(this, message, tempPath, stream);
    }

    private async ValueTask<string> CommitAsync(Draft draft, CancellationToken ct)
    {
        string id = draft.Message.Id;
        string final = MessagePath(id);
        bool done = false;
        QueuedMessage message;
        try
        {
            var content = draft.Content!;
            long size = content.Position;
            var now = time.GetUtcNow();
            message = draft.Message with { Size = size, Created = now, NextAttempt = now };
            Fault(QueueStep.WriteEnvelope);
            var envelope = QueueFormat.Serialize(message);
            await content.WriteAsync(envelope, ct).ConfigureAwait(false);
            await content.WriteAsync(QueueRecord.Footer(size, envelope.Length), ct).ConfigureAwait(false);
            if (content.Length > content.Position) content.SetLength(content.Position); // a reused spare file was longer

            Fault(QueueStep.FlushContent);
            await content.FlushAsync(ct).ConfigureAwait(false);
            content.Flush(flushToDisk: true);
            await content.DisposeAsync().ConfigureAwait(false);
            draft.Content = null;

            Fault(QueueStep.MoveIntoQueue);
            lock (indexLock)
            {
                File.Move(draft.TempPath, final, overwrite: false); // the commit point
                done = true;
                draft.Committed = true;
                entries[id] = new Entry(message, File.GetLastWriteTimeUtc(final)) { MayHaveRewrite = false };
            }
        }
        catch (Exception ex) when (!done)
        {
            if (draft.Content is { } open)
            {
                try { await open.DisposeAsync().ConfigureAwait(false); } catch (IOException) { }
                draft.Content = null;
            }
            TryDelete(draft.TempPath);
            draft.Failed = true;
            if (ex is IOException or UnauthorizedAccessException)
            {
                Interlocked.Increment(ref commitFailures);
                log.Write(LogLevel.Warning, $"Queue: message {id} not stored (nothing kept): {ex.Message}");
                throw new SmtpStorageException($"4.3.1 The queue cannot store the message now: {ex.Message}", ex);
            }
            throw;
        }
        // Past the commit point: the message will be delivered. The folder flush makes the renames durable; it is not
        // cancelled, so a 250 is only ever given for a message that survives a power cut. When it fails, the message
        // stays queued (it is delivered unless the power fails first) but the client is told to send it again: at worst
        // it arrives twice, never is it lost behind a 250.
        try
        {
            Fault(QueueStep.FlushFolder);
            await rootSync.SyncAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Interlocked.Increment(ref commitFailures);
            log.Write(LogLevel.Warning, $"Queue: {id} is queued but the queue folder could not be flushed to disk ({ex.Message}); the client is told to send it again, so it may arrive twice.");
            RaiseReady(id);
            throw new SmtpStorageException($"4.3.1 The queue cannot confirm the message is on disk: {ex.Message}", ex);
        }
        Interlocked.Increment(ref committed);
        log.Write(LogLevel.Information,
            $"Queue: {id} queued from {message.Source?.Address ?? "this server"}, <{message.ReversePath}> to {message.Recipients.Count} recipient(s), {message.Size} bytes.");
        RaiseReady(id);
        return id;
    }

    private static void WriteDurably(string path, ReadOnlySpan<byte> bytes, FileMode mode)
    {
        using var fs = new FileStream(path, mode, FileAccess.Write, FileShare.None, 4096);
        fs.Write(bytes);
        fs.Flush(flushToDisk: true);
    }

    private void RaiseReady(string id)
    {
        var handlers = MessageReady;
        if (handlers is null) return;
        foreach (Action<string> handler in handlers.GetInvocationList())
        {
            try { handler(id); }
            catch (Exception ex) { log.Write(LogLevel.Error, $"Queue: a MessageReady handler failed for {id}: {ex.Message}"); }
        }
    }

    // ---------------------------------------------------------------- looking and managing

    /// <summary>The queued messages, oldest first.</summary>
    public IReadOnlyList<QueuedMessage> List()
        => entries.Values.Where(e => !e.Removed).Select(e => e.Message).OrderBy(m => m.Id, StringComparer.Ordinal).ToList();

    /// <summary>The message with this id, or null.</summary>
    public QueuedMessage? Get(string id)
        => QueueFormat.IsValidId(id) && entries.TryGetValue(id, out var e) && !e.Removed ? e.Message : null;

    /// <summary>Opens the content of a queued message for reading. Throws <see cref="FileNotFoundException"/> when it is gone.</summary>
    public Stream OpenContent(string id)
    {
        if (!QueueFormat.IsValidId(id)) throw new ArgumentException($"'{id}' is not a queue id.", nameof(id));
        FileStream file;
        try
        {
            file = new FileStream(MessagePath(id), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.SequentialScan);
        }
        catch (FileNotFoundException)
        {
            // A message queued by an earlier version: its content file is the content and nothing else.
            return new FileStream(ContentPath(id), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.SequentialScan);
        }
        try
        {
            long size = entries.TryGetValue(id, out var e) ? e.Message.Size : QueueRecord.Read(MessagePath(id), id, out _).Size;
            return new QueuedContentStream(file, size);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Deletes a message without delivering it (an administrator's decision). False when there is no such message.</summary>
    public bool Remove(string id)
    {
        if (!QueueFormat.IsValidId(id)) return false;
        bool removed = false;
        if (entries.TryGetValue(id, out var e))
        {
            lock (e.Gate)
            {
                if (!e.Removed)
                {
                    e.Removed = true;
                    removed = true;
                }
            }
        }
        // A shared instance may not know a message the owner committed since: the files decide.
        removed |= File.Exists(MessagePath(id)) || File.Exists(EnvelopePath(id));
        if (!removed) return false;
        DeleteFiles(id);
        entries.TryRemove(id, out _);
        DurableFile.FlushDirectory(Folder);
        log.Write(LogLevel.Information, $"Queue: {id} removed on request, undelivered recipients dropped.");
        return true;
    }

    /// <summary>Sets the next attempt of a message to now and wakes delivery. False when there is no such message.</summary>
    public bool Resume(string id)
    {
        if (!QueueFormat.IsValidId(id)) return false;
        if (!entries.TryGetValue(id, out var e))
        {
            Refresh();
            if (!entries.TryGetValue(id, out e)) return false;
        }
        lock (e.Gate)
        {
            if (e.Removed) return false;
            e.ResumeRequested = true;
            var now = time.GetUtcNow();
            if (e.Message.NextAttempt > now)
            {
                var resumed = e.Message with { NextAttempt = now };
                RewriteEnvelope(resumed);
                e.MayHaveRewrite = true;
                e.Message = resumed;
                e.Stamp = StampOf(id);
            }
        }
        DurableFile.FlushDirectory(Folder);
        RaiseReady(id);
        return true;
    }

    /// <summary>Resumes every message; returns how many.</summary>
    public int ResumeAll()
    {
        int n = 0;
        foreach (var id in entries.Keys.ToArray())
            if (Resume(id)) n++;
        return n;
    }

    /// <summary>
    /// Brings the index in line with the folder: envelopes written by another process (a shared instance committing or
    /// resuming, a cmdlet removing) are picked up. The delivery agent calls it periodically.
    /// </summary>
    public void Refresh()
    {
        var due = new List<string>();
        lock (indexLock)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var id in MessageIds(ScanFolder()))
            {
                seen.Add(id);
                DateTime stamp;
                try { stamp = StampOf(id); }
                catch (IOException) { continue; }
                if (entries.TryGetValue(id, out var known))
                {
                    if (known.Stamp == stamp) continue;
                    lock (known.Gate)
                    {
                        if (known.Removed) continue;
                        try
                        {
                            known.Message = Load(id);
                            known.Stamp = stamp;
                            if (known.Message.NextAttempt <= time.GetUtcNow()) due.Add(id);
                        }
                        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
                        {
                            log.Write(LogLevel.Warning, $"Queue: envelope of {id} changed on disk but cannot be read ({ex.Message}); keeping the version in memory.");
                        }
                    }
                    continue;
                }
                try
                {
                    var loaded = new Entry(Load(id), stamp);
                    entries[id] = loaded;
                    if (loaded.Message.NextAttempt <= time.GetUtcNow()) due.Add(id);
                }
                catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    if (IsOwner) Quarantine(id, ex.Message);
                    else log.Write(LogLevel.Warning, $"Queue: envelope of {id} cannot be read ({ex.Message}); skipped.");
                }
            }
            foreach (var (id, e) in entries)
            {
                if (seen.Contains(id)) continue;
                lock (e.Gate) e.Removed = true;
                entries.TryRemove(id, out _);
            }
        }
        // Changed elsewhere and due now (a resume from a cmdlet): wake delivery rather than wait for its next rescan.
        foreach (var id in due) RaiseReady(id);
    }

    // ---------------------------------------------------------------- for the delivery agent

    /// <summary>The messages as they are now, in no particular order (the scheduler's view).</summary>
    internal List<QueuedMessage> Snapshot()
    {
        var messages = new List<QueuedMessage>(entries.Count);
        foreach (var (_, e) in entries)
            if (!e.Removed) messages.Add(e.Message);
        return messages;
    }

    /// <summary>Starts a delivery attempt: the message as it is now, and a resume that arrives from here on is kept for <see cref="UpdateAsync"/>.</summary>
    internal QueuedMessage? BeginAttempt(string id)
    {
        if (!entries.TryGetValue(id, out var e)) return null;
        lock (e.Gate)
        {
            if (e.Removed || RemovedElsewhere(id, e)) return null;
            e.ResumeRequested = false;
            return e.Message;
        }
    }

    /// <summary>
    /// True (and the entry dropped) when another process removed the message (a cmdlet on a shared instance): its
    /// content is gone. Called under the entry's lock, so an envelope rewrite never brings such a message back.
    /// </summary>
    private bool RemovedElsewhere(string id, Entry e)
    {
        if (File.Exists(MessagePath(id)) || File.Exists(ContentPath(id))) return false;
        e.Removed = true;
        TryDelete(EnvelopePath(id));
        entries.TryRemove(id, out _);
        log.Write(LogLevel.Information, $"Queue: {id} was removed by another process; dropped.");
        return true;
    }

    /// <summary>
    /// Rewrites a message's envelope atomically. False when the message was removed meanwhile (it is not brought back).
    /// A resume that arrived during the attempt wins over the attempt's next-attempt time.
    /// </summary>
    internal async ValueTask<bool> UpdateAsync(QueuedMessage message, CancellationToken ct)
    {
        if (!entries.TryGetValue(message.Id, out var e)) return false;
        bool resumed;
        lock (e.Gate)
        {
            if (e.Removed || RemovedElsewhere(message.Id, e)) return false;
            resumed = e.ResumeRequested;
            if (resumed)
            {
                message = message with { NextAttempt = time.GetUtcNow() };
                e.ResumeRequested = false;
            }
            RewriteEnvelope(message);
            e.MayHaveRewrite = true;
            e.Message = message;
            e.Stamp = StampOf(message.Id);
        }
        await rootSync.SyncAsync().WaitAsync(ct).ConfigureAwait(false);
        if (resumed) RaiseReady(message.Id);
        return true;
    }

    /// <summary>Takes a finished message out of the queue: the envelope first, then the content.</summary>
    internal async ValueTask CompleteAsync(string id, CancellationToken ct)
    {
        if (!entries.TryGetValue(id, out var e)) return;
        lock (e.Gate)
        {
            if (e.Removed) return;
            e.Removed = true;
            if (!Recycle(id, e.Message.Size, e.MayHaveRewrite)) DeleteFiles(id);
            entries.TryRemove(id, out _);
        }
        await rootSync.SyncAsync().WaitAsync(ct).ConfigureAwait(false);
    }

    // Recycling: the owner moves a delivered message's file to tmp/ as a spare (the move takes it out of the queue as a
    // delete would) and overwrites a spare with the next message it receives. Creating and deleting a file per message
    // was most of the relay's CPU on ext4 (allocating an inode scans for recently deleted ones); a rename and an
    // overwrite are not. Spares are bounded (MaxSpares files, MaxSpareBytes of disk, small messages only) and deleted
    // with the drafts when the owner opens the queue. Only the delivery agent reads a message's content, and it has
    // finished reading when the message is completed, so a spare is never overwritten under a reader.

    /// <summary>Moves a finished message's file to the spares; false (nothing done) when there is no room, it is large or it fails.</summary>
    private bool Recycle(string id, long size, bool mayHaveRewrite)
    {
        if (!IsOwner || size > MaxSpareMessageBytes) return false;
        long bytes = size + 4096;
        if (Interlocked.Increment(ref spareCount) > MaxSpares | Interlocked.Add(ref spareBytes, bytes) > MaxSpareBytes)
        {
            Unreserve(bytes);
            return false;
        }
        string spare = Path.Combine(TempFolder, string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{Interlocked.Increment(ref spareNumber)}{SpareExtension}"));
        try
        {
            File.Move(MessagePath(id), spare, overwrite: true); // out of the queue: the delete's commit point
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Unreserve(bytes);
            return false;
        }
        spares.Enqueue((spare, bytes));
        // A rewritten envelope, if there may be one (a delete of a file that is not there still locks the folder).
        if (mayHaveRewrite) DeleteFiles(id);
        return true;
    }

    private void Unreserve(long bytes)
    {
        Interlocked.Decrement(ref spareCount);
        Interlocked.Add(ref spareBytes, -bytes);
    }

    /// <summary>A spare file opened for overwriting, its path in <paramref name="path"/>; null when there is none.</summary>
    private FileStream? OpenSpare(ref string path)
    {
        while (spares.TryDequeue(out var spare))
        {
            Unreserve(spare.Bytes);
            try
            {
                var stream = new FileStream(spare.Path, FileMode.Open, FileAccess.Write, FileShare.None, BufferSize);
                path = spare.Path;
                return stream;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                TryDelete(spare.Path);
            }
        }
        return null;
    }

    private void RewriteEnvelope(QueuedMessage message)
    {
        string temp = Path.Combine(TempFolder, $"{message.Id}.{Guid.NewGuid():N}{EnvelopeExtension}.tmp");
        try
        {
            Fault(QueueStep.RewriteEnvelope);
            WriteDurably(temp, QueueFormat.Serialize(message), FileMode.CreateNew);
            File.Move(temp, EnvelopePath(message.Id), overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private void DeleteFiles(string id)
    {
        try
        {
            // The message file first: a crash after it leaves at most a rewritten envelope without its message, which the
            // next start quarantines; never a message with an outdated envelope. (Earlier versions' pairs: the envelope
            // first, then the content, which the next start deletes if it is left.)
            File.Delete(MessagePath(id));
            File.Delete(EnvelopePath(id));
            File.Delete(ContentPath(id));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The message is out of the index either way; a leftover message is delivered again after a restart
            // (at worst twice), a leftover content file is deleted at the next start.
            log.Write(LogLevel.Error, $"Queue: could not delete the files of {id}: {ex.Message}");
        }
    }

    // ---------------------------------------------------------------- recovery

    private QueuedMessage Load(string id)
    {
        string path = MessagePath(id);
        if (File.Exists(path))
        {
            var embedded = QueueRecord.Read(path, id, out long contentBytes);
            byte[] rewritten;
            try { rewritten = File.ReadAllBytes(EnvelopePath(id)); }
            catch (FileNotFoundException) { return embedded; }
            var message = QueueFormat.Deserialize(rewritten, id);
            if (message.Size != contentBytes)
                throw new InvalidDataException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"its message file has {contentBytes} bytes of content, the rewritten envelope says {message.Size}"));
            return message;
        }
        // A message queued by an earlier version: envelope and content in two files.
        var legacy = QueueFormat.Deserialize(File.ReadAllBytes(EnvelopePath(id)), id);
        var content = new FileInfo(ContentPath(id));
        if (!content.Exists) throw new InvalidDataException("its message file is missing");
        // A commit writes the content to disk before the envelope names its size: a shorter or longer file was cut or
        // changed afterwards, and half a message must never be delivered.
        if (content.Length != legacy.Size)
            throw new InvalidDataException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"its content file has {content.Length} bytes, the envelope says {legacy.Size}"));
        return legacy;
    }

    /// <summary>When a message last changed on disk: its rewritten envelope if it has one, else its message file.</summary>
    private DateTime StampOf(string id)
    {
        var rewritten = File.GetLastWriteTimeUtc(EnvelopePath(id)); // 1601-01-01 when there is none
        return rewritten.Year > 1601 ? rewritten : File.GetLastWriteTimeUtc(File.Exists(MessagePath(id)) ? MessagePath(id) : ContentPath(id));
    }

    /// <summary>The queue ids of the folder's files, by extension; names that are not queue ids are left out.</summary>
    private Dictionary<string, HashSet<string>> ScanFolder()
    {
        var byExtension = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal)
        {
            [MessageExtension] = new(StringComparer.Ordinal),
            [EnvelopeExtension] = new(StringComparer.Ordinal),
            [ContentExtension] = new(StringComparer.Ordinal),
        };
        foreach (var path in Directory.EnumerateFiles(Folder))
        {
            string name = Path.GetFileName(path);
            string extension = Path.GetExtension(name);
            if (!byExtension.TryGetValue(extension, out var ids)) continue;
            string id = name[..^extension.Length];
            if (QueueFormat.IsValidId(id)) ids.Add(id);
        }
        return byExtension;
    }

    /// <summary>The messages of a scan: every message file, and every envelope of an earlier version's pair (or alone).</summary>
    private static IEnumerable<string> MessageIds(Dictionary<string, HashSet<string>> scan)
        => scan[MessageExtension].Concat(scan[EnvelopeExtension].Where(id => !scan[MessageExtension].Contains(id)));

    /// <summary>The owner's start-up pass: the queue as a crash left it, made consistent.</summary>
    private void Recover()
    {
        int drafts = 0, orphans = 0, quarantined = 0;
        foreach (var path in Directory.EnumerateFiles(TempFolder))
        {
            if (TryDelete(path) && !path.EndsWith(SpareExtension, StringComparison.Ordinal)) drafts++; // spares are no drafts
        }
        var scan = ScanFolder();
        lock (indexLock)
        {
            foreach (var id in MessageIds(scan))
            {
                try
                {
                    entries[id] = new Entry(Load(id), StampOf(id));
                }
                catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    if (Quarantine(id, ex.Message)) quarantined++;
                }
            }
        }
        foreach (var id in scan[ContentExtension])
        {
            if (entries.ContainsKey(id) || scan[EnvelopeExtension].Contains(id) || scan[MessageExtension].Contains(id)) continue;
            // Content without envelope (an earlier version's layout): a commit that never reached its commit point (the
            // client was never told 250), or a removal a crash interrupted.
            string path = ContentPath(id);
            if (TryDelete(path))
            {
                orphans++;
                log.Write(LogLevel.Warning, $"Queue: content file {path} has no envelope (a message whose commit never finished; its client was not told 250); deleted.");
            }
        }
        if (drafts + orphans > 0)
            DurableFile.FlushDirectory(Folder);
        Recovery = new QueueRecovery(entries.Count, drafts, orphans, quarantined);
        log.Write(quarantined > 0 ? LogLevel.Warning : LogLevel.Information,
            $"Queue: opened {Folder}: {entries.Count} message(s) to deliver, {drafts} unfinished draft(s) and {orphans} uncommitted content file(s) deleted, {quarantined} unreadable message(s) quarantined.");
    }

    /// <summary>Moves the files of an unreadable message to <c>quarantine/</c>. Never throws.</summary>
    private bool Quarantine(string id, string reason)
    {
        try
        {
            string stamp = time.GetUtcNow().UtcDateTime.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
            foreach (var source in new[] { MessagePath(id), EnvelopePath(id), ContentPath(id) })
            {
                if (!File.Exists(source)) continue;
                string target = Path.Combine(QuarantineFolder, Path.GetFileName(source));
                if (File.Exists(target)) target = Path.Combine(QuarantineFolder, $"{stamp}-{Guid.NewGuid():N}-{Path.GetFileName(source)}");
                File.Move(source, target);
            }
            DurableFile.FlushDirectory(QuarantineFolder);
            DurableFile.FlushDirectory(Folder);
            log.Write(LogLevel.Error,
                $"Queue: message {id} in {Folder} is unreadable ({reason}); its files were moved to {QuarantineFolder}. Nothing of it was delivered; inspect and remove it there.");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.Write(LogLevel.Error, $"Queue: message {id} in {Folder} is unreadable ({reason}) and could not be quarantined ({ex.Message}); skipped.");
            return false;
        }
    }

    private static bool TryDelete(string path)
    {
        try
        {
            if (!File.Exists(path)) return false;
            File.Delete(path);
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    public void Dispose()
    {
        disposed = true;
        ownerLock?.Dispose();
    }

    private sealed class Entry(QueuedMessage message, DateTime stamp)
    {
        public readonly object Gate = new();
        public QueuedMessage Message = message;
        public DateTime Stamp = stamp;
        public bool Removed;
        public bool ResumeRequested;
        /// <summary>False only while the message is known to have no rewritten envelope (<c>.json</c>) beside it: nothing to delete.</summary>
        public bool MayHaveRewrite = true;
    }

    /// <summary>A message being received into <c>tmp/</c>.</summary>
    private sealed class Draft(MessageQueue queue, QueuedMessage message, string tempPath, FileStream content) : IMessageDraft
    {
        public QueuedMessage Message { get; set; } = message;
        public string TempPath { get; } = tempPath;
        public FileStream? Content { get; set; } = content;
        public bool Committed { get; set; }
        public bool Failed { get; set; }
        private bool disposed;

        public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (Committed || Failed || Content is null) throw new InvalidOperationException("The message was already committed or has failed.");
            try
            {
                queue.Fault(QueueStep.WriteContent);
                await Content.WriteAsync(data, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Failed = true;
                Interlocked.Increment(ref queue.commitFailures);
                queue.log.Write(LogLevel.Warning, $"Queue: message {Message.Id} not stored (nothing kept): {ex.Message}");
                throw new SmtpStorageException($"4.3.1 The queue cannot store the message now: {ex.Message}", ex);
            }
        }

        public ValueTask<string> CommitAsync(CancellationToken ct)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (Committed || Failed || Content is null) throw new InvalidOperationException("The message was already committed or has failed.");
            return queue.CommitAsync(this, ct);
        }

        public async ValueTask DisposeAsync()
        {
            if (disposed) return;
            disposed = true;
            if (Content is { } open)
            {
                try { await open.DisposeAsync().ConfigureAwait(false); }
                catch (IOException) { }
                Content = null;
            }
            if (!Committed) TryDelete(TempPath);
        }
    }
}
