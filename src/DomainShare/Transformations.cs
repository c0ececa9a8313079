using System.Management.Automation;
using System.Net;
using System.Security;
using DomainShare.Engine.Configuration;

namespace DomainShare;

/// <summary>
/// Lets a secret parameter take a plain string as well as a SecureString. Scripts run by the bundled host have no
/// ConvertTo-SecureString or Read-Host (they are not in the core engine), and scheduled tasks read secrets from files
/// or environment variables: <c>-Secret $env:PEER_SECRET</c> must just work.
/// </summary>
public sealed class SecretTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        switch (value)
        {
            case null:
            case SecureString:
                return value;
            case string text:
                var secure = new SecureString();
                foreach (char c in text) secure.AppendChar(c);
                secure.MakeReadOnly();
                return secure;
            default:
                // Any other type: let PowerShell's binder report the type mismatch (never echo the value: it may be a secret).
                return value;
        }
    }

    internal static string? Reveal(SecureString? secret)
        => secret is null ? null : new NetworkCredential(string.Empty, secret).Password;
}

/// <summary>Lets a duration parameter take <c>5d</c>, <c>12h</c>, <c>30m</c>, <c>90s</c> and <c>500ms</c> as well as a TimeSpan.</summary>
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        // PowerShell reads 90s and 5d as numbers (s and d are its suffixes for short and decimal): the binder would turn
        // them into 90 ticks. The PSObject around a literal argument still holds the text as written: use that.
        if (value is not (string or TimeSpan) && inputData is PSObject literal && literal.ToString() is { } written
            && written != Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) && Durations.TryParse(written, out var fromLiteral))
            return fromLiteral;
        if (value is string text)
            return TryParse(text, out var span) ? span
                : throw new ArgumentTransformationMetadataException($"'{text}' is not a duration. Write it like 5d, 12h, 30m, 90s, 500ms, or 1.12:00:00.");
        return value;
    }

    private static bool TryParse(string text, out TimeSpan value) => Durations.TryParse(text, out value);
}

/// <summary>An empty or blank string (an empty CSV cell) means "not given" rather than 0.</summary>
public sealed class EmptyAsNullAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
        => (inputData is PSObject pso ? pso.BaseObject : inputData) is string s && string.IsNullOrWhiteSpace(s) ? null : inputData;
}
