"""The refresh Lambda as the stack's custom resource (``ami_refresh.on_stack_event``).

Each request is answered by a PUT to its ResponseURL, here a real HTTP server on
127.0.0.1 that records what arrives; the Auto Scaling group and the stack are
moto's (tests/test_ami_refresh.py's World), the refresh APIs answered by its hooks.
The contract (CloudFormation user guide, custom resource responses): exactly one
response, Status SUCCESS or FAILED, a Reason when FAILED, the request's StackId,
RequestId and LogicalResourceId, a non-empty PhysicalResourceId that stays the same,
at most 4,096 bytes; no response makes CloudFormation wait for ServiceTimeout.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import threading
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from test_ami_refresh import GROUP, World, _response, moto_world

from winworkers import ami_refresh
from winworkers.ami_refresh import on_stack_event

PROPERTIES = {"GroupName": GROUP, "LaunchTemplateId": "lt-1", "LaunchTemplateVersion": "1", "Subnets": ["subnet-a"]}
# A forward update's calls: the stack's status, the group's claim tag, the active refresh, the claim,
# the start, and the claim with the refresh's id (ami_refresh._refresh_for).
STARTS = [
    "DescribeStacks",
    "DescribeAutoScalingGroups",
    "DescribeInstanceRefreshes",
    "CreateOrUpdateTags",
    "StartInstanceRefresh",
    "CreateOrUpdateTags",
]


class Responses(list[dict[str, Any]]):
    """What the local response endpoint received: each PUT's headers and body; ``refuse`` first ones."""

    refuse = 0


@pytest.fixture
def responses() -> Iterator[tuple[str, Responses]]:
    received = Responses()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            refused = received.refuse > 0
            received.refuse -= 1
            received.append({"headers": dict(self.headers), "body": json.loads(body), "refused": refused})
            self.send_response(503 if refused else 200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/presigned?X-Amz-Signature=abc", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_world(monkeypatch) as w:
        w.group(desired=2)
        # What CloudFormation's stack is in when it sends a custom resource its Update (row 211).
        w.stack_status("UPDATE_IN_PROGRESS")
        yield w


def _event(url: str, world: World, kind: str, old: dict[str, Any] | None = None, **new: Any) -> dict[str, Any]:
    event = {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": world.stack_id,
        "RequestId": f"request-{kind}",
        "LogicalResourceId": "WinFleetRefresh",
        "ResourceType": "Custom::WorkersRefresh",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", **PROPERTIES, **new},
    }
    if kind != "Create":
        event["PhysicalResourceId"] = f"{GROUP}-refresh"
    if old is not None:
        event["OldResourceProperties"] = {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f", **old}
    return event


def _answer(
    world: World,
    event: dict[str, Any],
    responses: Responses,
    env: dict[str, str] | None = None,
    handler: Callable[..., dict[str, Any]] = on_stack_event,
) -> dict[str, Any]:
    """Run the handler; check it printed one JSON line and that exactly one response arrived, well formed."""
    world.calls.clear()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        out = handler(event, world.env(**(env or {})), world.clients)
    (line,) = printed.getvalue().splitlines()
    assert json.loads(line)["decision"] == out["action"]
    (response,) = responses
    body = response["body"]
    assert response["headers"]["Content-Type"] == ""  # the pre-signed URL's signature covers none
    assert {k: body[k] for k in ("StackId", "RequestId", "LogicalResourceId")} == {
        k: event[k] for k in ("StackId", "RequestId", "LogicalResourceId")
    }
    assert body["Status"] in {"SUCCESS", "FAILED"} and body["Reason"]
    assert body["PhysicalResourceId"] == f"{GROUP}-refresh"  # the same for every request: never a replacement
    assert len(json.dumps(body).encode()) <= 4096
    responses.clear()
    return body


def test_create_and_delete_succeed_and_start_nothing(world: World, responses: tuple[str, Responses]) -> None:
    url, received = responses
    for kind in ("Create", "Delete"):
        body = _answer(world, _event(url, world, kind), received)
        assert (body["Status"], body["Data"]) == ("SUCCESS", {})
        assert world.calls == [] and world.started == []


def test_an_update_of_what_the_workers_run_with_starts_one_refresh(
    world: World, responses: tuple[str, Responses]
) -> None:
    url, received = responses
    for changed in ({"LaunchTemplateVersion": "2"}, {"Subnets": ["subnet-a", "subnet-b"]}):
        world.started.clear()
        world.refreshes.clear()
        update = {**_event(url, world, "Update", PROPERTIES, **changed), "RequestId": f"request-{sorted(changed)}"}
        body = _answer(world, update, received)
        assert (body["Status"], body["Data"]) == ("SUCCESS", {"InstanceRefreshId": "refresh-1"})
        assert world.calls == STARTS
        (started,) = world.started  # World._start: no SkipMatching, no DesiredConfiguration
        assert started["Strategy"] == "Rolling" and started["AutoScalingGroupName"] == GROUP
        assert started["Preferences"]["MinHealthyPercentage"] == 100
        assert started["Preferences"]["MaxHealthyPercentage"] == 200  # launch before terminate


def test_an_update_that_changes_nothing_the_workers_run_with_starts_nothing(
    world: World, responses: tuple[str, Responses]
) -> None:
    url, received = responses
    same = _event(url, world, "Update", PROPERTIES, ServiceToken="arn:aws:lambda:us-east-1:123456789012:function:g")
    assert _answer(world, same, received)["Status"] == "SUCCESS"
    # A new group name is a new group: its instances are new.
    renamed = _event(url, world, "Update", {**PROPERTIES, "GroupName": "old"}, LaunchTemplateVersion="2")
    assert _answer(world, renamed, received)["Status"] == "SUCCESS"
    assert world.calls == [] and world.started == []


def test_an_active_refresh_fails_the_update_naming_it(world: World, responses: tuple[str, Responses]) -> None:
    url, received = responses
    world.refreshes.append({"InstanceRefreshId": "weekly-7", "Status": "InProgress", "PercentageComplete": 50})
    body = _answer(world, _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2"), received)
    assert body["Status"] == "FAILED" and body["Data"] == {}
    assert body["Reason"] == (
        f"instance refresh weekly-7 of {GROUP} is InProgress (50% done): wait for it or cancel it, then retry"
    )
    assert world.started == [] and "StartInstanceRefresh" not in world.calls


def test_a_refresh_started_since_the_check_is_the_one_this_update_needs(
    world: World, responses: tuple[str, Responses]
) -> None:
    # StartInstanceRefresh answers InstanceRefreshInProgress after the check found none active: one
    # began since (this request's own, its answer lost: the test below; or another trigger's). It
    # began after the group's update, so it rolls that out: the update succeeds naming it.
    url, received = responses

    def started_elsewhere(**_: Any) -> Any:
        world.refreshes.insert(0, {"InstanceRefreshId": "weekly-8", "Status": "Pending"})
        return _response(400), {"Error": {"Code": "InstanceRefreshInProgress", "Message": "in progress"}}

    world.clients["autoscaling"].meta.events.register_first(
        "before-call.auto-scaling.StartInstanceRefresh", started_elsewhere
    )
    body = _answer(world, _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2"), received)
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"InstanceRefreshId": "weekly-8"})
    assert world.calls[-3:] == ["StartInstanceRefresh", "DescribeInstanceRefreshes", "CreateOrUpdateTags"]
    assert world.started == []
    # None to be found (it ended at once): a forward update fails, in one line.
    world.refreshes.clear()
    world.clients["autoscaling"].meta.events.unregister(
        "before-call.auto-scaling.StartInstanceRefresh", started_elsewhere
    )
    world.start_error = "InstanceRefreshInProgress"
    other = {**_event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="3"), "RequestId": "request-next"}
    body = _answer(world, other, received)
    assert (body["Status"], body["Reason"]) == (
        "FAILED",
        f"Auto Scaling group {GROUP}: StartInstanceRefresh said one is in progress, but none is: retry",
    )


@pytest.mark.parametrize("status", ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_rollback_never_fails_and_starts_nothing(world: World, responses: tuple[str, Responses], status: str) -> None:
    # Even with the refresh the forward update started still running: failing here would leave
    # the stack UPDATE_ROLLBACK_FAILED.
    url, received = responses
    world.stack_status(status)
    world.refreshes.append({"InstanceRefreshId": "forward-1", "Status": "InProgress"})
    body = _answer(world, _event(url, world, "Update", {**PROPERTIES, "LaunchTemplateVersion": "2"}), received)
    assert (body["Status"], body["Reason"]) == ("SUCCESS", "OK")
    assert world.calls == ["DescribeStacks"] and world.started == []


def test_errors_fail_a_forward_update_in_one_line(world: World, responses: tuple[str, Responses]) -> None:
    url, received = responses
    world.start_error = "AccessDenied"
    body = _answer(world, _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2"), received)
    assert body["Status"] == "FAILED" and "AccessDenied" in body["Reason"] and "\n" not in body["Reason"]
    world.start_error = ""
    bad = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    body = _answer(world, bad, received, env={"INSTANCE_WARMUP": "soon"})
    assert (body["Status"], body["Reason"]) == (
        "FAILED",
        "INSTANCE_WARMUP='soon': expected a whole number from 0 to 86400",
    )


def test_an_unknown_stack_status_succeeds_without_a_refresh(world: World, responses: tuple[str, Responses]) -> None:
    # Not knowing whether this is a rollback, it must not fail; the weekly run catches the
    # instances left on the old version (test_ami_refresh.py).
    url, received = responses
    event = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    event["StackId"] = "arn:aws:cloudformation:us-east-1:123456789012:stack/gone/1"
    body = _answer(world, event, received)
    assert body["Status"] == "SUCCESS" and world.started == []
    unexpected = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    clients = world.clients
    world.clients = {"autoscaling": clients["autoscaling"]}  # a KeyError, before the stack's status is known
    assert _answer(world, unexpected, received)["Status"] == "SUCCESS"
    world.clients = {"cloudformation": clients["cloudformation"]}  # one after: a forward update fails
    body = _answer(world, unexpected, received)
    assert (body["Status"], body["Reason"]) == ("FAILED", "'autoscaling'")


def test_a_refused_response_is_sent_again(world: World, responses: tuple[str, Responses]) -> None:
    url, received = responses
    received.refuse = 2
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        on_stack_event(_event(url, world, "Create"), world.env(), world.clients)
    assert [r["refused"] for r in received] == [True, True, False]
    assert [json.loads(line)["decision"] for line in printed.getvalue().splitlines()] == [
        "nothing",
        "response-failed",
        "response-failed",
    ]


def test_the_lambda_entry_point_routes_stack_requests(
    world: World, responses: tuple[str, Responses], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = responses
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    with contextlib.redirect_stdout(io.StringIO()):
        assert ami_refresh.handler(_event(url, world, "Create"), None)["request"] == "Create"
    assert [r["body"]["Status"] for r in received] == ["SUCCESS"]


def test_the_source_never_asks_for_skip_matching_or_a_desired_configuration() -> None:
    # Names that appear in the code only in comments: none reaches an API call. As deployed: with
    # what it inlines from boot_evidence.
    import ast

    from winworkers.refresh import function_source

    tree = ast.parse(function_source())
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    keys = [k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords]
    names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name)]
    for word in ("SkipMatching", "DesiredConfiguration", "AutoRollback"):
        assert not [t for t in [*texts, *keys, *names] if t and word in t]
    starts = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "start_instance_refresh"]
    assert len(starts) == 1  # one place starts refreshes: _start


# Idempotent per request: Lambda may deliver CloudFormation's request more than once, even after the
# function answered, and botocore retries a start whose answer was lost (docs/aws-behaviours.md, 197).


def _deployed(feature: dict[str, Any]) -> Any:
    """The refresh function's own code as the template deploys it: the inline ZipFile, loaded as index.py."""
    index = types.ModuleType("index")
    code = feature["Resources"]["WinRefreshFunction"]["Properties"]["Code"]["ZipFile"]
    exec(compile(code, "index.py", "exec"), index.__dict__)
    return index


def _claims(world: World) -> list[dict[str, Any]]:
    """The group's claim tags, as moto's Auto Scaling keeps them."""
    (group,) = world.clients["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    return [t for t in group["Tags"] if t["Key"] == ami_refresh.CLAIM]


def test_a_second_delivery_of_the_same_update_answers_alike_and_starts_nothing(
    world: World, responses: tuple[str, Responses], feature: dict[str, Any]
) -> None:
    url, received = responses
    index = _deployed(feature)
    event = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    first = _answer(world, event, received, handler=index.on_stack_event)
    assert (first["Status"], first["Data"]) == ("SUCCESS", {"InstanceRefreshId": "refresh-1"})
    assert world.calls == STARTS
    second = _answer(world, event, received, handler=index.on_stack_event)
    assert second == first and len(world.started) == 1
    assert world.calls == ["DescribeStacks", "DescribeAutoScalingGroups"]  # the claim names its refresh
    # Not propagated: no worker ever sees it; the group's own tags are untouched.
    (claim,) = _claims(world)
    assert (claim["Value"], claim["PropagateAtLaunch"]) == ("request-Update refresh-1", False)
    # Another request (another update) finding that refresh active fails as ever, naming it.
    other = {**_event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="3"), "RequestId": "request-next"}
    body = _answer(world, other, received, handler=index.on_stack_event)
    assert body["Status"] == "FAILED" and body["Reason"].startswith(f"instance refresh refresh-1 of {GROUP} is ")
    assert len(world.started) == 1 and "CreateOrUpdateTags" not in world.calls


def test_a_delivery_while_the_first_is_starting_answers_with_its_refresh(
    world: World, responses: tuple[str, Responses], feature: dict[str, Any]
) -> None:
    # The first delivery claimed the group, found none active and started one, but has not named it
    # yet (they ran together): the active refresh began after its check, so it is this request's.
    url, received = responses
    event = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    tag = {"ResourceId": GROUP, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
    world.clients["autoscaling"].create_or_update_tags(
        Tags=[{**tag, "Key": ami_refresh.CLAIM, "Value": event["RequestId"]}]
    )
    world.refreshes.append({"InstanceRefreshId": "first-1", "Status": "InProgress", "StartTime": datetime.now(UTC)})
    body = _answer(world, event, received, handler=_deployed(feature).on_stack_event)
    assert (body["Status"], body["Data"]) == ("SUCCESS", {"InstanceRefreshId": "first-1"})
    assert world.started == [] and _claims(world)[0]["Value"] == f"{event['RequestId']} first-1"


def test_review2_a_duplicate_that_read_the_tag_before_the_first_claimed_it_answers_with_its_refresh(
    world: World, responses: tuple[str, Responses], feature: dict[str, Any]
) -> None:
    # Review 2: two deliveries of one Update run together (Lambda's at-least-once async delivery).
    # The second reads the group's tags before the first writes its claim, and its check for an
    # active refresh comes after the first's start. _refresh_for decides "not mine" from the tag it
    # read before, and answers FAILED naming the first delivery's refresh: CloudFormation takes the
    # first answer it gets, so the update can roll back while this request's refresh runs on (the
    # very failure the claim was meant to remove). It should read the claim again when it finds a
    # refresh active.
    url, received = responses
    event = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    tag = {"ResourceId": GROUP, "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
    raced: list[bool] = []

    def first_delivery_claims_and_starts(**_: Any) -> None:
        # Between the second delivery's DescribeAutoScalingGroups and its DescribeInstanceRefreshes,
        # the first delivery writes its claim and starts its refresh.
        if raced:
            return
        raced.append(True)
        world.refreshes.append({"InstanceRefreshId": "first-1", "Status": "Pending", "StartTime": datetime.now(UTC)})
        world.clients["autoscaling"].create_or_update_tags(
            Tags=[{**tag, "Key": ami_refresh.CLAIM, "Value": event["RequestId"]}]
        )

    world.clients["autoscaling"].meta.events.register_first(
        "before-call.auto-scaling.DescribeInstanceRefreshes", first_delivery_claims_and_starts
    )
    body = _answer(world, event, received, handler=_deployed(feature).on_stack_event)
    assert raced
    assert (body["Status"], body.get("Data")) == ("SUCCESS", {"InstanceRefreshId": "first-1"}), body["Reason"]
    assert world.started == []


def test_review2_a_late_duplicate_of_an_earlier_update_starts_no_refresh(
    world: World, responses: tuple[str, Responses], feature: dict[str, Any]
) -> None:
    # Review 2: Lambda may deliver an asynchronous invocation more than once, and later (its
    # retries; at-least-once delivery). Update R1 started refresh-1 and answered; a later update R2
    # started and tagged its own refresh, which has ended; the stack is UPDATE_COMPLETE. A late copy
    # of R1 then finds a claim that is not its own and no refresh active, so _refresh_for claims the
    # group again and starts a new refresh: every worker replaced for a request CloudFormation
    # settled long ago (and R2's claim overwritten). A request can only be current while its
    # stack is *_IN_PROGRESS; a forward Update seen on a stack that is not should start nothing.
    url, received = responses
    index = _deployed(feature)
    first = _event(url, world, "Update", PROPERTIES, LaunchTemplateVersion="2")
    assert _answer(world, first, received, handler=index.on_stack_event)["Status"] == "SUCCESS"
    world.refreshes.clear()  # refresh-1 ended
    later = {**_event(url, world, "Update", {**PROPERTIES, "LaunchTemplateVersion": "2"}, LaunchTemplateVersion="3")}
    later["RequestId"] = "request-later"
    assert _answer(world, later, received, handler=index.on_stack_event)["Status"] == "SUCCESS"
    world.refreshes.clear()  # refresh-2 ended too
    assert len(world.started) == 2
    world.stack_status("UPDATE_COMPLETE")
    _answer(world, first, received, handler=index.on_stack_event)  # the late copy of R1
    assert len(world.started) == 2, "a late duplicate of a settled request started another refresh"
    assert _claims(world)[0]["Value"].startswith("request-later ")
