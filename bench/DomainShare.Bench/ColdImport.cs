using System.Diagnostics;
using System.Text.Json;

namespace DomainShare.Bench;

/// <summary>What one fresh process measured: the first runspace of the process, then the module's first use.</summary>
internal sealed record ColdImportResult(double RunspaceOpenMs, double ImportMs, double FirstGetMs, int Peers)
{
    public double ImportAndFirstGetMs => ImportMs + FirstGetMs;
}

/// <summary>
/// Figure 1a, the child side (<c>--cold-import &lt;configPath&gt;</c>): in a process that has not yet touched PowerShell,
/// open a runspace, then Import-Module and the first Get-DomainSharePeer, each timed; print the result as one JSON line.
/// </summary>
internal static class ColdImport
{
    public const string SubCommand = "--cold-import";

    public static int Run(string configPath)
    {
        using var runspace = ModuleHost.OpenRunspace(out var open);

        var watch = Stopwatch.StartNew();
        ModuleHost.ImportModule(runspace);
        var import = watch.Elapsed;

        watch.Restart();
        var peers = ModuleHost.Run(runspace, "param($ConfigPath) Get-DomainSharePeer -ConfigPath $ConfigPath", ("ConfigPath", configPath));
        var firstGet = watch.Elapsed;

        if (peers.Count == 0) throw new BenchException($"Get-DomainSharePeer returned no peer from '{configPath}'.");
        Console.Out.WriteLine(JsonSerializer.Serialize(
            new ColdImportResult(open.TotalMilliseconds, import.TotalMilliseconds, firstGet.TotalMilliseconds, peers.Count)));
        return 0;
    }
}
