"""Build-time checks of how a parent embeds the feature.

Each mistake here is one CloudFormation would report late (deep in a nested
stack's events) or never (a fleet that cannot read its queue), so add_to and
nested_stack refuse it with a ValueError that names the input and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from troposphere import AWSHelperFn, Template, encode_to_dict

from winworkers.config import WorkersConfig
from winworkers.parameters import PLATFORM_INPUTS, PLATFORM_KEYS, SWITCH, parameter_specs

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


def check_switch(template: Template) -> None:
    """A parent's own switch must be able to equal "true": the feature's condition tests exactly that."""
    if SWITCH not in template.parameters:
        return
    declared = encode_to_dict(template.parameters[SWITCH])
    problems = []
    if declared.get("Type") not in _STRING_TYPES:
        problems.append(f"its Type is {declared.get('Type')}")
    allowed = declared.get("AllowedValues")
    if allowed is not None and "true" not in [str(value) for value in allowed]:
        problems.append(f"its AllowedValues are {allowed}")
    pattern = declared.get("AllowedPattern")
    if isinstance(pattern, str) and not re.fullmatch(pattern, "true"):
        problems.append(f"its AllowedPattern {pattern!r} rejects it")
    if int(declared.get("MaxLength", 4)) < 4 or int(declared.get("MinLength", 4)) > 4:
        problems.append("its MinLength/MaxLength reject it")
    if problems:
        raise ValueError(
            f'the parent\'s {SWITCH} parameter can never be "true" ({"; ".join(problems)}), and the feature exists '
            f'only when it equals "true": declare it Type String with AllowedValues ["true", "false"]'
        )


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
