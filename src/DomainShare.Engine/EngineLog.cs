namespace DomainShare.Engine;

public enum LogLevel { Debug, Information, Warning, Error }

/// <summary>
/// How the engine reports what it does. The engine never depends on who listens: the relay process writes a log file,
/// the cmdlets turn lines into verbose or warning records, tests collect them.
/// </summary>
public interface IEngineLog
{
    void Write(LogLevel level, string message);
}

/// <summary>A log that drops everything.</summary>
public sealed class NullEngineLog : IEngineLog
{
    public static readonly NullEngineLog Instance = new();
    public void Write(LogLevel level, string message) { }
}
