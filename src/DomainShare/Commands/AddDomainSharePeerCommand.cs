using System.Management.Automation;
using System.Security;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Adds a peer: another server that shares one or more of this server's domains.</summary>
[Cmdlet(VerbsCommon.Add, "DomainSharePeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainSharePeer))]
public sealed class AddDomainSharePeerCommand : DomainShareCmdlet
{
    /// <summary>Host name or IP address, optionally followed by the SMTP port: mail.example.com:2525, [2001:db8::1]:25.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity")]
    [AllowEmptyString]
    public string Name { get; set; } = "";

    [Parameter(ValueFromPipelineByPropertyName = true)]
    public int? MingerPort { get; set; }

    [Parameter]
    [SecretTransformation]
    public SecureString? Secret { get; set; }

    [Parameter]
    public SwitchParameter Disabled { get; set; }

    /// <summary>Replace a peer of the same name instead of failing.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        TryItem(() =>
        {
            var peer = PeerCatalog.Create(Name, MingerPort, SecretTransformationAttribute.Reveal(Secret), enabled: !Disabled);
            if (!ShouldProcess($"peer '{peer.SmtpAddress}' (Minger port {peer.MingerPort}) in '{store.FilePath}'", Force ? "Add or replace" : "Add"))
                return;
            store.Update(c => PeerCatalog.Add(c, peer, replace: Force));
            if (PassThru) WriteObject(peer.ToOutput(store.FilePath));
        }, Name);
    }
}
