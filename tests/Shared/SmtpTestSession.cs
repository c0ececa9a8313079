namespace DomainShare.Testing;

/// <summary>What the tests' own SMTP servers (sinks and the faulty peer) have in common.</summary>
internal static class SmtpTestSession
{
    /// <summary>
    /// Answers RSET (after <paramref name="reset"/>), NOOP, QUIT and any verb the server does not know, as every test server
    /// does. True when the session ends (QUIT).
    /// </summary>
    public static async Task<bool> AnswerOtherAsync(string verb, Action reset, Func<string, Task> say)
    {
        switch (verb)
        {
            case "RSET":
                reset();
                await say("250 2.0.0 Ok");
                return false;
            case "NOOP":
                await say("250 2.0.0 Ok");
                return false;
            case "QUIT":
                await say("221 2.0.0 Bye");
                return true;
            default:
                await say("502 5.5.2 Command not recognized");
                return false;
        }
    }
}
