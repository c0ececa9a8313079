<#
.SYNOPSIS
    Creates accounts in bulk from a CSV file (Address, DisplayName and optional Quota columns) and writes a report.
.DESCRIPTION
    Each row becomes New-DomainShareAccount: every peer is asked first, so an address another office already has is
    refused, not duplicated. Bad rows are reported and the rest carry on. Exit code: 0 when every row was created,
    1 when some were refused, 2 when the file could not be read.

    Runs under the bundled host (which has no Import-Csv: the CSV is read with .NET) and under pwsh:
        domainshare -File import-accounts.ps1 -Path users.csv -ConfigPath /etc/domainshare/domainshare.yaml
.PARAMETER Path
    The CSV file: a header line, then one account a line. Fields may be quoted ("Smith, Ann").
.PARAMETER ReportPath
    Where to write the report (one line a row: created or refused, with the reason); none by default.
#>
param(
    [Parameter(Mandatory)] [string] $Path,
    [string] $ConfigPath,
    [string] $ReportPath
)

if ($ConfigPath) { $PSDefaultParameterValues['*-DomainShare*:ConfigPath'] = $ConfigPath }

function Split-CsvLine([string] $Line) {
    # RFC 4180 fields: commas separate, double quotes enclose, "" is a quote inside quotes.
    $fields = [System.Collections.Generic.List[string]]::new()
    $field = [System.Text.StringBuilder]::new()
    $quoted = $false
    for ($i = 0; $i -lt $Line.Length; $i++) {
        $c = $Line[$i]
        if ($quoted) {
            if ($c -eq '"' -and $i + 1 -lt $Line.Length -and $Line[$i + 1] -eq '"') { [void]$field.Append('"'); $i++ }
            elseif ($c -eq '"') { $quoted = $false }
            else { [void]$field.Append($c) }
        }
        elseif ($c -eq '"') { $quoted = $true }
        elseif ($c -eq ',') { $fields.Add($field.ToString()); [void]$field.Clear() }
        else { [void]$field.Append($c) }
    }
    $fields.Add($field.ToString())
    return , $fields.ToArray()
}

try { $lines = [System.IO.File]::ReadAllLines($Path) }
catch { [Console]::Error.WriteLine("Cannot read '$Path': $($_.Exception.Message)"); exit 2 }
if ($lines.Count -lt 1) { [Console]::Error.WriteLine("'$Path' is empty."); exit 2 }

$header = Split-CsvLine $lines[0]
# A Quota cell that is not a size is refused here: piped by property name, a value that does not convert is silently
# left unbound, and the account would be created without any quota.
$badQuota = [System.Collections.Generic.List[string]]::new()
$rowCount = 0
$rows = for ($n = 1; $n -lt $lines.Count; $n++) {
    if ([string]::IsNullOrWhiteSpace($lines[$n])) { continue }
    $rowCount++
    $values = Split-CsvLine $lines[$n]
    $row = [ordered]@{}
    for ($i = 0; $i -lt $header.Count; $i++) { $row[$header[$i].Trim()] = if ($i -lt $values.Count) { $values[$i].Trim() } else { '' } }
    if ($row['Quota'] -and $null -eq ($row['Quota'] -as [long])) {
        $badQuota.Add("refused  $($row['Address'])  InvalidQuota: '$($row['Quota'])' is not a quota: give a size in bytes (500MB, 2GB) or leave the cell empty for none.")
        continue
    }
    [pscustomobject]$row
}

$created = @($rows | New-DomainShareAccount -ErrorVariable refused -ErrorAction SilentlyContinue)
$report = [System.Collections.Generic.List[string]]::new()
foreach ($a in $created) { $report.Add("created  $($a.Address)") }
foreach ($e in $refused) { $report.Add("refused  $($e.TargetObject)  $($e.FullyQualifiedErrorId.Split(',')[0]): $($e.Exception.Message)") }
$report.AddRange($badQuota)
$refusedCount = @($refused).Count + $badQuota.Count
$summary = "$($created.Count) created, $refusedCount refused, from $rowCount row(s) of '$Path'."
$report.Add($summary)
if ($ReportPath) { [System.IO.File]::WriteAllLines($ReportPath, $report) }
foreach ($line in $report) { [Console]::WriteLine($line) }
if ($refusedCount -gt 0) { exit 1 }
