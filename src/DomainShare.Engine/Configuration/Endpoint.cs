using System.Globalization;
using System.Net;

namespace DomainShare.Engine.Configuration;

/// <summary>A listener address: an IPv4 address or a bracketed IPv6 address, a colon and a port (<c>0.0.0.0:25</c>, <c>[::]:4069</c>).</summary>
public sealed record Endpoint(IPAddress Address, int Port)
{
    public static Endpoint Parse(string? text, string field)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw Invalid(text, field, "it is empty");
        text = text.Trim();
        string host;
        string portText;
        if (text.StartsWith('['))
        {
            int close = text.IndexOf(']');
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
                throw Invalid(text, field, "a bracketed IPv6 address must be followed by ':port', as in [::]:4069");
            host = text[1..close];
            portText = text[(close + 2)..];
            if (!IPAddress.TryParse(host, out var v6) || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
                throw Invalid(text, field, $"'{host}' is not an IPv6 address");
            return new Endpoint(v6, ParsePort(portText, text, field));
        }
        int colon = text.LastIndexOf(':');
        if (colon < 0)
            throw Invalid(text, field, "the port is missing; write address:port, as in 0.0.0.0:25");
        if (text.IndexOf(':') != colon)
            throw Invalid(text, field, "an IPv6 address must be written in brackets, as in [::1]:25");
        host = text[..colon];
        portText = text[(colon + 1)..];
        if (!IsDottedQuad(host) || !IPAddress.TryParse(host, out var v4))
            throw Invalid(text, field, $"'{host}' is not an IP address to listen on");
        return new Endpoint(v4, ParsePort(portText, text, field));
    }

    internal static bool IsDottedQuad(string host)
    {
        var parts = host.Split('.');
        // A leading zero is refused: IPAddress.Parse reads 010 as octal (8), never what an administrator meant.
        return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit) && (p.Length == 1 || p[0] != '0')
                                                 && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
    }

    internal static int ParsePort(string portText, string whole, string field)
    {
        if (portText.Length == 0 || portText.Length > 5 || !portText.All(char.IsAsciiDigit))
            throw new DomainShareException(ErrorIds.InvalidPort, ErrorKind.InvalidArgument,
                $"'{whole}' has an invalid port '{portText}' in {field}: a port is a number from 1 to 65535.",
                "Give a port from 1 to 65535.", whole);
        int port = int.Parse(portText, CultureInfo.InvariantCulture);
        if (port is < 1 or > 65535)
            throw new DomainShareException(ErrorIds.InvalidPort, ErrorKind.InvalidArgument,
                $"'{whole}' has port {port} in {field}: a port is a number from 1 to 65535.",
                "Give a port from 1 to 65535.", whole);
        return port;
    }

    private static DomainShareException Invalid(string? text, string field, string why)
        => new(ErrorIds.InvalidEndpoint, ErrorKind.InvalidArgument,
               $"'{text}' is not a valid endpoint for {field}: {why}.",
               "Write the endpoint as address:port, for example 0.0.0.0:25 or [::]:4069.", text);

    public override string ToString()
        => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{Address}]:{Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{Address}:{Port.ToString(CultureInfo.InvariantCulture)}";
}
