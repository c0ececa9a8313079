namespace DomainShare.Engine.Configuration;

/// <summary>Changes to the peer list of a configuration. Each method returns a new configuration and never touches disk.</summary>
public static class PeerCatalog
{
    /// <summary>Builds a peer from what an administrator typed: a name with an optional SMTP port, a Minger port and a secret.</summary>
    public static PeerConfiguration Create(string name, int? mingerPort, string? secret, bool enabled)
    {
        var (host, smtpPort) = Names.ParsePeerName(name);
        return new PeerConfiguration
        {
            Name = host,
            SmtpPort = smtpPort ?? Defaults.SmtpPort,
            MingerPort = mingerPort is int mp ? Names.ValidatePort(mp, "Minger port") : Defaults.MingerPort,
            Secret = secret is null ? null : Names.ValidateSecret(secret, "peer's Minger secret"),
            Enabled = enabled,
        };
    }

    public static ServerConfiguration Add(ServerConfiguration config, PeerConfiguration peer, bool replace)
    {
        var existing = config.FindPeer(peer.Name);
        if (existing is null)
            return config with { Peers = config.Peers.Add(peer) };
        if (!replace)
            throw new DomainShareException(ErrorIds.PeerAlreadyExists, ErrorKind.AlreadyExists,
                $"The peer '{peer.Name}' is already configured (SMTP port {existing.SmtpPort}, Minger port {existing.MingerPort}).",
                "Use Set-DomainSharePeer to change it, or Add-DomainSharePeer -Force to replace it.", peer.Name);
        return config with { Peers = config.Peers.Replace(existing, peer) };
    }

    /// <summary>Finds the peer named by <paramref name="name"/> (host, optionally with the SMTP port, which must then match).</summary>
    public static PeerConfiguration Get(ServerConfiguration config, string name)
    {
        var (host, smtpPort) = Names.ParsePeerName(name);
        var peer = config.FindPeer(host);
        if (peer is null || (smtpPort is int port && peer.SmtpPort != port))
            throw NotFound(name);
        return peer;
    }

    public static ServerConfiguration Change(ServerConfiguration config, string name, Func<PeerConfiguration, PeerConfiguration> change)
    {
        var existing = Get(config, name);
        var updated = change(existing);
        if (updated.SmtpPort != existing.SmtpPort) Names.ValidatePort(updated.SmtpPort, "SMTP port");
        if (updated.MingerPort != existing.MingerPort) Names.ValidatePort(updated.MingerPort, "Minger port");
        if (updated.Secret is not null && updated.Secret != existing.Secret) Names.ValidateSecret(updated.Secret, "peer's Minger secret");
        return config with { Peers = config.Peers.Replace(existing, updated with { Name = existing.Name }) };
    }

    public static ServerConfiguration Remove(ServerConfiguration config, string name)
        => config with { Peers = config.Peers.Remove(Get(config, name)) };

    public static DomainShareException NotFound(string name)
        => new(ErrorIds.PeerNotFound, ErrorKind.NotFound, $"No peer named '{name}' is configured.",
               "List the peers with Get-DomainSharePeer.", name);
}

/// <summary>Changes to the hosted domains of a configuration.</summary>
public static class DomainCatalog
{
    public static ServerConfiguration Add(ServerConfiguration config, string name, bool shared, bool replace)
    {
        var normalized = Names.NormalizeDomainName(name);
        var domain = new DomainConfiguration(normalized, shared);
        var existing = config.FindDomain(normalized);
        if (existing is null)
            return config with { Domains = config.Domains.Add(domain) };
        if (!replace)
            throw new DomainShareException(ErrorIds.DomainAlreadyExists, ErrorKind.AlreadyExists,
                $"The domain '{normalized}' is already hosted here (shared: {existing.Shared}).",
                "Use Set-DomainShareDomain to change it, or Add-DomainShareDomain -Force to replace it.", name);
        return config with { Domains = config.Domains.Replace(existing, domain) };
    }

    public static DomainConfiguration Get(ServerConfiguration config, string name)
    {
        string normalized;
        try { normalized = Names.NormalizeDomainName(name); }
        catch (DomainShareException) { throw NotFound(name); }
        return config.FindDomain(normalized) ?? throw NotFound(name);
    }

    public static ServerConfiguration SetShared(ServerConfiguration config, string name, bool shared)
    {
        var existing = Get(config, name);
        return config with { Domains = config.Domains.Replace(existing, existing with { Shared = shared }) };
    }

    public static ServerConfiguration Remove(ServerConfiguration config, string name)
        => config with { Domains = config.Domains.Remove(Get(config, name)) };

    public static DomainShareException NotFound(string name)
        => new(ErrorIds.DomainNotFound, ErrorKind.NotFound, $"The domain '{name}' is not hosted on this server.",
               "List the hosted domains with Get-DomainShareDomain.", name);
}
