using System.Net;
using DomainShare.Engine.Queue;
using DomainShare.Engine.Smtp;
using DomainShare.Engine.Tests.Routing;
using static DomainShare.Engine.Tests.DeliveryTests.DeliveryRig;

namespace DomainShare.Engine.Tests.DeliveryTests;

/// <summary>Delivery from one server's queue to another's: DomainShare's own SMTP server on the peer side, its queue as the sink.</summary>
public sealed class SmtpServerInteropTests
{
    private sealed class AcceptAll : IRecipientPolicy
    {
        public ValueTask<RecipientDecision> CheckRecipientAsync(SmtpSessionInfo session, string? reversePath, string recipient, CancellationToken ct)
            => ValueTask.FromResult(RecipientDecision.Accept(new RecipientRoute(recipient, RouteKind.Local)));
    }

    [Fact]
    public async Task A_message_for_a_peer_lands_byte_exact_in_the_peer_servers_queue()
    {
        await using var rig = new DeliveryRig();
        using var peerFolder = new TempFolder();
        var peerLog = new ListLog();
        using var peerQueue = MessageQueue.Open(peerFolder.Path, log: peerLog);
        string address = NewLoopbackAddress();
        await using var server = new SmtpServer(new SmtpServerOptions { ServerName = "mx2.example.com" }, new AcceptAll(), peerQueue, peerLog);
        await server.StartAsync(new IPEndPoint(IPAddress.Parse(address), 0));
        rig.Config = rig.Config with { Peers = rig.Config.Peers.Add(new PeerConfiguration { Name = address, SmtpPort = server.LocalEndPoint!.Port }) };
        await rig.StartAgentAsync();
        var content = Content("Across servers");

        string id = await rig.CommitAsync("ann@example.com", [new RecipientRoute("bob@example.com", RouteKind.Peer, address), new RecipientRoute("cat@example.com", RouteKind.Peer, address)], content);
        await rig.WaitUntilGoneAsync(id);
        await rig.WaitUntilAsync(() => peerQueue.Count == 1, "the peer's queue holds the message");

        var received = Assert.Single(peerQueue.List());
        Assert.Equal("ann@example.com", received.ReversePath);
        Assert.Equal(["bob@example.com", "cat@example.com"], received.Recipients.Select(r => r.Address));
        Assert.Equal("127.0.0.1", received.Source?.Address);
        await using var stream = peerQueue.OpenContent(received.Id);
        var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        byte[] stored = copy.ToArray();
        Assert.StartsWith("Received: ", System.Text.Encoding.ASCII.GetString(stored, 0, 10));
        Assert.Equal(content, stored[^content.Length..]); // the peer's Received: header, then our bytes unchanged
    }
}
