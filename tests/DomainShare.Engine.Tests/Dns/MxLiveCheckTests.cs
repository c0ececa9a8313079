using System.Diagnostics;
using DomainShare.Engine.DnsRecords;
using DomainShare.Tests.DnsResponder;

namespace DomainShare.Engine.Tests.DnsRecords;

/// <summary>
/// The live check with DnsClient against a real DNS server on loopback: <see cref="LoopbackDnsResponder"/>, a UDP
/// responder written for the tests (dnsmasq cannot be installed by dotnet test alone).
/// </summary>
public sealed class MxLiveCheckTests : IDisposable
{
    private static readonly ServerConfiguration Paris = new()
    {
        ServerName = "paris.example.com",
        Domains = [new DomainConfiguration("example.com", Shared: true), new DomainConfiguration("bücher.example", Shared: false)],
        Peers = [new PeerConfiguration { Name = "lyon.example.com" }],
    };

    private readonly LoopbackDnsResponder dns = new();

    public void Dispose() => dns.Dispose();

    private MxChecker Checker(TimeSpan? timeout = null)
        => new(new DnsClientMxLookup(new MxLookupOptions { Server = dns.EndPoint, Timeout = timeout ?? TimeSpan.FromSeconds(2) }));

    private Task<MxCheckResult> Check(string domain, TimeSpan? timeout = null, CancellationToken ct = default)
        => Checker(timeout).CheckAsync(Paris, MxPlanner.Plan(Paris, domain), ct);

    [Fact]
    public async Task Reads_the_live_records_and_passes_when_every_server_is_there_with_a_backup()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (20, "lyon.example.com"));

        var r = await Check("example.com");

        Assert.Equal(MxLookupStatus.Ok, r.Status);
        Assert.True(r.Passed, r.Reason);
        Assert.True(r.HasBackup);
        Assert.Equal([(10, "paris.example.com"), (20, "lyon.example.com")], r.Records.Select(x => (x.Priority, x.Host)));
        Assert.Equal(["example.com/15"], dns.Questions);
        Assert.Equal(dns.Address, r.DnsServer);
    }

    [Fact]
    public async Task A_missing_peer_and_an_unknown_host_are_reported()
    {
        dns.Mx("example.com", (10, "paris.example.com"), (20, "backup.provider.net"));

        var r = await Check("example.com");

        Assert.False(r.Passed);
        Assert.Equal(["lyon.example.com"], r.MissingServers);
        Assert.Equal(["backup.provider.net"], r.UnexpectedHosts);
        Assert.False(r.HasBackup);
        Assert.Equal("Lyon.example.com is not an MX target; the MX host backup.provider.net is not a configured server.", r.Reason);
    }

    [Fact]
    public async Task The_query_is_sent_in_ascii_for_an_internationalised_domain()
    {
        dns.Mx("xn--bcher-kva.example", (10, "paris.example.com"));

        var r = await Check("bücher.example");

        Assert.True(r.Passed, r.Reason);
        Assert.Equal(["xn--bcher-kva.example/15"], dns.Questions);
    }

    [Theory]
    [InlineData(DnsBehavior.NameError, MxLookupStatus.NonExistentDomain, "NXDOMAIN")]
    [InlineData(DnsBehavior.ServerFailure, MxLookupStatus.ServerFailure, "SERVFAIL")]
    [InlineData(DnsBehavior.Refused, MxLookupStatus.Refused, "REFUSED")]
    [InlineData(DnsBehavior.Answer, MxLookupStatus.NoMxRecords, "no MX record")]
    public async Task A_dns_error_is_a_failed_result_with_the_reason(DnsBehavior behavior, MxLookupStatus status, string reason)
    {
        dns.Behave("example.com", behavior);

        var r = await Check("example.com");

        Assert.Equal(status, r.Status);
        Assert.False(r.Passed);
        Assert.Contains(reason, r.Reason);
        Assert.Empty(r.Records);
    }

    [Fact]
    public async Task A_server_that_never_answers_is_a_timeout_after_one_retry()
    {
        dns.Behave("example.com", DnsBehavior.Silent);

        var r = await Check("example.com", TimeSpan.FromMilliseconds(300));

        Assert.Equal(MxLookupStatus.Timeout, r.Status);
        Assert.False(r.Passed);
        Assert.Equal($"The MX records of example.com could not be read: no answer from {dns.Address} within 300ms (2 tries).", r.Reason);
        Assert.Equal(["example.com/15", "example.com/15"], dns.Questions);
    }

    [Fact]
    public async Task Cancelling_stops_a_query_that_waits()
    {
        dns.Behave("example.com", DnsBehavior.Silent);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var watch = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Check("example.com", TimeSpan.FromSeconds(20), cts.Token));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), "the query did not wait for its timeout");
    }

    [Fact]
    public async Task A_dns_server_that_is_not_there_is_a_failed_result_not_an_exception()
    {
        int closedPort;
        using (var probe = new System.Net.Sockets.UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0)))
            closedPort = ((System.Net.IPEndPoint)probe.Client.LocalEndPoint!).Port;
        var checker = new MxChecker(new DnsClientMxLookup(new MxLookupOptions
        {
            Server = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, closedPort),
            Timeout = TimeSpan.FromMilliseconds(500),
        }));

        var r = await checker.CheckAsync(Paris, MxPlanner.Plan(Paris, "example.com"), CancellationToken.None);

        Assert.False(r.Passed);
        Assert.Contains(r.Status, new[] { MxLookupStatus.Failed, MxLookupStatus.Timeout });
        Assert.StartsWith("The MX records of example.com could not be read: ", r.Reason);
    }

    [Fact]
    public void Timeouts_that_cannot_work_are_refused()
    {
        Expect.Error(ErrorIds.InvalidSetting, () => new DnsClientMxLookup(new MxLookupOptions { Timeout = TimeSpan.Zero }));
        Expect.Error(ErrorIds.InvalidSetting, () => new DnsClientMxLookup(new MxLookupOptions { Timeout = TimeSpan.FromHours(1) }));
    }
}
