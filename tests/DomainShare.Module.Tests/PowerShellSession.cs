using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Reflection;
using System.Security;
using System.Text;

namespace DomainShare.Module.Tests;

/// <summary>
/// A real PowerShell 7.6 runspace with the staged DomainShare module imported, and a private folder for the test's
/// configuration. Scripts run exactly as a user's would; the host captures what would reach the console (-WhatIf text,
/// warnings, verbose lines).
/// </summary>
public sealed class PowerShellSession : IDisposable
{
    public static readonly string ModuleManifest = typeof(PowerShellSession).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ModuleManifest").Value!;

    static PowerShellSession()
    {
        // The engine must write nothing into the user's home: telemetry off, XDG folders in a temporary place.
        Environment.SetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT", "1");
        Environment.SetEnvironmentVariable("POWERSHELL_UPDATECHECK", "Off");
        var xdg = Path.Combine(Path.GetTempPath(), "domainshare-tests-xdg");
        foreach (var v in new[] { "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
        {
            var dir = Path.Combine(xdg, v);
            System.IO.Directory.CreateDirectory(dir);
            Environment.SetEnvironmentVariable(v, dir);
        }
    }

    private readonly Runspace runspace;

    public PowerShellSession()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("domainshare-test-").FullName;
        ConfigPath = Path.Combine(Directory, "domainshare.yaml");
        Host = new CapturingHost();
        var iss = InitialSessionState.CreateDefault2();
        iss.Variables.Add(new SessionStateVariableEntry("TestDir", Directory, "The test's private folder"));
        iss.Variables.Add(new SessionStateVariableEntry("ConfigPath", ConfigPath, "The test's configuration file"));
        // Every cmdlet of the module uses the test's own file unless a test says otherwise.
        iss.Variables.Add(new SessionStateVariableEntry("PSDefaultParameterValues",
            new DefaultParameterDictionary { ["*-DomainShare*:ConfigPath"] = ConfigPath }, ""));
        runspace = RunspaceFactory.CreateRunspace(Host, iss);
        runspace.Open();
        var import = Run($"Import-Module '{ModuleManifest}' -ErrorAction Stop");
        if (import.Errors.Count > 0) throw new InvalidOperationException("Import failed: " + import.Errors[0]);
    }

    public string Directory { get; }
    public string ConfigPath { get; }
    public CapturingHost Host { get; }

    public string ConfigText => File.ReadAllText(ConfigPath);

    /// <summary>Runs <paramref name="script"/> and collects its output, errors and host text. A terminating error is collected, not thrown.</summary>
    public ScriptResult Run(string script, IDictionary<string, object?>? variables = null)
    {
        Host.Clear();
        using var ps = PowerShell.Create(runspace);
        if (variables is not null)
            foreach (var (name, value) in variables)
                runspace.SessionStateProxy.SetVariable(name, value);
        ps.AddScript(script);
        Collection<PSObject> output;
        RuntimeException? terminating = null;
        try
        {
            output = ps.Invoke();
        }
        catch (RuntimeException ex)
        {
            output = [];
            terminating = ex;
        }
        var errors = ps.Streams.Error.ToList();
        if (terminating is not null) errors.Add(terminating.ErrorRecord);
        return new ScriptResult([.. output], errors, [.. ps.Streams.Warning.Select(w => w.Message)],
            [.. ps.Streams.Verbose.Select(v => v.Message)], [.. ps.Streams.Progress], Host.Text, terminating is not null);
    }

    public void Dispose()
    {
        runspace.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

public sealed record ScriptResult(
    List<PSObject> Output, List<ErrorRecord> Errors, List<string> Warnings, List<string> Verbose,
    List<ProgressRecord> Progress, string HostText, bool Terminated)
{
    public IEnumerable<string> ErrorIds => Errors.Select(e => e.FullyQualifiedErrorId);

    public ScriptResult AssertSuccess()
    {
        Assert.True(Errors.Count == 0, "Unexpected errors:\n" + string.Join("\n", Errors.Select(e => $"{e.FullyQualifiedErrorId}: {e}")));
        return this;
    }

    /// <summary>The only output object, checked to be of the module's type <paramref name="typeName"/>.</summary>
    public PSObject Single(string typeName)
    {
        var single = Assert.Single(Output);
        Assert.Equal(typeName, single.BaseObject.GetType().FullName);
        return single;
    }
}

public static class PSObjectExtensions
{
    /// <summary>A property of an output object (the module's types are not referenced: they load only with the module).</summary>
    public static object? Prop(this PSObject o, string name)
        => (o.Properties[name] ?? throw new Xunit.Sdk.XunitException($"No property '{name}' on {o.BaseObject.GetType().FullName}")).Value;
}

/// <summary>A host that records everything written to it, for -WhatIf text and warnings; it answers no prompt.</summary>
public sealed class CapturingHost : PSHost
{
    private readonly CapturingUI ui = new();
    public override string Name => "DomainShareTestHost";
    public override Version Version => new(1, 0);
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;
    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;
    public override PSHostUserInterface UI => ui;
    public string Text => ui.Buffer.ToString();
    public void Clear() => ui.Buffer.Clear();
    /// <summary>Answers to confirmation prompts: the index of the choice, in order; none left means the prompt fails.</summary>
    public Queue<int> Choices => ui.Choices;
    public override void EnterNestedPrompt() => throw new NotSupportedException();
    public override void ExitNestedPrompt() => throw new NotSupportedException();
    public override void NotifyBeginApplication() { }
    public override void NotifyEndApplication() { }
    public override void SetShouldExit(int exitCode) { }

    private sealed class CapturingUI : PSHostUserInterface
    {
        public readonly StringBuilder Buffer = new();
        public readonly Queue<int> Choices = new();
        public override PSHostRawUserInterface? RawUI => null;
        public override string ReadLine() => throw new NotSupportedException("No console in tests.");
        public override SecureString ReadLineAsSecureString() => throw new NotSupportedException("No console in tests.");
        public override void Write(string value) { lock (Buffer) Buffer.Append(value); }
        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Write(value);
        public override void WriteLine(string value) => Write(value + "\n");
        public override void WriteErrorLine(string value) => Write("ERROR: " + value + "\n");
        public override void WriteDebugLine(string message) => Write("DEBUG: " + message + "\n");
        public override void WriteVerboseLine(string message) => Write("VERBOSE: " + message + "\n");
        public override void WriteWarningLine(string message) => Write("WARNING: " + message + "\n");
        public override void WriteProgress(long sourceId, ProgressRecord record) { }
        public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions)
            => throw new NotSupportedException("No console in tests.");
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName)
            => throw new NotSupportedException();
        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName,
            PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw new NotSupportedException();
        public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
        {
            Write($"PROMPT: {caption} {message}\n");
            return Choices.Count > 0 ? Choices.Dequeue() : throw new PSInvalidOperationException("No answer queued for a prompt.");
        }
    }
}
