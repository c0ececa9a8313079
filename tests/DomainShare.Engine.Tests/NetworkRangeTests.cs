using System.Net;

namespace DomainShare.Engine.Tests;

public class NetworkRangeTests
{
    private static NetworkRange Range(string text)
    {
        Assert.True(NetworkRange.TryParse(text, out var range), text);
        return range;
    }

    [Theory]
    [InlineData("192.0.2.0/24", "192.0.2.0/24")]
    [InlineData("192.0.2.77/24", "192.0.2.0/24")]
    [InlineData(" 192.0.2.1 ", "192.0.2.1")]
    [InlineData("192.0.2.1/32", "192.0.2.1")]
    [InlineData("0.0.0.0/0", "0.0.0.0/0")]
    [InlineData("10.1.2.3/8", "10.0.0.0/8")]
    [InlineData("2001:db8::/32", "2001:db8::/32")]
    [InlineData("2001:DB8:1:2::5/48", "2001:db8:1::/48")]
    [InlineData("[2001:db8::]/32", "2001:db8::/32")]
    [InlineData("::1", "::1")]
    [InlineData("::ffff:192.0.2.0/120", "192.0.2.0/24")]
    [InlineData("::ffff:192.0.2.9", "192.0.2.9")]
    public void TryParse_normalises_to_the_network(string text, string expected)
        => Assert.Equal(expected, Range(text).ToString());

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("192.0.2.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("192.0.2/24")]
    [InlineData("192.0.2.0/")]
    [InlineData("192.0.2.0/-1")]
    [InlineData("192.0.2.0/+8")]
    [InlineData("192.0.2.0/ 8")]
    [InlineData("256.0.2.0/24")]
    [InlineData("010.0.0.0/8")]
    [InlineData("fe80::1%eth0")]
    [InlineData("mx.example.com/24")]
    public void TryParse_refuses_what_is_not_a_network(string? text)
        => Assert.False(NetworkRange.TryParse(text, out _), text);

    [Theory]
    [InlineData("192.0.2.0/24", "192.0.2.0", true)]
    [InlineData("192.0.2.0/24", "192.0.2.255", true)]
    [InlineData("192.0.2.0/24", "192.0.3.0", false)]
    [InlineData("192.0.2.0/24", "192.0.1.255", false)]
    [InlineData("192.0.2.0/24", "::ffff:192.0.2.5", true)]
    [InlineData("192.0.2.0/24", "::ffff:192.0.3.5", false)]
    [InlineData("192.0.2.0/24", "2001:db8::1", false)]
    [InlineData("192.0.2.0/24", "::c000:205", false)]
    [InlineData("192.0.2.7", "192.0.2.7", true)]
    [InlineData("192.0.2.7", "192.0.2.8", false)]
    [InlineData("0.0.0.0/0", "203.0.113.1", true)]
    [InlineData("0.0.0.0/0", "::ffff:203.0.113.1", true)]
    [InlineData("10.0.0.0/9", "10.127.255.255", true)]
    [InlineData("10.0.0.0/9", "10.128.0.0", false)]
    [InlineData("2001:db8::/32", "2001:db8:ffff::1", true)]
    [InlineData("2001:db8::/32", "2001:db9::1", false)]
    [InlineData("2001:db8::/32", "192.0.2.1", false)]
    [InlineData("2001:db8:1::/48", "2001:db8:1:ffff::1", true)]
    [InlineData("2001:db8:1::/48", "2001:db8:2::1", false)]
    [InlineData("::ffff:192.0.2.0/120", "192.0.2.9", true)]
    [InlineData("::ffff:192.0.2.0/120", "::ffff:192.0.2.9", true)]
    [InlineData("::ffff:192.0.2.0/120", "192.0.3.9", false)]
    public void Contains_matches_the_prefix(string range, string address, bool expected)
        => Assert.Equal(expected, Range(range).Contains(IPAddress.Parse(address)));

    [Fact]
    public void Contains_ignores_the_scope_of_a_link_local_client()
        => Assert.True(Range("fe80::/10").Contains(IPAddress.Parse("fe80::1%2")));
}
