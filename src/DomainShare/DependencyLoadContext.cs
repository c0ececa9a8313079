using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace DomainShare;

/// <summary>
/// Loads the engine and every third-party library (YamlDotNet, and later MailKit, MimeKit, SQLite) from the module's
/// <c>Dependencies</c> folder into a private load context, so another module that ships a different version of the same
/// library, imported before or after this one, breaks neither. Only <c>DomainShare.Engine</c> is bridged to the default
/// context (the cmdlets call it); everything it needs resolves inside this context.
/// </summary>
internal sealed class DependencyLoadContext : AssemblyLoadContext
{
    private const string EngineAssemblyName = "DomainShare.Engine";
    private static readonly string DependencyDirectory =
        Path.Combine(Path.GetDirectoryName(typeof(DependencyLoadContext).Assembly.Location)!, "Dependencies");

    internal static readonly DependencyLoadContext Instance = new();

    private DependencyLoadContext() : base("DomainShare.Dependencies", isCollectible: false) { }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        string path = Path.Combine(DependencyDirectory, assemblyName.Name + ".dll");
        // Framework and PowerShell assemblies are not in the folder: they come from the default context.
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        foreach (var candidate in NativeCandidates(unmanagedDllName))
            if (File.Exists(candidate)) return LoadUnmanagedDllFromPath(candidate);
        return IntPtr.Zero;
    }

    private static IEnumerable<string> NativeCandidates(string name)
    {
        string rid = RuntimeInformation.RuntimeIdentifier;
        string[] files = OperatingSystem.IsWindows() ? [name, name + ".dll"]
            : OperatingSystem.IsMacOS() ? [name, "lib" + name + ".dylib", name + ".dylib"]
            : [name, "lib" + name + ".so", name + ".so"];
        foreach (var file in files)
        {
            yield return Path.Combine(DependencyDirectory, file);
            yield return Path.Combine(DependencyDirectory, "runtimes", rid, "native", file);
        }
    }

    /// <summary>Resolves the engine for the default context; every other name is left to others.</summary>
    internal static Assembly? ResolveFromDefault(AssemblyLoadContext context, AssemblyName name)
        => name.Name == EngineAssemblyName ? Instance.LoadFromAssemblyName(name) : null;
}

/// <summary>
/// Hooks the dependency context in when the module is first imported. The hook stays for the life of the process:
/// other runspaces of the same process may still use the module after one of them removes it, and the hook answers
/// only for DomainShare.Engine.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer
{
    private static int registered;

    public void OnImport()
    {
        if (Interlocked.Exchange(ref registered, 1) == 0)
            AssemblyLoadContext.Default.Resolving += DependencyLoadContext.ResolveFromDefault;
    }
}
