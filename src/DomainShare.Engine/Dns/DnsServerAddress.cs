using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.DnsRecords;

/// <summary>The DNS server a check asks: an IP address with an optional port (<c>192.0.2.53</c>, <c>127.0.0.1:5353</c>, <c>::1</c>, <c>[2001:db8::53]:53</c>).</summary>
public static class DnsServerAddress
{
    public static IPEndPoint Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw Invalid(text, "it is empty");
        string s = text.Trim();
        string host;
        string? port = null;
        if (s.StartsWith('['))
        {
            int close = s.IndexOf(']');
            if (close < 0)
                throw Invalid(text, "the closing bracket of the IPv6 address is missing");
            host = s[1..close];
            string rest = s[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                    throw Invalid(text, "only ':port' may follow the bracketed IPv6 address");
                port = rest[1..];
            }
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
                throw Invalid(text, $"'{host}' is not an IPv6 address");
            return new IPEndPoint(v6, Port(port, text));
        }
        int colons = s.Count(c => c == ':');
        if (colons > 1)
        {
            // A bare IPv6 address: no port can follow it without brackets.
            if (!IPAddress.TryParse(s, out var bare) || bare.AddressFamily != AddressFamily.InterNetworkV6 || s.Contains('%'))
                throw Invalid(text, $"'{s}' is not an IPv6 address (write a port as [2001:db8::53]:53)");
            return new IPEndPoint(bare, MxDefaults.DnsPort);
        }
        host = s;
        if (colons == 1)
        {
            int colon = s.IndexOf(':');
            host = s[..colon];
            port = s[(colon + 1)..];
        }
        if (!Endpoint.IsDottedQuad(host) || !IPAddress.TryParse(host, out var v4))
            throw Invalid(text, $"'{host}' is not an IP address (a DNS server is given by address, so that no other DNS lookup is needed to reach it)");
        return new IPEndPoint(v4, Port(port, text));
    }

    private static int Port(string? text, string? whole)
    {
        if (text is null) return MxDefaults.DnsPort;
        if (text.Length is 0 or > 5 || !text.All(char.IsAsciiDigit)
            || int.Parse(text, CultureInfo.InvariantCulture) is < 1 or > 65535)
            throw Invalid(whole, $"'{text}' is not a port from 1 to 65535");
        return int.Parse(text, CultureInfo.InvariantCulture);
    }

    private static DomainShareException Invalid(string? text, string why)
        => new(ErrorIds.InvalidDnsServer, ErrorKind.InvalidArgument, $"'{text}' is not a valid DNS server: {why}.",
               "Give the DNS server's IP address, optionally with a port: 192.0.2.53, 127.0.0.1:5353, ::1 or [2001:db8::53]:53.", text);

    /// <summary>The address as the check reports it: <c>127.0.0.1:5353</c>, <c>[::1]:53</c>.</summary>
    public static string Format(IPEndPoint endpoint)
        => endpoint.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{endpoint.Address}]:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{endpoint.Address}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
}
