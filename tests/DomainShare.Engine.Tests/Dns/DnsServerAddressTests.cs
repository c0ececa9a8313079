using System.Net;
using DomainShare.Engine.DnsRecords;

namespace DomainShare.Engine.Tests.DnsRecords;

public class DnsServerAddressTests
{
    [Theory]
    [InlineData("192.0.2.53", "192.0.2.53:53")]
    [InlineData(" 127.0.0.1:5353 ", "127.0.0.1:5353")]
    [InlineData("::1", "[::1]:53")]
    [InlineData("[2001:db8::53]", "[2001:db8::53]:53")]
    [InlineData("[2001:db8::53]:5353", "[2001:db8::53]:5353")]
    public void Accepts_an_ip_address_with_an_optional_port(string text, string expected)
        => Assert.Equal(expected, DnsServerAddress.Format(DnsServerAddress.Parse(text)));

    [Theory]
    [InlineData("")]
    [InlineData("dns.example.com")]
    [InlineData("dns.example.com:53")]
    [InlineData("127.0.0.1:0")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:")]
    [InlineData("127.0.0.1:x")]
    [InlineData("127.0.0.256")]
    [InlineData("010.0.0.1")]
    [InlineData("[::1")]
    [InlineData("[::1]x")]
    [InlineData("[127.0.0.1]:53")]
    [InlineData("2001:db8::zz")]
    public void Refuses_anything_else_as_InvalidDnsServer(string text)
    {
        var ex = Expect.Error(ErrorIds.InvalidDnsServer, () => DnsServerAddress.Parse(text));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("not a valid DNS server", ex.Message);
    }

    [Fact]
    public void Parses_to_the_endpoint()
        => Assert.Equal(new IPEndPoint(IPAddress.Loopback, 5353), DnsServerAddress.Parse("127.0.0.1:5353"));
}
