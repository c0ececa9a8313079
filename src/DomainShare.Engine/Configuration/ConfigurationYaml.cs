using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace DomainShare.Engine.Configuration;

/// <summary>
/// Reads and writes the YAML form of <see cref="ServerConfiguration"/>. Reading is strict: an unknown key, a wrong type,
/// a bad value or a duplicate entry is refused with the file, line and field at fault.
/// </summary>
public static class ConfigurationYaml
{
    private const string HeaderText = "DomainShare server configuration. Written by DomainShare; hand edits are checked on the next read. "
                                      + "Keep its last line: a file without it was cut short and is refused.";

    /// <summary>
    /// The first line of every file DomainShare writes. A file that starts with it must also hold <see cref="EndLine"/>,
    /// which DomainShare writes last: a copy or an in-place editor that stopped half-way (a full disk) leaves a file that
    /// may still be valid YAML, but with settings, domains or peers missing, and that must not be run or rewritten.
    /// </summary>
    public const string HeaderLine = "# " + HeaderText;

    /// <summary>The last line of every file DomainShare writes (see <see cref="HeaderLine"/>).</summary>
    public const string EndLine = "# End of the DomainShare configuration.";

    public static ServerConfiguration Read(string yaml, string file)
    {
        RequireWholeFile(yaml, file);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException ex)
        {
            var why = StripMark(ex.InnerException?.Message ?? ex.Message);
            // A key written twice is well-formed YAML that the representation model refuses: name the key, not the document.
            if (DuplicateKeyAt(yaml, ex.Start) is string key)
                throw new ConfigurationException(file, (int)ex.Start.Line, key, "the key appears twice", ex);
            // YamlDotNet marks a tab in the indentation at the start of the enclosing mapping; point at the tab instead.
            int line = why.Contains("tab", StringComparison.OrdinalIgnoreCase) ? FirstTabIndentedLine(yaml) ?? (int)ex.Start.Line : (int)ex.Start.Line;
            throw new ConfigurationException(file, line, "(document)", $"the YAML is malformed: {why}", ex);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or IndexOutOfRangeException)
        {
            // Some malformed text (an unclosed flow list such as 'trustedNetworks: [192.0.2.0/24') makes YamlDotNet fail
            // without a position: report the line of the last token it could read.
            throw new ConfigurationException(file, LastReadableLine(yaml), "(document)", "the YAML is malformed: a bracket, brace or quote is not closed", ex);
        }
        if (stream.Documents.Count == 0)
            throw new ConfigurationException(file, 1, "(document)", "the file is empty");
        if (stream.Documents.Count > 1)
            throw new ConfigurationException(file, (int)stream.Documents[1].RootNode.Start.Line, "(document)", "the file holds more than one YAML document");
        var reader = new Reader(file);
        return reader.ReadRoot(stream.Documents[0].RootNode);
    }

    /// <summary>A file DomainShare wrote (its first line is <see cref="HeaderLine"/>) must still hold its <see cref="EndLine"/>.</summary>
    private static void RequireWholeFile(string yaml, string file)
    {
        var lines = yaml.Split('\n');
        if (lines[0].TrimEnd() != HeaderLine || lines.Any(l => l.TrimEnd() == EndLine)) return;
        int last = Math.Max(1, lines.Length - (yaml.EndsWith('\n') ? 1 : 0));
        throw new ConfigurationException(file, last, "(document)",
            $"the file ends at line {last} without its last line '{EndLine}': it was cut short (an interrupted copy, or an editor that ran out of disk space) " +
            "and settings, domains or peers may be missing. Restore it from a copy; if it really is complete, add that line at its end");
    }

    /// <summary>The field path (<c>peers[1].smtpPort</c>) of the key at <paramref name="at"/> in the first document if it repeats an earlier key of its mapping, or null.</summary>
    private static string? DuplicateKeyAt(string yaml, Mark at)
    {
        var parser = new Parser(new StringReader(yaml));
        string? found = null;
        void Node(string path)
        {
            if (parser.TryConsume<MappingStart>(out _))
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                while (found is null && !parser.TryConsume<MappingEnd>(out _))
                {
                    var key = parser.Consume<NodeEvent>();
                    string child = path;
                    if (key is Scalar s)
                    {
                        child = path.Length == 0 ? s.Value : $"{path}.{s.Value}";
                        if (!seen.Add(s.Value) && key.Start.Index == at.Index) { found = child; return; }
                    }
                    else if (key is MappingStart or SequenceStart) Skip();
                    Node(child);
                }
            }
            else if (parser.TryConsume<SequenceStart>(out _))
            {
                for (int i = 0; found is null && !parser.TryConsume<SequenceEnd>(out _); i++)
                    Node($"{path}[{i}]");
            }
            else parser.Consume<NodeEvent>();
        }
        void Skip()
        {
            for (int depth = 1; depth > 0;)
            {
                var e = parser.Consume<ParsingEvent>();
                if (e is MappingStart or SequenceStart) depth++;
                else if (e is MappingEnd or SequenceEnd) depth--;
            }
        }
        try
        {
            parser.Consume<StreamStart>();
            parser.Consume<DocumentStart>();
            Node("");
        }
        catch (YamlException) { }
        return found;
    }

    private static int? FirstTabIndentedLine(string yaml)
    {
        var lines = yaml.Split('\n');
        for (int i = 0; i < lines.Length; i++)
            if (lines[i].TakeWhile(c => c is ' ' or '\t').Contains('\t')) return i + 1;
        return null;
    }

    private static int LastReadableLine(string yaml)
    {
        var scanner = new Scanner(new StringReader(yaml));
        long line = 1;
        try
        {
            while (scanner.MoveNext()) line = scanner.Current!.Start.Line;
        }
        catch (Exception ex) when (ex is YamlException or InvalidOperationException or ArgumentException or FormatException or IndexOutOfRangeException) { }
        return (int)line;
    }

    private static string StripMark(string message)
    {
        // YamlDotNet prefixes messages with "(Line: 3, Col: 1, Idx: 20) - (Line: ...): "; the line is reported separately.
        int i = message.LastIndexOf("): ", StringComparison.Ordinal);
        return i >= 0 && message.StartsWith("(Line", StringComparison.Ordinal) ? message[(i + 3)..] : message;
    }

    private sealed class Reader(string file)
    {
        private ConfigurationException Error(YamlNode node, string field, string problem)
            => new(file, (int)node.Start.Line, field, problem);

        private Dictionary<string, (YamlScalarNode Key, YamlNode Value)> Mapping(YamlNode node, string field, params string[] allowed)
        {
            if (node is not YamlMappingNode map)
                throw Error(node, field, "expected a mapping of 'key: value' lines");
            var result = new Dictionary<string, (YamlScalarNode, YamlNode)>(StringComparer.OrdinalIgnoreCase);
            foreach (var (keyNode, value) in map.Children)
            {
                if (keyNode is not YamlScalarNode key || key.Value is null)
                    throw Error(keyNode, field, "a key must be a plain word");
                string path = field.Length == 0 ? key.Value : $"{field}.{key.Value}";
                var known = allowed.FirstOrDefault(a => string.Equals(a, key.Value, StringComparison.OrdinalIgnoreCase));
                if (known is null)
                    throw Error(key, path, $"unknown key '{key.Value}'; the keys allowed here are: {string.Join(", ", allowed)}");
                if (!result.TryAdd(known, (key, value)))
                    throw Error(key, path, $"the key '{key.Value}' appears twice");
            }
            return result;
        }

        private static string FieldName(string parent, string key) => parent.Length == 0 ? key : $"{parent}.{key}";

        private string? Scalar(YamlNode node, string field, bool nullable = false)
        {
            if (node is not YamlScalarNode s)
                throw Error(node, field, "expected a single value, not a list or mapping");
            bool isNull = s.Style == ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");
            if (isNull)
            {
                if (nullable) return null;
                throw Error(node, field, "a value is required");
            }
            return s.Value;
        }

        private bool Bool(YamlNode node, string field)
        {
            var v = Scalar(node, field);
            return v?.ToLowerInvariant() switch
            {
                "true" or "yes" or "on" => true,
                "false" or "no" or "off" => false,
                _ => throw Error(node, field, $"'{v}' is not true or false"),
            };
        }

        private int Int(YamlNode node, string field, int min, int max)
        {
            var v = Scalar(node, field);
            if (!int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < min || n > max)
                throw Error(node, field, $"'{v}' is not a whole number from {min} to {max}");
            return n;
        }

        private int Port(YamlNode node, string field) => Int(node, field, 1, 65535);

        private TimeSpan Duration(YamlNode node, string field)
        {
            var v = Scalar(node, field);
            if (!Durations.TryParse(v, out var d))
                throw Error(node, field, $"'{v}' is not a duration; write it like 5d, 12h, 30m, 90s, 500ms or 0");
            return d;
        }

        private Endpoint EndpointValue(YamlNode node, string field)
        {
            var v = Scalar(node, field);
            try { return Endpoint.Parse(v, field); }
            catch (DomainShareException ex) { throw Error(node, field, ex.Message); }
        }

        private string? Secret(YamlNode node, string field)
        {
            var v = Scalar(node, field, nullable: true);
            if (v is null) return null;
            try { return Names.ValidateSecret(v, "secret"); }
            catch (DomainShareException ex) { throw Error(node, field, ex.Message); }
        }

        private ImmutableList<string> Networks(YamlNode node, string field)
        {
            if (node is YamlScalarNode s && Scalar(s, field, nullable: true) is null)
                return ImmutableList<string>.Empty;
            if (node is not YamlSequenceNode seq)
                throw Error(node, field, "expected a list of addresses or networks (CIDR)");
            var list = ImmutableList.CreateBuilder<string>();
            int i = 0;
            foreach (var item in seq.Children)
            {
                string itemField = $"{field}[{i++}]";
                var v = Scalar(item, itemField)!;
                if (!NetworkRange.TryParse(v, out var range))
                    throw Error(item, itemField, $"'{v}' is not an IP address or network such as 192.0.2.0/24");
                list.Add(range.ToString());
            }
            return list.ToImmutable();
        }

        public ServerConfiguration ReadRoot(YamlNode root)
        {
            var m = Mapping(root, "", "serverName", "dataDirectory", "smtp", "minger", "domainSharing", "queue", "domains", "peers");
            if (!m.TryGetValue("serverName", out var serverNameEntry))
                throw Error(root, "serverName", "the server name is missing");
            string serverName;
            try { serverName = Names.NormalizeServerName(Scalar(serverNameEntry.Value, "serverName")); }
            catch (DomainShareException ex) { throw Error(serverNameEntry.Value, "serverName", ex.Message); }

            var config = new ServerConfiguration { ServerName = serverName };
            if (m.TryGetValue("dataDirectory", out var dd))
            {
                var dir = Scalar(dd.Value, "dataDirectory")!;
                if (dir.IndexOfAny(Path.GetInvalidPathChars()) >= 0 || dir.Contains('\0'))
                    throw Error(dd.Value, "dataDirectory", "the path holds characters that are not allowed");
                config = config with { DataDirectory = dir };
            }
            if (m.TryGetValue("smtp", out var smtp)) config = config with { Smtp = ReadSmtp(smtp.Value) };
            if (m.TryGetValue("minger", out var minger)) config = config with { Minger = ReadMinger(minger.Value) };
            if (m.TryGetValue("domainSharing", out var ds)) config = config with { DomainSharing = ReadDomainSharing(ds.Value) };
            if (m.TryGetValue("queue", out var q)) config = config with { Queue = ReadQueue(q.Value) };
            if (m.TryGetValue("domains", out var domains)) config = config with { Domains = ReadDomains(domains.Value) };
            if (m.TryGetValue("peers", out var peers)) config = config with { Peers = ReadPeers(peers.Value) };
            return config;
        }

        private SmtpSettings ReadSmtp(YamlNode node)
        {
            var s = new SmtpSettings();
            if (node is YamlScalarNode sc && Scalar(sc, "smtp", nullable: true) is null) return s;
            foreach (var (key, (_, value)) in Mapping(node, "smtp", "endpoint", "relayHost", "trustedNetworks", "maxHops", "maxMessageBytes",
                         "maxRecipients", "maxConnections", "maxConnectionsPerSource", "commandTimeout", "dataTimeout", "tlsCertificate", "tlsKey"))
            {
                string f = FieldName("smtp", key);
                s = key switch
                {
                    "endpoint" => s with { Endpoint = EndpointValue(value, f) },
                    "relayHost" => s with { RelayHost = RelayHost(value, f) },
                    "trustedNetworks" => s with { TrustedNetworks = Networks(value, f) },
                    "maxHops" => s with { MaxHops = Int(value, f, 1, Limits.MaxHops) },
                    "maxMessageBytes" => s with { MaxMessageBytes = Int(value, f, Limits.MinMessageBytes, int.MaxValue) },
                    "maxRecipients" => s with { MaxRecipients = Int(value, f, 1, Limits.MaxRecipients) },
                    "maxConnections" => s with { MaxConnections = Int(value, f, 1, Limits.MaxConnections) },
                    "maxConnectionsPerSource" => s with { MaxConnectionsPerSource = Int(value, f, 1, Limits.MaxConnections) },
                    "commandTimeout" => s with { CommandTimeout = PositiveDuration(value, f) },
                    "dataTimeout" => s with { DataTimeout = PositiveDuration(value, f) },
                    "tlsCertificate" => s with { TlsCertificate = Scalar(value, f, nullable: true) },
                    "tlsKey" => s with { TlsKey = Scalar(value, f, nullable: true) },
                    _ => s,
                };
            }
            return s;
        }

        private string? RelayHost(YamlNode node, string field)
        {
            var v = Scalar(node, field, nullable: true);
            if (v is null) return null;
            try
            {
                var (host, port) = Names.ParsePeerName(v);
                return $"{host}:{port ?? Defaults.SmtpPort}";
            }
            catch (DomainShareException ex) { throw Error(node, field, ex.Message); }
        }

        private MingerSettings ReadMinger(YamlNode node)
        {
            var s = new MingerSettings();
            if (node is YamlScalarNode sc && Scalar(sc, "minger", nullable: true) is null) return s;
            foreach (var (key, (_, value)) in Mapping(node, "minger", "endpoint", "secret", "allowAnonymous", "allowedSources", "rateLimitPerSecond", "timeout", "retries"))
            {
                string f = FieldName("minger", key);
                s = key switch
                {
                    "endpoint" => s with { Endpoint = EndpointValue(value, f) },
                    "secret" => s with { Secret = Secret(value, f) },
                    "allowAnonymous" => s with { AllowAnonymous = Bool(value, f) },
                    "allowedSources" => s with { AllowedSources = Networks(value, f) },
                    "rateLimitPerSecond" => s with { RateLimitPerSecond = Int(value, f, 0, Limits.MaxRateLimitPerSecond) },
                    "timeout" => s with { Timeout = PositiveDuration(value, f) },
                    "retries" => s with { Retries = Int(value, f, 0, Limits.MaxMingerRetries) },
                    _ => s,
                };
            }
            return s;
        }

        private TimeSpan PositiveDuration(YamlNode node, string field)
        {
            var d = Duration(node, field);
            return d > TimeSpan.Zero ? d : throw Error(node, field, "the duration must be greater than zero");
        }

        private DomainSharingSettings ReadDomainSharing(YamlNode node)
        {
            var s = new DomainSharingSettings();
            if (node is YamlScalarNode sc && Scalar(sc, "domainSharing", nullable: true) is null) return s;
            foreach (var (key, (_, value)) in Mapping(node, "domainSharing", "enabled", "verifiedCacheTtl", "negativeCacheTtl", "keepQueuedOnDeliveryError", "gateway"))
            {
                string f = FieldName("domainSharing", key);
                s = key switch
                {
                    "enabled" => s with { Enabled = Bool(value, f) },
                    "verifiedCacheTtl" => s with { VerifiedCacheTtl = Duration(value, f) },
                    "negativeCacheTtl" => s with { NegativeCacheTtl = Duration(value, f) },
                    "keepQueuedOnDeliveryError" => s with { KeepQueuedOnDeliveryError = Bool(value, f) },
                    "gateway" => s with { Gateway = Bool(value, f) },
                    _ => s,
                };
            }
            return s;
        }

        private QueueSettings ReadQueue(YamlNode node)
        {
            var s = new QueueSettings();
            if (node is YamlScalarNode sc && Scalar(sc, "queue", nullable: true) is null) return s;
            foreach (var (key, (_, value)) in Mapping(node, "queue", "lifetime", "retryInterval", "maxRetryInterval", "connectTimeout", "commandTimeout", "peerAttemptsBeforeRelayHost", "maxConnectionsPerPeer"))
                s = key switch
                {
                    "lifetime" => s with { Lifetime = PositiveDuration(value, "queue.lifetime") },
                    "retryInterval" => s with { RetryInterval = PositiveDuration(value, "queue.retryInterval") },
                    "maxRetryInterval" => s with { MaxRetryInterval = PositiveDuration(value, "queue.maxRetryInterval") },
                    "connectTimeout" => s with { ConnectTimeout = PositiveDuration(value, "queue.connectTimeout") },
                    "commandTimeout" => s with { CommandTimeout = PositiveDuration(value, "queue.commandTimeout") },
                    "peerAttemptsBeforeRelayHost" => s with { PeerAttemptsBeforeRelayHost = Int(value, "queue.peerAttemptsBeforeRelayHost", 1, Limits.MaxPeerAttempts) },
                    "maxConnectionsPerPeer" => s with { MaxConnectionsPerPeer = Int(value, "queue.maxConnectionsPerPeer", 1, Limits.MaxConnectionsPerPeer) },
                    _ => s,
                };
            return s;
        }

        private IEnumerable<(YamlNode Node, string Field)> Items(YamlNode node, string field)
        {
            if (node is YamlScalarNode s && Scalar(s, field, nullable: true) is null)
                yield break;
            if (node is not YamlSequenceNode seq)
                throw Error(node, field, "expected a list ('- ' items)");
            int i = 0;
            foreach (var item in seq.Children)
                yield return (item, $"{field}[{i++}]");
        }

        private ImmutableList<DomainConfiguration> ReadDomains(YamlNode node)
        {
            var list = ImmutableList.CreateBuilder<DomainConfiguration>();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (item, field) in Items(node, "domains"))
            {
                var m = Mapping(item, field, "name", "shared");
                if (!m.TryGetValue("name", out var nameEntry))
                    throw Error(item, $"{field}.name", "the domain name is missing");
                string name;
                try { name = Names.NormalizeDomainName(Scalar(nameEntry.Value, $"{field}.name")); }
                catch (DomainShareException ex) { throw Error(nameEntry.Value, $"{field}.name", ex.Message); }
                if (!seen.Add(name))
                    throw Error(nameEntry.Value, $"{field}.name", $"the domain '{name}' is listed twice");
                bool shared = m.TryGetValue("shared", out var sh) && Bool(sh.Value, $"{field}.shared");
                list.Add(new DomainConfiguration(name, shared));
            }
            return list.ToImmutable();
        }

        private ImmutableList<PeerConfiguration> ReadPeers(YamlNode node)
        {
            var list = ImmutableList.CreateBuilder<PeerConfiguration>();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (item, field) in Items(node, "peers"))
            {
                var m = Mapping(item, field, "name", "smtpPort", "mingerPort", "secret", "enabled");
                if (!m.TryGetValue("name", out var nameEntry))
                    throw Error(item, $"{field}.name", "the peer name is missing");
                string host;
                int? portInName;
                try { (host, portInName) = Names.ParsePeerName(Scalar(nameEntry.Value, $"{field}.name")); }
                catch (DomainShareException ex) { throw Error(nameEntry.Value, $"{field}.name", ex.Message); }
                if (portInName is not null)
                    throw Error(nameEntry.Value, $"{field}.name", "write the SMTP port as 'smtpPort', not inside the name");
                if (!seen.Add(host))
                    throw Error(nameEntry.Value, $"{field}.name", $"the peer '{host}' is listed twice");
                var peer = new PeerConfiguration { Name = host };
                if (m.TryGetValue("smtpPort", out var sp)) peer = peer with { SmtpPort = Port(sp.Value, $"{field}.smtpPort") };
                if (m.TryGetValue("mingerPort", out var mp)) peer = peer with { MingerPort = Port(mp.Value, $"{field}.mingerPort") };
                if (m.TryGetValue("secret", out var sec)) peer = peer with { Secret = Secret(sec.Value, $"{field}.secret") };
                if (m.TryGetValue("enabled", out var en)) peer = peer with { Enabled = Bool(en.Value, $"{field}.enabled") };
                list.Add(peer);
            }
            return list.ToImmutable();
        }
    }

    public static string Write(ServerConfiguration c)
    {
        var text = new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
        var e = new Emitter(text, new EmitterSettings(2, int.MaxValue, false, 1024, false, true, "\n"));
        e.Emit(new StreamStart());
        e.Emit(new DocumentStart());
        e.Emit(new Comment(HeaderText, false));
        e.Emit(new MappingStart());
        Pair(e, "serverName", c.ServerName);
        Pair(e, "dataDirectory", c.DataDirectory);

        Key(e, "smtp");
        e.Emit(new MappingStart());
        Pair(e, "endpoint", c.Smtp.Endpoint.ToString());
        PairOrNull(e, "relayHost", c.Smtp.RelayHost);
        List(e, "trustedNetworks", c.Smtp.TrustedNetworks);
        Pair(e, "maxHops", c.Smtp.MaxHops);
        Pair(e, "maxMessageBytes", c.Smtp.MaxMessageBytes);
        Pair(e, "maxRecipients", c.Smtp.MaxRecipients);
        Pair(e, "maxConnections", c.Smtp.MaxConnections);
        Pair(e, "maxConnectionsPerSource", c.Smtp.MaxConnectionsPerSource);
        Pair(e, "commandTimeout", Durations.Format(c.Smtp.CommandTimeout));
        Pair(e, "dataTimeout", Durations.Format(c.Smtp.DataTimeout));
        PairOrNull(e, "tlsCertificate", c.Smtp.TlsCertificate, quoted: true);
        PairOrNull(e, "tlsKey", c.Smtp.TlsKey, quoted: true);
        e.Emit(new MappingEnd());

        Key(e, "minger");
        e.Emit(new MappingStart());
        Pair(e, "endpoint", c.Minger.Endpoint.ToString());
        PairOrNull(e, "secret", c.Minger.Secret, quoted: true);
        Pair(e, "allowAnonymous", c.Minger.AllowAnonymous);
        List(e, "allowedSources", c.Minger.AllowedSources);
        Pair(e, "rateLimitPerSecond", c.Minger.RateLimitPerSecond);
        Pair(e, "timeout", Durations.Format(c.Minger.Timeout));
        Pair(e, "retries", c.Minger.Retries);
        e.Emit(new MappingEnd());

        Key(e, "domainSharing");
        e.Emit(new MappingStart());
        Pair(e, "enabled", c.DomainSharing.Enabled);
        Pair(e, "verifiedCacheTtl", Durations.Format(c.DomainSharing.VerifiedCacheTtl));
        Pair(e, "negativeCacheTtl", Durations.Format(c.DomainSharing.NegativeCacheTtl));
        Pair(e, "keepQueuedOnDeliveryError", c.DomainSharing.KeepQueuedOnDeliveryError);
        Pair(e, "gateway", c.DomainSharing.Gateway);
        e.Emit(new MappingEnd());

        Key(e, "queue");
        e.Emit(new MappingStart());
        Pair(e, "lifetime", Durations.Format(c.Queue.Lifetime));
        Pair(e, "retryInterval", Durations.Format(c.Queue.RetryInterval));
        Pair(e, "maxRetryInterval", Durations.Format(c.Queue.MaxRetryInterval));
        Pair(e, "connectTimeout", Durations.Format(c.Queue.ConnectTimeout));
        Pair(e, "commandTimeout", Durations.Format(c.Queue.CommandTimeout));
        Pair(e, "peerAttemptsBeforeRelayHost", c.Queue.PeerAttemptsBeforeRelayHost);
        Pair(e, "maxConnectionsPerPeer", c.Queue.MaxConnectionsPerPeer);
        e.Emit(new MappingEnd());

        Key(e, "domains");
        e.Emit(new SequenceStart(null, null, false, SequenceStyle.Block));
        foreach (var d in c.Domains)
        {
            e.Emit(new MappingStart());
            Pair(e, "name", d.Name);
            Pair(e, "shared", d.Shared);
            e.Emit(new MappingEnd());
        }
        e.Emit(new SequenceEnd());

        Key(e, "peers");
        e.Emit(new SequenceStart(null, null, false, SequenceStyle.Block));
        foreach (var p in c.Peers)
        {
            e.Emit(new MappingStart());
            Pair(e, "name", p.Name);
            Pair(e, "smtpPort", p.SmtpPort);
            Pair(e, "mingerPort", p.MingerPort);
            PairOrNull(e, "secret", p.Secret, quoted: true);
            Pair(e, "enabled", p.Enabled);
            e.Emit(new MappingEnd());
        }
        e.Emit(new SequenceEnd());

        e.Emit(new MappingEnd());
        e.Emit(new DocumentEnd(true));
        e.Emit(new StreamEnd());
        return text.ToString() + EndLine + "\n";
    }

    private static void Key(IEmitter e, string key) => e.Emit(new Scalar(key));

    private static void Pair(IEmitter e, string key, string value)
    {
        Key(e, key);
        // A value the reader takes for null ('~', 'null', empty) must be quoted, or it would not read back.
        bool readsAsNull = value is "" or "~" or "null" or "Null" or "NULL";
        e.Emit(new Scalar(null, null, value, ScalarStyle.Any, !readsAsNull, true));
    }

    private static void Pair(IEmitter e, string key, int value) => Pair(e, key, value.ToString(CultureInfo.InvariantCulture));

    private static void Pair(IEmitter e, string key, bool value) => Pair(e, key, value ? "true" : "false");

    private static void PairOrNull(IEmitter e, string key, string? value, bool quoted = false)
    {
        Key(e, key);
        if (value is null) e.Emit(new Scalar(null, null, "null", ScalarStyle.Plain, true, false));
        else e.Emit(new Scalar(null, null, value, quoted ? ScalarStyle.SingleQuoted : ScalarStyle.Any, !quoted, quoted));
    }

    private static void List(IEmitter e, string key, IEnumerable<string> values)
    {
        Key(e, key);
        e.Emit(new SequenceStart(null, null, false, SequenceStyle.Flow));
        foreach (var v in values) e.Emit(new Scalar(v));
        e.Emit(new SequenceEnd());
    }
}
