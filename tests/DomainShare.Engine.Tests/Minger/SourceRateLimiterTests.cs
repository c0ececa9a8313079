using System.Diagnostics;
using System.Net;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

/// <summary>The per-source token bucket, on a clock the test moves by hand.</summary>
public class SourceRateLimiterTests
{
    private long now = 1_000_000;
    private long Now() => now;
    private void Advance(TimeSpan t) => now += (long)(t.TotalSeconds * Stopwatch.Frequency);
    private static SourceKey Source(int i) => SourceKey.From(new IPAddress(BitConverter.GetBytes(0x0A000000 + i).Reverse().ToArray()));

    [Fact]
    public void A_source_gets_its_burst_then_its_rate()
    {
        var limiter = new SourceRateLimiter(10, clock: Now);
        for (int i = 0; i < 10; i++) Assert.True(limiter.TryAcquire(Source(1)));
        Assert.False(limiter.TryAcquire(Source(1)));
        Assert.True(limiter.TryAcquire(Source(2))); // another source has its own bucket
        Advance(TimeSpan.FromMilliseconds(100)); // one token
        Assert.True(limiter.TryAcquire(Source(1)));
        Assert.False(limiter.TryAcquire(Source(1)));
        Advance(TimeSpan.FromSeconds(60)); // never more than the burst
        int granted = 0;
        while (limiter.TryAcquire(Source(1))) granted++;
        Assert.Equal(10, granted);
    }

    [Fact]
    public void Over_a_second_a_flooding_source_gets_about_its_rate()
    {
        var limiter = new SourceRateLimiter(100, clock: Now);
        int granted = 0;
        for (int i = 0; i < 10_000; i++)
        {
            if (limiter.TryAcquire(Source(1))) granted++;
            Advance(TimeSpan.FromMilliseconds(0.1)); // 10,000 queries a second for one second
        }
        Assert.InRange(granted, 199, 201); // the burst plus one second at the rate
    }

    [Fact]
    public void The_table_is_bounded_and_spoofed_sources_beyond_it_share_one_bucket()
    {
        var limiter = new SourceRateLimiter(5, maxTrackedSources: 1024, clock: Now);
        int granted = 0;
        for (int i = 0; i < 100_000; i++)
            if (limiter.TryAcquire(Source(i))) granted++;
        Assert.True(limiter.TrackedSources <= 1024, $"{limiter.TrackedSources} sources tracked");
        // Every tracked source got its first query, the overflow bucket its burst of 5, nothing more.
        Assert.InRange(granted, limiter.TrackedSources, limiter.TrackedSources + 5);

        // A known source keeps its own bucket during the flood.
        var known = Source(0);
        Assert.True(limiter.TryAcquire(known));

        // Quiet sources are forgotten once their buckets would be full again, which makes room.
        Advance(TimeSpan.FromSeconds(2));
        Assert.True(limiter.TryAcquire(Source(500_000)));
        Assert.True(limiter.TrackedSources < 1024);
    }
}
