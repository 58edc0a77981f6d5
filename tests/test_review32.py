"""Review 32 (3e807b1: tests/test_lint.py ``lint_deployed``; 21f50ab, 7bd22c1, 07bbbcc: the watcher's reads again after
an error botocore retries). Each test is a finding: it fails on the reviewed code and passes once it is fixed.

CloudFormation is faked as tests/test_review31b.py fakes it (``_Throttled``: DescribeStackEvents newest first, errors
planted as botocore raises them once its own retries are spent). AWS facts relied on: DescribeStackEvents lists
events newest first (register rows 65, 283); botocore's standard retry mode retries throttling codes, 5xx and
connection errors (https://docs.aws.amazon.com/boto3/latest/guide/retries.html, register row 207)."""

from __future__ import annotations

import time
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
from winworkers.deploy.watch import Watcher, wait_stack

# Part B: the watcher ---------------------------------------------------------------------------------------------


def test_deploy_nested_first_read_retried_while_the_roots_poll_is_throttled_keeps_the_operations_events() -> None:
    """HIGH. 07bbbcc's Watcher._first_read starts a nested stack's late first read at the root's operation's start
    "as far as the root's events read so far show it", and with no root event printed yet it PRIMES, taking every
    event so far as older than the operation ("deploy before its change set runs"). That holds only before
    ExecuteChangeSet. Here WinStack's read at prime is throttled (noted in unread), and at the first poll after
    ExecuteChangeSet the ROOT's read is throttled while WinStack's succeeds: root.printed is still empty, so
    WinStack is primed after the update ran in it, its own failure (Q "today's cause") taken as seen, never printed,
    and the message names the root's "WinStack UPDATE_FAILED: Embedded stack failed" with nothing saying WinStack's
    events were not read (unread was emptied by the successful read). The same wrong cause as review 31b's first
    finding, by the other read of the same poll being throttled (the account's rate is shared)."""
    cfn = _Throttled(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {CHILD: {1}, ROOT: {2}}, _today())
    message, out = _deploy(cfn)
    assert "Q UPDATE_FAILED: today's cause" in message, message
    assert [line for line in out if "today's cause" in line], out


def test_deploy_nested_stack_found_in_the_final_poll_is_read_or_said_unread() -> None:
    """MEDIUM. Watcher.poll reads the streams that existed when it began (``for stream in list(self.streams)``); a
    nested stack first named by the root's events in that poll gets its stream, read at the NEXT poll. wait_stack's
    last poll (after DescribeStacks says the operation ended) has no next poll: a nested stack found there is never
    read and is not in Watcher.unread, so _cause names the root's "Embedded stack failed" and says nothing of the
    stack it did not read. Here the update creates WinStack (not listed at prime) and the root's events were throttled
    on every poll until the last
    (the account's CloudFormation rate is shared: the same burst that review 31b's unread note is for)."""
    history = _history()
    del history[CHILD][:]
    history[CHILD] += [_event(CHILD, 0, "ww-WinStack-X", "CREATE_IN_PROGRESS", T + timedelta(seconds=1))]
    today = _today()
    for event in today[ROOT][1:3]:
        event["ResourceStatus"] = event["ResourceStatus"].replace("UPDATE", "CREATE")
    today[CHILD] = [_event(CHILD, 5, "Q", "CREATE_FAILED", T + timedelta(seconds=2), "today's cause")]
    cfn = _Throttled(history, {}, list(ROLLING_BACK), {ROOT: range(2, 6)}, today)
    message, _ = _deploy(cfn)
    assert "today's cause" in message or "could not be read" in message, message


@pytest.mark.parametrize("error", ["ReadTimeoutError", "EndpointConnectionError"])
def test_deploy_a_dropped_connection_mid_operation_is_read_again_like_a_throttling(error: str) -> None:
    """MEDIUM. _transient (watch.py) calls a connection error transient ("a dropped connection": botocore's
    TransientRetryableChecker retries ConnectionError and HTTPClientError), and RefreshWatch reads again after one;
    but Watcher._tolerant catches only ClientError, so a ReadTimeoutError or EndpointConnectionError that outlasted
    botocore's retries on one DescribeStackEvents mid-operation ends `winworkers deploy` with botocore's line
    ("Read timeout on endpoint URL"), exit 1, while CloudFormation carries on: no cause, nothing saying the operation
    goes on or how to follow it. The same for wait_stack's DescribeStacks and deploy's prime (_primed catches
    ClientError only). boto3's retries guide lists ConnectionError, ConnectionClosedError, ReadTimeoutError and
    EndpointConnectionError among the errors retried (https://docs.aws.amazon.com/boto3/latest/guide/retries.html).
    A Throttling at the same read is read again at the next poll (21f50ab, 07bbbcc)."""
    import botocore.exceptions

    raised = getattr(botocore.exceptions, error)(endpoint_url="https://cloudformation.us-east-1.amazonaws.com/")

    class Dropped(_Throttled):
        def describe_stack_events(self, StackName: str, NextToken: str | None = None) -> dict[str, Any]:
            if StackName == ROOT and self.reads.get(ROOT) == 1:
                self.reads[ROOT] = 2
                raise raised
            return super().describe_stack_events(StackName, NextToken)

    cfn = Dropped(_history(), {ROOT: [STACK]}, list(ROLLING_BACK), {}, _today())
    try:
        message, _ = _deploy(cfn)
    except botocore.exceptions.BotoCoreError as escaped:
        pytest.fail(f"deploy ended with botocore's error mid-operation: {escaped}")
    assert "today's cause" in message, message


def test_the_timeout_after_a_failed_status_read_does_not_say_the_stack_is_still_in_progress() -> None:
    """LOW (late() wording). wait_stack's timeout line says "is still UPDATE_IN_PROGRESS" whenever DescribeStacks was
    read once, even when the reads since (the one at the timeout included) failed: the stack may well have ended; the
    line states as current a status that is only the last one read. The refresh watch's timeout (_late) says "could
    not be read at the timeout (...; last read X)"; wait_stack's could say the same."""

    class Fading(_Throttled):
        described = 0

        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            Fading.described += 1
            if Fading.described > 1:
                raise _error("Throttling", 400, "DescribeStacks")
            return super().describe_stacks(StackName)

    cfn = Fading(_history(), {ROOT: [STACK]}, ["UPDATE_IN_PROGRESS"], {})
    watcher = Watcher(cfn, None, ROOT, lambda _: None)
    watcher.prime()
    with pytest.raises(DeployError) as ended:
        wait_stack(cfn, ROOT, "ww", watcher, time.monotonic() + 0.05, 1, 0.01)
    assert Fading.described > 1
    assert "is still UPDATE_IN_PROGRESS" not in str(ended.value), str(ended.value)
    assert "Throttling" in str(ended.value), str(ended.value)


# Part A: lint_deployed -------------------------------------------------------------------------------------------
# Each finding compares lint_deployed with the form it replaced (test_review31._copies: cfn-lint with lint_options()
# on a copy of the template whose Defaults are one deployment's values, one copy per deployment) on a small planted
# template; cfn-lint is the pinned 1.58.0 (.venv/.../site-packages/cfnlint/).


def _part_a(parameters: dict[str, Any], **more: Any) -> dict[str, Any]:
    declared = {"Subnet": {"Type": "String", "Default": f"subnet-{GOOD}"}, **parameters}
    return _instance(declared, {"Ref": "Subnet"}, **more)


def test_lint_deployed_finds_the_refused_default_a_later_deployment_leaves_in_place() -> None:
    """MEDIUM. lint_deployed groups deployments by the values of the parameters WITHOUT AllowedValues and lints the
    group's first deployment only, relying on check_parameters for E2015's part; but check_parameters checks the
    values a deployment NAMES, and E2015 (rules/parameters/Default.py) checks every Default of the copy, the
    template's own Defaults of the parameters the deployment leaves unnamed included. Here Size's own Default
    ("medium") is not among its AllowedValues: deployment 0 names Size=small (its copy is clean), deployment 1 leaves
    Size at its Default (its copy has E2015: the value the stack would take is outside AllowedValues;
    that CloudFormation refuses a Default so used was not verified against AWS here). Both share the tuple of
    Subnet's value, so only deployment 0 is linted: nothing is reported. The plainest case of "every deployment as
    deployed": a deployment that relies on a Default. check_parameters over {Defaults, then the values} would
    cover it."""
    template = _part_a(
        {"Size": {"Type": "String", "AllowedValues": ["small", "large"], "Default": "medium"}},
        Tags=[{"Key": "Size", "Value": {"Ref": "Size"}}],
    )
    deployments = [{"Size": "small"}, {}]
    assert _copies(template, deployments) == ["copy 1: E2015 Default should be a value within AllowedValues"]
    assert lint_deployed(template, deployments) != []


@pytest.mark.parametrize("kind", ["java pattern", "list length"])
def test_lint_deployed_checks_a_value_of_a_parameter_with_allowed_values_as_e2015_did(kind: str) -> None:
    """LOW. check_parameters is not E2015 (lint_deployed's docstring: "E2015 (within the constraints:
    check_parameters does it for every deployment)"), and a parameter WITH AllowedValues is linted only at the first
    deployment of its group, so E2015 never sees a later deployment's value of it. Two places where E2015 finds
    what check_parameters does not: (a) an AllowedPattern Python's re cannot compile (Java's \\p{Lu}, which
    CloudFormation reads; E2015 uses the `regex` module): check_parameters skips it; review 31's finding 3 is
    fixed only for a parameter without AllowedValues (linted per distinct value); (b) a CommaDelimitedList's
    MaxLength: E2015 checks each item's length, check_parameters checks lengths of String parameters only."""
    if kind == "java pattern":
        spec: dict[str, Any] = {
            "Type": "String",
            "AllowedValues": ["ABC", "abc"],
            "AllowedPattern": "^\\p{Lu}+$",
            "Default": "ABC",
        }
        deployments = [{"Team": "ABC"}, {"Team": "abc"}]
        value: Any = {"Ref": "Team"}
    else:
        spec = {"Type": "CommaDelimitedList", "AllowedValues": ["aaaa", "b"], "MaxLength": 3, "Default": "b"}
        deployments = [{"Team": "b"}, {"Team": "aaaa"}]
        value = {"Fn::Join": [",", {"Ref": "Team"}]}
    template = _part_a({"Team": spec}, Tags=[{"Key": "Team", "Value": value}])
    assert [f.split()[2] for f in _copies(template, deployments)] == ["E2015"]
    assert lint_deployed(template, deployments) != []


def test_lint_deployed_reads_an_empty_allowed_values_as_cfn_lint_does() -> None:
    """LOW. lint_deployed leaves out of its tuple every parameter that has the KEY AllowedValues; cfn-lint resolves a
    parameter through its AllowedValues only when the list is non-empty (context/context.py ParameterValue.ref_value:
    ``if self.allowed_values:``), else through its Default, like any other. With ``"AllowedValues": []`` (a generated
    list that came out empty; cfn-lint's schema allows it, and check_parameters then checks nothing) deployment 1's
    Subnet "sn-1" is never linted: its copy had W1030. Whether CloudFormation accepts an empty AllowedValues was not
    verified; the test is about lint_deployed's claim to lint what the copies linted."""
    template = _part_a({})
    template["Parameters"]["Subnet"]["AllowedValues"] = []
    deployments: list[dict[str, str]] = [{}, {"Subnet": "sn-1"}]
    assert [f.split()[2] for f in _copies(template, deployments)] == ["W1030"]
    assert lint_deployed(template, deployments) != []


@pytest.mark.parametrize("statuses", [list(ROLLING_BACK), ["UPDATE_ROLLBACK_COMPLETE"]], ids=["under way", "ended"])
def test_status_whose_first_read_of_the_root_is_throttled_does_not_end_with_botocore_s_error(
    statuses: list[str],
) -> None:
    """LOW. docs/deploy.md (07bbbcc): "A read that an error botocore retries (throttling) still stops after botocore's
    own retries is made again at the next poll, the stack's status included". `winworkers status`'s first read of the
    ROOT's events is not: attached to an operation under way (Watcher.prime(replay=True): the root's replay is not
    in _tolerant) or after it ended (take_last_operation), one Throttling ends the command with botocore's line
    ("An error occurred (Throttling) when calling the DescribeStackEvents operation"), where deploy's equivalent
    first read says what happened (_primed) and every later read is made again. Nothing is changed by status, so the
    harm is a command that fails where it could have named the cause (or said the events could not be read)."""
    from botocore.exceptions import ClientError

    from winworkers.deploy import Clients, follow

    history = _history()
    history[ROOT] = list(reversed(_today()[ROOT])) + history[ROOT]
    history[CHILD] = list(reversed(_today()[CHILD])) + history[CHILD]
    cfn = _Throttled(history, {ROOT: [STACK]}, statuses, {ROOT: {1}})
    try:
        with pytest.raises(DeployError) as ended:
            follow(Clients(cfn, None, None, "us-east-1"), "ww", poll_seconds=0, echo=lambda _: None)
    except ClientError as error:
        pytest.fail(f"status ended with botocore's error: {error}")
    assert "today's cause" in str(ended.value) or "could not be read" in str(ended.value), str(ended.value)
