"""The feature's Lambda functions, configured one way: inline code from a module
embedded as it is (but for a definition it shares, inlined), arm64, Python 3.13, logs to a group the stack owns, failed
asynchronous events dead-lettered (unless the caller says why not), and the checkov checks they skip, with why."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from troposphere import GetAtt, Ref, Template
from troposphere.awslambda import Code, DeadLetterConfig, Environment, Function, LoggingConfig, Permission
from troposphere.events import Rule, Target
from troposphere.iam import Role
from troposphere.logs import LogGroup
from troposphere.sqs import Queue

from winworkers.suppress import skip_checkov

# A Lambda's inline ZipFile is one file, so it cannot import a sibling: a line of this form in its
# module (which imports it when the module runs as a module, in tests) becomes the named
# definition's source, read from the sibling module, at build time. One text serves both.
INLINED = re.compile(r"^from winworkers\.(\w+) import (\w+)  # noqa: E402  # inlined at build$", re.MULTILINE)
NO_SECRETS = "The environment holds only names, no secrets"


def lambda_source(source: Path) -> str:
    """source's text as its Lambda runs it, each INLINED line replaced by that definition."""
    return INLINED.sub(lambda line: _definition(source.with_name(f"{line[1]}.py"), line[2]), source.read_text("utf-8"))


@functools.lru_cache(maxsize=16)
def _spans(text: str) -> MappingProxyType[str, tuple[int, int]]:
    """The first and last line of each top-level function and class of Python source text (the first
    of a name), parsed once per text: each template build reads the same few function sources again."""
    spans: dict[str, tuple[int, int]] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            spans.setdefault(node.name, (node.lineno, node.end_lineno or node.lineno))
    return MappingProxyType(spans)


def _definition(module: Path, name: str) -> str:
    text = module.read_text(encoding="utf-8")
    spans = _spans(text)
    if name not in spans:
        raise KeyError(f"{module.name} defines no {name}")
    first, last = spans[name]
    return "\n".join(text.splitlines()[first - 1 : last])


def add_function(
    template: Template,
    logical_id: str,
    *,
    description: str,
    source: Path,
    role: Role,
    variables: dict[str, Any],
    logs: LogGroup,
    dead_letters: Queue | None,
    timeout: int,
    outside_the_vpc: str,
    unreserved: str,
    environment: str = NO_SECRETS,
) -> Function:
    """A function running source as index.handler. outside_the_vpc and unreserved
    are the reasons it is not in the VPC (checkov CKV_AWS_117) and reserves no
    concurrency (CKV_AWS_115), environment why its variables are no secrets
    (CKV_AWS_173): Lambda keeps a minimum of unreserved concurrency
    per account, so a reservation fails in new or low-quota accounts (Lambda
    guide, configuration-concurrency)."""
    function = template.add_resource(
        Function(
            logical_id,
            Description=description,
            Runtime="python3.13",
            Architectures=["arm64"],
            Handler="index.handler",
            Code=Code(ZipFile=lambda_source(source)),
            Role=GetAtt(role, "Arn"),
            Timeout=timeout,
            MemorySize=256,
            Environment=Environment(Variables=variables),
            LoggingConfig=LoggingConfig(LogGroup=Ref(logs)),
            # EventBridge and SNS invoke asynchronously: after Lambda's retries, the event lands here
            # (None: none; the caller discards failed events, and says why).
            **(
                {}
                if dead_letters is None
                else {"DeadLetterConfig": DeadLetterConfig(TargetArn=GetAtt(dead_letters, "Arn"))}
            ),
        )
    )
    skip_checkov(function, "CKV_AWS_117", outside_the_vpc)
    skip_checkov(function, "CKV_AWS_173", environment)
    skip_checkov(function, "CKV_AWS_115", unreserved)
    return function


def add_rule_invoke(
    template: Template, logical_id: str, function: Function, rule: Rule, condition: str | None = None
) -> Permission:
    """EventBridge may invoke function for rule's events (the function's resource-based policy)."""
    permission = Permission(
        logical_id,
        Action="lambda:InvokeFunction",
        FunctionName=Ref(function),
        Principal="events.amazonaws.com",
        SourceArn=GetAtt(rule, "Arn"),
    )
    if condition:
        permission.Condition = condition
    return template.add_resource(permission)


def add_autoscaling_rule(
    template: Template,
    logical_id: str,
    *,
    description: str,
    event: str,
    detail: dict[str, Any],
    function: Function,
    target: str,
    condition: str | None = None,
) -> Rule:
    """An EventBridge rule sending Auto Scaling's events of type event, matching detail, to function."""
    rule = Rule(
        logical_id,
        Description=description,
        EventPattern={"source": ["aws.autoscaling"], "detail-type": [event], "detail": detail},
        Targets=[Target(Id=target, Arn=GetAtt(function, "Arn"))],
    )
    if condition:
        rule.Condition = condition
    return template.add_resource(rule)
