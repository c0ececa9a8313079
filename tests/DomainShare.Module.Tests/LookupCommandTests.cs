using System.Management.Automation;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DomainShare.Module.Tests;

/// <summary>
/// Resolve-DomainShareAddress, Test-DomainSharePeer and the cache cmdlets driven as a user's script in the real engine.
/// Lookups that need a peer ask <see cref="FakeMingerPeer"/>, a few lines of UDP in this test (the engine is not referenced
/// here: the module loads its own copy).
/// </summary>
public sealed class LookupCommandTests : IDisposable
{
    private const string Cmd = "DomainShare.Commands.";
    private readonly PowerShellSession ps = new();

    public LookupCommandTests()
        => ps.Run("Initialize-DomainShare -ServerName mx1.example.com; Add-DomainShareDomain example.com -Shared; Add-DomainShareDomain private.example.org")
             .AssertSuccess();

    public void Dispose() => ps.Dispose();

    [Fact]
    public void A_domain_not_hosted_here_is_DomainNotHosted_with_550_5_7_1()
    {
        var r = ps.Run("Resolve-DomainShareAddress someone@elsewhere.example.net").AssertSuccess().Single("DomainShare.DomainShareResolution");
        Assert.Equal("DomainNotHosted", r.Prop("Result"));
        Assert.StartsWith("550 5.7.1", (string)r.Prop("SmtpReply")!);
        Assert.Null(r.Prop("Peer"));
        Assert.Equal(false, r.Prop("FromCache"));
        Assert.Equal("someone@elsewhere.example.net", r.Prop("Address"));
        Assert.Equal(ps.ConfigPath, r.Prop("ConfigPath"));
    }

    [Fact]
    public void A_shared_domain_with_no_enabled_peer_is_NotFound_with_550_5_1_1()
    {
        ps.Run("Add-DomainSharePeer 192.0.2.10 -Disabled").AssertSuccess();
        var r = ps.Run("Resolve-DomainShareAddress nobody@example.com").AssertSuccess().Single("DomainShare.DomainShareResolution");
        Assert.Equal("NotFound", r.Prop("Result"));
        Assert.StartsWith("550 5.1.1", (string)r.Prop("SmtpReply")!);
        Assert.Empty((string[])r.Prop("FailedPeers")!);
        Assert.Null(r.Prop("Peer"));
    }

    [Fact]
    public void A_hosted_domain_that_is_not_shared_is_NotFound_without_asking_anyone()
    {
        ps.Run("Add-DomainSharePeer 192.0.2.10").AssertSuccess(); // would time out if it were asked
        var r = ps.Run("Resolve-DomainShareAddress nobody@private.example.org").AssertSuccess().Single("DomainShare.DomainShareResolution");
        Assert.Equal("NotFound", r.Prop("Result"));
        Assert.Empty((string[])r.Prop("FailedPeers")!);
    }

    [Fact]
    public void Addresses_come_from_the_pipeline_by_value_in_order()
    {
        var r = ps.Run("'a@elsewhere.example.net', 'b@example.com', 'c@private.example.org' | Resolve-DomainShareAddress").AssertSuccess();
        Assert.Equal(["a@elsewhere.example.net", "b@example.com", "c@private.example.org"], r.Output.Select(o => (string)o.Prop("Address")!));
        Assert.Equal(["DomainNotHosted", "NotFound", "NotFound"], r.Output.Select(o => (string)o.Prop("Result")!));
    }

    [Fact]
    public void Addresses_come_from_objects_with_an_Address_property_or_one_of_its_aliases()
    {
        var r = ps.Run("""
            [pscustomobject]@{ Address = 'a@elsewhere.example.net'; Other = 1 },
            [pscustomobject]@{ EmailAddress = 'b@example.com' },
            [pscustomobject]@{ PrimarySmtpAddress = 'c@elsewhere.example.net' } | Resolve-DomainShareAddress
            """).AssertSuccess();
        Assert.Equal(["a@elsewhere.example.net", "b@example.com", "c@elsewhere.example.net"], r.Output.Select(o => (string)o.Prop("Address")!));
        Assert.All(r.Output, o => Assert.Equal("DomainShare.DomainShareResolution", o.BaseObject.GetType().FullName));
    }

    [Fact]
    public void An_invalid_address_is_an_InvalidAddress_error_for_that_item_while_the_others_resolve()
    {
        var r = ps.Run("'first@elsewhere.example.net', 'not an address', 'last@example.com' | Resolve-DomainShareAddress");
        Assert.Equal(["first@elsewhere.example.net", "last@example.com"], r.Output.Select(o => (string)o.Prop("Address")!));
        Assert.Equal("InvalidAddress," + Cmd + "ResolveDomainShareAddressCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(ErrorCategory.InvalidArgument, r.Errors[0].CategoryInfo.Category);
        Assert.Equal("not an address", r.Errors[0].TargetObject);
        Assert.False(string.IsNullOrEmpty(r.Errors[0].ErrorDetails?.RecommendedAction));
        Assert.False(r.Terminated);
    }

    [Fact]
    public void Invalid_addresses_in_the_Address_array_are_reported_one_by_one()
    {
        var r = ps.Run("Resolve-DomainShareAddress -Address '', 'ok@elsewhere.example.net', '<x@example.com>'");
        Assert.Equal("ok@elsewhere.example.net", Assert.Single(r.Output).Prop("Address"));
        Assert.Equal(2, r.Errors.Count);
        Assert.All(r.ErrorIds, id => Assert.Equal("InvalidAddress," + Cmd + "ResolveDomainShareAddressCommand", id));
        Assert.Equal(["", "<x@example.com>"], r.Errors.Select(e => (string)e.TargetObject));
    }

    [Fact]
    public void Test_peer_with_a_peer_that_is_not_configured_is_PeerNotFound()
    {
        ps.Run("Add-DomainSharePeer 192.0.2.10 -Disabled").AssertSuccess();
        var r = ps.Run("Test-DomainSharePeer nosuch.example.net");
        Assert.Equal("PeerNotFound," + Cmd + "TestDomainSharePeerCommand", Assert.Single(r.ErrorIds));
        Assert.Equal(ErrorCategory.ObjectNotFound, r.Errors[0].CategoryInfo.Category);
        Assert.Equal("nosuch.example.net", r.Errors[0].TargetObject);
        Assert.Empty(r.Output);
    }

    [Fact]
    public void A_live_peer_answers_the_probe_and_holds_an_address_which_is_then_cached()
    {
        using var peer = new FakeMingerPeer("pat@example.com");
        ps.Run($"Add-DomainSharePeer {peer.Address} -MingerPort {peer.Port}; Set-DomainShareConfig -MingerTimeout 500ms -MingerRetries 1").AssertSuccess();

        var test = ps.Run("Test-DomainSharePeer").AssertSuccess().Single("DomainShare.DomainSharePeerTest");
        Assert.Equal(true, test.Prop("Reachable"));
        Assert.Equal(true, test.Prop("SecretAccepted"));
        Assert.Equal(true, test.Prop("Passed"));
        Assert.Equal(5, test.Prop("Status"));

        var live = ps.Run("Resolve-DomainShareAddress Pat@Example.com").AssertSuccess().Single("DomainShare.DomainShareResolution");
        Assert.Equal("Peer", live.Prop("Result"));
        Assert.Equal(peer.Address.ToString(), live.Prop("Peer"));
        Assert.Equal(false, live.Prop("FromCache"));
        Assert.StartsWith("250 ", (string)live.Prop("SmtpReply")!);

        int asked = peer.Queries;
        var cached = ps.Run("Resolve-DomainShareAddress pat@example.com").AssertSuccess().Single("DomainShare.DomainShareResolution");
        Assert.Equal("Peer", cached.Prop("Result"));
        Assert.Equal(true, cached.Prop("FromCache"));
        Assert.Equal(asked, peer.Queries);

        var entry = ps.Run("Get-DomainShareCache").AssertSuccess().Single("DomainShare.DomainShareCacheEntry");
        Assert.Equal("pat@example.com", entry.Prop("Address"));
        Assert.Equal(peer.Address.ToString(), entry.Prop("Peer"));
        Assert.Equal(true, entry.Prop("Positive"));
    }

    [Fact]
    public void Clear_cache_with_WhatIf_leaves_the_entries_and_without_it_removes_them()
    {
        using var peer = new FakeMingerPeer("pat@example.com", "sam@example.com");
        ps.Run($"Add-DomainSharePeer {peer.Address} -MingerPort {peer.Port}; Set-DomainShareConfig -MingerTimeout 500ms -MingerRetries 1").AssertSuccess();
        Assert.All(ps.Run("'pat@example.com', 'sam@example.com' | Resolve-DomainShareAddress").AssertSuccess().Output,
            o => Assert.Equal("Peer", o.Prop("Result")));
        Assert.Equal(2, ps.Run("Get-DomainShareCache").AssertSuccess().Output.Count);

        var whatIf = ps.Run("Clear-DomainShareCache -WhatIf -PassThru").AssertSuccess();
        Assert.Contains("What if:", whatIf.HostText);
        Assert.Equal(0, Assert.Single(whatIf.Output).BaseObject);
        var patOnly = ps.Run("Clear-DomainShareCache pat* -WhatIf").AssertSuccess();
        Assert.Contains("pat*", patOnly.HostText);
        Assert.Equal(["pat@example.com", "sam@example.com"], ps.Run("Get-DomainShareCache").AssertSuccess().Output.Select(o => (string)o.Prop("Address")!));

        Assert.Equal(1, Assert.Single(ps.Run("Clear-DomainShareCache pat* -PassThru").AssertSuccess().Output).BaseObject);
        Assert.Equal("sam@example.com", ps.Run("Get-DomainShareCache").AssertSuccess().Single("DomainShare.DomainShareCacheEntry").Prop("Address"));
        Assert.Equal(1, Assert.Single(ps.Run("Clear-DomainShareCache -PassThru").AssertSuccess().Output).BaseObject);
        Assert.Empty(ps.Run("Get-DomainShareCache").AssertSuccess().Output);
    }
}

/// <summary>
/// A peer that speaks just enough Minger for the cmdlets: it answers 5 for its mailboxes (and the <c>*</c> probe), 3
/// for anything else, and checks no secret. The wire format is written out here on purpose: this project does not
/// reference the engine.
/// </summary>
internal sealed class FakeMingerPeer : IDisposable
{
    private readonly Socket socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly HashSet<string> mailboxes;
    private readonly Thread loop;
    private int queries;
    private volatile bool stopping;

    public FakeMingerPeer(params string[] mailboxes)
    {
        this.mailboxes = new HashSet<string>(mailboxes, StringComparer.OrdinalIgnoreCase);
        Address = IPAddress.Parse($"127.0.4.{Random.Shared.Next(2, 250)}");
        socket.Bind(new IPEndPoint(Address, 0));
        socket.ReceiveTimeout = 100; // the loop looks at 'stopping' this often
        Port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        loop = new Thread(Serve) { IsBackground = true, Name = "FakeMingerPeer" };
        loop.Start();
    }

    public IPAddress Address { get; }
    public int Port { get; }
    public int Queries => Volatile.Read(ref queries);

    private void Serve()
    {
        var buffer = new byte[2048];
        while (!stopping)
        {
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            int n;
            try { n = socket.ReceiveFrom(buffer, ref from); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock) { continue; }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
            Interlocked.Increment(ref queries);
            string mailbox = Encoding.UTF8.GetString(buffer, 0, n).TrimEnd('\r', '\n').Split(' ')[0];
            char status = mailbox == "*" || mailboxes.Contains(mailbox) ? '5' : '3';
            try { socket.SendTo(Encoding.UTF8.GetBytes($"{mailbox} {status}"), from); }
            catch (Exception e) when (e is SocketException or ObjectDisposedException) { return; }
        }
    }

    public void Dispose()
    {
        stopping = true;
        loop.Join(2000);
        socket.Dispose();
    }
}
