using System.Globalization;
using System.Text.RegularExpressions;

namespace DomainShare.Engine.Configuration;

/// <summary>Durations as an administrator writes them in YAML: <c>5d</c>, <c>12h</c>, <c>30m</c>, <c>90s</c>, <c>500ms</c>, <c>1d12h</c>, or <c>d.hh:mm:ss</c>.</summary>
public static partial class Durations
{
    [GeneratedRegex(@"^(?:(?<d>\d+)d)?(?:(?<h>\d+)h)?(?:(?<m>\d+)m(?!s))?(?:(?<s>\d+)s)?(?:(?<ms>\d+)ms)?$", RegexOptions.CultureInvariant)]
    private static partial Regex Compact();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (text == "0") return true;
        var m = Compact().Match(text);
        if (m.Success && m.Length > 0)
        {
            try
            {
                checked
                {
                    long ms = Part(m, "d") * 86_400_000L + Part(m, "h") * 3_600_000L + Part(m, "m") * 60_000L + Part(m, "s") * 1000L + Part(m, "ms");
                    // FromTicks, not FromMilliseconds(double): a double loses whole milliseconds on long durations.
                    value = TimeSpan.FromTicks(ms * TimeSpan.TicksPerMillisecond);
                    return true;
                }
            }
            catch (OverflowException) { return false; }
        }
        if (text.Contains(':') && TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero)
            return true;
        return false;
    }

    private static long Part(Match m, string name)
        => m.Groups[name].Success ? long.Parse(m.Groups[name].Value, CultureInfo.InvariantCulture) : 0;

    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero) return "0s";
        if (value.Ticks % TimeSpan.TicksPerMillisecond != 0) return value.ToString("c", CultureInfo.InvariantCulture);
        var parts = new System.Text.StringBuilder();
        if (value.Days > 0) parts.Append(CultureInfo.InvariantCulture, $"{value.Days}d");
        if (value.Hours > 0) parts.Append(CultureInfo.InvariantCulture, $"{value.Hours}h");
        if (value.Minutes > 0) parts.Append(CultureInfo.InvariantCulture, $"{value.Minutes}m");
        if (value.Seconds > 0) parts.Append(CultureInfo.InvariantCulture, $"{value.Seconds}s");
        if (value.Milliseconds > 0) parts.Append(CultureInfo.InvariantCulture, $"{value.Milliseconds}ms");
        return parts.ToString();
    }
}
