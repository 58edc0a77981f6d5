"""Every instance refresh of the Windows workers starts here (Lambda index.handler; boto3, stdlib).

winworkers.refresh documents the triggers, why they never collide, and the warm pool's
exits. Env: ASG_NAME, AMI_PARAMETER, STACK_ID, INSTANCE_WARMUP (180), MIN_HEALTHY_PERCENTAGE (100),
MAX_HEALTHY_PERCENTAGE (MIN + 100).
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
POOL_EXIT = "EC2 Instance-terminate Lifecycle Action"
ROLLED_OUT = ("GroupName", "LaunchTemplateId", "LaunchTemplateVersion", "Subnets")
CLAIM = "winworkers:refresh-request"
ABANDONED = "was abandoned"  # as boot_evidence.py
ACTIVITIES = 2000


class RefreshError(RuntimeError):
    """The check or the refresh failed; nothing changed."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict) and "ResponseURL" in event:
        return on_stack_event(event, os.environ)
    return run(event or {}, os.environ)


def run(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """Scheduled or SNS: decide, act, print one JSON line. ``clients``: by service name."""
    out = {"asg_name": env.get("ASG_NAME", ""), "ami_parameter": env.get("AMI_PARAMETER") or DEFAULT_PARAMETER}
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
    preferences = _preferences(env)
    if event.get("detail-type") == "EC2 Auto Scaling Instance Refresh Failed":  # to alarm
        d = event.get("detail") or {}
        raise RefreshError(f"instance refresh {d.get('InstanceRefreshId')} failed: {d.get('Cause')}")
    c = clients or {n: boto3.client(n, config=RETRIES) for n in ("ssm", "autoscaling", "ec2", "cloudformation")}
    auto, group = c["autoscaling"], f"Auto Scaling group {asg}"
    if event.get("detail-type") == POOL_EXIT:  # a pooled worker: no job to drain
        _pool_exit(event.get("detail") or {}, c, asg, out)
        return
    parameter = _call(f"SSM parameter {name}", c["ssm"].get_parameter, Name=name)["Parameter"]
    out["latest_image_id"] = latest = parameter["Value"]
    groups = _call(group, auto.describe_auto_scaling_groups, AutoScalingGroupNames=[asg])["AutoScalingGroups"]
    if not groups:
        raise RefreshError(f"{group} not found")
    _outdated(c, asg, groups[0], latest, out)
    action = "up-to-date"
    if out["outdated_instances"]:
        # Not during a stack operation: its own refresh would collide.
        busy = [s for s in _statuses(c, env.get("STACK_ID")) if s.endswith("_IN_PROGRESS")]
        active = None if busy else _active(auto, asg)
        out.update(
            {"stack_status": busy[0]}
            if busy
            else {"instance_refresh_id": active["InstanceRefreshId"]}
            if active
            else {}
        )
        action = "stack-busy" if busy else "refresh-in-progress" if active else "refresh-started"
    if event.get("dryRun") is True:
        out.update(action="dry-run", would=action)
        return
    if action == "refresh-started":
        if refresh := _start(auto, asg, preferences):
            out["instance_refresh_id"] = refresh
        else:  # began since the check
            action = "refresh-in-progress"
    out["action"] = action


def _pool_exit(d: dict[str, Any], c: Any, asg: str, out: dict[str, Any]) -> None:
    auto, group = c["autoscaling"], f"Auto Scaling group {asg}"
    out["instance_id"] = i = d.get("EC2InstanceId", "")
    found = _call(group, auto.describe_auto_scaling_instances, InstanceIds=[i])["AutoScalingInstances"]
    out["action"] = "nothing"
    waits = [x["LifecycleState"] for x in found] == ["Warmed:Terminating:Wait"]
    # Stopped or its launch not abandoned. A failed first boot is boot_evidence's (row 200).
    if d.get("Origin") == "WarmPool" and waits:
        bad = _states(c["ec2"], i) != ["stopped"] and _call(group, _launch_abandoned, auto=auto, group=asg, instance=i)
        out["action"] = "launch-activity-not-found" if bad is None else "nothing"
        if bad is False:
            hook = {k: d.get(k) for k in ("LifecycleHookName", "LifecycleActionToken")}
            _call(
                group,
                auto.complete_lifecycle_action,
                AutoScalingGroupName=asg,
                LifecycleActionResult="CONTINUE",
                **hook,
            )
            out["action"] = "released"


def _outdated(c: Any, asg: str, g: dict[str, Any], latest: str, out: dict[str, Any]) -> None:
    members, pooled = g["Instances"], []
    if g.get("WarmPoolConfiguration"):
        pages = c["autoscaling"].get_paginator("describe_warm_pool").paginate(AutoScalingGroupName=asg)
        pooled = _call(f"Auto Scaling group {asg}", pages.build_full_result).get("Instances", [])
    # Not (Warmed:)Terminating; :Retained stays (winworkers.refresh).
    members, pooled = ([i for i in x if "Term" not in i["LifecycleState"]] for x in (members, pooled))
    out.update(instances=len(members), warm_pool_instances=len(pooled), outdated_instances=[])
    if every := members + pooled:
        found = _call("instances", c["ec2"].describe_instances, InstanceIds=[i["InstanceId"] for i in every])
        images = {i["InstanceId"]: i["ImageId"] for r in found["Reservations"] for i in r["Instances"]}
        # Another image or template version (a refresh never ran).
        want = _version(g)
        out["outdated_instances"] = sorted(
            i["InstanceId"]
            for i in every
            if images.get(i["InstanceId"]) != latest or (want[1].isdigit() and _version(i) != want)
        )


def on_stack_event(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """The stack's custom resource: act, print one JSON line, send exactly one response."""
    new, old = event.get("ResourceProperties") or {}, event.get("OldResourceProperties") or {}
    asg = str(new.get("GroupName", ""))
    out: dict[str, Any] = {"request": event.get("RequestType"), "asg_name": asg, "action": "nothing"}
    data, forward = {}, False
    try:
        if (
            out["request"] == "Update"
            and old.get("GroupName") == asg
            and any(old.get(k) != new.get(k) for k in ROLLED_OUT)
        ):
            c = clients or {n: boto3.client(n, config=RETRIES) for n in ("autoscaling", "cloudformation")}
            out["stack_status"] = statuses = _statuses(c, event.get("StackId"))
            # Failing a rollback leaves UPDATE_ROLLBACK_FAILED; settled: a late copy (row 211).
            if forward := statuses[:1] == ["UPDATE_IN_PROGRESS"] and not any("ROLLBACK" in s for s in statuses):
                refresh = _refresh_for(c["autoscaling"], asg, str(event.get("RequestId")), _preferences(env))
                out.update(action="refresh-started", instance_refresh_id=refresh)
                data = {"InstanceRefreshId": refresh}
    except Exception as error:
        out.update(action="failed" if forward else "nothing", error=" ".join(str(error).split()))
    print(json.dumps({"decision": out["action"], **out}))
    body = {
        "Status": "FAILED" if out["action"] == "failed" else "SUCCESS",
        "Reason": out.get("error", "OK")[:1000],
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"{asg}-refresh",
        **{k: event.get(k) for k in ("StackId", "RequestId", "LogicalResourceId")},
        "Data": data,
    }
    for attempt in (1, 2, 3):  # pre-signed: its signature covers no Content-Type
        put = urllib.request.Request(
            event["ResponseURL"], json.dumps(body).encode(), {"Content-Type": ""}, method="PUT"
        )
        try:
            with urllib.request.urlopen(put, timeout=30):
                break
        except Exception as error:
            print(json.dumps({"decision": "response-failed", "attempt": attempt, "error": str(error)}))
    return out


def _preferences(env: Any) -> dict[str, Any]:
    # Launch before terminating, at most 100 apart (AWS). As compute.py.
    low = _int(env, "MIN_HEALTHY_PERCENTAGE", 100, 1, 100)
    return {
        "MinHealthyPercentage": low,
        "MaxHealthyPercentage": _int(env, "MAX_HEALTHY_PERCENTAGE", low + 100, 101, low + 100),
        "InstanceWarmup": _int(env, "INSTANCE_WARMUP", 180, 0, 86400),
        "CheckpointPercentages": [50, 100],
        "CheckpointDelay": 3600,
        "ScaleInProtectedInstances": "Refresh",
        "StandbyInstances": "Terminate",
    }


def _refresh_for(auto: Any, asg: str, request: str, preferences: dict[str, Any]) -> Any:
    # Once per request (read again if one is active): tag CLAIM is "request", then "request id".
    g = f"Auto Scaling group {asg}"
    if (mine := (claim := _claim(auto, asg))[:1] == [request]) and claim[1:]:
        return claim[1]
    tag = {"ResourceId": asg, "ResourceType": "auto-scaling-group", "Key": CLAIM, "PropagateAtLaunch": False}
    if not (a := _active(auto, asg)):
        _call(g, auto.create_or_update_tags, Tags=[{**tag, "Value": request}])
    elif not (mine or _claim(auto, asg)[:1] == [request]):
        raise RefreshError(
            f"instance refresh {a['InstanceRefreshId']} of {asg} is {a.get('Status')} "
            f"({a.get('PercentageComplete', 0)}% done): wait for it or cancel it, then retry"
        )
    # InstanceRefreshInProgress: one began since (this request's or another's), after the
    # group's update.
    refresh = (a or {}).get("InstanceRefreshId") or _start(auto, asg, preferences)
    if not (refresh := refresh or (_active(auto, asg) or {}).get("InstanceRefreshId")):
        raise RefreshError(f"{g}: StartInstanceRefresh said one is in progress, but none is: retry")
    _call(g, auto.create_or_update_tags, Tags=[{**tag, "Value": f"{request} {refresh}"}])
    return refresh


def _claim(auto: Any, asg: str) -> Any:
    g = _call(f"Auto Scaling group {asg}", auto.describe_auto_scaling_groups, AutoScalingGroupNames=[asg])
    return {t["Key"]: t["Value"].split() for x in g["AutoScalingGroups"] for t in x.get("Tags", [])}.get(CLAIM, [])


def _start(auto: Any, asg: str, preferences: dict[str, Any]) -> Any:
    # No DesiredConfiguration, no SkipMatching: resolve:ssm: refuses both.
    start, g = auto.start_instance_refresh, f"Auto Scaling group {asg}"
    refresh = _call(g, start, AutoScalingGroupName=asg, Strategy="Rolling", Preferences=preferences)
    return refresh and refresh["InstanceRefreshId"]


def _active(auto: Any, asg: str) -> Any:
    # Newest first; one at most is active.
    page = _call(f"Auto Scaling group {asg}", auto.describe_instance_refreshes, AutoScalingGroupName=asg, MaxRecords=10)
    return next((r for r in page.get("InstanceRefreshes", []) if r["Status"] in ACTIVE), None)


def _statuses(c: Any, stack_id: Any) -> list[str]:
    # The stack's, then its root's.
    statuses: list[str] = []
    while stack_id and len(statuses) < 2:
        (stack,) = _call(f"stack {stack_id}", c["cloudformation"].describe_stacks, StackName=stack_id)["Stacks"]
        statuses.append(stack["StackStatus"])
        stack_id = stack.get("RootId")
    return statuses


def _version(item: dict[str, Any]) -> tuple[Any, str]:
    mixed = item.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {})  # Spot
    spec = item.get("LaunchTemplate") or mixed.get("LaunchTemplateSpecification") or {}
    return spec.get("LaunchTemplateId"), str(spec.get("Version"))


def _int(env: Any, name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name) or str(default)
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise RefreshError(f"{name}={raw!r}: expected a whole number from {low} to {high}")
    return int(raw)


def _states(ec2: Any, i: str) -> list[str]:
    found = _call("instances", ec2.describe_instances, InstanceIds=[i])["Reservations"]
    return [x["State"]["Name"] for r in found for x in r["Instances"]]


from winworkers.boot_evidence import _launch_abandoned  # noqa: E402  # inlined at build


def _call(what: str, method: Any, **kwargs: Any) -> Any:
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else ""
        if code == "InstanceRefreshInProgress":  # StartInstanceRefresh: began since
            return None
        message = f"{what} not found" if code == "ParameterNotFound" else f"{what}: {error}"
        raise RefreshError(message) from error
