using System.Diagnostics;
using System.Globalization;
using System.Management.Automation.Runspaces;
using System.Text.Json;

namespace DomainShare.Bench;

/// <summary>
/// Figure 3: ten processes add 100 peers each to one configuration, one Add-DomainSharePeer call per peer. Every update
/// must survive (all 1,000 peers present afterwards); the time they take gives the updates per second under contention.
/// </summary>
internal static class ParallelWriterFigures
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan RunTimeout = Writer.Budget + TimeSpan.FromSeconds(30);

    public static async Task MeasureAsync(Report report, Runspace runspace, string configPath, int writers, int perWriter)
    {
        string figure = $"3. {writers} writer processes x {perWriter} Add-DomainSharePeer: all peers present";
        string goal = $"{writers * perWriter:N0} of {writers * perWriter:N0}";
        try
        {
            ModuleHost.Run(runspace, "param($ConfigPath) $null = Initialize-DomainShare -ServerName bench.example.com -ConfigPath $ConfigPath",
                ("ConfigPath", configPath));
            var (results, startup, elapsed) = await RunWritersAsync(configPath, writers, perWriter);
            Verify(report, runspace, configPath, figure, goal, results, writers, perWriter);

            int added = results.Sum(r => r.Added);
            double seconds = elapsed.TotalSeconds;
            var latency = Summary.Of([.. results.SelectMany(r => r.LatenciesMs)]);
            var window = TimeSpan.FromTicks(results.Max(r => r.EndUtcTicks) - results.Min(r => r.StartUtcTicks));
            Progress.Say($"writers: {added} adds in {seconds:0.00} s ({added / seconds:0} updates/s), first add to last {window.TotalSeconds:0.00} s");
            report.Add(Row.Information($"3. {writers} writers: total time, go to last writer done / updates per second",
                $"{seconds:0.00} s / {added / seconds:0} updates/s"));
            report.Add(Row.Information("3. one Add-DomainSharePeer call under contention", latency.MedianP95() + $", max {Summary.Ms(latency.Max)}"));
            report.Add(Row.Information($"3. {writers} writers: process start to ready (runspace + Import-Module, not in the time above)",
                $"{startup.TotalSeconds:0.00} s for all"));
        }
        catch (Exception ex) when (ex is BenchException or TimeoutException or JsonException)
        {
            report.Add(Row.Error(figure, goal, ex));
        }
    }

    /// <summary>Starts the writers, waits until each has imported the module, releases them together and collects their results.</summary>
    private static async Task<(List<WriterResult> Results, TimeSpan Startup, TimeSpan Elapsed)> RunWritersAsync(string configPath, int writers, int perWriter)
    {
        var children = new List<ChildProcess>();
        try
        {
            var startup = Stopwatch.StartNew();
            for (int i = 0; i < writers; i++)
                children.Add(ChildProcess.Start(Writer.SubCommand, configPath,
                    i.ToString(CultureInfo.InvariantCulture), perWriter.ToString(CultureInfo.InvariantCulture)));
            foreach (var child in children)
            {
                var line = await child.ReadLineAsync(ChildProcess.Remaining(ReadyTimeout, startup));
                if (line != Writer.Ready)
                    throw new BenchException($"Writer process {child.Id} did not get ready: {line ?? "(no output)"} {child.StandardError}");
            }
            var startupTime = startup.Elapsed;
            Progress.Say($"writers: {writers} processes ready after {startupTime.TotalSeconds:0.0} s; go");

            var run = Stopwatch.StartNew();
            foreach (var child in children)
                await child.WriteLineAsync(Writer.Go);
            var results = new List<WriterResult>();
            foreach (var child in children)
            {
                var line = await child.ReadLineAsync(ChildProcess.Remaining(RunTimeout, run))
                    ?? throw new BenchException($"Writer process {child.Id} ended without a result: {child.StandardError}");
                results.Add(JsonSerializer.Deserialize<WriterResult>(line) ?? throw new BenchException($"Unreadable writer result: {line}"));
            }
            var elapsed = run.Elapsed;
            foreach (var child in children)
            {
                int exit = await child.WaitForExitAsync(ChildProcess.Remaining(RunTimeout, run));
                if (exit != 0) throw new BenchException($"Writer process {child.Id} exited with code {exit}: {child.StandardError}");
            }
            return (results, startupTime, elapsed);
        }
        finally
        {
            foreach (var child in children)
                child.Dispose(); // kills, by id, any writer still running after a failure or a timeout
        }
    }

    private static void Verify(Report report, Runspace runspace, string configPath, string figure, string goal,
        List<WriterResult> results, int writers, int perWriter)
    {
        var expected = Enumerable.Range(0, writers)
            .SelectMany(w => Enumerable.Range(0, perWriter).Select(j => Writer.PeerName(w, j)))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var names = ModuleHost.Run(runspace, "param($ConfigPath) Get-DomainSharePeer -ConfigPath $ConfigPath", ("ConfigPath", configPath))
            .Select(p => (string)p.Properties["Name"].Value)
            .ToList();
        int present = names.Count(expected.Contains);
        int missing = expected.Count - present;
        int unexpected = names.Count - present;
        var errors = results.SelectMany(r => r.Errors).ToList();
        bool ok = missing == 0 && unexpected == 0 && errors.Count == 0 && names.Count == names.Distinct(StringComparer.OrdinalIgnoreCase).Count();
        var measured = $"{present:N0} present, {missing} missing, {unexpected} unexpected, {errors.Count} cmdlet errors";
        if (errors.Count > 0) measured += $" (first: {errors[0]})";
        report.Add(new Row(figure, goal, measured, ok ? Outcome.Pass : Outcome.Fail));
    }
}
