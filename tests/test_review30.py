"""Review 30 (f77ac3c..review30: stack events in pages). Each test is a finding: it fails on the reviewed code
and passes once the finding is fixed. The emulator's tests plant events in its stacks as
tests/test_deploy_operator.py does; the others answer DescribeStackEvents from a fake CloudFormation."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from winworkers.deploy import Clients, DeployError, deploy, follow
from winworkers.deploy.watch import EventStream

REGION = "us-east-1"
ACCOUNT = "123456789012"
QUEUE = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}


def _created(aws: Clients, stack: str) -> str:
    """The stack made in the emulator (its create: REVIEW, CREATE_IN_PROGRESS, Q twice, CREATE_COMPLETE); its id."""
    with contextlib.redirect_stdout(io.StringIO()):
        deploy(aws, stack, QUEUE, {}, poll_seconds=0, echo=lambda _: None)
    return str(aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackId"])


def _plant(stack_name: str, events: list[tuple[str, str, str]]) -> None:
    """Events (logical id, status, reason; oldest first, a second apart) added to the emulator's stack."""
    from moto.cloudformation.models import Event, cloudformation_backends

    stack = cloudformation_backends[ACCOUNT][REGION].get_stack(stack_name)
    at = stack.events[-1].timestamp
    for logical, state, why in events:
        own = logical == stack_name
        physical = stack.stack_id if own else f"{logical}-id"
        kind = "AWS::CloudFormation::Stack" if own else "AWS::SQS::Queue"
        event = Event(stack.stack_id, stack_name, logical, physical, kind, state, why or None, None)
        at += timedelta(seconds=1)
        event.timestamp = at
        stack.events.append(event)


class _Counted:
    """The emulator's CloudFormation client, counting DescribeStackEvents calls."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0

    def describe_stack_events(self, **request: Any) -> Any:
        self.calls += 1
        return self.client.describe_stack_events(**request)


@pytest.fixture()
def pages_of_3(monkeypatch: pytest.MonkeyPatch) -> None:
    from winworkers.emulator import cloudformation

    monkeypatch.setattr(cloudformation, "EVENTS_PAGE", 3)


# 1. API budget: an operation whose start is the last event of a page --------------------------------------------


def test_a_start_at_the_end_of_a_page_costs_one_page_more_not_the_previous_operation(
    aws: Clients, pages_of_3: None
) -> None:
    # _operation's `enough` looks at one page alone: when the operation's start is the last event of a page, the
    # next page (which holds the one older event it wants) is "enough" only if it holds a start of its own, not
    # last. So it reads on through the whole previous operation (here 7 pages more; on AWS a previous update of a
    # big stack is several pages, and it cascades when that start is again last of its page).
    stack = "ww-r30-edge"
    stack_id = _created(aws, stack)
    _plant(stack, [(stack, "UPDATE_IN_PROGRESS", "User Initiated")])
    _plant(stack, [(f"A{n}", "UPDATE_COMPLETE", "") for n in range(20)] + [(stack, "UPDATE_COMPLETE", "")])
    _plant(
        stack,
        [
            (stack, "UPDATE_IN_PROGRESS", "User Initiated"),
            ("B", "UPDATE_FAILED", "the cause"),
            (stack, "UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to update: [B]."),
        ],
    )
    counted = _Counted(aws.cloudformation)
    events = EventStream(counted, stack_id, lambda _: None).last_operation()
    assert [e["LogicalResourceId"] for e in events] == [stack, "B", stack]  # the answer is right ...
    assert counted.calls == 2, counted.calls  # ... but it read 9 pages where 2 hold it and one older event


# 2. API budget: attaching reads the operation twice ---------------------------------------------------------------


def test_attaching_reads_each_page_of_the_operation_once(aws: Clients, pages_of_3: None) -> None:
    # replay_from_last_start pages back to the start (_operation), marks only the OLDER events seen, then poll()
    # pages back over the same operation again to print it: every page of the operation is read twice at each
    # `status` attach (each nested stack's too), on the account's shared CloudFormation API rate.
    stack = "ww-r30-twice"
    stack_id = _created(aws, stack)
    _plant(
        stack,
        [(stack, "UPDATE_IN_PROGRESS", "User Initiated")] + [(f"R{n}", "UPDATE_IN_PROGRESS", "") for n in range(7)],
    )
    counted = _Counted(aws.cloudformation)
    out: list[str] = []
    EventStream(counted, stack_id, out.append).replay_from_last_start()
    assert [line.split()[1] for line in out] == [stack] + [f"R{n}" for n in range(7)]  # printed right ...
    # ... from 3 pages (the start is the 2nd event of the 3rd): once each, and the newest again to follow on.
    assert counted.calls <= 4, counted.calls


# 3. The emulator's token check ------------------------------------------------------------------------------------


def test_a_token_of_other_digits_is_refused_as_invalid(aws: Clients) -> None:
    # _events_in_pages checks token.isdigit() and then int(token): "²" is a digit to isdigit but not to int, so the
    # emulator answers a 500 (an HTML page botocore cannot parse, retried) instead of its ValidationError.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    _created(aws, "ww-r30-token")
    client = boto3.client(
        "cloudformation",
        endpoint_url=aws.cloudformation.meta.endpoint_url,
        region_name=REGION,
        aws_access_key_id="t",
        aws_secret_access_key="t",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError, match="Invalid NextToken"):
        client.describe_stack_events(StackName="ww-r30-token", NextToken="\u00b2")


# A fake CloudFormation for what the emulator cannot show -----------------------------------------------------------

T = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _event(
    stack_id: str, n: int, logical: str, status: str, at: datetime, reason: str = "", **more: str
) -> dict[str, Any]:
    name = stack_id.split("/")[1]
    own = logical == name
    return {
        "StackId": stack_id,
        "StackName": name,
        "EventId": f"{name}-{n}",
        "LogicalResourceId": logical,
        "PhysicalResourceId": stack_id if own else more.get("physical", f"{logical}-id"),
        "ResourceType": "AWS::CloudFormation::Stack" if own else more.get("kind", "AWS::SQS::Queue"),
        "ResourceStatus": status,
        "ResourceStatusReason": reason,
        "Timestamp": at,
    }


class _Cfn:
    """DescribeStackEvents newest first in pages of ``page``, the token an offset from the newest event (AWS's token
    is opaque: nothing documents it stable while events are added); a stack's ``arriving`` events (oldest first)
    are added before the first read of a page after the first; DescribeStacks answers ``statuses`` in turn (the last
    one then)."""

    def __init__(
        self,
        events: dict[str, list[dict[str, Any]]],
        resources: dict[str, list[dict[str, Any]]],
        statuses: list[str],
        page: int = 100,
        arriving: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.events, self.resources, self.statuses, self.page = events, resources, statuses, page
        self.arriving = arriving or {}

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        stack_id = next(s for s in self.events if s.split("/")[1] == StackName or s == StackName)
        return {"Stacks": [{"StackName": StackName, "StackId": stack_id, "StackStatus": status, "CreationTime": T}]}

    def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
        if NextToken is not None and self.arriving.get(StackName):
            self.events[StackName][:0] = reversed(self.arriving.pop(StackName))
        skip = int(NextToken or 0)
        listed = self.events[StackName]
        page = listed[skip : skip + self.page]
        more = skip + len(page) < len(listed)
        return {"StackEvents": page, **({"NextToken": str(skip + len(page))} if more else {})}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_stack_resources"
        resources = self.resources

        class Paginator:
            def paginate(self, StackName: str) -> list[dict[str, Any]]:
                return [{"StackResourceSummaries": resources.get(StackName, [])}]

        return Paginator()


# 4. Nested stacks: an untouched nested stack's old operation --------------------------------------------------------


def test_an_untouched_nested_stack_s_old_operation_is_neither_replayed_nor_the_cause() -> None:
    # `status` attaches to the root's update rolling back: its queue failed before the nested stack's update began
    # (the nested stack waits on it, or was cancelled before it started), so the nested stack has no event of this
    # operation. Its last operation of its own is last week's failed update: replay_from_last_start prints it as if
    # under way (since this change, through every page of it), and first_failure, the earliest failure printed,
    # names it as the cause of today's rollback. (Pre-existing within one page; widened by the paging.)
    root = "arn:aws:cloudformation:us-east-1:1:stack/ww/1"
    child = "arn:aws:cloudformation:us-east-1:1:stack/ww-WinStack-X/2"
    week = T - timedelta(days=7)
    root_events = [  # newest first
        _event(root, 5, "ww", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=3), "failed to update: [Q]."),
        _event(root, 4, "Q", "UPDATE_FAILED", T + timedelta(seconds=2), "the queue is being deleted"),
        _event(root, 3, "Q", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
        _event(root, 2, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
        _event(root, 1, "ww", "CREATE_COMPLETE", week - timedelta(days=30)),
        _event(root, 0, "ww", "CREATE_IN_PROGRESS", week - timedelta(days=30), "User Initiated"),
    ]
    group = {"kind": "AWS::AutoScaling::AutoScalingGroup", "physical": "g"}
    child_events = [
        _event(child, 5, "ww-WinStack-X", "UPDATE_ROLLBACK_COMPLETE", week + timedelta(seconds=4)),
        _event(child, 4, "ww-WinStack-X", "UPDATE_ROLLBACK_IN_PROGRESS", week + timedelta(seconds=3), "[WinGroup]"),
        _event(child, 3, "WinGroup", "UPDATE_FAILED", week + timedelta(seconds=2), "last week's failure", **group),
        _event(child, 2, "WinGroup", "UPDATE_IN_PROGRESS", week + timedelta(seconds=1), **group),
        _event(child, 1, "ww-WinStack-X", "UPDATE_IN_PROGRESS", week),
        _event(child, 0, "ww-WinStack-X", "CREATE_COMPLETE", week - timedelta(days=30)),
    ]
    resources = {
        root: [
            {"LogicalResourceId": "Q", "ResourceType": "AWS::SQS::Queue", "PhysicalResourceId": "Q-id"},
            {
                "LogicalResourceId": "WinStack",
                "ResourceType": "AWS::CloudFormation::Stack",
                "PhysicalResourceId": child,
            },
        ],
        child: [
            {
                "LogicalResourceId": "WinGroup",
                "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
                "PhysicalResourceId": "g",
            }
        ],
    }
    cfn = _Cfn(
        {root: root_events, child: child_events}, resources, ["UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]
    )
    out: list[str] = []
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=out.append)
    assert str(ended.value).startswith(
        "stack ww ended UPDATE_ROLLBACK_COMPLETE: Q UPDATE_FAILED: the queue is being deleted"
    )
    assert not [line for line in out if line.startswith(week.strftime("%Y-%m-%d"))], out


# 5. Events arriving between pages ------------------------------------------------------------------------------------


def test_a_page_that_repeats_events_does_not_hide_the_operation_s_events() -> None:
    # AWS's NextToken is opaque: if events added between two reads shift the next page (as an offset from the newest
    # would), page 2 repeats page 1's oldest events. replay_from_last_start marks events[start + 1:] seen by EventId,
    # and those repeats include the start and events of the operation itself: they are never printed.
    stack = "arn:aws:cloudformation:us-east-1:1:stack/ww/1"
    older = [_event(stack, n, f"O{n}", "UPDATE_COMPLETE", T - timedelta(hours=1, seconds=n)) for n in range(1, 4)]
    operation = [
        _event(stack, 12, "E2", "UPDATE_IN_PROGRESS", T + timedelta(seconds=2)),
        _event(stack, 11, "E1", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
        _event(stack, 10, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
    ]
    arriving = [
        _event(stack, 13 + n, f"E{3 + n}", "UPDATE_IN_PROGRESS", T + timedelta(seconds=3 + n)) for n in range(2)
    ]
    cfn = _Cfn({stack: operation + older}, {}, ["UPDATE_IN_PROGRESS"], page=3, arriving={stack: arriving})
    out: list[str] = []
    stream = EventStream(cfn, stack, out.append)
    stream.replay_from_last_start()  # the start is the last of page 1; two events arrive before page 2 is read
    printed = [line.split()[1] for line in out]
    assert printed[:3] == ["ww", "E1", "E2"], out


# 6. `status` of a finished rollback whose cause is in a nested stack ------------------------------------------------


def test_status_of_a_finished_rollback_names_the_nested_stack_s_own_failure_as_deploy_does() -> None:
    # deploy prints the nested stack's events as they come, so its rollback line names the child's resource (the
    # earliest failure). `status` on the same stack once it has ended takes the last operation of the root only
    # (follow: watcher.streams[0].printed = last_operation()): it names the root's "Embedded stack ... was not
    # successfully updated" instead, and the group's own reason is not shown anywhere. The feature's fleet is
    # in the nested stack (templates/parent-nested.json), so that is where its failures are.
    root = "arn:aws:cloudformation:us-east-1:1:stack/ww/1"
    child = "arn:aws:cloudformation:us-east-1:1:stack/ww-WinStack-X/2"
    nested = {"kind": "AWS::CloudFormation::Stack", "physical": child}
    group = {"kind": "AWS::AutoScaling::AutoScalingGroup", "physical": "g"}
    embedded = (
        f"Embedded stack {child} was not successfully updated. Currently in UPDATE_ROLLBACK_IN_PROGRESS with reason: "
        "The following resource(s) failed to update: [WinGroup]."
    )

    def at(seconds: int) -> datetime:
        return T + timedelta(seconds=seconds)

    root_events = [  # newest first
        _event(root, 6, "ww", "UPDATE_ROLLBACK_COMPLETE", at(9)),
        _event(root, 5, "WinStack", "UPDATE_COMPLETE", at(8), **nested),
        _event(
            root,
            4,
            "ww",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            at(5),
            "The following resource(s) failed to update: [WinStack].",
        ),
        _event(root, 3, "WinStack", "UPDATE_FAILED", at(4), embedded, **nested),
        _event(root, 2, "WinStack", "UPDATE_IN_PROGRESS", at(1), **nested),
        _event(root, 1, "ww", "UPDATE_IN_PROGRESS", at(0), "User Initiated"),
        _event(root, 0, "ww", "CREATE_COMPLETE", T - timedelta(days=30)),
    ]
    child_events = [
        _event(child, 5, "ww-WinStack-X", "UPDATE_ROLLBACK_COMPLETE", at(7)),
        _event(child, 4, "ww-WinStack-X", "UPDATE_ROLLBACK_IN_PROGRESS", at(3), "failed to update: [WinGroup]."),
        _event(child, 3, "WinGroup", "UPDATE_FAILED", at(2), "Group did not stabilize", **group),
        _event(child, 2, "WinGroup", "UPDATE_IN_PROGRESS", at(2), **group),
        _event(child, 1, "ww-WinStack-X", "UPDATE_IN_PROGRESS", at(1)),
        _event(child, 0, "ww-WinStack-X", "CREATE_COMPLETE", T - timedelta(days=30)),
    ]
    resources = {
        root: [
            {"LogicalResourceId": "WinStack", "ResourceType": "AWS::CloudFormation::Stack", "PhysicalResourceId": child}
        ],
        child: [{"LogicalResourceId": "WinGroup", "ResourceType": group["kind"], "PhysicalResourceId": "g"}],
    }
    cfn = _Cfn({root: root_events, child: child_events}, resources, ["UPDATE_ROLLBACK_COMPLETE"])
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=lambda _: None)
    assert str(ended.value).startswith("stack ww ended UPDATE_ROLLBACK_COMPLETE: WinGroup UPDATE_FAILED: Group did not")


# 7. Tests that read only the newest page of the feature stack's events ---------------------------------------------


def test_the_emulator_tests_read_every_page_of_the_feature_stack_s_events() -> None:
    # Since patch 29 the emulator answers 100 events a page, and the feature's create alone is more than a page
    # (tests/test_deploy_safety.py's budget). These tests still read describe_stack_events(...)["StackEvents"] once:
    # they now judge the newest 100 events only (test_emulator_defects' "unexpected keyword" check, the check of
    # moto's update signature that _moto_update now adapts, no longer sees every event of the stack), or miss the
    # notes of a step of more than 100 events (test_emulator_differential's _notes, test_review26's NOT MODELLED).
    import ast
    from pathlib import Path

    def one_page(node: ast.Subscript) -> bool:  # describe_stack_events(...)[...] without a NextToken
        call = node.value
        return (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "describe_stack_events"
            and not any(k.arg == "NextToken" for k in call.keywords)
        )

    found = []
    for name in ("test_emulator_defects.py", "test_emulator_differential.py", "test_review26.py"):
        tree = ast.parse((Path(__file__).parent / name).read_text())
        for function in (f for f in tree.body if isinstance(f, ast.FunctionDef)):
            if function.name == "_last_reason":  # the newest reason: the newest page holds it
                continue
            found += [
                f"{name}:{n.lineno} ({function.name})"
                for n in ast.walk(function)
                if isinstance(n, ast.Subscript) and one_page(n)
            ]
    assert found == [], found
