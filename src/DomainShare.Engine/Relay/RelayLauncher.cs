using System.Diagnostics;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Relay;

/// <summary>How to start a relay process: an executable (a PowerShell host) and its arguments.</summary>
public sealed record RelayCommand(string FileName, IReadOnlyList<string> Arguments);

/// <summary>
/// Starts a relay as a background process that outlives its caller, stops it gracefully, and finds out whether one is
/// running. The process is detached from the caller's terminal and session (its own session on Unix, output to
/// <c>relay.out</c> in the data directory), so closing the terminal or ending the scheduled task leaves it running.
/// </summary>
public static class RelayLauncher
{
    /// <summary>Set in the relay's environment when it was started in the background: it then writes nothing to the console.</summary>
    public const string DetachedVariable = "DOMAINSHARE_RELAY_DETACHED";

    /// <summary>
    /// The running relay of this configuration, or null. A relay keeps running on the last good configuration when its
    /// file is broken by a hand edit, and says why in <see cref="RelayStatus.ConfigurationError"/>: it is still found then;
    /// when no relay runs, the broken file's error is thrown.
    /// </summary>
    public static async Task<RelayStatus?> GetStatusAsync(ConfigurationStore store, CancellationToken ct = default)
    {
        string dataDirectory;
        try
        {
            dataDirectory = store.ResolveDataDirectory(store.Load());
        }
        catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidConfiguration)
        {
            if (await RelayControlClient.GetStatusAsync(DataDirectoryOfBrokenFile(store), ct).ConfigureAwait(false) is { } status
                && string.Equals(status.ConfigPath, store.FilePath, StringComparison.Ordinal))
                return status;
            throw;
        }
        return await RelayControlClient.GetStatusAsync(dataDirectory, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The data directory a configuration file names, read leniently from a file the strict reader refuses: the top-level
    /// <c>dataDirectory:</c> line, or the default when there is none. Only used to find the relay that still runs on the
    /// file's last good version, whose state file names the configuration it belongs to.
    /// </summary>
    private static string DataDirectoryOfBrokenFile(ConfigurationStore store)
    {
        string value = Defaults.DataDirectory;
        try
        {
            foreach (var line in File.ReadLines(store.FilePath))
            {
                if (!line.StartsWith("dataDirectory:", StringComparison.Ordinal)) continue;
                var text = line["dataDirectory:".Length..].Trim();
                if (text.Length >= 2 && text[0] == '\'' && text[^1] == '\'') text = text[1..^1].Replace("''", "'", StringComparison.Ordinal);
                else if (text.Length >= 2 && text[0] == '"' && text[^1] == '"') text = text[1..^1].Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);
                else if (text.IndexOf(" #", StringComparison.Ordinal) is var comment and >= 0) text = text[..comment].TrimEnd();
                if (text.Length > 0 && text is not ("null" or "~")) value = text;
                break;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
        string folder = Path.GetDirectoryName(store.FilePath)!;
        try { return Path.GetFullPath(value, folder); }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException) { return Path.GetFullPath(Defaults.DataDirectory, folder); }
    }

    public static async Task<RelayStatus> StartDetachedAsync(ConfigurationStore store, RelayCommand command, TimeSpan timeout, CancellationToken ct = default)
    {
        var config = store.Load();
        string dataDirectory = store.ResolveDataDirectory(config);
        Directory.CreateDirectory(dataDirectory);
        if (await RelayControlClient.GetStatusAsync(dataDirectory, ct).ConfigureAwait(false) is { } running)
            throw new DomainShareException(ErrorIds.RelayAlreadyRunning, ErrorKind.AlreadyExists,
                $"A relay is already running on the data directory '{dataDirectory}' (process {running.ProcessId}, configuration '{running.ConfigPath}', Minger {running.MingerEndpoint}).",
                running.ConfigPath == store.FilePath
                    ? "Stop it first with Stop-DomainShareRelay."
                    : "Two configurations share this data directory: give each server its own (dataDirectory in the file, or Set-DomainShareConfig -DataDirectory).",
                store.FilePath);

        string logPath = Path.Combine(dataDirectory, RelayState.LogFileName);
        long logStart = File.Exists(logPath) ? new FileInfo(logPath).Length : 0;
        using var process = Process.Start(StartInfo(command, dataDirectory))
            ?? throw StartFailed(store, "the process could not be started", null);
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            ct.ThrowIfCancellationRequested();
            if (RelayState.Load(dataDirectory) is { } state && state.ProcessId == process.Id &&
                await RelayControlClient.GetStatusAsync(dataDirectory, ct).ConfigureAwait(false) is { } status)
                return status;
            if (process.HasExited)
                throw StartFailed(store, LastError(logPath, logStart) ?? $"the relay process exited with code {process.ExitCode}",
                    Path.Combine(dataDirectory, RelayState.OutputFileName));
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        throw StartFailed(store, $"it did not report ready within {timeout.TotalSeconds:0} s", logPath);
    }

    private static ProcessStartInfo StartInfo(RelayCommand command, string dataDirectory)
    {
        var info = new ProcessStartInfo { UseShellExecute = false, CreateNoWindow = true, WorkingDirectory = dataDirectory };
        if (OperatingSystem.IsWindows())
        {
            info.FileName = command.FileName;
            foreach (var a in command.Arguments) info.ArgumentList.Add(a);
        }
        else
        {
            // exec keeps the process id: the shell becomes setsid, which becomes the host, in a session of its own,
            // with no terminal, stdin from /dev/null and output appended to relay.out.
            info.FileName = "/bin/sh";
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add("if command -v setsid >/dev/null 2>&1; then exec setsid \"$0\" \"$@\" </dev/null >>\"$DOMAINSHARE_RELAY_OUT\" 2>&1; " +
                                  "else exec \"$0\" \"$@\" </dev/null >>\"$DOMAINSHARE_RELAY_OUT\" 2>&1; fi");
            info.ArgumentList.Add(command.FileName);
            foreach (var a in command.Arguments) info.ArgumentList.Add(a);
            info.Environment["DOMAINSHARE_RELAY_OUT"] = Path.Combine(dataDirectory, RelayState.OutputFileName);
        }
        info.Environment[DetachedVariable] = "1";
        info.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        return info;
    }

    private static string? LastError(string logPath, long from)
    {
        try
        {
            using var stream = new FileStream(logPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            stream.Seek(Math.Min(from, stream.Length), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            string? last = null;
            while (reader.ReadLine() is { } line)
                if (line.Contains(" ERROR ", StringComparison.Ordinal)) last = line[(line.IndexOf(" ERROR ", StringComparison.Ordinal) + 7)..];
            return last;
        }
        catch (IOException) { return null; }
    }

    private static DomainShareException StartFailed(ConfigurationStore store, string why, string? details)
        => new(ErrorIds.RelayStartFailed, ErrorKind.ResourceUnavailable,
               $"The relay for '{store.FilePath}' did not start: {why}",
               details is null ? "Check the configuration with Get-DomainShareConfig." : $"See '{details}' for the relay's own output.", store.FilePath);

    /// <summary>Asks the running relay to stop and waits for its process to exit. Returns its last status.</summary>
    public static async Task<RelayStatus> StopAsync(ConfigurationStore store, TimeSpan timeout, CancellationToken ct = default)
    {
        string dataDirectory;
        RelayState? state;
        try
        {
            dataDirectory = store.ResolveDataDirectory(store.Load());
            state = RelayState.Load(dataDirectory);
        }
        catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidConfiguration)
        {
            // A relay running on the last good version of a file broken since can still be stopped.
            dataDirectory = DataDirectoryOfBrokenFile(store);
            state = RelayState.Load(dataDirectory);
            if (state is null || !string.Equals(state.ConfigPath, store.FilePath, StringComparison.Ordinal)) throw;
        }
        var response = state is null ? null : await RelayControlClient.SendAsync(state, "stop", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        if (state is null || response is not { Ok: true, Status: { } status })
            throw new DomainShareException(ErrorIds.RelayNotRunning, ErrorKind.NotFound,
                $"No relay is running for '{store.FilePath}'{(state is null ? "" : $" (the state file names process {state.ProcessId}, which does not answer)")}.",
                "Start one with Start-DomainShareRelay.", store.FilePath);
        if (!await WaitForExitAsync(state.ProcessId, timeout, ct).ConfigureAwait(false))
            throw new DomainShareException(ErrorIds.RelayStopFailed, ErrorKind.OperationTimeout,
                $"The relay (process {state.ProcessId}) did not stop within {timeout.TotalSeconds:0} s.",
                $"Look at '{Path.Combine(dataDirectory, RelayState.LogFileName)}'; end the process by its id if it is hung.", store.FilePath);
        return status;
    }

    private static async Task<bool> WaitForExitAsync(int processId, TimeSpan timeout, CancellationToken ct)
    {
        Process process;
        try { process = Process.GetProcessById(processId); }
        catch (ArgumentException) { return true; }
        using (process)
        {
            if (processId == Environment.ProcessId) return true; // an in-process relay (-Wait) unwinds on its own
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
                return true;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                return false;
            }
        }
    }
}
