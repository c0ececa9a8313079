using System.Diagnostics;
using System.Text.Json;

namespace DomainShare.Bench;

/// <summary>What one writer process did: how many peers it added, the errors it met, when it began and ended.</summary>
internal sealed record WriterResult(int Writer, int Added, List<string> Errors, long StartUtcTicks, long EndUtcTicks, List<double> LatenciesMs);

/// <summary>
/// Figure 3, the child side (<c>--writer &lt;configPath&gt; &lt;writerIndex&gt; &lt;count&gt;</c>): open a runspace and import the
/// module, print <c>ready</c>, wait for <c>go</c> on standard input, then add peers w&lt;i&gt;-&lt;j&gt;.example.net one
/// Add-DomainSharePeer call at a time and print the result as one JSON line.
/// </summary>
internal static class Writer
{
    public const string SubCommand = "--writer";
    public const string Ready = "ready";
    public const string Go = "go";

    /// <summary>A writer stops adding after this long, whatever is left.</summary>
    public static readonly TimeSpan Budget = TimeSpan.FromSeconds(150);

    public static string PeerName(int writer, int index) => $"w{writer}-{index}.example.net";

    public static int Run(string configPath, int writer, int count)
    {
        using var runspace = ModuleHost.OpenRunspace();
        ModuleHost.ImportModule(runspace);
        Console.Out.WriteLine(Ready);
        Console.Out.Flush();
        // The parent says go once every writer is ready; end of input means the parent is gone.
        if (Console.In.ReadLine() != Go) return 3;

        var errors = new List<string>();
        var latencies = new List<double>(count);
        int added = 0;
        long start = DateTime.UtcNow.Ticks;
        var budget = Stopwatch.StartNew();
        for (int j = 0; j < count && budget.Elapsed < Budget; j++)
        {
            var watch = Stopwatch.StartNew();
            try
            {
                ModuleHost.Run(runspace, "param($Name, $ConfigPath) Add-DomainSharePeer -Name $Name -ConfigPath $ConfigPath",
                    ("Name", PeerName(writer, j)), ("ConfigPath", configPath));
                added++;
            }
            catch (BenchException ex)
            {
                errors.Add(ex.Message);
            }
            latencies.Add(watch.Elapsed.TotalMilliseconds);
        }
        long end = DateTime.UtcNow.Ticks;
        if (added + errors.Count < count) errors.Add($"stopped after {Budget.TotalSeconds:0} s with {count - added - errors.Count} peers not attempted");

        Console.Out.WriteLine(JsonSerializer.Serialize(new WriterResult(writer, added, errors, start, end, latencies)));
        return 0;
    }
}
