<#
SAMPLE install.ps1 for a winworkers fleet: an example to start from, not a product.

The artifact contract (docs/worker-contract.md): this file sits at the root of the
zip named by ArtifactBucket/ArtifactKey. cfn-init unpacks the zip into
C:\winworkers\service and runs, as SYSTEM:

    install.ps1 -ConfigPath 'C:\winworkers\worker.json'

A non-zero exit, or a terminating error, fails cfn-init and so the bootstrap: the
instance signals the failure, is abandoned, and Auto Scaling replaces it. So check
here whatever the worker needs, and fail loudly.

With a warm pool (WarmPool=stopped) the UserData runs it again, with the same
arguments, at every start from the pool: it is idempotent (Register-ScheduledTask
-Force replaces the task; Start-ScheduledTask leaves a running one alone, by the
default IgnoreNew), and a
non-zero exit then abandons the started instance instead of putting it in service.
#>
param([Parameter(Mandatory = $true)][string]$ConfigPath)

$ErrorActionPreference = 'Stop'
$TaskName = 'WinworkersSampleWorker'

# The worker reads these keys; a config without them is a broken bootstrap, not a worker that idles.
$config = Get-Content -Raw -Path $ConfigPath | ConvertFrom-Json
foreach ($key in @('region', 'queue_url', 'log_paths', 'lifecycle')) {
    if ($null -eq $config.$key) { throw "$ConfigPath has no $key" }
}

# The worker calls SQS and Auto Scaling with the AWS Tools for Windows PowerShell,
# which AWS Windows AMIs ship; fail the bootstrap now if an image lacks them.
Get-Command -Name 'Receive-SQSMessage', 'Edit-SQSMessageVisibility', 'Remove-SQSMessage', 'Complete-ASLifecycleAction' | Out-Null

# A PowerShell script cannot be a Windows service by itself (it does not answer the
# service control manager), so the worker runs as a scheduled task: as SYSTEM, from
# every boot, without a time limit (the worker itself catches a job's failure and
# goes on; RestartCount covers a task that fails to run).
$worker = Join-Path $PSScriptRoot 'worker.ps1'
$arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -File "{0}" -ConfigPath "{1}"' -f $worker, $ConfigPath
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
$trigger = New-ScheduledTaskTrigger -AtStartup
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) -StartWhenAvailable
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Force | Out-Null
Start-ScheduledTask -TaskName $TaskName
exit 0
