using System.Management.Automation;
using DomainShare.Engine;
using DomainShare.Engine.Configuration;

namespace DomainShare;

/// <summary>Resolves the names given to Get/Set/Remove cmdlets: exact names first (IPv6 brackets are literal), then wildcards.</summary>
internal static class Selection
{
    /// <summary>
    /// Returns the items that <paramref name="names"/> select, in configuration order and without repeats, and the
    /// names that are neither an existing item nor a wildcard pattern (each one is a "not found" for the caller).
    /// </summary>
    public static (List<T> Matches, List<string> Missing) Select<T>(IReadOnlyList<T> items, Func<T, string> nameOf,
        string[]? names, Func<string, T?> exact) where T : class
    {
        if (names is null || names.Length == 0)
            return ([.. items], []);
        var chosen = new HashSet<T>(ReferenceEqualityComparer.Instance);
        var missing = new List<string>();
        foreach (var name in names)
        {
            T? found = null;
            try { found = exact(name); }
            catch (DomainShareException) { }
            if (found is not null)
            {
                chosen.Add(found);
                continue;
            }
            if (WildcardPattern.ContainsWildcardCharacters(name))
            {
                var pattern = WildcardPattern.Get(name, WildcardOptions.IgnoreCase);
                foreach (var item in items)
                    if (pattern.IsMatch(nameOf(item))) chosen.Add(item);
                continue;
            }
            missing.Add(name);
        }
        return ([.. items.Where(chosen.Contains)], missing);
    }

    public static (List<PeerConfiguration> Matches, List<string> Missing) Peers(ServerConfiguration config, string[]? names)
        => Select(config.Peers, p => p.Name, names, n => PeerCatalog.Get(config, n));

    public static (List<DomainConfiguration> Matches, List<string> Missing) Domains(ServerConfiguration config, string[]? names)
        => Select(config.Domains, d => d.Name, names, n => DomainCatalog.Get(config, n));
}
