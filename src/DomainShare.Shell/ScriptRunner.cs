using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;

namespace DomainShare.Shell;

/// <summary>
/// Runs the user's script the way pwsh's console host does: one pipeline of the script with its error stream merged
/// into its output, followed by <c>Out-Default</c>, so objects, tables and errors are rendered by the engine's own
/// formatter. A terminating error is rendered the same way, and the exit code follows pwsh's rules
/// (see <see cref="ExitCodes"/>). Ctrl+C stops the running pipeline.
/// </summary>
internal sealed class ScriptRunner : IDisposable
{
    private readonly ShellHost host;
    private readonly Runspace runspace;
    private readonly Lock gate = new();
    private Pipeline? running;
    private bool interrupted;

    public ScriptRunner(ShellHost host)
    {
        this.host = host;
        // CreateDefault2 loads only the engine's core commands; CreateDefault fails on Linux. No execution policy is
        // set: the engine has none to enforce on Linux.
        var state = InitialSessionState.CreateDefault2();
        ReplaceHelpFunction(state);
        runspace = RunspaceFactory.CreateRunspace(host, state);
        runspace.Open();
    }

    /// <summary>
    /// The engine's <c>help</c> function (and its alias <c>man</c>) pages through Select-Object and Out-String, which
    /// are not part of the core engine; here <c>help</c> is Get-Help with the same arguments, unpaged.
    /// </summary>
    private static void ReplaceHelpFunction(InitialSessionState state)
    {
        state.Commands.Remove("help", typeof(SessionStateFunctionEntry));
        state.Commands.Add(new SessionStateFunctionEntry("help", "Get-Help @args"));
    }

    /// <summary>Imports the module from its manifest; false (after reporting why) if it did not load.</summary>
    public bool ImportModule(string manifest)
    {
        var import = new Command("Import-Module");
        import.Parameters.Add("Name", manifest);
        import.Parameters.Add("ErrorAction", ActionPreference.Stop);
        return Run(WithCommand(import)) == Outcome.Completed;
    }

    /// <summary>-Command: the exit code is 1 when the last statement failed ($? is false), as in pwsh.</summary>
    public int RunCommand(string script)
    {
        // Added to the history as pwsh does: only then does $? keep the last statement's result after the pipeline.
        var outcome = Run(runspace.CreatePipeline(script, addToHistory: true));
        return ExitCode(outcome) ?? (LastStatementSucceeded() ? ExitCodes.Success : ExitCodes.Failure);
    }

    /// <summary>-File: the exit code is 0 unless the script ran <c>exit N</c> or stopped on a terminating error.</summary>
    public int RunFile(string path, IReadOnlyList<CommandParameter> arguments)
    {
        Command command;
        if (path.EndsWith(".ps1", StringComparison.OrdinalIgnoreCase) && ExitPropagation.TryEnable(runspace))
        {
            command = new Command(path, isScript: false, useLocalScope: false);
        }
        else
        {
            // As pwsh does on Unix for a file without the .ps1 extension (a script with a shebang line): run its text.
            // An 'exit' in script text reaches the host directly.
            command = new Command(File.ReadAllText(path), isScript: true, useLocalScope: false);
        }
        foreach (var argument in arguments) command.Parameters.Add(argument);
        return ExitCode(Run(WithCommand(command))) ?? ExitCodes.Success;
    }

    /// <summary>Stops the running pipeline (Ctrl+C); the run then ends with <see cref="ExitCodes.Interrupted"/>.</summary>
    public void Interrupt()
    {
        lock (gate)
        {
            interrupted = true;
            running?.StopAsync();
        }
    }

    private int? ExitCode(Outcome outcome)
    {
        if (interrupted) return ExitCodes.Interrupted;
        if (host.ShouldExit) return host.ExitCode;
        return outcome == Outcome.Failed ? ExitCodes.Failure : null;
    }

    private enum Outcome { Completed, Failed, Stopped }

    private Pipeline WithCommand(Command command)
    {
        var pipeline = runspace.CreatePipeline();
        pipeline.Commands.Add(command);
        return pipeline;
    }

    /// <summary>Runs <paramref name="pipeline"/> (one command) with its errors merged into its output and Out-Default appended.</summary>
    private Outcome Run(Pipeline pipeline)
    {
        pipeline.Commands[0].MergeMyResults(PipelineResultTypes.Error, PipelineResultTypes.Output);
        pipeline.Commands.Add(new Command("Out-Default", isScript: false, useLocalScope: true));
        try
        {
            lock (gate)
            {
                if (interrupted) return Outcome.Stopped;
                running = pipeline;
            }
            pipeline.Invoke();
            return Outcome.Completed;
        }
        catch (PipelineStoppedException)
        {
            return Outcome.Stopped;
        }
        catch (Exception ex) // a terminating error of any kind ends the script; the host reports it and carries on to exit
        {
            if (!interrupted) ReportTerminatingError(ex);
            return Outcome.Failed;
        }
        finally
        {
            lock (gate) running = null;
            pipeline.Dispose();
        }
    }

    /// <summary>
    /// Renders a terminating error as pwsh does: the error record goes through Out-Default, so the engine formats it
    /// ($ErrorView, the position in the script), and the text goes to stderr. When the formatter has nothing to show
    /// (a parse error of -Command text carries no invocation), the message and the position are written plainly.
    /// </summary>
    private void ReportTerminatingError(Exception exception)
    {
        var record = exception is IContainsErrorRecord withRecord
            ? withRecord.ErrorRecord
            : new ErrorRecord(exception, "DomainShareHost.UnhandledException", ErrorCategory.NotSpecified, null);
        string rendered = host.CaptureOutput(() =>
        {
            using var pipeline = runspace.CreatePipeline();
            pipeline.Commands.Add(new Command("Out-Default", isScript: false, useLocalScope: true));
            pipeline.Input.Write(record);
            pipeline.Input.Close();
            try
            {
                pipeline.Invoke();
            }
            catch (Exception ex) when (ex is RuntimeException or PSInvalidOperationException or InvalidRunspaceStateException)
            {
                // nothing rendered: the fallback below writes the message
            }
        }).Trim('\r', '\n');
        host.UI.WriteErrorLine(rendered.Length > 0 ? rendered : exception.Message + Position(exception, record));
    }

    private static string Position(Exception exception, ErrorRecord record)
    {
        if (record.InvocationInfo?.PositionMessage is { Length: > 0 } position) return Environment.NewLine + position;
        if (exception is ParseException { Errors: [var first, ..] })
        {
            var start = first.Extent.StartScriptPosition;
            string where = string.IsNullOrEmpty(first.Extent.File) ? "line" : first.Extent.File;
            return $"{Environment.NewLine}At {where}:{start.LineNumber} char:{start.ColumnNumber}{Environment.NewLine}+ {start.Line.TrimEnd()}";
        }
        return string.Empty;
    }

    /// <summary>pwsh's test after -Command: the value of <c>$global:?</c>, i.e. whether the last statement succeeded.</summary>
    private bool LastStatementSucceeded()
    {
        try
        {
            using var pipeline = runspace.CreatePipeline("$global:?");
            var result = pipeline.Invoke();
            return result.Count == 1 && result[0]?.BaseObject is true;
        }
        catch (RuntimeException)
        {
            return false;
        }
    }

    public void Dispose() => runspace.Dispose();

    /// <summary>
    /// pwsh -File turns <c>exit N</c> in the script into the process's exit code by telling the engine that the next
    /// script file it starts must pass its <c>exit</c> on to the host instead of ending only the script. The switch is
    /// internal to the engine (ExecutionContext.ScriptCommandProcessorShouldRethrowExit, the one pwsh's console host
    /// sets); if a later engine no longer has it, the caller falls back to running the file's text, as pwsh does for
    /// files without the .ps1 extension.
    /// </summary>
    private static class ExitPropagation
    {
        private const BindingFlags Internal = BindingFlags.Instance | BindingFlags.NonPublic;
        private static readonly PropertyInfo? ContextProperty = typeof(Runspace).GetProperty("ExecutionContext", Internal);
        private static readonly PropertyInfo? RethrowProperty =
            ContextProperty?.PropertyType.GetProperty("ScriptCommandProcessorShouldRethrowExit", Internal);

        public static bool TryEnable(Runspace runspace)
        {
            if (RethrowProperty is null || ContextProperty?.GetValue(runspace) is not { } context) return false;
            RethrowProperty.SetValue(context, true);
            return true;
        }
    }
}
