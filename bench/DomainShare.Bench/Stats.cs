using System.Globalization;

namespace DomainShare.Bench;

/// <summary>Order statistics of a set of timings, in milliseconds.</summary>
internal sealed record Summary(int Count, double Median, double P95, double Min, double Max)
{
    public static Summary Of(IReadOnlyCollection<double> milliseconds)
    {
        if (milliseconds.Count == 0) throw new ArgumentException("No samples.", nameof(milliseconds));
        var sorted = milliseconds.Order().ToArray();
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        // Nearest-rank percentile: the smallest sample with at least 95 % of the samples at or below it.
        double p95 = sorted[Math.Max(0, (int)Math.Ceiling(0.95 * n) - 1)];
        return new Summary(n, median, p95, sorted[0], sorted[^1]);
    }

    public static Summary Of(IEnumerable<TimeSpan> timings) => Of([.. timings.Select(t => t.TotalMilliseconds)]);

    /// <summary>"median 12.3 ms, p95 15.0 ms (N=30)": for many samples.</summary>
    public string MedianP95() => $"median {Ms(Median)}, p95 {Ms(P95)} (N={Count})";

    /// <summary>"median 12.3 ms (min 10.1 / max 15.0 ms, N=5)": for a handful of samples, where p95 would be the maximum.</summary>
    public string MedianMinMax() => $"median {Ms(Median)} (min {Num(Min)} / max {Ms(Max)}, N={Count})";

    public static string Ms(double ms) => Num(ms) + " ms";

    public static string Num(double value) => value.ToString(value < 100 ? "0.0" : "0", CultureInfo.InvariantCulture);
}
