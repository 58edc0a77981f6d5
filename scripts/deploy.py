"""Validate and deploy a winworkers template by change set: against real AWS
(the usual credential chain) or an emulator (``--endpoint-url``).

    python scripts/deploy.py --stack-name platform-winworkers --template templates/winworkers.json \\
        --region eu-west-1 --parameter EnableWinTaskScriptService=true --parameter WinDataBucket=... [...]

Before it creates anything it evaluates the template's Rules with the given values
(CloudFormation would refuse them too, but only after a round trip). It fills
in the region's S3 prefix list when the template needs it and none was given,
creates a change set (CREATE or UPDATE), executes it and waits. Re-running with
the same inputs is a no-op. Exit status 0 only when the stack is complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from winworkers.parameters import SWITCH
from winworkers.rules import failed_assertions, parameter_values
from winworkers.templates import INLINE_LIMIT

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
FAILED_SUFFIXES = ("_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED")


class DeployError(RuntimeError):
    """The deploy did not reach a complete stack; the message says why."""


@dataclass
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    resources: dict[str, int] = field(default_factory=dict)
    """Resource count by status."""


def load(path: Path) -> tuple[dict[str, Any], str]:
    """The template as data, and as the minified body CloudFormation will get."""
    template = json.loads(path.read_text(encoding="utf-8"))
    return template, json.dumps(template, separators=(",", ":"), ensure_ascii=False)


def check_rules(template: dict[str, Any], parameters: dict[str, str]) -> None:
    failures = failed_assertions(template, parameters)
    if failures:
        raise DeployError("the template's Rules reject these parameters:\n  " + "\n  ".join(failures))


def fill_prefix_list(template: dict[str, Any], parameters: dict[str, str], ec2: Any, region: str) -> dict[str, str]:
    """Add the region's S3 prefix list id if the template wants one and none was given
    (the one lookup made before the Rules are checked)."""
    values = parameter_values(template, parameters)
    names = [n for n in template.get("Parameters", {}) if n.endswith("S3PrefixListId")]
    if values.get(SWITCH, "false") != "true" or not names:
        return parameters
    missing = [n for n in names if not values[n]]
    if not missing:
        return parameters
    name = f"com.amazonaws.{region}.s3"
    lists = ec2.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
    ids = [p["PrefixListId"] for p in lists.get("PrefixLists", [])]
    if not ids:
        raise DeployError(f"no managed prefix list {name} found; pass {missing[0]}=pl-... yourself")
    return {**parameters, **dict.fromkeys(missing, ids[0])}


def deploy(
    cfn: Any,
    ec2: Any,
    stack_name: str,
    template_path: Path,
    parameters: dict[str, str],
    *,
    region: str,
    s3: Any = None,
    template_bucket: str | None = None,
    tags: dict[str, str] | None = None,
    wait_seconds: float = 3600,
    poll_seconds: float = 5,
) -> DeployResult:
    """Check, then create or update ``stack_name`` by change set, and wait for it."""
    template, body = load(template_path)
    try:
        parameters = fill_prefix_list(template, parameters, ec2, region)
        check_rules(template, parameters)
    except ValueError as error:  # an unknown parameter name, or one without a value
        raise DeployError(str(error)) from error
    source = _template_source(body, stack_name, region, s3, template_bucket)
    cfn.validate_template(**source)
    exists = _stack_status(cfn, stack_name) not in (None, "REVIEW_IN_PROGRESS")
    change_set = f"winworkers-{int(time.time())}"
    cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=change_set,
        ChangeSetType="UPDATE" if exists else "CREATE",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
        Capabilities=CAPABILITIES,
        Tags=[{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())],
        **source,
    )
    deadline = time.monotonic() + wait_seconds
    described = _wait(
        lambda: cfn.describe_change_set(StackName=stack_name, ChangeSetName=change_set),
        lambda d: d["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"),
        deadline,
        poll_seconds,
    )
    if described["Status"] == "FAILED":
        reason = described.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set)
            return DeployResult(stack_name, _stack_status(cfn, stack_name) or "", False, _resources(cfn, stack_name))
        raise DeployError(f"change set {change_set} failed: {reason}")
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    final = _wait(
        lambda: _stack_status(cfn, stack_name) or "",
        lambda s: not s.endswith("_IN_PROGRESS"),
        deadline,
        poll_seconds,
    )
    if final not in DONE:
        raise DeployError(f"stack {stack_name} ended {final}:\n  " + "\n  ".join(_failures(cfn, stack_name)))
    return DeployResult(stack_name, final, True, _resources(cfn, stack_name))


def _template_source(body: str, stack_name: str, region: str, s3: Any, bucket: str | None) -> dict[str, str]:
    size = len(body.encode())
    if size <= INLINE_LIMIT:
        return {"TemplateBody": body}
    if not (s3 and bucket):
        raise DeployError(
            f"the template is {size} bytes, over the {INLINE_LIMIT}-byte inline limit: pass --template-bucket"
        )
    key = f"winworkers/{stack_name}-{int(time.time())}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    # CloudFormation reads an S3 object URL with the caller's own permissions.
    return {"TemplateURL": f"https://{bucket}.s3.{region}.amazonaws.com/{key}"}


def _wait(fetch: Any, done: Any, deadline: float, poll_seconds: float) -> Any:
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise DeployError(f"gave up waiting; last state {value!r}")
        time.sleep(poll_seconds)


def _stack_status(cfn: Any, stack_name: str) -> str | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _resources(cfn: Any, stack_name: str) -> dict[str, int]:
    summaries = cfn.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    return dict(Counter(r["ResourceStatus"] for r in summaries))


def _failures(cfn: Any, stack_name: str) -> list[str]:
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    return [
        f"{e['LogicalResourceId']}: {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith(FAILED_SUFFIXES)
    ]


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} {item!r}: expected Key=Value")
        pairs[key] = value
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--template", type=Path, default=Path("templates/winworkers.json"))
    parser.add_argument("--region", required=True)
    parser.add_argument("--endpoint-url", help="an emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--template-bucket", help="for templates over the inline limit")
    parser.add_argument("--wait-seconds", type=float, default=3600)
    args = parser.parse_args(argv)
    session = boto3.session.Session(region_name=args.region)

    def client(name: str) -> Any:
        return session.client(name, endpoint_url=args.endpoint_url)

    try:
        result = deploy(
            client("cloudformation"),
            client("ec2"),
            args.stack_name,
            args.template,
            _pairs(args.parameter, "--parameter"),
            region=args.region,
            s3=client("s3"),
            template_bucket=args.template_bucket,
            tags=_pairs(args.tag, "--tag"),
            wait_seconds=args.wait_seconds,
        )
    except (DeployError, ClientError, BotoCoreError) as error:  # no credentials, endpoint down, ...
        print(f"deploy failed: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result.__dict__, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
