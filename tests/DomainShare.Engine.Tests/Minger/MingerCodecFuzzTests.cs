using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

public class MingerCodecFuzzTests
{
    /// <summary>
    /// A million random and mutated datagrams: parsing never throws, and whatever it accepts is consistent: a valid
    /// mailbox, a well-formed digest, the echo token equal to the mailbox, and a reply that fits one datagram.
    /// </summary>
    [Fact]
    public void A_million_random_and_mutated_datagrams_never_break_the_parser()
    {
        const int count = 1_000_000;
        var fuzz = new MingerFuzz(seed: 4069);
        Span<byte> reply = stackalloc byte[MingerCodec.MaxDatagramBytes + 2];
        int accepted = 0, oversize = 0;
        for (int i = 0; i < count; i++)
        {
            var datagram = fuzz.Next();
            if (datagram.Length > MingerCodec.MaxDatagramBytes) oversize++;
            string echo = MingerCodec.EchoToken(datagram);
            MingerCodec.WriteReply(echo, MingerStatus.Invalid, reply); // a status-0 reply always fits
            if (!MingerCodec.TryParseQuery(datagram, out var query)) continue;
            accepted++;
            Assert.NotNull(query);
            Assert.True(datagram.Length <= MingerCodec.MaxDatagramBytes);
            Assert.True(MingerCodec.IsValidMailbox(query.Mailbox), query.Mailbox);
            Assert.True(query.Digest is null || query.Digest.Length == MingerCodec.DigestLength);
            Assert.Equal(query.Mailbox, echo);
            MingerCodec.WriteReply(query.Mailbox, MingerStatus.Exists, reply);
        }
        // The mix must really exercise both sides (not a timing assertion).
        Assert.InRange(accepted, count / 20, count / 2);
        Assert.True(oversize > count / 100, $"only {oversize} oversized datagrams");
    }
}
