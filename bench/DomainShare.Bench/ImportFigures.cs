using System.Diagnostics;
using System.Text.Json;

namespace DomainShare.Bench;

/// <summary>
/// Figure 1: Import-Module plus the first Get-DomainSharePeer in a fresh runspace, goal under 300 ms, measured (a) in a
/// fresh process each time and (b) in one warm process with a new runspace each time. Runspace opening is reported apart.
/// </summary>
internal static class ImportFigures
{
    public const double GoalMs = 300;
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromSeconds(60);

    public static async Task ColdAsync(Report report, string configPath, int runs)
    {
        const string figure = "1a. cold process: Import-Module + first Get-DomainSharePeer";
        var results = new List<ColdImportResult>();
        var processes = new List<double>();
        try
        {
            for (int i = 0; i < runs; i++)
            {
                var watch = Stopwatch.StartNew();
                var line = await ChildProcess.RunForResultAsync(ChildTimeout, ColdImport.SubCommand, configPath);
                processes.Add(watch.Elapsed.TotalMilliseconds);
                var result = JsonSerializer.Deserialize<ColdImportResult>(line)
                    ?? throw new BenchException($"Unreadable result from the child: {line}");
                results.Add(result);
                Progress.Say($"cold {i + 1}/{runs}: runspace {result.RunspaceOpenMs:0} ms, import {result.ImportMs:0} ms, " +
                             $"first get {result.FirstGetMs:0} ms, process {watch.Elapsed.TotalMilliseconds:0} ms");
            }
        }
        catch (Exception ex) when (ex is BenchException or JsonException)
        {
            report.Add(Row.Error(figure, $"< {GoalMs:0} ms", ex));
            return;
        }
        var total = Summary.Of([.. results.Select(r => r.ImportAndFirstGetMs)]);
        report.Add(Row.Timing(figure, GoalMs, total, total.MedianMinMax()));
        report.Add(Row.Information("1a. cold process: of which Import-Module / first Get-DomainSharePeer",
            $"median {Summary.Ms(Summary.Of([.. results.Select(r => r.ImportMs)]).Median)} / " +
            $"{Summary.Ms(Summary.Of([.. results.Select(r => r.FirstGetMs)]).Median)}"));
        report.Add(Row.Information("1a. cold process: runspace open (first in the process, not in the goal)",
            Summary.Of([.. results.Select(r => r.RunspaceOpenMs)]).MedianMinMax()));
        report.Add(Row.Information("1a. cold process: whole child process, start to exit",
            Summary.Of(processes).MedianMinMax()));
    }

    public static void Warm(Report report, string configPath, int runs)
    {
        const string figure = "1b. warm process, new runspace: Import-Module + first Get-DomainSharePeer";
        var opens = new List<TimeSpan>();
        var imports = new List<TimeSpan>();
        var gets = new List<TimeSpan>();
        var totals = new List<TimeSpan>();
        try
        {
            for (int i = 0; i < runs; i++)
            {
                using var runspace = ModuleHost.OpenRunspace(out var open);
                var watch = Stopwatch.StartNew();
                ModuleHost.ImportModule(runspace);
                var import = watch.Elapsed;
                var peers = ModuleHost.Run(runspace, "param($ConfigPath) Get-DomainSharePeer -ConfigPath $ConfigPath", ("ConfigPath", configPath));
                var total = watch.Elapsed;
                if (peers.Count == 0) throw new BenchException("Get-DomainSharePeer returned no peer.");
                opens.Add(open);
                imports.Add(import);
                gets.Add(total - import);
                totals.Add(total);
            }
        }
        catch (BenchException ex)
        {
            report.Add(Row.Error(figure, $"< {GoalMs:0} ms", ex));
            return;
        }
        var summary = Summary.Of(totals);
        Progress.Say($"warm: import + first get {summary.MedianP95()}");
        report.Add(Row.Timing(figure, GoalMs, summary, summary.MedianP95()));
        report.Add(Row.Information("1b. warm process: of which Import-Module / first Get-DomainSharePeer",
            $"median {Summary.Ms(Summary.Of(imports).Median)} / {Summary.Ms(Summary.Of(gets).Median)}"));
        report.Add(Row.Information("1b. warm process: runspace open (not in the goal)", Summary.Of(opens).MedianP95()));
    }
}
