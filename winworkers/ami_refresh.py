"""Replace the Windows workers when AWS publishes a newer AMI (Lambda index.handler).

The launch template's ImageId is resolve:ssm:<AMI_PARAMETER>: Auto Scaling
resolves the newest AMI at each launch, so this never writes launch template
versions and causes no CloudFormation drift. Such a refresh cannot SkipMatching,
so this compares the AMI with what the instances (warm pool too) run, and starts
one launch-before-terminate refresh if any differ. Stdlib and boto3 only.
"""

from __future__ import annotations

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
    """The check could not be made; nothing was changed."""


def _int(env: Any, name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise RefreshError(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


def run(event: dict[str, Any], env: Any, clients: dict[str, Any] | None = None) -> dict[str, Any]:
    """Decide and act; see the module docstring. ``clients`` maps ssm/autoscaling/ec2."""
    asg = env.get("ASG_NAME") or ""
    parameter = env.get("AMI_PARAMETER") or DEFAULT_PARAMETER
    result: dict[str, Any] = {"asg_name": asg, "ami_parameter": parameter}
    try:
        if not asg:
            raise RefreshError("ASG_NAME is not set")
        preferences = {
            "MinHealthyPercentage": 100,
            "MaxHealthyPercentage": _int(env, "MAX_HEALTHY_PERCENTAGE", 200, 101, 200),
            "InstanceWarmup": _int(env, "INSTANCE_WARMUP", 600, 0, 86400),
            "ScaleInProtectedInstances": "Refresh",
            "StandbyInstances": "Terminate",
        }
        if event.get("detail-type") == "EC2 Auto Scaling Instance Refresh Failed":
            detail = event.get("detail", {})
            raise RefreshError(f"instance refresh {detail.get('InstanceRefreshId')} failed: {detail.get('Cause')}")
        c = clients or {n: boto3.client(n, config=RETRIES) for n in ("ssm", "autoscaling", "ec2")}
        scaling = c["autoscaling"]
        latest = _call(f"SSM parameter {parameter}", c["ssm"].get_parameter, Name=parameter)["Parameter"]["Value"]
        result["latest_image_id"] = latest
        groups = _call(f"group {asg}", scaling.describe_auto_scaling_groups, AutoScalingGroupNames=[asg])
        if not groups["AutoScalingGroups"]:
            raise RefreshError(f"Auto Scaling group {asg} not found")
        group = groups["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group.get("Instances", [])]
        if group.get("WarmPoolConfiguration"):
            pool = _call(f"warm pool of {asg}", scaling.describe_warm_pool, AutoScalingGroupName=asg)
            ids += [i["InstanceId"] for i in pool.get("Instances", [])]
        outdated: list[str] = []
        if ids:
            found = _call("instances", c["ec2"].describe_instances, InstanceIds=ids)
            images = {i["InstanceId"]: i["ImageId"] for r in found["Reservations"] for i in r["Instances"]}
            outdated = sorted(i for i in ids if images.get(i) != latest)
        result.update(instances=len(ids), outdated_instances=outdated)
        action = "up-to-date"
        if outdated:
            refreshes = _call(f"refreshes of {asg}", scaling.describe_instance_refreshes, AutoScalingGroupName=asg)
            active = [r for r in refreshes.get("InstanceRefreshes", []) if r["Status"] in ACTIVE]
            if active:
                action = "refresh-in-progress"
                result["instance_refresh_id"] = active[0]["InstanceRefreshId"]
            elif event.get("dryRun") is True:
                result.update(action="dry-run", would="refresh-started")
            else:
                action = "refresh-started"
                started = _call(f"refresh of {asg}", scaling.start_instance_refresh, AutoScalingGroupName=asg,
                                Strategy="Rolling", Preferences=preferences)  # fmt: skip
                result["instance_refresh_id"] = started["InstanceRefreshId"]
        if event.get("dryRun") is True and "would" not in result:
            result.update(action="dry-run", would=action)
        result.setdefault("action", action)
    except RefreshError as error:
        print(json.dumps({"decision": "error", **result, "error": str(error)}))
        raise
    print(json.dumps({"decision": result["action"], **result}))
    return result


def _call(what: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise RefreshError(f"{what}: {error}") from error


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return run(event if isinstance(event, dict) else {}, os.environ)
