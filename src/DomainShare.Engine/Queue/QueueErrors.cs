namespace DomainShare.Engine.Queue;

public static class QueueErrors
{
    public static DomainShareException NotFound(string id)
        => new(ErrorIds.QueueMessageNotFound, ErrorKind.NotFound, $"No queued message has the id '{id}'.",
               "List the queue with Get-DomainShareQueue; a delivered message leaves the queue.", id);
}
