"""A deploy's inputs, read and checked before any AWS call: the template (JSON
or YAML), the parameter values, the stack and bucket names, the limits."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from winworkers.build import built_children
from winworkers.constraints import FILLED, missing_problems, reported, value_problems
from winworkers.deploy.base import DeployError
from winworkers.parameters import SWITCH
from winworkers.rules import failed_assertions, parameters_read
from winworkers.templates import INLINE_LIMIT, S3_LIMIT
from winworkers.usage import parameter_kinds, usage_problems

# CreateStack's StackName: alphanumerics (case-sensitive) and hyphens, starting with a letter, at most 128:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
# The parameters whose empty value the deploy may fill in itself (prefix_lists_to_fill).
_PREFIX_LIST = "S3PrefixListId"


class Template:
    """A template as data, and the body CloudFormation gets (JSON minified, YAML as written)."""

    def __init__(self, data: Mapping[str, Any], body: str, source: str) -> None:
        self.data = data
        self.body = body
        self.source = source

    @property
    def size(self) -> int:
        return len(self.body.encode())


def load_template(path: Path) -> tuple[dict[str, Any], str]:
    """The template as data, and as the body CloudFormation will get."""
    template = read_template(path)
    return dict(template.data), template.body


def read_template(source: Path | Mapping[str, Any]) -> Template:
    """A template file (JSON, or YAML with CloudFormation's short-form tags such as !Ref), or
    a template already built (a mapping, as winworkers deploy builds one from --config)."""
    if isinstance(source, Mapping):
        data = json.loads(json.dumps(source))
        return Template(_checked(data, "the built template"), json.dumps(data, separators=(",", ":")), "built")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DeployError(f"cannot read the template {source}: {error.strerror or error}") from error
    if source.suffix.lower() in (".yaml", ".yml", ".template") or not text.lstrip().startswith("{"):
        data = _yaml(text, source)
        return Template(_checked(data, f"the template {source}"), text, str(source))
    try:
        data = json.loads(text)
    except ValueError as error:
        raise DeployError(f"the template {source} is not JSON: {error}") from error
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Template(_checked(data, f"the template {source}"), body, str(source))


def _checked(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise DeployError(f"{what} is not a CloudFormation template (no Resources)")
    return data


def _yaml(text: str, path: Path) -> Any:
    """YAML with the short forms: !Ref X is {"Ref": "X"}, !GetAtt A.B is {"Fn::GetAtt": ["A", "B"]},
    !Condition X is {"Condition": "X"}, every other !Name is {"Fn::Name": ...}:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html"""
    try:
        import yaml
    except ImportError as error:
        raise DeployError(
            f"the template {path} is YAML, which needs PyYAML: pip install 'winworkers[deploy]'"
        ) from error

    class Loader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "Condition":
            return {"Condition": value}
        if suffix == "GetAtt" and isinstance(value, str):
            return {"Fn::GetAtt": value.split(".", 1)}
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    # CloudFormation reads timestamps as strings (e.g. AWSTemplateFormatVersion: 2010-09-09).
    Loader.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        return yaml.load(text, Loader=Loader)
    except yaml.YAMLError as error:
        raise DeployError(f"the template {path} is neither JSON nor YAML: {one_line_yaml(error)}") from error


def one_line_yaml(error: Exception) -> str:
    return " ".join(str(error).split())


def read_parameters_file(path: Path) -> dict[str, str]:
    """CloudFormation's [{"ParameterKey": ..., "ParameterValue": ...}] or a plain
    {"Key": "value"} object. Numbers and booleans become their JSON text, lists are joined by commas.
    A UTF-8 byte order mark (Windows PowerShell writes one) is read past."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as error:
        raise DeployError(f"cannot read the parameters file {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise DeployError(f"the parameters file {path} is not JSON: {error}") from error
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list) and all(isinstance(p, dict) and "ParameterKey" in p for p in data):
        if any(p.get("UsePreviousValue") for p in data):
            raise DeployError(
                f"{path}: UsePreviousValue is what winworkers deploy does for every parameter left out: leave it out"
            )
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
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"{flag} {item!r}: expected Key=Value")
        if key in pairs:
            raise DeployError(f"{flag} {key} is given twice ({pairs[key]!r} and {value!r}): give it once")
        pairs[key] = value
    return pairs


def check_stack_name(name: str) -> None:
    if not _STACK_NAME.fullmatch(name):
        raise DeployError(
            f"--stack-name {name!r} is not allowed: a letter, then letters, digits and hyphens (at most 128)"
        )


def check_bucket_name(name: str, flag: str) -> None:
    problem = None
    if not _BUCKET.fullmatch(name):
        problem = "3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
    elif ".." in name:
        problem = "no two dots in a row"
    elif _is_ip(name):
        problem = "not an IP address"
    elif name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        problem = f"not starting with {', '.join(_BUCKET_PREFIXES)} nor ending with {', '.join(_BUCKET_SUFFIXES)}"
    if problem:
        raise DeployError(f"{flag} {name!r} is not an S3 bucket name: {problem}")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_minutes(value: float, flag: str = "--timeout") -> None:
    if not value >= 0:  # also NaN
        raise DeployError(f"{flag} {value:g} is not allowed: minutes, 0 or more")


def prefix_lists_to_fill(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The S3 prefix-list parameters the deploy will look up: empty (given so, or by default)
    while their feature is enabled. Enabled is judged as CloudFormation judges the Rule that
    requires the parameter (its RuleCondition), so a parent that embeds the feature under its
    own switch (add_to / nested_stack switch=) is judged by that switch, not by
    EnableWinTaskScriptService; with no such Rule, by EnableWinTaskScriptService."""
    declared = template.get("Parameters", {})
    current = {n: values.get(n, str(spec.get("Default", ""))) for n, spec in declared.items()}
    names = [n for n in declared if n.endswith(_PREFIX_LIST)]
    return [n for n in names if not current[n] and _required_now(template, n, current)]


def _required_now(template: Mapping[str, Any], name: str, current: Mapping[str, str]) -> bool:
    from winworkers.rules import _eval, parameter_values

    rules = [r for r in template.get("Rules", {}).values() if name in _refs(r.get("Assertions", []))]
    if not rules:
        return current.get(SWITCH) == "true"
    typed = parameter_values(template, current)
    try:
        return any("RuleCondition" not in r or bool(_eval(r["RuleCondition"], typed)) for r in rules)
    except (KeyError, ValueError):  # a condition this evaluator cannot judge: look it up
        return True


@dataclass(frozen=True)
class Given:
    """What a deploy starts from (read_given): the template read, the values given, each checked on its own
    before any AWS call, and what the checks derive from the template once (the nested children's
    templates, the kind of value each parameter's resources need, the Rules the values given decide)."""

    template: Template
    values: Mapping[str, str]
    children: Mapping[str, Mapping[str, Any]]
    kinds: Mapping[str, str]
    decided: frozenset[str]


def read_given(source: Path | Mapping[str, Any] | Given, values: Mapping[str, str]) -> Given:
    """Step 1 of a deploy, read: the template (read_template) and the values given, each against its
    parameter's constraints and what the resources using it need (unknown names with a "did you mean"),
    then the Rules the values given decide alone (decided_rules), which validate does not judge again.
    A Given already read (the CLI reads before it connects) is returned as it is."""
    if isinstance(source, Given):
        if dict(source.values) != dict(values):
            raise ValueError("values is not allowed: a Given is deployed with the values it was read with")
        return source
    template = read_template(source)
    data, children = template.data, built_children(template.data)
    given = Given(template, dict(values), children, parameter_kinds(data, children), decided_rules(data, values))
    problems = _value_checks(given, values)
    if problems:
        raise DeployError("; ".join(problems))
    # The parameters these Rules do not read may be unknown yet (kept from the stack): set, for the evaluator.
    unread = [n for n, spec in data.get("Parameters", {}).items() if n not in values and "Default" not in spec]
    _judge_rules(data, {**dict.fromkeys(unread, FILLED), **values}, given.decided)
    return given


def decided_rules(template: Mapping[str, Any], values: Mapping[str, str]) -> frozenset[str]:
    """The Rules values (those given) decide alone: every parameter a Rule reads (rules.parameters_read) is
    given, and none is a prefix list given empty (the deploy may fill it in: prefix_lists_to_fill)."""
    fillable = {n for n, v in values.items() if n.endswith(_PREFIX_LIST) and not v}
    rules: Mapping[str, Mapping[str, Any]] = template.get("Rules", {})
    return frozenset(n for n, rule in rules.items() if parameters_read(rule) <= set(values) - fillable)


def _judge_rules(template: Mapping[str, Any], values: Mapping[str, str], names: Collection[str]) -> None:
    """The Rules named (each judged once: read_given judges those the values given decide, validate the
    rest), over values: DeployError with their failures, in the template's order. None named, none judged."""
    rules = {n: rule for n, rule in template.get("Rules", {}).items() if n in names}
    failures = failed_assertions({**template, "Rules": rules}, values) if rules else []
    if failures:
        raise DeployError("the template's Rules refuse these values: " + "; ".join(failures))


def check_given(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """read_given for a template already read: the values given, each on its own, and the Rules they decide."""
    read_given(template, given)


def _value_checks(given: Given, values: Mapping[str, str]) -> list[str]:
    """values against their constraints, then (each value reported once) what their resources need."""
    problems = value_problems(given.template.data, values)
    rest = {k: v for k, v in values.items() if not reported(k, problems)}
    return problems + usage_problems(given.template.data, rest, given.kinds)


def validate(given: Given, values: Mapping[str, str], *, known: Mapping[str, str] | None = None) -> list[str]:
    """Step 2 of a deploy, validate once, when every value CloudFormation will see is known (values:
    given, kept from the stack, defaults): the values not given (read_given judged those) against their
    constraints and their resources, each required input present, then the template's Rules that
    read_given did not judge (those reading a value not given), once, over every value. Raise DeployError
    with what CloudFormation would refuse; return the prefix lists to look up (prefix_lists_to_fill),
    which the Rules take as set.

    known: those of values whose text is unknown here (NoEcho values kept from the stack), taken as set."""
    template = given.template.data
    filled = prefix_lists_to_fill(template, values)
    unread = [*filled, *(known or {})]
    checked = {k: v for k, v in values.items() if k not in (known or {})}
    rest = {k: v for k, v in checked.items() if k not in given.values}
    problems = _value_checks(given, rest) if rest else []
    problems += missing_problems(template, [*values, *unread])
    if problems:
        raise DeployError("; ".join(problems))
    rest_of_rules = set(template.get("Rules", {})) - given.decided
    _judge_rules(template, {**checked, **dict.fromkeys(unread, FILLED)}, rest_of_rules)
    return filled


def check(template: Mapping[str, Any], values: Mapping[str, str], *, known: Mapping[str, str] | None = None) -> None:
    """Raise DeployError with what CloudFormation would refuse of values (every value it will see;
    known: those whose text is unknown here, taken as set): read_given and validate in one."""
    validate(read_given(template, {k: v for k, v in values.items() if k not in (known or {})}), values, known=known)


def _refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    if isinstance(node, Mapping):
        found = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
        return found.union(*(_refs(v) for v in node.values()))
    return set()


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
