using DomainShare.Engine.Delivery;
using DomainShare.Engine.Minger;
using DomainShare.Engine.Queue;
using static DomainShare.Engine.Tests.DeliveryTests.DeliveryRig;

namespace DomainShare.Engine.Tests.DeliveryTests;

public sealed class PeerDeliveryTests
{
    [Fact]
    public async Task Two_recipients_of_one_peer_go_in_one_transaction_and_the_connection_is_reused()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        await rig.StartAgentAsync();
        var content = Content("To the peer");

        string first = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer), ToPeer("cat@example.com", peer)], content);
        await rig.WaitUntilGoneAsync(first);
        string second = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilGoneAsync(second);

        Assert.Equal(2, peer.Sink!.Messages.Count);
        var received = peer.Sink.Messages.First();
        Assert.Equal("ann@example.com", received.MailFrom);
        Assert.Equal(["bob@example.com", "cat@example.com"], received.Recipients);
        Assert.Equal(content, received.Data);
        Assert.Equal(1, peer.Sink.Connections);
        Assert.Equal(2, peer.Sink.Commands.Count(c => c == "DATA")); // one transaction per message
        Assert.Equal(1, peer.Sink.Commands.Count(c => c.StartsWith("EHLO", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_null_reverse_path_is_sent_as_MAIL_FROM_empty()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync(null, [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilGoneAsync(id);

        Assert.Equal("", Assert.Single(peer.Sink!.Messages).MailFrom);
        Assert.Contains(peer.Sink.Commands, c => c.StartsWith("MAIL FROM:<>", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task New_mail_takes_turns_with_a_backlog_of_retries_for_a_down_peer_instead_of_waiting_behind_it()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        var peer = rig.AddPeer(down: true);
        // One delivery at a time makes the order visible: which messages the scheduler starts, one after the other.
        rig.Options = rig.Options with { MaxConcurrentMessages = 1, Retry = new RetrySchedule(TimeSpan.FromMilliseconds(50), 1, TimeSpan.FromMilliseconds(50)) };
        string[] backlog = [.. await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)])))];
        await rig.StartAgentAsync();
        await rig.WaitUntilAsync(() => backlog.All(id => rig.Queue.Get(id) is { Attempts: >= 1 }), "a first failed attempt of each");
        await rig.StopAgentAsync();
        await rig.WaitUntilAsync(() => backlog.All(id => rig.Queue.Get(id)!.NextAttempt < DateTimeOffset.UtcNow), "every retry is due");
        var before = backlog.ToDictionary(id => id, id => rig.Queue.Get(id)!.Attempts);

        // New mail arrives after the retries fell due: without turns it would wait until all four were tried again.
        var retriedWhenStored = new List<int>();
        rig.Store = new ObservedStore(new MaildirMessageStore(), () => retriedWhenStored.Add(backlog.Count(id => rig.Queue.Get(id)!.Attempts > before[id])));
        string[] fresh = [await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]), await rig.CommitAsync("x@outside.test", [Local("ann@example.com")])];
        await rig.StartAgentAsync();
        foreach (var id in fresh) await rig.WaitUntilGoneAsync(id);

        Assert.Equal(2, NewMail(maildir).Length);
        // The first new message went before any retry; the second after one retry at most: they take turns.
        Assert.Equal(0, retriedWhenStored[0]);
        Assert.InRange(retriedWhenStored[1], 0, 1);
        // And the retries are not starved by new mail: they go on.
        await rig.WaitUntilAsync(() => backlog.All(id => rig.Queue.Get(id)!.Attempts > before[id]), "every message of the backlog tried again");
    }

    [Fact]
    public async Task A_peer_that_hangs_mid_session_takes_no_more_delivery_slots_than_its_connections()
    {
        await using var rig = new DeliveryRig();
        string maildir = rig.AddAccount("ann@example.com");
        var hanging = rig.AddPeer();
        hanging.Sink!.StallAtMail = true;
        var working = rig.AddPeer();
        // Its transactions hang far longer than this test waits for anything.
        rig.Options = rig.Options with { MaxConcurrentMessages = 4, MaxConnectionsPerDestination = 1, CommandTimeout = TimeSpan.FromSeconds(60) };
        string[] stuck = [.. await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", hanging)])))];
        await rig.StartAgentAsync();
        await rig.WaitUntilAsync(() => hanging.Sink.Commands.Any(c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)), "a transaction hangs at MAIL");

        // Mail for a local user and for a working peer does not wait for delivery slots held by the hanging peer's mail.
        string local = await rig.CommitAsync("x@outside.test", [Local("ann@example.com")]);
        string other = await rig.CommitAsync("x@outside.test", [ToPeer("cat@example.com", working)]);
        await rig.WaitUntilGoneAsync(local);
        await rig.WaitUntilGoneAsync(other);

        Assert.Single(NewMail(maildir));
        Assert.Single(working.Sink!.Messages);
        Assert.Equal(1, hanging.Sink.Connections);
        Assert.All(stuck, id => Assert.Equal(0, rig.Queue.Get(id)!.Attempts)); // the hanging transaction has not ended yet
    }

    /// <summary>A message store that calls <paramref name="onStore"/> before each message it stores.</summary>
    private sealed class ObservedStore(IMessageStore inner, Action onStore) : IMessageStore
    {
        public ValueTask<string> StoreAsync(string maildir, Stream content, long size, CancellationToken ct)
        {
            onStore();
            return inner.StoreAsync(maildir, content, size, ct);
        }

        public long UsedBytes(string maildir) => inner.UsedBytes(maildir);
    }

    [Fact]
    public async Task A_peer_that_is_down_keeps_the_message_queued_with_growing_waits_until_it_comes_up()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer(down: true);
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 3 }, "three failed attempts");
        var waiting = rig.Queue.Get(id)!;
        Assert.Equal(RecipientState.Pending, waiting.Recipients[0].State);
        Assert.Equal(QueueRoute.Peer, waiting.Recipients[0].Route);
        Assert.Contains("cannot connect", waiting.LastError);
        Assert.Contains("connection refused", waiting.LastError);
        // The wait after the n-th failure follows the schedule (100, 200, then 300 ms at most here).
        Assert.True(waiting.NextAttempt - waiting.LastAttempt >= rig.Options.Retry.DelayAfter(waiting.Attempts),
            $"next attempt {waiting.NextAttempt:O} after last {waiting.LastAttempt:O} for attempt {waiting.Attempts}");
        Assert.True(waiting.Recipients[0].Attempts >= 3);

        var sink = rig.StartSink(peer.Name, peer.SmtpPort);
        await rig.WaitUntilGoneAsync(id);
        Assert.Equal(["bob@example.com"], Assert.Single(sink.Messages).Recipients);
    }

    [Fact]
    public async Task A_4xx_answer_keeps_the_recipient_queued_and_never_bounces()
    {
        await using var rig = new DeliveryRig();
        string sender = rig.AddAccount("ann@example.com");
        var peer = rig.AddPeer();
        peer.Sink!.RecipientReplies["bob@example.com"] = "450 4.2.1 Mailbox busy";
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer), ToPeer("cat@example.com", peer)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 3 }, "three attempts");

        var message = rig.Queue.Get(id)!;
        Assert.Equal(RecipientState.Pending, message.Recipients[0].State);
        Assert.StartsWith("450 4.2.1 Mailbox busy", message.Recipients[0].LastError);
        Assert.Equal(RecipientState.Delivered, message.Recipients[1].State);
        Assert.Equal(["cat@example.com"], Assert.Single(peer.Sink.Messages).Recipients); // delivered once, not again on retries
        Assert.Single(rig.Queue.List());
        Assert.Empty(NewMail(sender));
    }

    [Fact]
    public async Task A_connection_dropped_during_DATA_is_retried()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        peer.Sink!.DropDuringData = true;
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 1 }, "a failed attempt");
        Assert.StartsWith("451 4.4.2", rig.Queue.Get(id)!.LastError);
        Assert.Empty(peer.Sink.Messages);

        peer.Sink.DropDuringData = false;
        await rig.WaitUntilGoneAsync(id);
        Assert.Single(peer.Sink.Messages);
    }

    [Fact]
    public async Task A_peer_that_accepts_TCP_and_never_answers_times_out_and_stays_queued()
    {
        await using var rig = new DeliveryRig();
        rig.Options = rig.Options with { ConnectTimeout = TimeSpan.FromMilliseconds(300) };
        var peer = rig.AddPeer();
        peer.Sink!.Silent = true;
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)]);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 1 }, "a timed-out attempt");

        Assert.Contains("no answer within", rig.Queue.Get(id)!.LastError);
        Assert.Equal(RecipientState.Pending, rig.Queue.Get(id)!.Recipients[0].State);
    }

    [Fact]
    public async Task Mail_is_never_sent_back_to_the_peer_it_came_from()
    {
        await using var rig = new DeliveryRig();
        var peer = rig.AddPeer();
        peer.Minger.With("bob@example.com", MingerStatus.Exists);
        await rig.StartAgentAsync();

        // The peer sent us mail for bob, and bob lives on that very peer (its routing and ours disagree).
        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", peer)], sourceIp: peer.Name);
        await rig.WaitUntilAsync(() => rig.Queue.Get(id) is { Attempts: >= 2 }, "two held attempts");

        Assert.Empty(peer.Sink!.Messages);
        Assert.Equal(0, peer.Sink.Connections);
        Assert.Contains("mail loop", rig.Queue.Get(id)!.LastError);
        Assert.True(peer.Minger.Received >= 1, "the address was looked up again without the cache");
        Assert.Contains(rig.Log.Lines, l => l.Contains("never sent back"));
    }

    [Fact]
    public async Task Mail_from_a_peer_for_an_address_that_moved_is_rerouted_instead_of_sent_back()
    {
        await using var rig = new DeliveryRig();
        var from = rig.AddPeer();
        var to = rig.AddPeer();
        to.Minger.With("bob@example.com", MingerStatus.Exists);
        await rig.StartAgentAsync();

        string id = await rig.CommitAsync("ann@example.com", [ToPeer("bob@example.com", from)], sourceIp: from.Name);
        await rig.WaitUntilGoneAsync(id);

        Assert.Empty(from.Sink!.Messages);
        Assert.Equal(["bob@example.com"], Assert.Single(to.Sink!.Messages).Recipients);
    }
}
