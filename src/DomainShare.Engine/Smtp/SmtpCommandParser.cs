using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace DomainShare.Engine.Smtp;

/// <summary>The commands the server knows. <see cref="NotImplemented"/>: recognised, not offered (502); <see cref="Unknown"/>: 500.</summary>
internal enum SmtpVerb : byte
{
    Unknown,
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    NotImplemented,
}

/// <summary>What bytes a command line holds.</summary>
internal enum LineContent : byte
{
    /// <summary>Printable ASCII and spaces only.</summary>
    Ascii,
    /// <summary>Well-formed UTF-8 with at least one non-ASCII character, no control characters.</summary>
    Utf8,
    /// <summary>A NUL, a bare CR, a TAB or another control character.</summary>
    Control,
    /// <summary>Bytes above 127 that are not UTF-8.</summary>
    InvalidUtf8,
}

/// <summary>Why a MAIL or RCPT argument was refused; the session turns each into its reply.</summary>
internal enum ArgumentError : byte
{
    None,
    /// <summary>501 5.5.4: not <c>FROM:&lt;...&gt;</c> / <c>TO:&lt;...&gt;</c>.</summary>
    Syntax,
    /// <summary>501 5.1.7 (sender) / 5.1.3 (recipient): the address is not an RFC 5321 mailbox.</summary>
    BadAddress,
    /// <summary>501 5.1.7 / 5.1.3: local part over 64 or domain over 255 octets.</summary>
    AddressTooLong,
    /// <summary>553 5.6.7 (RFC 6531): a UTF-8 address in a transaction without SMTPUTF8.</summary>
    NonAsciiAddress,
    /// <summary>555 5.5.4: a parameter this server does not offer.</summary>
    UnknownParameter,
    /// <summary>501 5.5.4: a known parameter with a bad value, or given twice.</summary>
    BadParameter,
}

internal enum SmtpBodyKind : byte
{
    Unspecified,
    SevenBit,
    EightBitMime,
}

/// <summary>The parameters of MAIL FROM that the server offers (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531 SMTPUTF8).</summary>
internal struct MailParameters
{
    public long? Size;
    public SmtpBodyKind Body;
    public bool SmtpUtf8;
}

/// <summary>
/// RFC 5321 command syntax, on the bytes of one command line (without its CRLF): the verb, the paths of MAIL and RCPT
/// with their parameters, and the EHLO name. No state, no I/O, no allocation except the address strings it returns.
/// </summary>
internal static class SmtpCommandParser
{
    /// <summary>RFC 5321 §4.5.3.1.1 and .2: octets of a local part and of a domain.</summary>
    public const int MaxLocalPartBytes = 64;
    public const int MaxDomainBytes = 255;
    private const int StackChars = 512;

    public static LineContent Classify(ReadOnlySpan<byte> line)
    {
        if (line.IndexOfAnyExceptInRange((byte)0x20, (byte)0x7E) < 0) return LineContent.Ascii;
        if (line.IndexOfAnyInRange((byte)0x00, (byte)0x1F) >= 0 || line.Contains((byte)0x7F)) return LineContent.Control;
        return Utf8.IsValid(line) ? LineContent.Utf8 : LineContent.InvalidUtf8;
    }

    /// <summary>Splits off the verb (case-insensitive) and returns the rest without its surrounding spaces.</summary>
    public static SmtpVerb ParseVerb(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> argument)
    {
        int space = line.IndexOf((byte)' ');
        var word = space < 0 ? line : line[..space];
        argument = space < 0 ? default : line[(space + 1)..].Trim((byte)' ');
        if (word.Length == 8) return Ascii.EqualsIgnoreCase(word, "STARTTLS"u8) ? SmtpVerb.StartTls : SmtpVerb.Unknown;
        if (word.Length != 4) return SmtpVerb.Unknown;
        // Upper-casing by clearing bit 5 maps only letters onto letters, so no other bytes can match a verb.
        return (BinaryPrimitives.ReadUInt32BigEndian(word) & 0xDFDFDFDFu) switch
        {
            0x48454C4F => SmtpVerb.Helo,
            0x45484C4F => SmtpVerb.Ehlo,
            0x4D41494C => SmtpVerb.Mail,
            0x52435054 => SmtpVerb.Rcpt,
            0x44415441 => SmtpVerb.Data,
            0x52534554 => SmtpVerb.Rset,
            0x4E4F4F50 => SmtpVerb.Noop,
            0x51554954 => SmtpVerb.Quit,
            0x56524659 => SmtpVerb.Vrfy,
            0x4558504E => SmtpVerb.Expn,
            0x48454C50 => SmtpVerb.Help,
            0x41555448 or 0x42444154 or 0x4554524E or 0x5455524E or 0x53454E44 or 0x534F4D4C or 0x53414D4C => SmtpVerb.NotImplemented, // AUTH BDAT ETRN TURN SEND SOML SAML
            _ => SmtpVerb.Unknown,
        };
    }

    /// <summary>
    /// The argument of EHLO/HELO: a domain or an address literal, given as printable ASCII. Leniently, a name may hold
    /// underscores (Windows host names do); nothing that could break the comment of our Received: header is accepted.
    /// </summary>
    public static bool TryParseHeloName(ReadOnlySpan<byte> argument, out string name)
    {
        name = "";
        if (argument.IsEmpty || argument.Length > MaxDomainBytes) return false;
        if (argument[0] == (byte)'[')
        {
            if (argument.Length < 3 || argument[^1] != (byte)']') return false;
            foreach (byte b in argument[1..^1])
                if (!IsDomainLiteralChar(b)) return false;
        }
        else
        {
            foreach (byte b in argument)
                if (!(IsAsciiLetterOrDigit(b) || b is (byte)'-' or (byte)'.' or (byte)'_' or (byte)':')) return false;
        }
        name = Encoding.ASCII.GetString(argument);
        return true;
    }

    /// <summary>MAIL's argument: <c>FROM:&lt;reverse-path&gt; [params]</c>. <paramref name="reversePath"/> is null for the null path <c>&lt;&gt;</c>.</summary>
    /// <param name="extended">The session said EHLO: parameters are allowed at all.</param>
    public static ArgumentError ParseMail(ReadOnlySpan<byte> argument, bool extended, out string? reversePath, out MailParameters parameters)
    {
        reversePath = null;
        parameters = default;
        if (!StartsWith(argument, "FROM:"u8)) return ArgumentError.Syntax;
        var bytes = argument[5..];
        char[]? rented = null;
        Span<char> buffer = bytes.Length <= StackChars ? stackalloc char[StackChars] : (rented = ArrayPool<char>.Shared.Rent(bytes.Length));
        try
        {
            var chars = buffer[..Encoding.UTF8.GetChars(bytes, buffer)];
            var error = ParsePath(chars, allowNull: true, allowPostmaster: false, out var path, out int end, out bool nonAscii);
            if (error != ArgumentError.None) return error;
            var rest = chars[end..];
            if (!rest.IsEmpty)
            {
                if (rest[0] != ' ') return ArgumentError.Syntax;
                if (!extended) return ArgumentError.UnknownParameter;
                error = ParseMailParameters(rest, out parameters);
                if (error != ArgumentError.None) return error;
            }
            if (nonAscii && !parameters.SmtpUtf8) return ArgumentError.NonAsciiAddress;
            reversePath = path;
            return ArgumentError.None;
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>RCPT's argument: <c>TO:&lt;forward-path&gt;</c>; a source route is dropped (RFC 5321 §4.1.1.3), <c>&lt;Postmaster&gt;</c> is allowed.</summary>
    /// <param name="utf8">The transaction was started with SMTPUTF8: the address may be UTF-8.</param>
    public static ArgumentError ParseRcpt(ReadOnlySpan<byte> argument, bool utf8, out string recipient)
    {
        recipient = "";
        if (!StartsWith(argument, "TO:"u8)) return ArgumentError.Syntax;
        var bytes = argument[3..];
        char[]? rented = null;
        Span<char> buffer = bytes.Length <= StackChars ? stackalloc char[StackChars] : (rented = ArrayPool<char>.Shared.Rent(bytes.Length));
        try
        {
            var chars = buffer[..Encoding.UTF8.GetChars(bytes, buffer)];
            var error = ParsePath(chars, allowNull: false, allowPostmaster: true, out var path, out int end, out bool nonAscii);
            if (error != ArgumentError.None) return error;
            var rest = chars[end..];
            if (!rest.IsEmpty)
                return rest[0] == ' ' ? ArgumentError.UnknownParameter : ArgumentError.Syntax; // no RCPT parameters are offered (no DSN)
            if (nonAscii && !utf8) return ArgumentError.NonAsciiAddress;
            recipient = path!;
            return ArgumentError.None;
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Parses <c>"&lt;" [ A-d-l ":" ] Mailbox "&gt;"</c> at the start of <paramref name="s"/> (leading spaces allowed, as
    /// many clients send <c>MAIL FROM: &lt;...&gt;</c>). Returns the mailbox as written (a quoted local part stays quoted),
    /// without the route. <paramref name="end"/> is the index after the closing bracket.
    /// </summary>
    public static ArgumentError ParsePath(ReadOnlySpan<char> s, bool allowNull, bool allowPostmaster, out string? mailbox, out int end, out bool nonAscii)
    {
        mailbox = null;
        end = 0;
        nonAscii = false;
        int i = 0;
        while (i < s.Length && s[i] == ' ') i++;
        if (i >= s.Length || s[i] != '<') return ArgumentError.Syntax;
        i++;
        if (i < s.Length && s[i] == '>')
        {
            if (!allowNull) return ArgumentError.BadAddress;
            end = i + 1;
            return ArgumentError.None;
        }
        if (i < s.Length && s[i] == '@')
        {
            // A source route: syntax checked, content ignored.
            while (true)
            {
                if (i >= s.Length || s[i] != '@') return ArgumentError.BadAddress;
                i = ScanDomain(s, i + 1, ref nonAscii);
                if (i < 0) return ArgumentError.BadAddress;
                if (i < s.Length && s[i] == ',') { i++; continue; }
                if (i < s.Length && s[i] == ':') { i++; break; }
                return ArgumentError.BadAddress;
            }
        }
        int localStart = i;
        i = i < s.Length && s[i] == '"' ? ScanQuotedString(s, i, ref nonAscii) : ScanDotString(s, i, ref nonAscii);
        if (i < 0) return ArgumentError.BadAddress;
        var local = s[localStart..i];
        if (allowPostmaster && i < s.Length && s[i] == '>' && local.Equals("postmaster", StringComparison.OrdinalIgnoreCase))
        {
            mailbox = new string(local);
            end = i + 1;
            return ArgumentError.None;
        }
        if (i >= s.Length || s[i] != '@') return ArgumentError.BadAddress;
        int domainStart = i + 1;
        i = domainStart < s.Length && s[domainStart] == '[' ? ScanAddressLiteral(s, domainStart) : ScanDomain(s, domainStart, ref nonAscii);
        if (i < 0 || i >= s.Length || s[i] != '>') return ArgumentError.BadAddress;
        var domain = s[domainStart..i];
        if (ByteCount(local) > MaxLocalPartBytes || ByteCount(domain) > MaxDomainBytes) return ArgumentError.AddressTooLong;
        mailbox = new string(s[localStart..i]);
        end = i + 1;
        return ArgumentError.None;

        static int ByteCount(ReadOnlySpan<char> text) => text.ContainsAnyExceptInRange('\0', '\x7F') ? Encoding.UTF8.GetByteCount(text) : text.Length;
    }

    /// <summary>The MAIL parameters after the path: <c>SP keyword[=value]</c>, each at most once.</summary>
    public static ArgumentError ParseMailParameters(ReadOnlySpan<char> s, out MailParameters parameters)
    {
        parameters = default;
        bool sawBody = false;
        while (!s.IsEmpty)
        {
            int space = s.IndexOf(' ');
            var token = space < 0 ? s : s[..space];
            s = space < 0 ? default : s[(space + 1)..];
            if (token.IsEmpty) continue;
            int eq = token.IndexOf('=');
            var key = eq < 0 ? token : token[..eq];
            var value = eq < 0 ? default : token[(eq + 1)..];
            if (key.IsEmpty || !char.IsAsciiLetterOrDigit(key[0])) return ArgumentError.Syntax;
            foreach (char c in key)
                if (!char.IsAsciiLetterOrDigit(c) && c != '-') return ArgumentError.Syntax;
            if (eq >= 0)
            {
                if (value.IsEmpty) return ArgumentError.BadParameter;
                foreach (char c in value)
                    if (c is < '!' or > '~' or '=') return ArgumentError.BadParameter;
            }
            if (key.Equals("SIZE", StringComparison.OrdinalIgnoreCase))
            {
                if (parameters.Size is not null || eq < 0 || value.Length > 18 || !IsDigits(value)
                    || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long size))
                    return ArgumentError.BadParameter;
                parameters.Size = size;
            }
            else if (key.Equals("BODY", StringComparison.OrdinalIgnoreCase))
            {
                if (sawBody || eq < 0) return ArgumentError.BadParameter;
                sawBody = true;
                if (value.Equals("7BIT", StringComparison.OrdinalIgnoreCase)) parameters.Body = SmtpBodyKind.SevenBit;
                else if (value.Equals("8BITMIME", StringComparison.OrdinalIgnoreCase)) parameters.Body = SmtpBodyKind.EightBitMime;
                else return ArgumentError.BadParameter;
            }
            else if (key.Equals("SMTPUTF8", StringComparison.OrdinalIgnoreCase))
            {
                if (parameters.SmtpUtf8 || eq >= 0) return ArgumentError.BadParameter;
                parameters.SmtpUtf8 = true;
            }
            else
            {
                return ArgumentError.UnknownParameter;
            }
        }
        return ArgumentError.None;
    }

    private static bool IsDigits(ReadOnlySpan<char> s) => !s.IsEmpty && !s.ContainsAnyExceptInRange('0', '9');

    /// <summary>Dot-string: Atom *("." Atom); atext, and any non-ASCII character (flagged).</summary>
    private static int ScanDotString(ReadOnlySpan<char> s, int i, ref bool nonAscii)
    {
        bool atomStart = true;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '.')
            {
                if (atomStart) return -1;
                atomStart = true;
            }
            else if (IsAtext(c))
            {
                atomStart = false;
            }
            else if (c >= 0x80)
            {
                nonAscii = true;
                atomStart = false;
            }
            else break;
        }
        return atomStart ? -1 : i;
    }

    /// <summary>Quoted-string: DQUOTE *(qtextSMTP / "\" %d32-126) DQUOTE; returns the index after the closing quote.</summary>
    private static int ScanQuotedString(ReadOnlySpan<char> s, int i, ref bool nonAscii)
    {
        for (i++; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '"') return i + 1;
            if (c == '\\')
            {
                if (++i >= s.Length || s[i] is < ' ' or > '~') return -1;
            }
            else if (c >= 0x80) nonAscii = true;
            else if (c is < ' ' or > '~') return -1;
        }
        return -1;
    }

    /// <summary>Domain: sub-domain *("." sub-domain), each Let-dig [Ldh-str], at most 63 characters; U-labels flagged.</summary>
    private static int ScanDomain(ReadOnlySpan<char> s, int i, ref bool nonAscii)
    {
        int labelLength = 0;
        bool lastWasHyphen = false;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '.')
            {
                if (labelLength == 0 || lastWasHyphen) return -1;
                labelLength = 0;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c >= 0x80)
            {
                if (c >= 0x80) nonAscii = true;
                if (++labelLength > 63) return -1;
                lastWasHyphen = false;
            }
            else if (c == '-')
            {
                if (labelLength == 0) return -1;
                labelLength++;
                lastWasHyphen = true;
            }
            else break;
        }
        return labelLength == 0 || lastWasHyphen ? -1 : i;
    }

    /// <summary>address-literal: "[" 1*dcontent "]"; the form of the content (IPv4, IPv6:...) is the policy's business.</summary>
    private static int ScanAddressLiteral(ReadOnlySpan<char> s, int i)
    {
        int start = ++i;
        for (; i < s.Length && s[i] != ']'; i++)
            if (s[i] is < '!' or > '~' or '[' or '\\') return -1;
        return i < s.Length && i > start ? i + 1 : -1;
    }

    private static bool IsAtext(char c) => char.IsAsciiLetterOrDigit(c) || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '/' or '=' or '?' or '^' or '_' or '`' or '{' or '|' or '}' or '~';

    private static bool IsAsciiLetterOrDigit(byte b) => char.IsAsciiLetterOrDigit((char)b);

    private static bool IsDomainLiteralChar(byte b) => b is >= 33 and <= 126 and not (byte)'[' and not (byte)']' and not (byte)'\\';

    private static bool StartsWith(ReadOnlySpan<byte> s, ReadOnlySpan<byte> prefix) => s.Length >= prefix.Length && Ascii.EqualsIgnoreCase(s[..prefix.Length], prefix);
}
