using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using DomainShare.Engine.Queue;
using MimeKit;
using MimeKit.Utils;

namespace DomainShare.Engine.Delivery;

/// <summary>
/// Delivery status notifications (RFC 3464): a <c>multipart/report; report-type=delivery-status</c> from
/// <c>MAILER-DAEMON@&lt;server&gt;</c> with a human explanation, the machine-readable status of each failed recipient
/// (Final-Recipient, Action, Status, Diagnostic-Code) and the original message's headers.
/// </summary>
public static partial class BounceBuilder
{
    /// <summary>At most this much of the original message is scanned for its header block.</summary>
    public const int MaxOriginalHeaderBytes = 64 * 1024;

    [GeneratedRegex(@"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")]
    private static partial Regex EnhancedStatus();

    /// <summary>The RFC 3463 status in an error line (<c>550 5.1.1 ...</c> → <c>5.1.1</c>); <c>5.0.0</c> when it has none.</summary>
    public static string StatusOf(string? error)
    {
        if (error is not null && EnhancedStatus().Match(error) is { Success: true } m && m.Groups[1].Value != "2") return m.Value;
        if (error is not null && error.Length >= 3 && error[0] is '4' && char.IsAsciiDigit(error[1]) && char.IsAsciiDigit(error[2])) return "4.0.0";
        return "5.0.0";
    }

    /// <summary>Builds the bounce for <paramref name="failed"/> recipients of <paramref name="original"/>; returns the message bytes (CRLF line ends).</summary>
    public static byte[] Build(string serverName, QueuedMessage original, IReadOnlyList<QueuedRecipient> failed, ReadOnlySpan<byte> originalHeaders, DateTimeOffset now)
    {
        ArgumentException.ThrowIfNullOrEmpty(original.ReversePath, "original.ReversePath");
        var dsn = new MimeMessage();
        dsn.From.Add(new MailboxAddress("Mail Delivery System", $"MAILER-DAEMON@{serverName}"));
        try { dsn.To.Add(new MailboxAddress(string.Empty, original.ReversePath)); }
        catch (ParseException) { dsn.Headers.Add("To", $"<{original.ReversePath}>"); }
        dsn.Subject = "Undelivered Mail Returned to Sender";
        dsn.Date = now;
        dsn.MessageId = MimeUtils.GenerateMessageId(serverName);
        dsn.Headers.Add("Auto-Submitted", "auto-replied");

        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"This is the mail system at {serverName}.\r\n\r\n");
        text.Append("Your message could not be delivered to the recipient(s) below. The reasons are given after each\r\n");
        text.Append("address. The headers of your message are attached.\r\n\r\n");
        foreach (var r in failed)
            text.Append(CultureInfo.InvariantCulture, $"<{r.Address}>: {r.LastError ?? "delivery failed"}\r\n");
        text.Append(CultureInfo.InvariantCulture, $"\r\nQueue id: {original.Id}, received {original.Created.UtcDateTime.ToString("R", CultureInfo.InvariantCulture)}.\r\n");

        var status = new MessageDeliveryStatus();
        var perMessage = new HeaderList
        {
            { "Reporting-MTA", $"dns; {serverName}" },
            { "X-DomainShare-Queue-ID", original.Id },
            { "Arrival-Date", DateUtils.FormatDate(original.Created) },
        };
        status.StatusGroups.Add(perMessage);
        foreach (var r in failed)
        {
            var group = new HeaderList
            {
                { "Final-Recipient", $"rfc822; {r.Address}" },
                { "Action", "failed" },
                { "Status", StatusOf(r.LastError) },
            };
            if (r.LastError is { Length: > 0 } error) group.Add("Diagnostic-Code", $"smtp; {error}");
            group.Add("Last-Attempt-Date", DateUtils.FormatDate(r.Completed ?? now));
            status.StatusGroups.Add(group);
        }

        var report = new MultipartReport("delivery-status")
        {
            new TextPart("plain") { Text = text.ToString() },
            status,
        };
        byte[] headers = originalHeaders.ToArray();
        if (headers.Length > 0)
        {
            var headerPart = new MimePart("text", "rfc822-headers")
            {
                Content = new MimeContent(new MemoryStream(headers)),
                ContentTransferEncoding = headers.Any(b => b >= 0x80) ? ContentEncoding.EightBit : ContentEncoding.SevenBit,
            };
            report.Add(headerPart);
        }
        dsn.Body = report;

        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        using var output = new MemoryStream();
        dsn.WriteTo(format, output);
        return output.ToArray();
    }

    /// <summary>The header block of a message (up to and including the blank line), at most <see cref="MaxOriginalHeaderBytes"/>.</summary>
    public static byte[] ReadHeaders(Stream content)
    {
        var buffer = new byte[MaxOriginalHeaderBytes];
        int filled = 0, read;
        while (filled < buffer.Length && (read = content.Read(buffer, filled, buffer.Length - filled)) > 0) filled += read;
        var span = buffer.AsSpan(0, filled);
        int end = span.IndexOf("\r\n\r\n"u8);
        if (end >= 0) return span[..(end + 4)].ToArray();
        end = span.IndexOf("\n\n"u8);
        if (end >= 0) return span[..(end + 2)].ToArray();
        return span.ToArray();
    }
}
