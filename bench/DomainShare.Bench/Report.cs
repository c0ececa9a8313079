using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace DomainShare.Bench;

/// <summary>How a row compares with its goal.</summary>
internal enum Outcome { Pass, Miss, Info, Fail }

/// <summary>One line of the result table.</summary>
internal sealed record Row(string Figure, string Goal, string Measured, Outcome Outcome, string Note = "")
{
    /// <summary>A timing judged on its median against an upper bound in milliseconds.</summary>
    public static Row Timing(string figure, double goalMs, Summary summary, string measured)
        => new(figure, $"< {goalMs:0} ms", measured, summary.Median < goalMs ? Outcome.Pass : Outcome.Miss);

    public static Row Information(string figure, string measured) => new(figure, "(reported)", measured, Outcome.Info);

    public static Row Error(string figure, string goal, Exception ex) => new(figure, goal, "error: " + ex.Message, Outcome.Fail);
}

/// <summary>The Markdown table the bench prints, with the machine it ran on.</summary>
internal sealed class Report
{
    private readonly List<Row> rows = [];

    public void Add(Row row) => rows.Add(row);

    public bool Failed => rows.Any(r => r.Outcome == Outcome.Fail);

    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine($"DomainShare bench, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC: {RuntimeInformation.OSDescription}, " +
                        $"{Environment.ProcessorCount} logical CPUs, .NET {Environment.Version}, PowerShell engine " +
                        $"{EngineVersion}.");
        text.AppendLine("Results are judged on the median; single-machine timings are noisy, compare runs on the same machine only.");
        text.AppendLine();
        text.AppendLine("| figure | goal | measured | result |");
        text.AppendLine("|---|---|---|---|");
        foreach (var row in rows)
            text.AppendLine($"| {Cell(row.Figure)} | {Cell(row.Goal)} | {Cell(row.Measured)} | {Cell(Result(row))} |");
        return text.ToString();
    }

    /// <summary>The engine's package version ("7.6.9"), not its assembly version.</summary>
    private static string EngineVersion
        => typeof(PowerShell).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split(' ', '+')[0]
           ?? typeof(PowerShell).Assembly.GetName().Version?.ToString() ?? "?";

    private static string Result(Row row) => row.Outcome switch
    {
        Outcome.Pass => "pass",
        Outcome.Miss => "**miss**",
        Outcome.Fail => "**FAIL**",
        _ => string.IsNullOrEmpty(row.Note) ? "info" : row.Note,
    };

    private static string Cell(string text) => text.Replace("|", "\\|").ReplaceLineEndings(" ");
}
