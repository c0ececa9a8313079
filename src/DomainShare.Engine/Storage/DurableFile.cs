using System.Runtime.InteropServices;

namespace DomainShare.Engine.Storage;

/// <summary>Crash-safe file replacement: write a temporary file, flush it to disk, rename it over the target, flush the folder.</summary>
public static partial class DurableFile
{
    private const string TempSuffix = ".tmp";

    /// <summary>
    /// Deletes temporary files a killed writer of <paramref name="path"/> left behind. Call it only while holding the
    /// lock that serialises writers of that file: then no live writer has a temporary file in flight.
    /// </summary>
    public static void DeleteOrphanedTemporaries(string path)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        foreach (var orphan in Directory.EnumerateFiles(dir, $".{Path.GetFileName(full)}.*{TempSuffix}"))
            TryDelete(orphan);
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> so that a crash leaves either the old or the new file, never a mix.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (mode is not null && !OperatingSystem.IsWindows()) options.UnixCreateMode = mode;
            using (var fs = new FileStream(temp, options))
            {
                fs.Write(content);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        FlushDirectory(dir);
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Makes a rename or a new file in <paramref name="directory"/> durable (fsync of the folder on Unix; NTFS journals
    /// renames itself), as well as it can: a failure is ignored (see <see cref="FlushDirectoryOrThrow"/>).
    /// </summary>
    public static void FlushDirectory(string directory)
    {
        try { FlushDirectoryOrThrow(directory); }
        catch (IOException) { }
    }

    /// <summary>
    /// <see cref="FlushDirectory"/> for callers that must not report success on a failure (the spool's commit): an
    /// <see cref="IOException"/> when the folder cannot be opened or fsync fails (EIO: the renames may not be durable).
    /// </summary>
    public static void FlushDirectoryOrThrow(string directory)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0) throw new IOException($"Cannot open the folder '{directory}' to flush it (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            if (Fsync(fd) != 0) throw new IOException($"fsync of the folder '{directory}' failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally { _ = Close(fd); }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
