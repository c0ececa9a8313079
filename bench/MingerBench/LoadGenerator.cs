using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;

namespace DomainShare.MingerBench;

/// <summary>The addresses the bench asks about, pre-encoded, with the answer each must get.</summary>
internal sealed class Workload
{
    private Workload(byte[][] queries, string[] mailboxes, MingerStatus[] expected)
    {
        Queries = queries;
        Mailboxes = mailboxes;
        Expected = expected;
        Index = new Dictionary<string, int>(mailboxes.Length, StringComparer.Ordinal);
        for (int i = 0; i < mailboxes.Length; i++) Index[mailboxes[i]] = i;
    }

    public byte[][] Queries { get; }
    public string[] Mailboxes { get; }
    public MingerStatus[] Expected { get; }
    public Dictionary<string, int> Index { get; }

    /// <summary>
    /// Adds <paramref name="accounts"/> active accounts to the store and builds the query mix: every account (7 in 10
    /// asked with some letters in upper case) plus unknown addresses making up 30 % of the mix, in a shuffled order.
    /// </summary>
    public static Workload Create(AccountStore store, int accounts, string? secret)
    {
        var created = DateTimeOffset.UtcNow;
        Parallel.For(0, accounts, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            if (!store.TryAdd(new Account($"user{i}@bench.example", $"User {i}", true, null, created, $"maildir/user{i}")))
                throw new InvalidOperationException($"user{i}@bench.example exists already");
        });
        var random = new Random(4069);
        int unknown = accounts * 3 / 7;
        var mailboxes = new List<(string, MingerStatus)>(accounts + unknown);
        for (int i = 0; i < accounts; i++)
        {
            string address = $"user{i}@bench.example";
            if (random.Next(10) < 7) address = i % 2 == 0 ? address.ToUpperInvariant() : "User" + address[4..].Replace("bench", "Bench", StringComparison.Ordinal);
            mailboxes.Add((address, MingerStatus.Exists));
        }
        for (int i = 0; i < unknown; i++) mailboxes.Add(($"ghost{i}@bench.example", MingerStatus.Unknown));
        var order = mailboxes.OrderBy(_ => random.Next()).ToArray();
        var names = order.Select(m => m.Item1).ToArray();
        return new Workload(names.Select(m => MingerCodec.EncodeQuery(m, secret)).ToArray(), names, order.Select(m => m.Item2).ToArray());
    }
}

/// <summary>What one measured phase saw.</summary>
internal sealed class PhaseResult(long completed, long lost, long wrong, TimeSpan elapsed, long[] latencyTicks, TimeSpan cpu)
{
    /// <summary>Processor time of the whole process (server and load generator, user and kernel) during the phase.</summary>
    public TimeSpan Cpu { get; } = cpu;
    /// <summary>Processor time per answered query, in microseconds: the cost of one round trip, both sides together.</summary>
    public double CpuMicrosecondsPerQuery => Completed == 0 ? double.NaN : Cpu.TotalMilliseconds * 1000 / Completed;

    public long Completed { get; } = completed;
    public long Lost { get; } = lost;
    public long Wrong { get; } = wrong;
    public TimeSpan Elapsed { get; } = elapsed;
    public double QueriesPerSecond => Completed / Elapsed.TotalSeconds;

    /// <summary>Latency at quantile <paramref name="q"/>, in milliseconds (nearest rank).</summary>
    public double Percentile(double q)
    {
        if (latencyTicks.Length == 0) return double.NaN;
        int rank = (int)Math.Ceiling(q * latencyTicks.Length) - 1;
        return latencyTicks[Math.Clamp(rank, 0, latencyTicks.Length - 1)] * 1000.0 / Stopwatch.Frequency;
    }
}

/// <summary>
/// Closed-loop load: each socket (bound to its own 127.0.0.N, so each is one source to the server's rate limiter) keeps
/// <c>window</c> queries in flight: it sends that many, then one more for every reply. Latency is the time from a
/// query's send to its reply. A reply that does not come within 500 ms counts as lost and its slot is refilled.
/// </summary>
internal static class LoadGenerator
{
    private static readonly TimeSpan LossTimeout = TimeSpan.FromMilliseconds(500);

    public static IPAddress SourceAddress(int socket) => new([127, 0, 0, (byte)(1 + socket)]);

    public static async Task<PhaseResult> RunAsync(IPEndPoint server, Workload workload, int sockets, int window, long maxQueries, TimeSpan maxTime)
    {
        long budget = maxQueries;
        var deadline = Stopwatch.GetTimestamp() + (long)(maxTime.TotalSeconds * Stopwatch.Frequency);
        var started = Stopwatch.GetTimestamp();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var runs = Enumerable.Range(0, sockets)
            .Select(i => Task.Run(() => RunSocketAsync(i, server, workload, window, () => Interlocked.Decrement(ref budget) >= 0, deadline)))
            .ToArray();
        var parts = await Task.WhenAll(runs);
        var elapsed = Stopwatch.GetElapsedTime(started);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var latencies = parts.SelectMany(p => p.Latencies).ToArray();
        Array.Sort(latencies);
        return new PhaseResult(parts.Sum(p => p.Completed), parts.Sum(p => p.Lost), parts.Sum(p => p.Wrong), elapsed, latencies, cpu);
    }

    private sealed record SocketResult(long Completed, long Lost, long Wrong, List<long> Latencies);

    private static async Task<SocketResult> RunSocketAsync(int index, IPEndPoint server, Workload workload, int window, Func<bool> takeOne, long deadline)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(SourceAddress(index), 0));
        socket.Connect(server); // the kernel then delivers only the server's datagrams to this socket
        var sentAt = new long[workload.Queries.Length];
        var latencies = new List<long>(1 << 16);
        var buffer = new byte[2048];
        int next = index * 7919 % workload.Queries.Length; // each socket starts elsewhere in the mix
        int inFlight = 0;
        long completed = 0, lost = 0, wrong = 0;
        bool sending = true;
        var timeout = new CancellationTokenSource();
        try
        {
            while (true)
            {
                if (sending && Stopwatch.GetTimestamp() >= deadline) sending = false;
                while (sending && inFlight < window && (sending = takeOne()))
                {
                    int i;
                    do { i = next; next = (next + 1) % workload.Queries.Length; } while (sentAt[i] != 0); // never two of one mailbox in flight
                    sentAt[i] = Stopwatch.GetTimestamp();
                    inFlight++;
                    await socket.SendAsync(workload.Queries[i], SocketFlags.None);
                }
                if (inFlight == 0) break;

                int received;
                timeout.CancelAfter(LossTimeout);
                try
                {
                    received = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                }
                catch (OperationCanceledException)
                {
                    // Nothing for 500 ms: what is still in flight was dropped (a full socket buffer). Count it and refill.
                    lost += inFlight;
                    inFlight = 0;
                    Array.Clear(sentAt);
                    timeout.Dispose();
                    timeout = new CancellationTokenSource();
                    continue;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
                {
                    continue; // an ICMP error for an earlier datagram
                }
                if (!timeout.TryReset())
                {
                    timeout.Dispose();
                    timeout = new CancellationTokenSource();
                }
                long now = Stopwatch.GetTimestamp();
                if (!MingerCodec.TryParseReply(buffer.AsSpan(0, received), out var mailbox, out var status)
                    || !workload.Index.TryGetValue(mailbox, out int asked) || sentAt[asked] == 0)
                {
                    wrong++; // not a reply to a query in flight
                    continue;
                }
                latencies.Add(now - sentAt[asked]);
                sentAt[asked] = 0;
                inFlight--;
                completed++;
                if (status != workload.Expected[asked]) wrong++;
            }
        }
        finally
        {
            timeout.Dispose();
        }
        return new SocketResult(completed, lost, wrong, latencies);
    }
}
