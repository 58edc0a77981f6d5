"""What a template's resources make of a parameter's value, beyond its constraints.

A parameter's constraints are what CloudFormation checks when it receives the
value. The service behind a property may be stricter, and then the value fails
late, during the stack operation:

- A ``Number`` parameter takes ``3.5``, ``1e1`` and ``+4``, but Auto Scaling's
  MinSize, MaxSize and DesiredCapacity, a lifecycle hook's HeartbeatTimeout, an
  EBS VolumeSize and a log group's RetentionInDays are integers (their API
  references say ``Type: Integer``). A value that reaches one of those must be
  a plain whole number.
- EventBridge refuses ``rate(1 minutes)`` (a value of 1 takes the singular
  unit, more takes the plural) and any cron expression that does not have its
  six fields, with ``?`` in exactly one of day-of-month and day-of-week:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html

The kinds are derived from the template: a parameter is a whole number or a
schedule because a property of that kind Refs it (directly, or in a branch of
Fn::If), not because of its name. winworkers.constraints.check_inputs
reports these problems after the constraints, and winworkers deploy refuses them
before any AWS call.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

WHOLE_NUMBER = "whole number"
SCHEDULE = "schedule"

# (resource type, property path): "*" is any item of a list.
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutLifecycleHook.html
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
PROPERTY_KINDS: dict[tuple[str, str], str] = {
    **{
        ("AWS::AutoScaling::AutoScalingGroup", name): WHOLE_NUMBER
        for name in (
            "MinSize",
            "MaxSize",
            "DesiredCapacity",
            "DefaultInstanceWarmup",
            "HealthCheckGracePeriod",
            "LifecycleHookSpecificationList/*/HeartbeatTimeout",
        )
    },
    ("AWS::AutoScaling::LifecycleHook", "HeartbeatTimeout"): WHOLE_NUMBER,
    ("AWS::EC2::LaunchTemplate", "LaunchTemplateData/BlockDeviceMappings/*/Ebs/VolumeSize"): WHOLE_NUMBER,
    ("AWS::Logs::LogGroup", "RetentionInDays"): WHOLE_NUMBER,
    ("AWS::Events::Rule", "ScheduleExpression"): SCHEDULE,
}

_WHOLE = re.compile(r"0|[1-9][0-9]*")
_RATE = re.compile(r"rate\((?P<value>[0-9]+) (?P<unit>minute|minutes|hour|hours|day|days)\)")
_CRON_FIELDS = (
    ("minutes", r"[0-9,*/-]+"),
    ("hours", r"[0-9,*/-]+"),
    ("day-of-month", r"[0-9,*/?LW-]+"),
    ("month", r"[0-9A-Za-z,*/-]+"),
    ("day-of-week", r"[0-9A-Za-z,*/?L#-]+"),
    ("year", r"[0-9,*/-]+"),
)


def parameter_kinds(
    template: Mapping[str, Any], children: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, str]:
    """Parameter name to the kind of value the template's resources need from it.

    A nested stack passes the parent's parameters to its child: their kinds are the child's,
    read from ``children`` (the child template of each nested stack, by logical id, as the
    caller has it: winworkers deploy builds a winworkers child from the config in its Metadata,
    build.built_children, as constraints.check_inputs does). A nested stack whose child is not given
    adds no kind.
    """
    declared = template.get("Parameters", {})
    kinds: dict[str, str] = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if not isinstance(resource, Mapping):
            continue
        child = (children or {}).get(logical_id)
        if child is not None and resource.get("Type") == "AWS::CloudFormation::Stack":
            child_kinds = parameter_kinds(child)
            for child_name, value in resource.get("Properties", {}).get("Parameters", {}).items():
                for name in _refs(value):
                    if name in declared and child_name in child_kinds:
                        kinds[name] = child_kinds[child_name]
        kind_of = {path: kind for (rtype, path), kind in PROPERTY_KINDS.items() if rtype == resource.get("Type")}
        for path, kind in kind_of.items():
            for value in _at(resource.get("Properties", {}), path.split("/")):
                for name in _refs(value):
                    if name in declared:
                        kinds[name] = kind
    return kinds


def usage_problems(
    template: Mapping[str, Any], values: Mapping[str, str], kinds: Mapping[str, str] | None = None
) -> list[str]:
    """One line per given value that the resources using it would refuse. kinds: parameter_kinds(template),
    when the caller has it already (else derived here, without nested children)."""
    problems = []
    for name, kind in sorted((parameter_kinds(template) if kinds is None else kinds).items()):
        value = values.get(name)
        if value is None or value == "":  # unset: the constraints and the Rules decide whether it may be
            continue
        problem = _whole_number(value) if kind == WHOLE_NUMBER else schedule_problem(value)
        if problem:
            problems.append(f"{name}={value!r} {problem}")
    return problems


def _whole_number(value: str) -> str | None:
    if _WHOLE.fullmatch(value):
        return None
    return "is not allowed: a whole number such as 4 (no sign, decimals or exponent: the property is an integer)"


def schedule_problem(expression: str) -> str | None:
    """Why EventBridge would refuse a schedule expression, or None."""
    rate = _RATE.fullmatch(expression)
    if rate:
        value, unit = int(rate["value"]), rate["unit"]
        if value == 0:
            return "is not allowed: a rate's value is a positive whole number"
        if (value == 1) != (not unit.endswith("s")):
            right = unit.rstrip("s") if value == 1 else unit + ("" if unit.endswith("s") else "s")
            return f"is not allowed: rate({value} {right}) (1 takes a singular unit, more a plural one)"
        return None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != len(_CRON_FIELDS):
            return (
                f"is not allowed: cron takes 6 fields (minutes hours day-of-month month day-of-week year), "
                f"not {len(fields)}, e.g. cron(0 3 ? * SUN *)"
            )
        for text, (field, pattern) in zip(fields, _CRON_FIELDS, strict=True):
            if not re.fullmatch(pattern, text):
                return f"is not allowed: cron's {field} field {text!r}"
        if (fields[2] == "?") == (fields[4] == "?"):
            return "is not allowed: cron needs ? in exactly one of day-of-month and day-of-week"
        return None
    return "is not allowed: rate(value unit) or cron(6 fields), e.g. rate(7 days)"


def _at(node: Any, path: list[str]) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            yield from _at(item, rest)
    elif isinstance(node, Mapping) and head in node:
        yield from _at(node[head], rest)


def _refs(value: Any) -> Iterator[str]:
    """The parameter names a property value takes directly: a Ref, or a Ref in a branch of Fn::If."""
    if isinstance(value, Mapping) and len(value) == 1:
        ((function, args),) = value.items()
        if function == "Ref" and isinstance(args, str):
            yield args
        elif function == "Fn::If" and isinstance(args, list) and len(args) == 3:
            yield from _refs(args[1])
            yield from _refs(args[2])
