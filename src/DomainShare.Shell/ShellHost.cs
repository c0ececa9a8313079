using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Reflection;

namespace DomainShare.Shell;

/// <summary>
/// The PSHost of <c>domainshare</c>: console output through <see cref="ShellUserInterface"/>, and the exit code a
/// script asks for with <c>exit N</c> (the engine calls <see cref="SetShouldExit"/>).
/// </summary>
internal sealed class ShellHost : PSHost
{
    private readonly CultureInfo culture = CultureInfo.CurrentCulture;
    private readonly CultureInfo uiCulture = CultureInfo.CurrentUICulture;
    private readonly ShellUserInterface ui;

    public ShellHost(Terminal terminal, bool nonInteractive) => ui = new ShellUserInterface(terminal, nonInteractive);

    /// <summary>The version of the shell, which is the version of the module it ships (both come from DomainShare.psd1).</summary>
    public static Version ShellVersion { get; } = typeof(ShellHost).Assembly.GetName().Version ?? new Version(0, 0);

    /// <summary>The version as released (no build metadata), as printed by -Version.</summary>
    public static string DisplayVersion { get; } =
        (typeof(ShellHost).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? ShellVersion.ToString()).Split('+')[0];

    public override string Name => "DomainShareHost";
    public override Version Version => ShellVersion;
    public override Guid InstanceId { get; } = Guid.NewGuid();
    public override CultureInfo CurrentCulture => culture;
    public override CultureInfo CurrentUICulture => uiCulture;
    public override PSHostUserInterface UI => ui;

    /// <summary>True once the script ran <c>exit</c>; <see cref="ExitCode"/> is then its code.</summary>
    public bool ShouldExit { get; private set; }

    public int ExitCode { get; private set; }

    public override void SetShouldExit(int exitCode)
    {
        ExitCode = exitCode;
        ShouldExit = true;
    }

    /// <summary>Runs <paramref name="render"/> and returns what it wrote to the host as output, instead of printing it.</summary>
    public string CaptureOutput(Action render) => ui.CaptureOutput(render);

    /// <summary>Whether a prompt is reading from the terminal right now (Ctrl+C then ends the process at once).</summary>
    public bool IsReadingInput => ui.IsReadingInput;

    public override void EnterNestedPrompt()
        => throw new PSNotImplementedException("domainshare runs scripts only: it has no interactive prompt to enter.");

    public override void ExitNestedPrompt()
        => throw new PSNotImplementedException("domainshare runs scripts only: it has no interactive prompt to leave.");

    public override void NotifyBeginApplication() { }

    public override void NotifyEndApplication() { }
}
