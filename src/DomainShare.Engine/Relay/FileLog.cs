using System.Globalization;
using System.Text;

namespace DomainShare.Engine.Relay;

/// <summary>
/// The relay's log: one line per event, <c>2026-11-23T06:00:00.000Z INFO message</c>, appended to a file in the data
/// directory and rolled to <c>.1</c> when it passes a size limit, so a long-running relay never fills the disk.
/// </summary>
public sealed class FileLog : IEngineLog, IDisposable
{
    private readonly string path;
    private readonly long maxBytes;
    private readonly object gate = new();
    private readonly IEngineLog? also;
    private StreamWriter? writer;

    public FileLog(string path, long maxBytes = 10 * 1024 * 1024, IEngineLog? also = null)
    {
        this.path = path;
        this.maxBytes = maxBytes;
        this.also = also;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public void Write(LogLevel level, string message)
    {
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {Label(level)} {message.ReplaceLineEndings(" | ")}");
        lock (gate)
        {
            try
            {
                writer ??= Open();
                writer.WriteLine(line);
                writer.Flush();
                if (writer.BaseStream.Length > maxBytes) Roll();
            }
            catch (IOException)
            {
                // A full disk must not take the relay down with it; the line is lost, the service is not.
            }
        }
        also?.Write(level, message);
    }

    private static string Label(LogLevel level) => level switch
    {
        LogLevel.Debug => "DEBUG",
        LogLevel.Information => "INFO ",
        LogLevel.Warning => "WARN ",
        _ => "ERROR",
    };

    private StreamWriter Open()
        => new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete), new UTF8Encoding(false));

    private void Roll()
    {
        writer?.Dispose();
        writer = null;
        File.Move(path, path + ".1", overwrite: true);
    }

    public void Dispose()
    {
        lock (gate)
        {
            writer?.Dispose();
            writer = null;
        }
    }
}
