<#
.SYNOPSIS
    The nightly health check of one DomainShare server: peers reachable with their secrets, no address on two servers,
    the relay running, nothing stuck in the queue. Writes a report; exit code 0 when all is well, 1 otherwise.
.DESCRIPTION
    Schedule it with cron (Linux), a systemd timer, or Windows Task Scheduler; it needs no pwsh:
        # crontab: every night at 02:30
        30 2 * * *  /opt/domainshare/domainshare -File /opt/domainshare/examples/nightly-check.ps1 -ReportPath /var/log/domainshare/nightly.txt
        # Task Scheduler (action):
        pwsh.exe -NoProfile -File C:\DomainShare\examples\nightly-check.ps1 -ReportPath C:\DomainShare\nightly.txt
    A monitoring system can alert on the exit code or on the "STATUS:" line of the report.
.PARAMETER QueueAgeLimit
    A queued message older than this is reported (default 1 hour).
#>
param(
    [string] $ConfigPath,
    [string] $ReportPath,
    [TimeSpan] $QueueAgeLimit = [TimeSpan]::FromHours(1)
)

if ($ConfigPath) { $PSDefaultParameterValues['*-DomainShare*:ConfigPath'] = $ConfigPath }
$report = [System.Collections.Generic.List[string]]::new()
$problems = 0
function Add-Line([string] $Text) { $report.Add($Text) }

# A check that cannot run is a problem too: every cmdlet's errors are collected into $failed and reported below, so a
# broken configuration or store never ends in "STATUS: OK".
$config = Get-DomainShareConfig -ErrorVariable +failed
Add-Line "DomainShare nightly check of $($config.ServerName) at $([DateTimeOffset]::UtcNow.ToString('u'))"

$relay = Get-DomainShareRelay -ErrorVariable +failed
if ($relay.Running) { Add-Line "relay     running, process $($relay.ProcessId), up $($relay.Uptime.ToString('d\.hh\:mm'))" }
else { Add-Line 'relay     NOT RUNNING'; $problems++ }

foreach ($peer in Test-DomainSharePeer -ErrorVariable +failed) {
    if ($peer.Passed) { Add-Line ("peer      {0} ok ({1:N1} ms)" -f $peer.Name, $peer.RoundTrip.TotalMilliseconds) }
    elseif (-not $peer.Enabled) { Add-Line "peer      $($peer.Name) disabled: $($peer.Error)" }
    else { Add-Line "peer      $($peer.Name) FAILED: $($peer.Error)"; $problems++ }
}

foreach ($finding in Test-DomainShareConsistency -ErrorVariable +failed) {
    if ($finding.Conflict) { Add-Line "conflict  $($finding.Address) also exists on $($finding.Peer)"; $problems++ }
    else { Add-Line "unchecked $($finding.Address) on $($finding.Peer): $($finding.Detail)"; $problems++ }
}

$now = [DateTimeOffset]::UtcNow
foreach ($message in Get-DomainShareQueue -ErrorVariable +failed) {
    if ($now - $message.Created -gt $QueueAgeLimit) {
        Add-Line "queue     $($message.Id) for $($message.Recipients -join ', ') waiting since $($message.Created.ToString('u')): $($message.LastError)"
        $problems++
    }
}

foreach ($e in $failed) {
    # A non-terminating error comes as its ErrorRecord, a terminating one as the exception that carries it.
    $record = if ($e -is [System.Management.Automation.ErrorRecord]) { $e } elseif ($e -is [System.Management.Automation.IContainsErrorRecord]) { $e.ErrorRecord }
    $what = if ($record) { "$($record.FullyQualifiedErrorId.Split(',')[0]): $($record.Exception.Message)" } else { $e.Message }
    Add-Line "error     $($what -replace '\s+', ' ')"
    $problems++
}

Add-Line $(if ($problems -eq 0) { 'STATUS: OK' } else { "STATUS: $problems PROBLEM(S)" })
if ($ReportPath) { [System.IO.File]::WriteAllLines($ReportPath, $report) }
foreach ($line in $report) { [Console]::WriteLine($line) }
if ($problems -gt 0) { exit 1 }
