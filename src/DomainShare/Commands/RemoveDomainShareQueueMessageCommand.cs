using System.Management.Automation;
using DomainShare.Engine.Queue;

namespace DomainShare.Commands;

/// <summary>Deletes queued messages without delivering them: their undelivered recipients never get them, and no bounce is sent.</summary>
[Cmdlet(VerbsCommon.Remove, "DomainShareQueueMessage", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(DomainShareQueueMessage))]
public sealed class RemoveDomainShareQueueMessageCommand : DomainShareCmdlet
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    public string[] Id { get; set; } = [];

    /// <summary>Remove without asking for confirmation (-WhatIf is still honoured).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        using var access = OrTerminate(() => QueueAccess.Open(store));
        bool any = false;
        foreach (var id in Id)
        {
            var message = access.Queue.Get(id);
            string what = message is null ? $"queued message '{id}'"
                : $"queued message '{id}' from <{message.ReversePath}> to {string.Join(", ", message.Recipients.Where(r => r.State == RecipientState.Pending).Select(r => r.Address))}";
            if (!Confirmed(what, "Delete without delivering", Force)) continue;
            if (!access.Queue.Remove(id))
            {
                WriteError(ToErrorRecord(QueueErrors.NotFound(id), id));
                continue;
            }
            any = true;
            if (PassThru && message is not null) WriteObject(message.ToOutput(store.FilePath));
        }
        if (any) Await(access.NotifyRelayAsync(Cancellation));
    }
}
