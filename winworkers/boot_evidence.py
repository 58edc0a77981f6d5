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

EC2 having nothing is a note and one log line, not an error: a retry would find
nothing either. A denied call or a failed write raises (Lambda retries twice, then
dead-letters the event). Env: LOG_GROUP.
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
        print(json.dumps({"result": "error", **out, "error": str(error)}))
        raise
    print(json.dumps({"result": out["result"], **out}))
    return out


def _capture(event: dict[str, Any], clients: Any, out: dict[str, Any]) -> None:
    if not out["log_group"]:
        raise EvidenceError("LOG_GROUP is not set")
    if event.get("detail-type") != TERMINATING or not out["instance_id"]:
        out["result"] = "ignored"  # not an instance's terminate lifecycle action: nothing to capture
        return
    c = clients or {n: boto3.client(n, config=RETRIES) for n in ("ec2", "logs")}
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
