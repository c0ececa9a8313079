using System.Diagnostics;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace DomainShare.Engine.Smtp;

/// <summary>What a test message's delivery attempt answered, like Exchange's Test-Mailflow.</summary>
public sealed record TestMessageResult(string Server, string From, string To, bool Accepted, int? StatusCode, string Reply, TimeSpan Latency, string MessageId, bool Secure);

/// <summary>Sends a real test message over SMTP (MailKit) and reports the server's reply and the latency.</summary>
public static class TestMessageSender
{
    private static MailboxAddress Mailbox(string address, string role)
        => MailboxAddress.TryParse(address, out var parsed) && parsed.Address.Contains('@')
            ? parsed
            : throw new DomainShareException(ErrorIds.InvalidAddress, ErrorKind.InvalidArgument, $"'{address}' is not a valid {role} address.",
                "Give an address such as ann@example.com.", address);

    public static async Task<TestMessageResult> SendAsync(string host, int port, string from, string to, string? subject,
        bool useStartTls, TimeSpan timeout, CancellationToken ct)
    {
        var message = new MimeMessage();
        message.From.Add(Mailbox(from, "sender"));
        message.To.Add(Mailbox(to, "recipient"));
        message.Subject = subject ?? $"DomainShare test message {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z";
        message.MessageId = MimeKit.Utils.MimeUtils.GenerateMessageId(Environment.MachineName.ToLowerInvariant() + ".domainshare.test");
        message.Headers.Add("X-DomainShare-Test", "1");
        message.Body = new TextPart("plain") { Text = $"Test message from DomainShare to {to} through {host}:{port}.\r\n" };
        string server = host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";

        using var client = new SmtpClient { Timeout = (int)timeout.TotalMilliseconds, CheckCertificateRevocation = false };
        // A test of the mail flow, not of the certificate chain: a self-signed certificate must not hide the answer.
        client.ServerCertificateValidationCallback = (_, _, _, _) => true;
        var watch = Stopwatch.StartNew();
        try
        {
            await client.ConnectAsync(host, port, useStartTls ? SecureSocketOptions.StartTlsWhenAvailable : SecureSocketOptions.None, ct).ConfigureAwait(false);
            string reply = await client.SendAsync(message, ct).ConfigureAwait(false);
            watch.Stop();
            bool secure = client.IsSecure;
            await client.DisconnectAsync(true, ct).ConfigureAwait(false);
            return new TestMessageResult(server, from, to, true, 250, reply.Trim(), watch.Elapsed, message.MessageId, secure);
        }
        catch (SmtpCommandException ex)
        {
            return new TestMessageResult(server, from, to, false, (int)ex.StatusCode, ex.Message.Trim(), watch.Elapsed, message.MessageId, client.IsSecure);
        }
        catch (SmtpProtocolException ex)
        {
            return new TestMessageResult(server, from, to, false, null, $"protocol error: {ex.Message}", watch.Elapsed, message.MessageId, client.IsSecure);
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException or TimeoutException or SslHandshakeException)
        {
            throw new DomainShareException(ErrorIds.SmtpServerUnreachable, ErrorKind.ResourceUnavailable,
                $"The SMTP server {server} could not be reached: {ex.Message}", "Check the host and port, and that the relay runs (Get-DomainShareRelay).", server, ex);
        }
    }
}
