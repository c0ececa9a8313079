using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Configuration;

namespace DomainShare.Engine.Minger;

/// <summary>
/// A datagram's source IP as a 128-bit value, read straight from the received <see cref="SocketAddress"/> without
/// allocating. IPv4 (and IPv4 arriving on a dual-mode socket) is kept in its mapped form <c>::ffff:a.b.c.d</c>, so an
/// IPv4 client is one source whichever socket it reached. The IPv6 scope id is ignored.
/// </summary>
internal readonly struct SourceKey : IEquatable<SourceKey>
{
    private const ulong MappedPrefix = 0x0000_FFFF_0000_0000UL;

    public SourceKey(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    public ulong High { get; }
    public ulong Low { get; }

    public bool IsIPv4 => High == 0 && (Low & 0xFFFF_FFFF_0000_0000UL) == MappedPrefix;

    /// <summary>Reads the address of a received datagram. The native sockaddr layout puts the IPv4 address at byte 4 and the IPv6 address at byte 8 on every platform.</summary>
    public static SourceKey From(SocketAddress address)
    {
        var bytes = address.Buffer.Span;
        return address.Family switch
        {
            AddressFamily.InterNetwork when address.Size >= 8 => new(0, MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(bytes[4..])),
            AddressFamily.InterNetworkV6 when address.Size >= 24 => new(BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]), BinaryPrimitives.ReadUInt64BigEndian(bytes[16..])),
            _ => default,
        };
    }

    public static SourceKey From(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            address.TryWriteBytes(v4, out _);
            return new(0, MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(v4));
        }
        Span<byte> v6 = stackalloc byte[16];
        address.TryWriteBytes(v6, out _);
        return new(BinaryPrimitives.ReadUInt64BigEndian(v6), BinaryPrimitives.ReadUInt64BigEndian(v6[8..]));
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, High);
        BinaryPrimitives.WriteUInt64BigEndian(bytes[8..], Low);
        return IsIPv4 ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }

    public bool Equals(SourceKey other) => High == other.High && Low == other.Low;
    public override bool Equals(object? obj) => obj is SourceKey other && Equals(other);
    /// <summary><see cref="HashCode"/> is seeded per process, so spoofed sources cannot be chosen to collide in a table.</summary>
    public override int GetHashCode() => HashCode.Combine(High, Low);
    public override string ToString() => ToIPAddress().ToString();
}

/// <summary>A list of <see cref="NetworkRange"/>s compiled for matching <see cref="SourceKey"/>s; same answers as <see cref="NetworkRange.Contains"/>.</summary>
internal sealed class SourceFilter
{
    private readonly (bool IPv4, ulong High, ulong Low, ulong MaskHigh, ulong MaskLow)[] ranges;

    public SourceFilter(IEnumerable<NetworkRange> ranges)
    {
        this.ranges = ranges.Select(Compile).ToArray();
    }

    private static (bool, ulong, ulong, ulong, ulong) Compile(NetworkRange range)
    {
        bool v4 = range.Network.AddressFamily == AddressFamily.InterNetwork;
        var network = SourceKey.From(range.Network);
        int prefix = v4 ? range.PrefixLength + 96 : range.PrefixLength;
        ulong maskHigh = prefix >= 64 ? ulong.MaxValue : prefix == 0 ? 0 : ulong.MaxValue << (64 - prefix);
        ulong maskLow = prefix <= 64 ? 0 : prefix >= 128 ? ulong.MaxValue : ulong.MaxValue << (128 - prefix);
        return (v4, network.High & maskHigh, network.Low & maskLow, maskHigh, maskLow);
    }

    public bool Contains(SourceKey source)
    {
        bool v4 = source.IsIPv4;
        foreach (var r in ranges)
            if (r.IPv4 == v4 && (source.High & r.MaskHigh) == r.High && (source.Low & r.MaskLow) == r.Low)
                return true;
        return false;
    }
}
