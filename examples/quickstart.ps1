<#
.SYNOPSIS
    A first session with DomainShare: one server's configuration, its domains and its peers, in a throw-away folder.
.DESCRIPTION
    Runs with the bundled host (no pwsh needed) or with pwsh:
        dotnet run --project src/DomainShare.Shell -- -File examples/quickstart.ps1
        pwsh -File examples/quickstart.ps1        # with the module on $env:PSModulePath
    Uses only the engine's core cmdlets, DomainShare's cmdlets and .NET calls, so it runs anywhere the module does.
    Leaves nothing behind unless -Keep is given.
#>
param(
    # Keep the temporary folder (and its domainshare.yaml) for a look afterwards.
    [switch] $Keep
)

$ErrorActionPreference = 'Stop'
function Say([string] $Text) { [Console]::WriteLine(''); [Console]::WriteLine("# $Text") }

$dir = [System.IO.Directory]::CreateTempSubdirectory('domainshare-quickstart-').FullName
$config = [System.IO.Path]::Combine($dir, 'domainshare.yaml')
$PSDefaultParameterValues['*-DomainShare*:ConfigPath'] = $config
$ok = $false
try {
    Say "Paris office: a new configuration in $config"
    Initialize-DomainShare -ServerName paris.example.com -SmtpEndpoint 127.0.0.1:2525 -MingerEndpoint 127.0.0.1:4069 `
        -MingerSecret 'paris-minger-secret-2026' | Out-Default

    Say 'It hosts example.com, shared with the other offices, and example.org, kept to itself'
    Add-DomainShareDomain example.com -Shared
    Add-DomainShareDomain example.org
    Get-DomainShareDomain | Out-Default

    Say 'Its peers: Lyon on port 25, Nantes on 2525 (the port after the colon is SMTP; Minger stays on 4069)'
    # A secret can be a plain string: scripts and scheduled tasks need no ConvertTo-SecureString.
    Add-DomainSharePeer lyon.example.com -Secret 'lyon-minger-secret-2026'
    Add-DomainSharePeer nantes.example.com:2525 -Secret 'nantes-minger-secret-26'
    Add-DomainSharePeer '[2001:db8::25]' -Disabled
    Get-DomainSharePeer | Out-Default

    Say 'Adding Lyon again is refused (use -Force to replace it)'
    Add-DomainSharePeer lyon.example.com -ErrorVariable refused -ErrorAction SilentlyContinue
    [Console]::WriteLine("  refused: $($refused[0].FullyQualifiedErrorId)")

    Say 'A 15-character secret is refused too, and never printed'
    try { Set-DomainSharePeer lyon.example.com -Secret 'fifteen-chars!!' }
    catch { [Console]::WriteLine("  refused: $($_.FullyQualifiedErrorId): $($_.Exception.Message)") }

    Say 'The disabled IPv6 peer goes away through the pipeline'
    Get-DomainSharePeer | Where-Object { -not $_.Enabled } | Remove-DomainSharePeer -Force
    Get-DomainSharePeer | Out-Default

    Say 'Settings: keep the verified-address cache for 2 days, turn the gateway option on'
    Set-DomainShareConfig -VerifiedCacheTtl 2d -MingerGateway $true -PassThru | Out-Default

    Say "The file on disk ($config), readable by its owner only (secrets masked here)"
    [Console]::WriteLine(([System.IO.File]::ReadAllText($config) -replace "secret: '[^']*'", "secret: '********'"))

    Say 'Two servers on this machine talk Minger: Paris (UDP 40691) and Lyon (UDP 40692), each the other''s peer'
    $lyon = [System.IO.Path]::Combine($dir, 'lyon', 'domainshare.yaml')
    $null = Initialize-DomainShare lyon.example.com -ConfigPath $lyon -SmtpEndpoint 127.0.0.1:2526 `
        -MingerEndpoint 127.0.0.1:40692 -MingerSecret 'lyon-minger-secret-2026'
    Add-DomainShareDomain example.com -Shared -ConfigPath $lyon
    Add-DomainSharePeer 127.0.0.1:2525 -MingerPort 40691 -Secret 'paris-minger-secret-2026' -ConfigPath $lyon
    Set-DomainShareConfig -MingerEndpoint 127.0.0.1:40691 -MingerTimeout 500ms -MingerRetries 1
    Get-DomainSharePeer | Remove-DomainSharePeer -Force
    Add-DomainSharePeer 127.0.0.1:2526 -MingerPort 40692 -Secret 'lyon-minger-secret-2026'
    Start-DomainShareRelay -ConfigPath $lyon | Out-Default
    Start-DomainShareRelay | Out-Default

    Say 'Paris probes its peer: reachable, secret accepted, one round trip'
    Test-DomainSharePeer | Out-Default

    Say 'Where would mail go? Asked live from Lyon (nobody has these accounts yet), then a domain Paris does not host'
    Resolve-DomainShareAddress nobody@example.com, someone@elsewhere.net | Out-Default

    Say 'Lyon''s relay answered those queries: its counters (non-zero ones)'
    (Get-DomainShareRelay -ConfigPath $lyon).Counters.GetEnumerator() | Where-Object { $_.Value -gt 0 } | Out-Default

    Say 'Lyon stops: a lookup is now a temporary failure (451), never a "user unknown" (550)'
    Stop-DomainShareRelay -ConfigPath $lyon
    Resolve-DomainShareAddress nobody@example.com | Out-Default

    Say 'Paris''s relay stops too; nothing is left running'
    Stop-DomainShareRelay -PassThru | Out-Default
    $ok = $true
}
finally {
    # Leave nothing running, whatever happened above.
    foreach ($c in $config, [System.IO.Path]::Combine($dir, 'lyon', 'domainshare.yaml')) {
        if ([System.IO.File]::Exists($c) -and (Get-DomainShareRelay -ConfigPath $c).Running) { Stop-DomainShareRelay -ConfigPath $c }
    }
    if ($Keep) { [Console]::WriteLine("Kept $dir") }
    else { [System.IO.Directory]::Delete($dir, $true) }
    [Console]::WriteLine($(if ($ok) { 'QUICKSTART OK' } else { 'QUICKSTART FAILED' }))
}
