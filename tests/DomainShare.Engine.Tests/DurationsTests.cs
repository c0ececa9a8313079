namespace DomainShare.Engine.Tests;

public class DurationsTests
{
    [Theory]
    [InlineData("5d", 5 * 86_400_000L)]
    [InlineData("12h", 12 * 3_600_000L)]
    [InlineData("30m", 30 * 60_000L)]
    [InlineData("90s", 90_000L)]
    [InlineData("500ms", 500L)]
    [InlineData("1d12h", 36 * 3_600_000L)]
    [InlineData("1h30m15s250ms", 5_415_250L)]
    [InlineData("2m5s", 125_000L)]
    [InlineData("0", 0L)]
    [InlineData("0s", 0L)]
    [InlineData(" 5d ", 5 * 86_400_000L)]
    [InlineData("1.12:00:00", 36 * 3_600_000L)]
    [InlineData("00:00:02", 2_000L)]
    [InlineData("00:00:00.5", 500L)]
    public void TryParse_reads_compact_and_clock_forms(string text, long milliseconds)
    {
        Assert.True(Durations.TryParse(text, out var value), text);
        Assert.Equal(TimeSpan.FromTicks(milliseconds * TimeSpan.TicksPerMillisecond), value);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("garbage")]
    [InlineData("5")]
    [InlineData("5 d")]
    [InlineData("5D")]
    [InlineData("-5d")]
    [InlineData("12h5d")]
    [InlineData("5x")]
    [InlineData("1.5h")]
    [InlineData("-1:00:00")]
    [InlineData("99999999999999999999d")]
    [InlineData("20000000d")]
    public void TryParse_refuses_garbage(string? text)
    {
        Assert.False(Durations.TryParse(text, out _), text);
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(500L, "500ms")]
    [InlineData(1_500L, "1s500ms")]
    [InlineData(90_000L, "1m30s")]
    [InlineData(36 * 3_600_000L, "1d12h")]
    [InlineData(5 * 86_400_000L, "5d")]
    [InlineData(400 * 86_400_000L + 1, "400d1ms")]
    public void Format_writes_the_compact_form(long milliseconds, string expected)
        => Assert.Equal(expected, Durations.Format(TimeSpan.FromTicks(milliseconds * TimeSpan.TicksPerMillisecond)));

    [Fact]
    public void Format_then_TryParse_round_trips_any_whole_millisecond_duration()
    {
        int seed = Environment.TickCount;
        var random = new Random(seed);
        long maxMs = TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMillisecond;
        var samples = new List<TimeSpan> { TimeSpan.Zero, TimeSpan.FromMilliseconds(1), TimeSpan.FromTicks(maxMs * TimeSpan.TicksPerMillisecond) };
        for (int i = 0; i < 20_000; i++)
        {
            // Spread over every magnitude: milliseconds, hours, days, decades, the largest TimeSpan.
            long limit = (long)Math.Pow(10, random.Next(1, 16));
            long ms = random.NextInt64(0, Math.Min(limit, maxMs) + 1);
            samples.Add(TimeSpan.FromTicks(ms * TimeSpan.TicksPerMillisecond));
        }
        foreach (var value in samples)
        {
            string text = Durations.Format(value);
            Assert.True(Durations.TryParse(text, out var back), $"'{text}' did not parse (seed {seed})");
            Assert.True(value == back, $"{value} was written '{text}' and read back as {back} (seed {seed})");
        }
    }

    [Fact]
    public void Format_then_TryParse_round_trips_sub_millisecond_durations()
    {
        foreach (var value in new[] { TimeSpan.FromTicks(1), TimeSpan.FromTicks(15_001), TimeSpan.MaxValue, new TimeSpan(1, 2, 3, 4) + TimeSpan.FromTicks(7) })
        {
            string text = Durations.Format(value);
            Assert.True(Durations.TryParse(text, out var back), text);
            Assert.Equal(value, back);
        }
    }
}
