using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Relay;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests;

/// <summary>
/// Starting, stopping and reconfiguring one relay process: refusals that name their cause, a stale state file, and
/// configuration changes (good and broken) picked up by a running relay. Each test owns its server.
/// </summary>
public sealed class RelayLifecycleTests(ITestOutputHelper output) : IDisposable
{
    private readonly Cluster cluster = new("lifecycle");

    public void Dispose() => cluster.Dispose();

    private Server NewServer(string label, string? secret = null)
    {
        var server = cluster.Add(label, secret);
        cluster.Configure([server]);
        return server;
    }

    [Fact]
    public void A_minger_port_in_use_fails_the_start_with_an_error_naming_the_endpoint()
    {
        var s = NewServer("busy");
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        squatter.Bind(s.MingerEndPoint);

        var run = cluster.Invoke($"Start-DomainShareRelay {s.Cfg}", $"Get-DomainShareRelay {s.Cfg}");
        if (s.State is { } state) s.RelayProcessIds.Add(state.ProcessId);

        var error = Assert.Single(run.Errors);
        Assert.Equal("RelayStartFailed,DomainShare.Commands.StartDomainShareRelayCommand", error.Id);
        Assert.Contains($"{s.Address}:{s.MingerPort}", error.Message);
        Assert.Contains("in use", error.Message);
        Assert.Equal("ResourceUnavailable", error.Category);
        Assert.False(run.Single<Relay>().Running, run.ToString());
        Assert.Null(s.State);
    }

    [Fact]
    public void A_stale_state_file_of_a_dead_relay_does_not_block_a_start()
    {
        var s = NewServer("stale");
        int deadPid = DeadProcessId();
        var unusedControlPort = Loopback.FreeTcpPort(IPAddress.Loopback);
        Directory.CreateDirectory(s.DataDirectory);
        new RelayState
        {
            ProcessId = deadPid,
            Started = DateTimeOffset.UtcNow.AddHours(-1),
            ConfigPath = s.ConfigPath,
            ControlPort = unusedControlPort,
            Token = "00112233445566778899AABBCCDDEEFF0011223344556677",
            MingerEndpoint = $"{s.Address}:{s.MingerPort}",
        }.Save(s.DataDirectory);

        var before = cluster.GetRelay(s);
        Assert.False(before.Running);

        var relay = Assert.Single(cluster.Start(s));
        Assert.NotEqual(deadPid, relay.ProcessId);
        Assert.Equal(relay.ProcessId, s.State!.ProcessId);
        Assert.Equal(MingerStatus.Unknown, MingerProbe.Ask(s.MingerEndPoint, "nobody@example.com"));

        // Stop ends the process and removes the state file; Get then says so.
        var run = cluster.Invoke($"Stop-DomainShareRelay -PassThru {s.Cfg}", $"Get-DomainShareRelay {s.Cfg}").AssertSuccess();
        var (stopped, after) = (run.At<Relay>(0), run.At<Relay>(1));
        Assert.Equal(relay.ProcessId, stopped.ProcessId);
        Assert.False(stopped.Running);
        Assert.False(after.Running);
        Assert.True(Cluster.Eventually(() => !Cluster.IsAlive(relay.ProcessId!.Value, s.ConfigPath), TimeSpan.FromSeconds(10)));
        Assert.Null(s.State);
        Assert.Null(MingerProbe.Ask(s.MingerEndPoint, "nobody@example.com", wait: TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public void A_new_minger_secret_is_applied_by_the_running_relay_without_a_restart()
    {
        const string oldSecret = "the-old-secret-0123456789";
        const string newSecret = "the-new-secret-9876543210";
        var s = NewServer("rekey", oldSecret);
        s.AddAccount("sam@example.com");
        int pid = cluster.Start(s)[0].ProcessId!.Value;
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(s.MingerEndPoint, "sam@example.com", oldSecret));

        cluster.Invoke($"Set-DomainShareConfig -MingerSecret '{newSecret}' {s.Cfg}").AssertSuccess();

        // The relay polls its file every second: a peer that still uses the old secret soon gets 2.
        var (status, after) = MingerProbe.AskUntil(s.MingerEndPoint, "sam@example.com", oldSecret, MingerStatus.BadCredentials, TimeSpan.FromSeconds(10));
        Assert.True(status == MingerStatus.BadCredentials, $"Still {status} {after.TotalSeconds:0.0} s after the change.");
        output.WriteLine($"The running relay applied the new secret {after.TotalSeconds:0.0} s after Set-DomainShareConfig returned.");
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(s.MingerEndPoint, "sam@example.com", newSecret));
        var relay = s.Status();
        Assert.Equal(pid, relay.ProcessId);
        Assert.Null(relay.ConfigurationError);
    }

    [Fact]
    public void A_broken_configuration_file_keeps_the_relay_on_the_last_good_one_shows_why_and_still_lets_it_stop()
    {
        const string secret = "the-good-secret-0123456789";
        var s = NewServer("broken", secret);
        s.AddAccount("sam@example.com");
        int pid = cluster.Start(s)[0].ProcessId!.Value;
        string good = File.ReadAllText(s.ConfigPath);

        // An administrator's slip: a hand edit the reader refuses (a rate limit that is not a number).
        Assert.Contains("rateLimitPerSecond: 100", good);
        File.WriteAllText(s.ConfigPath, good.Replace("rateLimitPerSecond: 100", "rateLimitPerSecond: lots"));
        Assert.True(Cluster.Eventually(() => s.Status().ConfigurationError is not null, TimeSpan.FromSeconds(10)), "The relay never noticed the broken file.");

        var relay = cluster.GetRelay(s);
        Assert.True(relay.Running);
        Assert.Equal(pid, relay.ProcessId);
        Assert.Contains("rateLimitPerSecond", relay.ConfigurationError);
        Assert.Contains(s.ConfigPath, relay.ConfigurationError);
        // Still answering, with the last good settings.
        Assert.Equal(MingerStatus.Exists, MingerProbe.Ask(s.MingerEndPoint, "sam@example.com", secret));
        Assert.Equal(MingerStatus.BadCredentials, MingerProbe.Ask(s.MingerEndPoint, "sam@example.com"));

        // Repaired, the error goes away; broken again (a YAML syntax error this time), the relay can still be stopped.
        File.WriteAllText(s.ConfigPath, good);
        Assert.True(Cluster.Eventually(() => s.Status().ConfigurationError is null, TimeSpan.FromSeconds(10)), "The error stayed after the repair.");
        File.WriteAllText(s.ConfigPath, good.Replace("retries: 1", "retries: [1"));
        Assert.True(Cluster.Eventually(() => s.Status().ConfigurationError is not null, TimeSpan.FromSeconds(10)));

        var run = cluster.Invoke($"Stop-DomainShareRelay -PassThru {s.Cfg}", $"Get-DomainShareRelay {s.Cfg}");
        Assert.Equal(pid, run.Single<Relay>().ProcessId);
        Assert.True(Cluster.Eventually(() => !Cluster.IsAlive(pid, s.ConfigPath), TimeSpan.FromSeconds(10)));
        // With no relay left, Get reports the broken file itself.
        Assert.Equal("InvalidConfiguration,DomainShare.Commands.GetDomainShareRelayCommand", Assert.Single(run.ErrorIds));
    }

    /// <summary>The id of a process that has exited (and been reaped) just now.</summary>
    private static int DeadProcessId()
    {
        using var process = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
