using System.Management.Automation;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Smtp;

namespace DomainShare.Commands;

/// <summary>
/// Sends a real test message over SMTP to an address through a server (this server's relay by default) and reports
/// the server's reply and the latency, like Exchange's Test-Mailflow.
/// </summary>
[Cmdlet(VerbsCommunications.Send, "DomainShareTestMessage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DomainShareTestMessageResult))]
public sealed class SendDomainShareTestMessageCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Address", "EmailAddress", "PrimarySmtpAddress")]
    public string[] To { get; set; } = [];

    /// <summary>The sender; postmaster@ this server's name by default.</summary>
    [Parameter]
    public string? From { get; set; }

    /// <summary>The SMTP server as host:port ([IPv6]:port); this server's SMTP endpoint by default.</summary>
    [Parameter]
    public string? Server { get; set; }

    [Parameter]
    public string? Subject { get; set; }

    /// <summary>Do not use STARTTLS even when the server offers it.</summary>
    [Parameter]
    public SwitchParameter NoTls { get; set; }

    [Parameter]
    [DurationTransformation]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    protected override void ProcessRecord()
    {
        var (host, port, from) = OrTerminate(Target);
        foreach (var to in To)
        {
            string server = host.Contains(':') ? $"[{host}]:{port}" : $"{host}:{port}";
            if (!ShouldProcess($"test message to '{to}' through {server}", "Send"))
                continue;
            TryItem(() =>
            {
                var r = Await(TestMessageSender.SendAsync(host, port, from, to, Subject, !NoTls, Timeout, Cancellation));
                WriteObject(new DomainShareTestMessageResult
                {
                    To = r.To, From = r.From, Server = r.Server, Accepted = r.Accepted, StatusCode = r.StatusCode,
                    Reply = r.Reply, Latency = r.Latency, MessageId = r.MessageId, Secure = r.Secure,
                });
            }, to);
        }
    }

    private (string Host, int Port, string From) Target()
    {
        ServerConfiguration? config = null;
        if (Server is null || From is null)
            config = OpenStore().Load();
        string host;
        int port;
        if (Server is not null)
        {
            var (h, p) = Names.ParsePeerName(Server);
            host = h.Trim('[', ']');
            port = p ?? Defaults.SmtpPort;
        }
        else
        {
            var endpoint = config!.Smtp.Endpoint;
            // A listener on every address is reached on loopback.
            host = endpoint.Address.Equals(System.Net.IPAddress.Any) ? "127.0.0.1"
                 : endpoint.Address.Equals(System.Net.IPAddress.IPv6Any) ? "::1" : endpoint.Address.ToString();
            port = endpoint.Port;
        }
        return (host, port, From ?? $"postmaster@{config!.ServerName}");
    }
}
