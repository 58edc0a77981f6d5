"""The boot evidence handler (winworkers.boot_evidence) against moto's EC2, Auto Scaling
and CloudWatch Logs, in-process.

A failed boot, simulated: moto's group launches the instance; the UserData's ABANDON
of the launch hook has Auto Scaling terminate it through the drain hook, which sends
"EC2 Instance-terminate Lifecycle Action" (moto has no CompleteLifecycleAction and
sends no EventBridge events, so the event is built as AWS's event reference shows it).
moto's GetConsoleOutput returns a sample console; moto has no GetConsoleScreenshot,
so a botocore ``before-call`` hook answers it where a test needs a screenshot. Every
case asserts the log events written, the calls made and the one JSON line printed.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import importlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from conftest import ROOT
from winworkers import boot_evidence
from winworkers.boot_evidence import RETRIES, SCREENSHOT_CHUNK, TERMINATING, EvidenceError, run
from winworkers.bootstrap import DRAIN_HOOK, LAUNCH_HOOK
from winworkers.functions import lambda_source

GROUP = "stack-WinWorkers"
HOST_LOGS = "stack-WinHostLogs-ABC"
# moto's GetConsoleOutput answer (moto/ec2/responses/general.py), first line.
MOTO_CONSOLE = "Linux version 2.6.16-xenU"
JPG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"
CAPTURED = ["GetConsoleOutput", "GetConsoleScreenshot", "CreateLogStream", "PutLogEvents"]
# After the capture: is the instance waiting on the drain hook (moto: InService, so no)?
CHECKED = [*CAPTURED, "DescribeAutoScalingInstances"]
EVENT_NAMES = {"ec2": "ec2", "logs": "cloudwatch-logs", "autoscaling": "auto-scaling"}
SCALING = {"DescribeAutoScalingInstances", "DescribeScalingActivities", "CompleteLifecycleAction"}
# How Auto Scaling ends the launch activity of an abandoned launch lifecycle action (AWS
# Knowledge Center, "lifecycle actions and CodeDeploy"), ABANDON and timeout.
ABANDONED = (
    "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token "
    "0fc62a4b-153b-4dba-9bf4-9f233e72a697 was abandoned: Lifecycle Action Completed with ABANDON Result"
)
TIMED_OUT = (
    "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token "
    "95c60857-3c0a-4a67-8518-6dc18797e421 was abandoned: Heartbeat Timeout"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _response(status: int) -> AWSResponse:
    return AWSResponse("https://stub.invalid/", status, {"Content-Type": "text/xml"}, _Raw(b""))


def _error(code: str, status: int = 400) -> tuple[AWSResponse, dict[str, Any]]:
    return _response(status), {"Error": {"Code": code, "Message": code}}


@dataclass
class World:
    clients: dict[str, Any]
    instance: str
    reader: Any  # a logs client whose calls are not the handler's
    calls: list[str] = field(default_factory=list)
    params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)

    def answer(self, operation: str, reply: Callable[..., Any]) -> None:
        """Answer operation with reply(**kwargs) instead of moto."""
        service = "ec2" if operation.startswith("GetConsole") else "autoscaling" if operation in SCALING else "logs"
        event = f"before-call.{EVENT_NAMES[service]}.{operation}"
        self.clients[service].meta.events.register_first(event, reply)

    def run(self, event: dict[str, Any] | None = None, **env: str) -> dict[str, Any]:
        """The handler's result; checks that it printed exactly one JSON line."""
        self.calls.clear()
        self.params.clear()
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                given = terminating(self.instance) if event is None else event
                return run(given, {"LOG_GROUP": HOST_LOGS, **env}, self.clients)
        finally:
            lines = out.getvalue().splitlines()
            assert len(lines) == 1, lines
            self.log = json.loads(lines[0])

    def stream(self, instance: str = "") -> list[str]:
        """The messages of the instance's console stream, in order."""
        events = self.reader.get_log_events(
            logGroupName=HOST_LOGS, logStreamName=f"{instance or self.instance}/console", startFromHead=True
        )["events"]
        return [e["message"] for e in events]

    def _called(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _asked(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.params.append((model.name, dict(params)))


def terminating(instance: str, hook: str = DRAIN_HOOK) -> dict[str, Any]:
    """The event Auto Scaling sends when the drain hook holds an instance (Auto Scaling user guide,
    event reference, "Scale-in lifecycle action")."""
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": TERMINATING,
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2026-12-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/{GROUP}"],
        "detail": {
            "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
            "AutoScalingGroupName": GROUP,
            "LifecycleHookName": hook,
            "EC2InstanceId": instance,
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "Origin": "AutoScalingGroup",
            "Destination": "EC2",
        },
    }


@contextlib.contextmanager
def moto_evidence(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)
    with mock_aws():
        clients = {n: boto3.client(n, config=RETRIES) for n in ("ec2", "logs", "autoscaling")}
        scaling = boto3.client("autoscaling")
        # A Windows image: all of moto's 1,301 would take a second of CPU to serialize, every test.
        windows = [{"Name": "platform", "Values": ["windows"]}]
        image = clients["ec2"].describe_images(Owners=["amazon"], Filters=windows)["Images"][0]["ImageId"]
        clients["ec2"].create_launch_template(
            LaunchTemplateName="workers", LaunchTemplateData={"ImageId": image, "InstanceType": "m6i.large"}
        )
        scaling.create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateName": "workers", "Version": "$Latest"},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=1,
            VPCZoneIdentifier=clients["ec2"].describe_subnets()["Subnets"][0]["SubnetId"],
            LifecycleHookSpecificationList=[
                {"LifecycleHookName": LAUNCH_HOOK, "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"},
                {"LifecycleHookName": DRAIN_HOOK, "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"},
            ],
        )
        (instance,) = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0][
            "Instances"
        ]
        clients["logs"].create_log_group(logGroupName=HOST_LOGS)
        w = World(clients=clients, instance=instance["InstanceId"], reader=boto3.client("logs"))
        for client in clients.values():
            client.meta.events.register("before-parameter-build.*.*", w._asked)
            client.meta.events.register("before-call.*.*", w._called)
        # moto has no GetConsoleScreenshot: a JPG unless a test answers otherwise.
        clients["ec2"].meta.events.register("before-call.ec2.GetConsoleScreenshot", _screenshot(JPG))
        yield w


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_evidence(monkeypatch) as w:
        yield w


def _screenshot(image: bytes) -> Callable[..., Any]:
    return lambda **_: (_response(200), {"ImageData": base64.b64encode(image).decode(), "InstanceId": "i"})


# A failed boot's evidence


def test_a_failed_boot_leaves_its_console_and_screenshot_in_the_host_log_group(world: World) -> None:
    result = world.run()
    messages = world.stream()
    assert messages[0] == f"winworkers: console output of {world.instance} (latest), 10 lines"
    assert messages[1].startswith(MOTO_CONSOLE)
    assert len(messages) == 1 + 10 + 1 + 1
    assert messages[11] == (
        f"winworkers: console screenshot of {world.instance}, JPG of {len(JPG)} bytes, "
        "base64 in the next 1 event(s): join them and decode"
    )
    assert base64.b64decode(messages[12]) == JPG
    assert world.calls == CHECKED
    # Latest=true first: the live serial output on Nitro; WakeUp: a sleeping display shows nothing.
    assert world.params[0] == ("GetConsoleOutput", {"InstanceId": world.instance, "Latest": True})
    assert world.params[1] == ("GetConsoleScreenshot", {"InstanceId": world.instance, "WakeUp": True})
    assert result == {
        "instance_id": world.instance,
        "log_group": HOST_LOGS,
        "hook": DRAIN_HOOK,
        "console": "latest",
        "screenshot": "taken",
        "stream": f"{world.instance}/console",
        "events": 13,
        "console_lines": 10,
        "result": "captured",
        # moto's instance is InService: not waiting on the drain hook, nothing to release.
        "release": "not-waiting",
    }
    assert world.log == {"result": "captured", **result}


def test_the_buffered_output_when_latest_is_refused(world: World) -> None:
    # Latest is supported on Nitro instance types only (GetConsoleOutput API reference).
    def console(params: dict[str, Any], **_: Any) -> Any:
        return _error("UnsupportedOperation") if params["body"].get("Latest") == "true" else None

    world.answer("GetConsoleOutput", console)
    world.answer("GetConsoleScreenshot", lambda **_: _error("UnsupportedOperation"))
    assert world.run()["console"] == "buffered"
    assert [p.get("Latest") for name, p in world.params if name == "GetConsoleOutput"] == [True, False]
    messages = world.stream()
    assert messages[0].endswith("(buffered), 10 lines") and messages[1].startswith(MOTO_CONSOLE)
    reason = "GetConsoleScreenshot: UnsupportedOperation"
    assert messages[-1] == f"winworkers: no console screenshot of {world.instance} ({reason})"
    assert world.log["result"] == "captured"


def test_a_second_capture_of_the_same_instance_appends(world: World) -> None:
    world.run()
    world.run()
    assert len(world.stream()) == 2 * 13


def test_a_large_screenshot_is_split_and_batched_within_the_limits(world: World) -> None:
    image = bytes(range(256)) * 3000  # 768,000 bytes, 1,024,000 characters of base64
    world.answer("GetConsoleScreenshot", _screenshot(image))
    world.run()
    messages = world.stream()
    header = next(i for i, m in enumerate(messages) if "console screenshot" in m)
    chunks = messages[header + 1 :]
    assert len(chunks) == 6 and max(len(c) for c in chunks) == SCREENSHOT_CHUNK
    assert base64.b64decode("".join(chunks)) == image
    batches = [p["logEvents"] for name, p in world.params if name == "PutLogEvents"]
    assert len(batches) == 2
    for batch in batches:  # PutLogEvents: at most 1,048,576 bytes, 26 more per event
        assert sum(len(e["message"].encode()) + 26 for e in batch) <= 1_048_576
    stamps = [e["timestamp"] for batch in batches for e in batch]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_the_readmes_command_gets_the_screenshot_back(world: World) -> None:
    world.run()  # an older capture: the command takes the last screenshot of the stream
    image = bytes(range(256)) * 1000
    world.answer("GetConsoleScreenshot", _screenshot(image))
    world.run()
    # The command of "Troubleshooting a failed boot" (docs/operations.md), as an operator copies it.
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    (script,) = re.findall(r"python3 -c '([^']+)' > \"\$ID\.jpg\"", page)
    rebuilt = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(world.stream()).encode(), capture_output=True, check=True
    )
    assert rebuilt.stdout == image


# EC2 has nothing: one note, one line, no error


def test_nothing_from_ec2_is_a_note_and_one_line_not_an_error(world: World) -> None:
    gone = "i-0123456789abcdef0"  # terminated long ago: EC2 no longer knows it
    world.answer("GetConsoleScreenshot", lambda **_: _error("InvalidInstanceID.NotFound"))
    result = world.run(terminating(gone))
    assert result["result"] == "nothing-from-ec2" and world.log["result"] == "nothing-from-ec2"
    assert result["console"] == "GetConsoleOutput: InvalidInstanceID.NotFound"
    assert world.stream(gone) == [
        f"winworkers: console output of {gone} (GetConsoleOutput: InvalidInstanceID.NotFound), 0 lines",
        f"winworkers: no console screenshot of {gone} (GetConsoleScreenshot: InvalidInstanceID.NotFound)",
    ]
    # Both console calls tried, then the note written: no retry loop.
    assert world.calls == ["GetConsoleOutput", "GetConsoleOutput", *CHECKED[1:]]


def test_an_empty_console_counts_as_nothing(world: World) -> None:
    world.answer("GetConsoleOutput", lambda **_: (_response(200), {"InstanceId": world.instance}))
    world.answer("GetConsoleScreenshot", lambda **_: (_response(200), {"InstanceId": world.instance}))
    result = world.run()
    assert (result["result"], result["console"], result["screenshot"]) == (
        "nothing-from-ec2",
        "EC2 returned no console output",
        "EC2 returned no screenshot",
    )


def test_other_events_are_ignored_without_a_call(world: World) -> None:
    launching = {**terminating(world.instance), "detail-type": "EC2 Instance-launch Lifecycle Action"}
    assert world.run(launching)["result"] == "ignored"
    assert world.run({})["result"] == "ignored"
    assert world.calls == []


# Failures to write raise: Lambda retries an asynchronous event twice, then dead-letters it


def test_a_log_group_that_cannot_be_written_fails_visibly(world: World) -> None:
    with pytest.raises(EvidenceError, match="CreateLogStream no-such-group"):
        world.run(LOG_GROUP="no-such-group")
    assert world.log["result"] == "error" and "ResourceNotFoundException" in world.log["error"]


def test_a_refused_write_fails_visibly(world: World) -> None:
    world.answer("PutLogEvents", lambda **_: _error("AccessDeniedException"))
    with pytest.raises(EvidenceError, match="PutLogEvents"):
        world.run()
    assert world.log["result"] == "error"


@pytest.mark.parametrize("operation", ["GetConsoleOutput", "GetConsoleScreenshot"])
def test_a_role_that_may_not_read_the_console_fails_visibly(world: World, operation: str) -> None:
    # Not "nothing from EC2": a misconfigured role must alarm, not leave notes.
    world.answer(operation, lambda **_: _error("UnauthorizedOperation", 403))
    with pytest.raises(EvidenceError, match="may not read the console"):
        world.run()
    assert world.log["result"] == "error" and "PutLogEvents" not in world.calls


def test_without_a_log_group_it_fails_before_any_call(world: World) -> None:
    with pytest.raises(EvidenceError, match="LOG_GROUP is not set"):
        world.run(LOG_GROUP="")
    assert world.calls == []


# As deployed


def test_handler_reads_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = boto3.client

    def client(name: str, **kwargs: Any) -> Any:
        assert kwargs["config"] is RETRIES
        made.append(name)
        return world.clients[name] if name in world.clients else real(name, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    monkeypatch.setenv("LOG_GROUP", HOST_LOGS)
    with contextlib.redirect_stdout(io.StringIO()):
        assert boot_evidence.handler(terminating(world.instance), None)["result"] == "captured"
    assert made == ["ec2", "logs", "autoscaling"]


def test_the_module_is_a_self_contained_small_lambda(tmp_path: Path) -> None:
    # As deployed (functions.lambda_source), the module itself: it inlines nothing.
    source = lambda_source(Path(boot_evidence.__file__)).encode()
    assert source == Path(boot_evidence.__file__).read_bytes()
    # The release of a failed boot's drain hook took it from 7,000 (register row 200).
    assert len(source) < 11_000
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"base64", "json", "os", "time", "typing", "boto3", "botocore"}, imported
    (tmp_path / "index.py").write_bytes(source)
    spec = importlib.util.spec_from_file_location("index", tmp_path / "index.py")
    assert spec and spec.loader
    index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(index)
    assert callable(index.handler) and issubclass(index.EvidenceError, RuntimeError)


# A failed boot's release: the UserData leaves the drain hook to this function (register row 200)


def _failed_boot(
    world: World, state: str = "Terminating:Wait", message: str = ABANDONED, answers: int = 1, refused: str = ""
) -> list[dict[str, Any]]:
    """The instance waits in ``state``, its launch activity ended with ``message`` (the shapes of
    DescribeAutoScalingInstances and DescribeScalingActivities, API reference; moto has neither
    this state nor activities, nor CompleteLifecycleAction). The first ``answers``
    CompleteLifecycleAction calls succeed, later ones find no action (ValidationError, as AWS
    answers for a completed action); returns the parameters of each call."""
    completed: list[dict[str, Any]] = []
    waiting = {"InstanceId": world.instance, "AutoScalingGroupName": GROUP, "LifecycleState": state}
    listed = {"AutoScalingInstances": [waiting]}
    launch = {
        "ActivityId": "f9f2d65b-f1f2-43e7-b46d-d86756459699",
        "AutoScalingGroupName": GROUP,
        "Description": f"Launching a new EC2 instance: {world.instance}",
        "Cause": "At 2026-12-01T09:00:00Z an instance was started in response to a difference between desired "
        "and actual capacity, increasing the capacity from 0 to 1.",
        "StartTime": "2026-12-01T09:00:00Z",
        "StatusCode": "Cancelled",
        "StatusMessage": message,
        "Progress": 100,
    }
    # Another instance's failed launch says nothing about this one.
    other = {**launch, "ActivityId": "0", "Description": "Launching a new EC2 instance: i-0other"}
    other["StatusMessage"] = ABANDONED
    world.answer("DescribeAutoScalingInstances", lambda **_: (_response(200), listed))
    world.answer("DescribeScalingActivities", lambda **_: (_response(200), {"Activities": [other, launch]}))

    def complete(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        completed.append(world.params[-1][1])
        if refused:
            return _error(refused, 403)
        if len(completed) > answers:
            message = "No active Lifecycle Action found with token 87654321-4321-4321-4321-210987654321"
            return _response(400), {"Error": {"Code": "ValidationError", "Message": message}}
        return _response(200), {}

    world.answer("CompleteLifecycleAction", complete)
    return completed


RELEASED = {
    "AutoScalingGroupName": GROUP,
    "LifecycleHookName": DRAIN_HOOK,
    "LifecycleActionToken": "87654321-4321-4321-4321-210987654321",
    "LifecycleActionResult": "ABANDON",
}


@pytest.mark.parametrize("message", [ABANDONED, TIMED_OUT], ids=["abandoned", "launch-hook-timed-out"])
@pytest.mark.parametrize("state", ["Terminating:Wait", "Warmed:Terminating:Wait"])
def test_a_failed_boot_is_captured_then_abandoned_once(world: World, state: str, message: str) -> None:
    completed = _failed_boot(world, state, message)
    result = world.run()
    # The console first, while the instance runs; then its drain hook, with ABANDON, exactly once:
    # Auto Scaling terminates it, or retains it with RetainFailedBoots (register row 111).
    assert world.calls == [*CHECKED, "DescribeScalingActivities", "CompleteLifecycleAction"]
    assert completed == [RELEASED]
    assert (result["result"], result["release"]) == ("captured", "abandoned")
    assert world.stream()[0].startswith(f"winworkers: console output of {world.instance}")


def test_a_second_delivery_of_the_event_completes_nothing_more(world: World) -> None:
    # Events are delivered at least once: the second run finds the action completed and is done.
    completed = _failed_boot(world, answers=1)
    assert world.run()["release"] == "abandoned"
    assert world.run()["release"] == "already-completed"
    assert world.log["result"] == "captured"
    assert completed == [RELEASED, RELEASED]


@pytest.mark.parametrize("state", ["Terminating:Retained", "Terminating:Proceed", "Terminated", "InService"])
def test_an_instance_no_longer_waiting_is_left_alone(world: World, state: str) -> None:
    # Retained by RetainFailedBoots (a later delivery), released already, or gone: no completion.
    completed = _failed_boot(world, state)
    assert world.run()["release"] == "not-waiting"
    assert completed == [] and world.calls == CHECKED


def test_a_worker_that_was_in_service_drains_itself(world: World) -> None:
    # A scale-in or refresh: its launch succeeded, so its worker completes the drain (CONTINUE).
    completed = _failed_boot(world, message="")
    assert world.run()["release"] == "its-worker-drains"
    assert completed == []


def test_a_refused_release_fails_visibly_after_the_capture(world: World) -> None:
    # Lambda retries, then dead-letters; the drain hook's timeout (DrainSeconds, CONTINUE) ends the wait.
    _failed_boot(world, refused="AccessDenied")
    with pytest.raises(EvidenceError, match="CompleteLifecycleAction"):
        world.run()
    assert world.log["result"] == "error"
    assert world.stream()[0].startswith(f"winworkers: console output of {world.instance}")


def test_a_waiting_instance_whose_launch_is_not_found_is_said(world: World) -> None:
    # Not among the group's ACTIVITIES newest: neither released nor "its-worker-drains" silently.
    world.answer("DescribeScalingActivities", lambda **_: (_response(200), {"Activities": []}))
    _failed_boot(world)
    assert world.run()["release"] == "launch-activity-not-found"
    assert world.log["release"] == "launch-activity-not-found"


def test_review2_a_failed_boot_in_a_large_scale_out_is_still_released(world: World) -> None:
    # Review 2: _launch_abandoned reads only the group's 200 newest activities (ACTIVITIES). The
    # fleet goes to MAX_FLEET_SIZE 1,000, and a burst scale-out (or a refresh, or a bad image that
    # fails every boot and makes Auto Scaling replace each one) adds a launch and a terminate
    # activity per instance: by the time a boot fails (minutes, up to the 45-minute launch hook),
    # its launch activity can be older than the 200 newest. It is then "its-worker-drains": not
    # released, not an error, no log of a problem; the failed instance runs and is billed for
    # DrainSeconds (an hour by default), then is terminated by CONTINUE, so RetainFailedBoots does
    # not keep it. Before i25-B the UserData released it at once. The lookup should not depend on
    # how busy the group is (e.g. read the activities until the instance's launch, or
    # DescribeScalingActivities filtered by the instance's launch time).
    launch = {
        "ActivityId": "f9f2d65b-f1f2-43e7-b46d-d86756459699",
        "AutoScalingGroupName": GROUP,
        "Description": f"Launching a new EC2 instance: {world.instance}",
        "Cause": "At 2026-12-01T09:00:00Z an instance was started in response to a difference between desired "
        "and actual capacity, increasing the capacity from 0 to 400.",
        "StartTime": "2026-12-01T09:00:00Z",
        "StatusCode": "Cancelled",
        "StatusMessage": ABANDONED,
        "Progress": 100,
    }
    # 300 other instances of the same scale-out, launched after it (newest first), still booting.
    newer = [
        {
            **launch,
            "ActivityId": f"{n:08d}-0000-0000-0000-000000000000",
            "Description": f"Launching a new EC2 instance: i-{n:017x}",
            "StatusCode": "MidLifecycleAction",
            "StatusMessage": "",
        }
        for n in range(300)
    ]
    # Answered before _failed_boot's own answer (botocore runs register_first handlers in order).
    world.answer("DescribeScalingActivities", lambda **_: (_response(200), {"Activities": [*newer, launch]}))
    _failed_boot(world)
    assert world.run()["release"] == "abandoned"


def _activity(description: str, message: str = "", status: str = "Successful") -> dict[str, Any]:
    return {
        "ActivityId": "f9f2d65b-f1f2-43e7-b46d-d86756459699",
        "AutoScalingGroupName": GROUP,
        "Description": description,
        "Cause": "At 2026-12-01T09:00:00Z an instance was started.",
        "StartTime": "2026-12-01T09:00:00Z",
        "StatusCode": status,
        "StatusMessage": message,
        "Progress": 100,
    }


OTHERS = [_activity(f"Launching a new EC2 instance: i-{n:017x}", status="MidLifecycleAction") for n in range(250)]
LAUNCH_CASES = {
    # Newest first. Its abandoned launch behind 250 others' (3 pages of 100): found.
    "deep": ([*OTHERS, _activity("Launching a new EC2 instance: i-0me", ABANDONED, "Cancelled")], True, 3),
    # Its termination in progress, then its launch that timed out.
    "timed-out": (
        [
            _activity("Terminating EC2 instance: i-0me", status="InProgress"),
            _activity("Launching a new EC2 instance: i-0me", TIMED_OUT),
        ],
        True,
        1,
    ),
    # A healthy launch into the pool; an older abandoned launch of another instance says nothing.
    "healthy": (
        [
            _activity("Launching a new EC2 instance into warm pool: i-0me"),
            _activity("Launching a new EC2 instance: i-0x", ABANDONED),
        ],
        False,
        1,
    ),
    # Not among the 2,000 newest (20 calls at most): unknown, not "healthy".
    "not-found": ([*OTHERS * 10, _activity("Launching a new EC2 instance: i-0me", ABANDONED)], None, 20),
}


@pytest.mark.parametrize("case", sorted(LAUNCH_CASES))
@pytest.mark.parametrize("module", ["boot_evidence", "ami_refresh"])
def test_both_functions_judge_a_launch_alike_within_their_budget(case: str, module: str) -> None:
    # The same cases for the evidence function and the refresh function's pool exit (register row 213):
    # DescribeScalingActivities pages of 100 (MaxRecords' default), newest first, NextToken between.
    activities, judged, calls = LAUNCH_CASES[case]
    auto = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    served: list[int] = []

    def page(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        start = 100 * len(served)
        served.append(start)
        more = {"NextToken": f"t{start + 100}"} if start + 100 < len(activities) else {}
        return _response(200), {"Activities": activities[start : start + 100], **more}

    auto.meta.events.register("before-call.auto-scaling.DescribeScalingActivities", page)
    # Each as its Lambda runs it (index.py: the refresh function's with the definition inlined,
    # reading its own ABANDONED and ACTIVITIES), not as the package imports it.
    index = types.ModuleType("index")
    source = lambda_source(Path(importlib.import_module(f"winworkers.{module}").__file__ or ""))
    exec(compile(source, "index.py", "exec"), index.__dict__)
    function = index._launch_abandoned
    assert function(auto, GROUP, "i-0me") is judged
    assert len(served) == calls
