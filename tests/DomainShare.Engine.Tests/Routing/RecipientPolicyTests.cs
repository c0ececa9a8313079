using System.Net;
using DomainShare.Engine.Accounts;
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
}
