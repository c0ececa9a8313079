using System.Globalization;
using System.Net;

namespace DomainShare.Engine.Configuration;

/// <summary>An IP address or a network in CIDR notation (<c>192.0.2.0/24</c>, <c>2001:db8::/32</c>).</summary>
public readonly record struct NetworkRange(IPAddress Network, int PrefixLength)
{
    public static bool TryParse(string? text, out NetworkRange range)
    {
        range = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        if (addressText.StartsWith('[') && addressText.EndsWith(']')) addressText = addressText[1..^1];
        if (addressText.Contains('%') || !IPAddress.TryParse(addressText, out var address)) return false;
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !Endpoint.IsDottedQuad(addressText)) return false;
        int max = address.GetAddressBytes().Length * 8;
        int prefix = max;
        if (slash >= 0 && (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max))
            return false;
        // ::ffff:192.0.2.0/120 is the IPv4 network 192.0.2.0/24; Contains sees mapped clients as IPv4, so keep it as IPv4.
        if (address.IsIPv4MappedToIPv6 && prefix >= 96) (address, prefix) = (address.MapToIPv4(), prefix - 96);
        range = new NetworkRange(Mask(address, prefix), prefix);
        return true;
    }

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int bits = Math.Clamp(prefix - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bits));
        }
        return new IPAddress(bytes);
    }

    public bool Contains(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != Network.AddressFamily) return false;
        return Mask(address, PrefixLength).Equals(Network);
    }

    public override string ToString()
        => PrefixLength == Network.GetAddressBytes().Length * 8 ? Network.ToString() : $"{Network}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";
}
