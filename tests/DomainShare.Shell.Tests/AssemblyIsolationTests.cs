using System.Text.RegularExpressions;

namespace DomainShare.Shell.Tests;

/// <summary>
/// Another module's YamlDotNet, of another version, loaded into the same process before or after DomainShare breaks
/// neither: DomainShare's copy lives in its own load context. Each order needs a fresh process, hence these tests
/// here and not in the in-process module tests.
/// </summary>
public sealed class AssemblyIsolationTests
{
    private static readonly string OtherYamlDotNet = Path.Combine(AppContext.BaseDirectory, "OtherYaml", "YamlDotNet.dll");
    private static readonly int OtherMajor = Version.Parse(ShellSandbox.Metadata("OtherYamlDotNetVersion")).Major;

    /// <summary>What another module would do: load its YamlDotNet from its own folder and deserialize with it.</summary>
    private const string UseOtherYamlDotNet = """
        $other = [System.Reflection.Assembly]::LoadFrom($env:OTHER_YAMLDOTNET)
        $builder = [Activator]::CreateInstance($other.GetType('YamlDotNet.Serialization.DeserializerBuilder', $true))
        $document = $builder.Build().Deserialize([System.IO.StringReader]::new("answer: 42`nlist: [a, b]"))
        "other: answer=$($document['answer']) list=$($document['list'] -join ',')"
        """;

    private const string UseDomainShare = """
        $null = Initialize-DomainShare mx1.example.com -ErrorAction Stop
        Add-DomainSharePeer mx2.example.net:2525 -Secret 'sixteen-chars-secret' -ErrorAction Stop
        """;

    private const string ShowPeers = """
        Get-DomainSharePeer -ErrorAction Stop | ForEach-Object { "peer: $($_.Name) $($_.SmtpPort) $($_.HasSecret)" }
        """;

    private const string ListYamlDotNets = """
        [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'YamlDotNet' } | ForEach-Object {
            'yaml: {0} {1}' -f $_.GetName().Version, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name
        }
        """;

    [Fact]
    public void Another_YamlDotNet_loaded_first_does_not_break_DomainShare()
        => AssertBothWork(UseOtherYamlDotNet, UseDomainShare, ShowPeers, ListYamlDotNets);

    [Fact]
    public void Another_YamlDotNet_loaded_after_DomainShare_works_and_DomainShare_keeps_working()
        => AssertBothWork(UseDomainShare, ShowPeers, UseOtherYamlDotNet, "Add-DomainSharePeer mx3.example.net -ErrorAction Stop", ShowPeers, ListYamlDotNets);

    private static void AssertBothWork(params string[] steps)
    {
        string script = string.Join(Environment.NewLine, steps);
        Assert.True(File.Exists(OtherYamlDotNet), $"The other YamlDotNet is not at {OtherYamlDotNet}.");
        using var sandbox = new ShellSandbox();
        sandbox.Environment["OTHER_YAMLDOTNET"] = OtherYamlDotNet;
        var result = sandbox.Run("-File", sandbox.WriteScript("isolation.ps1", script)).AssertExit(0).AssertNoErrors();

        Assert.Contains("other: answer=42 list=a,b", result.StdoutLines);
        Assert.Contains("peer: mx2.example.net 2525 True", result.StdoutLines);

        var loaded = result.StdoutLines.Select(l => Regex.Match(l, @"^yaml: (\S+) (.+)$")).Where(m => m.Success)
            .Select(m => (Version: Version.Parse(m.Groups[1].Value), Context: m.Groups[2].Value)).ToList();
        Assert.Equal(2, loaded.Count);
        Assert.Equal(2, loaded.Select(a => a.Version).Distinct().Count());
        var other = Assert.Single(loaded, a => a.Version.Major == OtherMajor);
        var own = Assert.Single(loaded, a => a.Version.Major != OtherMajor);
        Assert.Equal("DomainShare.Dependencies", own.Context);
        Assert.NotEqual("DomainShare.Dependencies", other.Context);
        Assert.True(own.Version > other.Version, $"DomainShare's YamlDotNet {own.Version} should be the newer one.");
    }
}
