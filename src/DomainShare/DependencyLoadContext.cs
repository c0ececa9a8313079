using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace DomainShare;

/// <summary>
/// Loads the engine and every third-party library (YamlDotNet, and later MailKit, MimeKit, SQLite) from the module's
/// <c>Dependencies</c> folder into a private load context, so another module that ships a different version of the same
/// library, imported before or after this one, breaks neither. Only <c>DomainShare.Engine</c> is bridged to the default
/// context (the cmdlets call it); everything it needs resolves inside this context. The bundled host uses the same
/// context for <c>domainshare -Relay</c>, which runs the engine without PowerShell.
/// </summary>
internal sealed class DependencyLoadContext : AssemblyLoadContext
{
    /// <summary>The one assembly of the folder that is reached from outside the context.</summary>
    internal const string EngineAssembly = "DomainShare.Engine";
    private readonly string dependencyDirectory;

    /// <param name="dependencyDirectory">The module's <c>Dependencies</c> folder.</param>
    internal DependencyLoadContext(string dependencyDirectory) : base("DomainShare.Dependencies", isCollectible: false)
        => this.dependencyDirectory = dependencyDirectory;

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        string path = Path.Combine(dependencyDirectory, assemblyName.Name + ".dll");
        // Framework and PowerShell assemblies are not in the folder: they come from the default context.
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (var candidate in NativeCandidates(unmanagedDllName))
            if (File.Exists(candidate)) return LoadUnmanagedDllFromPath(candidate);
        return IntPtr.Zero;
    }

    private IEnumerable<string> NativeCandidates(string name)
    {
        string rid = RuntimeInformation.RuntimeIdentifier;
        string[] files = OperatingSystem.IsWindows() ? [name, name + ".dll"]
            : OperatingSystem.IsMacOS() ? [name, "lib" + name + ".dylib", name + ".dylib"]
            : [name, "lib" + name + ".so", name + ".so"];
        foreach (var file in files)
        {
            yield return Path.Combine(dependencyDirectory, file);
            yield return Path.Combine(dependencyDirectory, "runtimes", rid, "native", file);
        }
    }
}
