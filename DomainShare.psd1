@{
    RootModule           = 'DomainShare.dll'
    ModuleVersion        = '0.1.0'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    GUID                 = '6f3c2b1e-8d4a-4c59-9b7e-2a1d5e0c7f41'
    Author               = 'DomainShare team'
    CompanyName          = 'DomainShare'
    Copyright            = '(c) DomainShare team. MIT licence.'
    Description          = 'Run one mail domain across several mail servers: peers, hosted domains, Minger lookups, duplicate-safe accounts and the relay engine.'
    FormatsToProcess     = @('DomainShare.format.ps1xml')
    CmdletsToExport      = @(
        'Initialize-DomainShare'
        'Get-DomainShareConfig'
        'Set-DomainShareConfig'
        'Add-DomainSharePeer'
        'Get-DomainSharePeer'
        'Set-DomainSharePeer'
        'Remove-DomainSharePeer'
        'Enable-DomainSharePeer'
        'Disable-DomainSharePeer'
        'Add-DomainShareDomain'
        'Get-DomainShareDomain'
        'Set-DomainShareDomain'
        'Remove-DomainShareDomain'
        'Start-DomainShareRelay'
        'Stop-DomainShareRelay'
        'Get-DomainShareRelay'
        'Resolve-DomainShareAddress'
        'Test-DomainSharePeer'
        'Get-DomainShareCache'
        'Clear-DomainShareCache'
        'New-DomainShareAccount'
        'Get-DomainShareAccount'
        'Set-DomainShareAccount'
        'Remove-DomainShareAccount'
        'Test-DomainShareConsistency'
        'Send-DomainShareTestMessage'
        'Get-DomainShareQueue'
        'Resume-DomainShareQueue'
        'Remove-DomainShareQueueMessage'
        'Get-DomainShareMxRecord'
        'Test-DomainShareMx'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('Mail', 'SMTP', 'Minger', 'DomainSharing', 'Linux', 'Windows')
            ProjectUri = 'https://example.invalid/domainshare'
        }
    }
}
