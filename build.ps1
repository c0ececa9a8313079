<#
.SYNOPSIS
    Builds, tests and packages the DomainShare module.
.DESCRIPTION
    Tasks:
      Build    compiles the solution and stages the module under out/stage/<Configuration>/DomainShare.
      Test     runs every test (dotnet test), the same command CI runs.
      Package  stages a ready-to-copy module folder out/DomainShare/ (psd1, DomainShare.dll, Dependencies/, en-US/,
               format file) and the bundled host under out/domainshare/.
      Clean    removes out/ and the bin/obj folders.
    Uses only the engine's core cmdlets and .NET calls, so it runs under pwsh and under the bundled host alike:
      domainshare -File ./build.ps1 -Task Package
.EXAMPLE
    ./build.ps1 -Task Build, Test
.EXAMPLE
    ./build.ps1 -Task Package -Configuration Release
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Package', 'Clean')]
    [string[]] $Task = @('Build'),

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
$root = $PSScriptRoot
$out = [System.IO.Path]::Combine($root, 'out')
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:POWERSHELL_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'

function Write-Step([string] $Text) { [Console]::WriteLine("==> $Text") }

function Invoke-Dotnet {
    param([Parameter(ValueFromRemainingArguments)] [string[]] $Arguments)
    Write-Step "dotnet $($Arguments -join ' ')"
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments -join ' ') failed with exit code $LASTEXITCODE." }
}

function Copy-Folder([string] $From, [string] $To) {
    if ([System.IO.Directory]::Exists($To)) { [System.IO.Directory]::Delete($To, $true) }
    foreach ($file in [System.IO.Directory]::GetFiles($From, '*', [System.IO.SearchOption]::AllDirectories)) {
        $target = [System.IO.Path]::Combine($To, [System.IO.Path]::GetRelativePath($From, $file))
        [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($target))
        [System.IO.File]::Copy($file, $target, $true)
    }
}

foreach ($step in $Task) {
    switch ($step) {
        'Clean' {
            Write-Step 'Clean'
            if ([System.IO.Directory]::Exists($out)) { [System.IO.Directory]::Delete($out, $true) }
            foreach ($dir in [System.IO.Directory]::GetDirectories($root, '*', [System.IO.SearchOption]::AllDirectories)) {
                $name = [System.IO.Path]::GetFileName($dir)
                if (($name -eq 'bin' -or $name -eq 'obj') -and [System.IO.Directory]::Exists($dir) -and -not $dir.Contains('.git')) {
                    [System.IO.Directory]::Delete($dir, $true)
                }
            }
        }
        'Build' {
            Invoke-Dotnet build ([System.IO.Path]::Combine($root, 'DomainShare.sln')) -c $Configuration
        }
        'Test' {
            Invoke-Dotnet test ([System.IO.Path]::Combine($root, 'DomainShare.sln')) -c $Configuration
        }
        'Package' {
            Invoke-Dotnet build ([System.IO.Path]::Combine($root, 'src', 'DomainShare.Shell', 'DomainShare.Shell.csproj')) -c $Configuration
            $stage = [System.IO.Path]::Combine($out, 'stage', $Configuration, 'DomainShare')
            $module = [System.IO.Path]::Combine($out, 'DomainShare')
            Copy-Folder $stage $module
            $shell = [System.IO.Path]::Combine($root, 'src', 'DomainShare.Shell', 'bin', $Configuration, 'net10.0')
            Copy-Folder $shell ([System.IO.Path]::Combine($out, 'domainshare'))
            foreach ($required in 'DomainShare.psd1', 'DomainShare.dll', 'DomainShare.format.ps1xml',
                                  'Dependencies/DomainShare.Engine.dll', 'en-US/DomainShare.dll-Help.xml', 'en-US/about_DomainShare.help.txt') {
                if (-not [System.IO.File]::Exists([System.IO.Path]::Combine($module, $required))) { throw "Package is missing $required." }
            }
            Write-Step "Module staged in $module (copy it into a folder of `$env:PSModulePath); bundled host in $([System.IO.Path]::Combine($out, 'domainshare'))"
        }
    }
}
