using System.Globalization;
using System.Text;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Delivery;

/// <summary>
/// The storage boundary of local delivery: where the delivery agent writes a message for an account. The standard
/// implementation is <see cref="MaildirMessageStore"/>; tests put a failing one (disk full) in its place.
/// </summary>
public interface IMessageStore
{
    /// <summary>
    /// Stores <paramref name="content"/> (<paramref name="size"/> bytes) as a new message in the Maildir at
    /// <paramref name="maildir"/> (a full path) and returns its file name in <c>new/</c>. Either the whole message is in
    /// <c>new/</c> and on disk when this returns, or an exception is thrown and nothing is in <c>new/</c>.
    /// </summary>
    ValueTask<string> StoreAsync(string maildir, Stream content, long size, CancellationToken ct);

    /// <summary>The bytes the messages in the Maildir take (for the quota); 0 for a Maildir that does not exist yet.</summary>
    long UsedBytes(string maildir);
}

/// <summary>
/// Maildir delivery as the Maildir specification says: write to <c>tmp/</c> under a unique name, flush it to disk,
/// rename it into <c>new/</c>, flush the folder. Names are <c>&lt;seconds&gt;.M&lt;usec&gt;P&lt;pid&gt;Q&lt;n&gt;.&lt;host&gt;,S=&lt;size&gt;</c>
/// (the size extension Dovecot and Courier read for quotas).
/// </summary>
public sealed class MaildirMessageStore : IMessageStore
{
    private static long deliveries;
    private readonly Func<string, Stream> createFile;
    private readonly Action<string> flushFolder;
    private readonly TimeProvider time;
    private readonly string host;

    /// <param name="createFile">Creates the file in <c>tmp/</c> (tests wrap it to fail like a full disk); null creates a plain file.</param>
    /// <param name="time">The clock for file names.</param>
    /// <param name="flushFolder">Flushes <c>new/</c> to disk after the rename (tests make it fail like a failing disk); null is fsync.</param>
    public MaildirMessageStore(Func<string, Stream>? createFile = null, TimeProvider? time = null, Action<string>? flushFolder = null)
    {
        this.createFile = createFile ?? (path => new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024));
        this.flushFolder = flushFolder ?? DurableFile.FlushDirectoryOrThrow;
        this.time = time ?? TimeProvider.System;
        host = SafeHost(Environment.MachineName);
    }

    /// <summary>The host part of Maildir names: '/' and ':' are not allowed in it (written \057 and \072) nor is ','.</summary>
    private static string SafeHost(string name)
    {
        var b = new StringBuilder();
        foreach (char c in string.IsNullOrEmpty(name) ? "localhost" : name)
        {
            b.Append(c switch
            {
                '/' => "\\057",
                ':' => "\\072",
                ',' => "\\054",
                _ => c.ToString(),
            });
        }
        return b.ToString();
    }

    public string UniqueName(long size)
    {
        var now = time.GetUtcNow();
        long seconds = now.ToUnixTimeSeconds();
        long usec = (now.UtcTicks / 10) % 1_000_000;
        long n = Interlocked.Increment(ref deliveries);
        return string.Create(CultureInfo.InvariantCulture, $"{seconds}.M{usec}P{Environment.ProcessId}Q{n}.{host},S={size}");
    }

    public async ValueTask<string> StoreAsync(string maildir, Stream content, long size, CancellationToken ct)
    {
        string newFolder = Path.Combine(maildir, "new");
        if (!Directory.Exists(newFolder) || !Directory.Exists(Path.Combine(maildir, "tmp")))
            Maildir.Create(maildir);
        string name = UniqueName(size);
        string temp = Path.Combine(maildir, "tmp", name);
        string final = Path.Combine(newFolder, name);
        try
        {
            var file = createFile(temp);
            await using (file.ConfigureAwait(false))
            {
                await content.CopyToAsync(file, 64 * 1024, ct).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
                if (file is FileStream fs) fs.Flush(flushToDisk: true);
            }
            File.Move(temp, final, overwrite: false);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        try
        {
            flushFolder(newFolder);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The rename is not known to be on disk, so the message must stay queued: take it back out of new/ and fail
            // (a mail client may have seen it meanwhile; then it arrives twice, never not at all).
            try { File.Delete(final); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw new IOException($"The Maildir folder {newFolder} could not be flushed to disk: {ex.Message}", ex);
        }
        return name;
    }

    public long UsedBytes(string maildir)
    {
        long total = 0;
        foreach (var sub in new[] { "new", "cur" })
        {
            string folder = Path.Combine(maildir, sub);
            if (!Directory.Exists(folder)) continue;
            foreach (var path in Directory.EnumerateFiles(folder))
            {
                string name = Path.GetFileName(path);
                if (SizeFromName(name) is long s) { total += s; continue; }
                try { total += new FileInfo(path).Length; }
                catch (IOException) { }
            }
        }
        return total;
    }

    /// <summary>The <c>,S=&lt;size&gt;</c> of a Maildir name, or null.</summary>
    internal static long? SizeFromName(string name)
    {
        int at = name.IndexOf(",S=", StringComparison.Ordinal);
        if (at < 0) return null;
        int start = at + 3, end = start;
        while (end < name.Length && char.IsAsciiDigit(name[end])) end++;
        return end > start && long.TryParse(name.AsSpan(start, end - start), NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : null;
    }
}
