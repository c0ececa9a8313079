using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Minger;

namespace ResolverBench;

/// <summary>
/// A real Minger responder on a loopback UDP port: answers 3 for every mailbox (5 for <see cref="Holds"/>), optionally
/// after a fixed delay that stands in for network latency. Built on the engine's codec.
/// </summary>
internal sealed class Responder : IAsyncDisposable
{
    private readonly Socket socket;
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private long answered;

    public Responder(IPAddress address, TimeSpan delay)
    {
        socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveBufferSize = 1 << 20;
        socket.Bind(new IPEndPoint(address, 0));
        Delay = delay;
        loop = Task.Run(LoopAsync);
    }

    public IPEndPoint EndPoint => (IPEndPoint)socket.LocalEndPoint!;
    public TimeSpan Delay { get; set; }
    public string? Holds { get; set; }
    public long Answered => Interlocked.Read(ref answered);

    private async Task LoopAsync()
    {
        var buffer = new byte[2048];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (!stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await socket.ReceiveFromAsync(buffer, SocketFlags.None, any, stop.Token); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException) { continue; }
            if (!MingerCodec.TryParseQuery(buffer.AsSpan(0, r.ReceivedBytes), out var query)) continue;
            var status = query!.IsProbe || string.Equals(query.Mailbox, Holds, StringComparison.OrdinalIgnoreCase) ? MingerStatus.Exists : MingerStatus.Unknown;
            var reply = MingerCodec.EncodeReply(query.Mailbox, status);
            if (Delay > TimeSpan.Zero)
                _ = ReplyLaterAsync(reply, r.RemoteEndPoint);
            else
                await SendAsync(reply, r.RemoteEndPoint);
        }
    }

    private Task ReplyLaterAsync(byte[] reply, EndPoint to)
    {
        DelayLine.Enqueue(Stopwatch.GetTimestamp() + (long)(Delay.TotalSeconds * Stopwatch.Frequency), () => _ = SendAsync(reply, to));
        return Task.CompletedTask;
    }

    private async ValueTask SendAsync(byte[] reply, EndPoint to)
    {
        try
        {
            await socket.SendToAsync(reply, SocketFlags.None, to, stop.Token);
            Interlocked.Increment(ref answered);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException) { }
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        socket.Dispose();
        try { await loop; } catch { }
        stop.Dispose();
    }
}

/// <summary>
/// Simulated network latency: one thread releases queued replies when they are due. <c>Task.Delay(1 ms)</c> takes about
/// 4 ms on Linux (timer granularity); this sleeps 1 ms while far from the due time and yields the processor when close,
/// so a 1 ms delay really is about 1 ms.
/// </summary>
internal static class DelayLine
{
    private static readonly object Gate = new();
    private static readonly Queue<(long Due, Action Send)> Items = new();
    private static readonly Thread Worker = new(Run) { IsBackground = true, Name = "delay line", Priority = ThreadPriority.AboveNormal };
    private static bool started;

    public static void Enqueue(long due, Action send)
    {
        lock (Gate)
        {
            Items.Enqueue((due, send));
            if (!started) { started = true; Worker.Start(); }
            Monitor.Pulse(Gate);
        }
    }

    private static void Run()
    {
        long oneMs = Stopwatch.Frequency / 1000;
        while (true)
        {
            (long Due, Action Send) next;
            lock (Gate)
            {
                while (Items.Count == 0) Monitor.Wait(Gate);
                next = Items.Peek(); // every item has the same delay, so the queue is in due order
            }
            long left = next.Due - Stopwatch.GetTimestamp();
            if (left > oneMs + oneMs / 5) { Thread.Sleep(1); continue; }
            if (left > 0) { Thread.Yield(); continue; }
            lock (Gate) Items.Dequeue();
            next.Send();
        }
    }
}
