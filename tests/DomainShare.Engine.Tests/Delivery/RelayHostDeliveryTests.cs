using DomainShare.Engine.Queue;
using DomainShare.Engine.Smtp;
using static DomainShare.Engine.Tests.DeliveryTests.DeliveryRig;

namespace DomainShare.Engine.Tests.DeliveryTests;

public sealed class RelayHostDeliveryTests
{
    private static SmtpSink AddRelayHost(DeliveryRig rig)
    {
        string address = NewLoopbackAddress();
        var sink = rig.StartSink(address);
        rig.Config = rig.Config with { Smtp = rig.Config.Smtp with { RelayHost = $"{address}:{sink.Port}" } };
        return sink;
    }

    [Fact]
    public async Task With_keep_queued_on_mail_for_a_peer_never_goes_to_the_relay_host()
    {
        await using var rig = new DeliveryRig();
        var relay = AddRelayHost(rig);
        var peer = rig.AddPeer(down: true);
        Assert.True(rig.Config.DomainSharing.KeepQueuedOnDeliveryError); // the default
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 5 }, "five failed attempts (past the relay-host threshold of 2)");

        Assert.Empty(relay.Messages);
        Assert.Equal(0, relay.Connections);
        var recipient = Assert.Single(rig.Queue.Get(id)!.Recipients);
        Assert.Equal(QueueRoute.Peer, recipient.Route);
        Assert.Equal(RecipientState.Pending, recipient.State);
    }

    [Fact]
    public async Task With_keep_queued_off_the_relay_host_gets_the_mail_after_the_peer_retries()
    {
        await using var rig = new DeliveryRig();
        var relay = AddRelayHost(rig);
        var peer = rig.AddPeer(down: true);
        rig.Config = rig.Config with { DomainSharing = rig.Config.DomainSharing with { KeepQueuedOnDeliveryError = false } };
        await rig.StartAgentAsync();
        var content = Content("Via the smart host");

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)], content);
        await rig.WaitUntilGoneAsync(id);

        var received = Assert.Single(relay.Messages);
        Assert.Equal(["bob@example.com"], received.Recipients);
        Assert.Equal("ann@example.com", received.MailFrom);
        Assert.Equal(content, received.Data);
        Assert.Contains(rig.Log.Lines, l => l.Contains("handing it to the relay host"));
        Assert.True(rig.Log.Lines.Count(l => l.Contains("deferred") && l.Contains("cannot connect")) >= 2, "the peer was tried first");
    }

    [Fact]
    public async Task Relay_host_recipients_of_trusted_clients_go_to_the_relay_host()
    {
        await using var rig = new DeliveryRig();
        var relay = AddRelayHost(rig);
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [new RecipientRoute("zoe@elsewhere.test", RouteKind.RelayHost), new RecipientRoute("yan@elsewhere.test", RouteKind.RelayHost)]);
        await rig.WaitUntilGoneAsync(id);

        Assert.Equal(["zoe@elsewhere.test", "yan@elsewhere.test"], Assert.Single(relay.Messages).Recipients);
    }

    [Fact]
    public async Task Relay_host_recipients_wait_while_no_relay_host_is_configured()
    {
        await using var rig = new DeliveryRig();
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [new RecipientRoute("zoe@elsewhere.test", RouteKind.RelayHost)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 1 }, "an attempt");
        Assert.Contains("no usable relay host", rig.Queue.Get(id)!.LastError);

        var relay = AddRelayHost(rig);
        rig.Queue.Resume(id);
        await rig.WaitUntilGoneAsync(id);
        Assert.Single(relay.Messages);
    }
}
