namespace DomainShare.Shell;

/// <summary>The process exit codes of <c>domainshare</c>: pwsh's where pwsh has one.</summary>
internal static class ExitCodes
{
    /// <summary>The script ran; for -Command, its last statement succeeded.</summary>
    public const int Success = 0;

    /// <summary>A terminating error, a parse error, a module that failed to import, or -Command whose last statement failed.</summary>
    public const int Failure = 1;

    /// <summary>No script given. pwsh would start an interactive session; this host has none, so it prints the usage.</summary>
    public const int NoScript = 2;

    /// <summary>The command line itself is wrong (unknown option, missing script path): pwsh's code for the same.</summary>
    public const int BadCommandLine = 64;

    /// <summary>Stopped with Ctrl+C (SIGINT): 128 + 2, as shells report it.</summary>
    public const int Interrupted = 130;
}
