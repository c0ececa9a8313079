using System.Management.Automation;
using DomainShare.Engine;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>Changes accounts: enable or disable (a disabled account answers 4 and receives no mail), display name, quota.</summary>
[Cmdlet(VerbsCommon.Set, "DomainShareAccount", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium)]
[OutputType(typeof(DomainShareAccount))]
public sealed class SetDomainShareAccountCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity", "EmailAddress", "PrimarySmtpAddress")]
    public string[] Address { get; set; } = [];

    [Parameter] public string? DisplayName { get; set; }
    [Parameter] public bool? Enabled { get; set; }
    [Parameter] [ValidateRange(0, long.MaxValue)] public long? Quota { get; set; }
    [Parameter] public SwitchParameter ClearQuota { get; set; }
    [Parameter] public SwitchParameter PassThru { get; set; }

    protected override void BeginProcessing()
    {
        if (Quota is not null && ClearQuota)
            ThrowTerminatingError(ToErrorRecord(new DomainShareException(ErrorIds.InvalidQuota, ErrorKind.InvalidArgument,
                "-Quota and -ClearQuota contradict each other.", "Give one of them.")));
    }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var session = Lookup();
        foreach (var address in Address)
        {
            if (!ShouldProcess($"account '{address}'", "Set " + string.Join(", ", MyInvocation.BoundParameters.Keys
                    .Where(k => k is nameof(DisplayName) or nameof(Enabled) or nameof(Quota) or nameof(ClearQuota)))))
                continue;
            TryItem(() =>
            {
                var account = session.Accounts.Update(address, DisplayName, Enabled, Quota, ClearQuota);
                if (PassThru) WriteObject(account.ToOutput(session.DataDirectory, store.FilePath));
            }, address);
        }
    }
}
