using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace DomainShare.Engine.Relay;

/// <summary>A request on the control channel.</summary>
internal sealed record ControlRequest(string Token, string Command);

/// <summary>An answer on the control channel.</summary>
internal sealed record ControlResponse(bool Ok, string? Error = null, RelayStatus? Status = null);

/// <summary>
/// The relay's control channel: one JSON line in, one JSON line out, over TCP on 127.0.0.1 with a random token from
/// the owner-only state file. Works the same on every platform and needs no signals (Windows has none to send).
/// </summary>
internal sealed class RelayControlServer : IAsyncDisposable
{
    private const int MaxRequestBytes = 4096;
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly Func<string, CancellationToken, Task<ControlResponse>> handle;
    private readonly IEngineLog log;
    private readonly CancellationTokenSource stop = new();
    private Task? loop;

    public RelayControlServer(string token, Func<string, CancellationToken, Task<ControlResponse>> handle, IEngineLog log)
    {
        Token = token;
        this.handle = handle;
        this.log = log;
    }

    public string Token { get; }
    public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

    public static string NewToken() => Convert.ToHexString(RandomNumberGenerator.GetBytes(24));

    public void Start()
    {
        listener.Start();
        loop = AcceptLoop(stop.Token);
    }

    private async Task AcceptLoop(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await listener.AcceptTcpClientAsync(ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException ex) { log.Write(LogLevel.Warning, $"Control channel accept failed: {ex.Message}"); continue; }
            _ = Serve(client, ct);
        }
    }

    private async Task Serve(TcpClient client, CancellationToken ct)
    {
        using var _ = client;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var stream = client.GetStream();
            var line = await ReadLine(stream, timeout.Token).ConfigureAwait(false);
            ControlResponse response;
            ControlRequest? request = null;
            try { request = line is null ? null : JsonSerializer.Deserialize<ControlRequest>(line, RelayState.Json); }
            catch (JsonException) { }
            if (request?.Token is null || request.Command is null ||
                !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(request.Token), Encoding.UTF8.GetBytes(Token)))
                response = new ControlResponse(false, "Access denied.");
            else
                response = await handle(request.Command, timeout.Token).ConfigureAwait(false);
            var bytes = JsonSerializer.SerializeToUtf8Bytes(response, RelayState.Json);
            await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync("\n"u8.ToArray(), timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A client that goes away or stalls only loses its own answer.
        }
        catch (Exception ex)
        {
            log.Write(LogLevel.Error, $"Control request failed: {ex}");
        }
    }

    internal static async Task<string?> ReadLine(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new byte[MaxRequestBytes];
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = await stream.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0) break;
            int newline = Array.IndexOf(buffer, (byte)'\n', filled, n);
            filled += n;
            if (newline >= 0) return Encoding.UTF8.GetString(buffer, 0, newline);
        }
        return filled == 0 ? null : Encoding.UTF8.GetString(buffer, 0, filled);
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Stop();
        if (loop is not null) await loop.ConfigureAwait(false);
        stop.Dispose();
    }
}

/// <summary>Talks to a running relay through its control channel.</summary>
public static class RelayControlClient
{
    /// <summary>Sends <paramref name="command"/> (status, stop); null when nobody answers (no relay, or a stale state file).</summary>
    internal static async Task<ControlResponse?> SendAsync(RelayState state, string command, TimeSpan timeout, CancellationToken ct = default)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            using var client = new TcpClient(AddressFamily.InterNetwork);
            await client.ConnectAsync(IPAddress.Loopback, state.ControlPort, cts.Token).ConfigureAwait(false);
            var stream = client.GetStream();
            var request = JsonSerializer.SerializeToUtf8Bytes(new ControlRequest(state.Token, command), RelayState.Json);
            await stream.WriteAsync(request, cts.Token).ConfigureAwait(false);
            await stream.WriteAsync("\n"u8.ToArray(), cts.Token).ConfigureAwait(false);
            var line = await RelayControlServer.ReadLine(stream, cts.Token).ConfigureAwait(false);
            return line is null ? null : JsonSerializer.Deserialize<ControlResponse>(line, RelayState.Json);
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or JsonException)
        {
            return null;
        }
    }

    /// <summary>The status of the relay of <paramref name="dataDirectory"/>, or null when none is running.</summary>
    public static async Task<RelayStatus?> GetStatusAsync(string dataDirectory, CancellationToken ct = default)
    {
        if (RelayState.Load(dataDirectory) is not { } state) return null;
        var response = await SendAsync(state, "status", TimeSpan.FromSeconds(5), ct).ConfigureAwait(false);
        return response is { Ok: true, Status: { } status } ? status : null;
    }
}
