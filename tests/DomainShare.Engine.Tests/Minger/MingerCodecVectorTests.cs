using System.Text;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>The test vectors of docs/minger-protocol.md, byte for byte.</summary>
public class MingerCodecVectorTests
{
    [Theory]
    [InlineData("0123456789abcdef", "user@example.com", "dqKieteEunQXNMckovN/JA==")]
    [InlineData("s3cr3t-shared-key-16", "josé@exemple.com", "WkX3So+bAbGA/INr9y22mA==")]
    [InlineData("correct horse battery staple", "*", "Cyd+YuBJvcaZtc4lEBPwoQ==")]
    public void Digest_matches_the_protocol_page(string secret, string mailbox, string digest)
    {
        Assert.Equal(digest, MingerCodec.ComputeDigest(secret, mailbox));
        Assert.True(MingerCodec.VerifyDigest(secret, mailbox, digest));
        Assert.False(MingerCodec.VerifyDigest(secret + "x", mailbox, digest));
        Assert.False(MingerCodec.VerifyDigest(secret, mailbox.ToUpperInvariant() == mailbox ? mailbox + "x" : mailbox.ToUpperInvariant(), digest));
    }

    [Theory]
    [InlineData("0123456789abcdef", "user@example.com", "dqKieteEunQXNMckovN/JA==")]
    [InlineData("s3cr3t-shared-key-16", "josé@exemple.com", "WkX3So+bAbGA/INr9y22mA==")]
    [InlineData("correct horse battery staple", "*", "Cyd+YuBJvcaZtc4lEBPwoQ==")]
    public void Signed_query_is_mailbox_space_d_equals_digest(string secret, string mailbox, string digest)
    {
        var bytes = MingerCodec.EncodeQuery(mailbox, secret);
        Assert.Equal(Encoding.UTF8.GetBytes($"{mailbox} d={digest}"), bytes);
        Assert.True(MingerCodec.TryParseQuery(bytes, out var query));
        Assert.Equal(mailbox, query!.Mailbox);
        Assert.Equal(digest, query.Digest);
        Assert.Empty(query.Tags);
    }

    /// <summary>
    /// The protocol page gives the first query as the literal <c>user@example.com d=dqKieteEunQXNMckovN/JA==</c> and
    /// calls it "the 41 bytes"; the literal (and the grammar <c>mailbox SP "d=" digest</c>) is 16 + 3 + 24 = 43 bytes.
    /// 41 would be the query without "d=". The literal and the grammar agree, so the bytes are pinned to them.
    /// </summary>
    [Fact]
    public void First_query_on_the_wire_is_the_literal_of_the_protocol_page()
    {
        var bytes = MingerCodec.EncodeQuery("user@example.com", "0123456789abcdef");
        Assert.Equal("user@example.com d=dqKieteEunQXNMckovN/JA=="u8.ToArray(), bytes);
        Assert.Equal(43, bytes.Length);
    }

    [Fact]
    public void Positive_reply_is_mailbox_space_5()
    {
        var bytes = MingerCodec.EncodeReply("user@example.com", MingerStatus.Exists);
        Assert.Equal("user@example.com 5"u8.ToArray(), bytes);
        Assert.True(MingerCodec.TryParseReply(bytes, out var mailbox, out var status));
        Assert.Equal("user@example.com", mailbox);
        Assert.Equal(MingerStatus.Exists, status);
    }

    [Theory]
    [InlineData("user@example.com\r\n")]
    [InlineData("user@example.com\n")]
    [InlineData("user@example.com\r")]
    public void Trailing_line_end_is_tolerated(string text)
    {
        Assert.True(MingerCodec.TryParseQuery(Encoding.UTF8.GetBytes(text), out var query));
        Assert.Equal("user@example.com", query!.Mailbox);
        Assert.Equal("user@example.com", MingerCodec.EchoToken(Encoding.UTF8.GetBytes(text)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("user")]
    [InlineData("@example.com")]
    [InlineData("user@")]
    [InlineData("user@example.com ")]
    [InlineData("user@example.com  x=1")]
    [InlineData("us er@example.com")]
    [InlineData("user@example.com d=short")]
    [InlineData("user@example.com d=dqKieteEunQXNMckovN/JA== d=dqKieteEunQXNMckovN/JA==")]
    [InlineData("user@example.com notatag")]
    [InlineData("user@example.com =value")]
    [InlineData("user\t@example.com")]
    [InlineData("user@example.com\n\r")]
    public void Malformed_queries_are_refused(string text)
        => Assert.False(MingerCodec.TryParseQuery(Encoding.UTF8.GetBytes(text), out _));

    [Fact]
    public void Not_utf8_or_oversized_is_refused()
    {
        Assert.False(MingerCodec.TryParseQuery([0x75, 0xFF, 0x40, 0x61], out _));
        Assert.False(MingerCodec.TryParseQuery([0xED, 0xA0, 0x80, 0x40, 0x61], out _)); // an encoded surrogate: not UTF-8
        Assert.False(MingerCodec.TryParseQuery([0xC0, 0xAF, 0x40, 0x61], out _)); // an overlong encoding
        var big = Encoding.ASCII.GetBytes("a@" + new string('b', MingerCodec.MaxDatagramBytes - 2));
        Assert.Equal(MingerCodec.MaxDatagramBytes, big.Length);
        Assert.True(MingerCodec.TryParseQuery(big, out _));
        Assert.False(MingerCodec.TryParseQuery([.. big, (byte)'c'], out _));
    }

    [Fact]
    public void Unknown_tags_are_kept_and_the_first_equals_splits()
    {
        Assert.True(MingerCodec.TryParseQuery("a@b.c x=1 y= z=a=b"u8, out var query));
        Assert.Equal([new("x", "1"), new("y", ""), new("z", "a=b")], query!.Tags);
    }

    [Fact]
    public void A_mailbox_with_an_unpaired_surrogate_cannot_be_sent()
    {
        // UTF-8 would carry it as U+FFFD: the query would name another mailbox than the caller's.
        Assert.False(MingerCodec.IsValidMailbox("a\uD800@example.com"));
        Assert.False(MingerCodec.IsValidMailbox("a\uDC00@example.com"));
        Assert.False(MingerCodec.IsValidMailbox("a@example.com\uD83D"));
        Assert.True(MingerCodec.IsValidMailbox("a\uD83D\uDE00@example.com"));
        Assert.Throws<ArgumentException>(() => MingerCodec.EncodeQuery("a\uD800@example.com", null));
        Assert.Throws<ArgumentException>(() => MingerCodec.EncodeQuery("a@example.com", null, [new("x", "\uDC00")]));
    }
}
