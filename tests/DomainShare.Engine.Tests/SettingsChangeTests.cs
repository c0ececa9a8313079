namespace DomainShare.Engine.Tests;

public class SettingsChangeTests
{
    private static readonly ServerConfiguration Base = Samples.FullyPopulated();

    [Fact]
    public void An_empty_change_changes_nothing()
        => Expect.SameConfiguration(Base, new SettingsChange().Apply(Base));

    [Fact]
    public void Apply_sets_every_given_value_and_keeps_the_others()
    {
        var change = new SettingsChange
        {
            ServerName = "MX9.Example.COM",
            DataDirectory = "/srv/domainshare",
            SmtpEndpoint = "0.0.0.0:25",
            RelayHost = "Relay.Example.NET",
            TrustedNetworks = ["10.1.2.3/8", "10.0.0.0/8", "2001:db8::1"],
            MaxHops = 7,
            MingerEndpoint = "[::]:4069",
            MingerSecret = "a brand new secret!",
            AllowAnonymousMinger = false,
            MingerAllowedSources = [],
            MingerRateLimitPerSecond = 0,
            MingerTimeout = TimeSpan.FromSeconds(3),
            MingerRetries = 0,
            DomainSharingEnabled = true,
            VerifiedCacheTtl = TimeSpan.Zero,
            NegativeCacheTtl = TimeSpan.FromMinutes(1),
            KeepQueuedOnDeliveryError = true,
            MingerGateway = false,
            QueueLifetime = TimeSpan.FromHours(12),
            QueueConnectTimeout = TimeSpan.FromSeconds(2),
            QueueCommandTimeout = TimeSpan.FromSeconds(4),
            QueuePeerAttemptsBeforeRelayHost = 1,
            QueueMaxConnectionsPerPeer = Limits.MaxConnectionsPerPeer,
            SmtpCommandTimeout = TimeSpan.FromSeconds(20),
            SmtpDataTimeout = TimeSpan.FromSeconds(30),
        };
        change.Validate();
        var c = change.Apply(Base);
        Assert.Equal("mx9.example.com", c.ServerName);
        Assert.Equal("/srv/domainshare", c.DataDirectory);
        Assert.Equal("0.0.0.0:25", c.Smtp.Endpoint.ToString());
        Assert.Equal("relay.example.net:25", c.Smtp.RelayHost);
        Assert.Equal(["10.0.0.0/8", "2001:db8::1"], c.Smtp.TrustedNetworks); // normalised, duplicates dropped
        Assert.Equal(7, c.Smtp.MaxHops);
        Assert.Equal("[::]:4069", c.Minger.Endpoint.ToString());
        Assert.Equal("a brand new secret!", c.Minger.Secret);
        Assert.False(c.Minger.AllowAnonymous);
        Assert.Empty(c.Minger.AllowedSources);
        Assert.Equal(0, c.Minger.RateLimitPerSecond);
        Assert.Equal(TimeSpan.FromSeconds(3), c.Minger.Timeout);
        Assert.Equal(0, c.Minger.Retries);
        Assert.True(c.DomainSharing.Enabled);
        Assert.Equal(TimeSpan.Zero, c.DomainSharing.VerifiedCacheTtl);
        Assert.Equal(TimeSpan.FromMinutes(1), c.DomainSharing.NegativeCacheTtl);
        Assert.True(c.DomainSharing.KeepQueuedOnDeliveryError);
        Assert.False(c.DomainSharing.Gateway);
        Assert.Equal(TimeSpan.FromHours(12), c.Queue.Lifetime);
        Assert.Equal(TimeSpan.FromSeconds(2), c.Queue.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(4), c.Queue.CommandTimeout);
        Assert.Equal(1, c.Queue.PeerAttemptsBeforeRelayHost);
        Assert.Equal(Limits.MaxConnectionsPerPeer, c.Queue.MaxConnectionsPerPeer);
        Assert.Equal(TimeSpan.FromSeconds(20), c.Smtp.CommandTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), c.Smtp.DataTimeout);
        Expect.SameConfiguration(Base with { ServerName = c.ServerName, DataDirectory = c.DataDirectory, Smtp = c.Smtp, Minger = c.Minger, DomainSharing = c.DomainSharing, Queue = c.Queue }, c);
        // What Apply produced can be written and read back.
        Expect.SameConfiguration(c, ConfigurationYaml.Read(ConfigurationYaml.Write(c), "x.yaml"));
    }

    [Fact]
    public void Clear_switches_remove_the_secret_and_the_relay_host()
    {
        var c = new SettingsChange { ClearMingerSecret = true, ClearRelayHost = true }.Apply(Base);
        Assert.Null(c.Minger.Secret);
        Assert.Null(c.Smtp.RelayHost);
        Assert.NotNull(Base.Minger.Secret);
    }

    public static TheoryData<string, SettingsChange, string> Refused => new()
    {
        { "negative verified TTL", new SettingsChange { VerifiedCacheTtl = TimeSpan.FromSeconds(-1) }, ErrorIds.InvalidSetting },
        { "negative negative TTL", new SettingsChange { NegativeCacheTtl = TimeSpan.FromTicks(-1) }, ErrorIds.InvalidSetting },
        { "zero timeout", new SettingsChange { MingerTimeout = TimeSpan.Zero }, ErrorIds.InvalidSetting },
        { "negative timeout", new SettingsChange { MingerTimeout = TimeSpan.FromSeconds(-2) }, ErrorIds.InvalidSetting },
        { "zero queue lifetime", new SettingsChange { QueueLifetime = TimeSpan.Zero }, ErrorIds.InvalidSetting },
        { "zero delivery connect timeout", new SettingsChange { QueueConnectTimeout = TimeSpan.Zero }, ErrorIds.InvalidSetting },
        { "negative delivery command timeout", new SettingsChange { QueueCommandTimeout = TimeSpan.FromSeconds(-1) }, ErrorIds.InvalidSetting },
        { "zero peer attempts", new SettingsChange { QueuePeerAttemptsBeforeRelayHost = 0 }, ErrorIds.InvalidSetting },
        { "too many peer attempts", new SettingsChange { QueuePeerAttemptsBeforeRelayHost = Limits.MaxPeerAttempts + 1 }, ErrorIds.InvalidSetting },
        { "zero connections per peer", new SettingsChange { QueueMaxConnectionsPerPeer = 0 }, ErrorIds.InvalidSetting },
        { "too many connections per peer", new SettingsChange { QueueMaxConnectionsPerPeer = Limits.MaxConnectionsPerPeer + 1 }, ErrorIds.InvalidSetting },
        { "zero SMTP command timeout", new SettingsChange { SmtpCommandTimeout = TimeSpan.Zero }, ErrorIds.InvalidSetting },
        { "negative SMTP data timeout", new SettingsChange { SmtpDataTimeout = TimeSpan.FromMinutes(-1) }, ErrorIds.InvalidSetting },
        { "secret and clear secret", new SettingsChange { MingerSecret = "a valid secret 12345", ClearMingerSecret = true }, ErrorIds.InvalidSetting },
        { "relay host and clear relay host", new SettingsChange { RelayHost = "relay.example.net", ClearRelayHost = true }, ErrorIds.InvalidSetting },
        { "bad trusted network", new SettingsChange { TrustedNetworks = ["192.0.2.0/24", "192.0.2.0/33"] }, ErrorIds.InvalidSetting },
        { "bad allowed source", new SettingsChange { MingerAllowedSources = ["mx2.example.com"] }, ErrorIds.InvalidSetting },
        { "max hops zero", new SettingsChange { MaxHops = 0 }, ErrorIds.InvalidSetting },
        { "max hops above limit", new SettingsChange { MaxHops = Limits.MaxHops + 1 }, ErrorIds.InvalidSetting },
        { "negative rate limit", new SettingsChange { MingerRateLimitPerSecond = -1 }, ErrorIds.InvalidSetting },
        { "too many retries", new SettingsChange { MingerRetries = Limits.MaxMingerRetries + 1 }, ErrorIds.InvalidSetting },
        { "empty data directory", new SettingsChange { DataDirectory = " " }, ErrorIds.InvalidSetting },
        { "data directory with NUL", new SettingsChange { DataDirectory = "data\0x" }, ErrorIds.InvalidSetting },
        { "bad smtp endpoint", new SettingsChange { SmtpEndpoint = "localhost:25" }, ErrorIds.InvalidEndpoint },
        { "unbracketed IPv6 minger endpoint", new SettingsChange { MingerEndpoint = "::1:4069" }, ErrorIds.InvalidEndpoint },
        { "endpoint port zero", new SettingsChange { SmtpEndpoint = "0.0.0.0:0" }, ErrorIds.InvalidPort },
        { "short secret", new SettingsChange { MingerSecret = "0123456789abcde" }, ErrorIds.InvalidSecret },
        { "bad server name", new SettingsChange { ServerName = "mx_1.example.com" }, ErrorIds.InvalidServerName },
        { "bad relay host", new SettingsChange { RelayHost = "relay host" }, ErrorIds.InvalidPeerName },
        { "bad relay port", new SettingsChange { RelayHost = "relay.example.net:0" }, ErrorIds.InvalidPort },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Validate_and_Apply_refuse_with_the_specific_ErrorId(string name, SettingsChange change, string errorId)
    {
        Assert.False(string.IsNullOrEmpty(name));
        Expect.Error(errorId, change.Validate);
        Expect.Error(errorId, () => change.Apply(Base));
    }

    [Fact]
    public void Invalid_settings_name_the_setting()
    {
        var ex = Expect.Error(ErrorIds.InvalidSetting, () => new SettingsChange { VerifiedCacheTtl = TimeSpan.FromDays(-1) }.Validate());
        Assert.Equal("VerifiedCacheTtl", ex.Target);
        Assert.Contains("VerifiedCacheTtl", ex.Message);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
    }
}
