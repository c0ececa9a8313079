using System.Diagnostics;
using DomainShare.EndToEnd.Tests.Infrastructure;
using MimeKit;
using Xunit.Abstractions;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>
/// The other side of the "Peer faults" figure: with keepQueuedOnDeliveryError off and
/// -QueuePeerAttemptsBeforeRelayHost 2, mail for a peer that is down or answers 4xx forever goes to the relay host after
/// exactly two failed attempts, once, and nothing is bounced (so the "nothing to the relay host" of
/// <see cref="PeerFaultTests"/> is an assertion that can fail). A class of its own so that it runs beside that test.
/// </summary>
public sealed class PeerFaultFallbackTests(ITestOutputHelper output)
{
    [Fact]
    public void With_keep_queued_off_mail_for_faulty_peers_goes_to_the_relay_host_after_the_configured_attempts()
    {
        int perPeer = Figures.Size(5, 50);
        const int attemptsBeforeRelayHost = 2;
        var clock = Stopwatch.StartNew();
        using var relayHost = new SmtpSink();
        using var cluster = new Cluster("peerfaults-off");
        var peers = new List<FaultyPeer>();
        try
        {
            foreach (var fault in new[] { PeerFault.Down, PeerFault.TemporaryFailure })
                peers.Add(new FaultyPeer($"off{PeerFaultTests.Label(fault)}", fault, cluster.Root, $"secret-of-off-{PeerFaultTests.Label(fault)}-0123456789", clock));
            foreach (var peer in peers) peer.AddAccount($"{peer.Label}@example.com");
            var a = cluster.Add("pfoff", "secret-of-pfoff-0123456789");
            cluster.SetUpAndStart([a],
                configure:
                [
                    .. peers.Select(p => p.PeerScript(a)),
                    $"Set-DomainShareConfig -MingerTimeout 1s -MingerRetries 1 -QueueRetryInterval 500ms -QueueMaxRetryInterval 1s " +
                    $"-QueueConnectTimeout {PeerFaultTests.DeliveryTimeout} -QueueCommandTimeout {PeerFaultTests.DeliveryTimeout} -RelayHost {relayHost.HostPort} " +
                    $"-KeepQueuedOnDeliveryError $false -QueuePeerAttemptsBeforeRelayHost {attemptsBeforeRelayHost} {a.Cfg}",
                ],
                afterStart: []);
            var expected = new HashSet<(string Id, string To)>();
            var messages = new List<MimeMessage>();
            for (int i = 0; i < perPeer; i++)
                foreach (var peer in peers)
                {
                    var token = Mail.NewToken($"pf-{peer.Label}");
                    messages.Add(Mail.Message(token, $"{peer.Label}@example.com"));
                    expected.Add(($"{token}@client.test", $"{peer.Label}@example.com"));
                }
            PeerFaultTests.SendAll(a, messages);
            var sent = clock.Elapsed;

            bool arrived = Cluster.Eventually(() => PeerFaultTests.RelayHostCopies(relayHost).Count >= expected.Count && a.QueueCount() == 0,
                TimeSpan.FromSeconds(Figures.Size(30, 180)), pollMs: 250);
            var took = clock.Elapsed - sent;
            var counters = a.Counters();
            var copies = PeerFaultTests.RelayHostCopies(relayHost);
            int lost = expected.Count(e => !copies.ContainsKey(e));
            Figures.Record(output, PeerFaultTests.Area, $"keep-queued off, {attemptsBeforeRelayHost} peer attempts: recipients handed to the relay host", $"{expected.Count}",
                $"{expected.Count - lost} in {took.TotalSeconds:0.0} s");
            Figures.Record(output, PeerFaultTests.Area, $"keep-queued off, {attemptsBeforeRelayHost} peer attempts: failed peer attempts per recipient before the relay host",
                $"{attemptsBeforeRelayHost}", $"{(double)counters["DeferredRecipients"] / expected.Count:0.##} on average");

            Assert.True(arrived, $"{copies.Count} of {expected.Count} recipients reached the relay host; queue {a.QueueCount()}.");
            Assert.Equal(0, lost);
            Assert.All(copies, c => Assert.True(c.Value == 1, $"{c.Key} reached the relay host {c.Value} times"));
            Assert.True(copies.Keys.All(expected.Contains), "the relay host got mail nobody sent");
            // Each recipient failed at its peer exactly the configured number of times first: no more, no fewer.
            Assert.Equal(attemptsBeforeRelayHost * expected.Count, counters["DeferredRecipients"]);
            Assert.All(peers, p => Assert.Empty(p.Stored));
            Assert.Equal(0, counters["BouncesQueued"]);
        }
        finally
        {
            cluster.KillRelays();
            foreach (var peer in peers) peer.Dispose();
        }
    }
}
