"""Following a stack operation to its end: the stack's events, its nested stacks'
events, and the progress of any instance refresh of its groups.

DescribeStackEvents lists events newest first, in pages (each read here goes back only as far as it
needs, through as many pages as that takes: register rows 65 and 283):
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html
DescribeInstanceRefreshes gives each refresh's Status, PercentageComplete,
InstancesToUpdate and StatusReason (which names the checkpoint it waits at):
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRefresh.html
"""

from __future__ import annotations

import contextlib
import functools
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from winworkers.deploy.base import DeployError, Echo, describe_stack, one_line

# A refresh in these states holds the group: another cannot start (InstanceRefreshInProgressFault).
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html
ACTIVE_REFRESH = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
# The other documented statuses end it; only Successful replaced every worker as asked (Cancelled and
# RollbackSuccessful leave or put back the previous ones; Failed and RollbackFailed say why in StatusReason):
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceRefresh.html (register row 193)
REFRESH_SUCCEEDED = "Successful"
REFRESH_ENDED_OTHERWISE = ("Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful")
_UNAVAILABLE: weakref.WeakSet[Any] = weakref.WeakSet()
"""The autoscaling clients whose DescribeInstanceRefreshes failed otherwise than for a while: not asked again."""


class Unreadable(Exception):
    """DescribeInstanceRefreshes did not answer: ``code`` names why; ``transient`` when botocore's own
    retry rules would ask again (throttling, a 5xx, a dropped connection), so the next poll does."""

    def __init__(self, code: str, transient: bool) -> None:
        super().__init__(code)
        self.code = code
        self.transient = transient


class EventStream:
    """Prints each new event of one stack once, oldest first: time, logical id, status, reason.
    A nested stack's events carry its logical id in the parent: ``WinStack/WinGroup``."""

    def __init__(self, cloudformation: Any, stack_id: str, echo: Echo, prefix: str = "") -> None:
        self.cloudformation = cloudformation
        self.stack_id = stack_id
        self.echo = echo
        self.prefix = prefix
        self.seen: set[str] = set()
        self.printed: list[dict[str, Any]] = []
        self.started = False
        """Whether its first read (prime, replay, last operation) was made: until then a poll would take the
        stack's whole history as new."""

    def prime(self) -> None:
        """Take the events so far as seen: only what happens next is printed
        (the newest page is enough: every earlier event is older still)."""
        self.seen.update(e["EventId"] for e in self._events(lambda events: True))
        self.started = True

    def replay_from_last_start(self, since: datetime | None = None) -> None:
        """Print the events of the operation under way (from the stack's last *_IN_PROGRESS of its own; for a
        nested stack, from ``since``, its root's start), the older ones taken as seen: what `winworkers
        status` shows when it attaches."""
        events = self._operation(since)
        current = _cut(events, self.stack_id, since)
        self.seen.update(e["EventId"] for e in events[current:])
        self._show(reversed(events[:current]))
        self.started = True

    def last_operation(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The events of the stack's last operation (a nested stack's: from ``since``), oldest first, not printed."""
        events = self._operation(since)
        return list(reversed(events[: _cut(events, self.stack_id, since)]))

    def poll(self) -> None:
        """Print the events new since the last read (added to printed)."""
        self._show(reversed(self._newest()))

    def _show(self, events: Iterable[dict[str, Any]]) -> None:
        """Print each of events (oldest first) not seen yet, and add it to printed."""
        for event in events:
            if event["EventId"] in self.seen:
                continue
            self.seen.add(event["EventId"])
            self.printed.append(event)
            stamp = event["Timestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = one_line(event.get("ResourceStatusReason") or "")
            name = f"{self.prefix}{event['LogicalResourceId']}"
            self.echo(f"{stamp}  {name:<32} {event['ResourceStatus']:<20} {reason}".rstrip())

    def _newest(self) -> list[dict[str, Any]]:
        """New events up to the first already seen (fetching more pages only while none is)."""
        return self._events(lambda events: any(e["EventId"] in self.seen for e in events))

    def _operation(self, since: datetime | None) -> list[dict[str, Any]]:
        """The events back to the start of the stack's last operation (a nested stack's: to ``since``) and at
        least one older (every event when there is none): an operation can outlast a page (a stack of 60
        resources makes at least 120 events; register row 283), and the older one is where the next poll
        stops."""
        return self._events(lambda events: _cut(events, self.stack_id, since) < len(events))

    def _events(self, enough: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """The stack's events, newest first, page after page until those read are enough or none is left. An
        event read again (AWS's NextToken is opaque: events added between two reads might shift a page) is
        kept once, where it was first read."""
        events: list[dict[str, Any]] = []
        read: set[str] = set()
        token = None
        while True:
            page = self.cloudformation.describe_stack_events(
                StackName=self.stack_id, **({"NextToken": token} if token else {})
            )
            events += [e for e in page["StackEvents"] if e["EventId"] not in read]
            read.update(e["EventId"] for e in page["StackEvents"])
            token = page.get("NextToken")
            if not token or enough(events):
                return events


def _cut(events: list[dict[str, Any]], stack_id: str, since: datetime | None) -> int:
    """How many of events (newest first) are the operation's. A nested stack's (since: its root's start):
    every event from then on, whatever it did in the root's operation (updated and rolled back, or created
    and deleted again: its own last start would be that deletion). Else the stack's last operation, up to
    its start (all when none is read)."""
    if since is not None:
        return next((i for i, e in enumerate(events) if e["Timestamp"] < since), len(events))
    start = _last_start(events, stack_id)
    return len(events) if start is None else start + 1


def _last_start(page: list[dict[str, Any]], stack_id: str) -> int | None:
    """The index (newest first) of the stack's own event that started its last operation: a rollback
    and a cleanup are part of the operation they end (its failure is before them)."""
    return next(
        (
            i
            for i, e in enumerate(page)
            if e.get("PhysicalResourceId") == stack_id
            and e["LogicalResourceId"] == e.get("StackName")
            and str(e["ResourceStatus"]).endswith("_IN_PROGRESS")
            and not any(part in str(e["ResourceStatus"]) for part in ("ROLLBACK", "CLEANUP"))
        ),
        None,
    )


class RefreshWatch:
    """Prints a line whenever an instance refresh of the watched groups changes:
    its id, status, percent complete, instances to update and reason (the checkpoint)."""

    def __init__(self, autoscaling: Any, echo: Echo) -> None:
        self.autoscaling = autoscaling
        self.echo = echo
        self.groups: set[str] = set()
        self.last: dict[str, tuple[Any, ...]] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        """Each group's newest refresh, as last read."""
        self.before: dict[str, str] = {}
        """Each group's newest refresh id when baseline() was called: a newer one started since."""
        self.unavailable = autoscaling is None or _said(autoscaling)

    def baseline(self) -> None:
        """Note each group's newest refresh now (none is printed)."""
        for group in sorted(self.groups):
            refresh = latest_refresh(self, group)
            if refresh is not None:
                self.before[group] = str(refresh.get("InstanceRefreshId"))

    def started(self) -> list[dict[str, Any]]:
        """The refreshes that started since baseline(), as last read."""
        return [r for g, r in sorted(self.latest.items()) if self.before.get(g) != r.get("InstanceRefreshId")]

    def poll(self) -> None:
        for group in sorted(self.groups):
            refresh = latest_refresh(self, group)
            if refresh is not None:
                self.latest[group] = refresh
                self.show(refresh)

    def show(self, refresh: Mapping[str, Any]) -> None:
        """Print the refresh's line if it changed since last printed."""
        state = tuple(refresh.get(k) for k in ("Status", "PercentageComplete", "InstancesToUpdate", "StatusReason"))
        key = f"{refresh.get('AutoScalingGroupName')}/{refresh.get('InstanceRefreshId')}"
        if self.last.get(key) != state:
            self.last[key] = state
            self.echo(refresh_line(refresh))


def latest_refresh(watch: RefreshWatch, group: str) -> dict[str, Any] | None:
    """The group's newest instance refresh (None when there is none, or it cannot be seen: a transient
    error is asked again at the next call; any other is said once and not asked again)."""
    if watch.unavailable:
        return None
    try:
        refreshes = describe_refreshes(watch.autoscaling, AutoScalingGroupName=group, MaxRecords=1)
    except Unreadable as error:
        if not error.transient:
            watch.unavailable = True
            with contextlib.suppress(TypeError):  # said once per client (if it can be weakly referenced)
                _UNAVAILABLE.add(watch.autoscaling)
            watch.echo(f"instance refreshes of {group} cannot be seen here (DescribeInstanceRefreshes: {error.code})")
        return None
    return refreshes[0] if refreshes else None


def describe_refreshes(autoscaling: Any, **request: Any) -> list[dict[str, Any]]:
    """DescribeInstanceRefreshes' refreshes; Unreadable when it does not answer (botocore's errors,
    or an emulator without the API)."""
    try:
        found = autoscaling.describe_instance_refreshes(**request)
    except Exception as error:
        raise Unreadable(error_code(error), _transient(error)) from error
    return [dict(r) for r in found.get("InstanceRefreshes", [])]


def _transient(error: Exception) -> bool:
    """botocore's standard retry mode would retry it: a throttling or transient error code, a 5xx,
    a connection error (botocore.retries.standard's own checkers, not a list of our own; row 207)."""
    from types import SimpleNamespace

    from botocore.exceptions import ClientError
    from botocore.retries import standard

    response = getattr(error, "response", None)
    status = (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    context = standard.RetryContext(
        attempt_number=1,
        parsed_response=response,
        http_response=SimpleNamespace(status_code=status) if status else None,
        caught_exception=None if isinstance(error, ClientError) else error,
    )
    checkers = (standard.ThrottledRetryableChecker(), standard.TransientRetryableChecker())
    return any(checker.is_retryable(context) for checker in checkers)


def transient_code(error: Exception) -> str | None:
    """The error's code when botocore's retry rules call it transient (_transient; its retries spent: read
    again later), else None."""
    return error_code(error) if _transient(error) else None


def _said(client: Any) -> bool:
    try:
        return client in _UNAVAILABLE
    except TypeError:
        return False


def refresh_line(refresh: Mapping[str, Any]) -> str:
    percent = refresh.get("PercentageComplete")
    left = refresh.get("InstancesToUpdate")
    parts = [
        f"instance refresh {refresh.get('InstanceRefreshId')} of {refresh.get('AutoScalingGroupName')}:",
        str(refresh.get("Status")),
    ]
    if percent is not None:
        parts.append(f"{_bar(int(percent))} {percent}%")
    if left is not None:
        parts.append(f"{left} to update")
    checkpoints = refresh.get("Preferences", {}).get("CheckpointPercentages")
    if checkpoints:
        parts.append(f"checkpoints {'/'.join(str(c) for c in checkpoints)}%")
    reason = one_line(refresh.get("StatusReason") or "")
    return " ".join(parts) + (f" ({reason})" if reason else "")


def _bar(percent: int, width: int = 20) -> str:
    done = max(0, min(width, percent * width // 100))
    return "[" + "#" * done + "." * (width - done) + "]"


class Watcher:
    """A stack's events, its nested stacks' (found from the events and its resources), and refreshes."""

    def __init__(self, cloudformation: Any, autoscaling: Any, stack_id: str, echo: Echo) -> None:
        self.cloudformation = cloudformation
        self.stack_id = stack_id
        self.echo = echo
        self.streams = [EventStream(cloudformation, stack_id, echo)]
        self.nested: set[str] = set()
        self.refreshes = RefreshWatch(autoscaling, echo)
        self.unread: dict[str, str] = {}
        """The stacks whose last read a transient error stopped (botocore's retries spent), by id: the error
        code. Each is read again at the next poll (a first read as a first read: _first_read)."""
        self.unlisted = ""
        """The error code of a listing of the stack's resources that tree(tolerant=True) went on without."""
        self.reading = stack_id
        """The stack whose events poll() reads now (the one an error it raises is about)."""

    @property
    def printed(self) -> list[dict[str, Any]]:
        return [e for s in self.streams for e in s.printed]

    def tree(self, *, tolerant: bool = False) -> None:
        """A stream (nothing read yet) for each nested stack ListStackResources lists now; every group noted.
        tolerant (status): a listing that an error stopped lists nothing (the error code in unlisted; nested
        stacks are still found from the events); else (deploy: its refresh baseline) it is raised."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            listed = stack_tree(self.cloudformation, self.stack_id)
        except (ClientError, BotoCoreError) as error:
            self.unlisted = error_code(error)
            if not tolerant:
                raise
            listed = []
        for stack_id, prefix, groups in listed:
            self.refreshes.groups.update(groups)
            if stack_id != self.stack_id and stack_id not in self.nested:
                self.nested.add(stack_id)
                self.streams.append(EventStream(self.cloudformation, stack_id, self.echo, prefix))

    def prime(self, *, replay: bool = False) -> None:
        """Start from now, nested stacks included (replay: from the start of the operation under way, a
        nested stack's events no older than the root's start: one the operation has not reached yet shows
        none of its own last one). Without replay (deploy, delete) the root's own read raises its errors; with
        it (status), one that an error botocore retries stopped is made again at the next poll."""
        self.tree(tolerant=replay)
        root = self.streams[0]
        if replay:
            self._tolerant(root, functools.partial(self._first_read, root))
            self._each_nested(self._first_read)
        else:  # before anything runs: every event so far is older
            root.prime()
            self._each_nested(EventStream.prime)

    def _first_read(self, stream: EventStream) -> None:
        """A stack's first read after prime() (one that an error stopped, one found from events or listed
        late). The root's (status: deploy's prime raises instead): its operation under way replayed. A nested
        stack's: from the root's operation's start (the events
        since then printed, the older ones taken as seen). While the root has printed nothing of the
        operation, it waits: the nested stack's events could already hold the operation's, and a prime would
        take them as seen (the cause with them)."""
        root = self.streams[0]
        if stream is root:
            root.replay_from_last_start()
        elif root.printed:
            stream.replay_from_last_start(since=root.printed[0]["Timestamp"])

    def take_last_operation(self) -> None:
        """Each stream's events of the stack's last operation as printed, without printing them (a nested
        stack's no older than the root's start): what names the cause of an operation that ended before
        `winworkers status` attached, as deploy names it. After tree() (not prime: each stack's events are
        read once). The root's events unreadable (an error botocore retries): no stream is read."""
        root = self.streams[0]
        self._tolerant(root, functools.partial(_take_last_operation, root, None))
        if root.started:
            since = root.printed[0]["Timestamp"] if root.printed else None
            self._each_nested(functools.partial(_take_last_operation, since=since))

    def _each_nested(self, read: Callable[[EventStream], Any]) -> None:
        """read each nested stack's stream, and then the streams of the nested stacks that the events read so
        far name and no stream follows yet (one a rollback deleted, whose events AWS keeps by its id: row 65;
        one ListStackResources listed before it had an id), as poll follows them."""
        for event in list(self.streams[0].printed):
            self._follow(self.streams[0], event)
        at = 1
        while at < len(self.streams):
            stream = self.streams[at]
            if not self._tolerant(stream, functools.partial(read, stream)):
                self.streams.remove(stream)
                continue
            for event in list(stream.printed):
                self._follow(stream, event)
            at += 1

    def poll(self) -> None:
        """Each stream's new events (a first read for one not read yet), the streams of the nested stacks
        they name read in the same poll; then the refreshes."""
        at = 0
        while at < len(self.streams):
            stream = self.streams[at]
            self.reading = stream.stack_id
            shown = len(stream.printed)
            read = EventStream.poll if stream.started else self._first_read
            if not self._tolerant(stream, functools.partial(read, stream)):
                self.streams.remove(stream)
                continue
            for event in stream.printed[shown:]:
                self._follow(stream, event)
            at += 1
        self.refreshes.poll()

    def _tolerant(self, stream: EventStream, call: Callable[[], Any]) -> bool:
        """Run call; False when a nested stack cannot be read (deleted, or an emulator that names it
        otherwise): its events are then not shown. An error botocore's retry rules call transient
        (throttling: these reads share the account's CloudFormation rate) outlasted botocore's own retries:
        noted in unread, and the next poll reads again (the stream is kept). The stack's own other errors
        are raised."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            call()
        except (ClientError, BotoCoreError) as error:
            code = transient_code(error)
            if code:
                self.unread[stream.stack_id] = code
                return True
            if not isinstance(error, ClientError) or stream.stack_id == self.stack_id:
                raise
            if "does not exist" not in str(error):
                raise
            return False
        self.unread.pop(stream.stack_id, None)
        return True

    def _follow(self, stream: EventStream, event: Mapping[str, Any]) -> None:
        physical = str(event.get("PhysicalResourceId") or "")
        kind = event.get("ResourceType")
        own = event.get("LogicalResourceId") == event.get("StackName") or physical == stream.stack_id
        if kind == "AWS::CloudFormation::Stack" and physical and not own:
            if physical not in self.nested:
                self.nested.add(physical)
                self.streams.append(
                    EventStream(
                        self.cloudformation, physical, self.echo, f"{stream.prefix}{event['LogicalResourceId']}/"
                    )
                )
        elif kind == "AWS::AutoScaling::AutoScalingGroup" and physical:
            self.refreshes.groups.add(physical)


def _take_last_operation(stream: EventStream, since: datetime | None) -> None:
    stream.printed = stream.last_operation(since)
    stream.started = True


def stack_tree(cfn: Any, stack_id: str, prefix: str = "") -> list[tuple[str, str, list[str]]]:
    """(stack id, event prefix, Auto Scaling group names) of a stack and each nested stack in it."""
    from botocore.exceptions import ClientError

    try:
        paginator = cfn.get_paginator("list_stack_resources")
        resources = [s for page in paginator.paginate(StackName=stack_id) for s in page["StackResourceSummaries"]]
    except ClientError as error:
        # A nested stack deleted meanwhile lists nothing. Any other error is raised: the groups listed here
        # are what deploy's refresh gate and its baseline know (register row 207).
        if "does not exist" not in str(error):
            raise
        resources = []
    groups = [
        str(r["PhysicalResourceId"])
        for r in resources
        if r["ResourceType"] == "AWS::AutoScaling::AutoScalingGroup" and r.get("PhysicalResourceId")
    ]
    tree = [(stack_id, prefix, groups)]
    for r in resources:
        child = str(r.get("PhysicalResourceId") or "")
        if r["ResourceType"] == "AWS::CloudFormation::Stack" and child:
            tree += stack_tree(cfn, child, f"{prefix}{r['LogicalResourceId']}/")
    return tree


def active_refreshes(cfn: Any, autoscaling: Any, stack_id: str, echo: Echo) -> list[dict[str, Any]]:
    """The instance refreshes under way in the stack's groups (nested stacks' included)."""
    watch = RefreshWatch(autoscaling, echo)
    found = []
    for _, _, groups in stack_tree(cfn, stack_id):
        for group in groups:
            refresh = latest_refresh(watch, group)
            if refresh and refresh.get("Status") in ACTIVE_REFRESH:
                found.append(refresh)
    return found


def wait_stack(
    cfn: Any, stack_id: str, name: str, watcher: Watcher, deadline: float, timeout_minutes: float, poll: float
) -> str:
    """Follow the stack until no longer in progress; its final status. A status read that an error botocore
    retries stopped (its retries spent) is read again at the next poll."""
    from botocore.exceptions import BotoCoreError, ClientError

    last = {"status": "", "unread": ""}

    def status() -> str:
        watcher.poll()
        try:
            described = describe_stack(cfn, stack_id)
        except (ClientError, BotoCoreError) as error:
            last["unread"] = transient_code(error) or ""
            if not last["unread"]:
                raise
            return last["status"] or "_IN_PROGRESS"  # not read yet: still under way, as far as is known
        last.update(status=str(described["StackStatus"]) if described else "DELETE_COMPLETE", unread="")
        return last["status"]

    def late(state: str) -> str:
        known = f"is still {state}"
        if last["unread"]:
            known = f"could not be read ({last['unread']}; last read {last['status'] or 'never'})"
        return (
            f"stack {name} {known} after {timeout_minutes:g} minutes; it was not cancelled: "
            f"CloudFormation carries on. Follow it with: winworkers status --stack-name {name}"
        )

    try:
        final: str = wait_for(status, lambda s: not s.endswith("_IN_PROGRESS"), deadline, poll, late)
    except (ClientError, BotoCoreError) as error:  # not one botocore retries (expired credentials, a denial)
        raise DeployError(
            f"stack {name}: following it stopped ({error_code(error)}: {one_line(error)}); it was not cancelled: "
            f"CloudFormation carries on. Follow it with: winworkers status --stack-name {name}"
        ) from None
    try:  # the last events, after the end: what cannot be read is noted (the end is known)
        watcher.poll()
    except (ClientError, BotoCoreError) as error:
        watcher.unread[watcher.reading] = error_code(error)
    return final


def error_code(error: Exception) -> str:
    """The error's code (a ClientError's), else its class's name (a dropped connection: ReadTimeoutError)."""
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code") or type(error).__name__)


def wait_for(
    fetch: Callable[[], Any], done: Callable[[Any], bool], deadline: float, poll: float, late: Callable[[Any], str]
) -> Any:
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise DeployError(late(value))
        time.sleep(poll)


def first_failure(events: list[dict[str, Any]]) -> str:
    """This run's first failure, oldest first (its reason is the cause; the rest usually follow
    from it, such as the "Resource update cancelled" of the resources it stopped), or "" when
    no resource failed. events: oldest first within each stack."""
    failed = [e for e in events if str(e["ResourceStatus"]).endswith("_FAILED")]
    causes = [e for e in failed if not _follow_on(e)] or failed
    if not causes:
        return ""
    first = min(causes, key=lambda e: e["Timestamp"])  # the earliest listed among equal times
    reason = one_line(first.get("ResourceStatusReason") or "") or "no reason given"
    return f"{first['LogicalResourceId']} {first['ResourceStatus']}: {reason}"


def _follow_on(event: Mapping[str, Any]) -> bool:
    """A resource CloudFormation stopped because another failed ("Resource creation cancelled",
    "Resource update cancelled")."""
    reason = str(event.get("ResourceStatusReason") or "")
    return reason.startswith("Resource ") and reason.rstrip(".").endswith(" cancelled")


def refresh_ended(refresh: Mapping[str, Any], stack: str, final: str) -> str:
    """One line for a refresh that ended otherwise than Successful: what, why, and where to look."""
    group = refresh.get("AutoScalingGroupName")
    reason = one_line(refresh.get("StatusReason") or "") or "no reason given"
    return (
        f"instance refresh {refresh.get('InstanceRefreshId')} of {group} ended {refresh.get('Status')}: {reason}; "
        f"stack {stack} is {final} but not every worker was replaced: see "
        f"aws autoscaling describe-scaling-activities --auto-scaling-group-name {group}"
    )


def follow_refreshes(
    watch: RefreshWatch,
    followed: list[dict[str, Any]],
    stack: str,
    final: str,
    until: Callable[[], bool],
    sleep: Callable[[], None],
) -> None:
    """Follow the refreshes followed to their end, each read by its own id (InstanceRefreshIds, row 207: a refresh
    started after it does not hide how it ended), printing each change: until() says the time is up, sleep()
    waits a poll. A transient DescribeInstanceRefreshes error is asked again at the next poll. DeployError
    when one ends otherwise than Successful, cannot be read (any other error), or is still under way when
    the time is up (it is not cancelled)."""
    current = {str(r.get("InstanceRefreshId")): dict(r) for r in followed}
    failing = ""
    while True:
        running = [r for r in current.values() if r.get("Status") in ACTIVE_REFRESH]
        if not running:
            break
        if until():
            raise DeployError(_late(running[0], stack, failing))
        sleep()
        failing = ""
        for refresh in running:
            try:
                current[str(refresh.get("InstanceRefreshId"))] = _reread(watch, refresh, stack)
            except Unreadable as error:  # transient: the next poll asks again
                failing = error.code
    for refresh in current.values():
        if refresh.get("Status") != REFRESH_SUCCEEDED:
            raise DeployError(refresh_ended(refresh, stack, final))


def _reread(watch: RefreshWatch, refresh: Mapping[str, Any], stack: str) -> dict[str, Any]:
    """The refresh as it is now, read by its id and printed if it changed; Unreadable for a transient error,
    DeployError for any other (or when the answer does not hold it)."""
    refresh_id, group = refresh.get("InstanceRefreshId"), refresh.get("AutoScalingGroupName")
    try:
        found = describe_refreshes(watch.autoscaling, AutoScalingGroupName=group, InstanceRefreshIds=[refresh_id])
    except Unreadable as error:
        if error.transient:
            raise
        raise DeployError(_unreadable(refresh, stack, error.code)) from error
    now = next((r for r in found if r.get("InstanceRefreshId") == refresh_id), None)
    if now is None:
        raise DeployError(_unreadable(refresh, stack, "the answer does not hold it"))
    watch.show(now)
    return now


def _unreadable(refresh: Mapping[str, Any], stack: str, why: str) -> str:
    return (
        f"cannot read instance refresh {refresh.get('InstanceRefreshId')} of {refresh.get('AutoScalingGroupName')} "
        f"(DescribeInstanceRefreshes: {why}); it was not cancelled and how it ends is not known here: "
        f"follow it with: winworkers status --stack-name {stack}"
    )


def _late(refresh: Mapping[str, Any], stack: str, failing: str) -> str:
    """The timeout's line: the refresh's state as last read, or that the last read failed."""
    where = f"instance refresh {refresh.get('InstanceRefreshId')} of {refresh.get('AutoScalingGroupName')}"
    if failing:
        last = refresh.get("Status")
        state = f"could not be read at the timeout (DescribeInstanceRefreshes: {failing}; last read {last})"
    else:
        state = f"is still {refresh.get('Status')} ({refresh.get('PercentageComplete', 0)}% complete) at the timeout"
    return (
        f"{where} {state}; it was not cancelled: Auto Scaling carries on. "
        f"Follow it with: winworkers status --stack-name {stack}"
    )
