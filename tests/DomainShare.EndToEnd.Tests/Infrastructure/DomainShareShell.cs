using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The bundled host <c>domainshare</c>, run as a real process as an administrator's script would run it:
/// <c>domainshare -Command '&lt;script&gt;'</c>. Output objects come back as JSON lines (the engine has no ConvertTo-Json:
/// the script serialises them with System.Text.Json), errors as their fully qualified ErrorId and message. Every process
/// is bounded in time and killed by its own id if it outlives the bound.
/// </summary>
public static class DomainShareShell
{
    public static readonly string ShellDirectory = typeof(DomainShareShell).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ShellDirectory").Value!;

    /// <summary>The command as installed: the native launcher named <c>domainshare</c>.</summary>
    public static readonly string Executable = Path.Combine(ShellDirectory, OperatingSystem.IsWindows() ? "domainshare.exe" : "domainshare");

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The engine's XDG folders, shared by every process of this test run and never the real home.</summary>
    private static readonly string XdgRoot = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "domainshare-e2e-xdg")).FullName;

    /// <summary>The line prefixes <c>Emit</c> writes (in <see cref="Preamble"/>).</summary>
    internal const string OutputMark = "##OUT ", ErrorMark = "##ERR ";

    /// <summary>
    /// Defines <c>Emit</c>: pipe anything into it; objects become <c>##OUT {json}</c> lines, error records
    /// <c>##ERR ["FullyQualifiedErrorId","message","category","target"]</c> lines.
    /// </summary>
    private const string Preamble = """
        $ErrorActionPreference = 'Continue'
        $ProgressPreference = 'SilentlyContinue'
        $__json = [System.Text.Json.JsonSerializerOptions]::new()
        function Emit {
            process {
                if ($null -eq $_) { return }
                if ($_ -is [System.Management.Automation.ErrorRecord]) {
                    '##ERR ' + [System.Text.Json.JsonSerializer]::Serialize([string[]]@($_.FullyQualifiedErrorId, $_.Exception.Message, [string]$_.CategoryInfo.Category, [string]$_.TargetObject), [string[]], $__json)
                } else {
                    $o = $_.PSObject.BaseObject
                    '##OUT ' + [System.Text.Json.JsonSerializer]::Serialize($o, $o.GetType(), $__json)
                }
            }
        }

        """;

    /// <summary>
    /// Runs each of <paramref name="commands"/> as <c>try { &amp; { command } 2&gt;&amp;1 | Emit } catch { $_ | Emit }</c>,
    /// so its output objects and its errors (terminating or not) come back parsed, in order.
    /// </summary>
    public static ShellRun Invoke(string workingDirectory, params string[] commands)
    {
        var script = new StringBuilder(Preamble);
        foreach (var command in commands)
            script.Append("try { & {\n").Append(command).Append("\n} 2>&1 | Emit } catch { $_ | Emit }\n");
        return Start(script.ToString(), workingDirectory, DefaultTimeout);
    }

    private static ShellRun Start(string script, string workingDirectory, TimeSpan timeout)
    {
        var (exitCode, stdout, stderr, elapsed) = RunHost(["-NoProfile", "-NonInteractive", "-Command", script], workingDirectory, timeout,
            $"domainshare\nscript:\n{script}");
        Trace(script, elapsed);
        return new ShellRun(exitCode, stdout, stderr, elapsed);
    }

    /// <summary>
    /// Runs the bundled host with <paramref name="arguments"/> in isolation (own XDG folders, telemetry and colour off,
    /// no default configuration or host), bounded by <paramref name="timeout"/>: a process that outlives it is killed by
    /// its own id, with its children, and the test fails naming <paramref name="what"/> with what it printed.
    /// <paramref name="environment"/> adds or overrides variables (a null value removes one).
    /// </summary>
    internal static (int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed) RunHost(IEnumerable<string> arguments, string workingDirectory,
        TimeSpan timeout, string what, IReadOnlyDictionary<string, string?>? environment = null)
    {
        Assert.True(File.Exists(Executable), $"The host is not built at {Executable}.");
        var start = new ProcessStartInfo(Executable)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var xdg in new[] { "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
            start.Environment[xdg] = Directory.CreateDirectory(Path.Combine(XdgRoot, xdg)).FullName;
        start.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        start.Environment["POWERSHELL_UPDATECHECK"] = "Off";
        start.Environment["NO_COLOR"] = "1";
        // Every command names its configuration: nothing may fall back to a default file or another host.
        start.Environment.Remove("DOMAINSHARE_CONFIG");
        start.Environment.Remove("DOMAINSHARE_HOST");
        if (environment is not null)
            foreach (var (name, value) in environment)
                if (value is null) start.Environment.Remove(name);
                else start.Environment[name] = value;

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("domainshare did not start.");
        try
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                KillIfRunning(process);
                process.WaitForExit(5000);
                Assert.Fail($"{what} did not exit within {timeout.TotalSeconds} s.\nstdout:\n{Completed(stdout)}\nstderr:\n{Completed(stderr)}");
            }
            process.WaitForExit(); // the output is complete only after this
            return (process.ExitCode, stdout.Result, stderr.Result, watch.Elapsed);
        }
        finally
        {
            KillIfRunning(process);
        }
    }

    /// <summary>With $DOMAINSHARE_E2E_TRACE naming a file, each run appends when it ended, how long it took and its script (to see where time goes).</summary>
    private static void Trace(string script, TimeSpan elapsed)
    {
        if (Environment.GetEnvironmentVariable("DOMAINSHARE_E2E_TRACE") is not { Length: > 0 } path) return;
        var text = script.Replace('\n', ' ');
        lock (TraceLock)
            File.AppendAllText(path, $"{DateTime.Now:HH:mm:ss.fff} {elapsed.TotalSeconds,6:0.00} s  {text[Math.Min(text.Length, Preamble.Length)..]}\n");
    }

    private static readonly object TraceLock = new();

    private static string Completed(Task<string> text) => text.Wait(2000) ? text.Result : "(not complete)";

    private static void KillIfRunning(Process process)
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

    internal static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    internal static IEnumerable<string> Marked(string stdout, string mark)
        => stdout.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith(mark, StringComparison.Ordinal)).Select(l => l[mark.Length..]);
}

/// <summary>One run of the host: exit code, both streams, and the objects and errors the script emitted.</summary>
public sealed record ShellRun(int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    public IReadOnlyList<JsonElement> Objects { get; } =
        [.. DomainShareShell.Marked(Stdout, DomainShareShell.OutputMark).Select(j => JsonDocument.Parse(j).RootElement.Clone())];

    public IReadOnlyList<ShellError> Errors { get; } =
        [.. DomainShareShell.Marked(Stdout, DomainShareShell.ErrorMark).Select(j => JsonSerializer.Deserialize<string[]>(j)!)
            .Select(a => new ShellError(a[0], a[1], a[2], a[3]))];

    public IEnumerable<string> ErrorIds => Errors.Select(e => e.Id);

    public IEnumerable<T> All<T>() => Objects.Select(o => o.Deserialize<T>(DomainShareShell.Json)!);

    /// <summary>The output object at <paramref name="index"/>, as <typeparamref name="T"/>.</summary>
    public T At<T>(int index) => Objects[index].Deserialize<T>(DomainShareShell.Json)!;

    /// <summary>The only object emitted, as <typeparamref name="T"/>.</summary>
    public T Single<T>()
    {
        Assert.True(Objects.Count == 1, $"Expected one output object, got {Objects.Count}.\n{this}");
        return Objects[0].Deserialize<T>(DomainShareShell.Json)!;
    }

    public ShellRun AssertSuccess()
    {
        Assert.True(Errors.Count == 0 && Stderr.Trim().Length == 0, $"Unexpected errors.\n{this}");
        return this;
    }

    public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalSeconds:0.0} s\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

public sealed record ShellError(string Id, string Message, string Category, string Target)
{
    public override string ToString() => $"{Id}: {Message}";
}
