using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.EndToEnd.Tests.Infrastructure;
using DomainShare.Engine;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;
using DomainShare.Testing;

namespace DomainShare.EndToEnd.Tests.Hardening;

/// <summary>What the SMTP side of a <see cref="FaultyPeer"/> does.</summary>
public enum PeerFault
{
    /// <summary>Nothing listens on the peer's SMTP port: every connection is refused.</summary>
    Down,
    /// <summary>
    /// Accepts TCP and then says nothing, in turn per connection: not even the greeting; greeting and EHLO, then
    /// silence at MAIL; the whole transaction, then silence after the final dot (nothing is stored).
    /// </summary>
    BlackHole,
    /// <summary>
    /// A 4xx forever: every fourth connection is greeted with 421 and closed; otherwise, in turn per transaction,
    /// 451 to MAIL, 451 to RCPT, 451 after the final dot (nothing stored), 421 to MAIL and the connection closed.
    /// </summary>
    TemporaryFailure,
    /// <summary>
    /// Drops the connection during DATA, in turn per connection: after the headers with a reset (RST), after the
    /// headers with a close (FIN, the rest drained until the client gives up), and one in five after the final dot
    /// with the message stored but never acknowledged (the peer committed: a second copy after the retry is legitimate).
    /// </summary>
    DropDuringData,
    /// <summary>A working SMTP server that stores every message it acknowledges.</summary>
    Healthy,
}

/// <summary>A message a <see cref="FaultyPeer"/> stored: its Message-ID, recipients, when, and under which fault (Healthy, or DropDuringData for a commit that was never acknowledged).</summary>
public sealed record PeerDelivery(string MessageId, IReadOnlyList<string> Recipients, TimeSpan At, PeerFault During);

/// <summary>
/// A DomainShare peer for the fault battery, on a loopback address of its own. Its Minger side is real: the engine's
/// <see cref="MingerServer"/> in this process over a real account table, so the server under test learns that the
/// peer's users live there exactly as from a relay. Its SMTP side is a listener this test controls with
/// <see cref="Fault"/>; <see cref="Recover"/> turns it into a healthy server (started if it was down). Every session
/// is bounded by the client going away, <see cref="SessionLimit"/> and <see cref="Dispose"/>.
/// </summary>
public sealed class FaultyPeer : IDisposable
{
    /// <summary>No session of the listener lives longer, whatever the client does.</summary>
    public static readonly TimeSpan SessionLimit = TimeSpan.FromSeconds(120);

    private readonly CancellationTokenSource stop = new();
    private readonly AccountStore accounts;
    private readonly MingerServer minger;
    private readonly ConcurrentDictionary<TcpClient, bool> sessions = new();
    private readonly ConcurrentDictionary<string, int> faults = new(StringComparer.Ordinal);
    private readonly Stopwatch clock;
    private readonly object listenerLock = new();
    private TcpListener? listener;
    private Task? acceptLoop;
    private int fault;
    private int connections, transactions;

    /// <param name="label">Names the peer in messages and its folder under <paramref name="root"/>.</param>
    /// <param name="fault">What its SMTP side does from the start.</param>
    /// <param name="secret">The Minger secret its queries must carry.</param>
    /// <param name="clock">The test's clock, for <see cref="PeerDelivery.At"/>.</param>
    public FaultyPeer(string label, PeerFault fault, string root, string secret, Stopwatch clock)
    {
        Label = label;
        Secret = secret;
        this.clock = clock;
        Kind = fault;
        this.fault = (int)fault;
        Address = Loopback.NextAddress();
        SmtpPort = Loopback.FreeTcpPort(Address);
        accounts = AccountStore.Open(Directory.CreateDirectory(Path.Combine(root, label)).FullName);
        minger = new MingerServer(accounts, null, NullEngineLog.Instance, new MingerServerSettings { Secret = secret, RateLimitPerSecond = 0 });
        try
        {
            minger.StartAsync(new IPEndPoint(Address, 0)).GetAwaiter().GetResult();
            MingerPort = minger.LocalEndPoint!.Port;
            if (fault != PeerFault.Down) Listen();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Label { get; }
    public string Secret { get; }
    public IPAddress Address { get; }
    public int SmtpPort { get; }
    public int MingerPort { get; }
    /// <summary>The name the server under test knows this peer by.</summary>
    public string PeerName => Address.ToString();

    /// <summary>The fault this peer was made with (<see cref="Fault"/> is what it does now).</summary>
    public PeerFault Kind { get; }

    public PeerFault Fault => (PeerFault)Volatile.Read(ref fault);

    /// <summary>Messages this peer stored, in order.</summary>
    public ConcurrentQueue<PeerDelivery> Stored { get; } = new();

    /// <summary>TCP connections accepted.</summary>
    public int Connections => Volatile.Read(ref connections);

    /// <summary>MAIL FROM commands received.</summary>
    public int Transactions => Volatile.Read(ref transactions);

    /// <summary>Sessions open now (the client has not closed them yet).</summary>
    public int OpenSessions => sessions.Count;

    /// <summary>How often each kind of fault was played (<c>451 at MAIL</c>, <c>RST during DATA</c>, ...).</summary>
    public IReadOnlyDictionary<string, int> FaultsPlayed => faults;

    /// <summary>Add-DomainSharePeer for <paramref name="server"/>: this peer's address, SMTP port, Minger port and secret.</summary>
    public string PeerScript(Server server)
        => $"Add-DomainSharePeer {Address}:{SmtpPort} -MingerPort {MingerPort} -Secret '{Secret}' {server.Cfg}";

    /// <summary>An account of this peer: its Minger server answers that the address lives here.</summary>
    public void AddAccount(string address)
        => Assert.True(accounts.TryAdd(new Account(address, null, true, null, DateTimeOffset.UtcNow, Path.Combine("mail", address))));

    /// <summary>From now on the peer works: new connections and new transactions are served and stored; a down peer starts listening.</summary>
    public void Recover()
    {
        Volatile.Write(ref fault, (int)PeerFault.Healthy);
        Listen();
    }

    private void Listen()
    {
        lock (listenerLock)
        {
            if (listener is not null) return;
            listener = new TcpListener(Address, SmtpPort);
            listener.Start();
            acceptLoop = Task.Run(AcceptLoop);
        }
    }

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener!.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            int n = Interlocked.Increment(ref connections);
            sessions[client] = true;
            _ = Task.Run(() => Serve(client, n));
        }
    }

    private void Played(string what) => faults.AddOrUpdate(what, 1, (_, n) => n + 1);

    private async Task Serve(TcpClient client, int connection)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
        limit.CancelAfter(SessionLimit);
        var ct = limit.Token;
        bool reset = false;
        try
        {
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.UTF8, false, 8192, leaveOpen: true);
            async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
            async Task<string?> Line() => await reader.ReadLineAsync(ct);
            async Task Silence(string what)
            {
                Played(what);
                while (await Line() is not null) { } // until the client gives up
            }

            var atConnect = Fault;
            if (atConnect == PeerFault.BlackHole && connection % 3 == 0)
            {
                await Silence("silent from the start");
                return;
            }
            if (atConnect == PeerFault.TemporaryFailure && connection % 4 == 0)
            {
                Played("421 greeting");
                await Say($"421 4.3.2 {Label}.peer.test Service not available, closing transmission channel");
                return;
            }
            await Say($"220 {Label}.peer.test ESMTP faulty peer");
            string? from = null;
            var recipients = new List<string>();
            int transaction = 0;
            while (await Line() is { } line)
            {
                string verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await Say($"250-{Label}.peer.test\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES");
                        break;
                    case "HELO":
                        await Say($"250 {Label}.peer.test");
                        break;
                    case "MAIL":
                        transaction = Interlocked.Increment(ref transactions);
                        recipients.Clear();
                        from = null;
                        var now = Fault; // a connection kept open from before the recovery works too
                        if (now == PeerFault.BlackHole && connection % 3 == 1)
                        {
                            await Silence("silent at MAIL");
                            return;
                        }
                        if (now == PeerFault.TemporaryFailure && transaction % 4 == 0)
                        {
                            Played("451 at MAIL");
                            await Say("451 4.3.0 Temporary failure, try again later");
                            break;
                        }
                        if (now == PeerFault.TemporaryFailure && transaction % 4 == 3)
                        {
                            Played("421 at MAIL");
                            await Say($"421 4.3.2 {Label}.peer.test Service shutting down, closing transmission channel");
                            return;
                        }
                        from = Angle(line);
                        await Say("250 2.1.0 Ok");
                        break;
                    case "RCPT":
                        if (from is null)
                        {
                            await Say("503 5.5.1 Bad sequence of commands: MAIL first");
                            break;
                        }
                        if (Fault == PeerFault.TemporaryFailure && transaction % 4 == 1)
                        {
                            Played("451 at RCPT");
                            await Say("451 4.7.1 Greylisted, try again later");
                            break;
                        }
                        recipients.Add(Angle(line));
                        await Say("250 2.1.5 Ok");
                        break;
                    case "DATA":
                        if (from is null || recipients.Count == 0)
                        {
                            await Say("554 5.5.1 No valid recipients");
                            break;
                        }
                        await Say("354 End data with <CR><LF>.<CR><LF>");
                        var data = Fault;
                        if (data == PeerFault.DropDuringData && connection % 5 != 4)
                        {
                            // Read the headers, then go away with the rest of the message in flight.
                            while (await Line() is { Length: > 0 }) { }
                            if (connection % 2 == 0)
                            {
                                Played("RST during DATA");
                                reset = true;
                                return;
                            }
                            Played("FIN during DATA");
                            client.Client.Shutdown(SocketShutdown.Send);
                            while (await Line() is not null) { }
                            return;
                        }
                        string? messageId = null;
                        while (await Line() is { } dataLine && dataLine != ".")
                            if (messageId is null && dataLine.StartsWith("Message-Id:", StringComparison.OrdinalIgnoreCase))
                                messageId = dataLine["Message-Id:".Length..].Trim().Trim('<', '>');
                        if (data == PeerFault.BlackHole && connection % 3 == 2)
                        {
                            await Silence("silent after the final dot");
                            return;
                        }
                        if (data == PeerFault.TemporaryFailure && transaction % 4 == 2)
                        {
                            Played("451 after the final dot");
                            await Say("451 4.3.0 Error: queue file write error");
                            from = null;
                            recipients.Clear();
                            break;
                        }
                        Stored.Enqueue(new PeerDelivery(messageId ?? "", recipients.ToArray(), clock.Elapsed, data));
                        if (data == PeerFault.DropDuringData)
                        {
                            Played("closed after the final dot (stored)");
                            return;
                        }
                        from = null;
                        recipients.Clear();
                        await Say("250 2.0.0 Ok: queued");
                        break;
                    default:
                        if (await SmtpTestSession.AnswerOtherAsync(verb, () => { from = null; recipients.Clear(); }, Say)) return;
                        break;
                }
            }
        }
        catch (Exception)
        {
            // The client went away, the session outlived its limit, or the peer is stopping.
        }
        finally
        {
            sessions.TryRemove(client, out _);
            if (reset)
            {
                try { client.Client.LingerState = new LingerOption(true, 0); } // close() then sends RST
                catch (Exception) { }
            }
            client.Dispose();
        }
    }

    private static string Angle(string line)
    {
        int open = line.IndexOf('<'), close = line.IndexOf('>', open + 1);
        return open >= 0 && close > open ? line[(open + 1)..close] : "";
    }

    public override string ToString() => $"{Label} ({Address}:{SmtpPort}, Minger {MingerPort}, {Fault})";

    public void Dispose()
    {
        stop.Cancel();
        lock (listenerLock) listener?.Stop();
        foreach (var client in sessions.Keys) client.Dispose();
        acceptLoop?.Wait(TimeSpan.FromSeconds(5));
        minger.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
        accounts.Dispose();
        stop.Dispose();
    }
}
