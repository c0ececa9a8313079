using System.Management.Automation.Runspaces;

namespace DomainShare.Shell;

/// <summary>What the command line asks the host to do.</summary>
internal enum ShellAction
{
    /// <summary>No script: print the usage to stderr and fail (there is no interactive session).</summary>
    NoScript,
    Help,
    Version,
    Command,
    File,
    /// <summary>The command line is wrong; <see cref="CommandLine.Error"/> says why.</summary>
    Invalid,
}

/// <summary>
/// The pwsh-style command line: <c>-Command</c>/<c>-c</c> takes every remaining argument as the script text (or
/// <c>-</c> for standard input); <c>-File</c>/<c>-f</c>, or a bare path as the first argument, takes the script path
/// and passes the remaining arguments to the script exactly as pwsh -File does. Option names are case-insensitive and
/// may be shortened to any unambiguous prefix, as in pwsh.
/// </summary>
internal sealed class CommandLine
{
    private static readonly (string Name, int ShortestPrefix)[] Options =
    [
        ("Command", 1), ("File", 1), ("Help", 1), ("Version", 1),
        ("NoProfile", 3), ("NoLogo", 3), ("NonInteractive", 4),
    ];

    private CommandLine(ShellAction action) => Action = action;

    public ShellAction Action { get; }

    /// <summary>The script text of -Command; <c>-</c> means read it from standard input.</summary>
    public string? Command { get; private init; }

    /// <summary>The script path of -File, as given.</summary>
    public string? File { get; private init; }

    /// <summary>The arguments after the -File path, as pwsh turns them into parameters for the script.</summary>
    public IReadOnlyList<CommandParameter> FileArguments { get; private init; } = [];

    /// <summary>-NonInteractive: every prompt fails instead of asking, even on a terminal.</summary>
    public bool NonInteractive { get; private init; }

    public string? Error { get; private init; }

    public static CommandLine Parse(IReadOnlyList<string> args)
    {
        bool nonInteractive = false;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!IsOption(arg))
                return ForFile(arg, args, i + 1, nonInteractive);

            switch (Match(arg))
            {
                case "Command":
                    if (i + 1 >= args.Count) return Invalid("-Command needs a script: domainshare -Command '<script>'.");
                    return new CommandLine(ShellAction.Command) { Command = string.Join(' ', args.Skip(i + 1)), NonInteractive = nonInteractive };
                case "File":
                    if (i + 1 >= args.Count) return Invalid("-File needs the path of a script: domainshare -File <script.ps1> [arguments].");
                    return ForFile(args[i + 1], args, i + 2, nonInteractive);
                case "Help":
                    return new CommandLine(ShellAction.Help);
                case "Version":
                    return new CommandLine(ShellAction.Version);
                case "NonInteractive":
                    nonInteractive = true;
                    break;
                case "NoProfile" or "NoLogo":
                    break; // accepted for pwsh compatibility: this host runs no profile and prints no banner
                default:
                    return Invalid($"Unknown option '{arg}'. Run 'domainshare -Help' for the options.");
            }
        }
        return new CommandLine(ShellAction.NoScript);
    }

    private static bool IsOption(string arg) => arg.Length > 1 && arg[0] == '-';

    /// <summary>The full name of the option <paramref name="arg"/> (<c>-c</c>, <c>--command</c>, <c>-nop</c>), or null.</summary>
    private static string? Match(string arg)
    {
        if (arg is "-?" or "--?") return "Help";
        string name = arg.TrimStart('-');
        if (name.Length == 0) return null;
        foreach (var (option, shortest) in Options)
            if (name.Length >= shortest && option.StartsWith(name, StringComparison.OrdinalIgnoreCase))
                return option;
        return null;
    }

    private static CommandLine ForFile(string path, IReadOnlyList<string> args, int first, bool nonInteractive)
        => new(ShellAction.File) { File = path, FileArguments = ScriptArguments(args, first), NonInteractive = nonInteractive };

    /// <summary>
    /// pwsh -File's rule: <c>-Name value</c> and <c>-Name:value</c> bind by name (<c>$true</c>/<c>$false</c>, with or
    /// without the dollar, become booleans after a colon), <c>-Flag</c> alone is a switch, anything else is positional.
    /// A parameter token is passed to the engine with its dash, so it binds as if typed in a script.
    /// </summary>
    private static List<CommandParameter> ScriptArguments(IReadOnlyList<string> args, int first)
    {
        var parameters = new List<CommandParameter>();
        string? pending = null;
        for (int i = first; i < args.Count; i++)
        {
            string arg = args[i];
            if (pending is not null)
            {
                parameters.Add(new CommandParameter(pending, arg));
                pending = null;
            }
            else if (arg.Length > 1 && arg[0] == '-')
            {
                int colon = arg.IndexOf(':');
                if (colon < 0)
                    parameters.Add(new CommandParameter(arg));
                else if (colon == arg.Length - 1)
                    pending = arg.TrimEnd(':');
                else
                    parameters.Add(new CommandParameter(arg[..colon], BoolIfPossible(arg[(colon + 1)..])));
            }
            else
            {
                parameters.Add(new CommandParameter(null, arg));
            }
        }
        if (pending is not null) parameters.Add(new CommandParameter(pending)); // "-Name:" last: the binder reports the missing value
        return parameters;
    }

    private static object BoolIfPossible(string value)
        => bool.TryParse(value.AsSpan(value.StartsWith('$') ? 1 : 0), out bool b) ? b : value;

    private static CommandLine Invalid(string error) => new(ShellAction.Invalid) { Error = error };

    public const string Usage = """
        Usage: domainshare [-NoProfile] [-NonInteractive] -Command <script> | -Command -
               domainshare [-NoProfile] [-NonInteractive] [-File] <script.ps1> [arguments]
               domainshare -Relay <domainshare.yaml>
               domainshare -Help | -Version

        The PowerShell 7.6 engine with the DomainShare module imported, for scripts and scheduled tasks.

          -Command, -c <script>  Run the script text: every remaining argument, joined by spaces ('-' reads it from stdin).
          -File, -f <path>       Run a script file; the remaining arguments go to the script: positional values,
                                 -Name value, -Name:value and -Switch, as with pwsh -File. A bare path is the same.
          -NonInteractive        Never prompt (prompts also fail when stdin is not a terminal).
          -NoProfile, -NoLogo    Accepted for pwsh compatibility; no profile is ever run.
          -Relay <config>        Run the relay of that configuration in this process, without PowerShell, until
                                 Stop-DomainShareRelay, SIGTERM or Ctrl+C (what Start-DomainShareRelay starts in the
                                 background; for a service, Start-DomainShareRelay -Wait does the same).
          -Help, -h, -?          Show this help.
          -Version, -v           Show the DomainShare version.

        Exit codes: 'exit N' in the script gives N; a terminating error or parse error gives 1; -Command gives 1 when
        its last statement failed, otherwise 0; 2 when no script is given (there is no interactive mode); 64 for a bad
        command line; 130 when stopped with Ctrl+C.

        Colour only on a terminal: redirected output is plain text, and NO_COLOR=1 turns colour off everywhere.
        Configuration: each cmdlet's -ConfigPath, else $env:DOMAINSHARE_CONFIG, else the platform's config folder.
        """;
}
