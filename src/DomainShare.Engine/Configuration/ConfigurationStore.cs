using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Configuration;

/// <summary>
/// The configuration file of one server. Reads are lock-free (the file is only ever replaced whole); every change
/// is a read-modify-write under an exclusive lock file shared by all processes, written atomically, so concurrent
/// writers never lose an update and a crash never leaves a broken file.
/// </summary>
public sealed class ConfigurationStore
{
    private static readonly ConcurrentDictionary<string, (byte[] Hash, ServerConfiguration Config)> Cache = new(StringComparer.Ordinal);
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public ConfigurationStore(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new DomainShareException(ErrorIds.InvalidSetting, ErrorKind.InvalidArgument, "The configuration path is empty.", "Give the path of the configuration file.");
        FilePath = Path.GetFullPath(path);
    }

    /// <summary>The full path of the YAML file.</summary>
    public string FilePath { get; }

    /// <summary>
    /// The configuration used when none is named: <c>$DOMAINSHARE_CONFIG</c> if set, otherwise <c>domainshare.yaml</c> in the
    /// platform's application-data folder (<c>%APPDATA%\DomainShare</c>, <c>$XDG_CONFIG_HOME/DomainShare</c> or <c>~/.config/DomainShare</c>).
    /// </summary>
    public static string DefaultPath
    {
        get
        {
            var fromEnvironment = Environment.GetEnvironmentVariable(Defaults.ConfigEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
            var appData = Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            if (string.IsNullOrEmpty(appData))
                appData = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            return Path.Combine(appData, Defaults.ApplicationFolder, Defaults.ConfigFileName);
        }
    }

    public bool Exists => File.Exists(FilePath);

    /// <summary>The data directory of <paramref name="config"/> as a full path (relative paths are taken from the file's folder).</summary>
    public string ResolveDataDirectory(ServerConfiguration config)
        => Path.GetFullPath(config.DataDirectory, Path.GetDirectoryName(FilePath)!);

    /// <summary>Reads the configuration. An unchanged file is parsed only once per process.</summary>
    public ServerConfiguration Load()
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(FilePath);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DomainShareException(ErrorIds.ConfigurationNotFound, ErrorKind.NotFound,
                $"No DomainShare configuration at '{FilePath}'.",
                "Create one with Initialize-DomainShare -ServerName <name>, or point -ConfigPath or $env:DOMAINSHARE_CONFIG at an existing file.",
                FilePath, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DomainShareException(ErrorIds.InvalidConfiguration, ErrorKind.ResourceUnavailable,
                $"The configuration '{FilePath}' cannot be read: {ex.Message}", "Check the file's permissions.", FilePath, ex);
        }
        return Parse(bytes);
    }

    private ServerConfiguration Parse(byte[] bytes)
    {
        var hash = SHA256.HashData(bytes);
        if (Cache.TryGetValue(FilePath, out var cached) && cached.Hash.AsSpan().SequenceEqual(hash))
            return cached.Config;
        string text;
        try
        {
            var span = bytes.AsSpan();
            if (span.StartsWith(Encoding.UTF8.Preamble)) span = span[3..];
            text = StrictUtf8.GetString(span);
        }
        catch (DecoderFallbackException ex)
        {
            int line = LineOfFirstInvalidByte(bytes);
            throw new ConfigurationException(FilePath, line, "(document)", $"the file is not UTF-8 text: line {line} holds a byte that is not (binary data, or another encoding)", ex);
        }
        var config = ConfigurationYaml.Read(text, FilePath);
        Cache[FilePath] = (hash, config);
        return config;
    }

    /// <summary>The 1-based line of the first byte that is not valid UTF-8 in <paramref name="bytes"/>.</summary>
    private static int LineOfFirstInvalidByte(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[bytes.Length];
        System.Text.Unicode.Utf8.ToUtf16(bytes, chars, out int valid, out _, replaceInvalidSequences: false);
        return bytes[..valid].Count((byte)'\n') + 1;
    }

    /// <summary>Writes a new configuration. Refuses to replace an existing file unless <paramref name="force"/> is set.</summary>
    public ServerConfiguration Create(ServerConfiguration config, bool force)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        using var _ = AcquireLock();
        if (!force && File.Exists(FilePath))
            throw new DomainShareException(ErrorIds.ConfigurationExists, ErrorKind.AlreadyExists,
                $"A configuration already exists at '{FilePath}'.",
                "Use -Force to replace it, or change it with Set-DomainShareConfig.", FilePath);
        Write(config);
        return config;
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the current configuration and writes the result, all under the exclusive lock,
    /// so no concurrent update from any process is lost. An invalid file on disk is refused and left untouched.
    /// </summary>
    public ServerConfiguration Update(Func<ServerConfiguration, ServerConfiguration> change)
    {
        if (!Directory.Exists(Path.GetDirectoryName(FilePath)))
            return Load(); // throws ConfigurationNotFound
        using var _ = AcquireLock();
        var current = Load();
        var updated = change(current);
        if (!ReferenceEquals(updated, current) && updated != current)
            Write(updated);
        return updated;
    }

    private void Write(ServerConfiguration config)
    {
        var text = ConfigurationYaml.Write(config);
        var bytes = Encoding.UTF8.GetBytes(text);
        // Never write what cannot be read back: the same strict reader that guards loading checks the output.
        var reread = ConfigurationYaml.Read(text, FilePath);
        try
        {
            DurableFile.DeleteOrphanedTemporaries(FilePath);
            DurableFile.WriteAllBytes(FilePath, bytes, OwnerOnly);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new DomainShareException(ErrorIds.ConfigurationWriteFailed, ErrorKind.WriteError,
                $"The configuration '{FilePath}' could not be written: {ex.Message}. The previous file is unchanged.",
                "Check free space and permissions of the folder.", FilePath, ex);
        }
        Cache[FilePath] = (SHA256.HashData(bytes), reread);
    }

    private FileStream AcquireLock()
    {
        string lockPath = FilePath + ".lock";
        var watch = Stopwatch.StartNew();
        var lastWrite = File.GetLastWriteTimeUtc(FilePath);
        int delay = 1;
        while (true)
        {
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly;
                return new FileStream(lockPath, options);
            }
            catch (IOException) when (!TimedOut(ref watch, ref lastWrite))
            {
                Thread.Sleep(Random.Shared.Next(delay, delay * 2 + 1));
                delay = Math.Min(delay * 2, 8);
            }
            catch (IOException ex)
            {
                throw new DomainShareException(ErrorIds.ConfigurationLocked, ErrorKind.OperationTimeout,
                    $"The configuration '{FilePath}' stayed locked by another writer for {Defaults.ConfigLockTimeout.TotalSeconds:0} s.",
                    $"Check for a hung DomainShare process, then retry. The lock file is '{lockPath}'.", FilePath, ex);
            }
        }
    }

    /// <summary>
    /// Waiters do not queue: a busy stream of other writers can hold the lock longer than the timeout. While the file keeps
    /// changing they make progress and none is hung, so the timeout counts from the file's last change.
    /// </summary>
    private bool TimedOut(ref Stopwatch watch, ref DateTime lastWrite)
    {
        var written = File.GetLastWriteTimeUtc(FilePath);
        if (written != lastWrite) (lastWrite, watch) = (written, Stopwatch.StartNew());
        return watch.Elapsed >= Defaults.ConfigLockTimeout;
    }
}
