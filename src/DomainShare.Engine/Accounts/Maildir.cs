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

    /// <summary>The bytes held in a Maildir's new/ and cur/ (what counts against a quota); 0 for a missing folder.</summary>
    public static long Size(string fullPath)
    {
        long total = 0;
        foreach (var sub in new[] { "new", "cur" })
        {
            var folder = new DirectoryInfo(Path.Combine(fullPath, sub));
            if (!folder.Exists) continue;
            try
            {
                foreach (var file in folder.EnumerateFiles()) total += file.Length;
            }
            catch (IOException) { } // a message moved by a reader meanwhile: the next check counts it
        }
        return total;
    }

    /// <summary>True when <paramref name="account"/> has a quota and its Maildir under <paramref name="dataDirectory"/> holds at least that much.</summary>
    public static bool IsOverQuota(Account account, string dataDirectory)
        => account.QuotaBytes is long quota && Size(Path.Combine(dataDirectory, account.Maildir)) >= quota;

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
