using System.Buffers;
using System.Text;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>
/// The DATA decoder without sockets: fixed cases, and a differential test against a plain whole-buffer model of RFC
/// 5321 §4.5.2 over random content cut into random multi-segment pieces with random output room.
/// </summary>
public sealed class SmtpDataDecoderTests
{
    private sealed record Outcome(bool Complete, byte[] Content, DataFaults Faults, byte[] Rest, int ReceivedHeaders);

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }

    private static ReadOnlySequence<byte> Sequence(IReadOnlyList<byte[]> pieces)
    {
        if (pieces.Count == 0) return ReadOnlySequence<byte>.Empty;
        Segment first = new(pieces[0], null), last = first;
        for (int i = 1; i < pieces.Count; i++) last = new Segment(pieces[i], last);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Feeds <paramref name="wire"/> as the session does: piece by piece, keeping what was not consumed.</summary>
    private static Outcome Decode(byte[] wire, Random random, long maxMessage, int maxLine, int maxHops, int outputSize)
    {
        var decoder = new SmtpDataDecoder();
        decoder.Reset(maxMessage, maxLine, maxHops);
        var output = new byte[outputSize];
        int buffered = 0;
        var content = new MemoryStream();
        var unconsumed = new List<byte[]>();
        int offset = 0;
        while (offset < wire.Length)
        {
            int n = Math.Min(wire.Length - offset, random.Next(4) == 0 ? random.Next(1, 8) : random.Next(1, 20_000));
            // The new bytes may arrive split over several segments of their own.
            for (int end = offset + n; offset < end;)
            {
                int part = Math.Min(end - offset, random.Next(1, n + 1));
                unconsumed.Add(wire[offset..(offset + part)]);
                offset += part;
            }
            var input = Sequence(unconsumed);
            DataStatus status;
            while (true)
            {
                status = decoder.Decode(ref input, output.AsSpan(buffered), out int written);
                buffered += written;
                if (status != DataStatus.OutputFull) break;
                content.Write(output, 0, buffered);
                buffered = 0;
            }
            unconsumed = input.IsEmpty ? [] : [input.ToArray()];
            if (status == DataStatus.Complete)
            {
                content.Write(output, 0, buffered);
                var rest = input.ToArray().Concat(wire[offset..]).ToArray();
                return new Outcome(true, content.ToArray(), decoder.Faults, rest, decoder.ReceivedHeaders);
            }
        }
        return new Outcome(false, [], decoder.Faults, [], decoder.ReceivedHeaders);
    }

    /// <summary>The rules, on the whole buffer, one line at a time.</summary>
    private static Outcome Model(byte[] wire, long maxMessage, int maxLine, int maxHops)
    {
        var content = new List<byte>();
        var faults = DataFaults.None;
        bool afterCrlf = true, inHeaders = true;
        int received = 0, pos = 0;
        while (true)
        {
            int lf = Array.IndexOf(wire, (byte)'\n', pos);
            if (lf < 0) return new Outcome(false, [], faults, [], received);
            var line = wire[pos..lf];
            pos = lf + 1;
            if (afterCrlf && line.Length == 2 && line[0] == '.' && line[1] == '\r')
                return new Outcome(true, faults == DataFaults.None ? content.ToArray() : [], faults, wire[pos..], received);
            bool crlf = line.Length > 0 && line[^1] == '\r';
            afterCrlf = crlf;
            if (!crlf || Array.IndexOf(line, (byte)'\r', 0, line.Length - (crlf ? 1 : 0)) >= 0) faults |= DataFaults.BareLineEnding;
            if (line.Length + 1 > maxLine) faults |= DataFaults.LineTooLong;
            var text = (line.Length > 0 && line[0] == '.' ? line[1..] : line).Append((byte)'\n').ToArray();
            if (inHeaders)
            {
                if (text.Length == (crlf ? 2 : 1)) inHeaders = false;
                else if (Encoding.Latin1.GetString(text, 0, Math.Min(text.Length, 24)) is var start
                         && System.Text.RegularExpressions.Regex.IsMatch(start, "^(?i:received)[ \t]*:") && ++received > maxHops)
                    faults |= DataFaults.TooManyHops;
            }
            if (faults == DataFaults.None)
            {
                if (content.Count + text.Length > maxMessage) faults |= DataFaults.TooBig;
                else content.AddRange(text);
            }
        }
    }

    private static readonly string[] Tokens =
    [
        "a", "b", "xyz ", ".", "..", "\r\n", "\r\n", "\r\n", "\n", "\r", "\r\n.\r\n", "\r\n..\r\n", "\n.\r\n", "\r\n.\n", ".\r\n",
        "Received: from x\r\n", "received  :\r\n", "RECEIVED\t: y\r\n", "Received-SPF: pass\r\n", "\r\n\r\n", "é", "\0", "\u00ff",
    ];

    private static byte[] RandomWire(Random random)
    {
        var bytes = new List<byte>();
        int tokens = random.Next(0, 120);
        for (int i = 0; i < tokens; i++)
        {
            if (random.Next(40) == 0) bytes.AddRange(Enumerable.Repeat((byte)(random.Next(2) == 0 ? 'L' : '.'), random.Next(500, 70_000)));
            else bytes.AddRange(Encoding.UTF8.GetBytes(Tokens[random.Next(Tokens.Length)]));
        }
        if (random.Next(4) != 0) bytes.AddRange("\r\n.\r\nNOOP\r\n"u8.ToArray());
        return bytes.ToArray();
    }

    [Fact]
    public void Random_content_in_random_pieces_decodes_as_the_model_says()
    {
        var random = new Random(20261101);
        for (int run = 0; run < 3000; run++)
        {
            var wire = RandomWire(random);
            long maxMessage = random.Next(3) == 0 ? random.Next(10, 5000) : 1_000_000;
            int maxLine = new[] { 1000, 5000, 65_536 }[random.Next(3)];
            int maxHops = random.Next(1, 4);
            int outputSize = random.Next(SmtpDataDecoder.MinimumOutputBytes, 40_000);
            var expected = Model(wire, maxMessage, maxLine, maxHops);
            var actual = Decode(wire, random, maxMessage, maxLine, maxHops, outputSize);
            var context = $"run {run}, {wire.Length} bytes, maxMessage {maxMessage}, maxLine {maxLine}, maxHops {maxHops}, output {outputSize}";
            Assert.True(expected.Complete == actual.Complete, $"end found: {context}");
            if (!expected.Complete) continue;
            Assert.True(expected.Rest.AsSpan().SequenceEqual(actual.Rest), $"what follows the end: {context}");
            Assert.True((expected.Faults == DataFaults.None) == (actual.Faults == DataFaults.None), $"refused: expected {expected.Faults}, got {actual.Faults}: {context}");
            if (expected.Faults == DataFaults.None)
            {
                Assert.True(expected.Content.AsSpan().SequenceEqual(actual.Content), $"content: {context}");
                Assert.Equal(expected.ReceivedHeaders, actual.ReceivedHeaders);
            }
            else if ((expected.Faults & (DataFaults.BareLineEnding | DataFaults.TooManyHops)) != 0)
            {
                Assert.True((actual.Faults & (expected.Faults & (DataFaults.BareLineEnding | DataFaults.TooManyHops))) != 0, $"fault kind: expected {expected.Faults}, got {actual.Faults}: {context}");
            }
        }
    }

    [Theory]
    [InlineData(".\r\n", "", "")]
    [InlineData("a\r\n.\r\nrest", "a\r\n", "rest")]
    [InlineData("..\r\n.\r\n", ".\r\n", "")]
    [InlineData("..x\r\n...\r\n.\r\n", ".x\r\n..\r\n", "")]
    [InlineData("a\r\n. \r\n.\r\n", "a\r\n \r\n", "")]
    public void Dot_stuffing_and_the_end(string wire, string content, string rest)
    {
        var outcome = Decode(Encoding.ASCII.GetBytes(wire), new Random(1), 1000, 1000, 30, 4096);
        Assert.True(outcome.Complete);
        Assert.Equal(DataFaults.None, outcome.Faults);
        Assert.Equal(content, Encoding.ASCII.GetString(outcome.Content));
        Assert.Equal(rest, Encoding.ASCII.GetString(outcome.Rest));
    }

    [Theory]
    [InlineData("a\n.\r\nb\r\n.\r\n", "b\r\n")]   // <LF>.<CRLF> is not the end
    [InlineData("a\r\n.\nb\r\n.\r\n", "b\r\n")]   // <CRLF>.<LF> is not the end
    [InlineData("a\n.\n\r\n.\r\n", "")]          // <LF>.<LF> is not the end
    [InlineData("a\rb\r\n.\r\n", "")]            // a bare CR
    public void Only_CRLF_dot_CRLF_ends_the_content_and_bare_line_ends_refuse_it(string wire, string restOfMessage)
    {
        _ = restOfMessage;
        var outcome = Decode(Encoding.ASCII.GetBytes(wire + "NEXT"), new Random(2), 1000, 1000, 30, 4096);
        Assert.True(outcome.Complete);
        Assert.Equal(DataFaults.BareLineEnding, outcome.Faults & DataFaults.BareLineEnding);
        Assert.Equal("NEXT", Encoding.ASCII.GetString(outcome.Rest));
    }

    [Fact]
    public void Received_headers_are_counted_in_the_header_section_only()
    {
        var wire = "Received: a\r\nX: y\r\n\tReceived: folded\r\nreceived : b\r\n\r\nReceived: in the body\r\n.\r\n";
        var outcome = Decode(Encoding.ASCII.GetBytes(wire), new Random(3), 1000, 1000, 30, 4096);
        Assert.Equal(2, outcome.ReceivedHeaders);
        Assert.Equal(DataFaults.TooManyHops, Decode(Encoding.ASCII.GetBytes(wire), new Random(3), 1000, 1000, 1, 4096).Faults);
    }
}
