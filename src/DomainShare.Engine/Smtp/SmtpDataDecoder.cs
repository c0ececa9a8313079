using System.Buffers;
using System.Text;

namespace DomainShare.Engine.Smtp;

internal enum DataStatus : byte
{
    /// <summary>All complete lines are consumed; read more.</summary>
    NeedMoreInput,
    /// <summary>The output span is full: pass it on and call again with the rest of the input.</summary>
    OutputFull,
    /// <summary>The terminating <c>CRLF.CRLF</c> was consumed; the input now starts after it.</summary>
    Complete,
}

/// <summary>Why a message is refused once its content has been read to the end.</summary>
[Flags]
internal enum DataFaults : byte
{
    None = 0,
    /// <summary>More than the maximum message size: 552 5.3.4.</summary>
    TooBig = 1,
    /// <summary>More Received: headers than allowed: 554 5.4.6.</summary>
    TooManyHops = 2,
    /// <summary>A bare LF or bare CR: 554 5.6.0 (RFC 5321 §2.3.8, §4.1.1.4).</summary>
    BareLineEnding = 4,
    /// <summary>A text line over the limit: 554 5.6.0.</summary>
    LineTooLong = 8,
    /// <summary>The session stopped storing the content (the spool failed); the reply is the session's.</summary>
    Abandoned = 16,
}

/// <summary>
/// Reads the content of DATA from the bytes of the connection: removes the dot-stuffing, finds the end, counts the
/// Received: headers of the header section, and finds what makes a message unacceptable, without ever holding more
/// than one line (or <see cref="PartialLineBytes"/> of one) of input. One decoder per session, reset per message.
/// </summary>
/// <remarks>
/// Only <c>CRLF "." CRLF</c> ends the content: a line "." that follows a bare LF, or that ends in a bare LF, is
/// content (and refuses the message for its bare LF). This is what keeps the server immune to SMTP smuggling: no
/// other server in front of it or behind it can see a different end of the message. Once a fault is found the decoder
/// writes nothing more but goes on scanning to the end of the content, so that the session stays in step with the client.
/// </remarks>
internal sealed class SmtpDataDecoder
{
    /// <summary>A line without its end yet is passed on in parts once this much of it is buffered.</summary>
    public const int PartialLineBytes = 8 * 1024;
    /// <summary>The smallest output span the decoder must be given when the caller's output buffer is empty.</summary>
    public const int MinimumOutputBytes = 4 * 1024;

    private long maxMessageBytes = long.MaxValue;
    private long maxLineBytes = long.MaxValue;
    private int maxHops = int.MaxValue;
    private bool midLine;
    private bool lastLineEndedWithCrlf = true;
    private bool inHeaders = true;
    private long lineBytes;

    /// <summary>Octets of content passed on (after dot-unstuffing).</summary>
    public long ContentBytes { get; private set; }

    /// <summary>Text lines ended so far (the session restarts its data timeout at each).</summary>
    public long Lines { get; private set; }

    /// <summary>Received: headers seen in the header section.</summary>
    public int ReceivedHeaders { get; private set; }

    public DataFaults Faults { get; private set; }

    /// <summary>Starts a new message. The CRLF of the DATA command counts as the line end before the first line.</summary>
    public void Reset(long maxMessageBytes, int maxLineBytes, int maxHops)
    {
        this.maxMessageBytes = maxMessageBytes;
        this.maxLineBytes = maxLineBytes;
        this.maxHops = maxHops;
        midLine = false;
        lastLineEndedWithCrlf = true;
        inHeaders = true;
        lineBytes = 0;
        Lines = 0;
        ContentBytes = 0;
        ReceivedHeaders = 0;
        Faults = DataFaults.None;
    }

    /// <summary>Stops passing content on (the caller could not store it); scanning for the end goes on.</summary>
    public void Abandon() => Faults |= DataFaults.Abandoned;

    /// <summary>
    /// Consumes what it can of <paramref name="input"/> (advancing it), writing content to <paramref name="output"/>.
    /// After <see cref="DataStatus.OutputFull"/> the caller must pass the output on and call again with at least
    /// <see cref="MinimumOutputBytes"/> of room.
    /// </summary>
    public DataStatus Decode(ref ReadOnlySequence<byte> input, Span<byte> output, out int written)
    {
        written = 0;
        while (!input.IsEmpty)
        {
            long take;
            bool complete;
            var lf = input.PositionOf((byte)'\n');
            if (lf is null)
            {
                long available = input.Length;
                if (available < PartialLineBytes && lineBytes + available <= maxLineBytes) return DataStatus.NeedMoreInput;
                // A long line: pass on what we have, but never a trailing CR, which may be the first half of a CRLF.
                take = ByteAt(input, available - 1) == (byte)'\r' ? available - 1 : available;
                if (take == 0) return DataStatus.NeedMoreInput;
                complete = false;
            }
            else
            {
                var line = input.Slice(0, lf.Value);
                if (!midLine && lastLineEndedWithCrlf && line.Length == 2 && ByteAt(line, 0) == (byte)'.' && ByteAt(line, 1) == (byte)'\r')
                {
                    input = input.Slice(input.GetPosition(1, lf.Value));
                    return DataStatus.Complete;
                }
                take = line.Length + 1;
                complete = true;
            }

            bool atLineStart = !midLine;
            int skip = atLineStart && ByteAt(input, 0) == (byte)'.' ? 1 : 0;
            int free = output.Length - written;
            if (Faults == DataFaults.None && take - skip > free)
            {
                // The caller passes the output on and calls again with room; a line longer than that room (a long
                // line, or a partial one) is passed on in parts, again never ending a part on a CR.
                if (free < MinimumOutputBytes) return DataStatus.OutputFull;
                take = skip + free;
                if (ByteAt(input, take - 1) == (byte)'\r') take--;
                complete = false;
            }

            var piece = input.Slice(0, take);
            Inspect(piece, complete, atLineStart, skip);
            if (Faults == DataFaults.None)
            {
                long length = take - skip;
                if (ContentBytes + length > maxMessageBytes)
                {
                    Faults |= DataFaults.TooBig;
                }
                else
                {
                    piece.Slice(skip).CopyTo(output[written..]);
                    written += (int)length;
                    ContentBytes += length;
                }
            }
            if (complete)
            {
                midLine = false;
                lineBytes = 0;
                Lines++;
            }
            else
            {
                midLine = true;
                lineBytes += take;
            }
            input = input.Slice(take);
        }
        return DataStatus.NeedMoreInput;
    }

    private void Inspect(in ReadOnlySequence<byte> piece, bool complete, bool atLineStart, int skip)
    {
        if (lineBytes + piece.Length > maxLineBytes) Faults |= DataFaults.LineTooLong;
        bool crlf = false;
        if (complete)
        {
            crlf = piece.Length >= 2 && ByteAt(piece, piece.Length - 2) == (byte)'\r';
            lastLineEndedWithCrlf = crlf;
            if (!crlf) Faults |= DataFaults.BareLineEnding;
            if (piece.Slice(0, piece.Length - (crlf ? 2 : 1)).PositionOf((byte)'\r') is not null) Faults |= DataFaults.BareLineEnding;
        }
        else if (piece.PositionOf((byte)'\r') is not null)
        {
            Faults |= DataFaults.BareLineEnding; // parts never end on a CR, so any CR in one is not followed by LF
        }

        if (atLineStart && inHeaders)
        {
            long contentLength = piece.Length - skip;
            if (complete && contentLength == (crlf ? 2 : 1))
            {
                inHeaders = false; // the empty line that ends the header section
            }
            else if (IsReceivedHeader(piece.Slice(skip)) && ++ReceivedHeaders > maxHops)
            {
                Faults |= DataFaults.TooManyHops;
            }
        }
    }

    /// <summary>"Received", optional spaces or tabs, ":" (case-insensitive, RFC 5322 field name).</summary>
    private static bool IsReceivedHeader(in ReadOnlySequence<byte> line)
    {
        Span<byte> start = stackalloc byte[24];
        int n = (int)Math.Min(line.Length, start.Length);
        line.Slice(0, n).CopyTo(start);
        start = start[..n];
        if (n < 9 || !Ascii.EqualsIgnoreCase(start[..8], "Received"u8)) return false;
        int i = 8;
        while (i < n && start[i] is (byte)' ' or (byte)'\t') i++;
        return i < n && start[i] == (byte)':';
    }

    private static byte ByteAt(in ReadOnlySequence<byte> sequence, long index)
    {
        var first = sequence.FirstSpan;
        if (index < first.Length) return first[(int)index];
        foreach (var memory in sequence.Slice(index))
            if (!memory.IsEmpty) return memory.Span[0];
        throw new ArgumentOutOfRangeException(nameof(index));
    }
}
