using System.Diagnostics;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// A script of the repository run as an administrator runs it: <c>domainshare -NoProfile -NonInteractive -File
/// &lt;script.ps1&gt; [arguments]</c>, a real process of the bundled host, with the same isolated XDG folders as
/// <see cref="DomainShareShell"/>. Bounded in time: a process that outlives its bound is killed by its own id (with
/// its children) and the test fails with what it printed.
/// </summary>
public static class ScriptProcess
{
    /// <summary>The repository's root (the folder holding DomainShare.sln and examples/).</summary>
    public static readonly string RepositoryRoot = FindRoot();

    /// <summary>The full path of <c>examples/<paramref name="name"/></c>.</summary>
    public static string Example(string name)
    {
        string path = Path.Combine(RepositoryRoot, "examples", name);
        Assert.True(File.Exists(path), $"No example script at {path}.");
        return path;
    }

    /// <summary>
    /// Runs <paramref name="script"/> with <paramref name="arguments"/> (each one argument, as a shell passes them) in
    /// <paramref name="workingDirectory"/>; <paramref name="environment"/> adds or overrides variables (a null value removes one).
    /// </summary>
    public static ScriptRun Run(string script, IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var (exitCode, stdout, stderr, elapsed) = DomainShareShell.RunHost(["-NoProfile", "-NonInteractive", "-File", script, .. arguments],
            workingDirectory, timeout, Path.GetFileName(script), environment);
        return new ScriptRun(Path.GetFileName(script), exitCode, stdout, stderr, elapsed);
    }

    /// <summary>
    /// The ids of the live processes whose command line contains every one of <paramref name="parts"/> (read from
    /// /proc; zombies excluded). Linux only, as the loopback addresses of these tests are.
    /// </summary>
    public static IReadOnlyList<(int Pid, string CommandLine)> ProcessesWith(params string[] parts)
    {
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                string cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (!parts.All(p => cmdline.Contains(p, StringComparison.Ordinal))) continue;
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                int close = stat.LastIndexOf(')');
                if (close >= 0 && stat.Length > close + 2 && stat[close + 2] == 'Z') continue;
                found.Add((pid, cmdline));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile
            }
        }
        return found;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(DomainShareShell.ShellDirectory)); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DomainShare.sln")) && Directory.Exists(Path.Combine(dir.FullName, "examples")))
                return dir.FullName;
        throw new InvalidOperationException($"No repository root above {DomainShareShell.ShellDirectory}.");
    }
}

/// <summary>One run of a script: exit code, both streams, how long it took.</summary>
public sealed record ScriptRun(string Script, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public IReadOnlyList<string> Lines => [.. Stdout.Split('\n').Select(l => l.TrimEnd('\r'))];

    public override string ToString() => $"{Script}: exit {ExitCode} after {Elapsed.TotalSeconds:0.0} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}
