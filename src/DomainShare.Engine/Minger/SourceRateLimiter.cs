using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DomainShare.Engine.Minger;

/// <summary>
/// A token bucket per source address: <c>ratePerSecond</c> tokens a second, holding at most <c>ratePerSecond</c>
/// (so a source may send a one-second burst, then the steady rate). Memory is bounded: at most
/// <see cref="MaxTrackedSources"/> sources are tracked. A source that has been quiet long enough for its bucket to be
/// full again is forgotten (forgetting it changes nothing), and when the table is full of sources that are all active
/// (a flood of spoofed addresses), every further source shares one overflow bucket with the same rate, so spoofing many
/// addresses never buys more answers than the table already allows.
/// </summary>
/// <remarks>
/// The table is split into lock-protected shards chosen by a per-process seeded hash, so neither lock contention nor
/// hash collisions can be forced from outside. A full shard is swept for idle entries at most every 100 ms.
/// </remarks>
internal sealed class SourceRateLimiter
{
    public const int DefaultMaxTrackedSources = 65_536;
    private const int ShardCount = 16;

    private readonly Shard[] shards;
    private readonly Func<long> clock;
    private readonly double tokensPerTick;
    private readonly double capacity;
    private readonly long refillTicks;
    private readonly long sweepIntervalTicks;
    private readonly int maxPerShard;
    private readonly object overflowLock = new();
    private Bucket overflow;

    /// <param name="ratePerSecond">Sustained queries per second per source, and the burst size; at least 1.</param>
    /// <param name="maxTrackedSources">Bound on the table (rounded to a multiple of 16).</param>
    /// <param name="clock">Timestamps in <see cref="Stopwatch.Frequency"/> ticks; <see cref="Stopwatch.GetTimestamp"/> by default (tests pass their own).</param>
    public SourceRateLimiter(int ratePerSecond, int maxTrackedSources = DefaultMaxTrackedSources, Func<long>? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ratePerSecond, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTrackedSources, ShardCount);
        RatePerSecond = ratePerSecond;
        this.clock = clock ?? Stopwatch.GetTimestamp;
        tokensPerTick = (double)ratePerSecond / Stopwatch.Frequency;
        capacity = ratePerSecond;
        refillTicks = Stopwatch.Frequency; // capacity / rate = one second from empty to full
        sweepIntervalTicks = Stopwatch.Frequency / 10;
        maxPerShard = maxTrackedSources / ShardCount;
        MaxTrackedSources = maxPerShard * ShardCount;
        shards = new Shard[ShardCount];
        for (int i = 0; i < shards.Length; i++) shards[i] = new Shard(Math.Min(maxPerShard, 256));
        overflow = new Bucket(capacity, this.clock());
    }

    public int RatePerSecond { get; }
    public int MaxTrackedSources { get; }

    /// <summary>The number of sources in the table now.</summary>
    public int TrackedSources
    {
        get
        {
            int n = 0;
            foreach (var shard in shards)
                lock (shard) n += shard.Map.Count;
            return n;
        }
    }

    /// <summary>Takes one token for <paramref name="source"/>; false when it is over its rate (drop the datagram).</summary>
    public bool TryAcquire(SourceKey source)
    {
        long now = clock();
        var shard = shards[(uint)source.GetHashCode() % ShardCount];
        lock (shard)
        {
            ref Bucket bucket = ref CollectionsMarshal.GetValueRefOrNullRef(shard.Map, source);
            if (!Unsafe.IsNullRef(ref bucket)) return Take(ref bucket, now);
            if (shard.Map.Count < maxPerShard || Sweep(shard, now))
            {
                shard.Map.Add(source, new Bucket(capacity - 1, now));
                return true;
            }
        }
        lock (overflowLock) return Take(ref overflow, now);
    }

    private bool Take(ref Bucket bucket, long now)
    {
        long elapsed = now - bucket.Updated;
        if (elapsed > 0)
        {
            bucket.Tokens = elapsed >= refillTicks ? capacity : Math.Min(capacity, bucket.Tokens + elapsed * tokensPerTick);
            bucket.Updated = now;
        }
        if (bucket.Tokens < 1) return false;
        bucket.Tokens -= 1;
        return true;
    }

    /// <summary>Removes the shard's sources whose buckets have refilled; true when room was made. Called with the shard locked.</summary>
    private bool Sweep(Shard shard, long now)
    {
        if (now < shard.NextSweep) return false;
        shard.NextSweep = now + sweepIntervalTicks;
        foreach (var (key, bucket) in shard.Map)
            if (now - bucket.Updated >= refillTicks)
                shard.Map.Remove(key);
        return shard.Map.Count < maxPerShard;
    }

    private struct Bucket(double tokens, long updated)
    {
        public double Tokens = tokens;
        public long Updated = updated;
    }

    private sealed class Shard(int initialCapacity)
    {
        public readonly Dictionary<SourceKey, Bucket> Map = new(initialCapacity);
        public long NextSweep = long.MinValue;
    }
}
