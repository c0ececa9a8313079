using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>Random and mutated datagrams through a live server socket.</summary>
public sealed class MingerServerFuzzTests : IDisposable
{
    private const string Secret = "0123456789abcdef";
    private readonly TestAccounts accounts = new();

    public void Dispose() => accounts.Dispose();

    /// <summary>
    /// 20,000 datagrams, one at a time, without rate limit: each gets exactly one reply, echoing the datagram's first
    /// token, with the status the rules give (0 when the codec refuses it). The server still answers afterwards and
    /// counted no error.
    /// </summary>
    [Fact]
    public async Task Every_fuzzed_datagram_gets_the_reply_the_rules_give()
    {
        const int count = 20_000;
        var log = new CollectingLog();
        await using var server = await ServerKit.StartAsync(accounts.Store, new MingerServerSettings { Secret = Secret, AllowAnonymous = true, RateLimitPerSecond = 0 }, log: log);
        using var client = new UdpTestPeer();
        var at = server.LocalEndPoint!;
        var fuzz = new MingerFuzz(seed: 25);
        var seen = new int[6];
        for (int i = 0; i < count; i++)
        {
            var datagram = fuzz.Next();
            var (mailbox, status) = await client.AskAsync(datagram, at);
            seen[(int)status]++;
            var expectedEcho = MingerCodec.EchoToken(datagram);
            if (!MingerCodec.TryParseQuery(datagram, out var query))
            {
                Assert.Equal(MingerStatus.Invalid, status);
                Assert.Equal(expectedEcho, mailbox);
                continue;
            }
            Assert.Equal(query!.Mailbox, mailbox);
            Assert.Equal(expectedEcho, mailbox);
            if (query.Digest is not null && !MingerCodec.VerifyDigest(Secret, query.Mailbox, query.Digest))
                Assert.Equal(MingerStatus.BadCredentials, status);
            else
                Assert.Equal(query.IsProbe ? MingerStatus.Exists : Expected(accounts.Store.GetState(query.Mailbox)), status);
        }
        Assert.True(seen[0] > count / 2 && seen[5] > 0 && seen[3] > 0 && seen[2] > 0, string.Join(",", seen));
        Assert.Equal((TestAccounts.Active, MingerStatus.Exists), await client.AskAsync(TestAccounts.Active, at, Secret));
        var stats = server.GetStatistics();
        Assert.Equal(0, stats.Errors);
        Assert.Equal(count + 1, stats.Received);
        Assert.DoesNotContain(log.Lines, l => l.Level >= LogLevel.Warning);
    }

    /// <summary>
    /// With a rate limit, a blast of fuzzed datagrams from one source: every reply that comes is well formed, the rest
    /// are dropped silently, and once the bucket has refilled the server answers that source again.
    /// </summary>
    [Fact]
    public async Task A_fuzzed_blast_under_a_rate_limit_gets_well_formed_replies_or_none()
    {
        const int count = 5_000;
        await using var server = await ServerKit.StartAsync(accounts.Store, new MingerServerSettings { RateLimitPerSecond = 200 });
        using var client = new UdpTestPeer("127.0.0.5");
        var at = server.LocalEndPoint!;
        var fuzz = new MingerFuzz(seed: 7);
        var sent = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            var datagram = fuzz.Next();
            sent.Add(MingerCodec.EchoToken(datagram));
            await client.SendAsync(datagram, at);
            if (i % 100 == 99) await Task.Delay(1); // fast, but not so fast that the kernel's socket buffer drops most of it
        }
        // The kernel may still drop some datagrams of the blast: wait until the count stops moving.
        long last = await ServerKit.SettledReceivedAsync(server);
        Assert.True(last > count / 2, $"the server saw only {last} of {count} datagrams");
        int replies = 0;
        while (await client.ReceiveAsync(at, TimeSpan.FromMilliseconds(200)) is { } reply)
        {
            replies++;
            Assert.Contains(reply.Mailbox, sent);
        }
        var stats = server.GetStatistics();
        Assert.True(stats.RateLimited > 0, "nothing was rate limited");
        Assert.Equal(stats.Received, stats.RateLimited + stats.Answered);
        Assert.True(replies <= stats.Answered);
        Assert.Equal(0, stats.Errors);

        await Task.Delay(TimeSpan.FromMilliseconds(100)); // 20 tokens back
        Assert.Equal((TestAccounts.Active, MingerStatus.Exists), await client.AskAsync(TestAccounts.Active, at));
    }

    private static MingerStatus Expected(Accounts.AccountState state) => state switch
    {
        Accounts.AccountState.Active => MingerStatus.Exists,
        Accounts.AccountState.Unknown => MingerStatus.Unknown,
        _ => MingerStatus.CannotReceive,
    };
}
