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
    Set-DomainSharePeer lyon.example.com -Secret 'fifteen-chars!!' -ErrorVariable weak -ErrorAction SilentlyContinue
    [Console]::WriteLine("  refused: $($weak[0].FullyQualifiedErrorId): $($weak[0].Exception.Message)")

    Say 'The disabled IPv6 peer goes away through the pipeline'
    Get-DomainSharePeer | Where-Object { -not $_.Enabled } | Remove-DomainSharePeer -Force
    Get-DomainSharePeer | Out-Default

    Say 'Settings: keep the verified-address cache for 2 days, turn the gateway option on'
    Set-DomainShareConfig -VerifiedCacheTtl 2d -MingerGateway $true -PassThru | Out-Default

    Say "The file on disk ($config), as an administrator would read it"
    [Console]::WriteLine([System.IO.File]::ReadAllText($config))
    $ok = $true
}
finally {
    if ($Keep) { [Console]::WriteLine("Kept $dir") }
    else { [System.IO.Directory]::Delete($dir, $true) }
    [Console]::WriteLine($(if ($ok) { 'QUICKSTART OK' } else { 'QUICKSTART FAILED' }))
}
