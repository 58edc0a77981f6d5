"""Issue 25, section 2: what `winworkers deploy`, `status` and `delete` tell an operator.

On the emulator (winworkers.emulator, 127.0.0.1 only): the refresh a stack update starts is
followed to its end (the emulator's refreshes never progress on their own: a test moves one
on between polls, through the injected sleep, as Auto Scaling would); a rollback names its
first failure, or the stack's reason; the smaller items (counts, retained log groups, a
repeated or miscased parameter, --config beside --template, delete of nothing or during a
refresh); a closed pipe ends quietly (the real CLI, in a subprocess).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import BUCKET_FLAG, ROOT, TEMPLATE_BUCKET, render, stack_events
from winworkers.cli import main
from winworkers.deploy import Clients, DeployError, delete, deploy, follow
from winworkers.emulator import coverage
from winworkers.parameters import SWITCH
from winworkers.renderings import EXAMPLE_INPUTS, enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

REGION = "us-east-1"
ACCOUNT = "123456789012"
FEATURE = ROOT / "templates" / "winworkers.json"
QUEUE = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}


@pytest.fixture(scope="module")
def scaling(aws: Clients, endpoint: str) -> Clients:
    """The module's emulator clients, with Auto Scaling: instance refreshes are seen."""
    import boto3

    client = boto3.client(
        "autoscaling", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    return Clients(aws.cloudformation, aws.ec2, aws.s3, REGION, client)


def _quiet(call: Callable[[], Any]) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # the refresh function's JSON lines
        return call()


def _group(aws: Clients, stack: str) -> str:
    summaries = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return str(next(r["PhysicalResourceId"] for r in summaries if r["LogicalResourceId"] == "WinGroup"))


def _refreshes(group: str) -> list[dict[str, Any]]:
    """The emulator's state of the group's refreshes, newest first (in this process: the tests' emulator)."""
    from moto.autoscaling.models import autoscaling_backends

    state: dict[str, list[dict[str, Any]]] = autoscaling_backends[ACCOUNT][REGION].__dict__["winworkers_refreshes"]
    return state[group]


def _moved_on(group: str, *steps: dict[str, Any]) -> Callable[[float], None]:
    """A sleep that moves the group's newest refresh on by the next step at each poll (the last repeats)."""
    left = list(steps)

    def sleep(seconds: float) -> None:
        step = left.pop(0) if len(left) > 1 else left[0]
        _refreshes(group)[0].update(step)

    return sleep


@pytest.fixture(scope="module")
def fleet(scaling: Clients) -> Iterator[str]:
    """A stack with a group of one worker; each test's update of WinArtifactKey starts a refresh."""
    stack = "ww-follow"
    values = enabled_parameters(MinSize="1")
    _quiet(lambda: deploy(scaling, stack, FEATURE, values, poll_seconds=0, echo=[].append, **_bucket()))
    yield stack


def _bucket() -> dict[str, str]:
    return {"template_bucket": TEMPLATE_BUCKET}


def _artifact(clients: Clients, key: str) -> None:
    """The new worker zip an update names, uploaded first: the preflight refuses one that does not exist."""
    clients.s3.put_object(Bucket=EXAMPLE_INPUTS["ArtifactBucket"], Key=key, Body=b"PK")


def _refreshing_update(clients: Clients, stack: str, key: str, sleep: Callable[[float], None], **kwargs: Any) -> Any:
    out: list[str] = []
    values = {"WinArtifactKey": f"windows/{key}.zip"}
    _artifact(clients, values["WinArtifactKey"])
    call = functools.partial(
        deploy, clients, stack, FEATURE, values, poll_seconds=0, echo=out.append, yes=True, sleep=sleep, **_bucket()
    )
    try:
        result = _quiet(lambda: call(**kwargs))
    except DeployError as error:
        return error, out
    return result, out


SUCCESS = (
    {"PercentageComplete": 50, "InstancesToUpdate": 1, "StatusReason": "Waiting for the checkpoint delay"},
    {"PercentageComplete": 50, "InstancesToUpdate": 1, "StatusReason": "Waiting for the checkpoint delay"},
    {"Status": "Successful", "PercentageComplete": 100, "InstancesToUpdate": 0, "StatusReason": ""},
)


def test_deploy_follows_the_refresh_it_starts_to_successful(scaling: Clients, fleet: str) -> None:
    group = _group(scaling, fleet)
    result, out = _refreshing_update(scaling, fleet, "follow-ok", _moved_on(group, *SUCCESS))
    assert result.status == "UPDATE_COMPLETE", result
    refresh = _refreshes(group)[0]
    assert refresh["Status"] == "Successful"
    progress = [line for line in out if line.startswith(f"instance refresh {refresh['InstanceRefreshId']}")]
    # Each change once (the same 50% twice is printed once), after the stack's own end.
    assert [line.split(": ", 1)[1].split(" [")[0] for line in progress] == ["InProgress", "InProgress", "Successful"]
    assert [line.split("] ")[1].split("%")[0] for line in progress] == ["0", "50", "100"]
    assert out.index(f"stack {fleet}: UPDATE_COMPLETE") < out.index(progress[1])
    assert progress[-1] == out[-1]


@pytest.mark.parametrize(
    ("step", "status", "reason"),
    [
        ({"Status": "Failed", "StatusReason": "Instance i-1 failed its health checks"}, "Failed", "health checks"),
        ({"Status": "RollbackSuccessful", "StatusReason": "Rolled back: an alarm"}, "RollbackSuccessful", "alarm"),
        (None, "Cancelled", "Cancelled by the user"),
    ],
)
def test_deploy_exits_non_zero_when_the_refresh_ends_otherwise(
    scaling: Clients,
    fleet: str,
    step: dict[str, str] | None,
    status: str,
    reason: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cli_env: None,
    endpoint: str,
) -> None:
    group = _group(scaling, fleet)

    def sleep(seconds: float) -> None:
        if step is None:  # CancelInstanceRefresh, the emulator's API
            scaling.autoscaling.cancel_instance_refresh(AutoScalingGroupName=group)
        else:
            _refreshes(group)[0].update(step)

    # The real CLI, whose deploy is given the sleep that moves the refresh on.
    from winworkers.deploy import commands

    monkeypatch.setattr(commands, "deploy", functools.partial(commands.deploy, sleep=sleep))
    argv = ["deploy", "--stack-name", fleet, "--template", str(FEATURE), *BUCKET_FLAG, "--yes"]
    argv += ["--parameter", f"WinArtifactKey=windows/end-{status}.zip", "--endpoint-url", endpoint]
    _artifact(scaling, f"windows/end-{status}.zip")
    assert _quiet(lambda: main(argv)) == 1
    err = capsys.readouterr().err
    refresh = _refreshes(group)[0]
    assert err == (
        f"winworkers deploy: instance refresh {refresh['InstanceRefreshId']} of {group} ended {status}: "
        f"{refresh['StatusReason']}; stack {fleet} is UPDATE_COMPLETE but not every worker was replaced: see "
        f"aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}\n"
    )
    assert reason in err


def test_following_a_refresh_stops_at_the_timeout_and_no_wait_does_not_follow(
    scaling: Clients, fleet: str, capsys: pytest.CaptureFixture[str], cli_env: None, endpoint: str
) -> None:
    """The emulator's refresh never moves on: --timeout 0 ends the waiting (not the refresh), in one line."""
    group = _group(scaling, fleet)
    argv = ["deploy", "--stack-name", fleet, "--template", str(FEATURE), *BUCKET_FLAG, "--yes"]
    argv += ["--endpoint-url", endpoint, "--poll-seconds", "0"]
    for key in ("windows/late.zip", "windows/nowait.zip"):
        _artifact(scaling, key)
    assert _quiet(lambda: main([*argv, "--parameter", "WinArtifactKey=windows/late.zip", "--timeout", "0"])) == 1
    refresh = _refreshes(group)[0]
    assert capsys.readouterr().err == (
        f"winworkers deploy: instance refresh {refresh['InstanceRefreshId']} of {group} is still InProgress "
        f"(0% complete) at the timeout; it was not cancelled: Auto Scaling carries on. Follow it with: "
        f"winworkers status --stack-name {fleet}\n"
    )
    assert refresh["Status"] == "InProgress"
    # A delete while it runs is refused as a deploy is, naming it, before anything is asked or deleted.
    with pytest.raises(DeployError) as refused:
        delete(scaling, fleet, poll_seconds=0, echo=[].append, yes=True)
    assert str(refused.value) == (
        f"instance refresh {refresh['InstanceRefreshId']} of {group} is InProgress (0% complete): nothing was "
        "changed; run again with --wait-for-refresh to wait for it, or when it has ended"
    )
    assert scaling.cloudformation.describe_stacks(StackName=fleet)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    # status follows it to its end too.
    out: list[str] = []
    assert follow(scaling, fleet, poll_seconds=0, echo=out.append, sleep=_moved_on(group, SUCCESS[-1])) == (
        "UPDATE_COMPLETE"
    )
    assert out[-1].startswith(f"instance refresh {refresh['InstanceRefreshId']} of {group}: Successful")
    # --no-wait: the stack's end is the deploy's; the refresh it started runs on.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*argv, "--parameter", "WinArtifactKey=windows/nowait.zip", "--no-wait"]) == 0
    lines = printed.getvalue().splitlines()
    assert lines[-1] == f"stack {fleet}: UPDATE_COMPLETE"
    assert _refreshes(group)[0]["Status"] == "InProgress"
    scaling.autoscaling.cancel_instance_refresh(AutoScalingGroupName=group)


def test_every_documented_refresh_status_is_handled() -> None:
    """API_InstanceRefresh.html lists ten; each either runs on or ends the following."""
    from winworkers.deploy.watch import ACTIVE_REFRESH, REFRESH_ENDED_OTHERWISE, REFRESH_SUCCEEDED

    documented = {"Pending", "InProgress", "Successful", "Failed", "Cancelling", "Cancelled"}
    documented |= {"RollbackInProgress", "RollbackFailed", "RollbackSuccessful", "Baking"}
    handled = [*ACTIVE_REFRESH, REFRESH_SUCCEEDED, *REFRESH_ENDED_OTHERWISE]
    assert sorted(handled) == sorted(documented)


# The rollback line -----------------------------------------------------------------------------------------------


def _planted(stack_name: str, status: str, events: list[tuple[str, str, str]], reason: str = "") -> None:
    """A finished operation planted in the emulator's stack: its events (logical id, status, reason; oldest
    first, all at the same time, as CloudFormation may stamp them), its status and its StackStatusReason."""
    from moto.cloudformation.models import Event, cloudformation_backends

    stack = cloudformation_backends[ACCOUNT][REGION].get_stack(stack_name)
    stack._add_stack_event(status.replace("ROLLBACK_COMPLETE", "IN_PROGRESS"))
    at = stack.events[-1].timestamp + timedelta(seconds=1)
    for logical, state, why in events:
        physical = stack.stack_id if logical == stack_name else f"{logical}-id"
        kind = "AWS::CloudFormation::Stack" if logical == stack_name else "AWS::SQS::Queue"
        event = Event(stack.stack_id, stack_name, logical, physical, kind, state, why or None, None)
        event.timestamp = at
        stack.events.append(event)
    stack.status = status
    stack.stack_status_reason = reason


def test_a_rollback_names_its_first_failure_not_what_followed(aws: Clients) -> None:
    _quiet(lambda: deploy(aws, "ww-first", QUEUE, {}, poll_seconds=0, echo=[].append))
    # Listed at the same time, the follow-on even before its cause: the cause is still named.
    events = [
        ("R", "UPDATE_FAILED", "Resource update cancelled"),
        ("Q", "UPDATE_FAILED", "Resource handler returned message: the queue is being deleted"),
        ("ww-first", "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Q, R]."),
        ("ww-first", "UPDATE_ROLLBACK_COMPLETE", ""),
    ]
    _planted("ww-first", "UPDATE_ROLLBACK_COMPLETE", events)
    with pytest.raises(DeployError) as ended:
        follow(aws, "ww-first", poll_seconds=0, echo=[].append)
    assert str(ended.value) == (
        "stack ww-first ended UPDATE_ROLLBACK_COMPLETE: Q UPDATE_FAILED: Resource handler returned message: "
        "the queue is being deleted; the stack is back as it was; fix the cause and run again"
    )


def test_a_rollback_without_a_failed_resource_gives_the_stack_s_reason(
    aws: Clients, capsys: pytest.CaptureFixture[str], cli_env: None, endpoint: str
) -> None:
    _quiet(lambda: deploy(aws, "ww-reason", QUEUE, {}, poll_seconds=0, echo=[].append))
    reason = "Rollback triggered by the alarm WinErrors"
    events = [
        ("ww-reason", "UPDATE_ROLLBACK_IN_PROGRESS", reason),
        ("ww-reason", "UPDATE_ROLLBACK_COMPLETE", ""),
    ]
    _planted("ww-reason", "UPDATE_ROLLBACK_COMPLETE", events, reason)
    assert main(["status", "--stack-name", "ww-reason", "--endpoint-url", endpoint]) == 1
    assert capsys.readouterr().err == (
        f"winworkers status: stack ww-reason ended UPDATE_ROLLBACK_COMPLETE: no resource failed; "
        f"CloudFormation's reason: {reason}; the stack is back as it was; fix the cause and run again\n"
    )


# Stack events in pages (register row 283) -------------------------------------------------------------------------


def test_the_emulator_pages_stack_events_as_aws_does(aws: Clients) -> None:
    from moto.cloudformation.models import cloudformation_backends

    from winworkers.emulator.cloudformation import EVENTS_PAGE

    _quiet(lambda: deploy(aws, "ww-pages", QUEUE, {}, poll_seconds=0, echo=[].append))
    cancelled = [(f"R{n}", "UPDATE_FAILED", "Resource update cancelled") for n in range(EVENTS_PAGE + 30)]
    _planted("ww-pages", "UPDATE_ROLLBACK_COMPLETE", cancelled)
    cfn = aws.cloudformation
    first = cfn.describe_stack_events(StackName="ww-pages")
    assert len(first["StackEvents"]) == EVENTS_PAGE
    assert first["StackEvents"][0]["LogicalResourceId"] == f"R{EVENTS_PAGE + 29}"  # newest first
    # An event added between two pages does not move the next page.
    _planted("ww-pages", "UPDATE_ROLLBACK_COMPLETE", [("ww-pages", "UPDATE_ROLLBACK_COMPLETE", "")])
    second = cfn.describe_stack_events(StackName="ww-pages", NextToken=first["NextToken"])
    assert second["StackEvents"][0]["LogicalResourceId"] == "R29"
    assert "NextToken" not in second
    paged = stack_events(cfn, "ww-pages")
    every = cloudformation_backends[ACCOUNT][REGION].get_stack("ww-pages").events
    assert [e["EventId"] for e in paged] == [str(e.event_id) for e in reversed(every)]
    for token in ("x", "0", str(len(every))):
        with pytest.raises(aws.cloudformation.exceptions.ClientError, match="Invalid NextToken"):
            cfn.describe_stack_events(StackName="ww-pages", NextToken=token)


def test_the_emulator_answers_stack_events_as_moto_serializes_them(aws: Clients) -> None:
    # emulator.cloudformation._events_serialized_once keeps each event's XML: the answer is moto's, byte
    # for byte but the request id, kept or made afresh, and an event changed after it was read is read anew.
    import re
    from unittest import mock

    from moto.cloudformation.models import cloudformation_backends
    from moto.core.serialize import ResponseSerializer

    _quiet(lambda: deploy(aws, "ww-xml", QUEUE, {}, poll_seconds=0, echo=[].append))
    _planted("ww-xml", "UPDATE_ROLLBACK_COMPLETE", [(f"R{n}", "UPDATE_FAILED", "cancelled") for n in range(120)])
    bodies: list[bytes] = []
    cfn = aws.cloudformation
    cfn.meta.events.register(
        "after-call.cloudformation.DescribeStackEvents", lambda **kw: bodies.append(kw["http_response"].content)
    )

    def pages() -> list[bytes]:
        bodies.clear()
        stack_events(cfn, "ww-xml")
        return [re.sub(rb"<RequestId>[^<]*</RequestId>", b"", body) for body in bodies]

    kept, again = pages(), pages()
    assert len(kept) == 2 and kept == again
    moto_own = ResponseSerializer._serialize_type_structure.__wrapped__  # type: ignore[attr-defined]
    with mock.patch.object(ResponseSerializer, "_serialize_type_structure", moto_own):
        assert pages() == kept
    stack = cloudformation_backends[ACCOUNT][REGION].get_stack("ww-xml")
    stack.events[-1].resource_status_reason = "changed after it was read"
    assert b"changed after it was read" in pages()[0]


@pytest.mark.parametrize("page", [None, 3])
def test_a_failure_older_than_a_page_of_events_is_still_the_cause(
    aws: Clients, page: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cause, then more follow-on events than a page holds (a rollback of a large stack): `status` pages
    # back to the operation's start. With the newest page only, a follow-on was named.
    from winworkers.emulator import cloudformation

    size = page or cloudformation.EVENTS_PAGE
    monkeypatch.setattr(cloudformation, "EVENTS_PAGE", size)
    stack = f"ww-old-cause-{page}"
    _quiet(lambda: deploy(aws, stack, QUEUE, {}, poll_seconds=0, echo=[].append))
    events = [
        ("Q", "UPDATE_FAILED", "Resource handler returned message: the queue is being deleted"),
        *[(f"R{n}", "UPDATE_FAILED", "Resource update cancelled") for n in range(size + 5)],
        (stack, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [Q]."),
        (stack, "UPDATE_ROLLBACK_COMPLETE", ""),
    ]
    _planted(stack, "UPDATE_ROLLBACK_COMPLETE", events)
    with pytest.raises(DeployError) as ended:
        follow(aws, stack, poll_seconds=0, echo=[].append)
    assert str(ended.value).startswith(
        f"stack {stack} ended UPDATE_ROLLBACK_COMPLETE: Q UPDATE_FAILED: Resource handler returned message: "
    )


def test_attaching_replays_an_operation_longer_than_a_page_from_its_start(
    aws: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `status` on an operation under way prints its events from its start, and none of an earlier one,
    # however many pages back the start is (the time is up at once here: the planted operation never ends).
    from winworkers.emulator import cloudformation

    monkeypatch.setattr(cloudformation, "EVENTS_PAGE", 3)
    stack = "ww-replay"
    _quiet(lambda: deploy(aws, stack, QUEUE, {}, poll_seconds=0, echo=[].append))
    earlier = [e["EventId"] for e in stack_events(aws.cloudformation, stack)]
    _planted(stack, "UPDATE_IN_PROGRESS", [(f"R{n}", "UPDATE_IN_PROGRESS", "") for n in range(8)])
    out: list[str] = []
    with pytest.raises(DeployError, match="still UPDATE_IN_PROGRESS"):
        follow(aws, stack, poll_seconds=0, echo=out.append, timeout_minutes=0)
    replayed = [line.split()[1] for line in out[1:]]
    assert replayed == [stack] + [f"R{n}" for n in range(8)], out
    assert len(earlier) > 3  # the earlier operation's events are more than a page, and none was printed


# Smaller items ---------------------------------------------------------------------------------------------------


def test_counts_are_english(aws: Clients) -> None:
    out: list[str] = []
    _quiet(lambda: deploy(aws, "ww-one", QUEUE, {}, poll_seconds=0, echo=[].append))
    assert delete(aws, "ww-one", poll_seconds=0, echo=out.append, yes=True)
    assert out[0] == "deleting stack ww-one deletes 1 resource: Q"
    stack = "ww-counts"
    _quiet(lambda: deploy(aws, stack, FEATURE, enabled_parameters(), poll_seconds=0, echo=out.append, **_bucket()))
    # The stack's own last event counts what the emulator's coverage says it does not create, of
    # the resources the enabled template holds (read from them, not kept by hand).
    resources = render(json.loads(FEATURE.read_text()), enabled_parameters())["Resources"]
    types = coverage({r["Type"] for r in resources.values()})
    missing = sum(types[r["Type"]] == "not created" for r in resources.values())
    assert missing >= 8
    assert f"  the emulator did NOT create {missing} resources: " in out[-2]


def test_the_switch_off_preview_lists_retained_log_groups_as_staying(aws: Clients) -> None:
    out: list[str] = []
    stack = "ww-keeps"
    _quiet(lambda: deploy(aws, stack, FEATURE, enabled_parameters(), poll_seconds=0, echo=[].append, **_bucket()))
    with pytest.raises(DeployError) as refused:
        _quiet(lambda: deploy(aws, stack, FEATURE, {SWITCH: "false"}, poll_seconds=0, echo=out.append, **_bucket()))
    template = json.loads(FEATURE.read_text())["Resources"]
    retained = sorted(n for n, r in template.items() if r.get("DeletionPolicy") == "Retain")
    removed = [line.split()[1] for line in out if line.startswith("  remove ")]
    staying = [line for line in out if line.startswith("  stays ")]
    # The switch off removes every resource; the five log groups stay, and are not listed under remove.
    assert staying == [
        f"  stays    {n} (AWS::Logs::LogGroup): leaves the stack, kept (DeletionPolicy Retain)" for n in retained
    ]
    assert len(retained) == 5 and not set(retained) & set(removed)
    assert f"{len(staying)} to stay (DeletionPolicy Retain)" in out[0]
    kept = ", ".join(line.split()[1] for line in staying)
    assert f"; these stay (DeletionPolicy Retain): {kept}; nothing was changed" in str(refused.value)
    assert f"it deletes {len(removed)} resources (" in str(refused.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--parameter", "WinMaxSize=6", "--parameter", "WinMaxSize=8"], "--parameter WinMaxSize is given twice "),
        (["--parameter", "winmaxsize=6"], "winmaxsize is not a parameter of this template: did you mean WinMaxSize?"),
        (["--config", "winworkers.toml"], "--config builds the template: give --template or --config, not both"),
    ],
)
def test_an_operator_s_slip_is_one_line_before_any_call(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], cli_env: None
) -> None:
    # No endpoint at all: refused before any AWS call.
    assert main(["deploy", "--stack-name", "x", "--template", str(FEATURE), *BUCKET_FLAG, *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"winworkers deploy: {message}") and err.count("\n") == 1, err


def test_delete_of_a_stack_that_does_not_exist_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], cli_env: None, endpoint: str
) -> None:
    assert main(["delete", "--stack-name", "ww-never", "--yes", "--endpoint-url", endpoint]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "winworkers delete: stack ww-never does not exist: nothing to delete\n")


def test_the_install_table_lists_every_package_of_each_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `deploy` |"))
    for requirement in extras["deploy"]:
        name = requirement.split(">")[0].split("=")[0].split("[")[0]
        assert name in row, (name, row)


# A closed pipe ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["deployer-policy"], ["build", "--out", "{tmp}"], ["params"]])
def test_a_closed_pipe_ends_quietly(argv: list[str], tmp_path: Path) -> None:
    """`winworkers deployer-policy | head -1`: the reader has gone before the output is written."""
    read, write = os.pipe()
    os.close(read)  # the reader closed early (deterministically: before anything is written)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "winworkers", *(a.replace("{tmp}", str(tmp_path)) for a in argv)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    finally:
        os.close(write)
    assert (run.stderr, run.returncode) == ("", 1)


def test_a_reader_that_stops_after_one_line_ends_it_quietly() -> None:
    """The same through a shell pipe into a reader that reads one line and exits."""
    reader = f'{sys.executable} -c "import sys; sys.stdin.readline()"'
    run = subprocess.run(
        f'{sys.executable} -m winworkers deployer-policy | {reader}; echo "${{PIPESTATUS[0]}}" >&2',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in run.stderr and "Error" not in run.stderr, run.stderr
    assert run.stderr.strip() in ("0", "1")


# Review R1: following a refresh when DescribeInstanceRefreshes answers otherwise than expected ---------------------

GROUP = "platform-winworkers-WinWorkers-ABC"


def _refresh(refresh_id: str, status: str, percent: int = 0) -> dict[str, Any]:
    return {
        "InstanceRefreshId": refresh_id,
        "AutoScalingGroupName": GROUP,
        "Status": status,
        "PercentageComplete": percent,
    }


def _watched(answers: list[Any]) -> tuple[Any, Any]:
    """A real autoscaling client whose DescribeInstanceRefreshes answers come from botocore's Stubber, in order
    (a dict is a refresh, a str an error code); nothing is sent anywhere."""
    import boto3
    from botocore.stub import Stubber

    from winworkers.deploy.watch import RefreshWatch

    client = boto3.client("autoscaling", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    for answer in answers:
        if isinstance(answer, str):
            stub.add_client_error("describe_instance_refreshes", answer, http_status_code=400)
        else:
            stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": [answer]})
    stub.activate()
    watch = RefreshWatch(client, lambda line: None)
    watch.groups.add(GROUP)
    return watch, stub


def _follow(watch: Any, polls: int) -> None:
    """follow_refreshes as deploy calls it, with a clock that runs out after `polls` sleeps."""
    from winworkers.deploy.watch import follow_refreshes

    slept = [0]

    def sleep() -> None:
        slept[0] += 1

    watch.poll()  # wait_stack's last poll: the update's refresh is seen
    follow_refreshes(watch, watch.started(), "platform-winworkers", "UPDATE_COMPLETE", lambda: slept[0] >= polls, sleep)


def test_one_throttled_describe_does_not_stop_following_the_refresh() -> None:
    """A follow lasts hours (two halves, an hour's checkpoint, drains); one Throttling (or an expired session
    token) marks DescribeInstanceRefreshes unavailable for good, the last state read (InProgress) is never read
    again, and deploy waits out --timeout (240 minutes) and then says the refresh is "still InProgress", which it
    no longer knows. The refresh here ends Successful right after the one throttled answer."""
    watch, _ = _watched([_refresh("r-1", "InProgress"), "Throttling", _refresh("r-1", "Successful", 100)])
    _follow(watch, polls=10)  # must not raise: the refresh it followed ended Successful


def test_a_cancelled_refresh_replaced_by_a_newer_one_is_not_a_success() -> None:
    """The update's refresh r-1 is cancelled (an operator, or CancelInstanceRefresh) and another, r-2, starts.
    DescribeInstanceRefreshes (MaxRecords=1) now gives r-2 as the newest: follow_refreshes, filtering the newest
    by r-1's id, finds nothing running and nothing ended, and returns as if all went well (exit 0), though
    r-1 ended Cancelled and not every worker was replaced."""
    watch, _ = _watched([_refresh("r-1", "InProgress", 40), _refresh("r-2", "InProgress", 0)])
    with pytest.raises(DeployError):
        _follow(watch, polls=10)


def test_a_refused_deploy_over_a_failed_stack_leaves_that_stack_alone(aws: Clients) -> None:
    """A stack whose creation failed (ROLLBACK_COMPLETE, ROLLBACK_FAILED: it may still hold resources that failed
    to delete, and its events say why it failed) is deleted by deploy to be created again, before the values are
    checked and before the preflight. A deploy that is then refused says "nothing was changed", but the failed
    stack, and with it the evidence of why it failed, is gone. The deletion belongs after the checks."""
    from moto.cloudformation.models import cloudformation_backends

    _quiet(lambda: deploy(aws, "ww-failed-create", QUEUE, {}, poll_seconds=0, echo=[].append))
    cloudformation_backends[ACCOUNT][REGION].get_stack("ww-failed-create").status = "ROLLBACK_COMPLETE"
    values = enabled_parameters(ArtifactKey="windows/missing.zip")  # preflight refuses it
    with pytest.raises(DeployError, match=r"^preflight refused: .*\(nothing was changed"):
        deploy(aws, "ww-failed-create", FEATURE, values, poll_seconds=0, echo=[].append, **_bucket())
    left = aws.cloudformation.describe_stacks(StackName="ww-failed-create")["Stacks"]
    assert [s["StackStatus"] for s in left] == ["ROLLBACK_COMPLETE"]


def test_the_default_timeout_covers_a_refresh_within_its_own_bounds_with_the_defaults() -> None:
    """deploy follows the refresh an update starts until --timeout (default DEFAULT_TIMEOUT_MINUTES, counted
    from the deploy's start), then exits 1 saying it is "still InProgress". execute.py's own arithmetic: two
    halves (checkpoint at 50%, CheckpointDelay between), each a bootstrap (the launch hook's HeartbeatTimeout)
    plus the replaced workers' drains (the drain hook's HeartbeatTimeout, DrainSeconds' default), "Four hours
    covers that with the defaults". It does not: 2 x (2,700 + 3,600) + 3,600 s is 270 minutes, so a refresh
    that stays within every bound the template sets is reported as a failure (exit 1) with the defaults."""
    from winworkers.compute import CHECKPOINTS
    from winworkers.deploy.execute import DEFAULT_TIMEOUT_MINUTES

    template = json.loads(FEATURE.read_text())
    hooks = {
        h["LifecycleHookName"]: h
        for h in template["Resources"]["WinGroup"]["Properties"]["LifecycleHookSpecificationList"]
    }
    boot = hooks["bootstrap"]["HeartbeatTimeout"]
    assert hooks["drain"]["HeartbeatTimeout"] == {"Ref": "WinDrainSeconds"}
    drain = int(template["Parameters"]["WinDrainSeconds"]["Default"])
    halves = len(CHECKPOINTS["CheckpointPercentages"])
    worst = halves * (boot + drain) + (halves - 1) * CHECKPOINTS["CheckpointDelay"]
    assert worst <= DEFAULT_TIMEOUT_MINUTES * 60, f"{worst / 60:g} minutes > {DEFAULT_TIMEOUT_MINUTES}"


def test_a_dry_run_over_a_failed_stack_deletes_nothing(aws: Clients) -> None:
    """--dry-run promises "the change set is left for review, not executed", and a removal needs a yes
    (or --yes); yet over a stack whose creation failed deploy deletes that stack first, unasked, dry run
    or not."""
    from moto.cloudformation.models import cloudformation_backends

    _quiet(lambda: deploy(aws, "ww-failed-dry", QUEUE, {}, poll_seconds=0, echo=[].append))
    cloudformation_backends[ACCOUNT][REGION].get_stack("ww-failed-dry").status = "ROLLBACK_COMPLETE"
    out: list[str] = []
    with contextlib.suppress(DeployError):  # the create change set over it may be refused: not the point
        deploy(
            aws,
            "ww-failed-dry",
            FEATURE,
            enabled_parameters(),
            poll_seconds=0,
            echo=out.append,
            dry_run=True,
            **_bucket(),
        )
    left = aws.cloudformation.describe_stacks(StackName="ww-failed-dry")["Stacks"]
    assert [s["StackStatus"] for s in left] == ["ROLLBACK_COMPLETE"], out


# The fixes for review R1 ------------------------------------------------------------------------------------------


def _slept(watch: Any, polls: int) -> tuple[int, str]:
    """_follow's sleeps and the DeployError's line ("" when it returned)."""
    from winworkers.deploy.watch import follow_refreshes

    slept = [0]

    def sleep() -> None:
        slept[0] += 1

    watch.poll()
    try:
        follow_refreshes(
            watch, watch.started(), "platform-winworkers", "UPDATE_COMPLETE", lambda: slept[0] >= polls, sleep
        )
    except DeployError as error:
        return slept[0], str(error)
    return slept[0], ""


@pytest.mark.parametrize("code", ["ExpiredToken", "AccessDenied"])
def test_a_refresh_that_cannot_be_read_ends_the_follow_at_once_saying_so(code: str) -> None:
    """Expired credentials or a denied DescribeInstanceRefreshes do not pass by waiting: the follow ends at the
    first such answer (not at --timeout) with one line that names the refresh, the error and how to follow it,
    never a stale "still InProgress"."""
    watch, _ = _watched([_refresh("r-1", "InProgress", 40), code])
    slept, line = _slept(watch, polls=10)
    assert slept == 1
    assert line == (
        f"cannot read instance refresh r-1 of {GROUP} (DescribeInstanceRefreshes: {code}); it was not cancelled and "
        "how it ends is not known here: follow it with: winworkers status --stack-name platform-winworkers"
    )


def test_a_refresh_unread_at_the_timeout_is_not_reported_as_still_in_progress() -> None:
    watch, _ = _watched([_refresh("r-1", "InProgress", 40), "Throttling", "Throttling"])
    _, line = _slept(watch, polls=2)
    assert line.startswith(
        f"instance refresh r-1 of {GROUP} could not be read at the timeout (DescribeInstanceRefreshes: Throttling; "
        "last read InProgress)"
    ), line
    assert "still" not in line


def test_the_followed_refresh_is_asked_for_by_its_id() -> None:
    """DescribeInstanceRefreshes' InstanceRefreshIds: the answer is that refresh, however many started after it;
    how it ended (Cancelled here) decides."""
    watch, stub = _watched([_refresh("r-1", "InProgress", 40)])
    stub.add_response(
        "describe_instance_refreshes",
        {"InstanceRefreshes": [_refresh("r-1", "Cancelled", 40)]},
        {"AutoScalingGroupName": GROUP, "InstanceRefreshIds": ["r-1"]},
    )
    _, line = _slept(watch, polls=10)
    assert line.startswith(f"instance refresh r-1 of {GROUP} ended Cancelled: no reason given;"), line
    stub.assert_no_pending_responses()


def test_a_throttled_poll_while_the_stack_updates_does_not_hide_refreshes_for_good() -> None:
    watch, _ = _watched(["Throttling", _refresh("r-1", "InProgress", 10)])
    watch.poll()
    assert not watch.unavailable and watch.latest == {}
    watch.poll()
    assert watch.latest[GROUP]["InstanceRefreshId"] == "r-1"


def test_transient_is_botocore_s_own_retry_rule() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from winworkers.deploy.watch import _transient

    def error(code: str, status: int) -> ClientError:
        response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "DescribeInstanceRefreshes")

    assert _transient(error("Throttling", 400)) and _transient(error("RequestLimitExceeded", 400))
    assert _transient(error("ResourceContention", 500)) and _transient(EndpointConnectionError(endpoint_url="x"))
    assert not _transient(error("ExpiredToken", 400)) and not _transient(error("AccessDenied", 403))


def _failed_queue(aws: Clients, name: str) -> str:
    from moto.cloudformation.models import cloudformation_backends

    _quiet(lambda: deploy(aws, name, QUEUE, {}, poll_seconds=0, echo=[].append))
    cloudformation_backends[ACCOUNT][REGION].get_stack(name).status = "ROLLBACK_COMPLETE"
    return str(aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackId"])


def test_a_failed_stack_is_deleted_only_with_consent(aws: Clients) -> None:
    """Deleting the failed stack is a deletion: said first (what goes), then asked, or --yes."""
    first = _failed_queue(aws, "ww-failed-ask")
    out: list[str] = []
    with pytest.raises(DeployError) as refused:
        deploy(aws, "ww-failed-ask", QUEUE, {}, poll_seconds=0, echo=out.append)
    assert str(refused.value) == (
        "deleting the failed stack ww-failed-ask needs --yes without a terminal: nothing was changed "
        "(its events say why it failed: winworkers status --stack-name ww-failed-ask)"
    )
    assert out[-1] == "deleting stack ww-failed-ask deletes 1 resource: Q"
    with pytest.raises(DeployError, match=r"^stack ww-failed-ask was not deleted: nothing was changed$"):
        deploy(aws, "ww-failed-ask", QUEUE, {}, poll_seconds=0, echo=[].append, ask=lambda question: False)
    assert aws.cloudformation.describe_stacks(StackName="ww-failed-ask")["Stacks"][0]["StackId"] == first
    asked: list[str] = []
    result = deploy(
        aws, "ww-failed-ask", QUEUE, {}, poll_seconds=0, echo=[].append, ask=lambda q: asked.append(q) or True
    )
    assert asked == ["Delete failed stack ww-failed-ask and create it again?"]
    assert result.status == "CREATE_COMPLETE"
    assert aws.cloudformation.describe_stacks(StackName="ww-failed-ask")["Stacks"][0]["StackId"] != first


def test_a_dry_run_over_a_failed_stack_says_what_a_deploy_would_do(aws: Clients) -> None:
    _failed_queue(aws, "ww-failed-say")
    out: list[str] = []
    result = deploy(aws, "ww-failed-say", QUEUE, {}, poll_seconds=0, echo=out.append, dry_run=True, yes=True)
    assert out == [
        "dry run: stack ww-failed-say is ROLLBACK_COMPLETE (its creation failed; CloudFormation cannot update it): "
        "a deploy would delete it and create it again; nothing was deleted, no change set made"
    ]
    assert (result.status, result.changed) == ("ROLLBACK_COMPLETE", False)


def _throttled_nested(reads: int, statuses: list[str]) -> tuple[Any, str]:
    """A fake CloudFormation (tests/test_review30.py's) with a root whose update failed inside its nested stack
    WinStack, which failed last week too; the nested stack's first ``reads`` reads of its events meet a
    Throttling that outlasted botocore's retries. Returns (the fake, last week's date as printed)."""
    from datetime import timedelta

    from test_review30 import T, _Cfn, _event

    root = "arn:aws:cloudformation:us-east-1:1:stack/ww/1"
    child = "arn:aws:cloudformation:us-east-1:1:stack/ww-WinStack-X/2"
    week = T - timedelta(days=7)
    nested = {"kind": "AWS::CloudFormation::Stack", "physical": child}
    root_events = [  # newest first
        _event(root, 4, "ww", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=4), "failed to update: [WinStack]."),
        _event(root, 3, "WinStack", "UPDATE_FAILED", T + timedelta(seconds=3), "Embedded stack failed", **nested),
        _event(root, 2, "WinStack", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1), **nested),
        _event(root, 1, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
        _event(root, 0, "ww", "CREATE_COMPLETE", week - timedelta(days=30)),
    ]
    child_events = [
        _event(child, 5, "Q", "UPDATE_FAILED", T + timedelta(seconds=2), "today's cause"),
        _event(child, 4, "ww-WinStack-X", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
        _event(child, 3, "ww-WinStack-X", "UPDATE_ROLLBACK_COMPLETE", week + timedelta(seconds=3)),
        _event(child, 2, "Q", "UPDATE_FAILED", week + timedelta(seconds=2), "last week's failure"),
        _event(child, 1, "ww-WinStack-X", "UPDATE_IN_PROGRESS", week),
        _event(child, 0, "ww-WinStack-X", "CREATE_COMPLETE", week - timedelta(days=30)),
    ]
    stack = {"LogicalResourceId": "WinStack", "ResourceType": "AWS::CloudFormation::Stack", "PhysicalResourceId": child}

    class Throttled(_Cfn):
        reads = 0

        def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
            from botocore.exceptions import ClientError

            if StackName == child:
                Throttled.reads += 1
                if Throttled.reads <= reads:
                    error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
                    raise ClientError(error, "DescribeStackEvents")  # type: ignore[arg-type]
            return super().describe_stack_events(StackName, NextToken)

    return Throttled({root: root_events, child: child_events}, {root: [stack]}, statuses), week.strftime("%Y-%m-%d")


@pytest.mark.parametrize("nested_read", [1, 2])
def test_a_nested_stack_throttled_at_attach_is_read_as_at_attach_not_from_its_first_event(nested_read: int) -> None:
    # `status` attaches to the root's update; the nested stack's first read (at attach, or its retry) meets a
    # Throttling that outlasted botocore's retries. That read is made again at the next poll: a poll instead
    # would take the nested stack's whole history as new, print last week's operation and, through
    # first_failure, could name last week's failure as today's cause.
    statuses = ["UPDATE_ROLLBACK_IN_PROGRESS"] * 4 + ["UPDATE_ROLLBACK_COMPLETE"]
    cfn, week = _throttled_nested(nested_read, statuses)
    out: list[str] = []
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=out.append)
    assert "today's cause" in str(ended.value), str(ended.value)
    assert not [line for line in out if line.startswith(week)], out
    assert [line for line in out if "today's cause" in line], out


def test_an_ended_rollback_whose_nested_stack_cannot_be_read_says_so() -> None:
    # `status` after the rollback ended: the nested stack's events, throttled, are read no more (nothing follows).
    # The cause named is the root's line, and the message says where the real cause may be.
    cfn, _ = _throttled_nested(1, ["UPDATE_ROLLBACK_COMPLETE"])
    out: list[str] = []
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=out.append)
    assert str(ended.value).startswith(
        "stack ww ended UPDATE_ROLLBACK_COMPLETE: WinStack UPDATE_FAILED: Embedded stack failed (the events of "
        "WinStack could not be read: Throttling; see: winworkers status --stack-name ww)"
    ), str(ended.value)
