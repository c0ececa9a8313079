namespace DomainShare.Engine.Tests;

public class PeerCatalogTests
{
    private const string Secret = "0123456789abcdef";
    private static readonly ServerConfiguration Empty = new() { ServerName = "mx1.example.com" };

    private static ServerConfiguration WithPeers(params string[] names)
        => names.Aggregate(Empty, (c, n) => PeerCatalog.Add(c, PeerCatalog.Create(n, null, null, true), replace: false));

    [Fact]
    public void Create_reads_the_smtp_port_from_the_name_and_validates_the_rest()
    {
        var peer = PeerCatalog.Create("MX2.Example.COM:2525", 14069, Secret, enabled: false);
        Assert.Equal(new PeerConfiguration { Name = "mx2.example.com", SmtpPort = 2525, MingerPort = 14069, Secret = Secret, Enabled = false }, peer);
        Assert.Equal("mx2.example.com:2525", peer.SmtpAddress);

        var plain = PeerCatalog.Create("[2001:db8::2]", null, null, enabled: true);
        Assert.Equal(new PeerConfiguration { Name = "[2001:db8::2]", SmtpPort = Defaults.SmtpPort, MingerPort = Defaults.MingerPort }, plain);
        Assert.Equal("[2001:db8::2]:25", plain.SmtpAddress);

        Expect.Error(ErrorIds.InvalidPeerName, () => PeerCatalog.Create("mx 2.example.com", null, null, true));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Create("mx2.example.com:0", null, null, true));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Create("mx2.example.com", 0, null, true));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Create("mx2.example.com", 70000, null, true));
        Expect.Error(ErrorIds.InvalidSecret, () => PeerCatalog.Create("mx2.example.com", null, "0123456789abcde", true));
    }

    [Fact]
    public void Add_appends_and_refuses_a_duplicate_host_whatever_its_port_or_case()
    {
        var config = WithPeers("mx2.example.com", "mx3.example.com");
        Assert.Equal(["mx2.example.com", "mx3.example.com"], config.Peers.Select(p => p.Name));

        var ex = Expect.Error(ErrorIds.PeerAlreadyExists, () => PeerCatalog.Add(config, PeerCatalog.Create("MX2.example.com:2525", null, null, true), replace: false));
        Assert.Equal(ErrorKind.AlreadyExists, ex.Kind);
        Assert.Equal("mx2.example.com", ex.Target);
        Assert.Equal(2, config.Peers.Count);

        var idn = WithPeers("bücher.example");
        Expect.Error(ErrorIds.PeerAlreadyExists, () => PeerCatalog.Add(idn, PeerCatalog.Create("xn--bcher-kva.example", null, null, true), replace: false));
    }

    [Fact]
    public void Add_with_replace_swaps_the_entry_in_place()
    {
        var config = WithPeers("mx2.example.com", "mx3.example.com", "mx4.example.com");
        var replacement = PeerCatalog.Create("mx3.example.com:2525", 14069, Secret, enabled: false);
        var replaced = PeerCatalog.Add(config, replacement, replace: true);
        Assert.Equal(["mx2.example.com", "mx3.example.com", "mx4.example.com"], replaced.Peers.Select(p => p.Name));
        Assert.Equal(replacement, replaced.Peers[1]);
        Assert.Equal(config.Peers[0], replaced.Peers[0]);
        Assert.Equal(3, config.Peers.Count); // the original is untouched
        Assert.Equal(Defaults.SmtpPort, config.Peers[1].SmtpPort);
    }

    [Fact]
    public void Get_finds_by_host_and_checks_a_given_port()
    {
        var config = PeerCatalog.Add(WithPeers("mx2.example.com"), PeerCatalog.Create("192.0.2.3:2525", null, null, true), false);
        Assert.Equal("mx2.example.com", PeerCatalog.Get(config, "MX2.example.com").Name);
        Assert.Equal("mx2.example.com", PeerCatalog.Get(config, "mx2.example.com:25").Name);
        Assert.Equal("192.0.2.3", PeerCatalog.Get(config, "192.0.2.3:2525").Name);

        var ex = Expect.Error(ErrorIds.PeerNotFound, () => PeerCatalog.Get(config, "mx2.example.com:2525"));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
        Assert.Equal("mx2.example.com:2525", ex.Target);
        Expect.Error(ErrorIds.PeerNotFound, () => PeerCatalog.Get(config, "192.0.2.3:25"));
        Expect.Error(ErrorIds.PeerNotFound, () => PeerCatalog.Get(config, "mx9.example.com"));
        Expect.Error(ErrorIds.InvalidPeerName, () => PeerCatalog.Get(config, "mx2 example"));
    }

    [Fact]
    public void Change_applies_valid_changes_and_keeps_the_name()
    {
        var config = WithPeers("mx2.example.com", "mx3.example.com");
        var changed = PeerCatalog.Change(config, "mx3.example.com", p => p with { Name = "renamed.example.com", SmtpPort = 2525, MingerPort = 14069, Secret = Secret, Enabled = false });
        Assert.Equal(new PeerConfiguration { Name = "mx3.example.com", SmtpPort = 2525, MingerPort = 14069, Secret = Secret, Enabled = false }, changed.Peers[1]);
        Assert.Equal(config.Peers[0], changed.Peers[0]);

        var cleared = PeerCatalog.Change(changed, "mx3.example.com:2525", p => p with { Secret = null });
        Assert.Null(cleared.Peers[1].Secret);
    }

    [Fact]
    public void Change_validates_ports_and_secret()
    {
        var config = WithPeers("mx2.example.com");
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { SmtpPort = 0 }));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { SmtpPort = 65536 }));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { MingerPort = -1 }));
        Expect.Error(ErrorIds.InvalidPort, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { MingerPort = 70000 }));
        Expect.Error(ErrorIds.InvalidSecret, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { Secret = "0123456789abcde" }));
        Expect.Error(ErrorIds.InvalidSecret, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { Secret = "" }));
        Expect.Error(ErrorIds.InvalidSecret, () => PeerCatalog.Change(config, "mx2.example.com", p => p with { Secret = "0123456789abcdef\r\n" }));
        Expect.Error(ErrorIds.PeerNotFound, () => PeerCatalog.Change(config, "mx2.example.com:26", p => p with { SmtpPort = 26 }));
    }

    [Fact]
    public void Remove_takes_out_only_the_named_peer()
    {
        var config = WithPeers("mx2.example.com", "mx3.example.com");
        var removed = PeerCatalog.Remove(config, "MX2.example.com:25");
        Assert.Equal(["mx3.example.com"], removed.Peers.Select(p => p.Name));
        Expect.Error(ErrorIds.PeerNotFound, () => PeerCatalog.Remove(removed, "mx2.example.com"));
    }
}

public class DomainCatalogTests
{
    private static readonly ServerConfiguration Empty = new() { ServerName = "mx1.example.com" };

    [Fact]
    public void Add_normalises_and_refuses_a_duplicate()
    {
        var config = DomainCatalog.Add(Empty, "Example.COM", shared: true, replace: false);
        config = DomainCatalog.Add(config, "example.org", shared: false, replace: false);
        Assert.Equal([new DomainConfiguration("example.com", true), new DomainConfiguration("example.org", false)], config.Domains);

        var ex = Expect.Error(ErrorIds.DomainAlreadyExists, () => DomainCatalog.Add(config, "EXAMPLE.com.", shared: false, replace: false));
        Assert.Equal(ErrorKind.AlreadyExists, ex.Kind);
        Expect.Error(ErrorIds.InvalidDomainName, () => DomainCatalog.Add(config, "example", true, false));
        Expect.Error(ErrorIds.InvalidDomainName, () => DomainCatalog.Add(config, "exa mple.com", true, false));
    }

    [Fact]
    public void Add_with_replace_swaps_in_place()
    {
        var config = DomainCatalog.Add(DomainCatalog.Add(Empty, "example.com", true, false), "example.org", true, false);
        var replaced = DomainCatalog.Add(config, "Example.com", shared: false, replace: true);
        Assert.Equal([new DomainConfiguration("example.com", false), new DomainConfiguration("example.org", true)], replaced.Domains);
    }

    [Fact]
    public void Get_SetShared_and_Remove_find_the_domain_or_say_DomainNotFound()
    {
        var config = DomainCatalog.Add(Empty, "example.com", shared: false, replace: false);
        Assert.Equal(new DomainConfiguration("example.com", false), DomainCatalog.Get(config, "EXAMPLE.COM"));
        Assert.True(DomainCatalog.Get(DomainCatalog.SetShared(config, "example.com", true), "example.com").Shared);
        Assert.Empty(DomainCatalog.Remove(config, "Example.Com").Domains);

        Assert.Equal(ErrorKind.NotFound, Expect.Error(ErrorIds.DomainNotFound, () => DomainCatalog.Get(config, "example.org")).Kind);
        Expect.Error(ErrorIds.DomainNotFound, () => DomainCatalog.Get(config, "not a domain"));
        Expect.Error(ErrorIds.DomainNotFound, () => DomainCatalog.SetShared(config, "example.org", true));
        Expect.Error(ErrorIds.DomainNotFound, () => DomainCatalog.Remove(config, "example.org"));
    }
}
