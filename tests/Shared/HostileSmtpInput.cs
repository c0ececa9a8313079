using System.Text;

namespace DomainShare.Testing;

/// <summary>
/// Hostile and broken SMTP client input: what a fuzzing client writes to a server. Shared (linked, not copied) by the
/// engine's in-process fuzz (tests/DomainShare.Engine.Tests/Smtp/SmtpServerFuzzTests.cs) and the end-to-end hostile
/// battery against a real relay (tests/DomainShare.EndToEnd.Tests/Hardening/HostileSmtpTests.cs). Every method draws
/// only from the <see cref="Random"/> it is given, so a seed replays the same bytes.
/// </summary>
internal static class HostileSmtpInput
{
    /// <summary>Fragments of commands, addresses, parameters and line ends, glued at random by <see cref="CommandGarbage"/>.</summary>
    public static readonly string[] Words =
    [
        "EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "BDAT",
        "<", ">", "<>", "@", ":", ",", "\"", "\\", " ", "  ", "SIZE=", "BODY=8BITMIME", "SMTPUTF8", "=", "9999999999999999999",
        "a@local.test", "<@r.test:x@local.test>", "é", "\0", "\r", "\n", "\r\n", "\r\n", "\r\n.\r\n", ".", "\t", "\u00ff",
    ];

    /// <summary>The bytes that matter to a line parser, drawn more often than the others by <see cref="Noise"/>.</summary>
    public static readonly byte[] Special = [(byte)'\r', (byte)'\n', (byte)'.', 0, (byte)'<', (byte)'>', (byte)':', (byte)' ', 0xFF];

    /// <summary>One of the five kinds below, at random (noise, a cut transcript, command garbage, an over-long line, STARTTLS then garbage).</summary>
    public static byte[] Any(Random random) => random.Next(5) switch
    {
        0 => Noise(random),
        1 => Transcript(random),
        2 => CommandGarbage(random),
        3 => OverlongLine(random),
        _ => StartTlsGarbage(random),
    };

    /// <summary>Up to 3,000 random bytes, a quarter of them CR, LF, dot, NUL, angle brackets, colon, space or 0xFF.</summary>
    public static byte[] Noise(Random random)
    {
        int n = random.Next(0, 3000);
        var bytes = new byte[n];
        for (int i = 0; i < n; i++)
            bytes[i] = random.Next(4) == 0 ? Special[random.Next(Special.Length)] : (byte)random.Next(256);
        return bytes;
    }

    /// <summary>
    /// A real transaction (EHLO, MAIL, RCPT to <paramref name="recipient"/> and two others, DATA, content, the final dot,
    /// RSET, NOOP, QUIT), cut anywhere and with up to three bytes bent. With <paramref name="mayComplete"/> false the cut
    /// falls before the content's end is complete and no bent byte is a CR, LF or dot: the message can never be whole,
    /// so a server that stores it has stored a truncated message.
    /// </summary>
    public static byte[] Transcript(Random random, string recipient = "b@local.test", bool mayComplete = true)
    {
        string[] steps =
        [
            "EHLO fuzz.test\r\n", "MAIL FROM:<a@local.test> SIZE=300 BODY=8BITMIME\r\n", $"RCPT TO:<{recipient}>\r\n",
            "RCPT TO:<unknown@local.test>\r\n", "RCPT TO:<c@peer.test>\r\n", "DATA\r\n",
            "Received: from x\r\nSubject: fuzz\r\n\r\n..dot\r\nbody\r\n", ".\r\n", "RSET\r\n", "NOOP\r\n", "QUIT\r\n",
        ];
        var bytes = new List<byte>();
        int end = 0;
        foreach (var step in steps)
        {
            bytes.AddRange(Encoding.ASCII.GetBytes(step));
            if (step == ".\r\n") end = bytes.Count;
        }
        int cut = random.Next((mayComplete ? bytes.Count : end - 1) + 1);
        bytes.RemoveRange(cut, bytes.Count - cut);
        for (int i = random.Next(4); i > 0 && bytes.Count > 0; i--)
        {
            int at = random.Next(bytes.Count);
            byte bent = (byte)random.Next(256);
            if (!mayComplete && bent is (byte)'\r' or (byte)'\n' or (byte)'.') bent = (byte)'#';
            bytes[at] = bent;
        }
        return [.. bytes];
    }

    /// <summary>1 to 59 of <see cref="Words"/> glued together: command-shaped garbage.</summary>
    public static byte[] CommandGarbage(Random random)
    {
        var bytes = new List<byte>();
        int words = random.Next(1, 60);
        for (int i = 0; i < words; i++) bytes.AddRange(Encoding.UTF8.GetBytes(Words[random.Next(Words.Length)]));
        return [.. bytes];
    }

    /// <summary>A MAIL FROM line of 500 to 40,000 bytes, then (half the time) its CRLF and a NOOP.</summary>
    public static byte[] OverlongLine(Random random)
    {
        var bytes = new List<byte>(Encoding.ASCII.GetBytes("MAIL FROM:<"));
        bytes.AddRange(Enumerable.Repeat((byte)'x', random.Next(500, 40_000)));
        bytes.AddRange(Encoding.ASCII.GetBytes(random.Next(2) == 0 ? "\r\nNOOP\r\n" : ""));
        return [.. bytes];
    }

    /// <summary>EHLO, STARTTLS, and then up to 600 random bytes instead of a TLS handshake.</summary>
    public static byte[] StartTlsGarbage(Random random)
    {
        var bytes = new List<byte>(Encoding.ASCII.GetBytes("EHLO fuzz.test\r\nSTARTTLS\r\n"));
        int m = random.Next(0, 600);
        for (int i = 0; i < m; i++) bytes.Add((byte)random.Next(256));
        return [.. bytes];
    }
}
