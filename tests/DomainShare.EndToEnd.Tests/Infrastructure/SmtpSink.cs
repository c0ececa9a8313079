using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using DomainShare.Testing;

namespace DomainShare.EndToEnd.Tests.Infrastructure;

/// <summary>A message as the sink received it: the client's address, the envelope and the DATA text (dot-unstuffed).</summary>
public sealed record SinkMessage(IPAddress Client, string MailFrom, IReadOnlyList<string> Recipients, string Data);

/// <summary>
/// A tiny SMTP receiver on a loopback address of its own, standing for the relay (smart) host of the servers under test:
/// 220, EHLO/HELO, MAIL (250, or <see cref="MailFromReply"/>), RCPT (every recipient accepted after a MAIL accepted, 503
/// otherwise, as a real server answers pipelined commands), DATA (250), RSET, NOOP, QUIT. Everything it accepted is
/// recorded in <see cref="Messages"/>. Never the subject of a test; bounded by the sessions it serves.
/// </summary>
public sealed class SmtpSink : IDisposable
{
    private readonly TcpListener listener;
    private readonly CancellationTokenSource stop = new();
    private readonly ConcurrentBag<TcpClient> clients = [];
    private readonly Task loop;

    public SmtpSink()
    {
        Address = Loopback.NextAddress();
        listener = new TcpListener(Address, 0);
        listener.Start();
        loop = Task.Run(AcceptLoop);
    }

    public IPAddress Address { get; }
    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;
    /// <summary><c>host:port</c>, as Set-DomainShareConfig -RelayHost takes it.</summary>
    public string HostPort => $"{Address}:{Port}";

    public ConcurrentQueue<SinkMessage> Messages { get; } = new();

    /// <summary>The reply to MAIL FROM, such as <c>452 4.3.1 Insufficient system storage</c>; null answers 250.</summary>
    public string? MailFromReply { get => Volatile.Read(ref mailFromReply); set => Volatile.Write(ref mailFromReply, value); }

    private string? mailFromReply;

    /// <summary>MAIL FROM commands answered with <see cref="MailFromReply"/>.</summary>
    public int MailFromRefused => Volatile.Read(ref mailFromRefused);

    private int mailFromRefused;

    /// <summary>The messages received with <paramref name="token"/> in their content.</summary>
    public IReadOnlyList<SinkMessage> With(string token) => [.. Messages.Where(m => m.Data.Contains(token, StringComparison.Ordinal))];

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(stop.Token); }
            catch (Exception) { return; }
            clients.Add(client);
            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using var _ = client;
        try
        {
            var peer = ((IPEndPoint)client.Client.RemoteEndPoint!).Address;
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.UTF8, false, 8192, leaveOpen: true);
            var ct = stop.Token;
            async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), ct);
            await Say("220 relayhost.test ESMTP sink");
            string? from = null;
            var recipients = new List<string>();
            while (await reader.ReadLineAsync(ct) is { } line)
            {
                string verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO":
                        await Say("250-relayhost.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES");
                        break;
                    case "HELO":
                        await Say("250 relayhost.test");
                        break;
                    case "MAIL":
                        recipients.Clear();
                        if (MailFromReply is { } refusal)
                        {
                            from = null;
                            Interlocked.Increment(ref mailFromRefused);
                            await Say(refusal);
                            break;
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
                        recipients.Add(Angle(line));
                        await Say("250 2.1.5 Ok");
                        break;
                    case "DATA":
                        if (from is null || recipients.Count == 0)
                        {
                            await Say("503 5.5.1 Bad sequence of commands");
                            break;
                        }
                        await Say("354 End data with <CR><LF>.<CR><LF>");
                        var data = new StringBuilder();
                        while (await reader.ReadLineAsync(ct) is { } dataLine && dataLine != ".")
                            data.Append(dataLine.StartsWith('.') ? dataLine[1..] : dataLine).Append("\r\n");
                        Messages.Enqueue(new SinkMessage(peer, from ?? "", recipients.ToArray(), data.ToString()));
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
            // The client went away or the sink is stopping.
        }
    }

    private static string Angle(string line)
    {
        int open = line.IndexOf('<'), close = line.IndexOf('>', open + 1);
        return open >= 0 && close > open ? line[(open + 1)..close] : "";
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        foreach (var c in clients) c.Dispose();
        loop.Wait(TimeSpan.FromSeconds(5));
        stop.Dispose();
    }
}
