using System.Net;
using DomainShare.Engine.Accounts;
using DomainShare.Engine.Configuration;
using DomainShare.Engine.Routing;
using DomainShare.Engine.Smtp;

namespace DomainShare.Engine.Tests.Routing;

/// <summary>RCPT TO decided by <see cref="RecipientPolicy"/> on a real resolver, account store and Maildir.</summary>
public sealed class RecipientPolicyTests
{
    private static readonly SmtpSessionInfo Client = new("s1", new IPEndPoint(IPAddress.Parse("192.0.2.7"), 40000), new IPEndPoint(IPAddress.Loopback, 25), "client.test", false);

    private static RecipientPolicy PolicyFor(ResolverRig rig)
        => new(() => rig.Config, rig.Resolver, _ => null,
               address => rig.Accounts.Get(address) is { } account && Maildir.IsOverQuota(account, rig.Folder.Path));

    private static Account AddAccount(ResolverRig rig, string address, long? quota)
    {
        var account = new Account(address, null, true, quota, DateTimeOffset.UtcNow, Maildir.RelativePathFor(MailAddress.Parse(address)));
        Assert.True(rig.Accounts.TryAdd(account));
        Maildir.Create(Path.Combine(rig.Folder.Path, account.Maildir));
        return account;
    }

    [Fact]
    public async Task A_full_mailbox_is_refused_552_5_2_2_and_one_with_room_is_accepted()
    {
        await using var rig = new ResolverRig();
        var full = AddAccount(rig, "full@example.com", quota: 100);
        AddAccount(rig, "roomy@example.com", quota: 1_000_000);
        AddAccount(rig, "unlimited@example.com", quota: null);
        File.WriteAllBytes(Path.Combine(rig.Folder.Path, full.Maildir, "cur", "1.M1P1.test,S=150:2,S"), new byte[150]);
        var policy = PolicyFor(rig);

        var refused = await policy.CheckRecipientAsync(Client, "sender@example.org", "full@example.com", CancellationToken.None);
        Assert.Equal(552, refused.Code);
        Assert.StartsWith("5.2.2", refused.Text);
        Assert.Null(refused.Route);

        foreach (var address in new[] { "roomy@example.com", "unlimited@example.com" })
        {
            var accepted = await policy.CheckRecipientAsync(Client, "sender@example.org", address, CancellationToken.None);
            Assert.Equal(250, accepted.Code);
            Assert.Equal(RouteKind.Local, accepted.Route!.Kind);
        }
    }

    [Fact]
    public async Task Other_domains_are_relay_denied_and_unknown_local_users_are_unknown()
    {
        await using var rig = new ResolverRig();
        var policy = PolicyFor(rig);
        var outside = await policy.CheckRecipientAsync(Client, null, "someone@elsewhere.test", CancellationToken.None);
        Assert.Equal((550, "5.7.1 Relaying denied"), (outside.Code, outside.Text));
        var unknown = await policy.CheckRecipientAsync(Client, null, "nobody@" + ResolverRig.Private, CancellationToken.None);
        Assert.Equal((550, "5.1.1 User unknown"), (unknown.Code, unknown.Text));
    }

    [Fact]
    public async Task A_bare_Postmaster_is_the_postmaster_of_the_first_hosted_domain()
    {
        await using var rig = new ResolverRig();
        var policy = PolicyFor(rig);
        string first = rig.Config.Domains[0].Name;
        var unknown = await policy.CheckRecipientAsync(Client, null, "Postmaster", CancellationToken.None);
        Assert.Equal((550, "5.1.1 User unknown"), (unknown.Code, unknown.Text)); // no such account yet: unknown, not a syntax error

        AddAccount(rig, $"postmaster@{first}", quota: null);
        var accepted = await policy.CheckRecipientAsync(Client, null, "POSTMASTER", CancellationToken.None);
        Assert.Equal(250, accepted.Code);
        Assert.Equal(RouteKind.Local, accepted.Route!.Kind);
        Assert.Equal($"postmaster@{first}", accepted.Route.Recipient, ignoreCase: true);
    }

    private const string IdnDomain = "bücher.example";

    /// <summary>A rig hosting <see cref="IdnDomain"/> too, with alice@example.com and jörg@bücher.example.</summary>
    private static ResolverRig IdnRig()
    {
        var rig = new ResolverRig();
        rig.Config = rig.Config with { Domains = rig.Config.Domains.Add(new DomainConfiguration(IdnDomain, false)) };
        rig.AddAccount("alice@example.com");
        rig.AddAccount("jörg@" + IdnDomain);
        return rig;
    }

    [Theory]
    [InlineData("alice@example.com")]
    [InlineData("ALICE@EXAMPLE.COM")]
    [InlineData("jörg@bücher.example")]
    [InlineData("jörg@BÜCHER.EXAMPLE")]
    [InlineData("jörg@xn--bcher-kva.example")]
    [InlineData("jörg@XN--BCHER-KVA.example")]
    [InlineData("jörg@bu\u0308cher.example")] // decomposed ü: the same string once composed (NFC)
    public async Task A_hosted_domain_written_as_its_U_label_or_A_label_in_any_case_reaches_the_local_user(string address)
    {
        await using var rig = IdnRig();
        var decision = await PolicyFor(rig).CheckRecipientAsync(Client, null, address, CancellationToken.None);
        Assert.Equal(250, decision.Code);
        Assert.Equal(RouteKind.Local, decision.Route!.Kind);
    }

    [Theory]
    [InlineData("alice@\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C\uFF45.com")] // full-width letters
    [InlineData("alice@\uFF45xample.com")] // one full-width letter
    [InlineData("alice@\uFF25\uFF38\uFF21\uFF2D\uFF30\uFF2C\uFF25\uFF0E\uFF23\uFF2F\uFF2D")] // full-width, full-width full stop
    [InlineData("alice@example\u3002com")] // ideographic full stop as the dot
    [InlineData("alice@example\uFF61com")] // half-width ideographic full stop
    [InlineData("alice@\u212Fxample.com")] // script small e
    [InlineData("alice@example.com\u200B")] // zero-width space
    [InlineData("alice@exam\u00ADple.com")] // soft hyphen
    [InlineData("alice@exa\u200Dmple.com")] // zero-width joiner
    [InlineData("jörg@\uFF42ü\uFF43\uFF48\uFF45\uFF52.example")] // full-width letters around a genuine ü
    [InlineData("alice@xn--mi7chab1aes7c.com")] // the A-label of the full-width name
    public async Task A_spelling_that_only_IDNA_mapping_turns_into_a_hosted_domain_is_not_an_address_501_5_1_3(string address)
    {
        await using var rig = IdnRig();
        var decision = await PolicyFor(rig).CheckRecipientAsync(Client, null, address, CancellationToken.None);
        Assert.Equal((501, "5.1.3 Bad recipient address syntax"), (decision.Code, decision.Text));
        Assert.Null(decision.Route);
    }

    [Theory]
    [InlineData("alice@\u0435xample.com")] // Cyrillic е
    [InlineData("alice@ex\u0430mple.com")] // Cyrillic а
    [InlineData("alice@examp\u0131e.com")] // dotless ı
    [InlineData("alice@xn--xample-2of.com")] // the A-label of the Cyrillic е lookalike
    [InlineData("jörg@b\u0171cher.example")] // ű for ü
    [InlineData("alice@example.com.outside.test")]
    public async Task A_lookalike_of_a_hosted_domain_is_another_domain_relay_denied(string address)
    {
        await using var rig = IdnRig();
        var decision = await PolicyFor(rig).CheckRecipientAsync(Client, null, address, CancellationToken.None);
        Assert.Equal((550, "5.7.1 Relaying denied"), (decision.Code, decision.Text));
    }
}
