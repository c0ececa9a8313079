using System.Globalization;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The figures of the hardening battery (tests/DomainShare.EndToEnd.Tests/Hardening). Each test runs a quick size under
/// <c>dotnet test</c> and the size the issue asks for when <c>DOMAINSHARE_HARDENING=full</c> (bench/hardening.sh), and
/// records what it measured: always in the test output, and as a tab-separated line (area, figure, goal, measured) in
/// the file <c>DOMAINSHARE_FIGURES</c> names, from which bench/hardening.sh prints its table.
/// </summary>
public static class Figures
{
    private static readonly object FileLock = new();

    /// <summary>True when bench/hardening.sh asked for the full sizes (<c>DOMAINSHARE_HARDENING=full</c>).</summary>
    public static bool Full
        => string.Equals(Environment.GetEnvironmentVariable("DOMAINSHARE_HARDENING"), "full", StringComparison.OrdinalIgnoreCase);

    /// <summary><paramref name="full"/> in a full run, else <paramref name="quick"/>.</summary>
    public static int Size(int quick, int full) => Full ? full : quick;

    /// <summary>Writes one measured figure to <paramref name="output"/> and, when asked for, to the figures file.</summary>
    public static void Record(ITestOutputHelper output, string area, string figure, string goal, string measured)
    {
        output.WriteLine($"FIGURE {area} | {figure} | goal: {goal} | measured: {measured}");
        if (Environment.GetEnvironmentVariable("DOMAINSHARE_FIGURES") is not { Length: > 0 } path) return;
        static string Clean(string s) => s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
        lock (FileLock)
            File.AppendAllText(path, string.Join('\t', Clean(area), Clean(figure), Clean(goal), Clean(measured)) + "\n");
    }

    /// <summary>The resident set size of process <paramref name="pid"/> in MiB (VmRSS of /proc), or -1 when it is gone.</summary>
    public static double ResidentMiB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), NumberStyles.None, CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return -1;
    }

    /// <summary>The <paramref name="p"/> percentile (0–100) of <paramref name="sorted"/> (ascending), nearest rank; NaN when empty.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) return double.NaN;
        int rank = (int)Math.Ceiling(p / 100 * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }
}
