"""The feature's Lambda functions, configured one way: inline code from a module
embedded verbatim, arm64, Python 3.13, logs to a group the stack owns, failed
asynchronous events dead-lettered, and the checkov checks they skip, with why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from troposphere import GetAtt, Ref, Template
from troposphere.awslambda import Code, DeadLetterConfig, Environment, Function, LoggingConfig
from troposphere.iam import Role
from troposphere.logs import LogGroup
from troposphere.sqs import Queue

from winworkers.suppress import skip_checkov


def add_function(
    template: Template,
    logical_id: str,
    *,
    description: str,
    source: Path,
    role: Role,
    variables: dict[str, Any],
    logs: LogGroup,
    dead_letters: Queue,
    timeout: int,
    outside_the_vpc: str,
    unreserved: str,
) -> Function:
    """A function running source as index.handler. outside_the_vpc and unreserved
    are the reasons it is not in the VPC (checkov CKV_AWS_117) and reserves no
    concurrency (CKV_AWS_115): Lambda keeps a minimum of unreserved concurrency
    per account, so a reservation fails in new or low-quota accounts (Lambda
    guide, configuration-concurrency)."""
    function = template.add_resource(
        Function(
            logical_id,
            Description=description,
            Runtime="python3.13",
            Architectures=["arm64"],
            Handler="index.handler",
            Code=Code(ZipFile=source.read_text(encoding="utf-8")),
            Role=GetAtt(role, "Arn"),
            Timeout=timeout,
            MemorySize=256,
            Environment=Environment(Variables=variables),
            LoggingConfig=LoggingConfig(LogGroup=Ref(logs)),
            # EventBridge invokes asynchronously: after Lambda's retries, the event lands here.
            DeadLetterConfig=DeadLetterConfig(TargetArn=GetAtt(dead_letters, "Arn")),
        )
    )
    skip_checkov(function, "CKV_AWS_117", outside_the_vpc)
    skip_checkov(function, "CKV_AWS_173", "The environment holds only names, no secrets")
    skip_checkov(function, "CKV_AWS_115", unreserved)
    return function
