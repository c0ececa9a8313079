using System.Globalization;
using System.Net;

namespace DomainShare.Engine.DnsRecords;

/// <summary>Host and domain names as DNS carries them: ASCII (punycode), lower case, without the trailing dot.</summary>
public static class DnsNames
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = true, UseStd3AsciiRules = false };

    /// <summary>The ASCII form of a name (<c>bücher.example</c> → <c>xn--bcher-kva.example</c>); a name that is not valid IDN is only lower-cased.</summary>
    public static string ToAscii(string name)
    {
        string trimmed = Canonical(name);
        if (trimmed.Length == 0 || trimmed.All(char.IsAscii))
            return trimmed;
        try { return Idn.GetAscii(trimmed).ToLowerInvariant(); }
        catch (ArgumentException) { return trimmed; }
    }

    /// <summary>True when two names denote the same host (case-insensitive, trailing dot ignored, Unicode and punycode alike).</summary>
    public static bool SameHost(string a, string b) => string.Equals(ToAscii(a), ToAscii(b), StringComparison.Ordinal);

    /// <summary>True for an IPv4 address, an IPv6 address or a bracketed IPv6 address: a name that cannot be an MX target.</summary>
    public static bool IsAddress(string name)
    {
        string bare = Canonical(name);
        if (bare.StartsWith('[') && bare.EndsWith(']')) bare = bare[1..^1];
        return IPAddress.TryParse(bare, out _) && (bare.Contains(':') || bare.All(c => char.IsAsciiDigit(c) || c == '.'));
    }

    private static string Canonical(string name)
    {
        string trimmed = name.Trim();
        if (trimmed.EndsWith('.')) trimmed = trimmed[..^1];
        return trimmed.ToLowerInvariant();
    }
}
