using System.Text;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>
/// Datagrams for fuzzing: valid queries, then mutations of them (bit flips, truncation, insertion of spaces, CR, LF,
/// NUL and invalid UTF-8, duplication, oversize) and plain random bytes. Deterministic for a given seed.
/// </summary>
internal sealed class MingerFuzz(int seed)
{
    private static readonly string[] Mailboxes =
    [
        "user@example.com", "User@Example.COM", "josé@exemple.com", "日本語@例え.jp", "a@b", "*", "x+tag@sub.domain.example",
        "alice@example.com", "bob@example.com", "carol@example.com", "nobody@example.com", "🙂@emoji.example", "q\"uote@example.com",
    ];
    private static readonly byte[][] Insertions =
    [
        " "u8.ToArray(), "\r"u8.ToArray(), "\n"u8.ToArray(), "\r\n"u8.ToArray(), [0], [0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80],
        [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], "\t"u8.ToArray(), "@"u8.ToArray(), " d="u8.ToArray(), "="u8.ToArray(),
        "\u00A0"u8.ToArray(), "\u2028"u8.ToArray(), [0x7F], [0xC2, 0x85],
    ];

    /// <summary>Every mailbox, with and without a digest, with and without a tag: the seeds that mutations start from.</summary>
    private static readonly byte[][] ValidQueries =
    [
        .. from mailbox in Mailboxes
           from secret in new[] { null, "0123456789abcdef" }
           from tags in new[] { null, new[] { new KeyValuePair<string, string>("v", "1") } }
           select MingerCodec.EncodeQuery(mailbox, secret, tags),
    ];

    private readonly Random random = new(seed);

    public byte[] Valid() => (byte[])ValidQueries[random.Next(ValidQueries.Length)].Clone();

    public byte[] Next()
    {
        int kind = random.Next(100);
        if (kind < 10) return Valid();
        if (kind < 20) return RandomBytes(random.Next(0, 80));
        if (kind < 22) return RandomBytes(random.Next(MingerCodec.MaxDatagramBytes - 2, MingerCodec.MaxDatagramBytes + 200));
        var data = new List<byte>(ValidQueries[random.Next(ValidQueries.Length)]);
        int mutations = 1 + random.Next(4);
        for (int i = 0; i < mutations; i++) Mutate(data);
        return [.. data];
    }

    private void Mutate(List<byte> data)
    {
        switch (random.Next(7))
        {
            case 0 when data.Count > 0: // bit flip
                int at = random.Next(data.Count);
                data[at] ^= (byte)(1 << random.Next(8));
                break;
            case 1: // truncation
                int cut = random.Next(data.Count + 1);
                data.RemoveRange(cut, data.Count - cut);
                break;
            case 2: // insertion of a troublesome byte sequence
                data.InsertRange(random.Next(data.Count + 1), Insertions[random.Next(Insertions.Length)]);
                break;
            case 3 when data.Count > 0: // deletion of one byte
                data.RemoveAt(random.Next(data.Count));
                break;
            case 4: // oversize: repeat the datagram past the limit
                var copy = data.ToArray();
                while (data.Count <= MingerCodec.MaxDatagramBytes) data.AddRange(copy.Length == 0 ? [(byte)'a'] : copy);
                break;
            case 5 when data.Count > 0: // random byte overwrite
                data[random.Next(data.Count)] = (byte)random.Next(256);
                break;
            default: // append a random tag-like or junk token
                data.AddRange(Encoding.UTF8.GetBytes(random.Next(2) == 0 ? $" t{random.Next(10)}=x" : " junk"));
                break;
        }
    }

    private byte[] RandomBytes(int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
