"""Build-time checks of how a parent embeds the feature.

Each mistake here is one CloudFormation would report late (deep in a nested
stack's events) or never (a fleet that cannot read its queue), so add_to and
nested_stack refuse it with a ValueError that names the input and the fix.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any, TypeAlias

from troposphere import AWSHelperFn, Condition, Parameter, Template, encode_to_dict

from winworkers.config import WorkersConfig
from winworkers.parameters import PLATFORM_INPUTS, PLATFORM_KEYS, SWITCH, Switch, parameter_specs

# Parameter types whose Ref can equal the string "true".
_STRING_TYPES = ("String", "AWS::SSM::Parameter::Value<String>")

# What Ref and Fn::GetAtt of a platform resource give, per the "Return values"
# of AWS::SQS::Queue, AWS::S3::Bucket and AWS::KMS::Key in the CloudFormation template reference.
# Ref of a queue is its URL, not its ARN; GetAtt Arn of a bucket is an ARN, not its name;
# Ref of a KMS key is its key ID, not its ARN.
_GIVES: dict[str, dict[str, str]] = {
    "AWS::SQS::Queue": {"Ref": "its URL", "Arn": "its ARN", "QueueUrl": "its URL", "QueueName": "its name"},
    "AWS::S3::Bucket": {
        "Ref": "its name",
        "Arn": "its ARN",
        "DomainName": "a domain name",
        "DualStackDomainName": "a domain name",
        "RegionalDomainName": "a domain name",
        "WebsiteURL": "a URL",
    },
    "AWS::KMS::Key": {"Ref": "its key ID", "Arn": "its ARN", "KeyId": "its key ID"},
}
# Which of those each input needs, and how to write it.
_NEEDS: dict[str, tuple[str, str, str]] = {
    "WorkQueueArn": ("AWS::SQS::Queue", "Arn", 'GetAtt(queue, "Arn")'),
    "DataBucket": ("AWS::S3::Bucket", "Ref", "Ref(bucket)"),
    "ArtifactBucket": ("AWS::S3::Bucket", "Ref", "Ref(bucket)"),
    # A key policy and an IAM Resource name a key by its ARN (AWS::KMS::Key return values).
    **{name: ("AWS::KMS::Key", "Arn", 'GetAtt(key, "Arn")') for name in PLATFORM_KEYS},
}


SwitchArg: TypeAlias = str | Parameter | Condition
"""What add_to and nested_stack take as switch=: a parameter's or a condition's name, or its handle."""

# Enumerating a condition switch's parameter values stops here (then it is taken as satisfiable).
_MAX_ASSIGNMENTS = 4096


def resolve_switch(template: Template, switch: SwitchArg = SWITCH) -> Switch:
    """The parent's switch, checked: a parameter or a condition of template that can be on.

    A name must be one of the parent's parameters or conditions (not both); only the
    default name may be missing (the feature then declares it, as before). A Parameter
    handle not in the parent is added with the feature. A condition must be built from
    parameters with Fn::Equals/And/Or/Not and Condition, which the feature's Rules can
    repeat (Rule functions cannot read conditions).
    """
    if isinstance(switch, Parameter):
        declared = template.parameters.get(switch.title)
        if declared is not None and declared is not switch and encode_to_dict(declared) != encode_to_dict(switch):
            raise ValueError(
                f"switch: the parent already has a different parameter {switch.title!r}: pass that one, or its name"
            )
        _check_parameter(switch.title, switch)
        return Switch(switch.title)
    if isinstance(switch, Condition):
        name = switch.data["Condition"]
        if not isinstance(name, str) or name not in template.conditions:
            raise ValueError(f"switch: the parent has no condition {name!r}: add it to the template first")
        return _condition_switch(template, name)
    if not isinstance(switch, str) or not switch:
        raise ValueError(
            f"switch={switch!r} is not allowed: a parameter or condition name, or a Parameter or Condition"
        )
    in_parameters, in_conditions = switch in template.parameters, switch in template.conditions
    if in_parameters and in_conditions:
        raise ValueError(
            f"switch={switch!r} names both a parameter and a condition of the parent: pass Parameter or Condition"
        )
    if in_conditions:
        return _condition_switch(template, switch)
    if in_parameters:
        _check_parameter(switch, template.parameters[switch])
    elif switch != SWITCH:
        raise ValueError(
            f"switch={switch!r}: the parent has no parameter or condition of that name; declare it first "
            '(a String parameter with AllowedValues ["true", "false"], or a condition), or pass a Parameter'
        )
    return Switch(switch)


def check_switch(template: Template, name: str = SWITCH) -> None:
    """A parent's switch parameter must be able to equal "true": the feature's condition tests exactly that."""
    if name in template.parameters:
        _check_parameter(name, template.parameters[name])


def _check_parameter(name: str, parameter: Parameter) -> None:
    problems = _rejects(encode_to_dict(parameter), "true")
    if problems:
        raise ValueError(
            f'the parent\'s {name} parameter can never be "true" ({"; ".join(problems)}), and the feature exists '
            f'only when it equals "true": declare it Type String with AllowedValues ["true", "false"]'
        )


def _rejects(declared: Mapping[str, Any], value: str) -> list[str]:
    """Why a parameter declared so can never hold value (empty: it can)."""
    problems = []
    if declared.get("Type") not in _STRING_TYPES:
        problems.append(f"its Type is {declared.get('Type')}")
    allowed = declared.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        problems.append(f"its AllowedValues are {allowed}")
    pattern = declared.get("AllowedPattern")
    if isinstance(pattern, str) and not re.fullmatch(pattern, value):
        problems.append(f"its AllowedPattern {pattern!r} rejects it")
    if int(declared.get("MaxLength", len(value))) < len(value) or int(declared.get("MinLength", 0)) > len(value):
        problems.append("its MinLength/MaxLength reject it")
    return problems


def _condition_switch(template: Template, name: str) -> Switch:
    rule = _as_rule(template, name, encode_to_dict(template.conditions[name]), (name,))
    if not _can_be_true(template, rule):
        raise ValueError(
            f"switch: the parent's condition {name} can never be true for any value its parameters allow, "
            "and the feature exists only when it is"
        )
    return Switch(name, is_condition=True, rule=rule)


def _as_rule(template: Template, switch: str, node: Any, seen: tuple[str, ...]) -> Any:
    """A condition expression rewritten with parameters only: Condition references inlined."""
    if isinstance(node, str | int | float) and not isinstance(node, bool):
        return str(node)
    if isinstance(node, Mapping) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref" and isinstance(value, str) and value in template.parameters:
            return {"Ref": value}
        if key == "Condition" and isinstance(value, str) and value in template.conditions and value not in seen:
            return _as_rule(template, switch, encode_to_dict(template.conditions[value]), (*seen, value))
        if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not") and isinstance(value, list):
            return {key: [_as_rule(template, switch, item, seen) for item in value]}
    raise ValueError(
        f"switch: the parent's condition {switch} uses {json.dumps(node)[:80]}, which the feature's Rules cannot "
        "repeat (they read parameters only): build it from parameters with Fn::Equals, Fn::And, Fn::Or, Fn::Not "
        "and Condition, or pass a parameter as the switch"
    )


def _can_be_true(template: Template, rule: Any) -> bool:
    """Whether some values the parameters allow make rule true.

    Each parameter takes its AllowedValues, or else the literals it is compared with
    (those its constraints allow) and two other values (one it may share with another
    parameter, one its own). Beyond _MAX_ASSIGNMENTS combinations it says True: only a
    switch shown never to be on is refused.
    """
    names = sorted(_refs(rule))
    literals = _literals(rule)
    candidates: list[list[str]] = []
    for name in names:
        declared = encode_to_dict(template.parameters[name])
        if declared.get("AllowedValues") is not None:
            values = [str(v) for v in declared["AllowedValues"]]
        else:
            values = [v for v in literals if not _rejects({**declared, "Type": "String"}, v)]
            values += ["\x00other", f"\x00other-{name}"]
        candidates.append(values)
    total = 1
    for values in candidates:
        total *= len(values)
    if total > _MAX_ASSIGNMENTS:
        return True
    return any(_evaluate(rule, dict(zip(names, chosen, strict=True))) for chosen in itertools.product(*candidates))


def _refs(node: Any) -> set[str]:
    if isinstance(node, Mapping):
        if "Ref" in node:
            return {node["Ref"]}
        return set().union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _literals(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, Mapping) and "Ref" not in node:
        return [x for v in node.values() for x in _literals(v)]
    if isinstance(node, list):
        return [x for v in node for x in _literals(v)]
    return []


def _evaluate(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return node
    ((key, value),) = node.items()
    if key == "Ref":
        return values[value]
    args = [_evaluate(item, values) for item in value]
    if key == "Fn::Equals":
        return args[0] == args[1]
    if key == "Fn::Not":
        return not args[0]
    if key == "Fn::And":
        return all(args)
    return any(args)


def check_wired(template: Template, config: WorkersConfig, wired: Mapping[str, Any]) -> None:
    """Wired values must be what each input needs: names, ARNs and keys of the right kind."""
    specs = {spec.name: spec for spec in parameter_specs(config)}
    for name, value in wired.items():
        spec = specs.get(name)
        if spec is None:
            continue  # add_parameters names inputs that cannot be wired
        what = spec.constraint or "a value"
        if isinstance(value, str):
            if name in PLATFORM_INPUTS and not value:
                raise ValueError(f"wired {name}='' is not allowed: the feature needs {what}")
            if spec.allowed_pattern and not re.fullmatch(spec.allowed_pattern, value):
                raise ValueError(f"wired {name}={value!r} is not allowed: {what} ({spec.allowed_pattern})")
            continue
        if not is_intrinsic(value):
            raise ValueError(f"wired {name}={value!r} is not allowed: a string or an intrinsic (Ref, GetAtt, ...)")
        _check_reference(template, name, encode_to_dict(value), what)


def _check_reference(template: Template, name: str, value: dict[str, Any], what: str) -> None:
    """A Ref or GetAtt of one of the parent's queues or buckets must give what the input needs."""
    if "Ref" in value:
        target, attribute = value["Ref"], "Ref"
    elif "Fn::GetAtt" in value:
        args = value["Fn::GetAtt"]
        target, _, attribute = args.partition(".") if isinstance(args, str) else (args[0], "", args[1])
    else:
        return
    resource = template.resources.get(target)
    gives = _GIVES.get(getattr(resource, "resource_type", ""), {})
    if attribute not in gives:
        return  # a parameter, or a resource whose values this check does not know
    kind = resource.resource_type
    form = "Ref" if attribute == "Ref" else f"GetAtt {attribute}"
    need = _NEEDS.get(name)
    if need is not None and need[:2] == (kind, attribute):
        return
    fix = f": use {need[2]}" if need is not None and need[0] == kind else ""
    raise ValueError(f"wired {name}: {form} of {kind} {target} gives {gives[attribute]}, but {name} needs {what}{fix}")


def check_template_url(template_url: Any) -> None:
    """CloudFormation reads a nested stack's template from an https:// URL (of S3), never s3://."""
    if isinstance(template_url, str):
        if not template_url.startswith("https://"):
            raise ValueError(
                f"template_url={template_url!r} is not allowed: the https:// URL of the uploaded child "
                "(https://BUCKET.s3.REGION.amazonaws.com/KEY, not s3://), or an intrinsic such as Ref(parameter)"
            )
    elif not isinstance(template_url, AWSHelperFn):
        raise ValueError(
            f"template_url={template_url!r} is not allowed: an https:// URL or a troposphere intrinsic (Ref, Sub, ...)"
        )


def is_intrinsic(value: Any) -> bool:
    """A troposphere intrinsic (Ref, GetAtt, Sub, ...) or its JSON form."""
    if isinstance(value, AWSHelperFn):
        return True
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and isinstance(key := next(iter(value)), str)
        and (key == "Ref" or key.startswith("Fn::"))
    )
