using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;
using System.Text;

namespace DomainShare.Shell;

/// <summary>
/// Console output and prompts, rendered as pwsh's console host renders them. Output, warnings, verbose and debug
/// lines go to stdout; errors to stderr. Text goes through <see cref="PSHostUserInterface.GetOutputString"/>, so the
/// escape sequences the formatter puts in (table headers, error colours) reach a stream only when it is a terminal.
/// Prompts read from the terminal; without one (stdin redirected, or -NonInteractive) they fail at once instead of
/// waiting for input that will never come. Progress is not drawn.
/// </summary>
internal sealed class ShellUserInterface : PSHostUserInterface
{
    private readonly Terminal terminal;
    private readonly bool nonInteractive;
    private readonly ShellRawUserInterface rawUI;
    private readonly Lock captureGate = new();
    private StringBuilder? capture;
    private int reading;

    public ShellUserInterface(Terminal terminal, bool nonInteractive)
    {
        this.terminal = terminal;
        this.nonInteractive = nonInteractive;
        rawUI = new ShellRawUserInterface(terminal);
    }

    public override PSHostRawUserInterface RawUI => rawUI;

    public override bool SupportsVirtualTerminal => terminal.SupportsVirtualTerminal;

    public bool IsReadingInput => Volatile.Read(ref reading) > 0;

    // ---- Output ----

    public override void Write(string value)
    {
        if (capture is { } buffer) buffer.Append(value);
        else Console.Out.Write(GetOutputString(value, terminal.ColourOnOutput));
    }

    public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value)
    {
        if (capture is { } buffer) buffer.Append(value);
        else Console.Out.Write(Coloured(GetOutputString(value, terminal.ColourOnOutput), foregroundColor, backgroundColor));
    }

    public override void WriteLine(string value) => Write(value + Environment.NewLine);

    public override void WriteLine(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value)
        => Write(foregroundColor, backgroundColor, value + Environment.NewLine);

    /// <summary>Errors go to stderr, in $PSStyle's error colour on a terminal unless the formatter already coloured them.</summary>
    public override void WriteErrorLine(string value)
    {
        string text = value.Contains('\e') ? value : Styled(PSStyle.Instance.Formatting.Error, value);
        Console.Error.WriteLine(GetOutputString(text, terminal.ColourOnError));
    }

    public override void WriteWarningLine(string message) => WriteLine(Styled(PSStyle.Instance.Formatting.Warning, "WARNING: " + message));

    public override void WriteVerboseLine(string message) => WriteLine(Styled(PSStyle.Instance.Formatting.Verbose, "VERBOSE: " + message));

    public override void WriteDebugLine(string message) => WriteLine(Styled(PSStyle.Instance.Formatting.Debug, "DEBUG: " + message));

    /// <summary>The line in a $PSStyle format, as pwsh writes it; GetOutputString removes the codes where colour is off.</summary>
    private static string Styled(string style, string text) => style + text + PSStyle.Instance.Reset;

    /// <summary>Progress is not drawn: scripts run unattended, and a progress bar in a log file is noise.</summary>
    public override void WriteProgress(long sourceId, ProgressRecord record) { }

    /// <summary>
    /// Runs <paramref name="render"/> and returns the text it wrote as output instead of printing it: how a terminating
    /// error record, formatted by the engine like any other error, is turned into text for stderr.
    /// </summary>
    public string CaptureOutput(Action render)
    {
        lock (captureGate)
        {
            capture = new StringBuilder();
            try
            {
                render();
                return capture.ToString();
            }
            finally
            {
                capture = null;
            }
        }
    }

    /// <summary>
    /// Wraps <paramref name="text"/> in SGR colour codes (Write-Host -ForegroundColor) where colour is on; the
    /// terminal's own colours (reported as -1) are never written.
    /// </summary>
    private string Coloured(string text, ConsoleColor foreground, ConsoleColor background)
    {
        if (!terminal.ColourOnOutput || PSStyle.Instance.OutputRendering == OutputRendering.PlainText || text.Length == 0) return text;
        var codes = new List<int>(2);
        if (foreground != rawUI.ForegroundColor && Sgr(foreground, background: false) is int fg) codes.Add(fg);
        if (background != rawUI.BackgroundColor && Sgr(background, background: true) is int bg) codes.Add(bg);
        if (codes.Count == 0) return text;
        // Keep a trailing newline outside the colour, so a coloured line does not colour the next one's background.
        int end = text.EndsWith(Environment.NewLine, StringComparison.Ordinal) ? text.Length - Environment.NewLine.Length : text.Length;
        return $"\e[{string.Join(';', codes)}m{text[..end]}\e[0m{text[end..]}";
    }

    private static int? Sgr(ConsoleColor color, bool background)
    {
        int? code = color switch
        {
            ConsoleColor.Black => 30, ConsoleColor.DarkRed => 31, ConsoleColor.DarkGreen => 32, ConsoleColor.DarkYellow => 33,
            ConsoleColor.DarkBlue => 34, ConsoleColor.DarkMagenta => 35, ConsoleColor.DarkCyan => 36, ConsoleColor.Gray => 37,
            ConsoleColor.DarkGray => 90, ConsoleColor.Red => 91, ConsoleColor.Green => 92, ConsoleColor.Yellow => 93,
            ConsoleColor.Blue => 94, ConsoleColor.Magenta => 95, ConsoleColor.Cyan => 96, ConsoleColor.White => 97,
            _ => null, // (ConsoleColor)(-1): the terminal's default
        };
        return code + (background ? 10 : 0);
    }

    // ---- Input ----

    public override string ReadLine()
    {
        EnsureCanPrompt();
        using var _ = Reading();
        return Console.In.ReadLine() ?? string.Empty;
    }

    public override SecureString ReadLineAsSecureString()
    {
        EnsureCanPrompt();
        using var _ = Reading();
        var secret = new SecureString();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter) break;
            if (key.Key == ConsoleKey.Backspace)
            {
                if (secret.Length == 0) continue;
                secret.RemoveAt(secret.Length - 1);
                Console.Out.Write("\b \b");
            }
            else if (key.KeyChar != '\0' && !char.IsControl(key.KeyChar))
            {
                secret.AppendChar(key.KeyChar);
                Console.Out.Write('*');
            }
        }
        Console.Out.WriteLine();
        secret.MakeReadOnly();
        return secret;
    }

    public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions)
    {
        EnsureCanPrompt();
        WriteCaption(caption, message);
        var answers = new Dictionary<string, PSObject>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in descriptions)
            answers[field.Name] = PSObject.AsPSObject(ReadField(field));
        return answers;
    }

    private object ReadField(FieldDescription field)
    {
        string type = field.ParameterTypeFullName ?? string.Empty;
        string label = string.IsNullOrEmpty(field.Label) ? field.Name : field.Label.Replace("&", "", StringComparison.Ordinal);
        if (type == typeof(SecureString).FullName)
        {
            Write($"{label}: ");
            return ReadLineAsSecureString();
        }
        if (type == typeof(PSCredential).FullName)
            return PromptForCredential("", "", "", "");
        if (type.EndsWith("[]", StringComparison.Ordinal))
        {
            // pwsh's convention: one element a line, an empty line ends the list.
            var items = new List<string>();
            while (ReadValue($"{label}[{items.Count}]", field.HelpMessage) is { Length: > 0 } item) items.Add(item);
            return items.ToArray();
        }
        return ReadValue(label, field.HelpMessage);
    }

    /// <summary>Reads one value; <c>!?</c> shows the field's help message, as in pwsh.</summary>
    private string ReadValue(string label, string? help)
    {
        while (true)
        {
            Write($"{label}: ");
            string line = ReadLine();
            if (line != "!?" || string.IsNullOrEmpty(help)) return line;
            WriteLine(help);
        }
    }

    public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
    {
        EnsureCanPrompt();
        var keys = choices.Select(c => HotKey(c.Label)).ToList();
        var labels = choices.Select(c => c.Label.Replace("&", "", StringComparison.Ordinal)).ToList();
        var line = new StringBuilder();
        for (int i = 0; i < choices.Count; i++)
            line.Append(keys[i] is { } key ? $"[{key}] {labels[i]}  " : $"{labels[i]}  ");
        line.Append("[?] Help");
        if (defaultChoice >= 0 && defaultChoice < choices.Count)
            line.Append(CultureInfo.InvariantCulture, $" (default is \"{keys[defaultChoice] ?? labels[defaultChoice]}\")");
        line.Append(": ");

        WriteCaption(caption, message);
        while (true)
        {
            Write(line.ToString());
            string answer = ReadLine().Trim();
            if (answer.Length == 0 && defaultChoice >= 0 && defaultChoice < choices.Count) return defaultChoice;
            if (answer == "?")
            {
                for (int i = 0; i < choices.Count; i++)
                    WriteLine($"{keys[i] ?? labels[i]} - {choices[i].HelpMessage}");
                continue;
            }
            for (int i = 0; i < choices.Count; i++)
                if (string.Equals(answer, keys[i], StringComparison.OrdinalIgnoreCase) || string.Equals(answer, labels[i], StringComparison.OrdinalIgnoreCase))
                    return i;
        }
    }

    /// <summary>The letter after '&amp;' in a choice label ("&amp;Yes" is Y), or null when the label has none.</summary>
    private static string? HotKey(string label)
    {
        int amp = label.IndexOf('&');
        return amp >= 0 && amp + 1 < label.Length ? label[amp + 1].ToString().ToUpperInvariant() : null;
    }

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName)
        => PromptForCredential(caption, message, userName, targetName, PSCredentialTypes.Default, PSCredentialUIOptions.Default);

    public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName,
        PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options)
    {
        EnsureCanPrompt();
        WriteCaption(caption, message);
        if (string.IsNullOrEmpty(userName))
            userName = ReadValue("User", null);
        Write($"Password for user {userName}: ");
        return new PSCredential(userName, ReadLineAsSecureString());
    }

    private void WriteCaption(string? caption, string? message)
    {
        if (!string.IsNullOrEmpty(caption)) WriteLine(caption);
        if (!string.IsNullOrEmpty(message)) WriteLine(message);
    }

    /// <summary>A prompt needs someone at a terminal; without one it fails now rather than wait on a pipe or /dev/null.</summary>
    private void EnsureCanPrompt()
    {
        if (nonInteractive)
            throw new PSInvalidOperationException(
                "domainshare cannot prompt: it was started with -NonInteractive. Give the value as a parameter; for a confirmation, add -Confirm:$false (or -Force where the command has it).");
        if (!terminal.InputIsTerminal)
            throw new PSInvalidOperationException(
                "domainshare cannot prompt: standard input is not a terminal. Give the value as a parameter; for a confirmation, add -Confirm:$false (or -Force where the command has it).");
    }

    private Scope Reading()
    {
        Interlocked.Increment(ref reading);
        return new Scope(() => Interlocked.Decrement(ref reading));
    }

    private sealed class Scope(Action end) : IDisposable
    {
        public void Dispose() => end();
    }
}
