"""Preflight: what the stack will point at, looked up before a change set exists.

The template's constraints check what a value looks like; these checks look at
what it names, in the account and Region the stack is deployed to, with the
deployer's own credentials (register rows 185 to 190):

- the work queue (WorkQueueArn): in the stack's Region (from the ARN), and there
  (GetQueueUrl with the ARN's account as QueueOwnerAWSAccountId);
- the buckets (DataBucket, ArtifactBucket): there (HeadBucket), and in the
  stack's Region (HeadBucket's BucketRegion, else GetBucketLocation);
- the worker artifact (ArtifactKey in ArtifactBucket): there (HeadObject);
- the KMS keys (KmsKeyArn and the platform's keys): in the stack's Region (from
  the ARN), and there and enabled (DescribeKey).

Each check is of the values the stack will hold (given, kept from the stack on
an update, or defaults), and only while the feature is on (its PlatformInputs
Rule's condition). An input that cannot work is refused, in one line naming the
parameter and what was found; nothing is created. Where the deployer may not
look (access denied, another account's queue or key, a missing object that S3
answers with 403), one line says so and the deploy goes on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from winworkers.deploy.base import Clients, DeployError, Echo

QUEUE = "WorkQueueArn"
BUCKETS = ("DataBucket", "ArtifactBucket")
ARTIFACT = "ArtifactKey"
KEYS = ("KmsKeyArn", "QueueKmsKeyArn", "DataKmsKeyArn", "ArtifactKmsKeyArn")
RULE = "PlatformInputs"
"""The Rule a feature's platform inputs are required by: its name is the feature's prefix and this."""

_ARN = re.compile(r"arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)")
# HTTP status and error codes: S3's HEAD answers carry no body, so the code is the status.
_MISSING = {"404", "NoSuchBucket", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "AccessDeniedException", "Forbidden", "AuthorizationError"}
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@dataclass(frozen=True)
class Finding:
    """What one check found: refused (the input cannot work) or not looked at (the deployer may not look)."""

    parameter: str
    text: str
    refused: bool = True

    def line(self) -> str:
        return f"{self.parameter} {self.text}"


def run(
    clients: Clients, template: Mapping[str, Any], values: Mapping[str, str], echo: Echo, *, skip: bool = False
) -> None:
    """Look up what the stack will point at; raise DeployError (one line) if any of it cannot work.
    Each input the deployer may not look at is one line on echo, and the deploy goes on.
    skip (--skip-preflight): one line says nothing was looked up."""
    if skip:
        echo("preflight skipped (--skip-preflight): the queue, buckets, artifact and keys were not looked up")
        return
    findings = preflight(clients, template, values)
    for finding in findings:
        if not finding.refused:
            echo(f"preflight: {finding.line()}: going on")
    refused = [f.line() for f in findings if f.refused]
    if refused:
        raise DeployError(
            f"preflight refused: {'; '.join(refused)} (nothing was changed; --skip-preflight to deploy anyway)"
        )
    found = [name for name in targets(template, values) if name not in {f.parameter for f in findings}]
    if found:
        echo(f"preflight: {', '.join(found)}: there, in {clients.region}")


def preflight(clients: Clients, template: Mapping[str, Any], values: Mapping[str, str]) -> list[Finding]:
    """Every finding for the resolved values (those CloudFormation will use: given, kept or default)."""
    looked = targets(template, values)
    found: dict[str, Finding] = {}
    for parameter, value in looked.items():  # ArtifactKey after ArtifactBucket (targets' order)
        bucket = found.get(parameter.removesuffix(ARTIFACT) + "ArtifactBucket")
        if parameter.endswith(ARTIFACT) and bucket is not None and bucket.refused:
            continue  # the bucket's refusal says it all
        finding = _finding(clients, parameter, value, looked)
        if finding is not None:
            found[parameter] = finding
    return list(found.values())


def targets(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
    """The parameters preflight looks at, with their values: the platform inputs (and keys) that are
    parameters of each feature of the template (a Rule <prefix>PlatformInputs) that is on, and not empty.
    A feature's inputs its parent wires to its own resources are no parameters: not looked at."""
    declared = template.get("Parameters", {})
    current = {n: values.get(n, str(spec.get("Default", ""))) for n, spec in declared.items()}
    found: dict[str, str] = {}
    for rule_name, rule in template.get("Rules", {}).items():
        if not rule_name.endswith(RULE) or not _holds(template, rule, current):
            continue
        prefix = rule_name.removesuffix(RULE)
        for name in (QUEUE, *BUCKETS, ARTIFACT, *KEYS):
            if f"{prefix}{name}" in declared and current[f"{prefix}{name}"]:
                found[f"{prefix}{name}"] = current[f"{prefix}{name}"]
    return found


def _holds(template: Mapping[str, Any], rule: Mapping[str, Any], current: Mapping[str, str]) -> bool:
    from winworkers.rules import _eval, parameter_values

    if "RuleCondition" not in rule:
        return True
    try:
        return bool(_eval(rule["RuleCondition"], parameter_values(template, current)))
    except (KeyError, ValueError):  # a condition this evaluator cannot judge: look
        return True


def _finding(clients: Clients, parameter: str, value: str, looked: Mapping[str, str]) -> Finding | None:
    """The check of one parameter, by what it names (its unprefixed name's ending)."""
    if parameter.endswith(QUEUE):
        return queue_finding(clients, parameter, value)
    if parameter.endswith(BUCKETS):
        return bucket_finding(clients, parameter, value)
    if parameter.endswith(ARTIFACT):
        bucket = looked.get(parameter.removesuffix(ARTIFACT) + "ArtifactBucket", "")
        return artifact_finding(clients, parameter, bucket, value)
    return key_finding(clients, parameter, value)


def _arn(value: str) -> dict[str, str]:
    match = _ARN.fullmatch(value)
    return match.groupdict() if match else {}


def _code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _other_region(parameter: str, what: str, region: str, stack_region: str) -> Finding | None:
    if region and region != stack_region:
        return Finding(parameter, f"names {what} in {region}, not in the stack's Region {stack_region}")
    return None


def _caller_account(clients: Clients) -> str:
    """The deployer's account (STS GetCallerIdentity), or "" when it cannot be asked."""
    from botocore.exceptions import BotoCoreError, ClientError

    if clients.client is None:
        return ""
    try:
        return str(clients.client("sts").get_caller_identity()["Account"])
    except (ClientError, BotoCoreError):
        return ""


def queue_finding(clients: Clients, parameter: str, arn: str) -> Finding | None:
    """The queue is in the stack's Region (the ARN's), and GetQueueUrl finds it in the ARN's account.
    SQS answers NonExistentQueue also for another account's queue it may not see (row 187): that
    is a refusal only in the deployer's own account."""
    from botocore.exceptions import ClientError

    parts = _arn(arn)
    wrong = _other_region(parameter, f"the queue {parts.get('resource')}", parts.get("region", ""), clients.region)
    if wrong or clients.client is None:
        return wrong or Finding(parameter, f"{arn}: not looked at (no SQS client)", refused=False)
    name, account = parts["resource"], parts["account"]
    try:
        clients.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    except ClientError as error:
        code = _code(error)
        if code in _NO_QUEUE and account == _caller_account(clients):
            return Finding(parameter, f"names the queue {name}, which does not exist in {account} in {clients.region}")
        if code in _NO_QUEUE or code in _DENIED:
            return Finding(parameter, f"{arn}: could not look ({code}: another account's, or no permission)", False)
        raise
    return None


def bucket_finding(clients: Clients, parameter: str, bucket: str) -> Finding | None:
    """HeadBucket: 404 is no such bucket. Its answer, even a 403, carries the bucket's Region
    (x-amz-bucket-region; row 185); without it, GetBucketLocation's (null is us-east-1, EU is eu-west-1)."""
    from botocore.exceptions import ClientError

    try:
        answer = clients.s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        code = _code(error)
        if code in _MISSING:
            return Finding(parameter, f"names the bucket {bucket}, which does not exist")
        region = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region", "")
        wrong = _other_region(parameter, f"the bucket {bucket}", region, clients.region)
        if wrong or code in _DENIED:
            return wrong or Finding(
                parameter, f"{bucket}: could not look ({code}: another account's, or no s3:ListBucket)", False
            )
        raise
    region = answer.get("BucketRegion") or _bucket_location(clients, bucket)
    return _other_region(parameter, f"the bucket {bucket}", region, clients.region)


def _bucket_location(clients: Clients, bucket: str) -> str:
    from botocore.exceptions import ClientError

    try:
        constraint = clients.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    except ClientError:
        return ""  # not allowed to ask: the Region stays unknown, not wrong
    return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(constraint, str(constraint))


def artifact_finding(clients: Clients, parameter: str, bucket: str, key: str) -> Finding | None:
    """HeadObject: 404 is no such object. Without s3:ListBucket S3 answers a missing object with
    403 too (row 186), so a 403 is "could not look", never "missing"."""
    from botocore.exceptions import ClientError

    if not bucket:
        return None
    try:
        clients.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = _code(error)
        if code in _MISSING:
            return Finding(parameter, f"names s3://{bucket}/{key}, which does not exist")
        if code in _DENIED:
            return Finding(
                parameter, f"s3://{bucket}/{key}: could not look ({code}: no s3:ListBucket, or not ours)", False
            )
        raise
    return None


# The key states whose key is used in cryptographic operations (row 190): Enabled, and Updating (a multi-Region
# key for a few seconds after UpdatePrimaryRegion: "you can use the keys in cryptographic operations",
# https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-update.html). Every other state fails them
# (https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html): Disabled, PendingDeletion,
# PendingImport, Unavailable, Creating (a new replica, "you cannot yet use it in cryptographic operations",
# https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-replicate.html), PendingReplicaDeletion.
KEY_USABLE = ("Enabled", "Updating")


def key_finding(clients: Clients, parameter: str, arn: str) -> Finding | None:
    """A KMS key is in its ARN's Region, which must be the stack's (row 189); DescribeKey, where the key
    policy lets the deployer, finds it and its state: only an Enabled (or Updating) key encrypts (row 190)."""
    from botocore.exceptions import ClientError

    parts = _arn(arn)
    wrong = _other_region(parameter, "a KMS key", parts.get("region", ""), clients.region)
    if wrong or clients.client is None:
        return wrong or Finding(parameter, f"{arn}: not looked at (no KMS client)", refused=False)
    try:
        state = clients.client("kms").describe_key(KeyId=arn)["KeyMetadata"]["KeyState"]
    except ClientError as error:
        code = _code(error)
        if code == "NotFoundException" and parts["account"] == _caller_account(clients):
            return Finding(parameter, f"names a KMS key that does not exist in {parts['account']} in {clients.region}")
        if code in ("NotFoundException", *_DENIED):
            return Finding(
                parameter, f"{arn}: could not look ({code}: another account's key, or no kms:DescribeKey)", False
            )
        raise
    if state not in KEY_USABLE:
        return Finding(parameter, f"names a KMS key that is {state}: only an Enabled key encrypts")
    return None
