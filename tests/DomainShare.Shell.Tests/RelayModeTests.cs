using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace DomainShare.Shell.Tests;

/// <summary>
/// <c>domainshare -Relay &lt;config&gt;</c>: the relay engine in a process of its own without PowerShell, which is what
/// Start-DomainShareRelay starts in the background from the bundled host.
/// </summary>
public sealed class RelayModeTests
{
    [Theory]
    [InlineData("-Relay")]
    [InlineData("-Relay a.yaml b.yaml")]
    public void Relay_without_exactly_one_configuration_is_a_bad_command_line(string commandLine)
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run(commandLine.Split(' ')).AssertExit(64);
        Assert.Contains("-Relay takes exactly one argument", result.Stderr);
        Assert.Empty(result.Stdout);
    }

    [Fact]
    public void Relay_of_a_missing_configuration_exits_1_with_the_reason_on_stderr()
    {
        using var sandbox = new ShellSandbox();
        var result = sandbox.Run("-Relay", Path.Combine(sandbox.Directory, "missing.yaml")).AssertExit(1);
        Assert.StartsWith("domainshare relay: ", result.Stderr);
        Assert.Contains("missing.yaml", result.Stderr);
    }

    [Fact]
    public void Start_DomainShareRelay_runs_the_background_relay_as_domainshare_Relay_without_the_PowerShell_engine()
    {
        using var sandbox = new ShellSandbox();
        var address = IPAddress.Parse("127.0.0.74");
        int minger = FreePort(address, SocketType.Dgram, ProtocolType.Udp), smtp = FreePort(address, SocketType.Stream, ProtocolType.Tcp);
        var started = sandbox.Command(
            $"$null = Initialize-DomainShare relaymode.example.com -MingerEndpoint {address}:{minger} -SmtpEndpoint {address}:{smtp}\n" +
            "(Start-DomainShareRelay).ProcessId").AssertExit(0);
        int pid = int.Parse(started.StdoutLines[^1]);
        try
        {
            string[] cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["-Relay", sandbox.ConfigPath], cmdline[^2..]);
            string maps = File.ReadAllText($"/proc/{pid}/maps");
            Assert.Contains("DomainShare.Engine.dll", maps);
            Assert.DoesNotContain("System.Management.Automation.dll", maps);

            // It is a relay like any other: it answers SMTP and stops with Stop-DomainShareRelay.
            using (var client = new TcpClient())
            {
                client.Connect(address, smtp);
                using var reader = new StreamReader(client.GetStream());
                Assert.StartsWith("220 relaymode.example.com", reader.ReadLine());
            }
            sandbox.Command("Stop-DomainShareRelay").AssertExit(0); // it waits for the process to exit
            Assert.False(Directory.Exists($"/proc/{pid}"), "the relay still runs after Stop-DomainShareRelay");
        }
        finally
        {
            try { using var process = Process.GetProcessById(pid); if (File.ReadAllText($"/proc/{pid}/cmdline").Contains(sandbox.ConfigPath)) process.Kill(); }
            catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException) { }
        }
    }

    private static int FreePort(IPAddress address, SocketType type, ProtocolType protocol)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, type, protocol);
        socket.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
