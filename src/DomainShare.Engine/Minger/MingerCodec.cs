using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Unicode;

namespace DomainShare.Engine.Minger;

/// <summary>The status digit of a Minger reply.</summary>
public enum MingerStatus : byte
{
    /// <summary>0: invalid request (malformed query).</summary>
    Invalid = 0,
    /// <summary>1: access denied (source address not allowed).</summary>
    AccessDenied = 1,
    /// <summary>2: credentials missing or wrong.</summary>
    BadCredentials = 2,
    /// <summary>3: the address does not exist here.</summary>
    Unknown = 3,
    /// <summary>4: the address exists here but cannot receive mail (disabled, over quota, being created).</summary>
    CannotReceive = 4,
    /// <summary>5: the address exists here and accepts mail.</summary>
    Exists = 5,
}

/// <summary>A parsed Minger query: the mailbox exactly as received, the digest if any, and the tags (ignored when unknown).</summary>
public sealed record MingerQuery(string Mailbox, string? Digest, IReadOnlyList<KeyValuePair<string, string>> Tags)
{
    public bool IsProbe => Mailbox == MingerCodec.Probe;

    /// <summary>True when another server forwarded this query for a gateway (<see cref="MingerCodec.ForwardedTag"/>): it is never forwarded again.</summary>
    public bool IsForwarded => Tags.Any(t => t.Key == MingerCodec.ForwardedTag);
}

/// <summary>
/// The one place where the Minger wire format lives (see docs/minger-protocol.md): query and reply syntax, the digest,
/// size limits. Parsing never throws: malformed input yields false.
/// </summary>
public static class MingerCodec
{
    public const int MaxDatagramBytes = 1024;
    public const string Probe = "*";
    public const int DigestLength = 24;
    private const string DigestTag = "d=";

    /// <summary>
    /// The tag a server adds to the queries of a gateway lookup (a non-peer's query it checks against its peers). A server
    /// never forwards a query that carries it, so a forwarded query travels one hop at most, whatever the source addresses
    /// look like (several servers on one host, multi-homed servers, NAT). Servers that do not know the tag ignore it.
    /// </summary>
    public const string ForwardedTag = "fwd";

    /// <summary>The tags of a forwarded query: <c>fwd=1</c>.</summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> ForwardedTags = [new(ForwardedTag, "1")];
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary><c>Base64(MD5(UTF8(secret + ":" + mailbox)))</c>, always 24 characters.</summary>
    public static string ComputeDigest(string secret, string mailbox)
    {
        Span<byte> hash = stackalloc byte[MD5.HashSizeInBytes];
        DigestBytes(secret, mailbox, hash);
        return Convert.ToBase64String(hash);
    }

    private static void DigestBytes(string secret, string mailbox, Span<byte> hash)
    {
        int length = Encoding.UTF8.GetByteCount(secret) + 1 + Encoding.UTF8.GetByteCount(mailbox);
        byte[]? rented = length > 512 ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> input = rented ?? stackalloc byte[512];
        int n = Encoding.UTF8.GetBytes(secret, input);
        input[n++] = (byte)':';
        n += Encoding.UTF8.GetBytes(mailbox, input[n..]);
        MD5.HashData(input[..n], hash);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }

    /// <summary>Checks <paramref name="digest"/> against the secret in constant time.</summary>
    public static bool VerifyDigest(string secret, string mailbox, string? digest)
    {
        if (digest is null || digest.Length != DigestLength) return false;
        Span<byte> expected = stackalloc byte[MD5.HashSizeInBytes];
        DigestBytes(secret, mailbox, expected);
        Span<byte> given = stackalloc byte[MD5.HashSizeInBytes + 2];
        if (!Convert.TryFromBase64String(digest, given, out int written) || written != MD5.HashSizeInBytes) return false;
        return CryptographicOperations.FixedTimeEquals(expected, given[..written]);
    }

    /// <summary>
    /// True for <c>*</c> and for <c>local@domain</c> with a non-empty local part and domain, no white space or control
    /// characters, and no unpaired surrogate (UTF-8 cannot carry one: it would go on the wire as U+FFFD, another mailbox).
    /// </summary>
    public static bool IsValidMailbox(string mailbox)
    {
        if (mailbox == Probe) return true;
        if (mailbox.Length is 0 or > MaxDatagramBytes) return false;
        int at = mailbox.LastIndexOf('@');
        if (at <= 0 || at == mailbox.Length - 1) return false;
        return IsPrintableText(mailbox);
    }

    /// <summary>No white space, no control character, every surrogate paired: text that UTF-8 carries unchanged as one token.</summary>
    private static bool IsPrintableText(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c) || char.IsControl(c)) return false;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(c)) return false;
        }
        return true;
    }

    /// <summary>Writes a query for <paramref name="mailbox"/>, signed when <paramref name="secret"/> is given.</summary>
    public static byte[] EncodeQuery(string mailbox, string? secret, IEnumerable<KeyValuePair<string, string>>? tags = null)
    {
        if (!IsValidMailbox(mailbox))
            throw new ArgumentException($"'{mailbox}' is not a mailbox Minger can ask about.", nameof(mailbox));
        var text = new StringBuilder(mailbox);
        if (secret is not null) text.Append(' ').Append(DigestTag).Append(ComputeDigest(secret, mailbox));
        if (tags is not null)
            foreach (var (name, value) in tags)
            {
                if (!IsTagPart(name, isValue: false) || !IsTagPart(value, isValue: true) || name == "d")
                    throw new ArgumentException($"'{name}={value}' is not a valid tag.", nameof(tags));
                text.Append(' ').Append(name).Append('=').Append(value);
            }
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        if (bytes.Length > MaxDatagramBytes)
            throw new ArgumentException($"The query would be {bytes.Length} bytes; Minger allows {MaxDatagramBytes}.", nameof(mailbox));
        return bytes;
    }

    /// <summary>A tag name is non-empty without '='; a value may be empty and may hold '=' (the first '=' splits). Neither holds white space.</summary>
    private static bool IsTagPart(string s, bool isValue)
        => (isValue || (s.Length > 0 && !s.Contains('='))) && IsPrintableText(s);

    /// <summary>Parses a query datagram. False (answer status 0) for anything malformed; never throws.</summary>
    public static bool TryParseQuery(ReadOnlySpan<byte> datagram, out MingerQuery? query)
    {
        query = null;
        if (datagram.Length == 0 || datagram.Length > MaxDatagramBytes) return false;
        datagram = TrimLineEnd(datagram);
        // Checked first rather than caught: a flood of invalid UTF-8 must not cost an exception per datagram.
        if (!Utf8.IsValid(datagram)) return false;
        string text = StrictUtf8.GetString(datagram);
        var tokens = text.Split(' ');
        string mailbox = tokens[0];
        if (!IsValidMailbox(mailbox)) return false;
        string? digest = null;
        List<KeyValuePair<string, string>>? tags = null;
        for (int i = 1; i < tokens.Length; i++)
        {
            string token = tokens[i];
            if (token.Length == 0 || token.Any(char.IsControl)) return false;
            if (token.StartsWith(DigestTag, StringComparison.Ordinal))
            {
                if (digest is not null) return false;
                digest = token[DigestTag.Length..];
                if (digest.Length != DigestLength || !Base64.IsValid(digest, out int decoded) || decoded != MD5.HashSizeInBytes) return false;
                continue;
            }
            int eq = token.IndexOf('=');
            if (eq <= 0) return false;
            (tags ??= []).Add(new(token[..eq], token[(eq + 1)..]));
        }
        query = new MingerQuery(mailbox, digest, (IReadOnlyList<KeyValuePair<string, string>>?)tags ?? []);
        return true;
    }

    /// <summary>The first space-separated token of a datagram, for echoing in a status-0 reply; empty when it is not printable UTF-8.</summary>
    public static string EchoToken(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length > MaxDatagramBytes) datagram = datagram[..MaxDatagramBytes];
        datagram = TrimLineEnd(datagram);
        int space = datagram.IndexOf((byte)' ');
        if (space >= 0) datagram = datagram[..space];
        if (!Utf8.IsValid(datagram)) return "";
        var token = StrictUtf8.GetString(datagram);
        return token.Any(char.IsControl) ? "" : token;
    }

    /// <summary>Writes <c>mailbox SP status</c> into <paramref name="destination"/>; returns the byte count.</summary>
    public static int WriteReply(string mailbox, MingerStatus status, Span<byte> destination)
    {
        int n = Encoding.UTF8.GetBytes(mailbox, destination);
        destination[n++] = (byte)' ';
        destination[n++] = (byte)('0' + (byte)status);
        return n;
    }

    public static byte[] EncodeReply(string mailbox, MingerStatus status)
    {
        var buffer = new byte[Encoding.UTF8.GetByteCount(mailbox) + 2];
        WriteReply(mailbox, status, buffer);
        return buffer;
    }

    /// <summary>Parses a reply datagram; false for anything that is not <c>mailbox SP digit(0-5)</c>.</summary>
    public static bool TryParseReply(ReadOnlySpan<byte> datagram, out string mailbox, out MingerStatus status)
    {
        mailbox = "";
        status = MingerStatus.Invalid;
        if (datagram.Length < 2 || datagram.Length > MaxDatagramBytes + 2) return false;
        datagram = TrimLineEnd(datagram);
        if (datagram.Length < 2 || datagram[^2] != (byte)' ') return false;
        byte digit = datagram[^1];
        if (digit is < (byte)'0' or > (byte)'5') return false;
        if (!Utf8.IsValid(datagram[..^2])) return false;
        mailbox = StrictUtf8.GetString(datagram[..^2]);
        status = (MingerStatus)(digit - '0');
        return true;
    }

    private static ReadOnlySpan<byte> TrimLineEnd(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0 && data[^1] == (byte)'\n') data = data[..^1];
        if (data.Length > 0 && data[^1] == (byte)'\r') data = data[..^1];
        return data;
    }
}
