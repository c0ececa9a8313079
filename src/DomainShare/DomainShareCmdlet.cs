using System.Management.Automation;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;

namespace DomainShare;

/// <summary>
/// The shared base of every DomainShare cmdlet: the <c>-ConfigPath</c> parameter and the translation of engine failures
/// into ErrorRecords. Members that mention engine types are methods, never properties or fields, so PowerShell can
/// reflect over the cmdlets before the engine's load context is hooked in.
/// </summary>
public abstract class DomainShareCmdlet : PSCmdlet, IDisposable
{
    private IDisposable? lookup;
    private string? lookupPath;
    /// <summary>Path of the server's YAML configuration. Defaults to $env:DOMAINSHARE_CONFIG, then the platform's application-data folder.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? ConfigPath { get; set; }

    private readonly CancellationTokenSource stopping = new();

    /// <summary>Cancelled when the user presses Ctrl+C (StopProcessing): pass it to every engine call that waits.</summary>
    private protected CancellationToken Cancellation => stopping.Token;

    protected override void StopProcessing() => stopping.Cancel();

    /// <summary>Waits for an engine task; Ctrl+C cancels it and ends the command quietly.</summary>
    private protected T Await<T>(Task<T> task)
    {
        Await((Task)task);
        return task.Result;
    }

    private protected void Await(Task task)
    {
        try
        {
            task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }

    private protected ConfigurationStore OpenStore()
    {
        string path = ConfigPath is null ? ConfigurationStore.DefaultPath : GetUnresolvedProviderPathFromPSPath(ConfigPath);
        return new ConfigurationStore(path);
    }

    private protected string ResolvedConfigPath() => OpenStore().FilePath;

    /// <summary>
    /// The lookup session (accounts, cache, Minger client) of the configuration the current record names: opened on first
    /// use and again when a piped ConfigPath changes, disposed with the command.
    /// </summary>
    private protected Engine.Routing.LookupSession Lookup()
    {
        var store = OpenStore();
        if (lookup is null || lookupPath != store.FilePath)
        {
            lookup?.Dispose();
            lookup = null;
            lookup = OrTerminate(() => Engine.Routing.LookupSession.Open(store));
            lookupPath = store.FilePath;
        }
        return (Engine.Routing.LookupSession)lookup;
    }

    /// <summary>The configuration path of the current lookup session.</summary>
    private protected string LookupConfigPath => lookupPath ?? OpenStore().FilePath;

    public void Dispose()
    {
        lookup?.Dispose();
        lookup = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// ShouldProcess, except that <paramref name="force"/> skips the confirmation prompt (never -WhatIf), the way
    /// Remove-Item -Force lets a scheduled task delete without a prompt it cannot answer.
    /// </summary>
    private protected bool Confirmed(string target, string action, bool force = false)
    {
        if (force && !WhatIfInEffect())
        {
            WriteVerbose($"Performing the operation \"{action}\" on target \"{target}\" (-Force: no confirmation).");
            return true;
        }
        return ShouldProcess(target, action);
    }

    private bool WhatIfInEffect()
        => MyInvocation.BoundParameters.TryGetValue("WhatIf", out var w) ? ((SwitchParameter)w).IsPresent
            : GetVariableValue("WhatIfPreference") is { } pref && LanguagePrimitives.IsTrue(pref);

    /// <summary>Turns an engine failure into an ErrorRecord with the engine's ErrorId, a category, the target and the fix.</summary>
    private protected static ErrorRecord ToErrorRecord(DomainShareException ex, object? target = null)
    {
        var record = new ErrorRecord(ex, ex.ErrorId, Category(ex.Kind), target ?? ex.Target);
        if (ex.RecommendedAction is not null)
            record.ErrorDetails = new ErrorDetails(ex.Message) { RecommendedAction = ex.RecommendedAction };
        return record;
    }

    private static ErrorCategory Category(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        ErrorKind.InvalidData => ErrorCategory.InvalidData,
        ErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        ErrorKind.AlreadyExists => ErrorCategory.ResourceExists,
        ErrorKind.ResourceUnavailable => ErrorCategory.ResourceUnavailable,
        ErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        ErrorKind.OperationTimeout => ErrorCategory.OperationTimeout,
        ErrorKind.WriteError => ErrorCategory.WriteError,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>Runs <paramref name="action"/>; an engine failure becomes a non-terminating error for this item.</summary>
    private protected bool TryItem(Action action, object? target = null)
    {
        try
        {
            action();
            return true;
        }
        catch (DomainShareException ex)
        {
            WriteError(ToErrorRecord(ex, target));
            return false;
        }
    }

    /// <summary>Runs <paramref name="func"/>; an engine failure stops the command (it cannot do anything without it).</summary>
    private protected T OrTerminate<T>(Func<T> func)
    {
        try
        {
            return func();
        }
        catch (DomainShareException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            throw; // not reached
        }
    }

    private protected void OrTerminate(Action action) => OrTerminate(() => { action(); return true; });

    /// <summary>
    /// The loop shared by the cmdlets that change existing entries (peers, domains): report the names that match
    /// nothing, then for each selected entry ask ShouldProcess and apply the change in its own locked update.
    /// </summary>
    private protected void ChangeEach<T>(ConfigurationStore store, (List<T> Matches, List<string> Missing) selection,
        Func<string, DomainShareException> notFound, Func<T, string> describe, string action, bool skipConfirmation,
        Func<ServerConfiguration, T, ServerConfiguration> apply, Func<ServerConfiguration, T, object>? passThru)
    {
        foreach (var name in selection.Missing)
            WriteError(ToErrorRecord(notFound(name), name));
        foreach (var item in selection.Matches)
        {
            if (!Confirmed($"{describe(item)} in '{store.FilePath}'", action, skipConfirmation))
                continue;
            TryItem(() =>
            {
                var updated = store.Update(c => apply(c, item));
                if (passThru is not null) WriteObject(passThru(updated, item));
            }, item);
        }
    }

    /// <summary>Where an error about the configuration file itself applies, loading it failing stops the command.</summary>
    private protected ServerConfiguration LoadConfiguration(ConfigurationStore store) => OrTerminate(store.Load);
}
