using System.Management.Automation;
using System.Management.Automation.Host;

namespace DomainShare.Shell;

/// <summary>
/// The console's geometry and keys. On a terminal the sizes are the terminal's; when stdout is redirected the
/// formatter gets a fixed width ($env:COLUMNS if set, else 120), so output written to a file or a pipe does not
/// depend on the window the script happened to be started from. Buffer reads and writes are not supported (pwsh
/// does not support them on Unix either).
/// </summary>
internal sealed class ShellRawUserInterface(Terminal terminal) : PSHostRawUserInterface
{
    private const int RedirectedWidth = 120;
    private const int RedirectedHeight = 50;

    private string windowTitle = "domainshare";

    /// <summary>The terminal's colours, which .NET reports as -1 ("unknown") on Unix unless a program set them.</summary>
    public override ConsoleColor ForegroundColor { get; set; } = SafeColor(() => Console.ForegroundColor);

    public override ConsoleColor BackgroundColor { get; set; } = SafeColor(() => Console.BackgroundColor);

    public override Size BufferSize
    {
        get => terminal.OutputIsTerminal && TerminalSize() is { } size ? size with { Height = Math.Max(size.Height, 1) } : RedirectedSize();
        set => throw new NotSupportedException("domainshare cannot resize the terminal's buffer.");
    }

    public override Size WindowSize
    {
        get => terminal.OutputIsTerminal && TerminalSize() is { } size ? size : RedirectedSize();
        set => throw new NotSupportedException("domainshare cannot resize the terminal window.");
    }

    public override Size MaxWindowSize => WindowSize;

    public override Size MaxPhysicalWindowSize => WindowSize;

    public override Coordinates WindowPosition
    {
        get => new(0, 0);
        set { }
    }

    public override Coordinates CursorPosition
    {
        get
        {
            // Asking the terminal for the cursor position needs its answer on stdin: only ask a real terminal.
            if (!terminal.OutputIsTerminal || !terminal.InputIsTerminal) return new Coordinates(0, 0);
            try
            {
                var (left, top) = Console.GetCursorPosition();
                return new Coordinates(left, top);
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or PlatformNotSupportedException)
            {
                return new Coordinates(0, 0);
            }
        }
        set
        {
            if (terminal.OutputIsTerminal) Console.SetCursorPosition(value.X, value.Y);
        }
    }

    public override int CursorSize
    {
        get => 25;
        set { }
    }

    public override string WindowTitle
    {
        get => windowTitle;
        set => windowTitle = value;
    }

    public override bool KeyAvailable => terminal.InputIsTerminal && Console.KeyAvailable;

    public override KeyInfo ReadKey(ReadKeyOptions options)
    {
        if (!terminal.InputIsTerminal)
            throw new PSInvalidOperationException("domainshare cannot read a key: standard input is not a terminal.");
        var key = Console.ReadKey(intercept: (options & ReadKeyOptions.NoEcho) != 0);
        var state = default(ControlKeyStates);
        if ((key.Modifiers & ConsoleModifiers.Shift) != 0) state |= ControlKeyStates.ShiftPressed;
        if ((key.Modifiers & ConsoleModifiers.Control) != 0) state |= ControlKeyStates.LeftCtrlPressed;
        if ((key.Modifiers & ConsoleModifiers.Alt) != 0) state |= ControlKeyStates.LeftAltPressed;
        return new KeyInfo((int)key.Key, key.KeyChar, state, keyDown: true);
    }

    public override void FlushInputBuffer()
    {
        while (KeyAvailable) Console.ReadKey(intercept: true);
    }

    public override BufferCell[,] GetBufferContents(Rectangle rectangle)
        => throw new NotSupportedException("domainshare cannot read the terminal's buffer.");

    public override void SetBufferContents(Coordinates origin, BufferCell[,] contents)
        => throw new NotSupportedException("domainshare cannot write the terminal's buffer.");

    public override void SetBufferContents(Rectangle rectangle, BufferCell fill)
        => throw new NotSupportedException("domainshare cannot write the terminal's buffer.");

    public override void ScrollBufferContents(Rectangle source, Coordinates destination, Rectangle clip, BufferCell fill)
        => throw new NotSupportedException("domainshare cannot scroll the terminal's buffer.");

    private static Size? TerminalSize()
    {
        try
        {
            int width = Console.WindowWidth, height = Console.WindowHeight;
            return width > 0 ? new Size(width, height) : null;
        }
        catch (Exception ex) when (ex is IOException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    private static Size RedirectedSize()
        => int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0
            ? new Size(columns, RedirectedHeight)
            : new Size(RedirectedWidth, RedirectedHeight);

    private static ConsoleColor SafeColor(Func<ConsoleColor> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is IOException or PlatformNotSupportedException)
        {
            return (ConsoleColor)(-1);
        }
    }
}
