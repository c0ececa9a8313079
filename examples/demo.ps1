<#
.SYNOPSIS
    One domain across three mail servers, end to end, on this machine: the DomainShare demo.
.DESCRIPTION
    Builds a realistic scene on loopback in a temporary folder: three servers - Paris (127.42.0.2), Lyon (127.42.0.3)
    and Nantes (127.42.0.4) - share example.com; Paris also hosts paris-office.org, which it does not share. Each server
    knows the other two as peers, with Minger secrets. Accounts are created on each (one creation is refused because
    another office already has the address), the relays start, a test message goes to every user through every
    server, and a table shows who received what where. Then Lyon stops: a new address gets 451 (try later), a message
    for a known Lyon user waits in the queue and arrives when Lyon is back. Everything is stopped and removed at the end.

    Runs with the bundled host (no pwsh needed) or with pwsh:
        dotnet run --project src/DomainShare.Shell -- -File examples/demo.ps1
    Uses only the engine's core cmdlets, DomainShare's cmdlets and .NET calls. Linux routes all of 127.0.0.0/8 to
    the loopback interface; elsewhere add 127.42.0.2-4 to it first.
.PARAMETER Keep
    Keep the temporary folder (configurations, Maildirs, logs) for a look afterwards.
#>
param([switch] $Keep)

$ErrorActionPreference = 'Stop'
function Say([string] $Text) { [Console]::WriteLine(''); [Console]::WriteLine("== $Text") }
function Note([string] $Text) { [Console]::WriteLine("   $Text") }

$root = [System.IO.Directory]::CreateTempSubdirectory('domainshare-demo-').FullName
$servers = [ordered]@{
    paris  = @{ Name = 'paris.example.com';  Ip = '127.42.0.2'; Secret = 'paris-minger-secret-2026';  Users = 'ann', 'bruno' }
    lyon   = @{ Name = 'lyon.example.com';   Ip = '127.42.0.3'; Secret = 'lyon-minger-secret-2026';   Users = 'carl', 'dana' }
    nantes = @{ Name = 'nantes.example.com'; Ip = '127.42.0.4'; Secret = 'nantes-minger-secret-2026'; Users = 'emma' }
}
foreach ($key in $servers.Keys) { $servers[$key].Config = [System.IO.Path]::Combine($root, $key, 'domainshare.yaml') }
$smtpPort = 2525
$mingerPort = 4069
$ok = $false

try {
    Say "Three servers share example.com, in $root"
    foreach ($key in $servers.Keys) {
        $s = $servers[$key]
        $null = Initialize-DomainShare $s.Name -ConfigPath $s.Config -SmtpEndpoint "$($s.Ip):$smtpPort" `
            -MingerEndpoint "$($s.Ip):$mingerPort" -MingerSecret $s.Secret
        # Short timeouts and retries: a demo should not wait minutes for a server that is down.
        Set-DomainShareConfig -ConfigPath $s.Config -MingerTimeout 500ms -MingerRetries 1 -QueueRetryInterval 2s
        Add-DomainShareDomain example.com -Shared -ConfigPath $s.Config
        foreach ($other in $servers.Keys) {
            if ($other -eq $key) { continue }
            $o = $servers[$other]
            # The peer's name is its address here; the SMTP port follows the colon. We sign our queries with the
            # secret the peer expects.
            Add-DomainSharePeer "$($o.Ip):$smtpPort" -MingerPort $mingerPort -Secret $o.Secret -ConfigPath $s.Config
        }
    }
    Add-DomainShareDomain paris-office.org -ConfigPath $servers.paris.Config
    Note 'Paris also hosts paris-office.org, not shared: its mail stays in Paris.'
    Get-DomainSharePeer -ConfigPath $servers.paris.Config | Out-Default

    Say 'The relays start (Minger on UDP 4069, SMTP on 2525, each on its own address)'
    foreach ($key in $servers.Keys) { $null = Start-DomainShareRelay -ConfigPath $servers[$key].Config }
    $servers.Keys | ForEach-Object { Get-DomainShareRelay -ConfigPath $servers[$_].Config } | Out-Default

    Say 'Each office creates its accounts; every creation asks the two other offices first'
    foreach ($key in $servers.Keys) {
        foreach ($user in $servers[$key].Users) {
            $null = New-DomainShareAccount "$user@example.com" -DisplayName $user -ConfigPath $servers[$key].Config
        }
    }
    $null = New-DomainShareAccount 'boss@paris-office.org' -ConfigPath $servers.paris.Config
    $servers.Keys | ForEach-Object { Get-DomainShareAccount -ConfigPath $servers[$_].Config } | Out-Default

    Say 'Nantes tries to create carl@example.com too: refused, Lyon already has him'
    try { $null = New-DomainShareAccount 'carl@example.com' -ConfigPath $servers.nantes.Config }
    catch { Note "$($_.FullyQualifiedErrorId.Split(',')[0]): $($_.Exception.Message)" }

    Say 'A test message to every user through every server'
    $users = @(foreach ($key in $servers.Keys) { foreach ($u in $servers[$key].Users) { "$u@example.com" } }) + 'boss@paris-office.org'
    $sent = foreach ($key in $servers.Keys) {
        Send-DomainShareTestMessage $users -Server "$($servers[$key].Ip):$smtpPort" -From 'demo@example.org' -ConfigPath $servers[$key].Config |
            ForEach-Object { [pscustomobject]@{ Via = $key; To = $_.To; Reply = $_.Reply.Split(' ')[0..1] -join ' '; Ms = [int]$_.Latency.TotalMilliseconds } }
    }
    $sent | Where-Object { $_.Reply -notlike '2.0.0*' } | Out-Default
    Note "$(@($sent | Where-Object { $_.Reply -like '2.0.0*' }).Count) of $(@($sent).Count) accepted; boss@paris-office.org is refused by Lyon and Nantes (5.7.1): they do not host that domain."

    $r = Send-DomainShareTestMessage 'nobody@example.com' -Server "$($servers.nantes.Ip):$smtpPort" -ConfigPath $servers.nantes.Config
    Note "An address no office has, through Nantes: $($r.StatusCode) $($r.Reply) (Nantes asked Paris and Lyon in parallel)."

    Say 'Who received what, where (messages in each Maildir new/ folder, after delivery)'
    $deadline = [DateTime]::UtcNow.AddSeconds(20)
    do {
        [System.Threading.Thread]::Sleep(250)
        $pending = 0
        foreach ($key in $servers.Keys) { $pending += @(Get-DomainShareQueue -ConfigPath $servers[$key].Config).Count }
    } while ($pending -gt 0 -and [DateTime]::UtcNow -lt $deadline)
    $table = foreach ($key in $servers.Keys) {
        foreach ($account in Get-DomainShareAccount -ConfigPath $servers[$key].Config) {
            $new = [System.IO.Path]::Combine($account.Maildir, 'new')
            [pscustomobject]@{ Mailbox = $account.Address; Server = $key; Messages = [System.IO.Directory]::GetFiles($new).Count }
        }
    }
    $table | Out-Default
    $expected = @{}
    foreach ($u in $users) { $expected[$u] = if ($u -like '*@paris-office.org') { 1 } else { 3 } }
    $wrong = @($table | Where-Object { $_.Messages -ne $expected[$_.Mailbox] })
    if ($wrong.Count -gt 0) { throw "Unexpected mailbox contents: $(($wrong | ForEach-Object { "$($_.Mailbox)=$($_.Messages)" }) -join ', ')" }
    Note 'Every example.com user got 3 messages (one through each server); boss@paris-office.org got the one Paris accepted.'

    Say 'Lyon goes down'
    Stop-DomainShareRelay -ConfigPath $servers.lyon.Config
    $r = Send-DomainShareTestMessage 'newcomer@example.com' -Server "$($servers.paris.Ip):$smtpPort" -ConfigPath $servers.paris.Config
    Note "An address Paris has never seen: $($r.StatusCode) $($r.Reply) - Lyon might have it, so the sender must try later."
    $r = Send-DomainShareTestMessage 'carl@example.com' -Server "$($servers.paris.Ip):$smtpPort" -Subject 'Sent while Lyon was down' -ConfigPath $servers.paris.Config
    Note "carl@example.com (Paris knows from its cache that Lyon has him): $($r.StatusCode) $($r.Reply)"
    [System.Threading.Thread]::Sleep(1000)
    Get-DomainShareQueue -ConfigPath $servers.paris.Config | ForEach-Object {
        [pscustomobject]@{ Id = $_.Id; To = $_.Recipients -join ','; Waiting = $_.Destinations -join ','; Attempts = $_.Attempts; LastError = $_.LastError } } | Out-Default

    Say 'Lyon comes back; Paris is told to retry now'
    $null = Start-DomainShareRelay -ConfigPath $servers.lyon.Config
    Resume-DomainShareQueue -ConfigPath $servers.paris.Config
    $carl = Get-DomainShareAccount carl@example.com -ConfigPath $servers.lyon.Config
    $deadline = [DateTime]::UtcNow.AddSeconds(20)
    while ([System.IO.Directory]::GetFiles([System.IO.Path]::Combine($carl.Maildir, 'new')).Count -lt 4 -and [DateTime]::UtcNow -lt $deadline) {
        [System.Threading.Thread]::Sleep(250)
    }
    $count = [System.IO.Directory]::GetFiles([System.IO.Path]::Combine($carl.Maildir, 'new')).Count
    if ($count -ne 4) { throw "carl@example.com has $count messages in Lyon, expected 4." }
    Note "carl@example.com now has $count messages in Lyon: the one sent while Lyon was down arrived. Paris's queue: $(@(Get-DomainShareQueue -ConfigPath $servers.paris.Config).Count) message(s)."
    $ok = $true
}
finally {
    Say 'Stopping everything'
    foreach ($key in $servers.Keys) {
        $c = $servers[$key].Config
        try { if ([System.IO.File]::Exists($c) -and (Get-DomainShareRelay -ConfigPath $c).Running) { Stop-DomainShareRelay -ConfigPath $c } }
        catch { Note "Could not stop ${key}: $($_.Exception.Message)" }
    }
    if ($Keep) { Note "Kept $root" } else { [System.IO.Directory]::Delete($root, $true) }
    [Console]::WriteLine('')
    [Console]::WriteLine($(if ($ok) { 'DEMO OK: one domain, three servers, every message where it belongs.' } else { 'DEMO FAILED' }))
}
if (-not $ok) { exit 1 }
