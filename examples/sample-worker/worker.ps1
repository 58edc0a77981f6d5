<#
SAMPLE worker service for a winworkers fleet: an example to start from, not a product.
Replace job.ps1 with the platform's processing and keep this loop: it implements the
worker contract (docs/worker-contract.md):

- Watch: it reads the instance's target lifecycle state from instance metadata (IMDSv2)
  before each receive and every 5 seconds while a job runs, and takes messages only
  while it reads InService.
- Work: one message at a time, by long polling; the message stays invisible while its
  job runs (ChangeMessageVisibility renews it), and is deleted only after the job succeeded.
- Drain: when the state reads Terminated, or a Warmed: state after it has served (a
  scale-in back to the warm pool, WarmPool=stopped, which passes the same hook), it stops
  receiving and finishes the current job (or, if that cannot end within drain_seconds,
  stops it and makes the message visible again at once), then completes the termination
  lifecycle hook with CONTINUE. In the warm pool before it ever served (Warmed:Stopped at
  its first boot) it only waits: the instance is stopped, and this task starts again with
  the next boot.
- Spot: it also reads the instance's Spot signals (both 404 on On-Demand) at the same times.
  A rebalance recommendation: no new message; the current job goes on, and Auto Scaling
  (Capacity Rebalancing) launches a replacement, then terminates this instance through the
  drain above. An interruption notice (the instance is reclaimed two minutes after it
  appears, whatever a lifecycle hook says): no new message, and a job still running
  $InterruptionJobSeconds after the notice is stopped and its message made visible again
  at once, for another worker, before the instance is gone.
- Record: one line per job in jobs.log, beside its log, in CloudWatch's embedded metric format:
  the message's time in the queue (from its SentTimestamp), the time from the instance's launch
  (a pooled worker's start from the pool) to its first job, the job's duration and its outcome
  (succeeded, failed, given-up). The agent ships the file with the worker's logs, and CloudWatch
  Logs turns each record into the fleet's job metrics (docs/worker-contract.md, "Job records").

install.ps1 runs it as SYSTEM, from a scheduled task, with -ConfigPath C:\winworkers\worker.json.
#>
param([string]$ConfigPath = 'C:\winworkers\worker.json')

$ErrorActionPreference = 'Stop'
$Imds = 'http://169.254.169.254/latest'
# Seconds between two looks at the lifecycle state while a job runs.
$TickSeconds = 5
# A received message stays invisible this long; while its job runs the worker renews
# that every $RenewTicks ticks (a minute), so a long job keeps its message.
$VisibilitySeconds = 300
$RenewTicks = 12
# What a drain keeps back of drain_seconds to release a message and complete the hook.
$DrainMarginSeconds = 60
# How long a job may go on after a Spot interruption notice appeared, counted in ticks from
# the one before the worker first read it (so at most this long after EC2 gave it): of the
# notice's 120 seconds, 40 are left to stop the job and release its message
# (docs/worker-contract.md, "Spot").
$InterruptionJobSeconds = 80
# The CloudWatch agent's configuration, which cfn-init writes before the worker is installed.
$AgentConfigPath = 'C:\ProgramData\Amazon\AmazonCloudWatchAgent\winworkers.json'

function Write-Log($text) {
    Add-Content -Path $LogFile -Value ((Get-Date -Format o) + ' ' + $text)
}

function Get-Metadata($path) {
    $token = Invoke-RestMethod -Method Put -Uri ($Imds + '/api/token') -Headers @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '60' } -TimeoutSec 5
    return Invoke-RestMethod -Uri ($Imds + '/meta-data/' + $path) -Headers @{ 'X-aws-ec2-metadata-token' = $token } -TimeoutSec 5
}

# Milliseconds since 1970 (UTC), SentTimestamp's unit: now, or at an ISO 8601 time.
function Get-EpochMs($time) {
    if ($null -eq $time) {
        return [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()
    }
    return [DateTimeOffset]::Parse($time).ToUnixTimeMilliseconds()
}

# When this instance was launched, or started from the warm pool: the instance identity
# document's pendingTime (a start from the pool is a new one). If the metadata service does not
# answer, the worker's own start.
function Get-LaunchMs {
    try {
        $token = Invoke-RestMethod -Method Put -Uri ($Imds + '/api/token') -Headers @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '60' } -TimeoutSec 5
        $identity = Invoke-RestMethod -Uri ($Imds + '/dynamic/instance-identity/document') -Headers @{ 'X-aws-ec2-metadata-token' = $token } -TimeoutSec 5
        return Get-EpochMs $identity.pendingTime
    } catch {
        return Get-EpochMs
    }
}

# The job's record: one JSON line that CloudWatch Logs reads as embedded metric format. Every
# record carries the four figures; the launch-to-first-job one is a metric in the first job's
# record only. $first: this is the worker's first job since its launch, started at $firstStarted.
function Write-JobRecord($message, $started, $outcome, $first, $firstStarted) {
    $ended = Get-EpochMs
    $wait = $started - $message.Attributes['SentTimestamp']
    # SQS's clock and the instance's may disagree by a little: CloudWatch computes no percentile
    # of a metric with a negative value, so a wait below zero counts as none.
    if ($wait -lt 0) {
        $wait = 0
    }
    $launch = $firstStarted - $Launched
    $timing = '{"Name":"QueueWaitMilliseconds","Unit":"Milliseconds"},{"Name":"JobMilliseconds","Unit":"Milliseconds"}'
    if ($first) {
        $timing = $timing + ',{"Name":"LaunchToFirstJobMilliseconds","Unit":"Milliseconds"}'
    }
    $group = '"Dimensions":[["AutoScalingGroupName"]],"Metrics":[' + $timing + ']'
    $outcomes = '"Dimensions":[["AutoScalingGroupName","Outcome"]],"Metrics":[{"Name":"Jobs","Unit":"Count"}]'
    $directives = '{"Namespace":"' + $Namespace + '",' + $group + '},{"Namespace":"' + $Namespace + '",' + $outcomes + '}'
    $record = '{"_aws":{"Timestamp":' + $ended + ',"CloudWatchMetrics":[' + $directives + ']},' +
        '"AutoScalingGroupName":"' + $Config.lifecycle.group_name + '","Outcome":"' + $outcome + '",' +
        '"QueueWaitMilliseconds":' + $wait + ',"JobMilliseconds":' + ($ended - $started) + ',' +
        '"LaunchToFirstJobMilliseconds":' + $launch + ',"Jobs":1,"MessageId":"' + $message.MessageId + '"}'
    try {
        Add-Content -Path $JobLog -Value $record
    } catch {
        Write-Log ('writing the record of ' + $message.MessageId + ' failed: ' + $_)
    }
}

# InService, Terminated, ...; Unknown while the metadata service does not answer (no new work then).
function Get-LifecycleState {
    try {
        return Get-Metadata 'autoscaling/target-lifecycle-state'
    } catch {
        return 'Unknown'
    }
}

# 'interruption' (EC2 reclaims the instance two minutes after the notice), 'rebalance' (at
# elevated risk of interruption) or '' (neither, or an On-Demand instance: both answer 404).
# Read afresh each time: a signal that goes away lets the worker take work again.
function Get-SpotSignal {
    try {
        $null = Get-Metadata 'spot/instance-action'
        return 'interruption'
    } catch {
    }
    try {
        $null = Get-Metadata 'events/recommendations/rebalance'
        return 'rebalance'
    } catch {
    }
    return ''
}

# Leaving service, with the termination hook waiting: Terminated, or back to the warm pool.
function Test-Leaving($state) {
    return ($state -eq 'Terminated') -or ($state -like 'Warmed:*')
}

function Receive-Work {
    try {
        return Receive-SQSMessage -QueueUrl $Config.queue_url -MessageCount 1 -WaitTimeInSeconds 20 -VisibilityTimeout $VisibilitySeconds -AttributeName 'SentTimestamp' -Region $Config.region
    } catch {
        Write-Log ('receiving failed: ' + $_)
        Start-Sleep -Seconds $TickSeconds
        return $null
    }
}

function Set-Visibility($message, $seconds) {
    try {
        Edit-SQSMessageVisibility -QueueUrl $Config.queue_url -ReceiptHandle $message.ReceiptHandle -VisibilityTimeout $seconds -Region $Config.region -Force
    } catch {
        Write-Log ('changing the visibility of ' + $message.MessageId + ' failed: ' + $_)
    }
}

# Gives up a job that cannot end in time, and its message, which another worker takes at once.
function Stop-Work($job, $message, $limit) {
    Write-Log ('job ' + $message.MessageId + ' cannot end ' + $limit + ': stopped, message released')
    Stop-Job -Job $job
    Remove-Job -Job $job -Force
    Set-Visibility $message 0
}

# Runs one message's job to its end, renewing the message's visibility; while the instance
# drains, gives up the job (and the message) when it could not end within the drain. Returns
# the job's outcome: succeeded, failed or given-up.
function Invoke-Message($message) {
    Write-Log ('job ' + $message.MessageId + ' started')
    $job = Start-Job -FilePath (Join-Path $PSScriptRoot 'job.ps1') -ArgumentList $message.Body, $ConfigPath
    $ticks = 0
    $drainTicks = 0
    $spotTicks = 0
    while ($null -eq (Wait-Job -Job $job -Timeout $TickSeconds)) {
        $ticks = $ticks + 1
        # Once read, a drain counts on at every tick too: Auto Scaling does not take it back.
        if (($drainTicks -gt 0) -or (Test-Leaving (Get-LifecycleState))) {
            $drainTicks = $drainTicks + 1
            if ($drainTicks * $TickSeconds -ge $DrainLimit) {
                Stop-Work $job $message 'within the drain'
                return 'given-up'
            }
        }
        # Once read, a notice counts on at every tick: the reclaim comes whatever the metadata
        # answers next (a tick the metadata service does not answer must not stop the count).
        if (($spotTicks -gt 0) -or ((Get-SpotSignal) -eq 'interruption')) {
            $spotTicks = $spotTicks + 1
            if ($spotTicks * $TickSeconds -ge $InterruptionJobSeconds) {
                Stop-Work $job $message 'before the Spot interruption'
                return 'given-up'
            }
        }
        if ($ticks -ge $RenewTicks) {
            Set-Visibility $message $VisibilitySeconds
            $ticks = 0
        }
    }
    $state = $job.State
    Remove-Job -Job $job -Force
    if ($state -eq 'Completed') {
        Remove-SQSMessage -QueueUrl $Config.queue_url -ReceiptHandle $message.ReceiptHandle -Region $Config.region -Force
        Write-Log ('job ' + $message.MessageId + ' done')
        return 'succeeded'
    }
    # Not deleted: another worker gets it again (after maxReceiveCount, the dead-letter queue).
    Write-Log ('job ' + $message.MessageId + ' ended ' + $state + ': message released')
    Set-Visibility $message 0
    return 'failed'
}

# The drain's last step: Auto Scaling terminates the instance once the hook is completed.
# It tries until it succeeds; if it never does, the hook's timeout (drain_seconds) ends it.
function Complete-Drain {
    while ($true) {
        try {
            $instance = Get-Metadata 'instance-id'
            Complete-ASLifecycleAction -AutoScalingGroupName $Config.lifecycle.group_name -LifecycleHookName $Config.lifecycle.termination_hook -InstanceId $instance -LifecycleActionResult CONTINUE -Region $Config.region -Force
            Write-Log 'drained: the termination hook is completed'
            return
        } catch {
            Write-Log ('completing the termination hook failed: ' + $_)
            Start-Sleep -Seconds 30
        }
    }
}

function Invoke-Worker {
    Write-Log ('started, queue ' + $Config.queue_url)
    $spotSeen = ''
    # A Warmed: state before the first InService is a first boot into the warm pool: no hook waits.
    $served = $false
    $first = $true
    while ($true) {
        $state = Get-LifecycleState
        if (($state -eq 'Terminated') -or ($served -and (Test-Leaving $state))) {
            break
        }
        if ($state -ne 'InService') {
            Start-Sleep -Seconds $TickSeconds
            continue
        }
        $served = $true
        # A Spot instance at risk takes no new work; Auto Scaling terminates it through the drain.
        $spot = Get-SpotSignal
        if ($spot -ne '') {
            if ($spot -ne $spotSeen) {
                Write-Log ('Spot ' + $spot + ': no new work')
                $spotSeen = $spot
            }
            Start-Sleep -Seconds $TickSeconds
            continue
        }
        $message = Receive-Work
        if ($null -ne $message) {
            # The long poll may have begun before the state changed: no job starts after Terminated.
            if (Test-Leaving (Get-LifecycleState)) {
                Set-Visibility $message 0
                break
            }
            # Nor after a Spot signal: the message goes back at once.
            if ((Get-SpotSignal) -ne '') {
                Set-Visibility $message 0
                continue
            }
            $started = Get-EpochMs
            if ($first) {
                $firstStarted = $started
            }
            try {
                $outcome = Invoke-Message $message
                Write-JobRecord $message $started $outcome $first $firstStarted
            } catch {
                # Not deleted: SQS gives the message out again when its visibility timeout ends.
                Write-Log ('job ' + $message.MessageId + ' failed: ' + $_)
                Write-JobRecord $message $started 'failed' $first $firstStarted
                Start-Sleep -Seconds $TickSeconds
            }
            $first = $false
        }
    }
    Complete-Drain
}

$Config = Get-Content -Raw -Path $ConfigPath | ConvertFrom-Json
# The log goes beside the first of log_paths, which the CloudWatch agent ships to the
# worker log group (name it so that it matches that path's pattern).
$LogDir = Split-Path -Parent $Config.log_paths[0]
$LogFile = Join-Path $LogDir 'sample-worker.log'
$JobLog = Join-Path $LogDir 'jobs.log'
New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
# The job records' namespace is the fleet's: the one its CloudWatch agent publishes in.
$Namespace = (Get-Content -Raw -Path $AgentConfigPath | ConvertFrom-Json).metrics.namespace
$Launched = Get-LaunchMs
$DrainLimit = [int]$Config.lifecycle.drain_seconds - $DrainMarginSeconds
Invoke-Worker
exit 0
