"""Keep what EC2 shows of a terminating worker, without a login (Lambda index.handler).

The drain hook holds a terminating worker (a failed boot's too) in Terminating:Wait
and EventBridge sends "EC2 Instance-terminate Lifecycle Action" here; this writes to
LOG_GROUP, stream <instance id>/console:

- the console output (GetConsoleOutput; Latest=true first, the live output on
  Nitro types, else the output EC2 buffers at boot and termination): EC2Launch's
  messages and the last system event log errors, one event per line;
- the console screenshot (GetConsoleScreenshot, a JPG of the running instance: a
  stop error shows only here), base64 in events of SCREENSHOT_CHUNK characters
  after a line giving its size: join them and decode.

Then, for a failed boot only, it ends the wait (register row 200): the UserData no longer
completes the drain hook, so that the instance is still running for the capture. An
instance still in (Warmed:)Terminating:Wait whose launch lifecycle action was abandoned
(the group's scaling activity for it says so: explicit ABANDON or the launch hook's
timeout) has its drain hook completed with ABANDON, with the event's token: Auto Scaling
terminates it, or keeps it when RetainFailedBoots set the group's TerminateHookAbandon
to retain. Any other instance is a worker that drains itself, or already released: left
alone. A second delivery finds no action waiting ("No active Lifecycle Action": done).

EC2 having nothing is a note and one log line, not an error: a retry would find
nothing either. A denied call or a failed write raises (Lambda retries twice, then
dead-letters the event), before the release: the drain hook's timeout then ends the
wait. Env: LOG_GROUP.
"""

import base64
import json
import os
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

TERMINATING = "EC2 Instance-terminate Lifecycle Action"
STREAM_SUFFIX = "/console"
# PutLogEvents: events up to 256 KB (1 MB in newer docs), batches up to 10,000
# events and 1,048,576 bytes, 26 more per event (CloudWatch Logs API reference).
SCREENSHOT_CHUNK = 200_000
BATCH_BYTES = 1_000_000
BATCH_EVENTS = 10_000
EVENT_OVERHEAD = 26
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 5})
# (Warmed:)Terminating:Wait: the drain hook holds it (Auto Scaling user guide, lifecycle states).
WAITING = ("Terminating:Wait", "Warmed:Terminating:Wait")
# How a launch activity ends when its lifecycle action was abandoned, by CompleteLifecycleAction
# ABANDON or the hook's timeout (AWS Knowledge Center, lifecycle actions and CodeDeploy): "Instance
# failed to complete user's Lifecycle Action: Lifecycle Action with token ... was abandoned: ...".
ABANDONED = "was abandoned"
# DescribeScalingActivities: newest first, 100 a page (MaxRecords' maximum and default), read
# until the instance's launch: ACTIVITIES at most (20 calls; a launch and a termination for each
# of MAX_FLEET_SIZE workers; register row 213).
ACTIVITIES = 2000
# CompleteLifecycleAction for an action already completed (or timed out): ValidationError
# "No active Lifecycle Action found with token ..." (secondary: GitHub reports, register row 201).
DONE = "No active Lifecycle Action"
# A misconfiguration, not "nothing": it raises.
DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}


class EvidenceError(RuntimeError):
    """The evidence could not be read or written (never: EC2 had nothing)."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    return run(event or {}, os.environ)


def run(event: dict[str, Any], env: Any, clients: Any = None) -> dict[str, Any]:
    """Capture, write, print one JSON line; ``clients``: ec2, logs (made if None)."""
    detail = event.get("detail") or {}
    out: dict[str, Any] = {
        "instance_id": detail.get("EC2InstanceId", ""),
        "log_group": env.get("LOG_GROUP", ""),
        "hook": detail.get("LifecycleHookName", ""),
    }
    try:
        _capture(event, clients, out)
    except Exception as error:
        print(json.dumps({**out, "result": "error", "error": str(error)}))
        raise
    print(json.dumps({"result": out["result"], **out}))
    return out


def _capture(event: dict[str, Any], clients: Any, out: dict[str, Any]) -> None:
    if not out["log_group"]:
        raise EvidenceError("LOG_GROUP is not set")
    if event.get("detail-type") != TERMINATING or not out["instance_id"]:
        out["result"] = "ignored"  # not an instance's terminate lifecycle action: nothing to capture
        return
    c = clients or {n: boto3.client(n, config=RETRIES) for n in ("ec2", "logs", "autoscaling")}
    instance = out["instance_id"]
    text, out["console"] = _console(c["ec2"], instance)
    image, out["screenshot"] = _screenshot(c["ec2"], instance)
    lines = [line for line in text.splitlines() if line.strip()]
    messages = [f"winworkers: console output of {instance} ({out['console']}), {len(lines)} lines", *lines]
    if image:
        chunks = [image[i : i + SCREENSHOT_CHUNK] for i in range(0, len(image), SCREENSHOT_CHUNK)]
        messages.append(
            f"winworkers: console screenshot of {instance}, JPG of {len(base64.b64decode(image))} bytes, "
            f"base64 in the next {len(chunks)} event(s): join them and decode"
        )
        messages += chunks
    else:
        messages.append(f"winworkers: no console screenshot of {instance} ({out['screenshot']})")
    out["stream"] = instance + STREAM_SUFFIX
    out["events"] = _write(c["logs"], out["log_group"], out["stream"], messages)
    out["console_lines"] = len(lines)
    out["result"] = "captured" if lines or image else "nothing-from-ec2"
    out["release"] = _release(c["autoscaling"], event["detail"], instance)


def _release(auto: Any, detail: dict[str, Any], instance: str) -> str:
    """ABANDON the drain hook of a failed boot still waiting on it; what was done."""
    group = detail.get("AutoScalingGroupName", "")
    found = _scaling(auto.describe_auto_scaling_instances, InstanceIds=[instance])["AutoScalingInstances"]
    if [x["LifecycleState"] for x in found] not in ([w] for w in WAITING):
        return "not-waiting"  # released already, retained, or gone
    if not (failed := _scaling(_launch_abandoned, auto=auto, group=group, instance=instance)):
        return "launch-activity-not-found" if failed is None else "its-worker-drains"
    try:
        auto.complete_lifecycle_action(
            AutoScalingGroupName=group,
            LifecycleHookName=detail.get("LifecycleHookName", ""),
            LifecycleActionToken=detail.get("LifecycleActionToken", ""),
            LifecycleActionResult="ABANDON",
        )
    except ClientError as error:
        if _code(error) == "ValidationError" and DONE in str(error):
            return "already-completed"
        raise EvidenceError(f"CompleteLifecycleAction {group} {instance}: {error}") from error
    return "abandoned"


# Whether the newest launch activity of instance says its lifecycle action was abandoned; None:
# not in the group's ACTIVITIES newest. The same code judges a pool exit in ami_refresh.py.
def _launch_abandoned(auto: Any, group: str, instance: str) -> bool | None:
    pages = auto.get_paginator("describe_scaling_activities").paginate(
        AutoScalingGroupName=group, PaginationConfig={"MaxItems": ACTIVITIES}
    )
    for a in (a for p in pages for a in p.get("Activities", [])):
        said, why = a.get("Description", ""), a.get("StatusMessage", "")
        if instance in said and (ABANDONED in why or said.startswith("Launching")):
            return ABANDONED in why
    return None


def _scaling(call: Any, **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise EvidenceError(f"Auto Scaling: {error}") from error


def _console(ec2: Any, instance: str) -> tuple[str, str]:
    """The console output and where it came from, or "" and why there is none."""
    why = "EC2 returned no console output"
    for latest in (True, False):
        try:
            answer = ec2.get_console_output(InstanceId=instance, Latest=latest)
        except (ClientError, BotoCoreError) as error:
            why = f"GetConsoleOutput{' Latest' if latest else ''}: {_denied(error)}"
            continue
        # botocore decodes the base64 Output itself (botocore.handlers.decode_console_output).
        text = str(answer.get("Output") or "")
        if text.strip():
            return text, "latest" if latest else "buffered"
    return "", why


def _screenshot(ec2: Any, instance: str) -> tuple[str, str]:
    """The screenshot as base64, or "" and why there is none (it needs a running instance)."""
    try:
        answer = ec2.get_console_screenshot(InstanceId=instance, WakeUp=True)
    except (ClientError, BotoCoreError) as error:
        return "", f"GetConsoleScreenshot: {_denied(error)}"
    image = answer.get("ImageData") or ""
    return (image, "taken") if image else ("", "EC2 returned no screenshot")


def _write(logs: Any, group: str, stream: str, messages: list[str]) -> int:
    """messages as events of stream in group, in order, in as few batches as the limits allow."""
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except ClientError as error:
        if _code(error) != "ResourceAlreadyExistsException":  # a second capture appends
            raise EvidenceError(f"CreateLogStream {group} {stream}: {error}") from error
    # One millisecond apart, so CloudWatch Logs keeps them in this order.
    start = int(time.time() * 1000)
    events: list[dict[str, Any]] = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    batches: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in events:
        cost = len(item["message"].encode()) + EVENT_OVERHEAD
        if batches[-1] and (size + cost > BATCH_BYTES or len(batches[-1]) == BATCH_EVENTS):
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += cost
    for batch in batches:
        try:
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
        except (ClientError, BotoCoreError) as error:
            raise EvidenceError(f"PutLogEvents {group} {stream}: {error}") from error
    return len(events)


def _denied(error: Exception) -> str:
    """The error's code, or EvidenceError if the role may not make the call."""
    if _code(error) in DENIED:
        raise EvidenceError(f"the function's role may not read the console: {error}") from error
    return _code(error)


def _code(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or error)
    return type(error).__name__
