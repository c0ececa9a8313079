namespace DomainShare.Engine.Tests;

public class NamesTests
{
    [Theory]
    [InlineData("mx2.example.com", "mx2.example.com", null)]
    [InlineData("MX2.Example.COM", "mx2.example.com", null)]
    [InlineData("mx2.example.com.", "mx2.example.com", null)]
    [InlineData("mx2.example.com:2525", "mx2.example.com", 2525)]
    [InlineData("Mail-1.Example.Net:25", "mail-1.example.net", 25)]
    [InlineData("localhost", "localhost", null)]
    [InlineData("192.0.2.10", "192.0.2.10", null)]
    [InlineData("192.0.2.10:587", "192.0.2.10", 587)]
    [InlineData("0.0.0.0:1", "0.0.0.0", 1)]
    [InlineData("[2001:db8::10]", "[2001:db8::10]", null)]
    [InlineData("[2001:DB8:0:0::10]:2525", "[2001:db8::10]", 2525)]
    [InlineData("[::1]:65535", "[::1]", 65535)]
    public void ParsePeerName_accepts_hosts_addresses_and_smtp_ports(string text, string host, int? port)
    {
        var parsed = Names.ParsePeerName(text);
        Assert.Equal(host, parsed.Host);
        Assert.Equal(port, parsed.SmtpPort);
    }

    [Theory]
    [InlineData("bücher.example", "bücher.example")]
    [InlineData("BÜCHER.Example", "bücher.example")]
    [InlineData("xn--bcher-kva.example", "bücher.example")]
    [InlineData("XN--BCHER-KVA.EXAMPLE:2525", "bücher.example")]
    [InlineData("ｍｘ.example.com", "mx.example.com")]
    [InlineData("почта.пример.рф", "почта.пример.рф")]
    public void ParsePeerName_gives_internationalised_names_one_spelling(string text, string host)
        => Assert.Equal(host, Names.ParsePeerName(text).Host);

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\t")]
    [InlineData("mx2 .example.com")]
    [InlineData("mx2.example.com :25")]
    [InlineData(" mx2.example.com")]
    [InlineData("2001:db8::10")]
    [InlineData("2001:db8::10:25")]
    [InlineData("::1")]
    [InlineData("[2001:db8::10")]
    [InlineData("[2001:db8::10]2525")]
    [InlineData("[192.0.2.1]")]
    [InlineData("[fe80::1%eth0]")]
    [InlineData("[mx2.example.com]:25")]
    [InlineData("999.1.1.1")]
    [InlineData("256.0.0.1:25")]
    [InlineData("1.2.3")]
    [InlineData("1.2.3.4.5")]
    [InlineData("010.1.1.1")]
    [InlineData("mx2..example.com")]
    [InlineData(".example.com")]
    [InlineData("-mx.example.com")]
    [InlineData("mx-.example.com")]
    [InlineData("mx_2.example.com")]
    [InlineData("mx2.exam!ple.com")]
    [InlineData("mx2.example.123")]
    [InlineData(":25")]
    public void ParsePeerName_refuses_bad_names_as_InvalidPeerName(string? text)
    {
        var ex = Expect.Error(ErrorIds.InvalidPeerName, () => Names.ParsePeerName(text));
        Assert.Equal(text, ex.Target);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
    }

    [Fact]
    public void ParsePeerName_refuses_labels_longer_than_63_and_names_longer_than_253()
    {
        Expect.Error(ErrorIds.InvalidPeerName, () => Names.ParsePeerName(new string('a', 64) + ".example.com"));
        Assert.Equal(new string('a', 63) + ".example.com", Names.ParsePeerName(new string('a', 63) + ".example.com").Host);
        string longName = string.Join('.', Enumerable.Repeat(new string('a', 60), 5)) + ".com"; // 308 characters
        Expect.Error(ErrorIds.InvalidPeerName, () => Names.ParsePeerName(longName));
    }

    [Theory]
    [InlineData("mx2.example.com:0")]
    [InlineData("mx2.example.com:70000")]
    [InlineData("mx2.example.com:65536")]
    [InlineData("mx2.example.com:abc")]
    [InlineData("mx2.example.com:")]
    [InlineData("mx2.example.com:-1")]
    [InlineData("mx2.example.com:+25")]
    [InlineData("mx2.example.com:999999")]
    [InlineData("192.0.2.1:0")]
    [InlineData("[2001:db8::10]:0")]
    [InlineData("[2001:db8::10]:70000")]
    [InlineData("[2001:db8::10]:")]
    public void ParsePeerName_refuses_bad_ports_as_InvalidPort(string text)
        => Expect.Error(ErrorIds.InvalidPort, () => Names.ParsePeerName(text));

    [Theory]
    [InlineData("Example.COM", "example.com")]
    [InlineData("example.com.", "example.com")]
    [InlineData("Sub.Example.Org", "sub.example.org")]
    [InlineData("xn--bcher-kva.example", "bücher.example")]
    public void NormalizeDomainName_lower_cases(string text, string expected)
        => Assert.Equal(expected, Names.NormalizeDomainName(text));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("localhost")]
    [InlineData("example")]
    [InlineData("exa mple.com")]
    [InlineData("example..com")]
    [InlineData("-example.com")]
    [InlineData("ex_ample.com")]
    [InlineData("192.0.2.1")]
    [InlineData("example.com:25")]
    public void NormalizeDomainName_refuses_as_InvalidDomainName(string? text)
        => Expect.Error(ErrorIds.InvalidDomainName, () => Names.NormalizeDomainName(text));

    [Theory]
    [InlineData("MX1.Example.COM", "mx1.example.com")]
    [InlineData("mx1", "mx1")]
    [InlineData("mx1.example.com.", "mx1.example.com")]
    public void NormalizeServerName_lower_cases(string text, string expected)
        => Assert.Equal(expected, Names.NormalizeServerName(text));

    [Theory]
    [InlineData(null)]
    [InlineData(" ")]
    [InlineData("mx1.example.com:25")]
    [InlineData("mx 1.example.com")]
    [InlineData("mx_1.example.com")]
    [InlineData("192.0.2.1")]
    [InlineData("mx1.-example.com")]
    public void NormalizeServerName_refuses_as_InvalidServerName(string? text)
        => Expect.Error(ErrorIds.InvalidServerName, () => Names.NormalizeServerName(text));

    [Fact]
    public void ValidateSecret_needs_sixteen_printable_characters()
    {
        Assert.Equal(16, Defaults.MinimumSecretLength);
        Assert.Equal("0123456789abcdef", Names.ValidateSecret("0123456789abcdef", "secret"));
        Assert.Equal("a secret with spaces and ünïcode", Names.ValidateSecret("a secret with spaces and ünïcode", "secret"));
        var tooShort = Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("0123456789abcde", "peer's Minger secret"));
        Assert.Contains("15", tooShort.Message);
        Assert.DoesNotContain("0123456789abcde", tooShort.Message); // a secret is never echoed
        Assert.Null(tooShort.Target);
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret(null, "secret"));
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("", "secret"));
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("0123456789abcdef\n", "secret"));
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("0123456789\tabcdef", "secret"));
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("0123456789abcdef\0", "secret"));
        Expect.Error(ErrorIds.InvalidSecret, () => Names.ValidateSecret("0123456789abcdef\u007f", "secret"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(25)]
    [InlineData(65535)]
    public void ValidatePort_accepts_1_to_65535(int port) => Assert.Equal(port, Names.ValidatePort(port, "port"));

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(65536)]
    public void ValidatePort_refuses_outside_range(int port) => Expect.Error(ErrorIds.InvalidPort, () => Names.ValidatePort(port, "port"));
}
