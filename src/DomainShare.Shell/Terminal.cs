namespace DomainShare.Shell;

/// <summary>
/// What the standard streams are connected to, decided once at start-up. Colour and other escape sequences are
/// written only to a stream that is a terminal, and never when <c>NO_COLOR</c> is set (https://no-color.org) or
/// <c>TERM=dumb</c>.
/// </summary>
internal sealed class Terminal
{
    private Terminal(bool input, bool output, bool error, bool colourAllowed, bool virtualTerminal)
    {
        InputIsTerminal = input;
        OutputIsTerminal = output;
        ErrorIsTerminal = error;
        ColourAllowed = colourAllowed;
        SupportsVirtualTerminal = output && virtualTerminal;
    }

    public bool InputIsTerminal { get; }
    public bool OutputIsTerminal { get; }
    public bool ErrorIsTerminal { get; }

    /// <summary>False when NO_COLOR is set to anything or TERM is 'dumb'.</summary>
    public bool ColourAllowed { get; }

    /// <summary>Standard output is a terminal that understands escape sequences.</summary>
    public bool SupportsVirtualTerminal { get; }

    /// <summary>Escape sequences may be written to standard output.</summary>
    public bool ColourOnOutput => SupportsVirtualTerminal && ColourAllowed;

    /// <summary>Escape sequences may be written to standard error.</summary>
    public bool ColourOnError => ErrorIsTerminal && ColourAllowed;

    public static Terminal Detect()
    {
        bool capable = !string.Equals(Environment.GetEnvironmentVariable("TERM"), "dumb", StringComparison.OrdinalIgnoreCase);
        bool noColor = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        return new Terminal(!Console.IsInputRedirected, !Console.IsOutputRedirected, !Console.IsErrorRedirected,
            colourAllowed: capable && !noColor, virtualTerminal: capable);
    }
}
