using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

namespace DomainShare.Shell.Tests;

/// <summary>
/// One test's private folder, and the built <c>domainshare</c> started in it as a real process: stdin, stdout and
/// stderr are pipes (as under cron or CI), the engine's XDG folders and the configuration file are inside the folder,
/// and every process is killed by its own id if it outlives its timeout.
/// </summary>
public sealed class ShellSandbox : IDisposable
{
    public static readonly string ShellDirectory = Metadata("ShellDirectory");

    /// <summary>The command as installed: the native launcher named <c>domainshare</c>.</summary>
    public static readonly string Executable = Path.Combine(ShellDirectory, OperatingSystem.IsWindows() ? "domainshare.exe" : "domainshare");

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public ShellSandbox()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("domainshare-shell-test-").FullName;
        ConfigPath = Path.Combine(Directory, "domainshare.yaml");
    }

    public string Directory { get; }

    /// <summary>Passed to the host as $env:DOMAINSHARE_CONFIG, so every cmdlet uses this test's file.</summary>
    public string ConfigPath { get; }

    /// <summary>Extra environment variables for the host (null removes one).</summary>
    public Dictionary<string, string?> Environment { get; } = new();

    public string WriteScript(string name, string text)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Runs <c>domainshare -Command <paramref name="script"/></c>.</summary>
    public ShellResult Command(string script) => Run("-Command", script);

    /// <summary>Runs <c>domainshare</c> with <paramref name="args"/>, stdin empty, and waits for it to exit.</summary>
    public ShellResult Run(params string[] args)
    {
        using var process = Start(args);
        try
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(DefaultTimeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                Assert.Fail($"domainshare {string.Join(' ', args)} did not exit within {DefaultTimeout.TotalSeconds} s.\nstdout:\n{stdout.Result}\nstderr:\n{stderr.Result}");
            }
            process.WaitForExit(); // the output is complete only after this
            return new ShellResult(process.ExitCode, stdout.Result, stderr.Result);
        }
        finally
        {
            KillIfRunning(process);
        }
    }

    /// <summary>Starts <c>domainshare</c> with all three standard streams redirected; the caller must kill it.</summary>
    public Process Start(params string[] args)
    {
        Assert.True(File.Exists(Executable), $"The host is not built at {Executable}.");
        var start = new ProcessStartInfo(Executable)
        {
            WorkingDirectory = Directory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // The engine must write nothing into the real home folder and send nothing anywhere.
        foreach (var xdg in new[] { "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
            start.Environment[xdg] = System.IO.Directory.CreateDirectory(Path.Combine(Directory, "xdg", xdg)).FullName;
        start.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOMAINSHARE_CONFIG"] = ConfigPath;
        start.Environment.Remove("NO_COLOR");
        foreach (var (name, value) in Environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        return Process.Start(start) ?? throw new InvalidOperationException("domainshare did not start.");
    }

    public static void KillIfRunning(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // it exited between the check and the kill
        }
    }

    /// <summary>Sends SIGINT, what Ctrl+C in a terminal sends, to <paramref name="process"/> (by its id).</summary>
    public static void Interrupt(Process process)
    {
        const int SigInt = 2;
        if (kill(process.Id, SigInt) != 0)
            throw new InvalidOperationException($"kill({process.Id}, SIGINT) failed: errno {Marshal.GetLastPInvokeError()}.");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    public static string Metadata(string key) => typeof(ShellSandbox).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

public sealed record ShellResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StdoutLines => Stdout.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Asserts the exit code, showing both streams when it is wrong.</summary>
    public ShellResult AssertExit(int expected)
    {
        Assert.True(ExitCode == expected, $"Exit code {ExitCode}, expected {expected}.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        return this;
    }

    public ShellResult AssertNoErrors()
    {
        Assert.True(Stderr.Length == 0, $"Unexpected stderr:\n{Stderr}\nstdout:\n{Stdout}");
        return this;
    }
}
