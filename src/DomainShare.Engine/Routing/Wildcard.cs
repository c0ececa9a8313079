using System.Text;
using System.Text.RegularExpressions;

namespace DomainShare.Engine.Routing;

/// <summary>
/// PowerShell-style wildcards without PowerShell: <c>*</c> any run, <c>?</c> one character, <c>[abc]</c> / <c>[a-z]</c> a set,
/// a backtick escapes the next character. Matching is case-insensitive and covers the whole text.
/// </summary>
internal static class Wildcard
{
    /// <summary>True when <paramref name="pattern"/> is null, empty or only stars: it matches everything.</summary>
    public static bool MatchesAll(string? pattern) => string.IsNullOrEmpty(pattern) || pattern.All(c => c == '*');

    public static Func<string, bool> Compile(string? pattern)
    {
        if (MatchesAll(pattern)) return static _ => true;
        var regex = new StringBuilder("^");
        for (int i = 0; i < pattern!.Length; i++)
        {
            char c = pattern[i];
            switch (c)
            {
                case '`' when i + 1 < pattern.Length:
                    regex.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                case '*':
                    regex.Append(".*");
                    break;
                case '?':
                    regex.Append('.');
                    break;
                case '[':
                    int close = pattern.IndexOf(']', i + 1);
                    if (close > i + 1)
                    {
                        regex.Append('[');
                        foreach (char s in pattern.AsSpan(i + 1, close - i - 1))
                            regex.Append(s is '\\' or '^' or '[' ? "\\" + s : s.ToString());
                        regex.Append(']');
                        i = close;
                    }
                    else
                    {
                        regex.Append("\\[");
                    }
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }
        regex.Append('$');
        var compiled = new Regex(regex.ToString(), RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline);
        return compiled.IsMatch;
    }
}
