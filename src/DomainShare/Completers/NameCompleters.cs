using System.Collections;
using System.Management.Automation;
using System.Management.Automation.Language;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;

namespace DomainShare;

/// <summary>Tab completion of configured peer names, from the configuration named by -ConfigPath (or the default one).</summary>
public sealed class PeerNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => NameCompletion.Complete(fakeBoundParameters, wordToComplete, c => c.Peers.Select(p => (p.Name, p.SmtpAddress)));
}

/// <summary>Tab completion of hosted domain names.</summary>
public sealed class DomainNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
        => NameCompletion.Complete(fakeBoundParameters, wordToComplete, c => c.Domains.Select(d => (d.Name, d.Shared ? $"{d.Name} (shared)" : d.Name)));
}

internal static class NameCompletion
{
    public static IEnumerable<CompletionResult> Complete(IDictionary bound, string word,
        Func<ServerConfiguration, IEnumerable<(string Name, string Tip)>> names)
    {
        ServerConfiguration config;
        try
        {
            var path = bound.Contains("ConfigPath") && bound["ConfigPath"] is { } p ? Path.GetFullPath(p.ToString()!) : ConfigurationStore.DefaultPath;
            config = new ConfigurationStore(path).Load();
        }
        catch (DomainShareException)
        {
            return [];
        }
        var pattern = WildcardPattern.Get((word ?? "").Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
        return names(config)
            .Where(n => pattern.IsMatch(n.Name))
            .Select(n => new CompletionResult(Quote(n.Name), n.Name, CompletionResultType.ParameterValue, n.Tip))
            .ToList();
    }

    private static string Quote(string name) => name.IndexOfAny([' ', '[', ']', '$', '\'']) >= 0 ? $"'{name.Replace("'", "''")}'" : name;
}
