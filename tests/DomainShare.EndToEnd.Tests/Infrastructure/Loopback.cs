using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DomainShare.Engine.Minger;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Loopback addresses and ports for the servers of a test run. On Linux all of 127.0.0.0/8 is on <c>lo</c>, so every
/// server gets an address of its own (127.0.0.20 and up) and a UDP port found free on it: test classes running in
/// parallel, or another test run on the same machine, never share an endpoint.
/// </summary>
public static class Loopback
{
    /// <summary>An address no server of this project listens on: the "gateway" or "other network" a test queries from.</summary>
    public static readonly IPAddress Outsider = IPAddress.Parse("127.0.0.9");

    private static int next = 19;

    public static IPAddress NextAddress()
    {
        int n = Interlocked.Increment(ref next);
        if (n > 254) throw new InvalidOperationException("Out of loopback addresses for test servers.");
        return IPAddress.Parse($"127.0.0.{n}");
    }

    /// <summary>A UDP port that is free on <paramref name="address"/> now (and its TCP twin, for the SMTP endpoint).</summary>
    public static int FreeUdpPort(IPAddress address)
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)udp.LocalEndPoint!).Port;
    }

    public static int FreeTcpPort(IPAddress address)
    {
        var listener = new TcpListener(address, 0);
        listener.Start();
        try { return ((IPEndPoint)listener.LocalEndpoint).Port; }
        finally { listener.Stop(); }
    }
}

/// <summary>A Minger client for probing a server directly from the test, as a gateway or another peer would.</summary>
public static class MingerProbe
{
    /// <summary>
    /// Sends one query (signed with <paramref name="secret"/> if given) from <paramref name="from"/> (127.0.0.1 by default)
    /// and waits up to <paramref name="wait"/> for the reply from exactly <paramref name="server"/> for exactly the mailbox;
    /// null when none came. No retry: a test that needs one says so.
    /// </summary>
    public static MingerStatus? Ask(IPEndPoint server, string mailbox, string? secret = null, IPAddress? from = null, TimeSpan? wait = null)
        => AskTimed(server, mailbox, secret, from, wait).Status;

    public static (MingerStatus? Status, TimeSpan Elapsed) AskTimed(IPEndPoint server, string mailbox, string? secret = null, IPAddress? from = null, TimeSpan? wait = null)
    {
        var limit = wait ?? TimeSpan.FromSeconds(3);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(from ?? IPAddress.Loopback, 0));
        var watch = Stopwatch.StartNew();
        socket.SendTo(MingerCodec.EncodeQuery(mailbox, secret), server);
        var buffer = new byte[2048];
        MingerStatus status = default;
        int n = ReceiveFrom(socket, server, buffer, watch, limit,
            length => MingerCodec.TryParseReply(buffer.AsSpan(0, length), out var echoed, out status) && echoed == mailbox);
        return (n < 0 ? null : status, watch.Elapsed);
    }

    /// <summary>
    /// Waits until <paramref name="watch"/> reaches <paramref name="until"/> for a datagram on <paramref name="socket"/> from
    /// exactly <paramref name="server"/> that <paramref name="accept"/> (given its length in <paramref name="buffer"/>) takes;
    /// returns that length, or -1 when none came. An ICMP "port unreachable" from an earlier datagram is waited out.
    /// </summary>
    public static int ReceiveFrom(Socket socket, IPEndPoint server, byte[] buffer, Stopwatch watch, TimeSpan until, Func<int, bool> accept)
    {
        while (watch.Elapsed < until)
        {
            socket.ReceiveTimeout = Math.Max(1, (int)(until - watch.Elapsed).TotalMilliseconds);
            EndPoint sender = new IPEndPoint(IPAddress.Any, 0);
            int n;
            try { n = socket.ReceiveFrom(buffer, ref sender); }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock) { break; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionRefused)
            {
                // Nobody listens (yet); keep waiting out the limit.
                Thread.Sleep(20);
                continue;
            }
            if (sender.Equals(server) && accept(n)) return n;
        }
        return -1;
    }

    /// <summary>Asks until the answer is <paramref name="expected"/> or <paramref name="within"/> has passed; returns the last answer and when it came.</summary>
    public static (MingerStatus? Status, TimeSpan After) AskUntil(IPEndPoint server, string mailbox, string? secret, MingerStatus expected, TimeSpan within)
    {
        var watch = Stopwatch.StartNew();
        MingerStatus? last;
        do
        {
            last = Ask(server, mailbox, secret, wait: TimeSpan.FromMilliseconds(500));
            if (last == expected) return (last, watch.Elapsed);
            Thread.Sleep(100);
        }
        while (watch.Elapsed < within);
        return (last, watch.Elapsed);
    }
}
