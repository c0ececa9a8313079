using System.Text;
using System.Runtime.Versioning;

namespace DomainShare.Engine.Tests;

public sealed class ConfigurationStoreTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly string _path;
    private readonly ConfigurationStore _store;

    public ConfigurationStoreTests()
    {
        _path = _folder.File(Defaults.ConfigFileName);
        _store = new ConfigurationStore(_path);
    }

    public void Dispose() => _folder.Dispose();

    private static ServerConfiguration Minimal(string serverName = "mx1.example.com") => new() { ServerName = serverName };

    private ServerConfiguration ReadFromDisk() => ConfigurationYaml.Read(File.ReadAllText(_path), _path);

    [Fact]
    public void Load_of_a_missing_file_is_ConfigurationNotFound()
    {
        var ex = Expect.Error(ErrorIds.ConfigurationNotFound, () => _store.Load());
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
        Assert.Equal(_path, ex.Target);
        Assert.Contains(_path, ex.Message);
        Assert.False(_store.Exists);

        var inMissingFolder = new ConfigurationStore(Path.Combine(_folder.Path, "no", "such", "folder", "x.yaml"));
        Expect.Error(ErrorIds.ConfigurationNotFound, () => inMissingFolder.Load());
    }

    [Fact]
    public void Update_of_a_missing_file_is_ConfigurationNotFound_and_creates_nothing()
    {
        Expect.Error(ErrorIds.ConfigurationNotFound, () => _store.Update(c => c with { DataDirectory = "elsewhere" }));
        Assert.False(File.Exists(_path));
        var inMissingFolder = new ConfigurationStore(Path.Combine(_folder.Path, "missing", "x.yaml"));
        Expect.Error(ErrorIds.ConfigurationNotFound, () => inMissingFolder.Update(c => c));
        Assert.False(Directory.Exists(Path.Combine(_folder.Path, "missing")));
    }

    [Fact]
    public void An_empty_path_is_refused()
        => Expect.Error(ErrorIds.InvalidSetting, () => new ConfigurationStore(" "));

    [Fact]
    public void Create_writes_a_file_that_Load_reads_back()
    {
        var config = Samples.FullyPopulated();
        var nested = new ConfigurationStore(Path.Combine(_folder.Path, "a", "b", "domainshare.yaml"));
        nested.Create(config, force: false);
        Assert.True(nested.Exists);
        Expect.SameConfiguration(config, nested.Load());
        Expect.SameConfiguration(config, ConfigurationYaml.Read(File.ReadAllText(nested.FilePath), nested.FilePath));
    }

    [Fact]
    public void Create_refuses_to_overwrite_without_force()
    {
        _store.Create(Minimal("mx1.example.com"), force: false);
        var before = File.ReadAllBytes(_path);

        var ex = Expect.Error(ErrorIds.ConfigurationExists, () => _store.Create(Minimal("mx9.example.com"), force: false));
        Assert.Equal(ErrorKind.AlreadyExists, ex.Kind);
        Assert.Equal(before, File.ReadAllBytes(_path));
        Assert.Equal("mx1.example.com", _store.Load().ServerName);

        _store.Create(Minimal("mx9.example.com"), force: true);
        Assert.Equal("mx9.example.com", ReadFromDisk().ServerName);
    }

    [Fact]
    public void Update_applies_the_change_and_writes_it_to_disk()
    {
        _store.Create(Minimal(), force: false);
        var peer = PeerCatalog.Create("MX2.Example.com:2525", 14069, "0123456789abcdef", enabled: true);
        var returned = _store.Update(c => PeerCatalog.Add(c, peer, replace: false));
        _store.Update(c => DomainCatalog.Add(c, "Example.COM", shared: true, replace: false));
        _store.Update(c => new SettingsChange { VerifiedCacheTtl = TimeSpan.FromDays(2) }.Apply(c));

        Assert.Equal([peer], returned.Peers);
        var onDisk = ReadFromDisk();
        Assert.Equal([peer], onDisk.Peers);
        Assert.Equal("mx2.example.com", onDisk.Peers[0].Name);
        Assert.Equal(2525, onDisk.Peers[0].SmtpPort);
        Assert.Equal(14069, onDisk.Peers[0].MingerPort);
        Assert.Equal([new DomainConfiguration("example.com", true)], onDisk.Domains);
        Assert.Equal(TimeSpan.FromDays(2), onDisk.DomainSharing.VerifiedCacheTtl);
        Expect.SameConfiguration(onDisk, _store.Load());
    }

    [Fact]
    public void Update_of_a_hand_broken_file_throws_and_leaves_its_bytes_unchanged()
    {
        _store.Create(Minimal(), force: false);
        _store.Load();
        var broken = Encoding.UTF8.GetBytes("serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n  mingerPort: 70000\n");
        File.WriteAllBytes(_path, broken);

        var ex = Assert.Throws<ConfigurationException>(() => _store.Update(c => c with { DataDirectory = "changed" }));
        Assert.Equal(4, ex.Line);
        Assert.Equal("peers[0].mingerPort", ex.Field);
        Assert.Equal(_path, ex.File);
        Assert.Equal(broken, File.ReadAllBytes(_path));
        Assert.Throws<ConfigurationException>(() => _store.Load());
        Assert.DoesNotContain(_folder.FileNames(), n => n.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void Update_of_a_file_that_is_not_utf8_throws_and_leaves_it_unchanged()
    {
        _store.Create(Minimal(), force: false);
        byte[] latin1 = [.. Encoding.ASCII.GetBytes("serverName: mx1.example.com\ndataDirectory: d"), 0xE9, 0xFF, (byte)'\n'];
        File.WriteAllBytes(_path, latin1);
        var ex = Assert.Throws<ConfigurationException>(() => _store.Update(c => c with { DataDirectory = "x" }));
        Assert.Equal("(document)", ex.Field);
        Assert.Contains("UTF-8", ex.Message);
        // The line of the first byte that is not UTF-8, as for every other fault.
        Assert.Equal(2, ex.Line);
        Assert.Contains("line 2", ex.Message);
        Assert.Equal(latin1, File.ReadAllBytes(_path));
    }

    [Fact]
    public void Load_accepts_a_byte_order_mark()
    {
        File.WriteAllBytes(_path, [.. Encoding.UTF8.Preamble, .. Encoding.UTF8.GetBytes("serverName: mx7.example.com\n")]);
        Assert.Equal("mx7.example.com", _store.Load().ServerName);
    }

    [Fact]
    public async Task Update_whose_change_throws_writes_nothing_and_releases_the_lock()
    {
        _store.Create(Minimal(), force: false);
        var before = File.ReadAllBytes(_path);
        Expect.Error(ErrorIds.PeerNotFound, () => _store.Update(c => PeerCatalog.Remove(c, "nobody.example.com")));
        Assert.Equal(before, File.ReadAllBytes(_path));
        // The lock is free again: another store on the same file can update at once (it would wait 30 s otherwise).
        var task = Task.Run(() => new ConfigurationStore(_path).Update(c => c with { DataDirectory = "after" }));
        await task.WaitAsync(TimeSpan.FromSeconds(10)); // TimeoutException: the lock was not released
        Assert.Equal("after", ReadFromDisk().DataDirectory);
    }

    [Fact]
    public void Update_without_a_change_leaves_a_hand_edited_file_as_it_is()
    {
        const string handWritten = "# my notes\nserverName: mx1.example.com   # primary\n";
        File.WriteAllText(_path, handWritten);
        _store.Update(c => c);
        _store.Update(c => c with { }); // an equal copy is no change either
        Assert.Equal(handWritten, File.ReadAllText(_path));
    }

    [UnixFact]
    [UnsupportedOSPlatform("windows")]
    public void Written_files_are_readable_by_the_owner_only()
    {
        _store.Create(Samples.FullyPopulated(), force: false);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));

        // A file an administrator opened up by hand is written back private: it holds Minger secrets.
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        _store.Update(c => c with { DataDirectory = "changed" });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path + ".lock"));
    }

    [Fact]
    public void Writes_leave_no_temporary_files_behind()
    {
        _store.Create(Minimal(), force: false);
        for (int i = 0; i < 5; i++)
            _store.Update(c => PeerCatalog.Add(c, PeerCatalog.Create($"mx{i}.example.net", null, null, true), replace: false));
        _store.Create(Minimal("mx2.example.com"), force: true);
        Assert.Equal([Defaults.ConfigFileName, Defaults.ConfigFileName + ".lock"], _folder.FileNames());
        Assert.Empty(Directory.GetDirectories(_folder.Path));
    }

    [Fact]
    public void Load_parses_again_when_the_file_changes_on_disk()
    {
        _store.Create(Minimal("mx1.example.com"), force: false);
        var first = _store.Load();
        Assert.Same(first, _store.Load()); // unchanged bytes: the cached parse
        Assert.Same(first, new ConfigurationStore(_path).Load());

        File.WriteAllText(_path, "serverName: mx5.example.com\npeers:\n- name: mx6.example.com\n");
        var second = _store.Load();
        Assert.Equal("mx5.example.com", second.ServerName);
        Assert.Equal("mx6.example.com", Assert.Single(second.Peers).Name);

        // Same length, different content: the cache must not be fooled by size or time stamps.
        File.WriteAllText(_path, "serverName: mx7.example.com\npeers:\n- name: mx8.example.com\n");
        Assert.Equal("mx7.example.com", _store.Load().ServerName);

        // An update starts from what is on disk, not from the cache.
        File.WriteAllText(_path, "serverName: mx9.example.com\n");
        var updated = _store.Update(c => DomainCatalog.Add(c, "example.com", true, false));
        Assert.Equal("mx9.example.com", updated.ServerName);
        Assert.Equal("mx9.example.com", ReadFromDisk().ServerName);
    }

    [Fact]
    public void ResolveDataDirectory_is_relative_to_the_file()
    {
        var config = Minimal() with { DataDirectory = "data" };
        Assert.Equal(Path.Combine(_folder.Path, "data"), _store.ResolveDataDirectory(config));
        string absolute = Path.Combine(Path.GetTempPath(), "elsewhere");
        Assert.Equal(absolute, _store.ResolveDataDirectory(config with { DataDirectory = absolute }));
    }
}

[CollectionDefinition(nameof(EnvironmentVariableCollection), DisableParallelization = true)]
public sealed class EnvironmentVariableCollection;

/// <summary>Tests that change process-wide environment variables: run alone, never beside other tests.</summary>
[Collection(nameof(EnvironmentVariableCollection))]
public sealed class DefaultPathTests : IDisposable
{
    private readonly string? _saved = Environment.GetEnvironmentVariable(Defaults.ConfigEnvironmentVariable);

    public void Dispose() => Environment.SetEnvironmentVariable(Defaults.ConfigEnvironmentVariable, _saved);

    [Fact]
    public void DefaultPath_honours_DOMAINSHARE_CONFIG()
    {
        using var folder = new TempFolder();
        string path = folder.File("custom.yaml");
        Environment.SetEnvironmentVariable(Defaults.ConfigEnvironmentVariable, path);
        Assert.Equal(path, ConfigurationStore.DefaultPath);

        Environment.SetEnvironmentVariable(Defaults.ConfigEnvironmentVariable, "relative/custom.yaml");
        Assert.Equal(Path.GetFullPath("relative/custom.yaml"), ConfigurationStore.DefaultPath);
    }

    [Fact]
    public void DefaultPath_without_DOMAINSHARE_CONFIG_is_in_the_application_data_folder()
    {
        Environment.SetEnvironmentVariable(Defaults.ConfigEnvironmentVariable, null);
        string path = ConfigurationStore.DefaultPath;
        Assert.True(Path.IsPathRooted(path));
        Assert.Equal(Defaults.ConfigFileName, Path.GetFileName(path));
        Assert.Equal(Defaults.ApplicationFolder, Path.GetFileName(Path.GetDirectoryName(path)));

        Environment.SetEnvironmentVariable(Defaults.ConfigEnvironmentVariable, "   ");
        Assert.Equal(path, ConfigurationStore.DefaultPath);
    }
}
