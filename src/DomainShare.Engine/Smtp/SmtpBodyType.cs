namespace DomainShare.Engine.Smtp;

/// <summary>What the client declared about the content with MAIL FROM's BODY= parameter (RFC 6152).</summary>
public enum SmtpBodyType
{
    /// <summary>No BODY parameter: 7-bit by the letter of RFC 5321, though 8-bit bytes are common and kept as they are.</summary>
    Unspecified,
    /// <summary>BODY=7BIT.</summary>
    SevenBit,
    /// <summary>BODY=8BITMIME.</summary>
    EightBitMime,
}
