using System.Management.Automation;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Routing;

namespace DomainShare.Commands;

/// <summary>Removes accounts. The Maildir is kept unless -RemoveMailbox is given.</summary>
[Cmdlet(VerbsCommon.Remove, "DomainShareAccount", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DomainShareAccount))]
public sealed class RemoveDomainShareAccountCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("Identity", "EmailAddress", "PrimarySmtpAddress")]
    public string[] Address { get; set; } = [];

    /// <summary>Also delete the account's Maildir and every message in it.</summary>
    [Parameter]
    public SwitchParameter RemoveMailbox { get; set; }

    /// <summary>Remove without asking for confirmation (-WhatIf is still honoured).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        var session = Lookup();
        foreach (var address in Address)
        {
            if (!Confirmed($"account '{address}'{(RemoveMailbox ? " and its mailbox" : "")}", "Remove", Force))
                continue;
            TryItem(() =>
            {
                var removed = session.Accounts.Remove(address);
                var output = removed.ToOutput(session.DataDirectory, store.FilePath);
                if (RemoveMailbox && Directory.Exists(output.Maildir))
                    Directory.Delete(output.Maildir, recursive: true);
                else if (Directory.Exists(output.Maildir))
                    WriteVerbose($"Kept the mailbox '{output.Maildir}'.");
                if (PassThru) WriteObject(output);
            }, address);
        }
    }
}
