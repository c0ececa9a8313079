using System.Diagnostics;
using System.Management.Automation.Runspaces;
using System.Text;

namespace DomainShare.Bench;

/// <summary>
/// Figure 2: Get-DomainSharePeer with 1,000 peers configured, goal under 50 ms in a warm runspace; and the first call
/// after another process changed the file, when the store's parse cache (keyed by content hash) misses.
/// </summary>
internal static class PeerListFigures
{
    public const double GoalMs = 50;
    private const string GetScript = "param($ConfigPath) Get-DomainSharePeer -ConfigPath $ConfigPath";

    public static string PeerName(int index) => $"peer{index:D4}.bench.example.org";

    /// <summary>One peer with the defaults, as ConfigurationYaml.Write emits it (block sequence indented under 'peers:').</summary>
    private static string Entry(string name, bool enabled)
        => $"  - name: {name}\n    smtpPort: 25\n    mingerPort: 4069\n    secret: null\n    enabled: {(enabled ? "true" : "false")}\n";

    /// <summary>
    /// Writes a configuration with <paramref name="count"/> peers: Initialize-DomainShare, then the peer list appended
    /// in the exact form ConfigurationYaml.Write produces. The module then rewrites the file once (a probe peer added and
    /// removed) to check that form; the module's own text is returned either way.
    /// </summary>
    public static string CreateConfiguration(Runspace runspace, string configPath, int count)
    {
        ModuleHost.Run(runspace, "param($ConfigPath) $null = Initialize-DomainShare -ServerName bench.example.com -ConfigPath $ConfigPath",
            ("ConfigPath", configPath));
        var initial = File.ReadAllText(configPath);
        const string emptyList = "\npeers: []\n";
        if (!initial.EndsWith(emptyList, StringComparison.Ordinal))
            throw new BenchException($"The file Initialize-DomainShare wrote does not end with 'peers: []': the YAML form changed, update {nameof(PeerListFigures)}.");
        var text = new StringBuilder(initial, 0, initial.Length - emptyList.Length + 1, initial.Length + count * 100);
        text.Append("peers:\n");
        for (int i = 0; i < count; i++)
            text.Append(Entry(PeerName(i), enabled: true));
        var generated = text.ToString();
        ReplaceFile(configPath, generated);

        ModuleHost.Run(runspace, """
            param($ConfigPath)
            Add-DomainSharePeer -Name probe.bench.example.org -ConfigPath $ConfigPath
            Remove-DomainSharePeer -Name probe.bench.example.org -Force -ConfigPath $ConfigPath
            """, ("ConfigPath", configPath));
        var rewritten = File.ReadAllText(configPath);
        if (rewritten != generated)
            Progress.Say("warning: the generated YAML differs from what the module writes; measuring the module's own text.");
        return rewritten;
    }

    /// <summary>Replaces the file whole, as another process would (write aside, then rename over it).</summary>
    public static void ReplaceFile(string path, string text)
    {
        var temp = path + ".bench.tmp";
        File.WriteAllText(temp, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        File.Move(temp, path, overwrite: true);
    }

    public static void Measure(Report report, Runspace runspace, string configPath, string text, int peers, int calls, int changes)
    {
        const string warmFigure = "2. Get-DomainSharePeer, 1,000 peers, warm runspace (file unchanged)";
        const string changedFigure = "2. Get-DomainSharePeer, 1,000 peers, first call after the file changed";
        var warm = new List<TimeSpan>();
        var changed = new List<TimeSpan>();
        try
        {
            Time(runspace, configPath, peers); // warm-up: parses this file into the store's cache
            for (int i = 0; i < calls; i++)
                warm.Add(Time(runspace, configPath, peers));
            // Another process changes the file (one peer disabled, a different one each time): the next read parses again.
            for (int i = 0; i < changes; i++)
            {
                var name = PeerName(i % peers);
                var changedText = text.Replace(Entry(name, enabled: true), Entry(name, enabled: false), StringComparison.Ordinal);
                if (changedText == text)
                    throw new BenchException($"The configuration does not hold the entry of '{name}' in the expected form.");
                ReplaceFile(configPath, changedText);
                changed.Add(Time(runspace, configPath, peers));
                Time(runspace, configPath, peers); // cached again; keeps the runspace in the same state as the warm loop
            }
            ReplaceFile(configPath, text);
        }
        catch (BenchException ex)
        {
            report.Add(Row.Error(warmFigure, $"< {GoalMs:0} ms", ex));
            return;
        }
        var warmSummary = Summary.Of(warm);
        var changedSummary = Summary.Of(changed);
        Progress.Say($"get 1,000 peers: warm {warmSummary.MedianP95()}; after a change {changedSummary.MedianP95()}");
        report.Add(Row.Timing(warmFigure, GoalMs, warmSummary, warmSummary.MedianP95()));
        report.Add(new Row(changedFigure, "(reported)", changedSummary.MedianMinMax(), Outcome.Info,
            changedSummary.Median < GoalMs ? "info: under 50 ms" : "info: over 50 ms"));
    }

    private static TimeSpan Time(Runspace runspace, string configPath, int expected)
    {
        var watch = Stopwatch.StartNew();
        var output = ModuleHost.Run(runspace, GetScript, ("ConfigPath", configPath));
        var elapsed = watch.Elapsed;
        if (output.Count != expected)
            throw new BenchException($"Get-DomainSharePeer returned {output.Count} peers, {expected} expected.");
        return elapsed;
    }
}
