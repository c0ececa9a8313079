namespace DomainShare.Engine.Routing;

/// <summary>The SMTP replies of domain-sharing.md for each resolution result: one table, used by the relay and shown by Resolve-DomainShareAddress.</summary>
public static class SmtpReplies
{
    public static string ForRecipient(ResolutionResult result) => result switch
    {
        ResolutionResult.Local => "250 2.1.5 Recipient OK",
        ResolutionResult.Peer => "250 2.1.5 Recipient OK (relayed to the server that holds the mailbox)",
        ResolutionResult.DomainNotHosted => "550 5.7.1 Relaying denied",
        ResolutionResult.NotFound => "550 5.1.1 User unknown",
        ResolutionResult.TemporaryFailure => "451 4.4.3 Temporary lookup failure, try again later",
        ResolutionResult.CannotReceive or ResolutionResult.LocalCannotReceive => "450 4.2.1 Mailbox unavailable, try again later",
        _ => "451 4.3.0 Temporary failure",
    };
}
