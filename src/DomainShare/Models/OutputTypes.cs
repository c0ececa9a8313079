namespace DomainShare;

/// <summary>A peer as the cmdlets show it. The secret itself is never part of an output object.</summary>
public sealed class DomainSharePeer
{
    public string Name { get; init; } = "";
    public int SmtpPort { get; init; }
    public int MingerPort { get; init; }
    public bool Enabled { get; init; }
    /// <summary>True when queries to this peer are signed with a shared secret.</summary>
    public bool HasSecret { get; init; }
    /// <summary>Where mail for this peer's users is delivered: <c>host:port</c>.</summary>
    public string SmtpAddress { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => SmtpAddress;
}

/// <summary>A domain hosted by this server.</summary>
public sealed class DomainShareDomain
{
    public string Name { get; init; } = "";
    /// <summary>True when other servers (the peers) hold some of this domain's users.</summary>
    public bool Shared { get; init; }
    public string ConfigPath { get; init; } = "";

    public override string ToString() => Name;
}

/// <summary>A server's configuration as the cmdlets show it: every setting, never the secret.</summary>
public sealed class DomainShareConfig
{
    public string ServerName { get; init; } = "";
    public string ConfigPath { get; init; } = "";
    public string DataDirectory { get; init; } = "";
    public string SmtpEndpoint { get; init; } = "";
    public string? RelayHost { get; init; }
    public string[] TrustedNetwork { get; init; } = [];
    public int MaxHops { get; init; }
    public string MingerEndpoint { get; init; } = "";
    /// <summary>True when peers must sign their queries with this server's Minger secret.</summary>
    public bool MingerSecretSet { get; init; }
    public bool AllowAnonymousMinger { get; init; }
    public string[] MingerAllowedSource { get; init; } = [];
    public int MingerRateLimitPerSecond { get; init; }
    public TimeSpan MingerTimeout { get; init; }
    public int MingerRetries { get; init; }
    public bool DomainSharingEnabled { get; init; }
    public TimeSpan VerifiedCacheTtl { get; init; }
    public TimeSpan NegativeCacheTtl { get; init; }
    public bool KeepQueuedOnDeliveryError { get; init; }
    /// <summary>"Minger checks also trigger domain-sharing checks".</summary>
    public bool MingerGateway { get; init; }
    public TimeSpan QueueLifetime { get; init; }
    public TimeSpan QueueRetryInterval { get; init; }
    public TimeSpan QueueMaxRetryInterval { get; init; }
    public TimeSpan QueueConnectTimeout { get; init; }
    public TimeSpan QueueCommandTimeout { get; init; }
    public int QueuePeerAttemptsBeforeRelayHost { get; init; }
    public int QueueMaxConnectionsPerPeer { get; init; }
    public TimeSpan SmtpCommandTimeout { get; init; }
    public TimeSpan SmtpDataTimeout { get; init; }
    public int MaxMessageBytes { get; init; }
    public int MaxRecipients { get; init; }
    public int MaxConnections { get; init; }
    public int MaxConnectionsPerSource { get; init; }
    public string? TlsCertificate { get; init; }
    public string? TlsKey { get; init; }
    public string[] Domain { get; init; } = [];
    public int PeerCount { get; init; }

    public override string ToString() => ServerName;
}

/// <summary>The relay of a configuration: running or not, and what it is doing.</summary>
public sealed class DomainShareRelay
{
    public bool Running { get; init; }
    public int? ProcessId { get; init; }
    public string ConfigPath { get; init; } = "";
    public DateTimeOffset? StartTime { get; init; }
    public TimeSpan? Uptime { get; init; }
    public string? MingerEndpoint { get; init; }
    public string? SmtpEndpoint { get; init; }
    /// <summary>Why the last configuration change was not applied (the relay keeps running on the last good one).</summary>
    public string? ConfigurationError { get; init; }
    /// <summary>Counters such as Minger answers by status and cache hits.</summary>
    public System.Collections.Generic.Dictionary<string, long> Counters { get; init; } = [];
    public string? Version { get; init; }

    public override string ToString() => Running ? $"Running (process {ProcessId})" : "Stopped";
}

/// <summary>Where mail for an address goes, as the relay would decide it now.</summary>
public sealed class DomainShareResolution
{
    public string Address { get; init; } = "";
    /// <summary>DomainNotHosted, Local, LocalCannotReceive, Peer, NotFound, TemporaryFailure or CannotReceive.</summary>
    public string Result { get; init; } = "";
    /// <summary>The peer that holds the mailbox (Result Peer, or CannotReceive on a peer).</summary>
    public string? Peer { get; init; }
    public bool FromCache { get; init; }
    public TimeSpan Elapsed { get; init; }
    /// <summary>The peers that could not answer, each with the reason ("lyon.example.com: no reply within 2 s (3 attempts)").</summary>
    public string[] FailedPeers { get; init; } = [];
    /// <summary>The SMTP reply a relay gives this recipient at RCPT TO.</summary>
    public string SmtpReply { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => $"{Address}: {Result}{(Peer is null ? "" : " (" + Peer + ")")}";
}

/// <summary>The outcome of the Minger '*' probe to one peer.</summary>
public sealed class DomainSharePeerTest
{
    public string Name { get; init; } = "";
    public bool Enabled { get; init; }
    /// <summary>The peer sent back a valid Minger reply.</summary>
    public bool Reachable { get; init; }
    /// <summary>The peer accepted our secret (or needs none) and our address: it answered 5.</summary>
    public bool SecretAccepted { get; init; }
    public int? Status { get; init; }
    public TimeSpan? RoundTrip { get; init; }
    public string? MingerEndpoint { get; init; }
    public string? Error { get; init; }
    /// <summary>True when the peer is usable for lookups.</summary>
    public bool Passed => Reachable && SecretAccepted;
    public string ConfigPath { get; init; } = "";

    public override string ToString() => $"{Name}: {(Passed ? "OK" : Error)}";
}

/// <summary>An entry of the verification cache.</summary>
public sealed class DomainShareCacheEntry
{
    public string Address { get; init; } = "";
    /// <summary>The peer that said the address exists; empty for a negative entry.</summary>
    public string? Peer { get; init; }
    /// <summary>True for "exists on Peer", false for "unknown everywhere".</summary>
    public bool Positive { get; init; }
    public DateTimeOffset Verified { get; init; }
    public DateTimeOffset Expires { get; init; }
    public string ConfigPath { get; init; } = "";

    public override string ToString() => Address;
}

/// <summary>An account: a mailbox that lives on this server.</summary>
public sealed class DomainShareAccount
{
    public string Address { get; init; } = "";
    public string? DisplayName { get; init; }
    public bool Enabled { get; init; }
    /// <summary>Quota in bytes; null when unlimited.</summary>
    public long? Quota { get; init; }
    public DateTimeOffset Created { get; init; }
    public string Domain { get; init; } = "";
    /// <summary>The account's Maildir (tmp/, new/, cur/), readable by any Maildir reader.</summary>
    public string Maildir { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => Address;
}

/// <summary>A finding of Test-DomainShareConsistency: an address that also exists on a peer, or that a peer could not confirm.</summary>
public sealed class DomainShareConsistencyFinding
{
    public string Address { get; init; } = "";
    public string Peer { get; init; } = "";
    /// <summary>True when the peer has the address too (it answered 5 or 4): the same account exists on two servers.</summary>
    public bool Conflict { get; init; }
    public int? PeerStatus { get; init; }
    public string LocalState { get; init; } = "";
    public string Detail { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => $"{Address} / {Peer}: {Detail}";
}

/// <summary>The outcome of Send-DomainShareTestMessage: the server's reply and the latency.</summary>
public sealed class DomainShareTestMessageResult
{
    public string To { get; init; } = "";
    public string From { get; init; } = "";
    public string Server { get; init; } = "";
    /// <summary>True when the server answered 250 at the end of DATA: the message is queued there.</summary>
    public bool Accepted { get; init; }
    public int? StatusCode { get; init; }
    public string Reply { get; init; } = "";
    public TimeSpan Latency { get; init; }
    public string MessageId { get; init; } = "";
    public bool Secure { get; init; }

    public override string ToString() => $"{To} via {Server}: {Reply}";
}

/// <summary>A message waiting in the queue.</summary>
public sealed class DomainShareQueueMessage
{
    public string Id { get; init; } = "";
    /// <summary>The sender; empty for a bounce (null reverse path).</summary>
    public string From { get; init; } = "";
    /// <summary>The recipients still to deliver.</summary>
    public string[] Recipients { get; init; } = [];
    /// <summary>Where each pending recipient goes: Local, the peer's name, or RelayHost.</summary>
    public string[] Destinations { get; init; } = [];
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset NextAttempt { get; init; }
    public int Attempts { get; init; }
    public string? LastError { get; init; }
    public long Size { get; init; }
    public string ConfigPath { get; init; } = "";

    public override string ToString() => Id;
}

/// <summary>An MX record a hosted domain needs so that mail from the Internet reaches its servers (Get-DomainShareMxRecord).</summary>
public sealed class DomainShareMxRecord
{
    public string Domain { get; init; } = "";
    /// <summary>The MX preference: 10 for this server (the primary), 20 for each backup.</summary>
    public int Priority { get; init; }
    /// <summary>The server the record points at, as configured (lower case; internationalised names in Unicode).</summary>
    public string Host { get; init; } = "";
    /// <summary>Primary (this server) or Backup (an enabled peer of a shared domain).</summary>
    public string Role { get; init; } = "";
    public int Ttl { get; init; }
    /// <summary>The record as a zone-file line, in ASCII: <c>example.com. 3600 IN MX 10 paris.example.com.</c></summary>
    public string ZoneLine { get; init; } = "";
    public string ConfigPath { get; init; } = "";

    public override string ToString() => ZoneLine;
}

/// <summary>A live MX record of a domain, as Test-DomainShareMx found it in DNS.</summary>
public sealed class DomainShareMxTestRecord
{
    public int Priority { get; init; }
    /// <summary>The MX host as DNS returned it, without the trailing dot.</summary>
    public string Host { get; init; } = "";
    /// <summary>Primary for the lowest preference in DNS, Backup for the others.</summary>
    public string Role { get; init; } = "";
    /// <summary>ThisServer, Peer, DisabledPeer, Unknown, IpAddress or NullMx.</summary>
    public string Target { get; init; } = "";
    /// <summary>True when the host is this server or an enabled peer.</summary>
    public bool ConfiguredServer { get; init; }

    public override string ToString() => $"{Priority} {Host}";
}

/// <summary>The outcome of Test-DomainShareMx for one domain: the live MX records compared with the records it needs.</summary>
public sealed class DomainShareMxTest
{
    public string Domain { get; init; } = "";
    /// <summary>True when every server of the domain is an MX target, no MX points elsewhere and a backup exists where one is planned.</summary>
    public bool Passed { get; init; }
    /// <summary>How the DNS query ended: Ok, NoMxRecords, NonExistentDomain, ServerFailure, Refused, Timeout or Failed.</summary>
    public string Status { get; init; } = "";
    public DomainShareMxTestRecord[] Records { get; init; } = [];
    /// <summary>The servers of the domain (this server, the enabled peers of a shared domain) that no MX record names.</summary>
    public string[] MissingServers { get; init; } = [];
    /// <summary>MX hosts that are not servers of this domain.</summary>
    public string[] UnexpectedHosts { get; init; } = [];
    /// <summary>True when at least two distinct MX targets are configured servers.</summary>
    public bool HasBackup { get; init; }
    /// <summary>Why the check did not pass; empty when it passed.</summary>
    public string? Reason { get; init; }
    /// <summary>The DNS server that was asked (or answered).</summary>
    public string DnsServer { get; init; } = "";
    public TimeSpan Elapsed { get; init; }
    public string ConfigPath { get; init; } = "";

    public override string ToString() => $"{Domain}: {(Passed ? "OK" : Reason)}";
}
