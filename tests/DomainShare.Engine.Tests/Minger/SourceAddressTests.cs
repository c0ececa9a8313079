using System.Net;
using System.Net.Sockets;
using CsCheck;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

public class SourceAddressTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("192.0.2.200")]
    [InlineData("::1")]
    [InlineData("2001:db8::7:1")]
    [InlineData("fe80::1")]
    public void A_received_socket_address_reads_as_its_IP(string text)
    {
        var address = IPAddress.Parse(text);
        var socketAddress = new IPEndPoint(address, 4069).Serialize();
        var key = SourceKey.From(socketAddress);
        Assert.Equal(SourceKey.From(address), key);
        Assert.Equal(address, key.ToIPAddress());
        Assert.Equal(address.AddressFamily == AddressFamily.InterNetwork, key.IsIPv4);
    }

    [Fact]
    public void An_IPv4_client_on_a_dual_mode_socket_is_the_same_source_as_over_IPv4()
    {
        var mapped = new IPEndPoint(IPAddress.Parse("192.0.2.1").MapToIPv6(), 1).Serialize();
        Assert.Equal(SourceKey.From(IPAddress.Parse("192.0.2.1")), SourceKey.From(mapped));
        Assert.True(SourceKey.From(mapped).IsIPv4);
    }

    [Fact]
    public void The_compiled_filter_agrees_with_NetworkRange_Contains()
    {
        var v4 = Gen.Byte.Array[4].Select(b => new IPAddress(b));
        var v6 = Gen.Frequency(
            (3, Gen.Byte.Array[16].Select(b => new IPAddress(b))),
            (1, v4.Select(a => a.MapToIPv6())),
            (1, Gen.Byte.Array[2].Select(b => IPAddress.Parse($"2001:db8::{b[0]:x}:{b[1]:x}"))));
        var address = Gen.OneOf(v4, v6, Gen.OneOf(IPAddress.Parse("127.0.0.1"), IPAddress.Parse("::1"), IPAddress.Parse("::"), IPAddress.Parse("0.0.0.0")));
        var range = Gen.Select(address, Gen.Int[0, 128], (a, p) => $"{a}/{Math.Min(p, a.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)}")
            .Select(text => { Assert.True(NetworkRange.TryParse(text, out var r), text); return r; });
        Gen.Select(range.Array[0, 4], address.Array[1, 8]).Sample((ranges, addresses) =>
        {
            var filter = new SourceFilter(ranges);
            foreach (var a in addresses)
                Assert.Equal(ranges.Any(r => r.Contains(a)), filter.Contains(SourceKey.From(a)));
        }, iter: 5_000);
    }
}
