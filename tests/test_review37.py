"""Review 37 (bd88271: the whole of d4a0f19..HEAD in winworkers/deploy/watch.py and execute.py). Each test is a
finding: it fails on the reviewed code and passes once it is fixed. CloudFormation is tests/test_review31b.py's fake
(``_Throttled``), with errors planted as botocore raises them once its own retries are spent."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from test_review30 import T, _Cfn, _event
from test_review31b import CHILD, NESTED, REGION, ROOT, STACK, _history, _Throttled

from winworkers.deploy import Clients, DeployError, follow
from winworkers.deploy.execute import _execute, _Run

LISTED = {ROOT: [{**STACK, "ResourceStatus": "UPDATE_COMPLETE"}]}


def _succeeded() -> dict[str, list[dict[str, Any]]]:
    """Today's update (oldest first), ending well: WinStack's queue Q is updated."""
    return {
        ROOT: [
            _event(ROOT, 1, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
            _event(ROOT, 2, "WinStack", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1), **NESTED),
            _event(ROOT, 3, "WinStack", "UPDATE_COMPLETE", T + timedelta(seconds=3), **NESTED),
            _event(ROOT, 4, "ww", "UPDATE_COMPLETE", T + timedelta(seconds=4)),
        ],
        CHILD: [
            _event(CHILD, 4, "ww-WinStack-X", "UPDATE_IN_PROGRESS", T + timedelta(seconds=1)),
            _event(CHILD, 5, "Q", "UPDATE_COMPLETE", T + timedelta(seconds=2), "today's change"),
            _event(CHILD, 6, "ww-WinStack-X", "UPDATE_COMPLETE", T + timedelta(seconds=2)),
        ],
    }


def test_unshown_events_after_a_success_do_not_point_at_a_status_that_does_not_show_them() -> None:
    """LOW-MEDIUM (a pointer to something that does not happen). After an operation that ended well, _say_unread
    (execute.py _execute, and follow after an operation it followed) prints "not shown: the events of WinStack could
    not be read: Throttling; see: winworkers status --stack-name ww". But `winworkers status` on a stack that is no
    longer in progress and did not fail (follow: ``watcher.tree`` + refreshes, no replay, no take_last_operation)
    prints no event at all: the operator who follows the advice sees only "stack ww: UPDATE_COMPLETE" and never the
    events said to be there. Either point at what shows them (e.g. aws cloudformation describe-stack-events
    --stack-name <id>, as _delete's note drops the pointer) or make status show the last operation's events."""
    cfn = _Throttled(
        _history(), LISTED, ["UPDATE_IN_PROGRESS"] * 3 + ["UPDATE_COMPLETE"], {CHILD: range(1, 100)}, _succeeded()
    )
    out: list[str] = []
    run = _Run(Clients(cfn, None, None, REGION), "ww", out.append, time.monotonic() + 60, 1, 0)
    _execute(run, "cs", ROOT, False, False, lambda _: None)
    assert [line for line in out if line.startswith("not shown:") and "WinStack" in line], out  # said
    pointed = [line for line in out if line.startswith("not shown:") and "winworkers status --stack-name ww" in line]
    if pointed:  # (lead, at the fix: the note no longer points at status after a success; if it did, status must show)
        shown: list[str] = []
        after = _Cfn(cfn.events, LISTED, ["UPDATE_COMPLETE"])  # nothing throttled now
        assert follow(Clients(after, None, None, REGION), "ww", echo=shown.append, poll_seconds=0) == "UPDATE_COMPLETE"
        assert [line for line in shown if "WinStack/Q" in line and "today's change" in line], (pointed, shown)


def test_status_of_a_failed_deletion_says_what_to_do_with_a_deletion() -> None:
    """LOW (a status after the end that names the wrong next step). `winworkers status` on a stack left DELETE_FAILED
    by a deletion (a bucket not empty, say) ends via _ended's ``final.endswith("_FAILED")`` branch: "it was not
    rolled back; fix the cause and run again, or delete it". A deletion has no rollback, and a DELETE_FAILED stack
    cannot be updated: "run again" (deploy) cannot work; the one way on is the deletion again, retaining what cannot
    be deleted (DeleteStack's RetainResources "For stacks in the DELETE_FAILED state",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DeleteStack.html). winworkers delete's own
    message for the same end says it right ("fix or retain what failed, then: winworkers delete ...")."""
    events = {
        ROOT: [
            _event(ROOT, 3, "ww", "DELETE_FAILED", T + timedelta(seconds=3), "failed: [Bucket]"),
            _event(ROOT, 2, "Bucket", "DELETE_FAILED", T + timedelta(seconds=2), "The bucket is not empty"),
            _event(ROOT, 1, "ww", "DELETE_IN_PROGRESS", T, "User Initiated"),
        ]
    }
    cfn = _Cfn(events, {}, ["DELETE_FAILED"])
    with pytest.raises(DeployError) as ended:
        follow(Clients(cfn, None, None, REGION), "ww", echo=lambda _: None, poll_seconds=0)
    message = str(ended.value)
    assert "Bucket DELETE_FAILED: The bucket is not empty" in message, message  # the cause is right
    assert "rolled back" not in message and "run again" not in message, message
