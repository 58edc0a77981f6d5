"""Review 33 (9283f5e: tests/test_lint.py ``lint_deployed`` with E2015 on a copy of the parameters for every other
deployment; the watcher's first reads, dropped connections and ``winworkers status``'s replays). Each test is a
finding: it fails on the reviewed code and passes once it is fixed.

Part A compares lint_deployed with the form it replaced (test_review31._copies: cfn-lint 1.58.0 with lint_options()
on a whole copy of the template per deployment, the deployment's values as its Defaults). Part B fakes CloudFormation
as tests/test_review31b.py does (``_Throttled``: DescribeStackEvents newest first, errors planted as botocore raises
them once its own retries are spent). AWS facts relied on: DescribeStackEvents lists events newest first (register
rows 65, 283); botocore's standard retry mode retries throttling codes (register row 207)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_lint import lint_deployed
from test_review30 import T, _event
from test_review31 import GOOD, _copies, _instance
from test_review31b import (
    CHILD,
    ROLLING_BACK,
    ROOT,
    STACK,
    _deploy,
    _error,
    _history,
    _Throttled,
    _today,
)

from winworkers.deploy import DeployError

# Part A: lint_deployed -------------------------------------------------------------------------------------------


def _subnet_template(**parameters: Any) -> dict[str, Any]:
    return _instance(
        {"Subnet": {"Type": "String", "Default": f"subnet-{GOOD}"}, **parameters},
        {"Ref": "Subnet"},
        Tags=[{"Key": name, "Value": {"Ref": name}} for name in parameters],
    )


def test_lint_deployed_honours_a_template_level_ignore_checks_on_every_deployment() -> None:
    """LOW (a false positive). cfn-lint reads a template's own ``Metadata: cfn-lint: config`` (config.py
    set_template_args: ignore_checks, parameters, regions, ...; lint_options() sets none of ignore_checks or
    parameters, so the template's apply). The whole copy keeps the template's Metadata; the copy of just the
    Parameters (lint_deployed's E2015 copy for every deployment but the first of its tuple) drops it. A template that
    switches E2015 off (here Size's own Default outside its AllowedValues, a deployment leaving it in place) lints
    clean in every whole copy, and lint_deployed reports E2015 for deployment 1. No shipped template has a
    template-level cfn-lint config (winworkers.suppress writes per-resource ones only), so this is latent: the
    claim "exactly what the copies found" does not hold for such a template."""
    template = _subnet_template(Size={"Type": "String", "AllowedValues": ["small", "large"], "Default": "medium"})
    template["Metadata"] = {"cfn-lint": {"config": {"ignore_checks": ["E2015"]}}}
    deployments: list[dict[str, str]] = [{"Size": "small"}, {}]
    assert _copies(template, deployments) == []  # the old form: E2015 switched off in each copy
    assert lint_deployed(template, deployments) == []


def test_lint_deployed_lints_a_template_s_own_parameter_sets_per_deployment() -> None:
    """LOW (a finding missed). Register row 284's premise, "a parameter with AllowedValues is resolved through every
    allowed value and its Default skipped", holds only without parameter sets; a template can bring its own
    (``Metadata: cfn-lint: config: parameters``: cfn-lint warns W4005 that the key is not in its metadata schema, but
    uses it). With a set, a parameter the set does not name resolves through its Default ONLY (context.py
    resolve: ``self.parameters[instance].default_value()``), AllowedValues or not. Here Subnet has AllowedValues and
    the set names Other only: deployment 1's copy (Default "sn-1") has W1030; lint_deployed puts both deployments in one
    tuple (Subnet is left out of it for its AllowedValues), lints deployment 0's whole copy, and E2015 alone for
    deployment 1: W1030 is lost. lint_deployed could treat a template with a cfn-lint ``parameters`` config as it
    treats one with a Transform (a whole copy per deployment). Latent: no shipped template has such a config."""
    template = _subnet_template(Other={"Type": "String", "Default": "x"})
    template["Parameters"]["Subnet"]["AllowedValues"] = [f"subnet-{GOOD}", "sn-1"]
    template["Metadata"] = {"cfn-lint": {"config": {"parameters": [{"Other": "x"}]}}}
    deployments = [{"Subnet": f"subnet-{GOOD}"}, {"Subnet": "sn-1"}]
    assert [f.split()[2] for f in _copies(template, deployments) if f.startswith("copy 1")] == ["W4005", "W1030"]
    assert [f for f in lint_deployed(template, deployments) if "W1030" in f] != []


# Part B: the watcher and deploy's messages -----------------------------------------------------------------------


def test_deploy_nested_first_read_after_an_early_empty_root_read_keeps_the_operations_events() -> None:
    """MEDIUM. Watcher._first_read (9283f5e) primes a nested stack, taking every event so far as seen, when the root
    has printed nothing and its last read succeeded: "(deploy before its change set runs)". After ExecuteChangeSet that
    does not hold: wait_stack's first poll comes right after ExecuteChangeSet (no sleep before it) and the root's read
    can show nothing new yet, while the nested stack's read, made after it in the same poll (and, when it is a read
    again after a Throttling, after botocore's own backoff of up to seconds), already holds the operation's events.
    Here WinStack's read at prime is throttled; at the first poll the root's read shows nothing yet and by WinStack's
    read the update has run in it: WinStack is primed, its own failure (Q "today's cause") taken as seen, never
    printed, and the message names the root's "WinStack UPDATE_FAILED: Embedded stack failed" with nothing saying
    WinStack's events were not read. The wrong cause of reviews 31b and 32, by the other order of the same reads. A
    late first read after ExecuteChangeSet could wait for the root's first event of the operation and replay from it
    (the fake's events carry fixed times, T, so a fix by the local clock at ExecuteChangeSet is not measured here)."""

    class Late(_Throttled):
        def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
            if StackName == CHILD and self.reads.get(CHILD) == 1:  # its second read: the update ran meanwhile
                for stack_id, events in _today().items():
                    self.events[stack_id][:0] = reversed(events)
            return super().describe_stack_events(StackName, NextToken)

    cfn = Late(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {CHILD: {1}})
    message, out = _deploy(cfn)
    assert [line for line in out if "today's cause" in line] or "could not be read" in message, out
    assert "Q UPDATE_FAILED: today's cause" in message or "could not be read" in message, message


def _no_resource_failed() -> dict[str, list[dict[str, Any]]]:
    """Today's update (oldest first) rolled back with no resource event failed (CloudFormation's reason only)."""
    return {
        ROOT: [
            _event(ROOT, 1, "ww", "UPDATE_IN_PROGRESS", T, "User Initiated"),
            _event(ROOT, 2, "ww", "UPDATE_ROLLBACK_IN_PROGRESS", T + timedelta(seconds=1), "the stack's own reason"),
        ]
    }


def test_deploy_s_ending_is_said_when_the_reason_cannot_be_read() -> None:
    """LOW. _cause (execute.py), with no failure in the events read and none unread, reads the stack once more
    (describe_stack) for its StackStatusReason, outside any handling of an error botocore retries: a Throttling there
    (the same shared rate every read of the operation spends) ends `winworkers deploy` (and `status`, `delete`) with
    botocore's line, "An error occurred (Throttling) when calling the DescribeStacks operation", after the stack's
    final status (UPDATE_ROLLBACK_COMPLETE) was read: the operator is not told the stack rolled back and is back as it
    was, nor what to do, where every other read of the operation is made again or said unread (docs/deploy.md).
    The status could be named with "its reason could not be read (Throttling)"."""
    from botocore.exceptions import ClientError

    class Fading(_Throttled):
        described = 0

        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            self.described += 1
            if self.described > len(ROLLING_BACK):  # after wait_stack read the final status
                raise _error("Throttling", 400, "DescribeStacks")
            return super().describe_stacks(StackName)

    cfn = Fading({ROOT: list(_history()[ROOT])}, {}, list(ROLLING_BACK), {}, _no_resource_failed())
    try:
        message, _ = _deploy(cfn)
    except ClientError as error:
        pytest.fail(f"deploy ended with botocore's error after the stack ended: {error}")
    assert "UPDATE_ROLLBACK_COMPLETE" in message, message


def test_deploy_that_could_not_delete_its_change_set_does_not_say_it_did() -> None:
    """LOW. _primed (execute.py): the root's events unreadable before ExecuteChangeSet (an error botocore retries),
    deploy tries to delete the change set and ends "nothing was started: the change set was deleted", whether or not
    DeleteChangeSet succeeded: its ClientError and BotoCoreError are suppressed (9283f5e added BotoCoreError). The
    likeliest cause of the first error, throttling of the account's shared CloudFormation rate, is likely to fail the
    deletion too. The change set is then left executable (by the console, or `aws cloudformation execute-change-set`)
    while the message says it is gone. The message could say it could not be deleted, and name it."""

    class Kept(_Throttled):
        def delete_change_set(self, ChangeSetName: str) -> dict[str, Any]:
            raise _error("Throttling", 400, "DeleteChangeSet")

    cfn = Kept(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {ROOT: {1}}, _today())
    with pytest.raises(DeployError) as ended:
        _run_execute(cfn)
    assert "the change set was deleted" not in str(ended.value), str(ended.value)


def _run_execute(cfn: _Throttled) -> None:
    """deploy's own _execute (Watcher.prime, ExecuteChangeSet, wait_stack), its errors as raised."""
    import time

    from winworkers.deploy import Clients
    from winworkers.deploy.execute import _execute, _Run

    run = _Run(Clients(cfn, None, None, "us-east-1"), "ww", lambda _: None, time.monotonic() + 60, 1, 0)
    _execute(run, "cs", ROOT, False, False, lambda _: None)


def test_deploy_whose_credentials_expire_mid_operation_says_the_operation_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """MEDIUM. docs/deploy.md: `--timeout` defaults to 390 minutes, "a long create outlasts session credentials", and
    a refresh that cannot be read ("expired credentials, access denied: at once, not at the timeout") "is one line on
    stderr that says what happened and what to run next". The stack's own reads do not: an error botocore does not
    retry (ExpiredToken, the STS session's end, often 1 hour) on DescribeStackEvents or DescribeStacks after
    ExecuteChangeSet is raised by Watcher._tolerant / wait_stack ("The stack's own other errors are raised") and
    ends `winworkers deploy` with botocore's line only: "An error occurred (ExpiredToken) when calling the
    DescribeStackEvents operation: ...". Nothing says that the update goes on in CloudFormation nor how to follow it,
    where Ctrl-C at the same moment says both ("a stack operation already started goes on: follow it with winworkers
    status --stack-name ww", commands._one_line_errors). Measured through deploy's own _execute inside
    _one_line_errors, as `winworkers deploy` runs it."""
    from winworkers.deploy.commands import _one_line_errors

    class Expiring(_Throttled):
        def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
            if StackName == ROOT and self.reads.get(ROOT) == 1:  # the first poll after ExecuteChangeSet
                raise _error("ExpiredToken", 403, "DescribeStackEvents")
            return super().describe_stack_events(StackName, NextToken)

    cfn = Expiring(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {}, _today())
    assert _one_line_errors("deploy", lambda: _run_execute(cfn), "ww") == 1
    said = capsys.readouterr().err
    assert "ExpiredToken" in said, said
    assert "winworkers status --stack-name ww" in said, said


def test_status_whose_listing_of_nested_stacks_drops_its_connection_reads_on() -> None:
    """LOW. 9283f5e reads again after a dropped connection or a read timeout that outlasted botocore's retries "as a
    throttling is" (_tolerant, _primed, wait_stack catch BotoCoreError now). stack_tree, which lists the nested stacks
    (ListStackResources) in Watcher.tree(), was left catching ClientError only: a Throttling there is read as "lists
    nothing yet" (the nested stacks are then found from the root's events, as here), but a ReadTimeoutError ends
    `winworkers status` (prime(replay=True) and take_last_operation's tree() are not wrapped) with botocore's line
    "Read timeout on endpoint URL", where review 32's fix for the same command's first read of the root's events
    says what happened. (deploy's _primed catches it and starts nothing: safe.)"""
    import botocore.exceptions

    from winworkers.deploy import Clients, follow

    class Dropped(_Throttled):
        def get_paginator(self, name: str) -> Any:
            raise botocore.exceptions.ReadTimeoutError(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/")

    history = _history()
    history[ROOT] = list(reversed(_today()[ROOT])) + history[ROOT]
    history[CHILD] = list(reversed(_today()[CHILD])) + history[CHILD]
    cfn = Dropped(history, {ROOT: [STACK]}, list(ROLLING_BACK), {})
    try:
        with pytest.raises(DeployError) as ended:
            follow(Clients(cfn, None, None, "us-east-1"), "ww", poll_seconds=0, echo=lambda _: None)
    except botocore.exceptions.BotoCoreError as error:
        pytest.fail(f"status ended with botocore's error: {error}")
    assert "today's cause" in str(ended.value) or "could not be read" in str(ended.value), str(ended.value)
