"""SSM-free bootstrap: cfn-init config sets and the PowerShell UserData that runs them.

The workers reach only S3, SQS, CloudFormation, CloudWatch, Logs and Auto Scaling,
so there is no Systems Manager: cfn-init (shipped on AWS Windows AMIs) reads this
metadata from CloudFormation through its VPC endpoint, cfn-signal reports the
result to the Auto Scaling group's CreationPolicy, and the UserData completes the
group's launch hook.
"""

from __future__ import annotations

from typing import Any

from troposphere import Base64, Ref, Sub
from troposphere.iam import Role

from winworkers.config import WorkersConfig
from winworkers.cwagent import CONFIG_PATH, AgentLogGroups, build_agent_config
from winworkers.parameters import Params

SERVICE_DIR = "C:\\winworkers\\service"
# The group's lifecycle hooks (compute.py declares them, the instance completes them).
LAUNCH_HOOK = "bootstrap"
DRAIN_HOOK = "drain"
# Windows first boots take 10-20 minutes, longer than short signal timeouts
# allow (aws-cdk #10429, #21359). The launch hook waits as long as the signal.
BOOT_TIMEOUT_SECONDS = 2700
SIGNAL_TIMEOUT = f"PT{BOOT_TIMEOUT_SECONDS // 60}M"
SERVICE_CONFIG = "C:\\winworkers\\worker.json"
CONFIG_SETS = ("harden", "agent", "service")
_CFN_BOOTSTRAP = "C:\\Program Files\\Amazon\\cfn-bootstrap"
_AGENT_DIR = "C:\\Program Files\\Amazon\\AmazonCloudWatchAgent"
# Bypass: install.ps1 arrives in a zip, and a script policy must not stop the bootstrap.
POWERSHELL = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command"


def _ps(script: str) -> dict[str, str]:
    """A cfn-init command running one PowerShell script; a non-zero exit fails cfn-init."""
    command = f"$ErrorActionPreference='Stop'; {script}"
    return {"command": f'{POWERSHELL} "{command}"', "waitAfterCompletion": "0"}


# Nothing listens and nothing answers, so nobody can log in:
# - Firewall on for every profile, inbound blocked, and AllowInboundRules False so
#   that the allow rules Windows ships enabled (RDP, WinRM, file sharing) are ignored
#   too (Set-NetFirewallProfile docs). The filter stays stateful: replies to what the
#   instance itself sends (DHCP, IMDS, the Amazon Time Sync Service, KMS activation,
#   the VPC endpoints) still pass, as "only locally-initiated traffic is allowed"
#   (INetFwPolicy2::BlockAllInboundTraffic docs).
# - RDP denied and its service, WinRM and the SSM Agent (preinstalled on AWS Windows
#   AMIs) stopped and disabled: with Default Host Management Configuration an account
#   can manage instances through the agent without any instance-profile permission.
#   A service an AMI lacks is not listening either, so a missing one is skipped.
HARDEN_COMMANDS = {
    "01-harden": _ps(
        "Set-NetFirewallProfile -All -Enabled True -DefaultInboundAction Block -AllowInboundRules False; "
        "Set-ItemProperty -Path 'HKLM:\\System\\CurrentControlSet\\Control\\Terminal Server' "
        "-Name fDenyTSConnections -Value 1; "
        "Get-Service 'TermService','WinRM','AmazonSSMAgent' -ErrorAction SilentlyContinue | "
        "ForEach-Object { Stop-Service $_.Name -Force; Set-Service $_.Name -StartupType Disabled }"
    ),
}

# The agent decides it runs on premises, and exits, when it starts before the
# instance metadata service answers (amazon-cloudwatch-agent #471, #803). So:
# wait for IMDSv2 before the first start, and on later boots (a reboot after
# maintenance or an update) start late and restart on failure.
WAIT_FOR_IMDS = (
    "$end = (Get-Date).AddMinutes(10); $imds = 'http://169.254.169.254/latest/'; while ($true) { try { "
    "$t = irm -Method Put -Uri ($imds + 'api/token') -Headers @{'X-aws-ec2-metadata-token-ttl-seconds'='60'} "
    "-TimeoutSec 5; irm -Uri ($imds + 'meta-data/instance-id') -Headers @{'X-aws-ec2-metadata-token'=$t} "
    "-TimeoutSec 5 | Out-Null; break } catch { if ((Get-Date) -gt $end) { exit 1 }; sleep 5 } }"
)


def agent_commands() -> dict[str, dict[str, str]]:
    """After cfn-init's ``packages`` step installed the agent (cfn-init runs packages,
    groups, users, sources, files, commands, services, in that order)."""
    ctl = f"& '{_AGENT_DIR}\\amazon-cloudwatch-agent-ctl.ps1'"
    return {
        "01-wait-for-imds": _ps(WAIT_FOR_IMDS),
        "02-start": _ps(f"{ctl} -a fetch-config -m ec2 -s -c file:'{CONFIG_PATH}'"),
        "03-start-late-and-retry": {
            "command": "sc.exe config AmazonCloudWatchAgent start= delayed-auto && "
            "sc.exe failure AmazonCloudWatchAgent reset= 86400 actions= restart/60000/restart/60000/restart/60000",
            "waitAfterCompletion": "0",
        },
    }


def group_name(config: WorkersConfig) -> str:
    """The group's name, as a ``Sub`` string. It is fixed, not a ``Ref``, so the
    instance role, the UserData and the worker config can name the group without
    a dependency cycle (the group depends on all three)."""
    return "${AWS::StackName}-" + config.logical_id("Workers")


def group_arn(config: WorkersConfig) -> Sub:
    """The group's ARN, from its fixed name: the roles that act on the group need
    no ``Ref`` to it (the instance role cannot have one: the group depends on it)."""
    return Sub(
        "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*"
        ":autoScalingGroupName/" + group_name(config)
    )


def worker_settings(p: Params) -> dict[str, Any]:
    """What the platform's install.ps1 reads from ``SERVICE_CONFIG``; ``lifecycle``
    is what the worker needs to drain (README, "Worker contract")."""
    return {
        "region": Ref("AWS::Region"),
        "queue_arn": p["WorkQueueArn"],
        "queue_url": Sub(
            "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${Account}/${Name}",
            Account=p.queue_account,
            Name=p.queue_name,
        ),
        "data_bucket": p["DataBucket"],
        "data_prefix": p["DataPrefix"],
        "log_paths": list(p.config.worker_log_paths),
        "lifecycle": {
            "group_name": Sub(group_name(p.config)),
            "termination_hook": DRAIN_HOOK,
            "drain_seconds": p["DrainSeconds"],
        },
    }


def init_metadata(p: Params, role: Role, log_groups: AgentLogGroups, asg_name: Any) -> dict[str, Any]:
    """The launch template's Metadata: cfn-init's config sets and S3 authentication."""
    agent_msi = Sub(
        "https://amazoncloudwatch-agent-${AWS::Region}.s3.${AWS::Region}.${AWS::URLSuffix}"
        "/windows/amd64/latest/amazon-cloudwatch-agent.msi"
    )
    artifact = Sub(
        "https://${Bucket}.s3.${AWS::Region}.${AWS::URLSuffix}/${Key}", Bucket=p["ArtifactBucket"], Key=p["ArtifactKey"]
    )
    install = f"& '{SERVICE_DIR}\\install.ps1' -ConfigPath '{SERVICE_CONFIG}'; exit $LASTEXITCODE"
    return {
        "AWS::CloudFormation::Authentication": {
            "WorkerArtifact": {"type": "S3", "roleName": Ref(role), "buckets": [p["ArtifactBucket"]]}
        },
        "AWS::CloudFormation::Init": {
            "configSets": {"default": list(CONFIG_SETS)},
            "harden": {"commands": HARDEN_COMMANDS},
            "agent": {
                # cfn-init downloads and installs the MSI, waits for the installer and
                # fails on its error (AWS::CloudFormation::Init docs, packages: msi);
                # msiexec as a command can return before the install is done.
                "packages": {"msi": {"amazon-cloudwatch-agent": agent_msi}},
                "files": {CONFIG_PATH: {"content": build_agent_config(p.config, log_groups, asg_name)}},
                "commands": agent_commands(),
            },
            "service": {
                "sources": {SERVICE_DIR: artifact},
                "files": {SERVICE_CONFIG: {"content": worker_settings(p)}},
                "commands": {"01-install": _ps(install)},
            },
        },
    }


def user_data(config: WorkersConfig, launch_template_id: str, asg_id: str) -> Base64:
    """Plain PowerShell, base64 but never gzipped: EC2Launch v2 rejects compressed
    user data (terraform-aws-github-runner #3736).

    The instance waits in Pending:Wait on the launch hook until this script ends it:
    CONTINUE only when cfn-init succeeded, then cfn-signal reports the result (so a
    hook that cannot be completed fails the signal too); on failure it signals, then
    ABANDONs, and Auto Scaling replaces the instance at once. A broken worker never
    goes in service, on creation, scale-out or refresh. An abandoned instance has no
    worker to drain, so the script also ends its drain hook, with ABANDON: that terminates
    it as CONTINUE does, unless RetainFailedBoots keeps it (winworkers.diagnostics;
    RetentionTriggers API reference). It runs once, at first
    boot (no <persist>): there is no warm pool whose instances would meet the launch
    hook again on a later start. Hooks are completed with the AWS Tools for Windows PowerShell,
    which every AWS Windows AMI ships (the AWS CLI is not listed), through the
    autoscaling endpoint."""
    imds = "http://169.254.169.254/latest"
    token = "@{'X-aws-ec2-metadata-token'=$t}"
    script = "\n".join(
        [
            "<powershell>",
            f"$b='{_CFN_BOOTSTRAP}'",
            "$c='--stack','${AWS::StackName}','--region','${AWS::Region}',"
            "'--url','https://cloudformation.${AWS::Region}.${AWS::URLSuffix}'",
            # 'Stop' is scoped to the function: its errors reach the caller's catch.
            f"function Hook($r, $h) {{ $ErrorActionPreference='Stop'; $u='{imds}'; "
            "$t=irm -Method Put \"$u/api/token\" -Headers @{'X-aws-ec2-metadata-token-ttl-seconds'='60'}; "
            f"Complete-ASLifecycleAction -AutoScalingGroupName '{group_name(config)}' -LifecycleHookName $h "
            f'-InstanceId (irm "$u/meta-data/instance-id" -Headers {token}) -LifecycleActionResult $r '
            "-Region ${AWS::Region} -Force }",
            # For a hook that may not be waiting yet when the script starts.
            "function Retry($r, $h) { foreach ($i in 1..10) { try { Hook $r $h; return } catch { sleep 30 } } }",
            "$code=1",
            f'try {{ & "$b\\cfn-init.exe" -v @c --resource {launch_template_id} --configsets default; '
            "$code=$LASTEXITCODE } catch { $_ }",
            f"if ($code -eq 0) {{ try {{ Hook CONTINUE {LAUNCH_HOOK} }} catch {{ $_; $code=1 }} }}",
            f'& "$b\\cfn-signal.exe" -e $code @c --resource {asg_id}',
            f"if ($code -ne 0) {{ try {{ Hook ABANDON {LAUNCH_HOOK} }} catch {{ $_ }}; Retry ABANDON {DRAIN_HOOK} }}",
            "</powershell>",
        ]
    )
    return Base64(Sub(script))
