using System.Collections;
using System.Reflection;

namespace DomainShare.Engine.Tests;

public class ConfigurationYamlTests
{
    private const string File = "/etc/domainshare/test-config.yaml";

    [Fact]
    public void Write_then_Read_round_trips_a_fully_populated_configuration()
    {
        var config = Samples.FullyPopulated();
        string yaml = ConfigurationYaml.Write(config);
        var back = ConfigurationYaml.Read(yaml, File);
        Expect.SameConfiguration(config, back);
        // And once more, from the re-read copy: writing is stable.
        Assert.Equal(yaml, ConfigurationYaml.Write(back));
    }

    [Fact]
    public void The_round_trip_sample_sets_every_setting_to_a_non_default_value()
    {
        // If a setting is added to the model, this fails until the round-trip sample covers it.
        var config = Samples.FullyPopulated();
        Assert.NotEqual(new ServerConfiguration { ServerName = "x" }.DataDirectory, config.DataDirectory);
        AssertAllDiffer(new SmtpSettings(), config.Smtp);
        AssertAllDiffer(new MingerSettings(), config.Minger);
        AssertAllDiffer(new DomainSharingSettings(), config.DomainSharing);
        AssertAllDiffer(new QueueSettings(), config.Queue);
        Assert.Contains(config.Peers, p => p.Secret is null);
        Assert.Contains(config.Peers, p => p.Secret is not null);
        Assert.Contains(config.Peers, p => p.Name.StartsWith('['));
        Assert.Contains(config.Peers, p => !p.Enabled);
        Assert.Contains(config.Domains, d => d.Shared);
        Assert.Contains(config.Domains, d => !d.Shared);

        static void AssertAllDiffer<T>(T defaults, T actual)
        {
            foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                object? d = property.GetValue(defaults), a = property.GetValue(actual);
                if (a is IEnumerable list and not string)
                    Assert.True(list.Cast<object>().Any(), $"{typeof(T).Name}.{property.Name} is empty in the sample");
                else
                    Assert.False(Equals(d, a), $"{typeof(T).Name}.{property.Name} has its default value in the sample");
            }
        }
    }

    [Fact]
    public void Write_then_Read_round_trips_the_defaults_and_awkward_strings()
    {
        var minimal = new ServerConfiguration { ServerName = "mx1.example.com" };
        Expect.SameConfiguration(minimal, ConfigurationYaml.Read(ConfigurationYaml.Write(minimal), File));

        foreach (var secret in new[] { "null but long enough", "  leading and trailing  ", "\"double\" and 'single' quotes", "# not a comment: really", "true, false, [1, 2], {a: b}", "ünïcödé ✓ 😀 secret", "line\u2028separator secret" })
        foreach (var dir in new[] { "data", "C:\\DomainShare\\data", "~", "null", "123", "- dash", "'quoted'", "" })
        {
            var config = minimal with
            {
                DataDirectory = dir,
                Minger = minimal.Minger with { Secret = secret },
                Peers = [new PeerConfiguration { Name = "mx2.example.com", Secret = secret }],
            };
            var back = ConfigurationYaml.Read(ConfigurationYaml.Write(config), File);
            Assert.Equal(secret, back.Minger.Secret);
            Assert.Equal(secret, back.Peers[0].Secret);
            Assert.Equal(dir, back.DataDirectory);
        }
    }

    [Fact]
    public void Read_accepts_a_hand_written_file_with_defaults_for_what_is_left_out()
    {
        const string yaml = """
            # written by hand
            serverName: MX1.Example.COM
            smtp:
              relayHost: smarthost.example.net
              trustedNetworks:
                - 192.0.2.77/24
            domains:
              - name: Example.COM
                shared: yes
            peers:
              - name: MX2.example.com
              - name: "[2001:db8::20]"
                smtpPort: 2525
                secret: 'sixteen chars!!!'
                enabled: off
            """;
        var c = ConfigurationYaml.Read(yaml, File);
        Assert.Equal("mx1.example.com", c.ServerName);
        Assert.Equal("smarthost.example.net:25", c.Smtp.RelayHost);
        Assert.Equal(["192.0.2.0/24"], c.Smtp.TrustedNetworks);
        Assert.Equal(Defaults.SmtpEndpoint, c.Smtp.Endpoint);
        Assert.Equal(Defaults.MingerTimeout, c.Minger.Timeout);
        Assert.Equal(Defaults.VerifiedCacheTtl, c.DomainSharing.VerifiedCacheTtl);
        Assert.Equal(Defaults.MaxConnectionsPerPeer, c.Queue.MaxConnectionsPerPeer);
        Assert.Equal([new DomainConfiguration("example.com", true)], c.Domains);
        Assert.Equal(2, c.Peers.Count);
        Assert.Equal(new PeerConfiguration { Name = "mx2.example.com" }, c.Peers[0]);
        Assert.Equal(new PeerConfiguration { Name = "[2001:db8::20]", SmtpPort = 2525, Secret = "sixteen chars!!!", Enabled = false }, c.Peers[1]);
    }

    [Fact]
    public void ToString_of_the_model_never_shows_a_secret()
    {
        var config = Samples.FullyPopulated();
        Assert.DoesNotContain(Samples.MingerSecret, config.Minger.ToString());
        Assert.DoesNotContain(Samples.PeerSecret, config.Peers[0].ToString());
        Assert.DoesNotContain(Samples.PeerSecret, config.ToString());
    }

    public static TheoryData<string, string, int, string> Errors => new()
    {
        // name, yaml, line, field
        { "bad indentation", "serverName: mx1.example.com\nsmtp:\n  endpoint: 0.0.0.0:25\n   maxHops: 3\n", 4, "(document)" },
        { "unclosed quote", "serverName: mx1.example.com\nsmtp:\n  relayHost: 'smarthost.example.net\nminger:\n  retries: 2\n", 3, "(document)" },
        { "unclosed flow list", "serverName: mx1.example.com\nsmtp:\n  trustedNetworks: [192.0.2.0/24\n  maxHops: 3\n", 3, "(document)" },
        { "unclosed flow mapping", "serverName: mx1.example.com\nsmtp: {maxHops: 3\nminger:\n  retries: 2\n", 2, "(document)" },
        { "tab indentation", "serverName: mx1.example.com\nsmtp:\n\tmaxHops: 3\n", 3, "(document)" },
        { "empty file", "", 1, "(document)" },
        { "only a comment", "# nothing here\n", 1, "(document)" },
        { "two documents", "serverName: mx1.example.com\n---\nserverName: mx2.example.com\n", 3, "(document)" },
        { "not a mapping", "- serverName: mx1.example.com\n", 1, "" },
        { "unknown key at root", "serverName: mx1.example.com\ncolour: blue\n", 2, "colour" },
        { "unknown key in a section", "serverName: mx1.example.com\nminger:\n  timeout: 2s\n  colour: blue\n", 4, "minger.colour" },
        { "unknown key in a peer", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n- name: mx3.example.com\n  colour: blue\n", 5, "peers[1].colour" },
        { "bad minger port", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n  mingerPort: 70000\n", 4, "peers[0].mingerPort" },
        { "zero smtp port", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n- name: mx3.example.com\n  smtpPort: 0\n", 5, "peers[1].smtpPort" },
        { "port that is not a number", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n  smtpPort: twenty-five\n", 4, "peers[0].smtpPort" },
        { "duplicate peer", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n  smtpPort: 25\n- name: MX2.Example.com\n  smtpPort: 2525\n", 5, "peers[1].name" },
        { "duplicate peer by IDN spelling", "serverName: mx1.example.com\npeers:\n- name: bücher.example\n- name: xn--bcher-kva.example\n", 4, "peers[1].name" },
        { "duplicate domain", "serverName: mx1.example.com\ndomains:\n- name: example.com\n- name: example.org\n- name: Example.COM\n", 5, "domains[2].name" },
        { "bad domain", "serverName: mx1.example.com\ndomains:\n- name: example\n", 3, "domains[0].name" },
        { "domain without name", "serverName: mx1.example.com\ndomains:\n- shared: true\n", 3, "domains[0].name" },
        { "duplicate key", "serverName: mx1.example.com\nminger:\n  timeout: 2s\n  retries: 2\n  timeout: 3s\n", 5, "minger.timeout" },
        { "duplicate key in a peer", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n- name: mx3.example.com\n  smtpPort: 25\n  smtpPort: 26\n", 6, "peers[1].smtpPort" },
        { "zero SMTP command timeout", "serverName: mx1.example.com\nsmtp:\n  commandTimeout: 0s\n", 3, "smtp.commandTimeout" },
        { "delivery timeout that is not a duration", "serverName: mx1.example.com\nqueue:\n  connectTimeout: soon\n", 3, "queue.connectTimeout" },
        { "zero peer attempts", "serverName: mx1.example.com\nqueue:\n  peerAttemptsBeforeRelayHost: 0\n", 3, "queue.peerAttemptsBeforeRelayHost" },
        { "zero connections per peer", "serverName: mx1.example.com\nqueue:\n  maxConnectionsPerPeer: 0\n", 3, "queue.maxConnectionsPerPeer" },
        { "too many connections per peer", "serverName: mx1.example.com\nqueue:\n  lifetime: 5d\n  maxConnectionsPerPeer: 101\n", 4, "queue.maxConnectionsPerPeer" },
        { "connections per peer that is not a number", "serverName: mx1.example.com\nqueue:\n  maxConnectionsPerPeer: many\n", 3, "queue.maxConnectionsPerPeer" },
        { "duplicate root key", "serverName: mx1.example.com\nqueue:\n  lifetime: 5d\nserverName: mx2.example.com\n", 4, "serverName" },
        { "duplicate key differing in case", "serverName: mx1.example.com\nServerName: mx2.example.com\n", 2, "ServerName" },
        { "list where a value is expected", "serverName:\n  - mx1.example.com\n  - mx2.example.com\n", 2, "serverName" },
        { "flow list where a value is expected", "serverName: mx1.example.com\nminger:\n  timeout: [2s, 3s]\n", 3, "minger.timeout" },
        { "mapping where a list is expected", "serverName: mx1.example.com\npeers:\n  name: mx2.example.com\n", 3, "peers" },
        { "value where a mapping is expected", "serverName: mx1.example.com\nsmtp: 0.0.0.0:25\n", 2, "smtp" },
        { "bad duration", "serverName: mx1.example.com\ndomainSharing:\n  verifiedCacheTtl: soon\n", 3, "domainSharing.verifiedCacheTtl" },
        { "zero timeout", "serverName: mx1.example.com\nminger:\n  timeout: 0\n", 3, "minger.timeout" },
        { "zero queue lifetime", "serverName: mx1.example.com\nqueue:\n  lifetime: 0s\n", 3, "queue.lifetime" },
        { "bad bool", "serverName: mx1.example.com\ndomainSharing:\n  gateway: maybe\n", 3, "domainSharing.gateway" },
        { "bad bool in a peer", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n  enabled: 1\n", 4, "peers[0].enabled" },
        { "short minger secret", "serverName: mx1.example.com\nminger:\n  secret: '123456789012345'\n", 3, "minger.secret" },
        { "short peer secret", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n- name: mx3.example.com\n  secret: '123456789012345'\n", 5, "peers[1].secret" },
        { "missing serverName", "# comment\nsmtp:\n  maxHops: 3\n", 2, "serverName" },
        { "empty serverName", "serverName:\nsmtp:\n  maxHops: 3\n", 1, "serverName" },
        { "bad serverName", "serverName: mx_1.example.com\n", 1, "serverName" },
        { "port in peer name", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com:2525\n", 3, "peers[0].name" },
        { "unbracketed IPv6 peer", "serverName: mx1.example.com\npeers:\n- name: 2001:db8::1\n", 3, "peers[0].name" },
        { "peer without name", "serverName: mx1.example.com\npeers:\n- name: mx2.example.com\n- smtpPort: 25\n", 4, "peers[1].name" },
        { "bad endpoint", "serverName: mx1.example.com\nsmtp:\n  endpoint: localhost:25\n", 3, "smtp.endpoint" },
        { "bad trusted network", "serverName: mx1.example.com\nsmtp:\n  trustedNetworks:\n  - 192.0.2.0/24\n  - 192.0.2.0/33\n", 5, "smtp.trustedNetworks[1]" },
        { "max hops out of range", "serverName: mx1.example.com\nsmtp:\n  maxHops: 1001\n", 3, "smtp.maxHops" },
        { "negative retries", "serverName: mx1.example.com\nminger:\n  retries: -1\n", 3, "minger.retries" },
        { "bad relay host", "serverName: mx1.example.com\nsmtp:\n  relayHost: smart host\n", 3, "smtp.relayHost" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void Read_refuses_with_file_line_and_field(string name, string yaml, int line, string field)
    {
        var ex = Assert.Throws<ConfigurationException>(() => ConfigurationYaml.Read(yaml, File));
        Assert.True(line == ex.Line, $"{name}: expected line {line}, got {ex.Line}: {ex.Message}");
        Assert.True(field == ex.Field, $"{name}: expected field '{field}', got '{ex.Field}': {ex.Message}");
        Assert.Equal(File, ex.File);
        Assert.Equal(ErrorIds.InvalidConfiguration, ex.ErrorId);
        Assert.Equal(ErrorKind.InvalidData, ex.Kind);
        Assert.Contains(File, ex.Message);
        Assert.Contains($"line {line}", ex.Message);
        Assert.Contains($"'{field}'", ex.Message);
        Assert.Contains(field, ex.RecommendedAction);
        Assert.False(string.IsNullOrWhiteSpace(ex.Problem));
    }

    [Fact]
    public void A_written_file_cut_short_anywhere_is_refused_at_its_last_line_even_where_the_rest_is_valid_YAML()
    {
        string yaml = ConfigurationYaml.Write(Samples.FullyPopulated());
        var lines = yaml.Split('\n');
        Assert.Equal(ConfigurationYaml.HeaderLine, lines[0]);
        Assert.Equal(ConfigurationYaml.EndLine, lines[^2]);
        int refusedWhereValid = 0;
        // Every cut, at a line's end (the rest parses: peers or settings would silently go missing) or inside a line.
        for (int cut = lines[0].Length + 1; cut < yaml.Length - 1; cut++)
        {
            string truncated = yaml[..cut];
            var ex = Assert.Throws<ConfigurationException>(() => ConfigurationYaml.Read(truncated, File));
            int lastLine = truncated.TrimEnd('\n').Split('\n').Length;
            Assert.True(ex.Line == lastLine, $"cut at {cut}: line {ex.Line}, expected {lastLine}: {ex.Message}");
            Assert.Equal("(document)", ex.Field);
            Assert.Contains("cut short", ex.Message);
            if (yaml[cut - 1] == '\n') refusedWhereValid++;
        }
        Assert.True(refusedWhereValid > 20);
        // The whole file without its final newline is complete.
        Expect.SameConfiguration(Samples.FullyPopulated(), ConfigurationYaml.Read(yaml.TrimEnd('\n'), File));
    }

    [Fact]
    public void The_end_line_is_required_only_of_files_DomainShare_wrote_and_may_be_followed_by_hand_edits()
    {
        // A hand-written file, or one written before the end line existed, is read as before.
        Assert.Equal("mx1.example.com", ConfigurationYaml.Read("serverName: mx1.example.com\n", File).ServerName);
        Assert.Equal("mx1.example.com", ConfigurationYaml.Read(
            "# DomainShare server configuration. Written by DomainShare; hand edits are checked on the next read.\nserverName: mx1.example.com\n", File).ServerName);
        // A peer an administrator appends below the end line (the peers come last) is read: the end line is still there,
        // with CRLF line ends too.
        string yaml = ConfigurationYaml.Write(new ServerConfiguration { ServerName = "mx1.example.com", Peers = [new PeerConfiguration { Name = "mx2.example.com" }] });
        var edited = ConfigurationYaml.Read((yaml + "  - name: mx3.example.com\n").ReplaceLineEndings("\r\n"), File);
        Assert.Equal(["mx2.example.com", "mx3.example.com"], edited.Peers.Select(p => p.Name));
    }

    [Fact]
    public void Read_never_echoes_a_refused_secret()
    {
        var ex = Assert.Throws<ConfigurationException>(() => ConfigurationYaml.Read("serverName: mx1.example.com\nminger:\n  secret: 'abcdefghijklmno'\n", File));
        Assert.DoesNotContain("abcdefghijklmno", ex.Message);
    }
}
