namespace DomainShare.Shell;

/// <summary>
/// Ctrl+C (SIGINT): the first press stops the running pipeline, and the host exits with 130 once it has stopped.
/// A second press, or a press while a prompt waits for input, ends the process at once, as an unhandled SIGINT does.
/// </summary>
internal sealed class InterruptHandler : IDisposable
{
    private readonly ScriptRunner runner;
    private readonly ShellHost host;
    private int presses;

    public InterruptHandler(ScriptRunner runner, ShellHost host)
    {
        this.runner = runner;
        this.host = host;
        Console.CancelKeyPress += OnCancelKeyPress;
    }

    public bool Pressed => Volatile.Read(ref presses) > 0;

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        if (Interlocked.Increment(ref presses) > 1 || host.IsReadingInput) return; // not cancelled: the runtime ends the process
        e.Cancel = true;
        runner.Interrupt();
    }

    public void Dispose() => Console.CancelKeyPress -= OnCancelKeyPress;
}
