using System.Diagnostics;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// A small tmpfs mounted on a folder of a test (<c>mount -t tmpfs -o size=…</c>, which needs root or CAP_SYS_ADMIN): a
/// real file system that really fills up, so that a relay writing to it meets a real ENOSPC. <see cref="TryMount"/>
/// says why when the machine does not allow it. <see cref="Dispose"/> always unmounts (lazily when still busy).
/// </summary>
internal sealed class Tmpfs : IDisposable
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(15);
    private bool mounted = true;

    private Tmpfs(string folder) => Folder = folder;

    /// <summary>The mount point.</summary>
    public string Folder { get; }

    /// <summary>The bytes still free.</summary>
    public long Free => new DriveInfo(Folder).AvailableFreeSpace;

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (such as <c>2m</c>) on <paramref name="folder"/> (created if needed); null and the reason when it cannot.</summary>
    public static Tmpfs? TryMount(string folder, string size, out string whyNot)
    {
        whyNot = "";
        if (!OperatingSystem.IsLinux())
        {
            whyNot = "not Linux";
            return null;
        }
        Directory.CreateDirectory(folder);
        var (code, text) = Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0755", "tmpfs", folder);
        if (code != 0)
        {
            whyNot = $"mount -t tmpfs failed (exit {code}): {text.Trim()}";
            return null;
        }
        var fs = new Tmpfs(folder);
        // Make sure it is the tmpfs that answers for the folder, not the disk beneath it.
        if (!File.ReadAllText("/proc/mounts").Contains($" {folder} tmpfs ", StringComparison.Ordinal))
        {
            fs.Dispose();
            whyNot = $"mount said yes but /proc/mounts has no tmpfs on {folder}";
            return null;
        }
        return fs;
    }

    /// <summary>
    /// Writes a filler file that leaves about <paramref name="leave"/> bytes free (0: fills the file system until it
    /// refuses with ENOSPC). Returns the filler's path; delete it to free the space.
    /// </summary>
    public string Fill(long leave)
    {
        string path = Path.Combine(Folder, $"filler-{Guid.NewGuid():N}");
        var chunk = new byte[64 * 1024];
        Array.Fill(chunk, (byte)'F');
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        try
        {
            for (int i = 0; i < 100_000; i++) // bounded: far more than any tmpfs of these tests holds
            {
                long room = Free - leave;
                if (room <= 0) break;
                file.Write(chunk, 0, (int)Math.Min(chunk.Length, room));
            }
        }
        catch (IOException)
        {
            // ENOSPC: full, as asked (leave 0) or because someone else wrote meanwhile.
        }
        return path;
    }

    public void Dispose()
    {
        if (!mounted) return;
        mounted = false;
        var (code, _) = Run("umount", Folder);
        if (code != 0) Run("umount", "-l", Folder); // still busy (a process has a file open there): detach it now
    }

    private static (int Code, string Output) Run(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(CommandTimeout))
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"{command} did not finish within {CommandTimeout.TotalSeconds:0} s");
            }
            process.WaitForExit();
            return (process.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"{command}: {e.Message}");
        }
    }
}
