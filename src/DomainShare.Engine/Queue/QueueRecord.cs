using System.Globalization;
using System.Text;

namespace DomainShare.Engine.Queue;

/// <summary>
/// The one file a queued message is stored in, <c>&lt;id&gt;.msg</c>: the content exactly as the SMTP server received it
/// (our <c>Received:</c> header first), then the envelope as it was at the commit (<see cref="QueueFormat"/> JSON), then a
/// 32-byte footer line that says where the two end:
/// <code>\nDSQUEUE1 &lt;content length, 12 digits&gt; &lt;envelope length, 8 digits&gt;\n</code>
/// A file whose length is not content + envelope + footer, or whose footer or envelope does not read, is not a message
/// (it was cut or changed after the commit) and is quarantined, never delivered in part.
/// One file per message, renamed into the queue as the commit point, is half the file-system work of a content file and
/// an envelope file (creating, flushing and deleting files is most of a relay's CPU on ext4).
/// </summary>
internal static class QueueRecord
{
    public const int FooterBytes = 32;
    private const string Magic = "DSQUEUE1";
    private const long MaxContentBytes = 999_999_999_999;
    private const int MaxEnvelopeBytes = 99_999_999;

    /// <summary>The footer that follows <paramref name="contentBytes"/> of content and <paramref name="envelopeBytes"/> of envelope.</summary>
    public static byte[] Footer(long contentBytes, int envelopeBytes)
    {
        if (contentBytes is < 0 or > MaxContentBytes) throw new ArgumentOutOfRangeException(nameof(contentBytes));
        if (envelopeBytes is < 2 or > MaxEnvelopeBytes) throw new ArgumentOutOfRangeException(nameof(envelopeBytes));
        var footer = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"\n{Magic} {contentBytes:D12} {envelopeBytes:D8}\n"));
        System.Diagnostics.Debug.Assert(footer.Length == FooterBytes);
        return footer;
    }

    /// <summary>
    /// Reads the envelope stored in the message file at <paramref name="path"/> and the length of its content. Throws
    /// <see cref="InvalidDataException"/> when the file is not a whole message, <see cref="IOException"/> when it cannot be read.
    /// </summary>
    public static QueuedMessage Read(string path, string expectedId, out long contentBytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        long length = file.Length;
        if (length < FooterBytes) throw new InvalidDataException($"the message file has {length} bytes, fewer than its footer");
        Span<byte> footer = stackalloc byte[FooterBytes];
        file.Position = length - FooterBytes;
        file.ReadExactly(footer);
        if (!TryParseFooter(footer, out contentBytes, out int envelopeBytes))
            throw new InvalidDataException("the message file has no DomainShare footer (it was cut or changed after it was queued)");
        if (contentBytes + envelopeBytes + FooterBytes != length)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"the message file has {length} bytes, its footer says {contentBytes} of content and {envelopeBytes} of envelope"));
        var envelope = new byte[envelopeBytes];
        file.Position = contentBytes;
        file.ReadExactly(envelope);
        var message = QueueFormat.Deserialize(envelope, expectedId);
        if (message.Size != contentBytes)
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                $"the message file has {contentBytes} bytes of content, its envelope says {message.Size}"));
        return message;
    }

    private static bool TryParseFooter(ReadOnlySpan<byte> footer, out long contentBytes, out int envelopeBytes)
    {
        contentBytes = 0;
        envelopeBytes = 0;
        // "\n" Magic " " 12 digits " " 8 digits "\n"
        if (footer[0] != (byte)'\n' || footer[^1] != (byte)'\n' || !footer.Slice(1, Magic.Length).SequenceEqual("DSQUEUE1"u8)
            || footer[9] != (byte)' ' || footer[22] != (byte)' ')
            return false;
        return TryDigits(footer.Slice(10, 12), out contentBytes) && TryDigits(footer.Slice(23, 8), out long envelope)
            && envelope >= 2 && (envelopeBytes = (int)envelope) == envelope;
    }

    private static bool TryDigits(ReadOnlySpan<byte> digits, out long value)
    {
        value = 0;
        foreach (byte b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9') return false;
            value = value * 10 + (b - '0');
        }
        return true;
    }
}

/// <summary>A read-only view of the first <c>length</c> bytes of a message file: its content, without envelope and footer.</summary>
internal sealed class QueuedContentStream(FileStream file, long length) : Stream
{
    private long position;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = file.Read(buffer[..Room(buffer.Length)]);
        position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n = await file.ReadAsync(buffer[..Room(buffer.Length)], cancellationToken).ConfigureAwait(false);
        position += n;
        return n;
    }

    private int Room(int wanted) => (int)Math.Min(wanted, Math.Max(0, length - position));

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => position + offset,
            SeekOrigin.End => length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        if (target < 0) throw new IOException("Cannot seek before the start of the message.");
        file.Position = target;
        position = target;
        return target;
    }

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) file.Dispose();
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return file.DisposeAsync();
    }
}
