"""The AWS side of a deploy: previous values, the change set, the confirmation,
its execution and the wait; delete; upload; attaching to an operation under way."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from winworkers import image
from winworkers.bootstrap import BOOT_TIMEOUT_SECONDS
from winworkers.build import check_pair
from winworkers.compute import CHECKPOINTS
from winworkers.constraints import value_problems
from winworkers.deploy import changes, confirm, preflight
from winworkers.deploy.base import Clients, DeployError, DeployResult, Echo, counted, describe_stack, one_line
from winworkers.deploy.inputs import Given, Template, check_size, read_given, validate
from winworkers.deploy.watch import (
    ACTIVE_REFRESH,
    Watcher,
    active_refreshes,
    error_code,
    first_failure,
    follow_refreshes,
    refresh_line,
    transient_code,
    wait_for,
    wait_stack,
)
from winworkers.network import build_cidr_problems
from winworkers.parameters import PARAMETERS, SWITCH
from winworkers.templates import INLINE_LIMIT

_T = TypeVar("_T")

CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
# A template with a Transform (SAM, a macro) needs CAPABILITY_AUTO_EXPAND to be expanded:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html
AUTO_EXPAND = "CAPABILITY_AUTO_EXPAND"


def refresh_bound_seconds(drain_seconds: int) -> int:
    """The longest instance refresh the template's own bounds allow: each checkpointed part (CHECKPOINTS)
    a bootstrap (the launch hook's HeartbeatTimeout, BOOT_TIMEOUT_SECONDS) plus the replaced workers'
    drains (the drain hook's HeartbeatTimeout, DrainSeconds), with CheckpointDelay between the parts."""
    checkpoints, delay = CHECKPOINTS["CheckpointPercentages"], CHECKPOINTS["CheckpointDelay"]
    assert isinstance(checkpoints, list) and isinstance(delay, int)
    return len(checkpoints) * (BOOT_TIMEOUT_SECONDS + drain_seconds) + (len(checkpoints) - 1) * delay


_MAX_DRAIN = next(p.max_value for p in PARAMETERS if p.name == "DrainSeconds")
assert isinstance(_MAX_DRAIN, int)
# A stack update that changes the launch template refreshes the fleet; the default --timeout is the
# longest refresh any DrainSeconds the template accepts allows (2 x (2,700 + 7,200) + 3,600 s: 390
# minutes), derived from those bounds, not kept by hand (row 208); creation needs far less.
DEFAULT_TIMEOUT_MINUTES = math.ceil(refresh_bound_seconds(_MAX_DRAIN) / 60)
DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
# A stack whose creation failed cannot be updated, only deleted:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes
RECREATE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED")
# How CloudFormation reports a change set without changes (StatusReason of a FAILED change set).
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
MASKED = "****"
"""How DescribeStacks shows a NoEcho parameter's value."""


def deploy(
    clients: Clients,
    stack_name: str,
    template_path: Path | Mapping[str, Any] | Given,
    parameters: Mapping[str, str],
    *,
    template_bucket: str | None = None,
    tags: Mapping[str, str] | None = None,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    poll_seconds: float = 5,
    echo: Echo = print,
    reset_to_defaults: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    ask: confirm.Ask | None = None,
    role_arn: str | None = None,
    disable_rollback: bool = False,
    capabilities: tuple[str, ...] = (),
    wait_for_refresh: bool = False,
    skip_preflight: bool = False,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployResult:
    """Check, then create or update stack_name by change set, streaming its events.

    On an update a parameter not in ``parameters`` keeps its previous value
    (``reset_to_defaults``: takes its default, each change named). The change
    set is printed first, grouped; ``dry_run`` stops there and leaves it. One
    that removes or replaces a resource or starts an instance refresh is
    executed only if ``ask`` says yes or ``yes`` is set; turning the feature off
    needs ``yes``. An instance refresh under way is named, then refused (or
    waited for: ``wait_for_refresh``) before anything changes. What the stack will point at
    (queue, buckets, artifact, keys) is looked up first (winworkers.deploy.preflight), unless
    ``skip_preflight``. With ``wait``, an instance refresh the update starts is followed to its
    end (``sleep`` waits a poll). A stack whose creation failed is deleted, to be created again,
    only after every check and the preflight, and as any deletion: said, then asked or ``yes``
    (``dry_run`` deletes nothing). ``template_path`` may be the inputs.Given its caller read.
    """
    run = _Run(clients, stack_name, echo, time.monotonic() + timeout_minutes * 60, timeout_minutes, poll_seconds)
    given = read_given(template_path, parameters)  # read, and check the values given: before any AWS call
    check_size(given.template.body, template_bucket)
    stack, checked = _precheck(run, given, reset_to_defaults, wait_for_refresh, skip_preflight)
    if stack.failed:
        ended = _recreate_failed(run, stack.failed, dry_run, role_arn, yes, ask)
        if ended:
            return ended
        run = dataclasses.replace(run, recreated=True)
    request = _change_set_request(run, checked, stack, template_bucket, tags, role_arn, capabilities)
    made = _make_change_set(run, stack, request)
    if isinstance(made, DeployResult):
        return made
    plan = _review(run, checked, stack, made, dry_run)
    if isinstance(plan, DeployResult):
        return plan
    data, change_set_id = checked.template.data, made[0]
    _confirm(
        clients.cloudformation, stack_name, change_set_id, plan, checked.values, checked.previous, data, yes, ask, echo
    )
    return _execute(run, change_set_id, made[1], disable_rollback, wait, sleep)


def _precheck(
    run: _Run, given: Given, reset: bool, wait_for_refresh: bool, skip_preflight: bool
) -> tuple[_Stack, _Checked]:
    """The pre-check, each step once: the stack's state and values (given, kept, defaults); validate
    them once (inputs.validate); fill the prefix lists; check against the account (the nested child
    read from S3, then the preflight). The one checked template it returns goes on to the change set."""
    data, clients, echo = given.template.data, run.clients, run.echo
    stack = _stack_to_change(run, wait_for_refresh)
    values, kept, masked = _values(data, given.values, stack.previous, reset, echo)
    for problem in [
        *image.revision_problems(data, values, stack.previous, given.children),
        *build_cidr_problems(data, values),
    ]:
        raise DeployError(problem)
    to_fill = validate(given, values, known=masked)
    values = _fill_prefix_lists(data, values, kept, to_fill, clients, echo)
    children = _check_nested_child(clients, data, {**stack.previous, **values}, echo)
    preflight.run(clients, data, values, echo, skip=skip_preflight)
    return stack, _Checked(given.template, values, kept, stack.previous, children)


def _recreate_failed(
    run: _Run, failed: Mapping[str, Any], dry_run: bool, role_arn: str | None, yes: bool, ask: confirm.Ask | None
) -> DeployResult | None:
    """A stack whose creation failed is deleted (said, then asked), to be created again; a dry run
    says so and ends (the result), deleting nothing."""
    if dry_run:
        run.echo(
            f"dry run: stack {run.stack_name} is {failed['StackStatus']} (its creation failed; CloudFormation cannot "
            "update it): a deploy would delete it and create it again; nothing was deleted, no change set made"
        )
        return DeployResult(run.stack_name, failed["StackStatus"], False, {})
    _delete_failed(run.clients, failed, run.timeout_minutes, run.deadline, run.poll, run.echo, role_arn, yes, ask)
    return None


def _review(
    run: _Run, checked: _Checked, stack: _Stack, made: tuple[str, str, Any], dry_run: bool
) -> changes.Plan | DeployResult:
    """The change set's plan, printed; a dry run ends here (the result), the change set left for review."""
    change_set_id, stack_id, described = made
    updated = stack_id if stack.updating else None
    plan = _plan(run.clients, updated, checked.template, described, checked.values, checked.previous, checked.children)
    run.echo(f"change set {change_set_id} for stack {run.stack_name}: {plan.summary()}")
    for line in plan.lines():
        run.echo(line)
    if not dry_run:
        return plan
    run.echo(
        f"dry run: the change set is left for review, not executed "
        f"(aws cloudformation describe-change-set --change-set-name {change_set_id})"
    )
    status = stack.current["StackStatus"] if stack.current else "REVIEW_IN_PROGRESS"
    return DeployResult(run.stack_name, status, False, {}, change_set_id)


@dataclass(frozen=True)
class _Run:
    """What every step of one deploy shares: where, who to tell, until when."""

    clients: Clients
    stack_name: str
    echo: Echo
    deadline: float
    timeout_minutes: float
    poll: float
    recreated: bool = False
    """Whether this run deleted a stack whose creation failed, to create it again."""


@dataclass(frozen=True)
class _Stack:
    """The stack as it is before the change: the one to update (None: create), a failed one to
    create again, and its previous values."""

    current: dict[str, Any] | None
    failed: dict[str, Any] | None
    updating: bool
    previous: dict[str, str]


@dataclass(frozen=True)
class _Checked:
    """The one checked template handed on to the change set: its values (given, kept, filled),
    the names kept by UsePreviousValue, the stack's previous values, the nested children read."""

    template: Template
    values: dict[str, str]
    kept: set[str]
    previous: dict[str, str]
    children: dict[str, Mapping[str, Any]]


def _stack_to_change(run: _Run, wait_for_refresh: bool) -> _Stack:
    """The stack to create or update: refused while an operation runs on it, and while an instance
    refresh runs (or waited for); one whose creation failed is created again (deleted later, once
    every check has passed and the deletion is agreed)."""
    stack = describe_stack(run.clients.cloudformation, run.stack_name)
    failed = stack if stack and stack["StackStatus"] in RECREATE else None
    if failed:
        stack = None
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS") and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        raise DeployError(
            f"stack {run.stack_name} is {stack['StackStatus']}: follow it with `winworkers status --stack-name "
            f"{run.stack_name}`, then run again"
        )
    updating = stack is not None and stack["StackStatus"] != "REVIEW_IN_PROGRESS"
    if updating and stack:
        _refuse_or_wait_for_refresh(run.clients, stack, wait_for_refresh, run.deadline, run.poll, run.echo)
    previous = _previous_values(stack) if updating and stack else {}
    return _Stack(stack, failed, updating, previous)


def _change_set_request(
    run: _Run,
    checked: _Checked,
    stack: _Stack,
    template_bucket: str | None,
    tags: Mapping[str, str] | None,
    role_arn: str | None,
    capabilities: tuple[str, ...],
) -> dict[str, Any]:
    """CreateChangeSet's request for the checked template (uploaded first when over the inline limit)."""
    data = checked.template.data
    source = _template_source(checked.template, run.stack_name, run.clients, template_bucket)
    wanted = sorted({*CAPABILITIES, *capabilities, *([AUTO_EXPAND] if "Transform" in data else [])})
    nested = any(r.get("Type") == "AWS::CloudFormation::Stack" for r in data["Resources"].values())
    return {
        "StackName": run.stack_name,
        "ChangeSetName": f"winworkers-{uuid.uuid4().hex[:12]}",
        "ChangeSetType": "UPDATE" if stack.updating else "CREATE",
        "Parameters": [
            {"ParameterKey": k, "UsePreviousValue": True}
            if k in checked.kept
            else {"ParameterKey": k, "ParameterValue": checked.values[k]}
            for k in sorted(checked.values)
        ],
        "Capabilities": wanted,
        "Tags": [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
        **({"RoleARN": role_arn} if role_arn else {}),
        **({"IncludeNestedStacks": True} if nested else {}),
        **source,
    }


def _make_change_set(run: _Run, stack: _Stack, request: dict[str, Any]) -> DeployResult | tuple[str, str, Any]:
    """Create the change set and wait for it: (its id, the stack's id, it described), or the result
    when there is nothing to change. DeployError when it failed otherwise."""
    from botocore.exceptions import ClientError

    cfn, name, current = run.clients.cloudformation, run.stack_name, stack.current
    try:
        change_set = _create_change_set(cfn, **request)
    except ClientError as error:
        # CloudFormation makes a FAILED change set of "no changes"; an emulator may refuse at once.
        if not any(marker in str(error) for marker in NO_CHANGES) or current is None:
            raise
        run.echo(f"no changes: stack {name} is already as asked ({current['StackStatus']})")
        return DeployResult(name, current["StackStatus"], False, _resources(cfn, current["StackId"]))
    change_set_id, stack_id = change_set["Id"], change_set["StackId"]
    described = wait_for(
        lambda: cfn.describe_change_set(ChangeSetName=change_set_id),
        lambda d: d["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"),
        run.deadline,
        run.poll,
        lambda d: f"change set for {name} is still {d['Status']} after {run.timeout_minutes:g} minutes",
    )
    if described["Status"] == "FAILED":
        reason = one_line(described.get("StatusReason", ""))
        if any(marker in reason for marker in NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=change_set_id)
            status = current["StackStatus"] if current else ""
            run.echo(f"no changes: stack {name} is already as asked ({status})")
            return DeployResult(name, status, False, _resources(cfn, stack_id))
        changed = "the failed stack was deleted before it" if run.recreated else "nothing was changed"
        raise DeployError(f"the change set for {name} failed: {reason} ({changed}; fix the cause and run again)")
    return change_set_id, stack_id, described


def _execute(
    run: _Run, change_set_id: str, stack_id: str, disable_rollback: bool, wait: bool, sleep: Callable[[float], None]
) -> DeployResult:
    """Execute the change set, stream the stack's events to its end, then (wait) follow the instance
    refreshes the update started."""
    cfn, name = run.clients.cloudformation, run.stack_name
    watcher = Watcher(cfn, run.clients.autoscaling, stack_id, run.echo)
    _primed(watcher, name, change_set_id, run.recreated)
    if wait:
        watcher.refreshes.baseline()
    cfn.execute_change_set(ChangeSetName=change_set_id, **({"DisableRollback": True} if disable_rollback else {}))
    final = wait_stack(cfn, stack_id, name, watcher, run.deadline, run.timeout_minutes, run.poll)
    if final not in DONE:
        raise DeployError(_ended(name, final, watcher, disable_rollback))
    run.echo(f"stack {name}: {final}")
    _say_unread(watcher, name, run.echo)
    if wait:
        _follow_refreshes(watcher, watcher.refreshes.started(), name, final, run.deadline, run.poll, sleep)
    return DeployResult(name, final, True, _resources(cfn, stack_id), change_set_id)


def _delete_failed(
    clients: Clients,
    stack: Mapping[str, Any],
    timeout_minutes: float,
    deadline: float,
    poll: float,
    echo: Echo,
    role_arn: str | None,
    yes: bool,
    ask: confirm.Ask | None,
) -> None:
    """Delete a stack whose creation failed, to create it again: said first (what goes, what stays),
    then asked, or needs yes (winworkers.deploy.confirm), as any deletion."""
    name = stack["StackName"]
    echo(
        f"stack {name} is {stack['StackStatus']} (its creation failed; CloudFormation cannot update it): "
        "deleting it to create it again"
    )
    _say_deletion(clients.cloudformation, stack, echo)
    answer = confirm.approved(f"Delete failed stack {name} and create it again?", yes=yes, ask=ask)
    if answer is None:
        raise DeployError(
            f"deleting the failed stack {name} needs --yes without a terminal: nothing was changed "
            f"(its events say why it failed: winworkers status --stack-name {name})"
        )
    if not answer:
        raise DeployError(f"stack {name} was not deleted: nothing was changed")
    _delete(clients, stack, timeout_minutes, deadline, poll, echo, role_arn)


def _say_deletion(cfn: Any, stack: Mapping[str, Any], echo: Echo) -> None:
    """What deleting the stack deletes, and what stays (DeletionPolicy Retain); what could not be listed
    (moto 5.2.5 answers ListStackResources of a stack whose creation failed with the creation's error)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        going, staying = _deletion(cfn, stack["StackId"])
    except (ClientError, BotoCoreError) as error:
        if transient_code(error):  # to be said before it is asked: not said, not deleted
            raise DeployError(
                f"stack {stack['StackName']}: what deleting it deletes could not be listed ({error_code(error)}): "
                "it was not deleted; nothing was changed: run again"
            ) from None
        echo(
            f"deleting stack {stack['StackName']} deletes what it holds "
            f"(its resources cannot be listed: {error_code(error)})"
        )
        return
    echo(
        f"deleting stack {stack['StackName']} deletes {counted(len(going), 'resource')}"
        f"{': ' + ', '.join(going[:8]) if going else ''}{' and more' if len(going) > 8 else ''}"
    )
    if staying:
        echo(f"these stay (DeletionPolicy Retain), delete them yourself when no longer needed: {', '.join(staying)}")


def _create_change_set(cfn: Any, **request: Any) -> dict[str, Any]:
    created: dict[str, Any] = cfn.create_change_set(**request)
    return created


def _follow_refreshes(
    watcher: Watcher,
    followed: list[dict[str, Any]],
    name: str,
    final: str,
    deadline: float,
    poll: float,
    sleep: Callable[[float], None],
) -> None:
    """Follow the instance refreshes followed to their end (DeployError unless each ends Successful)."""
    if not followed:
        return
    follow_refreshes(
        watcher.refreshes, followed, name, final, lambda: time.monotonic() >= deadline, lambda: sleep(poll)
    )


def _primed(watcher: Watcher, name: str, change_set_id: str | None, recreated: bool = False) -> None:
    """watcher.prime(), before the call that changes the stack (executing change_set_id, or a deletion).
    Its resources or events unreadable (its retries spent, or an error botocore does not retry): nothing is
    started, the change set is deleted, and it ends saying so (recreated: a failed stack deleted before)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        watcher.prime()
    except (ClientError, BotoCoreError) as error:
        what = "resources could not be listed" if watcher.unlisted else "events could not be read"
        left = "the stack was not deleted"
        if change_set_id is not None:
            left = _change_set_dropped(watcher.cloudformation, change_set_id)
        done = "the failed stack was deleted before it" if recreated else "nothing was changed"
        raise DeployError(f"stack {name}: its {what} ({_why(error)}), so nothing was started: {left}; {done}") from None


def _unless_unlisted(name: str, listing: Callable[[], _T]) -> _T:
    """listing's answer (a read of the stack's resources); one that an error stopped ends here, saying nothing
    was changed: what it did not list is not known to be idle."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return listing()
    except (ClientError, BotoCoreError) as error:
        raise DeployError(
            f"stack {name}: its resources could not be listed ({_why(error)}), so its refreshes could not be "
            "checked; nothing was changed"
        ) from None


def _why(error: Exception) -> str:
    """An error that stopped a read, and what to do: one botocore retries (its retries spent) passes, so run
    again; any other (a denial, expired credentials) is botocore's own words, to be fixed first."""
    if transient_code(error):
        return f"{error_code(error)}: run again"
    return f"{one_line(error)}: fix that, then run again"


def _change_set_dropped(cfn: Any, change_set_id: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cfn.delete_change_set(ChangeSetName=change_set_id)
    except (ClientError, BotoCoreError) as error:
        return f"the change set {change_set_id} is left, not executed (deleting it failed: {one_line(error)})"
    return "the change set was deleted"


def _cause(watcher: Watcher, name: str) -> str:
    """The first resource that failed in the operation, or else the stack's StackStatusReason; and the stacks
    whose events could not be read at the end (an error botocore retries, outlasting its retries), where
    the cause may be."""
    cause = first_failure(watcher.printed)
    note = _unread_note(watcher, name)
    if not cause:
        cause = "no failure in the events read" if note else _no_failure(watcher)
    return f"{cause} ({note})" if note else cause


def _say_unread(watcher: Watcher, name: str, echo: Echo) -> None:
    """After an operation that ended well: the stacks whose events could not be shown, if any (`winworkers
    status` would not show them either: it shows a finished operation's events only when it failed)."""
    note = _unread_note(watcher, name, status=False)
    if note:
        echo(f"not shown: {note}")


def _unread_note(watcher: Watcher, name: str, *, status: bool = True) -> str:
    """Which stacks' events could not be read or shown (the last read stopped by an error, or never read), or
    "" when none; status: and that `winworkers status` shows them (after a failure)."""
    unread = [s for s in watcher.streams if s.stack_id in watcher.unread or not s.started]
    if not unread:
        return ""
    stacks = ", ".join(s.prefix.rstrip("/") or name for s in unread)
    codes = ", ".join(sorted({watcher.unread.get(s.stack_id, "not read") for s in unread}))
    see = f"; see: winworkers status --stack-name {name}" if status else ""
    return f"the events of {stacks} could not be read: {codes}{see}"


def _no_failure(watcher: Watcher) -> str:
    """What to say when no event failed: CloudFormation's StackStatusReason, or that it could not be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stack = describe_stack(watcher.cloudformation, watcher.stack_id)
    except (ClientError, BotoCoreError) as error:
        return f"no resource failed, and CloudFormation's reason could not be read ({one_line(error)})"
    reason = one_line((stack or {}).get("StackStatusReason") or "")
    return f"no resource failed; CloudFormation's reason: {reason}" if reason else "no resource failed, and no reason"


def _ended(name: str, final: str, watcher: Watcher, disable_rollback: bool = False) -> str:
    cause = _cause(watcher, name)
    if final.endswith("ROLLBACK_COMPLETE") and final.startswith("UPDATE"):
        then = "the stack is back as it was; fix the cause and run again"
    elif final == "ROLLBACK_COMPLETE":
        then = "nothing was kept; fix the cause and run again (the failed stack is deleted first, asked or with --yes)"
    elif final.endswith("ROLLBACK_FAILED"):
        then = f"see the events, fix what failed, then: aws cloudformation continue-update-rollback --stack-name {name}"
    elif final == "DELETE_FAILED":
        then = f"fix or retain what failed, then: winworkers delete --stack-name {name}"
    elif disable_rollback or final.endswith("_FAILED"):
        then = (
            f"it was not rolled back; fix the cause and run again, or delete it: winworkers delete --stack-name {name}"
        )
    else:
        then = f"see: winworkers status --stack-name {name}"
    return f"stack {name} ended {final}: {cause}; {then}"


def _previous_values(stack: Mapping[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: _listed(str(p.get("ParameterValue", ""))) for p in stack.get("Parameters", [])}


def _listed(value: str) -> str:
    """A list parameter's value as CloudFormation shows it ("a,b"): moto 5.2.5 shows Python's "['a', 'b']"."""
    if value.startswith("['") and value.endswith("']"):
        try:
            items = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(items, list) and all(isinstance(i, str) for i in items):
            return ",".join(items)
    return value


def _values(
    template: Mapping[str, Any], given: Mapping[str, str], previous: Mapping[str, str], reset: bool, echo: Echo
) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """Every value CloudFormation will see, the names kept by UsePreviousValue, and those
    kept whose text is masked (NoEcho).

    A parameter not given keeps its previous value (CreateChangeSet's UsePreviousValue:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html);
    with reset, it takes its default and each value that changes so is named."""
    values = dict(given)
    kept: set[str] = set()
    masked: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given or name not in previous:
            continue  # given, or new to the stack: the default (if any) applies
        if reset and "Default" in spec:
            default = str(spec["Default"])
            values[name] = default
            if previous[name] != default:
                was = "a hidden value" if previous[name] == MASKED else repr(previous[name])
                echo(f"{name}: back to its default {default!r} (was {was})")
            continue
        kept.add(name)
        values[name] = previous[name]
        if previous[name] == MASKED:
            masked[name] = previous[name]
    return values, kept, masked


def _refuse_or_wait_for_refresh(
    clients: Clients, stack: Mapping[str, Any], wait: bool, deadline: float, poll: float, echo: Echo
) -> None:
    """A group allows one instance refresh at a time, and a stack update that starts another
    while one runs fails and rolls back (InstanceRefreshInProgress)."""
    if clients.autoscaling is None:
        return
    cfn, name = clients.cloudformation, stack["StackName"]
    while True:
        active = _unless_unlisted(name, lambda: active_refreshes(cfn, clients.autoscaling, stack["StackId"], echo))
        if not active:
            return
        for refresh in active:
            echo(refresh_line(refresh))
        first = active[0]
        if not wait:
            raise DeployError(
                f"instance refresh {first['InstanceRefreshId']} of {first['AutoScalingGroupName']} is "
                f"{first['Status']} ({first.get('PercentageComplete', 0)}% complete): nothing was changed; "
                "run again with --wait-for-refresh to wait for it, or when it has ended"
            )
        if time.monotonic() >= deadline:
            raise DeployError(f"instance refresh {first['InstanceRefreshId']} still {first['Status']}: nothing changed")
        echo(f"waiting for instance refresh {first['InstanceRefreshId']} to end before changing stack {name}")
        time.sleep(poll)


def _fill_prefix_lists(
    template: Mapping[str, Any],
    values: dict[str, str],
    kept: set[str],
    missing: list[str],
    clients: Clients,
    echo: Echo,
) -> dict[str, str]:
    """Step 3, fill: the S3 prefix lists validate found empty (missing), looked up; the id found is
    checked against their constraints (the only values not known until now)."""
    if not missing:
        return values
    name = f"com.amazonaws.{clients.region}.s3"
    found = clients.ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
    ids = [p["PrefixListId"] for p in found.get("PrefixLists", [])]
    if not ids:
        raise DeployError(f"no managed prefix list {name} in {clients.region}: pass {missing[0]}=pl-... yourself")
    echo(f"{', '.join(missing)}: {ids[0]} ({name})")
    kept.difference_update(missing)
    filled = {**values, **dict.fromkeys(missing, ids[0])}
    problems = value_problems(template, dict.fromkeys(missing, ids[0]))
    if problems:
        raise DeployError("; ".join(problems))
    return filled


def _check_nested_child(
    clients: Clients, template: Mapping[str, Any], values: Mapping[str, str], echo: Echo
) -> dict[str, Mapping[str, Any]]:
    """A nested winworkers stack that will exist gets the child it was built for (winworkers.check_pair),
    read from its TemplateURL before anything changes. The children read, by the stack's logical id."""
    children: dict[str, Mapping[str, Any]] = {}
    held = changes.resources_holding(template, values)
    for name, resource in template.get("Resources", {}).items():
        metadata = resource.get("Metadata", {})
        if resource.get("Type") != "AWS::CloudFormation::Stack" or "winworkers" not in metadata or name not in held:
            continue
        url = resource.get("Properties", {}).get("TemplateURL")
        if isinstance(url, Mapping) and "Ref" in url:
            url = values.get(str(url["Ref"]))
        if not isinstance(url, str) or not url:
            continue
        child = _read_child(clients, url)
        try:
            check_pair(template, child, stack=name)
        except ValueError as error:
            raise DeployError(f"the child at {url} is not the one {name} was built for: {error}") from error
        echo(f"{name}: the child at {url} is the one it was built for ({metadata['winworkers'].get('fingerprint')})")
        children[name] = child
    return children


def _read_child(clients: Clients, url: str) -> Mapping[str, Any]:
    bucket, key = s3_location(url)
    from botocore.exceptions import ClientError

    try:
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise DeployError(f"cannot read the nested stack's template {url}: {code} {one_line(error)}") from error
    try:
        data: Mapping[str, Any] = json.loads(body.decode("utf-8-sig"))
    except ValueError as error:
        raise DeployError(f"the nested stack's template {url} is not JSON: {error}") from error
    return data


def s3_location(url: str) -> tuple[str, str]:
    """Bucket and key of an S3 https URL, virtual-hosted (bucket.s3.region.amazonaws.com/key)
    or path-style (s3.region.amazonaws.com/bucket/key)."""
    parsed = urlparse(url)
    host, path = parsed.hostname or "", unquote(parsed.path.lstrip("/"))
    if parsed.scheme != "https" or ".amazonaws.com" not in host:
        raise DeployError(f"{url} is not an S3 https URL (https://BUCKET.s3.REGION.amazonaws.com/KEY)")
    if host.startswith("s3.") or host.startswith("s3-"):
        bucket, _, key = path.partition("/")
        return bucket, key
    return host.split(".s3", 1)[0], path


def _plan(
    clients: Clients,
    stack_id: str | None,
    template: Template,
    described: Mapping[str, Any],
    values: Mapping[str, str],
    previous: Mapping[str, str],
    children: Mapping[str, Mapping[str, Any]],
) -> changes.Plan:
    declared = template.data.get("Parameters", {})
    new_values = {k: values.get(k, str(v.get("Default", ""))) for k, v in declared.items()}
    resource_changes = _all_changes(clients.cloudformation, described)
    return _stack_plan(clients, stack_id, template.data, resource_changes, new_values, dict(previous), children)


def _all_changes(cfn: Any, described: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ResourceChange of every Change of a described change set, all pages."""
    found = [c["ResourceChange"] for c in described.get("Changes", []) if "ResourceChange" in c]
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(ChangeSetName=described["ChangeSetId"], NextToken=token)
        found += [c["ResourceChange"] for c in page.get("Changes", []) if "ResourceChange" in c]
        token = page.get("NextToken")
    return found


def _stack_plan(
    clients: Clients,
    stack_id: str | None,
    new: Mapping[str, Any],
    resource_changes: list[dict[str, Any]],
    new_values: Mapping[str, str],
    old_values: Mapping[str, str],
    children: Mapping[str, Mapping[str, Any]],
) -> changes.Plan:
    """The plan of one stack's change set, with its nested stacks' changes (``WinStack/...``) where they
    can be known: from the nested change set (IncludeNestedStacks), else from the child's templates."""
    cfn = clients.cloudformation
    old: Mapping[str, Any] | None = None
    current: dict[str, str] = {}
    physical: dict[str, str] = {}
    if stack_id:
        body = cfn.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
        old = body if isinstance(body, Mapping) else _parse_body(body)
        paginator = cfn.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=stack_id):
            for summary in page["StackResourceSummaries"]:
                if summary.get("LogicalResourceId"):  # moto 5.2.5 also lists an unnamed entry
                    current[summary["LogicalResourceId"]] = summary["ResourceType"]
                    physical[summary["LogicalResourceId"]] = str(summary.get("PhysicalResourceId") or "")
    plan = changes.from_change_set(resource_changes, new, old, new_values, old_values, current)
    by_id = {c["LogicalResourceId"]: c for c in resource_changes}
    for index, change in enumerate(list(plan.changes)):
        if change.resource_type != "AWS::CloudFormation::Stack" or change.kind != changes.MODIFY:
            continue
        child_id = physical.get(change.logical_id, "")
        nested_set = by_id.get(change.logical_id, {}).get("ChangeSetId")
        child = children.get(change.logical_id)
        if nested_set:
            inner = _all_changes(cfn, cfn.describe_change_set(ChangeSetName=nested_set))
            if child is None:
                body = cfn.get_template(ChangeSetName=nested_set, TemplateStage="Original")["TemplateBody"]
                child = body if isinstance(body, Mapping) else _parse_body(body)
        elif child is not None and child_id:
            inner = []
        else:
            continue  # its changes stay unknown: a risk the operator confirms
        passed = new.get("Resources", {}).get(change.logical_id, {}).get("Properties", {}).get("Parameters", {})
        described_child = describe_stack(cfn, child_id) if child_id else None
        child_old = _previous_values(described_child) if described_child else {}
        # A value passed from the parent's own resources (GetAtt, Ref of a resource) is taken as unchanged.
        child_values = {k: str(v.get("Default", "")) for k, v in child.get("Parameters", {}).items()}
        child_values.update({k: v for k, v in child_old.items() if k in child_values})
        child_values.update(_passed(passed, new_values))
        sub = _stack_plan(clients, child_id or None, child, inner, child_values, child_old, {})
        plan.changes[index] = dataclasses.replace(change, nested=False)
        prefix = f"{change.logical_id}/"
        plan.changes += [dataclasses.replace(c, logical_id=prefix + c.logical_id) for c in sub.changes]
        plan.refresh += [prefix + why for why in sub.refresh]
    return plan


def _passed(parameters: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
    """A nested stack's parameter values from the parent's: Ref X, or Fn::Join [",", Ref X] (a list passed on)."""
    passed = {}
    for name, value in parameters.items():
        if isinstance(value, str):
            passed[name] = value
        elif isinstance(value, Mapping) and isinstance(value.get("Ref"), str) and value["Ref"] in values:
            passed[name] = values[value["Ref"]]
        elif isinstance(value, Mapping) and "Fn::Join" in value:
            joiner, items = value["Fn::Join"]
            if isinstance(items, Mapping) and isinstance(items.get("Ref"), str) and items["Ref"] in values:
                passed[name] = values[items["Ref"]] if joiner == "," else values[items["Ref"]].replace(",", joiner)
    return passed


def _parse_body(body: str) -> Mapping[str, Any]:
    try:
        parsed: Mapping[str, Any] = json.loads(body)
    except ValueError:
        from winworkers.deploy.inputs import _yaml

        parsed = _yaml(body, Path("(the stack's template)"))
    return parsed


def _confirm(
    cfn: Any,
    stack_name: str,
    change_set_id: str,
    plan: changes.Plan,
    values: Mapping[str, str],
    previous: Mapping[str, str],
    template: Mapping[str, Any],
    yes: bool,
    ask: confirm.Ask | None,
    echo: Echo,
) -> None:
    """Refuse (deleting the change set, so that nothing is left) unless the change is safe or approved.
    Removing the fleet (the switch off, or its group or nested stack removed otherwise) needs yes,
    a terminal's answer is not enough."""
    switched_off = previous.get(SWITCH) == "true" and values.get(SWITCH) == "false"
    resources = template.get("Resources", {})
    fleet = [
        c.logical_id
        for c in plan.of(changes.REMOVE)
        if c.resource_type == "AWS::AutoScaling::AutoScalingGroup"
        or (c.resource_type == changes.NESTED and "winworkers" in resources.get(c.logical_id, {}).get("Metadata", {}))
    ]
    if (switched_off or fleet) and not yes:
        kept = [c.logical_id for c in plan.of(changes.REMOVE) if c.retained]
        removed = [
            f"{c.logical_id} and everything in it" if c.resource_type == changes.NESTED else c.logical_id
            for c in plan.of(changes.REMOVE)
            if not c.retained
        ]
        stay = f"; these stay (DeletionPolicy Retain): {', '.join(kept)}" if kept else ""
        cfn.delete_change_set(ChangeSetName=change_set_id)
        what = f"{SWITCH}=false turns the feature off" if switched_off else f"it removes the fleet ({', '.join(fleet)})"
        raise DeployError(
            f"{what}: it deletes {counted(len(removed), 'resource')} ({', '.join(removed)}){stay}; "
            "nothing was changed: run again with --yes to do it"
        )
    if not plan.risky:
        return
    what = plan.summary()
    answer = confirm.approved(f"Execute this change set ({what})?", yes=yes, ask=ask)
    if answer:
        return
    cfn.delete_change_set(ChangeSetName=change_set_id)
    if answer is None:
        raise DeployError(
            f"the change set for {stack_name} would {what}: without a terminal that needs --yes; "
            "nothing was changed (run with --dry-run to keep the change set for review)"
        )
    raise DeployError(f"not executed: nothing was changed (the change set for {stack_name} is deleted)")


def _template_source(template: Template, stack_name: str, clients: Clients, bucket: str | None) -> dict[str, str]:
    if template.size <= INLINE_LIMIT:
        return {"TemplateBody": template.body}
    assert bucket  # check_size refused it otherwise
    require_bucket(clients, bucket, "--template-bucket")
    suffix = ".json" if template.body.lstrip().startswith("{") else ".yaml"
    key = f"winworkers/{stack_name}-{uuid.uuid4().hex[:12]}{suffix}"
    return {"TemplateURL": upload(clients, template.body, bucket, key)}


def require_bucket(clients: Clients, bucket: str, flag: str) -> None:
    """A clear line for a bucket that is not there (HeadBucket answers 404, or 403 when it is someone else's)."""
    from botocore.exceptions import ClientError

    try:
        clients.s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchBucket"):
            raise DeployError(
                f"{flag} {bucket}: there is no such bucket in this account's reach: create it first "
                "(e.g. winworkers upload --create-bucket), or name another"
            ) from error
        if code in ("403", "AccessDenied"):
            raise DeployError(
                f"{flag} {bucket}: access denied (another account's bucket, or no s3 permission)"
            ) from error
        raise


def upload(clients: Clients, body: str, bucket: str, key: str) -> str:
    """Put a template into ``bucket`` and return the https URL CloudFormation reads it from
    (a nested stack's TemplateURL, or a stack's over the inline limit)."""
    clients.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    suffix = "amazonaws.com.cn" if clients.region.startswith("cn-") else "amazonaws.com"
    # CloudFormation reads the object with the caller's own permissions.
    return f"https://{bucket}.s3.{clients.region}.{suffix}/{key}"


def delete(
    clients: Clients,
    stack_name: str,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    poll_seconds: float = 5,
    echo: Echo = print,
    yes: bool = False,
    ask: confirm.Ask | None = None,
    role_arn: str | None = None,
    wait_for_refresh: bool = False,
) -> bool:
    """Delete stack_name and wait, streaming its events. False when there was no such stack.

    An instance refresh under way is named and refused (or waited for: ``wait_for_refresh``),
    as deploy does. It says what goes and what stays (DeletionPolicy Retain), then asks
    (``ask``), or needs ``yes``."""
    cfn = clients.cloudformation
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        return False
    deadline = time.monotonic() + timeout_minutes * 60
    _refuse_or_wait_for_refresh(clients, stack, wait_for_refresh, deadline, poll_seconds, echo)
    _say_deletion(cfn, stack, echo)
    answer = confirm.approved(f"Delete stack {stack_name}?", yes=yes, ask=ask)
    if answer is None:
        raise DeployError(f"deleting stack {stack_name} needs --yes without a terminal: nothing was deleted")
    if not answer:
        raise DeployError(f"stack {stack_name} was not deleted")
    _delete(clients, stack, timeout_minutes, deadline, poll_seconds, echo, role_arn)
    return True


def _deletion(cfn: Any, stack_id: str, prefix: str = "") -> tuple[list[str], list[str]]:
    """The resources a deletion removes and those it keeps (DeletionPolicy Retain), nested stacks' included."""
    body = cfn.get_template(StackName=stack_id, TemplateStage="Original")["TemplateBody"]
    template = body if isinstance(body, Mapping) else _parse_body(body)
    definitions = template.get("Resources", {})
    paginator = cfn.get_paginator("list_stack_resources")
    going, staying = [], []
    for page in paginator.paginate(StackName=stack_id):
        for summary in page["StackResourceSummaries"]:
            name = summary["LogicalResourceId"]
            if summary.get("ResourceStatus") == "DELETE_COMPLETE":
                continue
            label = f"{prefix}{name}"
            if definitions.get(name, {}).get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"):
                physical = summary.get("PhysicalResourceId")
                staying.append(f"{label} ({physical})" if physical else label)
                continue
            going.append(label)
            child = str(summary.get("PhysicalResourceId") or "")
            if summary["ResourceType"] == "AWS::CloudFormation::Stack" and child:
                inner_going, inner_staying = _deletion(cfn, child, f"{label}/")
                going += inner_going
                staying += inner_staying
    return going, staying


def _delete(
    clients: Clients,
    stack: Mapping[str, Any],
    timeout_minutes: float,
    deadline: float,
    poll: float,
    echo: Echo,
    role_arn: str | None = None,
) -> None:
    cfn = clients.cloudformation
    name, stack_id = stack["StackName"], stack["StackId"]
    watcher = Watcher(cfn, clients.autoscaling, stack_id, echo)
    _primed(watcher, name, None)
    cfn.delete_stack(StackName=stack_id, **({"RoleARN": role_arn} if role_arn else {}))
    final = wait_stack(cfn, stack_id, name, watcher, deadline, timeout_minutes, poll)
    if final != "DELETE_COMPLETE":
        raise DeployError(
            f"stack {name} ended {final}: {_cause(watcher, name)}; fix or retain what failed, "
            f"then: winworkers delete --stack-name {name}"
        )
    echo(f"stack {name}: DELETE_COMPLETE")
    _say_unread(watcher, name, echo)


def follow(
    clients: Clients,
    stack_name: str,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    poll_seconds: float = 5,
    echo: Echo = print,
    wait: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Attach to the stack: print its status and its groups' latest refreshes; if an operation
    is under way, its events so far and then as they come, to its end; with ``wait``, then each
    refresh under way to its end. The final status; DeployError when the stack does not exist
    or ended failed or rolled back, or a refresh followed ended otherwise than Successful."""
    cfn = clients.cloudformation
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        raise DeployError(f"stack {stack_name} does not exist")
    status = str(stack["StackStatus"])
    echo(f"stack {stack_name}: {status}")
    watcher = Watcher(cfn, clients.autoscaling, stack["StackId"], echo)
    in_progress = status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"
    if in_progress:
        watcher.prime(replay=True)
    else:  # nothing to follow: the groups, and the events only if the operation failed (below)
        watcher.tree(tolerant=True)
    if watcher.unlisted:
        echo(f"not listed: the stack's resources ({watcher.unlisted}); refreshes of its groups may not be shown")
    deadline = time.monotonic() + timeout_minutes * 60
    if in_progress:
        status = wait_stack(cfn, stack["StackId"], stack_name, watcher, deadline, timeout_minutes, poll_seconds)
        echo(f"stack {stack_name}: {status}")
        _say_unread(watcher, stack_name, echo)
    else:
        watcher.refreshes.poll()
    if "ROLLBACK" in status or status.endswith("_FAILED"):
        if not in_progress:  # the cause is in the last operation's events, which were not printed
            watcher.take_last_operation()
        raise DeployError(_ended(stack_name, status, watcher))
    if wait:
        running = [r for r in watcher.refreshes.latest.values() if r.get("Status") in ACTIVE_REFRESH]
        _follow_refreshes(watcher, running, stack_name, status, deadline, poll_seconds, sleep)
    return status


def _resources(cfn: Any, stack_id: str) -> dict[str, int]:
    """The stack's resources by status; none when they cannot be listed (the operation has ended: its result
    stands, the counts are left out)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        paginator = cfn.get_paginator("list_stack_resources")
        summaries = [s for page in paginator.paginate(StackName=stack_id) for s in page["StackResourceSummaries"]]
    except (ClientError, BotoCoreError):
        return {}
    return dict(Counter(str(r["ResourceStatus"]) for r in summaries))


def preflight_stack(
    clients: Clients,
    stack_name: str,
    template_source: Path | Mapping[str, Any] | Given,
    parameters: Mapping[str, str],
    *,
    reset_to_defaults: bool = False,
    echo: Echo = print,
) -> None:
    """``winworkers preflight``: deploy's checks up to and including the preflight, and nothing else. The
    values are resolved as deploy resolves them (on an update, a parameter not given keeps the stack's
    value); nothing is created, no change set either. DeployError (one line) for what deploy would refuse."""
    given = read_given(template_source, parameters)
    stack = describe_stack(clients.cloudformation, stack_name)
    updating = stack is not None and stack["StackStatus"] not in ("REVIEW_IN_PROGRESS", *RECREATE)
    previous = _previous_values(stack) if stack is not None and updating else {}
    values, _, masked = _values(given.template.data, parameters, previous, reset_to_defaults, echo)
    validate(given, values, known=masked)
    preflight.run(clients, given.template.data, values, echo)
    echo(f"preflight passed: {'an update of' if updating else 'a new'} stack {stack_name}; nothing was created")
