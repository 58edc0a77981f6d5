"""Replace the Windows workers when AWS publishes a newer AMI (Lambda index.handler).

Inline code: stdlib and boto3 only. The launch template's ImageId is
resolve:ssm:<AMI_PARAMETER>, resolved at each launch, so no template versions are
written and the stack never drifts; but a refresh then cannot use SkipMatching,
DesiredConfiguration or AutoRollback. So this compares that image with every
instance's (warm pool too: stopped ones keep their AMI) and, if any differs and no
refresh is active, starts one launch-before-terminate refresh. {"dryRun": true}
changes nothing. Env: ASG_NAME, AMI_PARAMETER, INSTANCE_WARMUP (180),
MIN_HEALTHY_PERCENTAGE (100), MAX_HEALTHY_PERCENTAGE (MIN + 100).
"""

import json
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_PARAMETER = "/aws/service/ami-windows-latest/Windows_Server-2019-English-Full-Base"
ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5})


class RefreshError(RuntimeError):
    """The check or the refresh failed; nothing was changed."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return run(event or {}, os.environ)


def run(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """Decide, act, print one JSON line; ``clients``: ssm, autoscaling, ec2 (made if None)."""
    out: dict[str, Any] = {
        "asg_name": env.get("ASG_NAME", ""),
        "ami_parameter": env.get("AMI_PARAMETER") or DEFAULT_PARAMETER,
    }
    try:
        _decide(event, env, clients, out)
    except Exception as error:
        print(json.dumps({"decision": "error", **out, "error": str(error)}))
        raise
    print(json.dumps({"decision": out["action"], **out}))
    return out


def _decide(event: dict[str, Any], env: Any, clients: Any, out: dict[str, Any]) -> None:
    asg, name = out["asg_name"], out["ami_parameter"]
    if not asg:
        raise RefreshError("ASG_NAME is not set")
    # Launch before terminating (MAX over 100); AWS allows at most 100 between the two.
    low = _int(env, "MIN_HEALTHY_PERCENTAGE", 100, 1, 100)
    high = _int(env, "MAX_HEALTHY_PERCENTAGE", low + 100, 101, low + 100)
    warmup = _int(env, "INSTANCE_WARMUP", 180, 0, 86400)
    if event.get("detail-type") == "EC2 Auto Scaling Instance Refresh Failed":  # routed here to alarm
        d = event.get("detail") or {}
        raise RefreshError(f"instance refresh {d.get('InstanceRefreshId')} failed: {d.get('Cause')}")
    c = clients or {n: boto3.client(n, config=RETRIES) for n in ("ssm", "autoscaling", "ec2")}
    auto, group = c["autoscaling"], f"Auto Scaling group {asg}"
    parameter = _call(f"SSM parameter {name}", c["ssm"].get_parameter, Name=name)["Parameter"]
    out["latest_image_id"] = latest = parameter["Value"]
    groups = _call(group, auto.describe_auto_scaling_groups, AutoScalingGroupNames=[asg])["AutoScalingGroups"]
    if not groups:
        raise RefreshError(f"{group} not found")
    ids = [i["InstanceId"] for i in groups[0].get("Instances", [])]
    pooled = []
    if groups[0].get("WarmPoolConfiguration"):
        pages = auto.get_paginator("describe_warm_pool").paginate(AutoScalingGroupName=asg)
        pooled = [i["InstanceId"] for i in _call(group, pages.build_full_result).get("Instances", [])]
    out.update(instances=len(ids), warm_pool_instances=len(pooled), outdated_instances=[])
    if every := ids + pooled:
        found = _call("instances", c["ec2"].describe_instances, InstanceIds=every)["Reservations"]
        images = {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}
        out["outdated_instances"] = sorted(i for i in every if images.get(i) != latest)
    action = "up-to-date"
    if out["outdated_instances"]:
        # Newest first, and a group has at most one active refresh.
        page = _call(group, auto.describe_instance_refreshes, AutoScalingGroupName=asg, MaxRecords=10)
        active = [r["InstanceRefreshId"] for r in page.get("InstanceRefreshes", []) if r["Status"] in ACTIVE]
        if active:
            out["instance_refresh_id"] = active[0]
        action = "refresh-in-progress" if active else "refresh-started"
    if event.get("dryRun") is True:
        out.update(action="dry-run", would=action)
        return
    if action == "refresh-started":
        preferences = {
            "MinHealthyPercentage": low,
            "MaxHealthyPercentage": high,
            "InstanceWarmup": warmup,
            "CheckpointPercentages": [50, 100],  # as compute.CHECKPOINTS
            "CheckpointDelay": 3600,
            "ScaleInProtectedInstances": "Refresh",
            "StandbyInstances": "Terminate",
        }
        start = auto.start_instance_refresh
        refresh = _call(group, start, AutoScalingGroupName=asg, Strategy="Rolling", Preferences=preferences)
        if refresh:
            out["instance_refresh_id"] = refresh["InstanceRefreshId"]
        else:  # one began since DescribeInstanceRefreshes
            action = "refresh-in-progress"
    out["action"] = action


def _int(env: Any, name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name) or str(default)
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise RefreshError(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


def _call(what: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else ""
        if code == "InstanceRefreshInProgress":  # StartInstanceRefresh: one began since the check
            return None
        message = f"{what} not found" if code == "ParameterNotFound" else f"{what}: {error}"
        raise RefreshError(message) from error
