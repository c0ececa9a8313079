using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.Minger.Server;

[CollectionDefinition(nameof(ThreadPoolStarvationCollection), DisableParallelization = true)]
public sealed class ThreadPoolStarvationCollection;

/// <summary>
/// The receive loops are threads of their own, waiting in blocking receives (see <see cref="MingerServer"/>): the
/// server needs no thread-pool thread to answer. Run alone: the test starves the process's thread pool for a moment.
/// </summary>
[Collection(nameof(ThreadPoolStarvationCollection))]
public sealed class MingerServerThreadPoolTests : IDisposable
{
    private readonly TestAccounts accounts = new();

    public void Dispose() => accounts.Dispose();

    /// <summary>
    /// Every thread-pool thread blocked, and more work queued behind them than the pool will add threads for in the
    /// time of the test: the server still answers queries at once, as it does under a flood, when every datagram that
    /// went through the thread pool cost several times the CPU of a blocking receive.
    /// </summary>
    [Fact]
    public async Task Answers_while_the_thread_pool_is_starved()
    {
        // Disposed after the pool is released; everything in between is synchronous and needs no pool thread.
        await using var server = await ServerKit.StartAsync(accounts.Store);
        var at = server.LocalEndPoint!;
        using var release = new ManualResetEventSlim();
        int blocked = 0;
        ThreadPool.GetMinThreads(out int minWorkers, out _);
        int blockers = Math.Max(minWorkers, Environment.ProcessorCount) + 200;
        var answers = new List<MingerStatus?>();
        try
        {
            for (int i = 0; i < blockers; i++)
                ThreadPool.UnsafeQueueUserWorkItem(_ =>
                {
                    Interlocked.Increment(ref blocked);
                    release.Wait(TimeSpan.FromSeconds(30)); // bounded, should the test fail to release it
                }, null);
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref blocked) >= Math.Min(minWorkers, Environment.ProcessorCount), TimeSpan.FromSeconds(10)));
            Thread.Sleep(100);

            // Asked from a socket used synchronously only: the test itself needs no pool thread either.
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            client.ReceiveTimeout = 3_000;
            var buffer = new byte[2048];
            foreach (var mailbox in new[] { TestAccounts.Active, TestAccounts.Unknown, TestAccounts.Disabled })
            {
                client.SendTo(MingerCodec.EncodeQuery(mailbox, null), at);
                EndPoint from = new IPEndPoint(IPAddress.Any, 0);
                try
                {
                    int n = client.ReceiveFrom(buffer, ref from);
                    answers.Add(MingerCodec.TryParseReply(buffer.AsSpan(0, n), out var echoed, out var status) && echoed == mailbox ? status : null);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
                {
                    answers.Add(null);
                }
            }
            // The pool is still starved: the answers did not come from a thread it added.
            Assert.True(Volatile.Read(ref blocked) < blockers, "The thread pool was not starved while the server was asked.");
        }
        finally
        {
            release.Set();
            var wait = Stopwatch.StartNew();
            while (Volatile.Read(ref blocked) < blockers && wait.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(10);
        }
        Assert.Equal([MingerStatus.Exists, MingerStatus.Unknown, MingerStatus.CannotReceive], answers);
    }
}
