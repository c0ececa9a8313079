using System.Text;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>RFC 5321 command syntax on bytes, without a session.</summary>
public sealed class SmtpCommandParserTests
{
    [Theory]
    [InlineData("EHLO x", SmtpVerb.Ehlo, "x")]
    [InlineData("ehlo   x  ", SmtpVerb.Ehlo, "x")]
    [InlineData("Mail FROM:<a@b>", SmtpVerb.Mail, "FROM:<a@b>")]
    [InlineData("rcpt TO:<a@b>", SmtpVerb.Rcpt, "TO:<a@b>")]
    [InlineData("DATA", SmtpVerb.Data, "")]
    [InlineData("starttls", SmtpVerb.StartTls, "")]
    [InlineData("QUIT", SmtpVerb.Quit, "")]
    [InlineData("AUTH LOGIN", SmtpVerb.NotImplemented, "LOGIN")]
    [InlineData("BDAT 10 LAST", SmtpVerb.NotImplemented, "10 LAST")]
    [InlineData("H@LO x", SmtpVerb.Unknown, "x")]
    [InlineData("HELOX", SmtpVerb.Unknown, "")]
    [InlineData("", SmtpVerb.Unknown, "")]
    [InlineData("hElP", SmtpVerb.Help, "")]
    public void Verbs_are_recognised_case_insensitively(string line, object verb, string argument)
    {
        Assert.Equal((SmtpVerb)verb, SmtpCommandParser.ParseVerb(Encoding.ASCII.GetBytes(line), out var arg));
        Assert.Equal(argument, Encoding.ASCII.GetString(arg));
    }

    [Fact]
    public void No_two_verbs_collide_under_the_case_folding()
    {
        // Every 4-byte word whose bytes are not letters must be Unknown (or one of the verbs when it spells one).
        var verbs = new HashSet<string>(["HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "AUTH", "BDAT", "ETRN", "TURN", "SEND", "SOML", "SAML"]);
        var random = new Random(7);
        var word = new byte[4];
        for (int i = 0; i < 200_000; i++)
        {
            random.NextBytes(word);
            var verb = SmtpCommandParser.ParseVerb(word, out _);
            var upper = Encoding.Latin1.GetString(word).ToUpperInvariant();
            bool lettersOnly = word.All(b => b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z');
            Assert.Equal(lettersOnly && verbs.Contains(upper), verb != SmtpVerb.Unknown);
        }
    }

    [Theory]
    [InlineData("FROM:<a@b.example>", "a@b.example", null, SmtpBodyKind.Unspecified, false)]
    [InlineData("FROM:<>", null, null, SmtpBodyKind.Unspecified, false)]
    [InlineData("from: <a@b.example> SIZE=1000 BODY=8BITMIME", "a@b.example", 1000L, SmtpBodyKind.EightBitMime, false)]
    [InlineData("FROM:<@r1.example,@r2.example:a@b.example> body=7bit", "a@b.example", null, SmtpBodyKind.SevenBit, false)]
    [InlineData("FROM:<\"a b\\\"c\"@b.example>", "\"a b\\\"c\"@b.example", null, SmtpBodyKind.Unspecified, false)]
    [InlineData("FROM:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", null, SmtpBodyKind.Unspecified, false)]
    [InlineData("FROM:<jösé@bücher.example> SMTPUTF8", "jösé@bücher.example", null, SmtpBodyKind.Unspecified, true)]
    [InlineData("FROM:<a!#$%&'*+-/=?^_`{|}~@b-c.example>", "a!#$%&'*+-/=?^_`{|}~@b-c.example", null, SmtpBodyKind.Unspecified, false)]
    public void Valid_MAIL_arguments(string argument, string? path, long? size, object body, bool utf8)
    {
        Assert.Equal(ArgumentError.None, SmtpCommandParser.ParseMail(Encoding.UTF8.GetBytes(argument), extended: true, out var actual, out var parameters));
        Assert.Equal(path, actual);
        Assert.Equal(size, parameters.Size);
        Assert.Equal((SmtpBodyKind)body, parameters.Body);
        Assert.Equal(utf8, parameters.SmtpUtf8);
    }

    [Theory]
    [InlineData("FROM:a@b.example", ArgumentError.Syntax)]
    [InlineData("FROM <a@b.example>", ArgumentError.Syntax)]
    [InlineData("FROM:<a@b.example", ArgumentError.BadAddress)]
    [InlineData("FROM:<a>", ArgumentError.BadAddress)]
    [InlineData("FROM:<a@b..example>", ArgumentError.BadAddress)]
    [InlineData("FROM:<a.@b.example>", ArgumentError.BadAddress)]
    [InlineData("FROM:<a@b.example->", ArgumentError.BadAddress)]
    [InlineData("FROM:<a b@b.example>", ArgumentError.BadAddress)]
    [InlineData("FROM:<\"a@b.example>", ArgumentError.BadAddress)]
    [InlineData("FROM:<a@[]>", ArgumentError.BadAddress)]
    [InlineData("FROM:<@r.example a@b.example>", ArgumentError.BadAddress)]
    [InlineData("FROM:<a@b.example>x", ArgumentError.Syntax)]
    [InlineData("FROM:<a@b.example> SIZE=", ArgumentError.BadParameter)]
    [InlineData("FROM:<a@b.example> SIZE=-1", ArgumentError.BadParameter)]
    [InlineData("FROM:<a@b.example> SIZE", ArgumentError.BadParameter)]
    [InlineData("FROM:<a@b.example> SMTPUTF8=yes", ArgumentError.BadParameter)]
    [InlineData("FROM:<a@b.example> BODY=8BITMIME BODY=7BIT", ArgumentError.BadParameter)]
    [InlineData("FROM:<a@b.example> RET=HDRS", ArgumentError.UnknownParameter)]
    [InlineData("FROM:<a@b.example> =x", ArgumentError.Syntax)]
    [InlineData("FROM:<jösé@b.example>", ArgumentError.NonAsciiAddress)]
    public void Invalid_MAIL_arguments(string argument, object expected)
    {
        Assert.Equal((ArgumentError)expected, SmtpCommandParser.ParseMail(Encoding.UTF8.GetBytes(argument), extended: true, out _, out _));
    }

    [Fact]
    public void Length_limits_of_RFC_5321_apply_in_octets()
    {
        Assert.Equal(ArgumentError.None, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<{new string('a', 64)}@b.example>"), false, out _));
        Assert.Equal(ArgumentError.AddressTooLong, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<{new string('a', 65)}@b.example>"), false, out _));
        Assert.Equal(ArgumentError.AddressTooLong, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<{new string('é', 33)}@b.example>"), true, out _)); // 66 octets
        var longDomain = string.Join('.', Enumerable.Repeat(new string('d', 63), 4)); // 255
        Assert.Equal(ArgumentError.None, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<a@{longDomain}>"), false, out _));
        Assert.Equal(ArgumentError.AddressTooLong, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<a@{longDomain}.d>"), false, out _));
        Assert.Equal(ArgumentError.BadAddress, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes($"TO:<a@{new string('d', 64)}.example>"), false, out _));
    }

    [Theory]
    [InlineData("TO:<Postmaster>", "Postmaster", ArgumentError.None)]
    [InlineData("TO:<postmaster>", "postmaster", ArgumentError.None)]
    [InlineData("TO:<alice>", "", ArgumentError.BadAddress)]
    [InlineData("TO:<>", "", ArgumentError.BadAddress)]
    [InlineData("TO:<a@b.example> NOTIFY=NEVER", "", ArgumentError.UnknownParameter)]
    [InlineData("TO:<@x.example:a@b.example>", "a@b.example", ArgumentError.None)]
    public void RCPT_arguments(string argument, string recipient, object expected)
    {
        Assert.Equal((ArgumentError)expected, SmtpCommandParser.ParseRcpt(Encoding.UTF8.GetBytes(argument), false, out var actual));
        Assert.Equal(recipient, actual);
    }

    [Theory]
    [InlineData("client.example", true)]
    [InlineData("[192.0.2.1]", true)]
    [InlineData("[IPv6:2001:db8::1]", true)]
    [InlineData("WIN_HOST", true)]
    [InlineData("", false)]
    [InlineData("two words", false)]
    [InlineData("evil(comment)", false)]
    [InlineData("[unterminated", false)]
    [InlineData("semi;colon", false)]
    public void Helo_names(string argument, bool valid)
    {
        Assert.Equal(valid, SmtpCommandParser.TryParseHeloName(Encoding.ASCII.GetBytes(argument), out var name));
        if (valid) Assert.Equal(argument, name);
    }

    [Theory]
    [InlineData(new byte[] { 0x4E, 0x4F, 0x4F, 0x50 }, LineContent.Ascii)]
    [InlineData(new byte[] { 0x4E, 0x00, 0x4F, 0x50 }, LineContent.Control)]
    [InlineData(new byte[] { 0x4E, 0x7F }, LineContent.Control)]
    [InlineData(new byte[] { 0x4E, 0x09 }, LineContent.Control)]
    [InlineData(new byte[] { 0xC3, 0xA9 }, LineContent.Utf8)]
    [InlineData(new byte[] { 0xC3, 0x28 }, LineContent.InvalidUtf8)]
    [InlineData(new byte[] { 0xFF }, LineContent.InvalidUtf8)]
    public void Line_classification(byte[] line, object expected) => Assert.Equal((LineContent)expected, SmtpCommandParser.Classify(line));

    [Fact]
    public void Dates_are_RFC_5322()
    {
        Assert.Equal("Tue, 03 Nov 2026 09:05:07 +0130", SmtpSession.FormatDate(new DateTimeOffset(2026, 11, 3, 9, 5, 7, TimeSpan.FromMinutes(90))));
        Assert.Equal("Sun, 01 Nov 2026 23:59:59 -0500", SmtpSession.FormatDate(new DateTimeOffset(2026, 11, 1, 23, 59, 59, TimeSpan.FromHours(-5))));
    }
}
