using System.Management.Automation;
using System.Security;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;

namespace DomainShare.Commands;

/// <summary>Writes a new server configuration with the defaults of the domain-sharing specification.</summary>
[Cmdlet(VerbsData.Initialize, "DomainShare", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareConfig))]
public sealed class InitializeDomainShareCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0)]
    [Alias("Identity")]
    public string ServerName { get; set; } = "";

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DataDirectory { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? SmtpEndpoint { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MingerEndpoint { get; set; }

    [Parameter]
    [SecretTransformation]
    public SecureString? MingerSecret { get; set; }

    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void EndProcessing()
    {
        var store = OpenStore();
        var config = OrTerminate(() => Build());
        if (!ShouldProcess($"configuration '{store.FilePath}' for server '{config.ServerName}'", Force && store.Exists ? "Replace" : "Create"))
            return;
        OrTerminate(() => store.Create(config, Force));
        WriteObject(config.ToOutput(store));
    }

    private ServerConfiguration Build()
    {
        var config = new ServerConfiguration { ServerName = Names.NormalizeServerName(ServerName) };
        if (DataDirectory is not null) config = config with { DataDirectory = DataDirectory };
        if (SmtpEndpoint is not null) config = config with { Smtp = config.Smtp with { Endpoint = Endpoint.Parse(SmtpEndpoint, "-SmtpEndpoint") } };
        if (MingerEndpoint is not null) config = config with { Minger = config.Minger with { Endpoint = Endpoint.Parse(MingerEndpoint, "-MingerEndpoint") } };
        if (MingerSecret is not null)
            config = config with { Minger = config.Minger with { Secret = Names.ValidateSecret(SecretTransformationAttribute.Reveal(MingerSecret), "Minger secret") } };
        return config;
    }
}
