using System.Text;
using CsCheck;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>Whatever valid query or reply the codec writes, it reads back identically (CsCheck shrinks a failure to a small case).</summary>
public class MingerCodecPropertyTests
{
    private static readonly Gen<string> LocalUnit = Gen.Frequency(
        (8, Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"].Select(c => c.ToString())),
        (2, Gen.OneOf(".", "_", "-", "+", "!", "#", "$", "%", "&", "'", "*", "/", "=", "?", "^", "`", "{", "|", "}", "~", "\"", "@", "d=")),
        (2, Gen.OneOf("é", "É", "ü", "ß", "ñ", "İ", "ı", "ﬀ", "Ж", "ж", "ا", "日", "本", "語", "\u0301", "\u200D", "\uFEFF")),
        (1, Gen.Char['\u00C0', '\u024F'].Select(c => c.ToString())),
        (1, Gen.Char['\u0400', '\u04FF'].Select(c => c.ToString())),
        (1, Gen.Char['\u4E00', '\u9FFF'].Select(c => c.ToString())),
        (1, Gen.Int[0x1F300, 0x1FAFF].Select(char.ConvertFromUtf32)),
        (1, Gen.Int[0x10000, 0x10FFFF].Where(cp => cp is < 0xE0000 or > 0xE007F).Select(char.ConvertFromUtf32)));

    private static readonly Gen<string> Local = LocalUnit.Array[1, 24].Select(string.Concat);

    private static readonly Gen<string> Label = Gen.Frequency(
        (6, Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"].Array[1, 12].Select(cs => new string(cs))),
        (1, Gen.OneOf("bücher", "exemple", "xn--bcher-kva", "münchen", "例え", "пример")));

    private static readonly Gen<string> Domain = Label.Array[1, 4].Select(labels => string.Join('.', labels));

    public static readonly Gen<string> Mailbox = Gen.Frequency(
        (1, Gen.Const(MingerCodec.Probe)),
        (30, Gen.Select(Local, Domain, (local, domain) => local + "@" + domain)));

    private static readonly Gen<string?> Secret = Gen.Frequency(
        (1, Gen.Const(() => (string?)null)),
        (2, Gen.Char[' ', '~'].Array[16, 40].Select(cs => (string?)new string(cs))),
        (1, LocalUnit.Array[16, 30].Select(us => (string?)string.Concat(us))));

    private static readonly Gen<KeyValuePair<string, string>[]> Tags = Gen.Select(
            Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789-_.X"].Array[1, 8].Select(cs => new string(cs)).Where(name => name != "d"),
            Gen.Frequency(
                (4, Gen.Char['!', '~'].Select(c => c.ToString())),
                (1, LocalUnit)).Array[0, 12].Select(string.Concat),
            (name, value) => new KeyValuePair<string, string>(name, value))
        .Array[0, 4];

    [Fact]
    public void Any_valid_query_written_is_read_back_identically()
    {
        Gen.Select(Mailbox, Secret, Tags).Sample((mailbox, secret, tags) =>
        {
            var bytes = MingerCodec.EncodeQuery(mailbox, secret, tags);
            Assert.True(bytes.Length <= MingerCodec.MaxDatagramBytes);
            foreach (var datagram in new[] { bytes, [.. bytes, (byte)'\r', (byte)'\n'], [.. bytes, (byte)'\n'] })
            {
                Assert.True(MingerCodec.TryParseQuery(datagram, out var query), Encoding.UTF8.GetString(datagram));
                Assert.Equal(mailbox, query!.Mailbox);
                Assert.Equal(secret is null ? null : MingerCodec.ComputeDigest(secret, mailbox), query.Digest);
                if (secret is not null) Assert.True(MingerCodec.VerifyDigest(secret, query.Mailbox, query.Digest));
                Assert.Equal(tags, query.Tags);
                Assert.Equal(mailbox == MingerCodec.Probe, query.IsProbe);
                // Status 0 and 1 replies echo this token: for a valid query it is the mailbox, exactly.
                Assert.Equal(mailbox, MingerCodec.EchoToken(datagram));
            }
        }, iter: 20_000);
    }

    [Fact]
    public void Any_reply_written_is_read_back_identically()
    {
        Gen.Select(Mailbox, Gen.Int[0, 5]).Sample((mailbox, digit) =>
        {
            var status = (MingerStatus)digit;
            var bytes = MingerCodec.EncodeReply(mailbox, status);
            Span<byte> written = stackalloc byte[MingerCodec.MaxDatagramBytes + 2];
            Assert.Equal(bytes, written[..MingerCodec.WriteReply(mailbox, status, written)].ToArray());
            Assert.True(MingerCodec.TryParseReply(bytes, out var read, out var readStatus));
            Assert.Equal(mailbox, read);
            Assert.Equal(status, readStatus);
        }, iter: 5_000);
    }

    /// <summary>Any string at all, with white space, controls and unpaired surrogates: either it is a mailbox and survives the wire unchanged, or the encoder refuses it.</summary>
    [Fact]
    public void Encoder_refuses_what_would_not_survive_the_wire()
    {
        var anyChar = Gen.Frequency(
            (6, Gen.Char['!', '~']),
            (2, Gen.Const('@')),
            (1, Gen.Char['\0', ' ']),
            (1, Gen.OneOf('\u0085', '\u00A0', '\u2028', '\u3000', '\u007F', '\u009F')),
            (1, Gen.Char['\uD800', '\uDFFF']),
            (2, Gen.Char['\u00A1', '\uD7FF']));
        anyChar.Array[0, 20].Select(cs => new string(cs)).Sample(text =>
        {
            byte[] bytes;
            try { bytes = MingerCodec.EncodeQuery(text, "0123456789abcdef"); }
            catch (ArgumentException)
            {
                Assert.False(MingerCodec.IsValidMailbox(text));
                return;
            }
            Assert.True(MingerCodec.IsValidMailbox(text));
            Assert.True(MingerCodec.TryParseQuery(bytes, out var query));
            Assert.Equal(text, query!.Mailbox);
            Assert.True(MingerCodec.VerifyDigest("0123456789abcdef", text, query.Digest));
        }, iter: 20_000);
    }
}
