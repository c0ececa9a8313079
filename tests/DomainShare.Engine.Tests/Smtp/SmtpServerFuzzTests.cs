using System.Net;
using System.Net.Sockets;
using DomainShare.Testing;
using MimeKit;

namespace DomainShare.Engine.Tests.Smtp;

/// <summary>
/// A bounded fuzz over real sockets: thousands of hostile or broken sessions against one server, after which a normal
/// client must still be served and nothing may have escaped: no failed session, no open draft, no file left behind.
/// The input comes from <see cref="HostileSmtpInput"/>, which the end-to-end hostile battery shares.
/// </summary>
public sealed class SmtpServerFuzzTests
{
    private const int Sessions = 2000;

    private static async Task HostileSessionAsync(IPEndPoint endpoint, Random random)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await socket.ConnectAsync(endpoint, timeout.Token);
            var bytes = HostileSmtpInput.Any(random);
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
