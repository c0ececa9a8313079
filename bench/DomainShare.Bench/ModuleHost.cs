using System.Collections.ObjectModel;
using System.Diagnostics;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Reflection;

namespace DomainShare.Bench;

/// <summary>
/// The PowerShell side of the bench: fresh runspaces of the real engine (InitialSessionState.CreateDefault2(), as the
/// module tests do), the staged module, and script invocation that fails loudly on any error.
/// </summary>
internal static class ModuleHost
{
    /// <summary>The staged DomainShare.psd1, recorded at build time from $(ModuleStageDir).</summary>
    public static readonly string ModuleManifest = typeof(ModuleHost).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "ModuleManifest").Value!;

    /// <summary>
    /// Keeps the engine out of the user's home: telemetry and update checks off, XDG folders under <paramref name="workDirectory"/>.
    /// Child processes inherit the environment.
    /// </summary>
    public static void IsolateEnvironment(string workDirectory)
    {
        Environment.SetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT", "1");
        Environment.SetEnvironmentVariable("POWERSHELL_UPDATECHECK", "Off");
        foreach (var name in new[] { "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME" })
        {
            var dir = Path.Combine(workDirectory, "xdg", name);
            Directory.CreateDirectory(dir);
            Environment.SetEnvironmentVariable(name, dir);
        }
        // No cmdlet may fall back to the user's real configuration: every call names -ConfigPath, and this is a guard.
        Environment.SetEnvironmentVariable("DOMAINSHARE_CONFIG", Path.Combine(workDirectory, "unused-default.yaml"));
    }

    /// <summary>Creates and opens a fresh runspace; <paramref name="elapsed"/> is the time that took.</summary>
    public static Runspace OpenRunspace(out TimeSpan elapsed)
    {
        var watch = Stopwatch.StartNew();
        var runspace = RunspaceFactory.CreateRunspace(InitialSessionState.CreateDefault2());
        runspace.Open();
        elapsed = watch.Elapsed;
        return runspace;
    }

    public static Runspace OpenRunspace() => OpenRunspace(out _);

    public static void ImportModule(Runspace runspace)
        => Run(runspace, "param($Manifest) Import-Module -Name $Manifest -ErrorAction Stop", ("Manifest", ModuleManifest));

    /// <summary>Runs <paramref name="script"/> with named parameters; any error, terminating or not, throws.</summary>
    public static Collection<PSObject> Run(Runspace runspace, string script, params (string Name, object? Value)[] parameters)
    {
        using var ps = PowerShell.Create(runspace);
        ps.AddScript(script);
        foreach (var (name, value) in parameters)
            ps.AddParameter(name, value);
        Collection<PSObject> output;
        try
        {
            output = ps.Invoke();
        }
        catch (RuntimeException ex)
        {
            throw new BenchException($"'{script}' stopped: {ex.ErrorRecord.FullyQualifiedErrorId}: {ex.Message}");
        }
        if (ps.HadErrors || ps.Streams.Error.Count > 0)
        {
            var first = ps.Streams.Error.FirstOrDefault();
            throw new BenchException(first is null
                ? $"'{script}' reported an error."
                : $"'{script}' failed: {first.FullyQualifiedErrorId}: {first}");
        }
        return output;
    }
}

/// <summary>A bench step that could not be carried out (as opposed to a figure that misses its goal).</summary>
internal sealed class BenchException(string message) : Exception(message);
