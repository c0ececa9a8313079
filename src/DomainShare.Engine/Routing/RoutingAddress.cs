using System.Text;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Routing;

/// <summary>
/// A recipient address split for routing: the local part as given, the domain normalised (lower case, internationalised
/// names in Unicode, as the configuration stores them), and the canonical form used for account and cache keys.
/// </summary>
/// <param name="Address">The address as given.</param>
/// <param name="Domain">The normalised domain, or null for an address literal (<c>user@[192.0.2.1]</c>), which is never hosted.</param>
/// <param name="Canonical"><c>local@domain</c> with the normalised domain (the address itself when nothing changed).</param>
internal readonly record struct RoutingAddress(string Address, string? Domain, string Canonical)
{
    /// <summary>Parses <c>local@domain</c>; throws <see cref="DomainShareException"/> <see cref="ErrorIds.InvalidAddress"/> when it is not one.</summary>
    public static RoutingAddress Parse(string? address)
    {
        if (address is null || address == MingerCodec.Probe || !MingerCodec.IsValidMailbox(address))
            throw Invalid(address, "write it as local-part@domain, without spaces or angle brackets");
        int at = address.LastIndexOf('@');
        string domainText = address[(at + 1)..];
        if (domainText.Length > 2 && domainText[0] == '[' && domainText[^1] == ']')
            return new RoutingAddress(address, null, address);
        string? domain = NormalizeDomain(domainText);
        if (domain is null)
            throw Invalid(address, $"'{domainText}' is not a valid domain name");
        string canonical = string.Equals(domain, domainText, StringComparison.Ordinal) ? address : address[..(at + 1)] + domain;
        return new RoutingAddress(address, domain, canonical);
    }

    /// <summary>
    /// True when <paramref name="address"/> is an address the SMTP server would take as one (see <see cref="Parse"/>):
    /// the Minger server answers "unknown" for any other spelling, so that it never says "exists" for a string SMTP
    /// refuses (a full-width or invisible-character spelling of a hosted domain that the account key would fold).
    /// </summary>
    public static bool IsWellFormed(string address)
    {
        try
        {
            Parse(address);
            return true;
        }
        catch (DomainShareException) { return false; }
    }

    /// <summary>
    /// Lower-case ASCII names take a fast path; everything else (upper case aside) goes through <see cref="Names.TryNormalizeDnsName"/>
    /// and must already be written as the name it gives (<see cref="SpellsName"/>).
    /// </summary>
    private static string? NormalizeDomain(string domain)
    {
        if (IsPlainAsciiName(domain, out bool hasUpper))
            return hasUpper ? domain.ToLowerInvariant() : domain;
        string? normalized = Names.TryNormalizeDnsName(domain, out _);
        return normalized is not null && SpellsName(domain, normalized) ? normalized : null;
    }

    /// <summary>
    /// True when <paramref name="given"/> is <paramref name="normalized"/> label for label, as a domain in an address must
    /// be (RFC 6531 §3.2, RFC 5890 §2.3.2.1): an ASCII label (letters, digits and hyphens, or an A-label: IDNA has checked
    /// it), or the U-label itself up to case and canonical composition. IDNA's mapping of typed input (UTS #46) also turns
    /// full-width letters, ideographic full stops, compatibility letters such as ℯ and invisible characters (zero-width
    /// space, soft hyphen) into a name; in an address such a spelling is not a domain name but a string that looks like
    /// one or hides one, and it is refused as an invalid address rather than taken for a hosted domain (the open-relay
    /// battery, tests/DomainShare.EndToEnd.Tests/Hardening/OpenRelayTests.cs, tries them).
    /// </summary>
    private static bool SpellsName(string given, string normalized)
    {
        if (given.EndsWith('.')) given = given[..^1]; // the root label, which TryNormalizeDnsName allows
        string[] labels = normalized.Split('.'), givenLabels = given.Split('.');
        if (labels.Length != givenLabels.Length) return false;
        for (int i = 0; i < labels.Length; i++)
        {
            if (Ascii.IsValid(givenLabels[i])) continue;
            if (!string.Equals(givenLabels[i].Normalize(NormalizationForm.FormC), labels[i], StringComparison.OrdinalIgnoreCase)) return false;
        }
        return true;
    }

    private static bool IsPlainAsciiName(string name, out bool hasUpper)
    {
        hasUpper = false;
        if (name.Length is 0 or > 253) return false;
        int labelStart = 0;
        bool lastLabelNumeric = true;
        for (int i = 0; i <= name.Length; i++)
        {
            if (i == name.Length || name[i] == '.')
            {
                int length = i - labelStart;
                if (length is 0 or > 63) return false;
                if (name[labelStart] == '-' || name[i - 1] == '-') return false;
                if (length >= 4 && (name[labelStart + 2] == '-' && name[labelStart + 3] == '-')) return false; // xn-- and friends: the slow path
                lastLabelNumeric = true;
                for (int j = labelStart; j < i; j++)
                    if (!char.IsAsciiDigit(name[j])) { lastLabelNumeric = false; break; }
                labelStart = i + 1;
                continue;
            }
            char c = name[i];
            if (c is >= 'A' and <= 'Z') hasUpper = true;
            else if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-')) return false;
        }
        return !lastLabelNumeric;
    }

    private static DomainShareException Invalid(string? address, string why)
        => new(ErrorIds.InvalidAddress, ErrorKind.InvalidArgument, $"'{address}' is not a valid mail address: {why}.",
               "Give a full address such as user@example.com.", address);
}
