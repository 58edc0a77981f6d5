<#
SAMPLE job for a winworkers fleet: an example to start from, not a product. Replace it
with the platform's processing.

worker.ps1 runs it in a background job for each message, with the message body and the
path of worker.json. A terminating error fails the job: the message is not deleted and
comes back for another try (the queue's redrive policy moves it to a dead-letter queue
after its maxReceiveCount). Processing must be idempotent: a message whose worker was
terminated mid-job is processed again.

This one expects a body {"input_key": "...", "output_key": "..."}, keys under data_prefix,
and writes the input's SHA-256 to output_key.
#>
param([string]$Body, [string]$ConfigPath)

$ErrorActionPreference = 'Stop'
$config = Get-Content -Raw -Path $ConfigPath | ConvertFrom-Json
$request = $Body | ConvertFrom-Json
$work = Join-Path $env:TEMP ([guid]::NewGuid().ToString())
New-Item -ItemType Directory -Path $work | Out-Null
try {
    $input_file = Join-Path $work 'input'
    Read-S3Object -BucketName $config.data_bucket -Key ($config.data_prefix + $request.input_key) -File $input_file -Region $config.region | Out-Null
    $hash = (Get-FileHash -Path $input_file -Algorithm SHA256).Hash
    $result = @{ input_key = $request.input_key; sha256 = $hash } | ConvertTo-Json -Compress
    Write-S3Object -BucketName $config.data_bucket -Key ($config.data_prefix + $request.output_key) -Content $result -Region $config.region
} finally {
    Remove-Item -Recurse -Force -Path $work
}
