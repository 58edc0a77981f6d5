"""winworkers deploy, upload and delete: a template to a CloudFormation
stack by change set, against AWS (the usual credential chain) or an emulator
(--endpoint-url). Needs boto3: pip install 'winworkers[deploy]'.

Before any AWS call it checks every value against the template's own parameter
constraints (winworkers.constraints), then the template's Rules, and the
template's size against CloudFormation's limits. Then it fills in the region's S3
prefix list when the feature is enabled and none was given, creates a change set
(CREATE for a new stack, UPDATE otherwise; a stack whose creation failed is
deleted and created again), executes it and streams the stack's events until it
is complete, or until --timeout minutes have passed (the stack is not
cancelled then). Re-running with the same inputs changes nothing.

Every run states the whole configuration: a parameter left out takes the
template's default, not the stack's previous value (keep the values in a
--parameters-file). On an update, each parameter that changes that way is
named.

winworkers upload puts a nested stack's child into a bucket and prints the
https URL the parent's TemplateURL parameter takes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from winworkers.constraints import check_inputs, check_parameters
from winworkers.parameters import SWITCH
from winworkers.templates import INLINE_LIMIT, S3_LIMIT

INSTALL = "pip install 'winworkers[deploy]'"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
# A stack update that changes the launch template refreshes the fleet: two halves
# (checkpoint at 50%, an hour's CheckpointDelay between), each a bootstrap (up to the
# launch hook's 45 minutes) plus the replaced workers' drains (DrainSeconds, default
# an hour). Four hours covers that with the defaults; creation needs far less.
DEFAULT_TIMEOUT_MINUTES = 240
DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
# A stack whose creation failed cannot be updated, only deleted:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes
RECREATE = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED")
# How CloudFormation reports a change set without changes (StatusReason of a FAILED change set).
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

Echo = Callable[[str], None]


class DeployError(RuntimeError):
    """The stack did not reach the state asked for; the message (one line) says why."""


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    resources: dict[str, int] = field(default_factory=dict)
    """Resource count by status."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients a deploy uses, and their region."""

    cloudformation: Any
    ec2: Any
    s3: Any
    region: str

    @classmethod
    def connect(cls, region: str | None = None, profile: str | None = None, endpoint_url: str | None = None) -> Clients:
        """Clients for region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's)."""
        try:
            import boto3
        except ImportError as error:
            raise DeployError(f"deploying needs boto3: {INSTALL}") from error
        session = boto3.session.Session(profile_name=profile)
        # AWS_REGION, which boto3 does not read, comes before AWS_DEFAULT_REGION and the profile:
        # https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html
        chosen = region or os.environ.get("AWS_REGION") or session.region_name
        if not chosen:
            raise DeployError("no region: pass --region, or set AWS_REGION, AWS_DEFAULT_REGION or a profile's region")

        def client(name: str) -> Any:
            return session.client(name, region_name=chosen, endpoint_url=endpoint_url)

        return cls(client("cloudformation"), client("ec2"), client("s3"), chosen)


def load_template(path: Path) -> tuple[dict[str, Any], str]:
    """The template as data, and as the minified body CloudFormation will get."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DeployError(f"cannot read the template {path}: {error.strerror or error}") from error
    try:
        template = json.loads(text)
    except ValueError as error:
        raise DeployError(f"the template {path} is not JSON: {error}") from error
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise DeployError(f"the template {path} is not a CloudFormation template (no Resources)")
    return template, json.dumps(template, separators=(",", ":"), ensure_ascii=False)


def read_parameters_file(path: Path) -> dict[str, str]:
    """CloudFormation's [{"ParameterKey": ..., "ParameterValue": ...}] or a plain
    {"Key": "value"} object. Numbers and booleans become their JSON text, lists are joined by commas."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DeployError(f"cannot read the parameters file {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise DeployError(f"the parameters file {path} is not JSON: {error}") from error
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list) and all(isinstance(p, dict) and "ParameterKey" in p for p in data):
        if any(p.get("UsePreviousValue") for p in data):
            raise DeployError(f"{path}: UsePreviousValue is not supported; give every value")
        pairs = [(p["ParameterKey"], p.get("ParameterValue", "")) for p in data]
    else:
        raise DeployError(
            f"the parameters file {path} must be an object of values or a list of "
            '{"ParameterKey": ..., "ParameterValue": ...}'
        )
    return {str(key): _text(path, str(key), value) for key, value in pairs}


def _text(path: Path, key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise DeployError(f"{path}: {key} must be a string, a number, a boolean or a list of strings")


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"{flag} {item!r}: expected Key=Value")
        pairs[key] = value
    return pairs


def prefix_lists_to_fill(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The S3 prefix-list parameters the deploy will look up: the feature is
    enabled and they are empty (given so, or by default)."""
    declared = template.get("Parameters", {})
    enabled = values.get(SWITCH, str(declared.get(SWITCH, {}).get("Default", "false"))) == "true"
    names = [n for n in declared if n.endswith("S3PrefixListId")]
    return [n for n in names if enabled and not values.get(n, str(declared[n].get("Default", "")))]


def check(template: Mapping[str, Any], values: Mapping[str, str]) -> None:
    """Raise DeployError with what CloudFormation would refuse
    (winworkers.constraints.check_inputs, with any prefix list to be looked up
    taken as found): the parameter constraints first, then the Rules."""
    problems = check_parameters(template, values)
    if problems:
        raise DeployError("; ".join(problems))
    # The constraints hold, so whatever check_inputs reports comes from the Rules.
    failures = check_inputs(template, values, filled=prefix_lists_to_fill(template, values))
    if failures:
        raise DeployError("the template's Rules refuse these values: " + "; ".join(failures))


def check_size(body: str, template_bucket: str | None) -> None:
    """CloudFormation takes a TemplateBody up to 51,200 bytes, a template from S3 up to 1 MB:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html"""
    size = len(body.encode())
    if size > S3_LIMIT:
        raise DeployError(f"the template is {size:,} bytes, over CloudFormation's {S3_LIMIT:,}-byte limit")
    if size > INLINE_LIMIT and not template_bucket:
        raise DeployError(
            f"the template is {size:,} bytes, over the {INLINE_LIMIT:,}-byte inline limit: "
            "pass --template-bucket BUCKET to deploy it from S3"
        )


def deploy(
    clients: Clients,
    stack_name: str,
    template_path: Path,
    parameters: Mapping[str, str],
    *,
    template_bucket: str | None = None,
    tags: Mapping[str, str] | None = None,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    poll_seconds: float = 5,
    echo: Echo = print,
) -> DeployResult:
    """Check, then create or update stack_name by change set, streaming its events."""
    template, body = load_template(template_path)
    values = dict(parameters)
    check(template, values)
    check_size(body, template_bucket)
    # AWS from here on.
    cfn = clients.cloudformation
    deadline = time.monotonic() + timeout_minutes * 60
    values = _fill_prefix_lists(template, values, clients, echo)
    stack = _describe(cfn, stack_name)
    if stack and stack["StackStatus"] in RECREATE:
        echo(
            f"stack {stack_name} is {stack['StackStatus']} (its creation failed; CloudFormation cannot update it): "
            "deleting it to create it again"
        )
        _delete(cfn, stack, timeout_minutes, deadline, poll_seconds, echo)
        stack = None
    if stack and stack["StackStatus"].endswith("_IN_PROGRESS") and stack["StackStatus"] != "REVIEW_IN_PROGRESS":
        raise DeployError(f"stack {stack_name} is {stack['StackStatus']}: wait for it to finish, then run again")
    updating = stack is not None and stack["StackStatus"] != "REVIEW_IN_PROGRESS"
    if updating and stack:
        _name_reverted_parameters(stack, template, values, echo)
    source = _template_source(body, stack_name, clients, template_bucket)
    change_set = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=f"winworkers-{uuid.uuid4().hex[:12]}",
        ChangeSetType="UPDATE" if updating else "CREATE",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())],
        Capabilities=CAPABILITIES,
        Tags=[{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
        **source,
    )
    change_set_id, stack_id = change_set["Id"], change_set["StackId"]
    events = EventStream(cfn, stack_id, echo)
    described = _wait(
        lambda: cfn.describe_change_set(ChangeSetName=change_set_id),
        lambda d: d["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"),
        deadline,
        poll_seconds,
        lambda d: f"change set for {stack_name} is still {d['Status']} after {timeout_minutes:g} minutes",
    )
    if described["Status"] == "FAILED":
        reason = " ".join(str(described.get("StatusReason", "")).split())
        if any(marker in reason for marker in NO_CHANGES):
            cfn.delete_change_set(ChangeSetName=change_set_id)
            status = stack["StackStatus"] if stack else ""
            echo(f"no changes: stack {stack_name} is already as asked ({status})")
            return DeployResult(stack_name, status, False, _resources(cfn, stack_id))
        raise DeployError(f"the change set for {stack_name} failed: {reason}")
    events.prime()
    cfn.execute_change_set(ChangeSetName=change_set_id)
    final = _wait_stack(cfn, stack_id, stack_name, events, deadline, timeout_minutes, poll_seconds)
    if final not in DONE:
        raise DeployError(f"stack {stack_name} ended {final}: {_failures(events)}")
    echo(f"stack {stack_name}: {final}")
    return DeployResult(stack_name, final, True, _resources(cfn, stack_id))


def delete(
    clients: Clients,
    stack_name: str,
    *,
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES,
    poll_seconds: float = 5,
    echo: Echo = print,
) -> bool:
    """Delete stack_name and wait, streaming its events. False when there was no such stack."""
    stack = _describe(clients.cloudformation, stack_name)
    if stack is None:
        echo(f"stack {stack_name} does not exist: nothing to delete")
        return False
    deadline = time.monotonic() + timeout_minutes * 60
    _delete(clients.cloudformation, stack, timeout_minutes, deadline, poll_seconds, echo)
    echo(f"stack {stack_name}: DELETE_COMPLETE")
    return True


class EventStream:
    """Prints each new stack event once, oldest first: time, logical id, status, reason.
    DescribeStackEvents lists them newest first, in pages:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html"""

    def __init__(self, cloudformation: Any, stack_id: str, echo: Echo) -> None:
        self.cloudformation = cloudformation
        self.stack_id = stack_id
        self.echo = echo
        self.seen: set[str] = set()
        self.printed: list[dict[str, Any]] = []

    def prime(self) -> None:
        """Take the events so far as seen: only what happens next is printed
        (the newest page is enough: every earlier event is older still)."""
        page = self.cloudformation.describe_stack_events(StackName=self.stack_id)
        self.seen.update(e["EventId"] for e in page["StackEvents"])

    def poll(self) -> None:
        for event in reversed(self._newest()):
            if event["EventId"] in self.seen:
                continue
            self.seen.add(event["EventId"])
            self.printed.append(event)
            stamp = event["Timestamp"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            reason = " ".join(str(event.get("ResourceStatusReason") or "").split())
            self.echo(f"{stamp}  {event['LogicalResourceId']:<32} {event['ResourceStatus']:<20} {reason}".rstrip())

    def _newest(self) -> list[dict[str, Any]]:
        """New events up to the first already seen (fetching more pages only while none is)."""
        events: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.cloudformation.describe_stack_events(
                StackName=self.stack_id, **({"NextToken": token} if token else {})
            )
            events.extend(page["StackEvents"])
            token = page.get("NextToken")
            if not token or any(e["EventId"] in self.seen for e in page["StackEvents"]):
                return events


def _fill_prefix_lists(
    template: Mapping[str, Any], values: dict[str, str], clients: Clients, echo: Echo
) -> dict[str, str]:
    missing = prefix_lists_to_fill(template, values)
    if not missing:
        return values
    name = f"com.amazonaws.{clients.region}.s3"
    found = clients.ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
    ids = [p["PrefixListId"] for p in found.get("PrefixLists", [])]
    if not ids:
        raise DeployError(f"no managed prefix list {name} in {clients.region}: pass {missing[0]}=pl-... yourself")
    echo(f"{', '.join(missing)}: {ids[0]} ({name})")
    filled = {**values, **dict.fromkeys(missing, ids[0])}
    problems = check_parameters(template, filled)
    if problems:
        raise DeployError("; ".join(problems))
    return filled


def _name_reverted_parameters(
    stack: Mapping[str, Any], template: Mapping[str, Any], values: Mapping[str, str], echo: Echo
) -> None:
    previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    for name, spec in template.get("Parameters", {}).items():
        if name in values or name not in previous or "Default" not in spec:
            continue
        default = str(spec["Default"])
        if previous[name] != default and previous[name] != "****":
            echo(f"{name}: not given, so back to its default {default!r} (was {previous[name]!r})")


def _template_source(body: str, stack_name: str, clients: Clients, bucket: str | None) -> dict[str, str]:
    if len(body.encode()) <= INLINE_LIMIT:
        return {"TemplateBody": body}
    assert bucket  # check_size refused it otherwise
    key = f"winworkers/{stack_name}-{uuid.uuid4().hex[:12]}.json"
    return {"TemplateURL": upload(clients, body, bucket, key)}


def upload(clients: Clients, body: str, bucket: str, key: str) -> str:
    """Put a template into ``bucket`` and return the https URL CloudFormation reads it from
    (a nested stack's TemplateURL, or a stack's over the inline limit)."""
    clients.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    suffix = "amazonaws.com.cn" if clients.region.startswith("cn-") else "amazonaws.com"
    # CloudFormation reads the object with the caller's own permissions.
    return f"https://{bucket}.s3.{clients.region}.{suffix}/{key}"


def _describe(cfn: Any, stack_name_or_id: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name_or_id)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _delete(
    cfn: Any, stack: Mapping[str, Any], timeout_minutes: float, deadline: float, poll: float, echo: Echo
) -> None:
    name, stack_id = stack["StackName"], stack["StackId"]
    events = EventStream(cfn, stack_id, echo)
    events.prime()
    cfn.delete_stack(StackName=stack_id)
    final = _wait_stack(cfn, stack_id, name, events, deadline, timeout_minutes, poll)
    if final != "DELETE_COMPLETE":
        raise DeployError(f"stack {name} ended {final}: {_failures(events)}")


def _wait_stack(
    cfn: Any, stack_id: str, name: str, events: EventStream, deadline: float, timeout_minutes: float, poll: float
) -> str:
    def status() -> str:
        events.poll()
        described = _describe(cfn, stack_id)
        return str(described["StackStatus"]) if described else "DELETE_COMPLETE"

    def late(state: str) -> str:
        return (
            f"stack {name} is still {state} after {timeout_minutes:g} minutes; "
            "it was not cancelled: CloudFormation carries on (see its events)"
        )

    final: str = _wait(status, lambda s: not s.endswith("_IN_PROGRESS"), deadline, poll, late)
    events.poll()
    return final


def _wait(
    fetch: Callable[[], Any], done: Callable[[Any], bool], deadline: float, poll: float, late: Callable[[Any], str]
) -> Any:
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise DeployError(late(value))
        time.sleep(poll)


def _resources(cfn: Any, stack_id: str) -> dict[str, int]:
    paginator = cfn.get_paginator("list_stack_resources")
    summaries = [s for page in paginator.paginate(StackName=stack_id) for s in page["StackResourceSummaries"]]
    return dict(Counter(str(r["ResourceStatus"]) for r in summaries))


def _failures(events: EventStream) -> str:
    """This run's first failure: its reason is the cause; the rest usually follow from it."""
    failed = [e for e in events.printed if str(e["ResourceStatus"]).endswith("_FAILED")]
    if not failed:
        return "see the stack's events"
    first = failed[0]
    reason = " ".join(str(first.get("ResourceStatusReason") or "").split())
    return f"{first['LogicalResourceId']} {first['ResourceStatus']}: {reason}"


# Command line ------------------------------------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """winworkers deploy and winworkers delete, on the CLI's subparsers."""
    parser = commands.add_parser(
        "deploy",
        help="check the parameters, then create or update a stack by change set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--template", type=Path, default=Path("templates/winworkers.json"), help="default: %(default)s")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="overrides the file")
    parser.add_argument(
        "--parameters-file", type=Path, metavar="FILE", help="JSON: CloudFormation's list, or an object"
    )
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--template-bucket", metavar="BUCKET", help="for a template over 51,200 bytes")
    _connection_arguments(parser)
    parser.set_defaults(run=run_deploy)

    put = commands.add_parser(
        "upload",
        help="put a template (a nested stack's child) into a bucket and print its https URL",
        description="Check that TEMPLATE is a JSON template, put it into BUCKET under KEY and print the "
        "https:// URL to pass as the nested stack's TemplateURL parameter (e.g. WinTemplateUrl).",
    )
    put.add_argument("template", type=Path)
    put.add_argument("--bucket", required=True)
    put.add_argument("--key", help="default: the template's file name")
    put.add_argument("--create-bucket", action="store_true", help="create BUCKET first if it does not exist")
    _connection_arguments(put)
    put.set_defaults(run=run_upload)

    remove = commands.add_parser("delete", help="delete a stack and wait, streaming its events")
    remove.add_argument("--stack-name", required=True)
    _connection_arguments(remove)
    remove.set_defaults(run=run_delete)


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's")
    parser.add_argument("--profile", help="a profile of the AWS config files")
    parser.add_argument("--endpoint-url", metavar="URL", help="an emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_MINUTES,
        metavar="MINUTES",
        help="stop waiting after this long (default %(default)g); the stack is not cancelled",
    )
    parser.add_argument("--poll-seconds", type=float, default=5, help=argparse.SUPPRESS)


def run_deploy(args: argparse.Namespace) -> int:
    def go() -> None:
        values = read_parameters_file(args.parameters_file) if args.parameters_file else {}
        values.update(parse_pairs(args.parameter, "--parameter"))
        template, body = load_template(args.template)
        check(template, values)  # before connecting: a bad value needs no credentials to be refused
        check_size(body, args.template_bucket)
        deploy(
            Clients.connect(args.region, args.profile, args.endpoint_url),
            args.stack_name,
            args.template,
            values,
            template_bucket=args.template_bucket,
            tags=parse_pairs(args.tag, "--tag"),
            timeout_minutes=args.timeout,
            poll_seconds=args.poll_seconds,
            echo=_echo,
        )

    return _one_line_errors("deploy", go)


def run_upload(args: argparse.Namespace) -> int:
    def go() -> None:
        _, body = load_template(args.template)
        clients = Clients.connect(args.region, args.profile, args.endpoint_url)
        if args.create_bucket:
            _create_bucket(clients, args.bucket)
        print(upload(clients, body, args.bucket, args.key or args.template.name))

    return _one_line_errors("upload", go)


def _create_bucket(clients: Clients, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        clients.s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    # us-east-1 takes no LocationConstraint (CreateBucket API reference).
    where = (
        {} if clients.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    )
    clients.s3.create_bucket(Bucket=bucket, **where)


def run_delete(args: argparse.Namespace) -> int:
    def go() -> None:
        clients = Clients.connect(args.region, args.profile, args.endpoint_url)
        delete(clients, args.stack_name, timeout_minutes=args.timeout, poll_seconds=args.poll_seconds, echo=_echo)

    return _one_line_errors("delete", go)


def _echo(line: str) -> None:
    print(line, flush=True)


def _one_line_errors(command: str, go: Callable[[], None]) -> int:
    """Every failure is one line on stderr and exit status 1, never a traceback."""
    try:
        go()
    except KeyboardInterrupt:
        print(f"winworkers {command}: interrupted (a stack operation already started goes on)", file=sys.stderr)
        return 130
    except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError, ...
        message = " ".join(str(error).split())
        known = isinstance(error, DeployError | OSError) or type(error).__module__.startswith("botocore")
        print(f"winworkers {command}: {message if known else f'{type(error).__name__}: {message}'}", file=sys.stderr)
        return 1
    return 0
