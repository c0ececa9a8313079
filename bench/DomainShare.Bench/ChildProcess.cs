using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace DomainShare.Bench;

/// <summary>
/// Another copy of the bench binary, started with a sub-command. Its standard output is read line by line, its standard
/// error is kept for the report, and on any timeout the process is killed by its id.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder stderr = new();

    private ChildProcess(Process process) => this.process = process;

    public int Id => process.Id;

    /// <summary>Starts this binary again with <paramref name="arguments"/>; the child inherits the environment.</summary>
    public static ChildProcess Start(params string[] arguments)
    {
        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        string host = Environment.ProcessPath ?? throw new BenchException("The path of this process is unknown.");
        info.FileName = host;
        // Run as `dotnet DomainShare.Bench.dll`, the child needs the dll; run through the apphost, it does not.
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            info.ArgumentList.Add(Assembly.GetExecutingAssembly().Location);
        foreach (var argument in arguments)
            info.ArgumentList.Add(argument);

        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (child.stderr) child.stderr.AppendLine(e.Data);
        };
        if (!process.Start()) throw new BenchException($"Could not start '{host}'.");
        process.BeginErrorReadLine();
        return child;
    }

    public string StandardError
    {
        get { lock (stderr) return stderr.ToString().Trim(); }
    }

    /// <summary>The next line of standard output, or null at its end; throws on timeout (the caller kills).</summary>
    public async Task<string?> ReadLineAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await process.StandardOutput.ReadLineAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Child {Id} wrote no line within {timeout.TotalSeconds:0} s.");
        }
    }

    public async Task WriteLineAsync(string line)
    {
        await process.StandardInput.WriteLineAsync(line);
        await process.StandardInput.FlushAsync();
    }

    /// <summary>Waits for the exit; on timeout kills the process (and its children) by id and throws.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"Child {Id} did not finish within {timeout.TotalSeconds:0} s and was killed.");
        }
        return process.ExitCode;
    }

    /// <summary>
    /// Runs a child that prints one result line and exits: the last line of its output, or an exception with its
    /// standard error when it fails or overruns <paramref name="timeout"/>.
    /// </summary>
    public static async Task<string> RunForResultAsync(TimeSpan timeout, params string[] arguments)
    {
        using var child = Start(arguments);
        var deadline = Stopwatch.StartNew();
        try
        {
            string? last = null;
            while (await child.ReadLineAsync(Remaining(timeout, deadline)) is { } line)
                last = line;
            int exit = await child.WaitForExitAsync(Remaining(timeout, deadline));
            if (exit != 0 || last is null)
                throw new BenchException($"'{string.Join(' ', arguments)}' exited with code {exit}: {child.StandardError}");
            return last;
        }
        catch (TimeoutException ex)
        {
            child.Kill();
            throw new BenchException($"'{string.Join(' ', arguments)}': {ex.Message} {child.StandardError}");
        }
    }

    public static TimeSpan Remaining(TimeSpan budget, Stopwatch watch)
    {
        var left = budget - watch.Elapsed;
        return left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
    }

    /// <summary>Kills the process and its children, if still running. Never throws.</summary>
    public void Kill()
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException) { }
        catch (System.ComponentModel.Win32Exception) { }
    }

    public void Dispose()
    {
        Kill();
        process.Dispose();
    }
}
