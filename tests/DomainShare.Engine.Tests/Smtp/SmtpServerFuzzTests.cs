using System.Net;
using System.Net.Sockets;
using System.Text;
using MimeKit;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>
/// A bounded fuzz over real sockets: thousands of hostile or broken sessions against one server, after which a normal
/// client must still be served and nothing may have escaped: no failed session, no open draft, no file left behind.
/// </summary>
public sealed class SmtpServerFuzzTests
{
    private const int Sessions = 2000;

    private static readonly string[] Transcript =
    [
        "EHLO fuzz.test\r\n", "MAIL FROM:<a@local.test> SIZE=300 BODY=8BITMIME\r\n", "RCPT TO:<b@local.test>\r\n",
        "RCPT TO:<unknown@local.test>\r\n", "RCPT TO:<c@peer.test>\r\n", "DATA\r\n",
        "Received: from x\r\nSubject: fuzz\r\n\r\n..dot\r\nbody\r\n", ".\r\n", "RSET\r\n", "NOOP\r\n", "QUIT\r\n",
    ];

    private static readonly string[] Words =
    [
        "EHLO", "HELO", "MAIL FROM:", "RCPT TO:", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH", "BDAT",
        "<", ">", "<>", "@", ":", ",", "\"", "\\", " ", "  ", "SIZE=", "BODY=8BITMIME", "SMTPUTF8", "=", "9999999999999999999",
        "a@local.test", "<@r.test:x@local.test>", "é", "\0", "\r", "\n", "\r\n", "\r\n", "\r\n.\r\n", ".", "\t", "\u00ff",
    ];

    private static readonly byte[] Special = [(byte)'\r', (byte)'\n', (byte)'.', 0, (byte)'<', (byte)'>', (byte)':', (byte)' ', 0xFF];

    private static byte[] HostileBytes(Random random)
    {
        var bytes = new List<byte>();
        switch (random.Next(5))
        {
            case 0: // noise, rich in the bytes that matter to a line parser
                int n = random.Next(0, 3000);
                for (int i = 0; i < n; i++)
                    bytes.Add(random.Next(4) == 0 ? Special[random.Next(Special.Length)] : (byte)random.Next(256));
                break;
            case 1: // a real transaction, cut anywhere and bent here and there
                foreach (var step in Transcript) bytes.AddRange(Encoding.ASCII.GetBytes(step));
                int cut = random.Next(bytes.Count + 1);
                bytes.RemoveRange(cut, bytes.Count - cut);
                for (int i = random.Next(4); i > 0 && bytes.Count > 0; i--) bytes[random.Next(bytes.Count)] = (byte)random.Next(256);
                break;
            case 2: // command-shaped garbage
                int words = random.Next(1, 60);
                for (int i = 0; i < words; i++) bytes.AddRange(Encoding.UTF8.GetBytes(Words[random.Next(Words.Length)]));
                break;
            case 3: // one line far too long, then a command
                bytes.AddRange(Encoding.ASCII.GetBytes("MAIL FROM:<"));
                bytes.AddRange(Enumerable.Repeat((byte)'x', random.Next(500, 40_000)));
                bytes.AddRange(Encoding.ASCII.GetBytes(random.Next(2) == 0 ? "\r\nNOOP\r\n" : ""));
                break;
            default: // STARTTLS and then anything but a TLS handshake
                bytes.AddRange(Encoding.ASCII.GetBytes("EHLO fuzz.test\r\nSTARTTLS\r\n"));
                int m = random.Next(0, 600);
                for (int i = 0; i < m; i++) bytes.Add((byte)random.Next(256));
                break;
        }
        return bytes.ToArray();
    }

    private static async Task HostileSessionAsync(IPEndPoint endpoint, Random random)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await socket.ConnectAsync(endpoint, timeout.Token);
            var bytes = HostileBytes(random);
            int offset = 0;
            while (offset < bytes.Length)
            {
                int n = Math.Min(bytes.Length - offset, random.Next(1, bytes.Length + 1));
                await socket.SendAsync(bytes.AsMemory(offset, n), SocketFlags.None, timeout.Token);
                offset += n;
            }
            switch (random.Next(3))
            {
                case 0: // a crash: RST, possibly while the server is still answering
                    socket.LingerState = new LingerOption(true, 0);
                    break;
                case 1: // hang up without reading anything
                    socket.Shutdown(SocketShutdown.Both);
                    break;
                default: // say we are done and read whatever comes until the server closes
                    socket.Shutdown(SocketShutdown.Send);
                    var scratch = new byte[4096];
                    while (await socket.ReceiveAsync(scratch, SocketFlags.None, timeout.Token) > 0) { }
                    break;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            // The server may close first (too many errors, a failed handshake): that is its right.
        }
    }

    [Fact]
    public async Task Thousands_of_hostile_sessions_leave_the_server_serving_with_nothing_escaped()
    {
        await using var f = await SmtpFixture.StartAsync(o => o with
        {
            MaxConnections = 1000,
            MaxConnectionsPerSource = 1000,
            MaxErrors = 8,
            MaxLineBytes = 512,
            MaxDataLineBytes = 2000,
            MaxMessageBytes = 20_000,
            MaxHops = 3,
            CommandTimeout = TimeSpan.FromSeconds(3),
            DataTimeout = TimeSpan.FromSeconds(3),
            Certificate = TestCertificates.Server,
        });

        await Parallel.ForEachAsync(Enumerable.Range(0, Sessions), new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, _) => await HostileSessionAsync(f.EndPoint, new Random(90_000 + i)));

        // A well-behaved client is still served, over TLS too.
        using (var client = await f.MailKitAsync(MailKit.Security.SecureSocketOptions.StartTls))
        {
            var message = new MimeMessage();
            message.From.Add(MailboxAddress.Parse("sender@local.test"));
            message.To.Add(MailboxAddress.Parse("alice@local.test"));
            message.Subject = "after the storm";
            message.Body = new TextPart("plain") { Text = "still here" };
            var response = await client.SendAsync(message);
            Assert.Contains("queued as", response);
            await client.DisconnectAsync(quit: true);
        }

        await SmtpFixture.EventuallyAsync(() => f.Server.GetStatistics().ActiveSessions == 0 && f.Sink.Open == 0, "every session has ended");
        var statistics = f.Server.GetStatistics();
        Assert.Equal(0, statistics.SessionFailures);
        Assert.True(statistics.ConnectionsAccepted >= Sessions, $"{statistics.ConnectionsAccepted} connections accepted");
        Assert.Empty(f.Log.At(LogLevel.Error));
        Assert.Equal(f.Sink.Committed.Count, f.Sink.Files.Length); // no draft left behind
        Assert.Equal(statistics.MessagesAccepted, f.Sink.Committed.Count);
        Assert.Contains(f.Sink.Committed, m => m.Text.Contains("still here", StringComparison.Ordinal));
    }
}
