"""The one owner of the Windows workers' instance refreshes (Lambda index.handler).

Inline code: stdlib and boto3 only. The launch template's ImageId is
resolve:ssm:<AMI_PARAMETER>, so a refresh can use neither SkipMatching nor a
DesiredConfiguration (nor AutoRollback): none is ever asked for. Two triggers:

- CloudFormation (the stack's refresh custom resource, whose properties are what
  the workers run with): Create and Delete do nothing; an Update that changes the
  launch template version or the subnets starts one launch-before-terminate
  refresh, or fails naming the refresh already active. During a rollback it never
  fails and starts nothing. Exactly one response goes to ResponseURL, always.
- Schedule or SNS: an instance whose image or launch template version differs from
  the group's (warm pool too) is outdated; if any is, no refresh is active and the
  stack and its root are not *_IN_PROGRESS, one refresh starts. {"dryRun": true}
  changes nothing.

Env: ASG_NAME, AMI_PARAMETER, STACK_ID, INSTANCE_WARMUP (180),
MIN_HEALTHY_PERCENTAGE (100), MAX_HEALTHY_PERCENTAGE (MIN + 100).
"""

import json
import os
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_PARAMETER = "/aws/service/ami-windows-latest/Windows_Server-2019-English-Full-Base"
ACTIVE = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5})
# What a refresh must roll out; the launch template id and version change with any
# change to the launch template data, and subnets live on the group alone.
ROLLED_OUT = ("GroupName", "LaunchTemplateId", "LaunchTemplateVersion", "Subnets")


class RefreshError(RuntimeError):
    """The check or the refresh failed; nothing was changed."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and "ResponseURL" in event:
        return on_stack_event(event, os.environ)
    return run(event or {}, os.environ)


def _clients(names: tuple[str, ...]) -> dict[str, Any]:
    return {n: boto3.client(n, config=RETRIES) for n in names}


def run(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """Decide, act, print one JSON line; ``clients``: ssm, autoscaling, ec2, cloudformation (made if None)."""
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


def _preferences(env: Any) -> dict[str, Any]:
    # Launch before terminating (MAX over 100); AWS allows at most 100 between the two.
    low = _int(env, "MIN_HEALTHY_PERCENTAGE", 100, 1, 100)
    return {
        "MinHealthyPercentage": low,
        "MaxHealthyPercentage": _int(env, "MAX_HEALTHY_PERCENTAGE", low + 100, 101, low + 100),
        "InstanceWarmup": _int(env, "INSTANCE_WARMUP", 180, 0, 86400),
        "CheckpointPercentages": [50, 100],  # as compute.CHECKPOINTS
        "CheckpointDelay": 3600,
        "ScaleInProtectedInstances": "Refresh",
        "StandbyInstances": "Terminate",
    }


def _start(auto: Any, asg: str, preferences: dict[str, Any]) -> Any:
    # Neither DesiredConfiguration nor SkipMatching: refused with a resolve:ssm: ImageId.
    refresh = _call(
        f"Auto Scaling group {asg}",
        auto.start_instance_refresh,
        AutoScalingGroupName=asg,
        Strategy="Rolling",
        Preferences=preferences,
    )
    return refresh and refresh["InstanceRefreshId"]


def _active(auto: Any, asg: str) -> dict[str, Any] | None:
    # Newest first, and a group has at most one active refresh.
    page = _call(f"Auto Scaling group {asg}", auto.describe_instance_refreshes, AutoScalingGroupName=asg, MaxRecords=10)
    return next((r for r in page.get("InstanceRefreshes", []) if r["Status"] in ACTIVE), None)


def _stack_statuses(cloudformation: Any, stack_id: str) -> list[str]:
    """The stack's status, then its root's if it is nested."""
    (stack,) = _call(f"stack {stack_id}", cloudformation.describe_stacks, StackName=stack_id)["Stacks"]
    statuses = [stack["StackStatus"]]
    if stack.get("RootId") not in (None, stack.get("StackId")):
        (root,) = _call(f"stack {stack['RootId']}", cloudformation.describe_stacks, StackName=stack["RootId"])["Stacks"]
        statuses.append(root["StackStatus"])
    return statuses


def _template(item: dict[str, Any]) -> tuple[Any, str] | None:
    spec = item.get("LaunchTemplate") or {}
    return (spec["LaunchTemplateId"], str(spec.get("Version"))) if spec.get("LaunchTemplateId") else None


def _decide(event: dict[str, Any], env: Any, clients: Any, out: dict[str, Any]) -> None:
    asg, name = out["asg_name"], out["ami_parameter"]
    if not asg:
        raise RefreshError("ASG_NAME is not set")
    preferences = _preferences(env)
    if event.get("detail-type") == "EC2 Auto Scaling Instance Refresh Failed":  # routed here to alarm
        d = event.get("detail") or {}
        raise RefreshError(f"instance refresh {d.get('InstanceRefreshId')} failed: {d.get('Cause')}")
    c = clients or _clients(("ssm", "autoscaling", "ec2", "cloudformation"))
    auto, group = c["autoscaling"], f"Auto Scaling group {asg}"
    parameter = _call(f"SSM parameter {name}", c["ssm"].get_parameter, Name=name)["Parameter"]
    out["latest_image_id"] = latest = parameter["Value"]
    groups = _call(group, auto.describe_auto_scaling_groups, AutoScalingGroupNames=[asg])["AutoScalingGroups"]
    if not groups:
        raise RefreshError(f"{group} not found")
    members = groups[0].get("Instances", [])
    if groups[0].get("WarmPoolConfiguration"):
        pages = auto.get_paginator("describe_warm_pool").paginate(AutoScalingGroupName=asg)
        pooled = _call(group, pages.build_full_result).get("Instances", [])
        members = members + pooled
        out["warm_pool_instances"] = len(pooled)
    out.update(instances=len(members) - out.setdefault("warm_pool_instances", 0), outdated_instances=[])
    # A version other than the group's (a stack update whose refresh was missed) is outdated too.
    want = _template(groups[0])
    if every := [i["InstanceId"] for i in members]:
        found = _call("instances", c["ec2"].describe_instances, InstanceIds=every)["Reservations"]
        images = {i["InstanceId"]: i["ImageId"] for r in found for i in r["Instances"]}
        versions = {i["InstanceId"]: _template(i) for i in members}
        out["outdated_instances"] = sorted(
            i for i in every if images.get(i) != latest or (want and want[1].isdigit() and versions[i] != want)
        )
    action = "up-to-date"
    if out["outdated_instances"]:
        # Never during a stack operation: its own refresh (custom resource) would collide.
        stack = env.get("STACK_ID") or ""
        busy = [s for s in _stack_statuses(c["cloudformation"], stack) if s.endswith("_IN_PROGRESS")] if stack else []
        active = None if busy else _active(auto, asg)
        if busy:
            out["stack_status"] = busy[0]
        elif active:
            out["instance_refresh_id"] = active["InstanceRefreshId"]
        action = "stack-busy" if busy else "refresh-in-progress" if active else "refresh-started"
    if event.get("dryRun") is True:
        out.update(action="dry-run", would=action)
        return
    if action == "refresh-started":
        refresh = _start(auto, asg, preferences)
        if refresh:
            out["instance_refresh_id"] = refresh
        else:  # one began since DescribeInstanceRefreshes
            action = "refresh-in-progress"
    out["action"] = action


def on_stack_event(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """A CloudFormation custom resource request: act, print one JSON line, send one response."""
    kind, new = event.get("RequestType"), event.get("ResourceProperties") or {}
    old = event.get("OldResourceProperties") or {}
    asg = str(new.get("GroupName", ""))
    out: dict[str, Any] = {"request": kind, "asg_name": asg, "action": "nothing"}
    forward, data = False, {}
    try:
        if kind == "Update" and any(old.get(k) != new.get(k) for k in ROLLED_OUT) and old.get("GroupName") == asg:
            c = clients or _clients(("autoscaling", "cloudformation"))
            out["stack_status"] = statuses = _stack_statuses(c["cloudformation"], str(event.get("StackId")))
            # A failed resource during a rollback leaves the stack UPDATE_ROLLBACK_FAILED:
            # the rollback starts nothing and never fails.
            forward = not any("ROLLBACK" in s for s in statuses)
            if forward:
                preferences = _preferences(env)
                active = _active(c["autoscaling"], asg)
                refresh = None if active else _start(c["autoscaling"], asg, preferences)
                if not refresh:
                    active = active or _active(c["autoscaling"], asg) or {}
                    raise RefreshError(
                        f"instance refresh {active.get('InstanceRefreshId')} of {asg} is {active.get('Status')} "
                        f"({active.get('PercentageComplete', 0)}% done): wait for it to end or cancel it, then retry"
                    )
                out.update(action="refresh-started", instance_refresh_id=refresh)
                data = {"InstanceRefreshId": refresh}
    except Exception as error:
        out.update(action="failed" if forward else "nothing", error=" ".join(str(error).split()))
    print(json.dumps({"decision": out["action"], **out}))
    physical = event.get("PhysicalResourceId") or f"{asg or event.get('LogicalResourceId')}-refresh"
    body = {
        "Status": "FAILED" if out["action"] == "failed" else "SUCCESS",
        "Reason": str(out.get("error", ""))[:1000] or "OK",
        "PhysicalResourceId": physical,
        **{k: event.get(k) for k in ("StackId", "RequestId", "LogicalResourceId")},
        "Data": data,
    }
    _respond(str(event["ResponseURL"]), json.dumps(body).encode())
    return out


def _respond(url: str, body: bytes) -> None:
    # The pre-signed S3 URL of the custom resource contract; CloudFormation waits
    # (ServiceTimeout) for nothing else. Its signature covers no Content-Type.
    for attempt in range(3):
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
        try:
            with urllib.request.urlopen(request, timeout=30):
                return
        except Exception as error:  # a bad URL is a ValueError, a refused PUT an OSError
            print(json.dumps({"decision": "response-failed", "attempt": attempt + 1, "error": str(error)}))


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
