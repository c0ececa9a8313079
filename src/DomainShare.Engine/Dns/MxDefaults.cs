namespace DomainShare.Engine.DnsRecords;

/// <summary>The defaults of the MX records DomainShare proposes and of the live MX check, in one place.</summary>
public static class MxDefaults
{
    /// <summary>The preference of this server's MX record: the lowest value, so senders try it first.</summary>
    public const int PrimaryPriority = 10;
    /// <summary>The preference of every backup MX (the enabled peers of a shared domain): equal, so senders spread over them.</summary>
    public const int BackupPriority = 20;
    /// <summary>The TTL written in proposed zone-file lines: one hour, short enough to move the MX in an afternoon.</summary>
    public const int Ttl = 3600;
    /// <summary>How long one DNS query waits for an answer.</summary>
    public static readonly TimeSpan QueryTimeout = TimeSpan.FromSeconds(3);
    /// <summary>A query that gets no answer is sent once more (two tries in all) before the check reports a timeout.</summary>
    public const int QueryRetries = 1;
    /// <summary>The longest -Timeout accepted: a check is a diagnostic, never a wait of minutes.</summary>
    public static readonly TimeSpan MaxQueryTimeout = TimeSpan.FromMinutes(1);
    public const int DnsPort = 53;
}
