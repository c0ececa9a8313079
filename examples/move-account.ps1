<#
.SYNOPSIS
    Moves an account from one server to another without a moment in which its mail bounces.
.DESCRIPTION
    1. The account is created on the new server while the old one still has it (-MovingFrom: the old server's "exists"
       is expected; every other peer is still asked, so the address cannot exist anywhere else).
    2. The messages in the old Maildir are copied into the new one (cur/ and new/, names kept, so nothing is copied twice).
    3. The account is removed on the old server (its Maildir is kept as a backup unless -RemoveOldMailbox). From then
       on, mail reaching the old server for the address is resolved again and forwarded to the new server.
    4. A last copy picks up what arrived in the old Maildir during step 3.
    At no step is the address unknown to every server, so no sender ever gets a 550.

    Both configurations must be reachable from where it runs (the same machine, or a shared folder); across machines,
    run step 1 on the new server and steps 2-4 with the old Maildir mounted.
        domainshare -File move-account.ps1 -Address carl@example.com -FromConfig /srv/lyon/domainshare.yaml -ToConfig /srv/paris/domainshare.yaml
.PARAMETER OldServerPeerName
    The old server as the new server knows it (its peer name); by default the peer whose address matches the old
    server's SMTP endpoint, or its server name.
#>
param(
    [Parameter(Mandatory)] [string] $Address,
    [Parameter(Mandatory)] [string] $FromConfig,
    [Parameter(Mandatory)] [string] $ToConfig,
    [string] $OldServerPeerName,
    [switch] $RemoveOldMailbox
)

$ErrorActionPreference = 'Stop'

$old = Get-DomainShareAccount $Address -ConfigPath $FromConfig
if (-not $OldServerPeerName) {
    $from = Get-DomainShareConfig -ConfigPath $FromConfig
    $oldHost = $from.SmtpEndpoint.Substring(0, $from.SmtpEndpoint.LastIndexOf(':')).Trim('[', ']')
    $peer = Get-DomainSharePeer -ConfigPath $ToConfig | Where-Object { $_.Name.Trim('[', ']') -eq $oldHost -or $_.Name -eq $from.ServerName } | ForEach-Object Name
    if (-not $peer) { throw "The new server has no peer for the old one ($($from.ServerName), $oldHost): give -OldServerPeerName." }
    $OldServerPeerName = @($peer)[0]
}

function Copy-Maildir([string] $Source, [string] $Target) {
    $copied = 0
    foreach ($folder in 'cur', 'new') {
        $src = [System.IO.Path]::Combine($Source, $folder)
        if (-not [System.IO.Directory]::Exists($src)) { continue }
        foreach ($file in [System.IO.Directory]::GetFiles($src)) {
            $name = [System.IO.Path]::GetFileName($file)
            $dest = [System.IO.Path]::Combine($Target, $folder, $name)
            if ([System.IO.File]::Exists($dest)) { continue }
            # Write to tmp/ first, then rename: a Maildir reader never sees half a message.
            $tmp = [System.IO.Path]::Combine($Target, 'tmp', $name)
            [System.IO.File]::Copy($file, $tmp, $true)
            [System.IO.File]::Move($tmp, $dest)
            $copied++
        }
    }
    return $copied
}

[Console]::WriteLine("1. Creating $Address on the new server (moving from peer '$OldServerPeerName')")
# Everything the account has moves with it: display name, quota (none stays none), and a disabled account stays disabled.
$new = New-DomainShareAccount $old.Address -DisplayName $old.DisplayName -Quota $old.Quota -Disabled:(-not $old.Enabled) `
    -MovingFrom $OldServerPeerName -ConfigPath $ToConfig
[Console]::WriteLine("2. Copied $(Copy-Maildir $old.Maildir $new.Maildir) message(s) into $($new.Maildir)")
[Console]::WriteLine("3. Removing $Address on the old server")
Remove-DomainShareAccount $Address -Force -RemoveMailbox:$false -ConfigPath $FromConfig
# Let the old server's cache and deliveries settle, then copy what arrived meanwhile.
[System.Threading.Thread]::Sleep(500)
[Console]::WriteLine("4. Copied $(Copy-Maildir $old.Maildir $new.Maildir) late message(s)")
if ($RemoveOldMailbox) { [System.IO.Directory]::Delete($old.Maildir, $true) }
[Console]::WriteLine("Moved $Address.")
