using System.Net;

namespace DomainShare.Engine.Tests;

public class EndpointTests
{
    [Theory]
    [InlineData("0.0.0.0:25", "0.0.0.0", 25, "0.0.0.0:25")]
    [InlineData("[::]:4069", "::", 4069, "[::]:4069")]
    [InlineData("127.0.0.1:2525", "127.0.0.1", 2525, "127.0.0.1:2525")]
    [InlineData(" 192.0.2.1:65535 ", "192.0.2.1", 65535, "192.0.2.1:65535")]
    [InlineData("[2001:DB8:0::1]:1", "2001:db8::1", 1, "[2001:db8::1]:1")]
    [InlineData("[::ffff:192.0.2.1]:25", "::ffff:192.0.2.1", 25, "[::ffff:192.0.2.1]:25")]
    public void Parse_reads_address_and_port_and_ToString_round_trips(string text, string address, int port, string written)
    {
        var endpoint = Endpoint.Parse(text, "smtp.endpoint");
        Assert.Equal(IPAddress.Parse(address), endpoint.Address);
        Assert.Equal(port, endpoint.Port);
        Assert.Equal(written, endpoint.ToString());
        Assert.Equal(endpoint, Endpoint.Parse(endpoint.ToString(), "again"));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("0.0.0.0")]
    [InlineData("localhost:25")]
    [InlineData("mx1.example.com:25")]
    [InlineData("::1:25")]
    [InlineData("[::1]")]
    [InlineData("[::1]25")]
    [InlineData("[::1:25")]
    [InlineData("[192.0.2.1]:25")]
    [InlineData("256.0.0.1:25")]
    [InlineData("1.2.3:25")]
    [InlineData("010.0.0.1:25")]
    [InlineData(":25")]
    public void Parse_refuses_as_InvalidEndpoint(string? text)
    {
        var ex = Expect.Error(ErrorIds.InvalidEndpoint, () => Endpoint.Parse(text, "minger.endpoint"));
        Assert.Contains("minger.endpoint", ex.Message);
    }

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("0.0.0.0:65536")]
    [InlineData("0.0.0.0:")]
    [InlineData("0.0.0.0:http")]
    [InlineData("[::]:0")]
    [InlineData("[::]:")]
    public void Parse_refuses_bad_ports_as_InvalidPort(string text)
        => Expect.Error(ErrorIds.InvalidPort, () => Endpoint.Parse(text, "smtp.endpoint"));
}
