using System.Management.Automation;
using System.Security;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Changes the ports, secret or state of configured peers.</summary>
[Cmdlet(VerbsCommon.Set, "DomainSharePeer", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainSharePeer))]
public sealed class SetDomainSharePeerCommand : PeerChangeCommand
{
    [Parameter] public int? SmtpPort { get; set; }
    [Parameter] public int? MingerPort { get; set; }
    [Parameter] [SecretTransformation] public SecureString? Secret { get; set; }
    [Parameter] public SwitchParameter ClearSecret { get; set; }
    [Parameter] public bool? Enabled { get; set; }

    private protected override string Action => "Set " + string.Join(", ",
        MyInvocation.BoundParameters.Keys.Where(k => k is nameof(SmtpPort) or nameof(MingerPort) or nameof(Secret) or nameof(ClearSecret) or nameof(Enabled)));

    private protected override void Validate()
    {
        if (SmtpPort is int sp) Names.ValidatePort(sp, "SMTP port");
        if (MingerPort is int mp) Names.ValidatePort(mp, "Minger port");
        if (Secret is not null) Names.ValidateSecret(SecretTransformationAttribute.Reveal(Secret), "peer's Minger secret");
        if (Secret is not null && ClearSecret)
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument,
                "-Secret and -ClearSecret contradict each other.", "Give one of them.");
    }

    private protected override ServerConfiguration Apply(ServerConfiguration config, PeerConfiguration peer)
        => PeerCatalog.Change(config, peer.Name, p => p with
        {
            SmtpPort = SmtpPort ?? p.SmtpPort,
            MingerPort = MingerPort ?? p.MingerPort,
            Secret = ClearSecret ? null : SecretTransformationAttribute.Reveal(Secret) ?? p.Secret,
            Enabled = Enabled ?? p.Enabled,
        });
}
