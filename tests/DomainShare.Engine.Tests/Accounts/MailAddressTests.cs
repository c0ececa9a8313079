using CsCheck;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Minger;

namespace DomainShare.Engine.Tests.AccountsTests;

/// <summary>The syntax of an address an account is created with, and where its Maildir goes.</summary>
public sealed class MailAddressTests
{
    public static TheoryData<string, string, string> Valid() => new()
    {
        // input, local part (kept as given), domain (normalised)
        { "ann@example.com", "ann", "example.com" },
        { "Ann.Lee+tag@Example.COM", "Ann.Lee+tag", "example.com" },
        { "  ann@example.com  ", "ann", "example.com" },
        { "ann@example.com.", "ann", "example.com" },
        { "josé@exemple.com", "josé", "exemple.com" },
        { "JOSÉ@EXEMPLE.COM", "JOSÉ", "exemple.com" },
        { "用户@例子.广告", "用户", "例子.广告" },
        { "ann@xn--bcher-kva.example", "ann", "bücher.example" },
        { "😀@x.com", "😀", "x.com" },
        { "\"quoted\"@x.com", "\"quoted\"", "x.com" },
        { "\"a@b\"@x.com", "\"a@b\"", "x.com" },
        { "\"a\\\"b\"@x.com", "\"a\\\"b\"", "x.com" },
        { "!#$%&'*+-/=?^_`{|}~@x.com", "!#$%&'*+-/=?^_`{|}~", "x.com" },
        { new string('a', 64) + "@x.com", new string('a', 64), "x.com" },
        { new string('é', 32) + "@x.com", new string('é', 32), "x.com" }, // 64 bytes in UTF-8
    };

    [Theory]
    [MemberData(nameof(Valid))]
    public void Accepts(string input, string local, string domain)
    {
        var parsed = MailAddress.Parse(input);
        Assert.Equal(local, parsed.LocalPart);
        Assert.Equal(domain, parsed.Domain);
        Assert.Equal($"{local}@{domain}", parsed.Address);
        Assert.True(MingerCodec.IsValidMailbox(parsed.Address), "every valid address can be asked about over Minger");
    }

    public static TheoryData<string?, string> Invalid() => new()
    {
        // input, what the message says
        { null, "empty" },
        { "", "empty" },
        { "   ", "empty" },
        { "no-at-sign", "local part, an @ and a domain" },
        { "@x.com", "local part, an @ and a domain" },
        { "ann@", "local part, an @ and a domain" },
        { "a..b@x.com", "not a valid local part" },
        { ".ann@x.com", "not a valid local part" },
        { "ann.@x.com", "not a valid local part" },
        { "a b@x.com", "not a valid local part" },
        { "a\tb@x.com", "not a valid local part" },
        { "a\u00A0b@x.com", "not a valid local part" },          // no-break space
        { "a@b@x.com", "not a valid local part" },
        { "a(comment)@x.com", "not a valid local part" },
        { "\"with space\"@x.com", "not a valid local part" },
        { "\"with\\ escaped space\"@x.com", "not a valid local part" },
        { "\"with\ttab\"@x.com", "not a valid local part" },
        { "\"\"@x.com", "not a valid local part" },
        { "\"a\"b\"@x.com", "not a valid local part" },
        { "\"unterminated@x.com", "not a valid local part" },
        { new string('a', 65) + "@x.com", "longer than 64 bytes" },
        { new string('é', 33) + "@x.com", "longer than 64 bytes" },  // 33 characters, 66 bytes
        { "ann@" + new string('a', 250) + ".com", "longer than 254" },
        { "ann@localhost", "at least two labels" },
        { "ann@-x.com", "not a valid domain" },
        { "ann@x_y.com", "not a valid domain" },
        { "ann@x..com", "not a valid domain" },
        { "ann@192.0.2.1", "numeric" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Refuses(string? input, string reason)
    {
        var ex = Expect.Error(ErrorIds.InvalidAddress, () => MailAddress.Parse(input));
        Assert.Contains(reason, ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.True(Equals(ex.Target, input) || Equals(ex.Target, input?.Trim()), "the input is the target object");
    }

    [Fact]
    public void Refuses_unpaired_surrogates()
    {
        // Not theory data: xunit serialises theory arguments as UTF-8, which would turn these into U+FFFD.
        foreach (var (input, reason) in new[]
                 {
                     ("a\uD800@x.com", "not a valid local part"),        // lone high surrogate
                     ("a\uDC00b@x.com", "not a valid local part"),       // lone low surrogate
                     ("\uDE00\uD83D@x.com", "not a valid local part"),   // a pair in the wrong order
                     ("\"a\uD800\"@x.com", "not a valid local part"),
                     ("\"a\\\uD800\"@x.com", "not a valid local part"),  // escaped
                     ("ann@x\uD800.com", "not a valid domain"),
                 })
            Refuses(input, reason);
        Assert.Equal("\uD83D\uDE00", MailAddress.Parse("\uD83D\uDE00@x.com").LocalPart);
    }

    [Fact]
    public void Any_text_either_parses_to_an_address_Minger_can_carry_or_is_refused_with_InvalidAddress()
    {
        // Mostly characters that matter to the grammar: quotes, escapes, dots, @, white space, surrogates.
        var chars = Gen.OneOf(
            Gen.Char["\"\\.@ \t\u00A0ab\u00E9"],
            Gen.Char['\uD800', '\uDFFF'],
            Gen.Char.AlphaNumeric,
            Gen.Char);
        var local = Gen.OneOf(
            chars.Array[0, 12].Select(a => new string(a)),
            chars.Array[0, 10].Select(a => "\"" + new string(a) + "\""));
        var domain = Gen.OneOf(Gen.Const("x.com"), Gen.Const("例子.广告"), chars.Array[0, 8].Select(a => new string(a) + ".com"));
        Gen.Select(local, domain).Sample(t =>
        {
            string text = t.Item1 + "@" + t.Item2;
            MailAddress parsed;
            try { parsed = MailAddress.Parse(text); }
            catch (DomainShareException ex) when (ex.ErrorId == ErrorIds.InvalidAddress) { return; }
            Assert.True(MingerCodec.IsValidMailbox(parsed.Address), $"'{parsed.Address}' parsed but cannot be asked about over Minger");
            Assert.Equal(parsed, MailAddress.Parse(parsed.Address));
            Assert.DoesNotContain(' ', parsed.Address);
        }, iter: 20_000);
    }

    [Theory]
    [InlineData("Ann@Example.com", "mail/example.com/ann")]
    [InlineData("josé@exemple.com", "mail/exemple.com/jos%C3%A9")]
    [InlineData("ann@bücher.example", "mail/xn--bcher-kva.example/ann")]
    [InlineData("\"quoted\"@x.com", "mail/x.com/%22quoted%22")]
    [InlineData("\"../../etc\"@x.com", "mail/x.com/%22..%2F..%2Fetc%22")]
    [InlineData("a/b@x.com", "mail/x.com/a%2Fb")]
    public void A_Maildir_is_one_safe_folder_under_mail_and_the_domain(string address, string expected)
    {
        string relative = Maildir.RelativePathFor(MailAddress.Parse(address));
        Assert.Equal(expected.Replace('/', Path.DirectorySeparatorChar), relative);
        Assert.Equal(3, relative.Split(Path.DirectorySeparatorChar).Length);
    }

    [Fact]
    public void Maildir_Create_makes_tmp_new_and_cur_and_keeps_what_is_there()
    {
        using var folder = new TempFolder();
        string maildir = Path.Combine(folder.Path, Maildir.RelativePathFor(MailAddress.Parse("ann@example.com")));
        Maildir.Create(maildir);
        foreach (var sub in new[] { "tmp", "new", "cur" })
            Assert.True(Directory.Exists(Path.Combine(maildir, sub)), sub);
        File.WriteAllText(Path.Combine(maildir, "new", "1.msg"), "kept");
        Maildir.Create(maildir);
        Assert.Equal("kept", File.ReadAllText(Path.Combine(maildir, "new", "1.msg")));
    }
}
