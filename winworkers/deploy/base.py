"""What every step of a deploy shares: the error, the result, the clients."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

INSTALL = "pip install 'winworkers[deploy]'"

Echo = Callable[[str], None]
"""Where a deploy writes its progress, one line per call."""


class DeployError(RuntimeError):
    """The stack did not reach the state asked for; the message (one line) says why and what to run next."""


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    status: str
    changed: bool
    resources: dict[str, int] = field(default_factory=dict)
    """Resource count by status."""
    change_set_id: str = ""
    """The change set created (left unexecuted by a dry run); empty when there was nothing to change."""


@dataclass(frozen=True)
class Clients:
    """The boto3 clients a deploy uses, and their region. Without ``autoscaling``,
    instance refreshes are neither checked nor shown. ``client`` makes any other client of
    the same session, Region and endpoint (preflight's SQS, KMS and STS); without it,
    the queue and the KMS keys are not looked up (preflight says so)."""

    cloudformation: Any
    ec2: Any
    s3: Any
    region: str
    autoscaling: Any = None
    client: Callable[[str], Any] | None = None

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

        return cls(client("cloudformation"), client("ec2"), client("s3"), chosen, client("autoscaling"), client)


def describe_stack(cfn: Any, stack_name_or_id: str) -> dict[str, Any] | None:
    """The stack, or None if there is none by that name (or id)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name_or_id)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def counted(count: int, noun: str, plural: str = "") -> str:
    """A count in English: 1 resource, 2 resources (plural: for a noun that does not take an s)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
