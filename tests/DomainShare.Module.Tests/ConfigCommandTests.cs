namespace DomainShare.Module.Tests;

/// <summary>Initialize-DomainShare, Get-/Set-DomainShareConfig, and how the cmdlets treat a broken file.</summary>
public sealed class ConfigCommandTests : IDisposable
{
    private readonly PowerShellSession ps = new();

    public void Dispose() => ps.Dispose();

    [Fact]
    public void Initialize_writes_the_defaults_of_the_specification()
    {
        var config = ps.Run("Initialize-DomainShare -ServerName MX1.Example.com").AssertSuccess().Single("DomainShare.DomainShareConfig");
        Assert.Equal("mx1.example.com", config.Prop("ServerName"));
        Assert.Equal(true, config.Prop("DomainSharingEnabled"));
        Assert.Equal(TimeSpan.FromDays(5), config.Prop("VerifiedCacheTtl"));
        Assert.Equal(TimeSpan.Zero, config.Prop("NegativeCacheTtl"));
        Assert.Equal(true, config.Prop("KeepQueuedOnDeliveryError"));
        Assert.Equal(false, config.Prop("MingerGateway"));
        Assert.Equal("0.0.0.0:25", config.Prop("SmtpEndpoint"));
        Assert.Equal("0.0.0.0:4069", config.Prop("MingerEndpoint"));
        Assert.Equal(false, config.Prop("MingerSecretSet"));
        Assert.Equal(Path.Combine(ps.Directory, "data"), config.Prop("DataDirectory"));
        Assert.Equal(ps.ConfigPath, config.Prop("ConfigPath"));

        var yaml = ps.ConfigText;
        Assert.Contains("serverName: mx1.example.com", yaml);
        Assert.Contains("verifiedCacheTtl: 5d", yaml);
        Assert.Contains("keepQueuedOnDeliveryError: true", yaml);
        Assert.Contains("gateway: false", yaml);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ps.ConfigPath));
    }

    [Fact]
    public void Initialize_takes_endpoints_and_a_secret_and_never_prints_the_secret()
    {
        var r = ps.Run("Initialize-DomainShare mx1.example.com -SmtpEndpoint 127.0.0.1:2525 -MingerEndpoint '[::1]:4070' -MingerSecret 'the-shared-secret-16'").AssertSuccess();
        var config = r.Single("DomainShare.DomainShareConfig");
        Assert.Equal("127.0.0.1:2525", config.Prop("SmtpEndpoint"));
        Assert.Equal("[::1]:4070", config.Prop("MingerEndpoint"));
        Assert.Equal(true, config.Prop("MingerSecretSet"));
        Assert.DoesNotContain(config.Properties, p => p.Value?.ToString()?.Contains("the-shared-secret-16") == true);
        Assert.Contains("secret: 'the-shared-secret-16'", ps.ConfigText);
    }

    [Theory]
    [InlineData("-SmtpEndpoint 0.0.0.0", "InvalidEndpoint")]
    [InlineData("-SmtpEndpoint 0.0.0.0:0", "InvalidPort")]
    [InlineData("-MingerEndpoint '::1:4069'", "InvalidEndpoint")]
    [InlineData("-MingerEndpoint mail.example.com:4069", "InvalidEndpoint")]
    [InlineData("-MingerSecret 'fifteen-chars!!'", "InvalidSecret")]
    public void Initialize_refuses_bad_values_and_writes_nothing(string parameters, string errorId)
    {
        var r = ps.Run($"Initialize-DomainShare mx1.example.com {parameters}");
        Assert.Equal($"{errorId},DomainShare.Commands.InitializeDomainShareCommand", Assert.Single(r.ErrorIds));
        Assert.False(File.Exists(ps.ConfigPath));
    }

    [Fact]
    public void Initialize_refuses_a_bad_server_name()
    {
        var r = ps.Run("Initialize-DomainShare 'mx 1.example.com'");
        Assert.Equal("InvalidServerName,DomainShare.Commands.InitializeDomainShareCommand", Assert.Single(r.ErrorIds));
        Assert.False(File.Exists(ps.ConfigPath));
    }

    [Fact]
    public void Initialize_does_not_replace_an_existing_file_without_force()
    {
        ps.Run("Initialize-DomainShare mx1.example.com; Add-DomainSharePeer mx2.example.net").AssertSuccess();
        var r = ps.Run("Initialize-DomainShare mx9.example.com");
        Assert.Equal("ConfigurationExists,DomainShare.Commands.InitializeDomainShareCommand", Assert.Single(r.ErrorIds));
        Assert.Contains("mx2.example.net", ps.ConfigText);
        var whatIf = ps.Run("Initialize-DomainShare mx9.example.com -Force -WhatIf").AssertSuccess();
        Assert.Contains("What if:", whatIf.HostText);
        Assert.Contains("mx1.example.com", ps.ConfigText);
        ps.Run("Initialize-DomainShare mx9.example.com -Force").AssertSuccess();
        Assert.Contains("serverName: mx9.example.com", ps.ConfigText);
        Assert.DoesNotContain("mx2.example.net", ps.ConfigText);
    }

    [Fact]
    public void Set_changes_every_kind_of_setting_and_bool_parameters_turn_settings_off()
    {
        ps.Run("Initialize-DomainShare mx1.example.com").AssertSuccess();
        var config = ps.Run("""
            Set-DomainShareConfig -KeepQueuedOnDeliveryError $false -MingerGateway $true -DomainSharingEnabled $false `
                -VerifiedCacheTtl 12h -NegativeCacheTtl ([TimeSpan]::FromMinutes(30)) -MingerTimeout 1500ms -MingerRetries 3 `
                -MingerSecret 'sixteen-characters' -AllowAnonymousMinger $true -MingerAllowedSource 192.0.2.0/24,2001:db8::1 `
                -MingerRateLimitPerSecond 20 -QueueLifetime 3d -RelayHost smarthost.example.net:587 -TrustedNetwork 10.0.0.0/8 `
                -MaxHops 40 -SmtpEndpoint '[::]:25' -MingerEndpoint 127.0.0.1:4069 -ServerName mx2.example.com -DataDirectory /var/tmp/ds `
                -SmtpCommandTimeout 90s -SmtpDataTimeout 2m -QueueConnectTimeout 5s -QueueCommandTimeout 1m -QueuePeerAttemptsBeforeRelayHost 2 `
                -QueueMaxConnectionsPerPeer 3 -PassThru
            """).AssertSuccess().Single("DomainShare.DomainShareConfig");
        Assert.Equal(false, config.Prop("KeepQueuedOnDeliveryError"));
        Assert.Equal(true, config.Prop("MingerGateway"));
        Assert.Equal(false, config.Prop("DomainSharingEnabled"));
        Assert.Equal(TimeSpan.FromHours(12), config.Prop("VerifiedCacheTtl"));
        Assert.Equal(TimeSpan.FromMinutes(30), config.Prop("NegativeCacheTtl"));
        Assert.Equal(TimeSpan.FromMilliseconds(1500), config.Prop("MingerTimeout"));
        Assert.Equal(3, config.Prop("MingerRetries"));
        Assert.Equal(true, config.Prop("MingerSecretSet"));
        Assert.Equal(new[] { "192.0.2.0/24", "2001:db8::1" }, (string[])config.Prop("MingerAllowedSource")!);
        Assert.Equal("smarthost.example.net:587", config.Prop("RelayHost"));
        Assert.Equal(TimeSpan.FromDays(3), config.Prop("QueueLifetime"));
        Assert.Equal("mx2.example.com", config.Prop("ServerName"));
        Assert.Equal("[::]:25", config.Prop("SmtpEndpoint"));
        Assert.Equal(TimeSpan.FromSeconds(90), config.Prop("SmtpCommandTimeout"));
        Assert.Equal(TimeSpan.FromMinutes(2), config.Prop("SmtpDataTimeout"));
        Assert.Equal(TimeSpan.FromSeconds(5), config.Prop("QueueConnectTimeout"));
        Assert.Equal(TimeSpan.FromMinutes(1), config.Prop("QueueCommandTimeout"));
        Assert.Equal(2, config.Prop("QueuePeerAttemptsBeforeRelayHost"));
        Assert.Equal(3, config.Prop("QueueMaxConnectionsPerPeer"));

        // Read back from disk by a fresh command, not from the object just returned.
        var reread = ps.Run("Get-DomainShareConfig").AssertSuccess().Single("DomainShare.DomainShareConfig");
        Assert.Equal(TimeSpan.FromHours(12), reread.Prop("VerifiedCacheTtl"));
        Assert.Equal(false, reread.Prop("KeepQueuedOnDeliveryError"));
        Assert.Equal(3, reread.Prop("QueueMaxConnectionsPerPeer"));
        Assert.Contains("verifiedCacheTtl: 12h", ps.ConfigText);
        Assert.Contains("timeout: 1s500ms", ps.ConfigText);
        Assert.Contains("commandTimeout: 1m30s", ps.ConfigText);
        Assert.Contains("peerAttemptsBeforeRelayHost: 2", ps.ConfigText);
        Assert.Contains("maxConnectionsPerPeer: 3", ps.ConfigText);

        ps.Run("Set-DomainShareConfig -ClearMingerSecret -ClearRelayHost -MingerAllowedSource @()").AssertSuccess();
        var cleared = ps.Run("Get-DomainShareConfig").AssertSuccess().Single("DomainShare.DomainShareConfig");
        Assert.Equal(false, cleared.Prop("MingerSecretSet"));
        Assert.Null(cleared.Prop("RelayHost"));
        Assert.Empty((string[])cleared.Prop("MingerAllowedSource")!);
        Assert.DoesNotContain("sixteen-characters", ps.ConfigText);
    }

    [Theory]
    [InlineData("-VerifiedCacheTtl 5x", "ParameterArgumentTransformationError")]
    [InlineData("-NegativeCacheTtl ([TimeSpan]::FromDays(-1))", "InvalidSetting")]
    [InlineData("-MingerTimeout 0", "InvalidSetting")]
    [InlineData("-MingerRetries 11", "ParameterArgumentValidationError")]
    [InlineData("-SmtpCommandTimeout 0", "InvalidSetting")]
    [InlineData("-QueueConnectTimeout 5x", "ParameterArgumentTransformationError")]
    [InlineData("-QueuePeerAttemptsBeforeRelayHost 0", "ParameterArgumentValidationError")]
    [InlineData("-QueueMaxConnectionsPerPeer 0", "ParameterArgumentValidationError")]
    [InlineData("-QueueMaxConnectionsPerPeer 101", "ParameterArgumentValidationError")]
    [InlineData("-MingerSecret 'fifteen-chars!!'", "InvalidSecret")]
    [InlineData("-MingerSecret 'sixteen-characters' -ClearMingerSecret", "InvalidSetting")]
    [InlineData("-MingerAllowedSource 300.1.1.1", "InvalidSetting")]
    [InlineData("-SmtpEndpoint 'nohost'", "InvalidEndpoint")]
    [InlineData("-RelayHost 'bad host'", "InvalidPeerName")]
    [InlineData("-ServerName 'bad name'", "InvalidServerName")]
    public void Set_refuses_bad_values_and_changes_nothing(string parameters, string errorId)
    {
        ps.Run("Initialize-DomainShare mx1.example.com").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run($"Set-DomainShareConfig {parameters}");
        Assert.StartsWith(errorId + ",", Assert.Single(r.ErrorIds));
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
    }

    [Fact]
    public void Set_with_WhatIf_names_the_settings_and_changes_nothing()
    {
        ps.Run("Initialize-DomainShare mx1.example.com").AssertSuccess();
        var before = File.ReadAllBytes(ps.ConfigPath);
        var r = ps.Run("Set-DomainShareConfig -MingerGateway $true -VerifiedCacheTtl 1d -WhatIf").AssertSuccess();
        Assert.Contains("MingerGateway", r.HostText);
        Assert.Contains("VerifiedCacheTtl", r.HostText);
        Assert.Equal(before, File.ReadAllBytes(ps.ConfigPath));
    }

    [Theory]
    [InlineData("serverName: mx1.example.com\npeers:\n  - name: a.example.net\n    mingerPort: 70000\n", 4, "peers[0].mingerPort")]
    [InlineData("serverName: mx1.example.com\ncolour: blue\n", 2, "colour")]
    [InlineData("serverName: mx1.example.com\npeers:\n  - name: a.example.net\n  - name: A.example.net\n", 4, "peers[1].name")]
    [InlineData("serverName: mx1.example.com\nsmtp:\n  endpoint: 0.0.0.0:25\n maxHops: 3\n", 4, "(document)")]
    [InlineData("serverName: mx1.example.com\nminger:\n  retries: 2\n  retries: 3\n", 4, "minger.retries")]
    [InlineData("serverName: mx1.example.com\ndomainSharing:\n  verifiedCacheTtl: soon\n", 3, "domainSharing.verifiedCacheTtl")]
    public void A_broken_file_is_refused_with_file_line_and_field_and_never_overwritten(string yaml, int line, string field)
    {
        File.WriteAllText(ps.ConfigPath, yaml);
        foreach (var script in new[] { "Get-DomainSharePeer", "Add-DomainSharePeer b.example.net", "Set-DomainShareConfig -MingerGateway $true", "Get-DomainShareConfig" })
        {
            var r = ps.Run(script);
            var error = Assert.Single(r.Errors);
            Assert.StartsWith("InvalidConfiguration,", error.FullyQualifiedErrorId);
            Assert.Equal(System.Management.Automation.ErrorCategory.InvalidData, error.CategoryInfo.Category);
            var message = error.Exception.Message;
            Assert.Contains(ps.ConfigPath, message);
            Assert.Contains($"line {line}", message);
            Assert.Contains($"'{field}'", message);
            Assert.Equal(yaml, ps.ConfigText);
        }
    }

    [Fact]
    public void The_environment_variable_names_the_default_configuration()
    {
        // Runs in a child scope of this runspace only: $env: is process-wide, so restore it at once.
        var other = Path.Combine(ps.Directory, "other.yaml");
        var r = ps.Run($$"""
            $PSDefaultParameterValues.Clear()
            $old = $env:DOMAINSHARE_CONFIG
            try {
                $env:DOMAINSHARE_CONFIG = '{{other}}'
                (Initialize-DomainShare env.example.com).ConfigPath
            } finally { $env:DOMAINSHARE_CONFIG = $old }
            """).AssertSuccess();
        Assert.Equal(other, r.Output[0].BaseObject);
        Assert.Contains("serverName: env.example.com", File.ReadAllText(other));
    }

    [Fact]
    public void ConfigPath_is_resolved_through_the_powershell_location()
    {
        var r = ps.Run("""
            $PSDefaultParameterValues.Clear()
            $ExecutionContext.SessionState.Path.SetLocation($TestDir) | Out-Null
            (Initialize-DomainShare rel.example.com -ConfigPath ./sub/relative.yaml).ConfigPath
            """).AssertSuccess();
        Assert.Equal(Path.Combine(ps.Directory, "sub", "relative.yaml"), r.Output[0].BaseObject);
    }

    [Fact]
    public void The_engine_and_yamldotnet_load_in_the_module_private_context()
    {
        ps.Run("Initialize-DomainShare mx1.example.com").AssertSuccess();
        var r = ps.Run("""
            [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -in 'DomainShare.Engine','YamlDotNet' } |
                ForEach-Object { '{0}={1}' -f $_.GetName().Name, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name }
            """).AssertSuccess();
        var lines = r.Output.Select(o => (string)o.BaseObject).ToList();
        Assert.Contains("DomainShare.Engine=DomainShare.Dependencies", lines);
        Assert.Contains("YamlDotNet=DomainShare.Dependencies", lines);
    }
}
