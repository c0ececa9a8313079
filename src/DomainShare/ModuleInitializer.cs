using System.Management.Automation;
using System.Reflection;
using System.Runtime.Loader;

namespace DomainShare;

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
            AssemblyLoadContext.Default.Resolving += ResolveFromDefault;
    }

    private static readonly DependencyLoadContext Dependencies =
        new(Path.Combine(Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!, "Dependencies"));

    /// <summary>Resolves the engine for the default context; every other name is left to others.</summary>
    private static Assembly? ResolveFromDefault(AssemblyLoadContext context, AssemblyName name)
        => name.Name == DependencyLoadContext.EngineAssembly ? Dependencies.LoadFromAssemblyName(name) : null;
}
