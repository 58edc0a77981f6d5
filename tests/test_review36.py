"""Review 36 (d0ec3ea: _Run.recreated; _primed on any error; _unless_unlisted on any error; _resources tolerant;
_say_deletion stops on a transient error; _delete prints DELETE_COMPLETE; stack_tree raises all but "does not
exist"). Each test is a finding: it fails on the reviewed code and passes once it is fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_deploy import VPC_TEMPLATE, Output, _deploy

from winworkers.deploy import Clients, DeployError


def test_recreate_whose_change_set_fails_does_not_say_nothing_was_changed(
    aws: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MEDIUM (a false "nothing was changed", the same class review 35 found at _primed). d0ec3ea adds
    _Run.recreated and uses it in _primed only. deploy over a stack whose creation failed deletes it first
    (_recreate_failed -> _delete_failed -> _delete, which prints "stack X: DELETE_COMPLETE"), THEN makes the CREATE
    change set (_make_change_set). When that change set FAILS (a CREATE change set fails on, e.g., a template or
    parameter CloudFormation refuses at change-set time), _make_change_set ends "the change set for X failed: ...
    (nothing was changed; fix the cause and run again)" without looking at run.recreated. The failed stack, its
    resources and the events that said why it failed, were deleted in this run: the operator (or CI reading the last
    line) is told the opposite, as review 35 described for _primed. Measured on the emulator; the change set's
    FAILED status is faked (DescribeChangeSet), the deletion before it is real."""
    template = tmp_path / "vpc.json"
    template.write_text(json.dumps(VPC_TEMPLATE))
    with pytest.raises(DeployError, match="ROLLBACK_COMPLETE"):  # EC2 refuses a VPC larger than /16
        _deploy(aws, "ww-r36", template, {"Cidr": "10.0.0.0/8"})
    cfn = aws.cloudformation
    real = cfn.describe_change_set

    def failed(**kwargs: Any) -> dict[str, Any]:
        described: dict[str, Any] = real(**kwargs)
        return {**described, "Status": "FAILED", "StatusReason": "Template error: an unresolved reference"}

    monkeypatch.setattr(cfn, "describe_change_set", failed)
    output = Output()
    with pytest.raises(DeployError) as raised:
        _deploy(aws, "ww-r36", template, {"Cidr": "10.0.0.0/16"}, echo=output.append, yes=True)
    assert "stack ww-r36: DELETE_COMPLETE" in output  # the failed stack was deleted in this run
    message = str(raised.value)
    assert "failed" in message, message
    assert "nothing was changed" not in message, message


def test_status_goes_on_saying_not_listed_when_the_listing_is_denied() -> None:
    """LOW (a read-only command that used to work now ends on botocore's line). d0ec3ea makes stack_tree raise every
    ClientError but "does not exist" (right for deploy's refresh gate and prime). But `winworkers status`
    (execute.follow) lists through Watcher.tree(tolerant=True), which still tolerates only an error botocore
    retries: an AccessDenied (a read-only role without cloudformation:ListStackResources) or any other
    non-transient listing error now ends status with "An error occurred (AccessDenied) when calling the
    ListStackResources operation", after "stack ww: UPDATE_COMPLETE" and before the stack's events or cause are
    shown; before d0ec3ea it went on. status changes nothing: the listing only names the groups whose refreshes
    it shows, and follow already has the line for it ("not listed: the stack's resources (X); refreshes of its
    groups may not be shown"), which tree() now fills for any error (unlisted = error_code) but raises anyway."""
    from test_review31b import ROOT, STACK, _error, _history, _Throttled

    from winworkers.deploy.execute import follow

    class Denied(_Throttled):
        def get_paginator(self, name: str) -> Any:
            raise _error("AccessDenied", 403, "ListStackResources")

    out: list[str] = []
    cfn = Denied(_history(), {ROOT: [STACK]}, ["UPDATE_COMPLETE"], {})
    status = follow(Clients(cfn, None, None, "us-east-1"), "ww", echo=out.append, poll_seconds=0, wait=False)
    assert status == "UPDATE_COMPLETE"
    assert any(line.startswith("not listed") and "AccessDenied" in line for line in out), out


def test_recreate_that_stops_at_prime_says_run_again_once(
    aws: Clients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOW (a garbled last line). d0ec3ea's _primed builds f"...: {left}; {done}; run again" where, for a recreate,
    done is already "the failed stack was deleted before it: run again to create it": the line ends "...the change
    set was deleted; the failed stack was deleted before it: run again to create it; run again". The one line
    CI shows says "run again" twice, the second without what for. Measured on the emulator as review 35 did (the new
    stack's listing throttled at _execute's prime)."""
    from test_review31b import _error

    from winworkers.deploy import watch

    template = tmp_path / "vpc.json"
    template.write_text(json.dumps(VPC_TEMPLATE))
    with pytest.raises(DeployError, match="ROLLBACK_COMPLETE"):
        _deploy(aws, "ww-r36b", template, {"Cidr": "10.0.0.0/8"})
    failed = aws.cloudformation.describe_stacks(StackName="ww-r36b")["Stacks"][0]["StackId"]
    real = watch.stack_tree

    def throttled(cfn: Any, stack_id: str, prefix: str = "") -> Any:
        if stack_id != failed:
            raise _error("Throttling", 400, "ListStackResources")
        return real(cfn, stack_id, prefix)

    monkeypatch.setattr(watch, "stack_tree", throttled)
    with pytest.raises(DeployError) as raised:
        _deploy(aws, "ww-r36b", template, {"Cidr": "10.0.0.0/16"}, yes=True)
    message = str(raised.value)
    assert "the failed stack was deleted" in message, message
    assert message.count("run again") == 1, message


def test_refresh_gate_stopped_by_a_denial_names_what_was_denied_not_just_run_again() -> None:
    """LOW (the cause dropped, a remedy that cannot work). d0ec3ea makes _unless_unlisted (and _primed) end on ANY
    listing error, with the message written for a transient one: "stack ww: its resources could not be listed
    (AccessDenied); nothing was changed: run again". For an error botocore does not retry (AccessDenied: the deploy
    role lacks cloudformation:ListStackResources; ExpiredToken) running again fails the same way, and the one
    thing that says what to fix, botocore's message ("... is not authorized to perform:
    cloudformation:ListStackResources on resource ..."), is dropped (from None). wait_stack's own stop keeps it
    ("following it stopped (code: message)"); here the operator is left with a code and advice that loops, and the
    pointer "(or follow it with: winworkers status --stack-name ww)" leads to a command that now fails on the same
    denial (test_status_goes_on_saying_not_listed_when_the_listing_is_denied)."""
    from botocore.exceptions import ClientError
    from test_review31b import ROOT, _history, _Throttled
    from test_review34 import _Refreshing

    from winworkers.deploy.execute import _refuse_or_wait_for_refresh

    denial = "User: arn:aws:iam::1:role/deployer is not authorized to perform: cloudformation:ListStackResources"

    class Denied(_Throttled):
        def get_paginator(self, name: str) -> Any:
            answer: Any = {
                "Error": {"Code": "AccessDenied", "Message": denial},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            }
            raise ClientError(answer, "ListStackResources")

    clients = Clients(Denied(_history(), {}, ["UPDATE_COMPLETE"], {}), None, None, "us-east-1", _Refreshing())
    with pytest.raises(DeployError) as raised:
        _refuse_or_wait_for_refresh(clients, {"StackName": "ww", "StackId": ROOT}, False, 1e18, 0, lambda _: None)
    assert "cloudformation:ListStackResources" in str(raised.value), str(raised.value)
