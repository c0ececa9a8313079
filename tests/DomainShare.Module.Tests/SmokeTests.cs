namespace DomainShare.Module.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Initialize_then_add_and_get_a_peer()
    {
        using var ps = new PowerShellSession();
        ps.Run("Initialize-DomainShare -ServerName mx1.example.com").AssertSuccess();
        ps.Run("Add-DomainSharePeer mx2.example.net:2525 -Secret 'abcdefghijklmnop'").AssertSuccess();
        var r = ps.Run("Get-DomainSharePeer").AssertSuccess();
        var peer = r.Single("DomainShare.DomainSharePeer");
        Assert.Equal("mx2.example.net", peer.Prop("Name"));
        Assert.Equal(2525, peer.Prop("SmtpPort"));
    }
}
