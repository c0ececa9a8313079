using DomainShare.Engine.Relay;

namespace DomainShare.Engine.Tests.Relay;

public sealed class RelayServicesTests
{
    [Fact]
    public void The_delivery_agent_gets_the_queue_settings_of_the_configuration()
    {
        var c = Samples.FullyPopulated();
        var options = SmtpRelayService.DeliveryOptions(c, () => c);

        Assert.Equal(c.Queue.MaxConnectionsPerPeer, options.MaxConnectionsPerDestination);
        Assert.NotEqual(Defaults.MaxConnectionsPerPeer, options.MaxConnectionsPerDestination);
        Assert.Equal(c.Queue.PeerAttemptsBeforeRelayHost, options.PeerAttemptsBeforeRelayHost);
        Assert.Equal(c.Queue.ConnectTimeout, options.ConnectTimeout);
        Assert.Equal(c.Queue.CommandTimeout, options.CommandTimeout);
        Assert.Same(c, options.Configuration());
    }
}
