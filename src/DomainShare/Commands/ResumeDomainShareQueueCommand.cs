using System.Management.Automation;
using DomainShare.Engine.Queue;

namespace DomainShare.Commands;

/// <summary>Retries queued messages now instead of at their next scheduled attempt: all of them, or those given by -Id.</summary>
[Cmdlet(VerbsLifecycle.Resume, "DomainShareQueue", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low)]
[OutputType(typeof(DomainShareQueueMessage))]
public sealed class ResumeDomainShareQueueCommand : DomainShareCmdlet
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string[]? Id { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        var store = OpenStore();
        using var access = OrTerminate(() => QueueAccess.Open(store));
        if (Id is null)
        {
            if (ShouldProcess($"every queued message of '{store.FilePath}'", "Retry now"))
                WriteVerbose($"{access.Queue.ResumeAll()} message(s) set to retry now.");
        }
        else
        {
            foreach (var id in Id)
            {
                if (!ShouldProcess($"queued message '{id}'", "Retry now")) continue;
                if (!access.Queue.Resume(id))
                    WriteError(ToErrorRecord(QueueErrors.NotFound(id), id));
                else if (PassThru && access.Queue.Get(id) is { } message)
                    WriteObject(message.ToOutput(store.FilePath));
            }
        }
        if (!Await(access.NotifyRelayAsync(Cancellation)))
            WriteVerbose("No relay is running: the messages are retried when it starts.");
    }
}
