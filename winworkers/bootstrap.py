"""SSM-free bootstrap: cfn-init config sets and the PowerShell UserData that runs them.

The workers reach only S3, SQS, CloudFormation, CloudWatch, Logs and Auto Scaling,
so there is no Systems Manager: cfn-init (shipped on AWS Windows AMIs) reads this
metadata from CloudFormation through its VPC endpoint, cfn-signal reports the
result to the Auto Scaling group's CreationPolicy, and the UserData completes the
group's launch hook.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from troposphere import Base64, If, NoValue, Ref, Sub, encode_to_dict
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
# A config set's last command touches its mark; the UserData reads the marks' times
# for the boot timings (BOOT_PHASES). The service set ends with cfn-init itself.
# cfn-init's own folder (its logs are in C:\cfn\log), there before the first command runs.
BOOT_MARKS = "C:\\cfn\\boot-"
RETRY_MINUTES = 5
"""How long the UserData retries completing a lifecycle hook: well inside the launch
hook's 45 minutes, which began at launch, before Windows booted and cfn-init ran."""
# Every time is local (Get-Date, LastWriteTime, and [datetime] converts pendingTime's UTC
# "Z" time to local), so the differences are right in any time zone the AMI sets.
# (metric, from, to) in the feature's namespace, seconds, fleet-wide: launch is the
# instance's pendingTime (instance identity document), userdata when the script
# starts, harden and agent their config sets' marks, service cfn-init's end, hook the
# launch hook's completion (CONTINUE) after any retries. BootTotal is the scale-out
# latency: from launch to in service.
BOOT_PHASES: tuple[tuple[str, str, str], ...] = (
    ("BootToUserData", "launch", "userdata"),
    ("BootHarden", "userdata", "harden"),
    ("BootAgent", "harden", "agent"),
    ("BootService", "agent", "service"),
    ("BootHook", "service", "hook"),
    ("BootTotal", "launch", "hook"),
)
BOOT_TOTAL_METRIC = "BootTotal"
POOL_START_METRIC = "BootFromPool"
"""Warm pool mode: a start from the pool publishes this one timing instead, from the start
(its pendingTime) to in service; the phases are the first boot's, weeks ago."""
# The UserData's variable for each moment (short: the template is near its size limit).
BOOT_TIMES = {moment: f"$t{n}" for n, moment in enumerate(("launch", "userdata", "harden", "agent", "service", "hook"))}
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
def _mark(config_set: str) -> dict[str, str]:
    """The last command of a config set (cfn-init runs them in name order): write its mark,
    through cmd.exe, which is cheaper in template bytes than a PowerShell command."""
    return {"command": f"echo.>{BOOT_MARKS}{config_set}", "waitAfterCompletion": "0"}


HARDEN_COMMANDS = {
    "01-harden": _ps(
        "Set-NetFirewallProfile -All -Enabled True -DefaultInboundAction Block -AllowInboundRules False; "
        "Set-ItemProperty -Path 'HKLM:\\System\\CurrentControlSet\\Control\\Terminal Server' "
        "-Name fDenyTSConnections -Value 1; "
        "Get-Service 'TermService','WinRM','AmazonSSMAgent' -ErrorAction SilentlyContinue | "
        "ForEach-Object { Stop-Service $_.Name -Force; Set-Service $_.Name -StartupType Disabled }"
    ),
    "99-mark": _mark("harden"),
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
        "99-mark": _mark("agent"),
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


@dataclass(frozen=True)
class WorkerSetting:
    """One key of worker.json (one row of WORKER_SETTINGS), said once: its value in the template and
    what it means to the worker (docs/worker-contract.md's table is generated from the rows).

    ``value`` is a parameter's name (its Ref), or a function of the Params; an object's row has none,
    and the rows under it follow it, their keys dotted (``lifecycle.drain_seconds``)."""

    key: str
    meaning: str
    value: str | Callable[[Params], Any] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)*", self.key):
            raise ValueError(f"WorkerSetting.key={self.key!r}: snake_case names, dotted under an object")
        if not self.meaning:
            raise ValueError(f"WorkerSetting.meaning is empty ({self.key}): say what it means to the worker")

    def of(self, p: Params) -> Any:
        """The value as the template declares it."""
        return p[self.value] if isinstance(self.value, str) else self.value(p) if self.value else {}


def _queue_url(p: Params) -> Any:
    return Sub(
        "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${Account}/${Name}", Account=p.queue_account, Name=p.queue_name
    )


WORKER_SETTINGS: tuple[WorkerSetting, ...] = (
    WorkerSetting(
        "region", "The stack's Region: the Region of every AWS call the worker makes.", lambda p: Ref("AWS::Region")
    ),
    WorkerSetting("queue_arn", "The work queue's ARN.", "WorkQueueArn"),
    WorkerSetting(
        "queue_url", "The work queue's URL, for ReceiveMessage, ChangeMessageVisibility and DeleteMessage.", _queue_url
    ),
    WorkerSetting(
        "data_bucket", "The platform's bucket, which the role may read and write under `data_prefix`.", "DataBucket"
    ),
    WorkerSetting("data_prefix", "The key prefix the role may use in `data_bucket` (ends in `/`).", "DataPrefix"),
    WorkerSetting(
        "log_paths",
        "Log files the CloudWatch agent ships to the worker log group: write the worker's logs there.",
        lambda p: list(p.config.worker_log_paths),
    ),
    WorkerSetting("lifecycle", "What the worker needs to drain (docs/worker-contract.md)."),
    WorkerSetting(
        "lifecycle.group_name",
        "The Auto Scaling group's name, for CompleteLifecycleAction.",
        lambda p: Sub(group_name(p.config)),
    ),
    WorkerSetting(
        "lifecycle.termination_hook", "The termination hook's name, for CompleteLifecycleAction.", lambda p: DRAIN_HOOK
    ),
    WorkerSetting(
        "lifecycle.drain_seconds",
        "How long the drain may take (the hook's HeartbeatTimeout), in seconds, as a string.",
        "DrainSeconds",
    ),
)
"""worker.json, key by key, in its order: what the platform's install.ps1 reads from SERVICE_CONFIG."""


def worker_settings(p: Params) -> dict[str, Any]:
    """What the platform's install.ps1 reads from ``SERVICE_CONFIG`` (WORKER_SETTINGS); ``lifecycle``
    is what the worker needs to drain (docs/worker-contract.md)."""
    settings: dict[str, Any] = {}
    for row in WORKER_SETTINGS:
        *parents, key = row.key.split(".")
        under = settings
        for parent in parents:
            if not isinstance(under.get(parent), dict):
                raise ValueError(f"WorkerSetting.key={row.key!r}: its object {parent!r} is not a row before it")
            under = under[parent]
        under[key] = row.of(p)
    return settings


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


BAKED_SETS = {"agent": "bakedagent", "service": "bakedservice"}
"""ImageSource=baked: the config sets that replace agent and service, without their installs (the
image has the agent and the artifact, winworkers.image); harden is the same."""


def baked_init(metadata: dict[str, Any]) -> dict[str, Any]:
    """The config sets of a boot on the baked image, from metadata's (init_metadata): harden as it
    is; the agent's config and start without the MSI (packages); worker.json and install.ps1 without
    the download (sources): install.ps1 runs again, idempotent, as at a start from a warm pool."""
    init = metadata["AWS::CloudFormation::Init"]
    agent = {k: v for k, v in init["agent"].items() if k != "packages"}
    service = {k: v for k, v in init["service"].items() if k != "sources"}
    sets = [BAKED_SETS.get(name, name) for name in CONFIG_SETS]
    return {"baked": sets, BAKED_SETS["agent"]: agent, BAKED_SETS["service"]: service}


def with_baked(metadata: dict[str, Any], baked: str) -> dict[str, Any]:
    """The launch template's Metadata: metadata, and under condition baked the baked config sets, each
    an Fn::If whose other branch is AWS::NoValue, so without the image the Metadata is metadata."""
    init = metadata["AWS::CloudFormation::Init"]
    extra = baked_init(metadata)
    configsets = {**init["configSets"], "baked": If(baked, extra.pop("baked"), NoValue)}
    optional = {name: If(baked, value, NoValue) for name, value in extra.items()}
    return {**metadata, "AWS::CloudFormation::Init": {**init, "configSets": configsets, **optional}}


def baked_metadata(metadata: dict[str, Any], image: Any) -> dict[str, Any]:
    """What a baked boot is configured with, for its config line (config_line): metadata with the baked
    config sets, and the first image's id, so that a new image makes a new launch template version."""
    init = metadata["AWS::CloudFormation::Init"]
    extra = baked_init(metadata)
    configsets = {**init["configSets"], "baked": extra.pop("baked")}
    return {**metadata, "AWS::CloudFormation::Init": {**init, "configSets": configsets, **extra}, "Image": image}


# Intrinsics whose value is a function of their arguments alone; any other (Fn::If,
# Fn::FindInMap, Fn::ImportValue ...) depends on something the config line cannot see.
_PURE = {"Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::Base64"}
_SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")


def metadata_inputs(metadata: Any) -> set[str]:
    """The deploy-time inputs of the launch template's Metadata, as ``Fn::Sub`` names: each
    parameter or resource it ``Ref``s (``Name``) or ``Fn::GetAtt``s (``Name.Attribute``),
    directly or inside a ``Fn::Sub``; pseudo parameters (``AWS::...``) cannot change in an
    update. ValueError on an intrinsic whose value depends on more than its arguments."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            intrinsics = [k for k in node if k == "Ref" or k.startswith("Fn::") or k == "Condition"]
            if len(node) == 1 and intrinsics:
                (name,) = intrinsics
                if name not in _PURE:
                    raise ValueError(f"{name} in the launch template's Metadata: its value cannot reach the UserData")
                value = node[name]
                if name == "Ref":
                    found.add(value)
                elif name == "Fn::GetAtt":
                    found.add(".".join(value) if isinstance(value, list) else value)
                elif name == "Fn::Sub":
                    text, variables = (value, {}) if isinstance(value, str) else value
                    walk(list(variables.values()))
                    found.update(n for n in _SUB_NAME.findall(text) if n not in variables)
                else:
                    walk(value)
            else:
                for item in node.values():
                    walk(item)

    walk(metadata)
    return {name for name in found if not name.startswith("AWS::")}


def config_line(metadata: dict[str, Any]) -> str:
    """A PowerShell comment that changes whenever anything an instance is configured with
    changes, so that the launch template data changes, CloudFormation makes a new launch
    template version, and the workers are replaced (docs/lifecycle.md).

    cfn-init reads the Metadata at first boot only (there is no cfn-hup), and a change of
    Metadata alone leaves LaunchTemplateData, and so the version, as it was. The line holds
    a digest of the Metadata as built (commands, files, the agent config, the config's log
    paths and namespace), and, through ``Fn::Sub``, the resolved value of every input the
    Metadata reads at deploy time (``metadata_inputs``): a digest computed here could not
    see a parameter's new value. With the default config those inputs are WorkQueueArn,
    DataBucket, DataPrefix, DrainSeconds, ArtifactBucket and ArtifactKey, and the names of
    the instance role and the two log groups. A stack update that changes any of them (or
    a rebuild whose Metadata differs: worker_log_paths, metrics_namespace,
    metrics_interval_seconds, prefix) makes a new launch template version, and the refresh
    custom resource replaces the workers, launch before terminate. The parameters' patterns
    keep every value on one line and free of spaces, so the line stays a comment and two
    configurations never give the same line."""
    data = encode_to_dict(metadata)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    return " ".join(["# winworkers", digest, *("${" + n + "}" for n in sorted(metadata_inputs(data)))])


# Warm pool mode (WarmPool=stopped) only: the UserData runs at every boot, and these tell
# its boots apart. START holds the pendingTime of the last start this script handled (a
# reboot keeps it, a start from the warm pool is a new launch: register row 168), OK says
# that cfn-init succeeded at first boot. Both are written before the launch hook is
# completed: Auto Scaling stops a pooled instance as soon as the hook lets it go.
START_MARK = f"{BOOT_MARKS}start"
OK_MARK = f"{BOOT_MARKS}ok"
TARGET_STATE = "meta-data/autoscaling/target-lifecycle-state"
# At a start from the pool the worker is started again the way cfn-init ran it at first
# boot (docs/worker-contract.md, "A warm pool"): install.ps1 is idempotent, and its exit
# code is the start's health check.
RESTART = (
    "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File "
    f"'{SERVICE_DIR}\\install.ps1' -ConfigPath '{SERVICE_CONFIG}'"
)


def user_data(
    config: WorkersConfig,
    launch_template_id: str,
    asg_id: str,
    metadata: dict[str, Any],
    warm: bool = False,
    configset: str = "default",
) -> Base64:
    """Plain PowerShell, base64 but never gzipped (plain base64 is what every launch agent
    reads; register row 26).

    The instance waits in Pending:Wait on the launch hook until this script ends it:
    CONTINUE only when cfn-init succeeded, then cfn-signal reports the result (so a
    hook that cannot be completed fails the signal too); on failure it signals, then
    ABANDONs, and Auto Scaling replaces the instance at once. A broken worker never
    goes in service, on creation, scale-out or refresh. The abandoned instance then waits
    on its drain hook, running, and the script leaves that hook alone: the boot evidence
    function captures its console and screenshot, then ABANDONs it (terminated, or kept
    with RetainFailedBoots: winworkers.diagnostics, register row 200). Without a warm pool
    (``warm`` False) it runs once, at first boot (no <persist>): no instance meets the
    launch hook again on a later start. Hooks are completed with the AWS Tools for Windows
    PowerShell, which every AWS Windows AMI ships (the AWS CLI is not listed), through the
    autoscaling endpoint.

    With a warm pool (``warm`` True, ``warm_boot_paths``) the same script runs at every
    boot (``<persist>true</persist>``), and its first boot is the one above, whether into
    the pool or straight into service; a start from the pool publishes ``POOL_START_METRIC``
    alone.

    Every completion is retried for ``RETRY_MINUTES``: the first call at first boot loads
    the AWS Tools, fetches the role's credentials and resolves a brand-new endpoint, and
    one transient failure would otherwise fail the CreationPolicy (100% must succeed) and
    roll the stack back. The retries end at a deadline, not after a count, and a try
    that hangs is bounded by the SDK's own timeouts; the hook's heartbeat (45 minutes,
    then ABANDON) is the backstop. Last, after the signal, a booted worker publishes its
    boot timings (``BOOT_PHASES``) in one PutMetricData call through the monitoring
    endpoint; a failure there is logged and changes nothing. Its CloudWatch types
    (``Amazon.CloudWatch.Model``) are those of the AWS Tools module that completing the
    hook has just loaded: the AWS Windows AMIs ship the single AWSPowerShell module, with
    every service's types."""
    return Base64(Sub("\n".join(_boot_lines(config, launch_template_id, asg_id, metadata, warm, configset))))


def _boot_lines(
    config: WorkersConfig, launch_template_id: str, asg_id: str, metadata: dict[str, Any], warm: bool, configset: str
) -> list[str]:
    """user_data's script, line by line: cfn-init of configset, the launch hook, the signal, the timings."""
    t = BOOT_TIMES
    init = (
        f'try {{ & "$b\\cfn-init.exe" -v @c --resource {launch_template_id} --configsets {configset}; '
        "$code=$LASTEXITCODE } catch { $_ }"
    )
    signal = f'& "$b\\cfn-signal.exe" -e $code @c --resource {asg_id}'
    lines = [
        "<powershell>",
        config_line(metadata),
        f"{t['userdata']}=Get-Date",
        *_script_functions(group_name(config)),
        "$code=1",
        *(warm_boot_paths(init) if warm else [init]),
        f"{t['service']}=Get-Date",
        f"if ($code -eq 0 -and -not (Retry CONTINUE {LAUNCH_HOOK})) {{ $code=1 }}",
        f"{t['hook']}=Get-Date",
        # A later boot signals nothing: the CreationPolicy counts first boots only.
        f"if (-not $f) {{ {signal} }}" if warm else signal,
        f"if ($code -ne 0) {{ $null=Retry ABANDON {LAUNCH_HOOK} }}",
        _boot_timings(config, warm),
        "</powershell>",
    ]
    if warm:
        lines.append("<persist>true</persist>")
    return lines


def _script_functions(group: str) -> list[str]:
    """The UserData's variables and functions: cfn-bootstrap's folder and common arguments ($b, $c),
    IMDSv2 (Imds), completing the launch hook (Hook) with retries to a deadline (Retry), and one
    boot timing as a CloudWatch datum (D)."""
    return [
        f"$b='{_CFN_BOOTSTRAP}'",
        "$c='--stack','${AWS::StackName}','--region','${AWS::Region}',"
        "'--url','https://cloudformation.${AWS::Region}.${AWS::URLSuffix}'",
        "function Imds($p) { $u='http://169.254.169.254/latest'; "
        "$t=irm -Method Put \"$u/api/token\" -Headers @{'X-aws-ec2-metadata-token-ttl-seconds'='60'} "
        "-TimeoutSec 5; "
        "irm \"$u/$p\" -Headers @{'X-aws-ec2-metadata-token'=$t} -TimeoutSec 5 }",
        # 'Stop' is scoped to the function: its errors reach the caller's catch.
        f"function Hook($r, $h) {{ $ErrorActionPreference='Stop'; Complete-ASLifecycleAction "
        f"-AutoScalingGroupName '{group}' -LifecycleHookName $h -InstanceId (Imds meta-data/instance-id) "
        "-LifecycleActionResult $r -Region ${AWS::Region} -Force }",
        # Write-Host: the function's output is its result.
        f"function Retry($r, $h) {{ $e=(Get-Date).AddMinutes({RETRY_MINUTES}); while ($true) {{ "
        "try { Hook $r $h; return $true } catch { Write-Host $_; if ((Get-Date) -gt $e) { return $false }; "
        "sleep 15 } } }",
        "function D($n, $a, $z) { New-Object Amazon.CloudWatch.Model.MetricDatum -Property "
        "@{MetricName=$n; Unit='Seconds'; Value=($z-$a).TotalSeconds; Dimensions=@($g)} }",
    ]


def _boot_timings(config: WorkersConfig, warm: bool) -> str:
    """The line that publishes a booted worker's timings (BOOT_PHASES) in one PutMetricData call;
    with a warm pool, a start from the pool publishes POOL_START_METRIC alone."""
    t, mark, group = BOOT_TIMES, BOOT_MARKS, group_name(config)
    data = ",".join(f"(D {name} {t[start]} {t[end]})" for name, start, end in BOOT_PHASES)
    return (
        "if ($code -eq 0) { try { $ErrorActionPreference='Stop'; "
        f"{t['launch']}=[datetime](ConvertFrom-Json (Imds dynamic/instance-identity/document)).pendingTime; "
        f"{t['harden']}=(Get-Item '{mark}harden').LastWriteTime; "
        f"{t['agent']}=(Get-Item '{mark}agent').LastWriteTime; "
        "$g=New-Object Amazon.CloudWatch.Model.Dimension -Property @{Name='AutoScalingGroupName'; "
        f"Value='{group}'}}; "
        + (f"$d=if ($f) {{(D {POOL_START_METRIC} {t['launch']} {t['hook']})}} else {{{data}}}; " if warm else "")
        + f"Write-CWMetricData -Namespace '{config.metrics_namespace}' "
        f"-MetricData {'$d' if warm else data} -Region ${{AWS::Region}} -Force }} catch {{ $_ }} }}"
    )


def warm_boot_paths(init: str) -> list[str]:
    """What the warm pool mode's script does before it completes the launch hook: first
    boot, or a later one (docs/lifecycle.md, "Boot paths"). ``$f`` is set on a later boot.

    - First boot (no START_MARK): START_MARK, cfn-init as without a pool, then OK_MARK on
      success. The target state does not matter: into the pool (``Warmed:Stopped``) or into
      service (``InService``, the pool empty), the bootstrap is the same, and a worker
      takes no message while the state reads other than InService (worker contract).
    - A later boot with the same pendingTime as START_MARK holds: a reboot of a running
      instance; a target state other than InService (or none readable): not on its way
      into service. Either way it ends: no cfn-init, no hook, the worker starts by itself.
    - A start from the pool (a new pendingTime, target InService): no cfn-init; with
      OK_MARK, install.ps1 again (``RESTART``) and CONTINUE when it exits 0; without it
      (the first boot failed) or when it fails, ABANDON, so the instance is replaced."""
    return [
        "$p=(ConvertFrom-Json (Imds dynamic/instance-identity/document)).pendingTime",
        f"if (Test-Path '{START_MARK}') {{ try {{ $s=Imds {TARGET_STATE} }} catch {{ exit }}; "
        f"if ((gc '{START_MARK}') -eq $p -or $s -ne 'InService') {{ exit }}; $f=1 }}",
        f"$null=ni '{START_MARK}' -Value $p -Force",
        f"if ($f) {{ if (Test-Path '{OK_MARK}') {{ {RESTART}; $code=$LASTEXITCODE }} }} "
        f"else {{ {init}; if ($code -eq 0) {{ $null=ni '{OK_MARK}' -Force }} }}",
    ]
