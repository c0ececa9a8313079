using System.Management.Automation;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace DomainShare.Shell;

/// <summary>The entry point: the command line, the environment the engine needs, the module import, and the run.</summary>
internal static class Program
{
    /// <summary>The module ships next to the host, in $PSHOME/Modules (the engine's own module folder).</summary>
    private static readonly string ModuleManifest =
        Path.Combine(AppContext.BaseDirectory, "Modules", "DomainShare", "DomainShare.psd1");

    /// <summary>
    /// <c>-Relay</c> is dispatched before anything of PowerShell is touched: the methods that use the engine's types are
    /// compiled only when called, so a relay process never loads System.Management.Automation.
    /// </summary>
    public static int Main(string[] args)
        => args.Length > 0 && string.Equals(args[0], "-Relay", StringComparison.OrdinalIgnoreCase) ? RunRelay(args) : RunShell(args);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int RunShell(string[] args)
    {
        var commandLine = CommandLine.Parse(args);
        switch (commandLine.Action)
        {
            case ShellAction.Help:
                Console.Out.WriteLine(CommandLine.Usage);
                return ExitCodes.Success;
            case ShellAction.Version:
                Console.Out.WriteLine($"DomainShare {ShellHost.DisplayVersion}");
                return ExitCodes.Success;
            case ShellAction.NoScript:
                Console.Error.WriteLine("domainshare runs scripts and has no interactive mode: give it -Command or -File.");
                Console.Error.WriteLine();
                Console.Error.WriteLine(CommandLine.Usage);
                return ExitCodes.NoScript;
            case ShellAction.Invalid:
                return BadCommandLine(commandLine.Error!);
        }

        string? file = commandLine.File is null ? null : Path.GetFullPath(commandLine.File);
        if (file is not null && !File.Exists(file))
            return BadCommandLine($"The argument '{commandLine.File}' is not recognized as the name of a script file. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.");
        string? script = commandLine.Command == "-" ? Console.In.ReadToEnd() : commandLine.Command;

        var terminal = Terminal.Detect();
        PrepareEngine(terminal);
        var host = new ShellHost(terminal, commandLine.NonInteractive);
        using var runner = new ScriptRunner(host);
        using var interrupt = new InterruptHandler(runner, host);

        if (!runner.ImportModule(ModuleManifest))
            return interrupt.Pressed ? ExitCodes.Interrupted : ExitCodes.Failure;
        return file is not null ? runner.RunFile(file, commandLine.FileArguments) : runner.RunCommand(script!);
    }

    /// <summary>
    /// What must hold before the first runspace exists: no telemetry, and plain-text rendering when stdout is not a
    /// colour terminal, so the formatter puts no escape sequences into text bound for a file or a pipe.
    /// </summary>
    private static void PrepareEngine(Terminal terminal)
    {
        Environment.SetEnvironmentVariable("POWERSHELL_TELEMETRY_OPTOUT", "1");
        Environment.SetEnvironmentVariable("POWERSHELL_UPDATECHECK", "Off");
        if (!terminal.ColourOnOutput)
            PSStyle.Instance.OutputRendering = OutputRendering.PlainText;
    }

    /// <summary>
    /// <c>-Relay &lt;config&gt;</c>: the relay engine alone, loaded from the module's Dependencies folder into the module's
    /// own load context, with no runspace (about half the memory of a relay inside PowerShell).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int RunRelay(string[] args)
    {
        if (args.Length != 2)
            return BadCommandLine("-Relay takes exactly one argument, the configuration file: domainshare -Relay <domainshare.yaml>.");
        string configPath = args[1];
        var dependencies = new DependencyLoadContext(Path.Combine(Path.GetDirectoryName(ModuleManifest)!, "Dependencies"));
        var engine = dependencies.LoadFromAssemblyName(new AssemblyName(DependencyLoadContext.EngineAssembly));
        var run = engine.GetType("DomainShare.Engine.Relay.RelayEntryPoint", throwOnError: true)!.GetMethod("Run", [typeof(string)])!;
        return (int)run.Invoke(null, [configPath])!;
    }

    private static int BadCommandLine(string message)
    {
        Console.Error.WriteLine($"domainshare: {message}");
        return ExitCodes.BadCommandLine;
    }
}
