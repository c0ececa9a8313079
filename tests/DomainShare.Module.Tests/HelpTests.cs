using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace DomainShare.Module.Tests;

/// <summary>
/// Every exported cmdlet has real help (en-US/DomainShare.dll-Help.xml, staged next to the dll), as a user sees it with
/// Get-Help in the real engine: a synopsis that is not the auto-generated syntax, a description, an example with code
/// and a description for each of its parameters. about_DomainShare is found too.
/// </summary>
public sealed class HelpTests(PowerShellSession ps) : IClassFixture<PowerShellSession>
{
    /// <summary>The parameters PowerShell adds to cmdlets and documents itself (about_CommonParameters).</summary>
    private static readonly HashSet<string> CommonParameters = new(StringComparer.OrdinalIgnoreCase)
    {
        "Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ProgressAction", "ErrorVariable",
        "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable", "WhatIf", "Confirm",
    };

    /// <summary>CmdletsToExport of the staged manifest, read the way Import-PowerShellDataFile reads it.</summary>
    public static string[] ManifestCmdlets()
    {
        var ast = Parser.ParseFile(PowerShellSession.ModuleManifest, out _, out var errors);
        Assert.Empty(errors);
        var table = (Hashtable)((HashtableAst)ast.Find(a => a is HashtableAst, searchNestedScriptBlocks: false)!).SafeGetValue();
        return [.. ((object[])table["CmdletsToExport"]!).Cast<string>()];
    }

    public static TheoryData<string> Cmdlets() => [.. ManifestCmdlets()];

    [Fact]
    public void Exported_cmdlets_are_the_manifest_list()
    {
        var r = ps.Run("Get-Command -Module DomainShare -CommandType Cmdlet").AssertSuccess();
        var exported = r.Output.Select(o => (string)o.Prop("Name")!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(ManifestCmdlets().Order(StringComparer.Ordinal).ToArray(), exported);
    }

    [Theory]
    [MemberData(nameof(Cmdlets))]
    public void Cmdlet_has_complete_help(string name)
    {
        var r = ps.Run("""
            $help = Get-Help -Name $HelpTarget -Full -Category Cmdlet -ErrorAction Stop
            $examples = @($help.examples.example | Where-Object { $_ } | ForEach-Object { [string]$_.code })
            $helpParameters = @{}
            foreach ($p in @($help.parameters.parameter | Where-Object { $_ })) {
                $helpParameters[[string]$p.name] = (@($p.description | ForEach-Object { $_.Text }) -join "`n")
            }
            @{
                Count = @($help).Count
                Synopsis = [string]$help.Synopsis
                Description = (@($help.description | ForEach-Object { $_.Text }) -join "`n")
                Examples = $examples
                HelpParameters = $helpParameters
                Parameters = @((Get-Command -Name $HelpTarget -CommandType Cmdlet).Parameters.Keys)
            }
            """, new Dictionary<string, object?> { ["HelpTarget"] = name }).AssertSuccess();
        var help = (Hashtable)Assert.Single(r.Output).BaseObject;
        Assert.Equal(1, (int)help["Count"]!);

        var problems = new List<string>();
        string synopsis = ((string)help["Synopsis"]!).Trim();
        if (synopsis.Length == 0)
            problems.Add("the synopsis is empty");
        else if (synopsis.StartsWith(name, StringComparison.OrdinalIgnoreCase) || synopsis.Contains("<CommonParameters>"))
            problems.Add($"the synopsis is the auto-generated syntax (no MAML entry?): {synopsis}");
        if (string.IsNullOrWhiteSpace((string)help["Description"]!))
            problems.Add("the description is empty");
        if (!((object[])help["Examples"]!).Cast<string>().Any(code => !string.IsNullOrWhiteSpace(code)))
            problems.Add("no example with code");

        var documented = (Hashtable)help["HelpParameters"]!;
        var parameters = ((object[])help["Parameters"]!).Cast<string>().ToList();
        foreach (var parameter in parameters.Where(p => !CommonParameters.Contains(p)))
        {
            if (!documented.ContainsKey(parameter))
                problems.Add($"-{parameter} is not documented");
            else if (string.IsNullOrWhiteSpace((string)documented[parameter]!))
                problems.Add($"-{parameter} has no description");
        }
        // Help for a parameter the cmdlet does not have (renamed or removed) misleads users.
        foreach (string parameter in documented.Keys)
            if (!parameters.Contains(parameter, StringComparer.OrdinalIgnoreCase))
                problems.Add($"the help documents -{parameter}, which the cmdlet does not have");

        Assert.True(problems.Count == 0, $"Help of {name}:\n  " + string.Join("\n  ", problems));
    }

    [Fact]
    public void About_topic_is_found()
    {
        var r = ps.Run("Get-Help -Name about_DomainShare").AssertSuccess();
        var text = string.Concat(r.Output.Select(o => o.BaseObject as string ?? o.ToString()));
        Assert.Contains("about_DomainShare", text);
        Assert.Contains("DomainShare", text.Replace("about_DomainShare", ""));
        Assert.Contains("LONG DESCRIPTION", text);
    }
}
