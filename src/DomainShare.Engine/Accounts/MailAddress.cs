using System.Text;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Accounts;

/// <summary>
/// A mail address as an account is created with: a local part (dot-atom or quoted string, internationalised per
/// RFC 6531) and a domain. Kept as given; compared case-insensitively.
/// </summary>
public sealed record MailAddress(string LocalPart, string Domain)
{
    public const int MaxLength = 254;
    public const int MaxLocalPartBytes = 64;
    private const string AtomSpecials = "!#$%&'*+-/=?^_`{|}~";

    public string Address => $"{LocalPart}@{Domain}";

    public override string ToString() => Address;

    /// <summary>Parses and checks an address; throws InvalidAddress with the reason.</summary>
    public static MailAddress Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw Invalid(text, "it is empty");
        text = text.Trim();
        if (text.Length > MaxLength)
            throw Invalid(text, $"it is longer than {MaxLength} characters");
        int at = text.LastIndexOf('@');
        if (at <= 0 || at == text.Length - 1)
            throw Invalid(text, "it needs a local part, an @ and a domain, as in ann@example.com");
        string local = text[..at];
        string domainText = text[(at + 1)..];
        if (Encoding.UTF8.GetByteCount(local) > MaxLocalPartBytes)
            throw Invalid(text, $"the part before the @ is longer than {MaxLocalPartBytes} bytes");
        if (!(IsDotAtom(local) || IsQuotedString(local)))
            throw Invalid(text, $"'{local}' is not a valid local part (letters, digits, {AtomSpecials} and single dots, or a quoted string)");
        string domain;
        try { domain = Names.NormalizeDomainName(domainText); }
        catch (DomainShareException ex) { throw Invalid(text, ex.Message.TrimEnd('.'), ex); }
        return new MailAddress(local, domain);
    }

    private static bool IsAtomChar(char c) => char.IsAsciiLetterOrDigit(c) || AtomSpecials.Contains(c) || (c > 0x7F && !char.IsControl(c) && !char.IsWhiteSpace(c));

    private static bool IsDotAtom(string s)
        => s.Length > 0 && s[0] != '.' && s[^1] != '.' && !s.Contains("..", StringComparison.Ordinal) && s.All(c => c == '.' || IsAtomChar(c)) && !HasLoneSurrogate(s);

    private static bool IsQuotedString(string s)
    {
        if (s.Length < 3 || s[0] != '"' || s[^1] != '"') return false;
        for (int i = 1; i < s.Length - 1; i++)
        {
            char c = s[i];
            // White space, escaped or not, would make the address unaskable over Minger, where a space separates fields.
            if (c == '\\') { i++; if (i >= s.Length - 1 || char.IsControl(s[i]) || char.IsWhiteSpace(s[i])) return false; continue; }
            if (c == '"' || char.IsControl(c) || char.IsWhiteSpace(c)) return false;
        }
        return !HasLoneSurrogate(s);
    }

    private static bool HasLoneSurrogate(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }

    private static DomainShareException Invalid(string? text, string why, Exception? inner = null)
        => new(ErrorIds.InvalidAddress, ErrorKind.InvalidArgument, $"'{text}' is not a valid mail address: {why}.",
               "Give an address such as ann@example.com (international characters are allowed).", text, inner);
}
