using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace DomainShare.Engine.Configuration;

/// <summary>Validation and normalisation of host names, domain names and peer names.</summary>
public static class Names
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = true };

    /// <summary>Returns the lower-case form of a DNS host or domain name (internationalised names allowed), or null with the reason.</summary>
    public static string? TryNormalizeDnsName(string? name, out string reason)
    {
        reason = "";
        if (string.IsNullOrWhiteSpace(name)) { reason = "it is empty"; return null; }
        if (name.Any(char.IsWhiteSpace)) { reason = "it contains white space"; return null; }
        string trimmed = name.EndsWith('.') ? name[..^1] : name;
        if (trimmed.Length == 0) { reason = "it has no labels"; return null; }
        string ascii;
        try { ascii = Idn.GetAscii(trimmed); }
        catch (ArgumentException) { reason = "it is not a valid DNS name (letters, digits and hyphens in dot-separated labels)"; return null; }
        if (ascii.Length > 253) { reason = "it is longer than 253 characters"; return null; }
        foreach (var label in ascii.Split('.'))
        {
            if (label.Length is 0 or > 63) { reason = "each dot-separated label must have 1 to 63 characters"; return null; }
            if (label.StartsWith('-') || label.EndsWith('-')) { reason = $"label '{label}' starts or ends with a hyphen"; return null; }
            if (!label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')) { reason = $"label '{label}' holds characters other than letters, digits and hyphens"; return null; }
        }
        if (ascii.Split('.').Last().All(char.IsAsciiDigit)) { reason = "the last label is numeric (an IP address is not a DNS name here)"; return null; }
        // One spelling per name: 'xn--bcher-kva.example', 'BÜCHER.example' and full-width letters all give 'bücher.example'.
        try { return Idn.GetUnicode(ascii).ToLowerInvariant(); }
        catch (ArgumentException) { reason = "it is not a valid internationalised DNS name"; return null; }
    }

    public static string NormalizeServerName(string? name)
        => TryNormalizeDnsName(name, out var why) ?? throw new DomainShareException(ErrorIds.InvalidServerName, ErrorKind.InvalidArgument,
            $"'{name}' is not a valid server name: {why}.", "Give the server's fully qualified host name, for example mx1.example.com.", name);

    public static string NormalizeDomainName(string? name)
    {
        var normalized = TryNormalizeDnsName(name, out var why);
        if (normalized is not null && !normalized.Contains('.'))
        {
            normalized = null;
            why = "a mail domain has at least two labels, as in example.com";
        }
        return normalized ?? throw new DomainShareException(ErrorIds.InvalidDomainName, ErrorKind.InvalidArgument,
            $"'{name}' is not a valid domain name: {why}.", "Give a domain name such as example.com.", name);
    }

    /// <summary>
    /// Parses a peer name: <c>host</c>, <c>host:smtpPort</c>, an IPv4 address with an optional port, or a bracketed IPv6
    /// address with an optional port (<c>[2001:db8::1]:2525</c>). The port after the colon is the SMTP port, never the Minger port.
    /// </summary>
    public static (string Host, int? SmtpPort) ParsePeerName(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw InvalidPeer(text, "the name is empty");
        if (text.Any(char.IsWhiteSpace))
            throw InvalidPeer(text, "the name contains white space");
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0)
                throw InvalidPeer(text, "the closing bracket of the IPv6 address is missing");
            string inner = text[1..close];
            if (!IPAddress.TryParse(inner, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6 || inner.Contains('%'))
                throw InvalidPeer(text, $"'{inner}' is not an IPv6 address");
            string rest = text[(close + 1)..];
            int? port = null;
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                    throw InvalidPeer(text, "only ':port' may follow the bracketed IPv6 address");
                port = Endpoint.ParsePort(rest[1..], text, "the peer name");
            }
            return ("[" + v6 + "]", port);
        }
        int colons = text.Count(c => c == ':');
        if (colons > 1)
            throw InvalidPeer(text, "an IPv6 address must be written in brackets, as in [2001:db8::1] or [2001:db8::1]:2525");
        string host = text;
        int? smtpPort = null;
        if (colons == 1)
        {
            int colon = text.IndexOf(':');
            host = text[..colon];
            smtpPort = Endpoint.ParsePort(text[(colon + 1)..], text, "the peer name");
        }
        if (host.Length == 0)
            throw InvalidPeer(text, "the host part is empty");
        if (host.All(c => char.IsAsciiDigit(c) || c == '.'))
        {
            if (!Endpoint.IsDottedQuad(host))
                throw InvalidPeer(text, $"'{host}' is not a valid IPv4 address");
            return (IPAddress.Parse(host).ToString(), smtpPort);
        }
        var dns = TryNormalizeDnsName(host, out var why) ?? throw InvalidPeer(text, why);
        return (dns, smtpPort);
    }

    private static DomainShareException InvalidPeer(string? text, string why)
        => new(ErrorIds.InvalidPeerName, ErrorKind.InvalidArgument, $"'{text}' is not a valid peer name: {why}.",
               "Give a host name or IP address, optionally with the SMTP port: mail.example.com, mail.example.com:2525, 192.0.2.10 or [2001:db8::10]:25.", text);

    public static int ValidatePort(int port, string what)
        => port is >= 1 and <= 65535 ? port : throw new DomainShareException(ErrorIds.InvalidPort, ErrorKind.InvalidArgument,
            $"{port} is not a valid {what}: a port is a number from 1 to 65535.", "Give a port from 1 to 65535.", port);

    public static string ValidateSecret(string? secret, string what)
    {
        if (secret is null || secret.Length < Defaults.MinimumSecretLength)
            throw new DomainShareException(ErrorIds.InvalidSecret, ErrorKind.InvalidArgument,
                $"The {what} is too short: a Minger secret has at least {Defaults.MinimumSecretLength} characters (this one has {secret?.Length ?? 0}).",
                $"Use a secret of {Defaults.MinimumSecretLength} characters or more, shared with the other server.", null);
        if (secret.Any(char.IsControl))
            throw new DomainShareException(ErrorIds.InvalidSecret, ErrorKind.InvalidArgument,
                $"The {what} contains control characters.", "Use printable characters only.", null);
        return secret;
    }
}
