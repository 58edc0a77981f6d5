"""Review 31b (21f50ab, 7bd22c1, a0027d7: a nested stack's first read that a Throttling stopped is made again at the
next poll, ``Watcher.unread``; a failed operation's message names the nested stacks that could not be read).

Each test is a finding: it fails on the reviewed code and passes once the finding is fixed. CloudFormation is
tests/test_review30.py's fake (``_Cfn``: DescribeStackEvents newest first in pages, ListStackResources, DescribeStacks
answering statuses in turn), with errors planted as botocore raises them once its own retries are spent.

AWS facts relied on: DescribeStackEvents "Returns all stack related events for a specified stack in reverse
chronological order" (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html,
register rows 65, 283); botocore's standard retry mode retries throttling codes and also "the HTTP 500/502/503/504
status codes for nondescriptive transient errors" (https://docs.aws.amazon.com/boto3/latest/guide/retries.html,
register row 207), so an error ``_transient`` accepts is not always a throttling."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from test_review30 import T, _Cfn, _event

from winworkers.deploy import Clients, DeployError, follow
from winworkers.deploy.execute import _execute, _Run

REGION = "us-east-1"
ROOT = "arn:aws:cloudformation:us-east-1:1:stack/ww/1"
CHILD = "arn:aws:cloudformation:us-east-1:1:stack/ww-WinStack-X/2"
GRANDCHILD = "arn:aws:cloudformation:us-east-1:1:stack/ww-WinStack-X-Inner-Y/3"
WEEK = T - timedelta(days=7)
NESTED = {"kind": "AWS::CloudFormation::Stack", "physical": CHILD}
STACK = {"LogicalResourceId": "WinStack", "ResourceType": "AWS::CloudFormation::Stack", "PhysicalResourceId": CHILD}
INNER = {"LogicalResourceId": "Inner", "ResourceType": "AWS::CloudFormation::Stack", "PhysicalResourceId": GRANDCHILD}


def _error(code: str, status: int, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    answer: Any = {"Error": {"Code": code, "Message": "Rate exceeded"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    error: Exception = ClientError(answer, operation)
    return error


class _Throttled(_Cfn):
    """_Cfn whose DescribeStackEvents of a stack fails (``code``, HTTP ``status``) at the reads numbered in
    ``failing[stack]`` (1 = its first read), whose ListStackResources fails for the stacks in ``unlisted``
    (botocore's error after its retries), and whose ExecuteChangeSet adds ``operation``'s events (oldest first)."""

    def __init__(
        self,
        events: dict[str, list[dict[str, Any]]],
        resources: dict[str, list[dict[str, Any]]],
        statuses: list[str],
        failing: dict[str, set[int] | range],
        operation: dict[str, list[dict[str, Any]]] | None = None,
        unlisted: tuple[str, ...] = (),
        code: tuple[str, int] = ("Throttling", 400),
    ) -> None:
        super().__init__(events, resources, statuses)
        self.failing, self.operation, self.unlisted, self.code = failing, operation or {}, unlisted, code
        self.reads: dict[str, int] = {}

    def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
        self.reads[StackName] = self.reads.get(StackName, 0) + 1
        if self.reads[StackName] in self.failing.get(StackName, ()):
            raise _error(*self.code, "DescribeStackEvents")
        return super().describe_stack_events(StackName, NextToken)

    def delete_change_set(self, ChangeSetName: str) -> dict[str, Any]:
        self.deleted = ChangeSetName
        return {}

    def execute_change_set(self, ChangeSetName: str, **_: Any) -> dict[str, Any]:
        for stack_id, events in self.operation.items():
            self.events[stack_id][:0] = reversed(events)
        return {}

    def get_paginator(self, name: str) -> Any:
        outer = self

        class Paginator:
            def paginate(self, StackName: str) -> list[dict[str, Any]]:
                if StackName in outer.unlisted:
                    raise _error("Throttling", 400, "ListStackResources")
                return [{"StackResourceSummaries": outer.resources.get(StackName, [])}]

        return Paginator()


def _history() -> dict[str, list[dict[str, Any]]]:
    """Before today's update (newest first): the root created a month ago; its nested stack WinStack failed an
    update last week (Q: "last week's failure") and rolled back."""
    return {
        ROOT: [_event(ROOT, 0, "ww", "CREATE_COMPLETE", WEEK - timedelta(days=30))],
        CHILD: [
            _event(CHILD, 3, "ww-WinStack-X", "UPDATE_ROLLBACK_COMPLETE", WEEK + timedelta(seconds=3)),
            _event(CHILD, 2, "Q", "UPDATE_FAILED", WEEK + timedelta(seconds=2), "last week's failure"),
            _event(CHILD, 1, "ww-WinStack-X", "UPDATE_IN_PROGRESS", WEEK),
            _event(CHILD, 0, "ww-WinStack-X", "CREATE_COMPLETE", WEEK - timedelta(days=30)),
        ],
    }


def _today() -> dict[str, list[dict[str, Any]]]:
    """Today's update (oldest first): WinStack's Q fails ("today's cause"), the root rolls back."""
    return {
        ROOT: [
            _event(ROOT, 1, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
            _event(ROOT, 2, "WinStack", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1), **NESTED),
            _event(ROOT, 3, "WinStack", "UPDATE_FAILED", T + timedelta(seconds=3), "Embedded stack failed", **NESTED),
            _event(ROOT, 4, "ww", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=4), "failed: [WinStack]."),
        ],
        CHILD: [
            _event(CHILD, 4, "ww-WinStack-X", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
            _event(CHILD, 5, "Q", "UPDATE_FAILED", T + timedelta(seconds=2), "today's cause"),
        ],
    }


def _failed_in_root() -> dict[str, list[dict[str, Any]]]:
    """Today's update (oldest first) failing in the root's own resource Q ("today's cause"); WinStack untouched."""
    return {
        ROOT: [
            _event(ROOT, 1, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
            _event(ROOT, 2, "Q", "UPDATE_FAILED", T + timedelta(seconds=2), "today's cause"),
            _event(ROOT, 3, "ww", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=3), "failed: [Q]."),
        ]
    }


ROLLING_BACK = ["UPDATE_ROLLBACK_IN_PROGRESS"] * 3 + ["UPDATE_ROLLBACK_COMPLETE"]


def _deploy(cfn: _Throttled) -> tuple[str, list[str]]:
    """deploy's own follow (execute.py _execute: Watcher.prime, ExecuteChangeSet, wait_stack, _ended): its message."""
    out: list[str] = []
    run = _Run(Clients(cfn, None, None, REGION), "ww", out.append, time.monotonic() + 60, 1, 0)
    with pytest.raises(DeployError) as ended:
        _execute(run, "cs", ROOT, False, False, lambda _: None)
    return str(ended.value), out


@pytest.mark.parametrize("throttled_reads", [{1}, {1, 2}])
def test_deploy_retried_prime_does_not_swallow_the_operations_own_events(throttled_reads: set[int]) -> None:
    """HIGH. deploy primes the nested stack before ExecuteChangeSet; that read is throttled and kept in
    Watcher.unread, and made again at the next poll (or the one after, when that is throttled too) as a PRIME: by then
    the update has run in WinStack, so its own events (Q UPDATE_FAILED "today's cause") are taken as seen: never
    printed, never in ``printed``, so first_failure names the root's "WinStack UPDATE_FAILED: Embedded stack failed"
    and the message no longer says WinStack could not be read (unread was emptied by the successful retry). The
    operator is told a cause that is not the cause, with nothing saying so. A prime made late should take as seen only
    what is older than the operation (e.g. a replay from the root's start, as `status` does)."""
    cfn = _Throttled(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {CHILD: throttled_reads}, _today())
    message, out = _deploy(cfn)
    assert "Q UPDATE_FAILED: today's cause" in message, message
    assert [line for line in out if "today's cause" in line], out


def test_deploy_nested_stack_unlisted_at_prime_is_not_read_from_its_first_event() -> None:
    """HIGH (the same wrong cause the commits fix, by another throttled first read). deploy's prime lists the nested
    stacks with ListStackResources (stack_tree), which swallows every ClientError, a Throttling included, as "lists
    nothing yet": WinStack gets no stream and no prime. It is found later from the root's events, and its first read is
    then a plain poll with nothing seen: its whole history is printed as new (last week's operation) and
    first_failure, the earliest failure printed, names "last week's failure" as the cause of today's rollback."""
    cfn = _Throttled(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {}, _today(), unlisted=(ROOT,))
    message, out = _deploy(cfn)
    assert "last week's failure" not in message, message
    assert not [line for line in out if line.startswith(WEEK.strftime("%Y-%m-%d"))], out


@pytest.mark.parametrize("stack", ["root", "nested"])
def test_deploy_events_unread_at_the_end_are_said_not_replaced_by_a_wrong_cause(stack: str) -> None:
    """MEDIUM. Only a FIRST read that was throttled is noted in Watcher.unread; a poll throttled again and again until
    the operation ends (the account's CloudFormation rate is shared: the same throttling) leaves no trace. The message
    then names a cause from what was read and says nothing of what was not: the nested stack's events unread, it
    names the root's "Embedded stack failed"; the root's own events unread, it says "no resource failed", which is
    false. Either the cause, or a note that those events could not be read (as 7bd22c1 does for a first read)."""
    stack_id, today = (ROOT, _failed_in_root()) if stack == "root" else (CHILD, _today())
    cfn = _Throttled(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {stack_id: range(2, 100)}, today)
    message, _ = _deploy(cfn)
    named = "today's cause" in message
    said = "could not be read" in message
    assert named or said, message
    assert "no resource failed" not in message or said, message


def test_status_retried_replay_reads_a_grandchild_found_then_from_the_roots_start() -> None:
    """MEDIUM. `status` attaches to the update; WinStack's ListStackResources and its first DescribeStackEvents are
    throttled (one burst). _each_nested would have replayed the nested stacks WinStack's events name (Inner) from the
    root's start; but WinStack's replay is made again in Watcher.poll, whose new events are only handed to _follow:
    the stream for Inner found there gets a plain poll, with nothing seen, and prints Inner's whole history (last
    week's failed operation) and first_failure names last week's failure."""
    history = _history()
    history[ROOT] = list(reversed(_today()[ROOT])) + history[ROOT]
    inner = {"kind": "AWS::CloudFormation::Stack", "physical": GRANDCHILD}
    history[CHILD] = [
        _event(CHILD, 7, "ww-WinStack-X", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=3)),
        _event(CHILD, 6, "Inner", "UPDATE_FAILED", T + timedelta(seconds=2), "Embedded stack failed", **inner),
        _event(CHILD, 5, "Inner", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1), **inner),
        _event(CHILD, 4, "ww-WinStack-X", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
        *history[CHILD],
    ]
    history[GRANDCHILD] = [
        _event(GRANDCHILD, 4, "R", "UPDATE_FAILED", T + timedelta(seconds=2), "today's cause"),
        _event(GRANDCHILD, 3, "ww-WinStack-X-Inner-Y", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
        _event(GRANDCHILD, 2, "ww-WinStack-X-Inner-Y", "UPDATE_ROLLBACK_COMPLETE", WEEK + timedelta(seconds=3)),
        _event(GRANDCHILD, 1, "R", "UPDATE_FAILED", WEEK + timedelta(seconds=2), "last week's failure"),
        _event(GRANDCHILD, 0, "ww-WinStack-X-Inner-Y", "CREATE_COMPLETE", WEEK - timedelta(days=30)),
    ]
    resources = {ROOT: [STACK], CHILD: [INNER]}
    cfn = _Throttled(history, resources, list(ROLLING_BACK), {CHILD: {1}}, unlisted=(CHILD,))
    out: list[str] = []
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=out.append)
    assert "last week's failure" not in str(ended.value), str(ended.value)
    assert not [line for line in out if line.startswith(WEEK.strftime("%Y-%m-%d"))], out


def test_an_unread_nested_stack_that_was_not_throttled_is_not_called_throttled() -> None:
    """LOW. _transient accepts what botocore's standard mode retries: throttling codes, and also HTTP 500/502/503/504
    (register row 207). A nested stack whose events an InternalFailure (HTTP 500) kept unread is reported as
    "could not be read: throttled": the operator is sent to look at API rate limits for a service fault."""
    cfn = _Throttled(
        {ROOT: list(reversed(_today()[ROOT])) + _history()[ROOT], CHILD: _history()[CHILD]},
        {ROOT: [STACK]},
        ["UPDATE_ROLLBACK_COMPLETE"],
        {CHILD: {1}},
        code=("InternalFailure", 500),
    )
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=lambda _: None)
    assert "could not be read" in str(ended.value), str(ended.value)
    assert "throttled" not in str(ended.value), str(ended.value)


def test_the_unread_note_gives_the_status_command_in_full() -> None:
    """LOW (wording). Every other line that sends the operator on gives the command to type ("winworkers status
    --stack-name ww", _ended, wait_stack's timeout, the refresh lines); the unread note says only "winworkers status
    reads them again", which does not run as written. With two nested stacks unread (one nested in the other:
    WinStack/Inner) the note names both, which is sound."""
    history = _history()
    history[ROOT] = list(reversed(_today()[ROOT])) + history[ROOT]
    history[GRANDCHILD] = [_event(GRANDCHILD, 0, "ww-WinStack-X-Inner-Y", "CREATE_COMPLETE", WEEK)]
    resources = {ROOT: [STACK], CHILD: [INNER]}
    cfn = _Throttled(history, resources, ["UPDATE_ROLLBACK_COMPLETE"], {CHILD: {1}, GRANDCHILD: {1}})
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", poll_seconds=0, echo=lambda _: None)
    assert "the events of WinStack, WinStack/Inner could not be read" in str(ended.value), str(ended.value)
    assert "winworkers status --stack-name ww" in str(ended.value), str(ended.value)


def test_deploy_root_first_read_throttled_does_not_end_with_a_bare_botocore_error() -> None:
    """LOW. A nested stack's throttled prime is now made again later, but the root's own prime (deploy's first read,
    after the change set was made, before it is executed) still raises botocore's ClientError out of _execute: the
    operator gets "An error occurred (Throttling) when calling the DescribeStackEvents operation" and nothing saying
    the change set was made but not executed (nothing changed), or the deploy goes on and reads the root's events
    from the operation's start."""
    from botocore.exceptions import ClientError

    cfn = _Throttled(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {ROOT: {1}}, _today())
    run = _Run(Clients(cfn, None, None, REGION), "ww", lambda _: None, time.monotonic() + 60, 1, 0)
    try:
        _execute(run, "cs", ROOT, False, False, lambda _: None)
    except ClientError as error:
        pytest.fail(f"deploy ended with botocore's error: {error}")
    except DeployError as error:
        executed = cfn.events[ROOT][0]["EventId"] != "ww-0"
        assert executed or "nothing was changed" in str(error), str(error)
        assert executed or getattr(cfn, "deleted", None) == "cs"  # the change set not left behind (lead, at the fix)


def test_deploy_describe_stacks_throttled_mid_operation_does_not_end_the_follow_bare() -> None:
    """MEDIUM (beside the commits: the same throttling, on the other read of each poll). wait_stack's DescribeStacks
    is not tolerant: one Throttling that outlasted botocore's retries mid-operation ends `winworkers deploy` with
    botocore's line, exit 1, while CloudFormation carries on: no cause, and nothing says the operation goes on or to
    follow it with `winworkers status --stack-name ww` (as the timeout and Ctrl-C say). The events reads of the same
    poll are asked again at the next poll; DescribeStacks could be too."""
    from botocore.exceptions import ClientError

    class Flaky(_Throttled):
        calls = 0

        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise _error("Throttling", 400, "DescribeStacks")
            return super().describe_stacks(StackName)

    cfn = Flaky(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {}, _today())
    run = _Run(Clients(cfn, None, None, REGION), "ww", lambda _: None, time.monotonic() + 60, 1, 0)
    try:
        _execute(run, "cs", ROOT, False, False, lambda _: None)
    except ClientError as error:
        pytest.fail(f"the follow ended with botocore's error mid-operation: {error}")
    except DeployError as error:
        assert "today's cause" in str(error) or "winworkers status --stack-name ww" in str(error), str(error)
