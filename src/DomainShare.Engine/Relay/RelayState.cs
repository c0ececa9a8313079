using System.Text.Json;
using System.Text.Json.Serialization;
using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Relay;

/// <summary>
/// What a running relay publishes in its data directory (<c>relay.json</c>, owner-only): its process id, when it
/// started, its listeners and how to reach its control channel. Written once the listeners are bound, deleted on a
/// graceful stop; a file left by a crashed relay is recognised as stale because nobody answers on its control port.
/// </summary>
public sealed record RelayState
{
    public const string FileName = "relay.json";
    public const string LockFileName = "relay.lock";
    public const string LogFileName = "relay.log";
    public const string OutputFileName = "relay.out";

    public required int ProcessId { get; init; }
    public required DateTimeOffset Started { get; init; }
    public required string ConfigPath { get; init; }
    public required int ControlPort { get; init; }
    public required string Token { get; init; }
    public string? MingerEndpoint { get; init; }
    public string? SmtpEndpoint { get; init; }
    public string? Version { get; init; }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string PathIn(string dataDirectory) => Path.Combine(dataDirectory, FileName);

    public void Save(string dataDirectory)
        => DurableFile.WriteAllBytes(PathIn(dataDirectory), JsonSerializer.SerializeToUtf8Bytes(this, Json),
            UnixFileMode.UserRead | UnixFileMode.UserWrite);

    /// <summary>Reads the state file; null when there is none or it cannot be read (a half-written file cannot exist: writes are atomic).</summary>
    public static RelayState? Load(string dataDirectory)
    {
        try
        {
            return JsonSerializer.Deserialize<RelayState>(File.ReadAllBytes(PathIn(dataDirectory)), Json);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            return null;
        }
    }

    public static void Delete(string dataDirectory, int processId)
    {
        // Only the relay that wrote it removes it: a newer relay's file stays.
        if (Load(dataDirectory) is { } state && state.ProcessId == processId)
            File.Delete(PathIn(dataDirectory));
    }
}

/// <summary>A snapshot of a running relay, as its control channel reports it.</summary>
public sealed record RelayStatus
{
    public required int ProcessId { get; init; }
    public required DateTimeOffset Started { get; init; }
    public required string ConfigPath { get; init; }
    public string? MingerEndpoint { get; init; }
    public string? SmtpEndpoint { get; init; }
    public DateTimeOffset ConfigurationLoaded { get; init; }
    /// <summary>Why the last configuration change was not applied (the relay keeps the last good one); null when it was.</summary>
    public string? ConfigurationError { get; init; }
    public Dictionary<string, long> Counters { get; init; } = [];
    public string? Version { get; init; }
}
