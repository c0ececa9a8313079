using System.Text;
using DomainShare.Engine.Storage;

namespace DomainShare.Engine.Accounts;

/// <summary>
/// Where an account's mail is stored: a standard Maildir (<c>tmp/</c>, <c>new/</c>, <c>cur/</c>) under
/// <c>mail/&lt;domain&gt;/&lt;local part&gt;</c> in the data directory, readable by Dovecot, mutt and every Maildir reader.
/// </summary>
public static class Maildir
{
    public const string RootFolder = "mail";
    private static readonly string[] SubFolders = ["tmp", "new", "cur"];

    /// <summary>The Maildir of <paramref name="address"/>, relative to the data directory: lower case, with every byte that is not safe in a file name percent-encoded.</summary>
    public static string RelativePathFor(MailAddress address)
        => Path.Combine(RootFolder, SafeName(AsciiDomain(address.Domain)), SafeName(address.LocalPart.ToLowerInvariant()));

    private static readonly System.Globalization.IdnMapping Idn = new();

    private static string AsciiDomain(string domain)
    {
        try { return Idn.GetAscii(domain); }
        catch (ArgumentException) { return domain; }
    }

    private static string SafeName(string text)
    {
        var builder = new StringBuilder();
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            char c = (char)b;
            if (b < 0x80 && (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '+') || (c == '.' && builder.Length > 0))
                builder.Append(c);
            else
                builder.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }

    /// <summary>Creates the Maildir folders (durably); existing ones are kept.</summary>
    public static void Create(string fullPath)
    {
        foreach (var sub in SubFolders)
            Directory.CreateDirectory(Path.Combine(fullPath, sub));
        foreach (var sub in SubFolders)
            DurableFile.FlushDirectory(Path.Combine(fullPath, sub));
        DurableFile.FlushDirectory(fullPath);
        DurableFile.FlushDirectory(Path.GetDirectoryName(fullPath)!);
    }
}
