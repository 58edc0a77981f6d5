"""Check parameter values against a template's own parameter constraints, as
CloudFormation does when it receives them, so that winworkers deploy can refuse
a bad value before any AWS call, in one line that names the parameter, the value
and what is allowed.

CloudFormation's rules, from the Parameters section reference
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html):

- Number takes an integer or a float; MinValue/MaxValue bound it.
- AllowedValues is an exact, case-sensitive match; for a CommaDelimitedList
  each item must be one of them.
- AllowedPattern must match the *entire* value of a String, and each item
  of a CommaDelimitedList.
- MinLength/MaxLength count the characters of a String.
- ConstraintDescription is what CloudFormation shows when a constraint fails.

Beyond those, a parameter whose name ends in Cidr must hold a real IPv4
network (or be empty): a pattern such as (\\d{1,3}\\.){3}\\d{1,3}/16 accepts
999.1.1.1/16 and 10.0.0.1/16, and what a block with host bits set should
mean is nowhere documented, so it is refused rather than guessed.

check_inputs adds what the resources using a value need of it
(winworkers.usage: whole numbers, schedules; a nested winworkers stack's child,
built from its Metadata, included), then the template's Rules
(winworkers.rules), after the constraints: a value that is not even a number would otherwise be
reported as a broken cross-parameter rule. winworkers deploy runs exactly these
checks, naming in ``filled`` the parameters it fills in itself.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Any

from winworkers.build import built_children
from winworkers.instance_types import INSTANCE_TYPE_LIST_PATTERN, INSTANCE_TYPE_PATTERN, instance_type_problem
from winworkers.rules import failed_assertions
from winworkers.rules import is_list_type as is_list_type  # public here too: the one list-type test
from winworkers.usage import parameter_kinds, usage_problems

# CloudFormation's Number: an integer or a float, in decimal or exponent notation.
# Python's float() would also take "nan", "inf" and "1_000", which CloudFormation does not.
# A longer AllowedPattern (InstanceType's lists ~600 types) is named, not quoted: one readable line.
_QUOTED_PATTERN = 200
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def check_parameters(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """One line per problem with values (parameter name to the string a user
    passes): unknown names, required parameters without a value, and every value
    that breaks its parameter's constraints. Empty when CloudFormation would accept them."""
    return value_problems(template, values) + missing_problems(template, values)


def value_problems(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """check_parameters for these values alone: unknown names, and each value against its
    parameter's constraints (what is missing is missing_problems')."""
    declared: Mapping[str, Mapping[str, Any]] = template.get("Parameters", {})
    problems = [_unknown(name, declared) for name in sorted(set(values) - set(declared))]
    for name, spec in declared.items():
        if name in values:
            problem = _check_value(name, spec, values[name])
            if problem:
                problems.append(problem)
    return problems


def missing_problems(template: Mapping[str, Any], values: Collection[str]) -> list[str]:
    """A line for each parameter without a default that has no value among values (names)."""
    declared: Mapping[str, Mapping[str, Any]] = template.get("Parameters", {})
    return [
        f"{n} has no default: give it a value" for n, s in declared.items() if n not in values and "Default" not in s
    ]


FILLED = "(filled in)"
"""What the Rules see for a parameter named in check_inputs' ``filled``: set, value unknown."""


def check_inputs(
    template: Mapping[str, Any],
    values: Mapping[str, str],
    *,
    filled: Collection[str] = (),
    children: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Everything CloudFormation would refuse about values before it creates a
    change set: the parameter constraints first, then (only when they all hold)
    the template's Rules, as Rule: AssertDescription.

    filled names parameters the caller fills in before CloudFormation sees them,
    as winworkers deploy looks up an empty S3 prefix list
    (``filled=winworkers.deploy.prefix_lists_to_fill(template, values)``): their
    given values are checked against the constraints, and the Rules take them as set.
    children: the child template of each nested winworkers stack, by logical id (usage.parameter_kinds);
    None: built from the config each one's Metadata records, as winworkers deploy builds them
    (build.built_children), so that a value the child's resources refuse is refused here too.
    """
    unknown = sorted(set(filled) - set(template.get("Parameters", {})))
    if unknown:
        raise ValueError(f"filled={unknown} is not allowed: names of the template's parameters")
    problems = check_parameters(template, values)
    if children is None:
        children = built_children(template)
    kinds = parameter_kinds(template, children)
    problems += usage_problems(template, {k: v for k, v in values.items() if not reported(k, problems)}, kinds)
    return problems or failed_assertions(template, {**values, **dict.fromkeys(filled, FILLED)})


def reported(name: str, problems: list[str]) -> bool:
    """Whether one of problems is about parameter name (so that it is reported once)."""
    return any(p.startswith((f"{name}=", f"{name} ")) for p in problems)


def _unknown(name: str, declared: Mapping[str, Any]) -> str:
    """An unknown name, with the closest declared names, case aside (CloudFormation's names are
    case-sensitive; the feature's carry a prefix, e.g. Win)."""
    lowered = {d.lower(): d for d in declared}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close = close or [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=2, cutoff=0.75)]
    close += [d for d in declared if d.lower().endswith(name.lower()) and d != name and d not in close]
    hint = f": did you mean {' or '.join(close[:2])}?" if close else ""
    return f"{name} is not a parameter of this template{hint}"


def _check_value(name: str, spec: Mapping[str, Any], value: str) -> str | None:
    kind = str(spec.get("Type", "String"))
    items = [item.strip() for item in value.split(",")] if is_list_type(kind) else [value]
    for item in items:
        problem = _check_item(name, spec, kind, item)
        if problem:
            subject = f"{name}={value!r}" if len(items) == 1 else f"{name} item {item!r}"
            return f"{subject} {problem}"
    if kind == "String":
        return _check_length(name, spec, value)
    return None


_INSTANCE_TYPE_PATTERNS = (INSTANCE_TYPE_PATTERN, INSTANCE_TYPE_LIST_PATTERN)


def _check_item(name: str, spec: Mapping[str, Any], kind: str, item: str) -> str | None:
    numeric = kind == "Number" or kind == "List<Number>"
    if numeric and not _NUMBER.fullmatch(item):
        return "is not a number"
    allowed = [str(v) for v in spec.get("AllowedValues", [])]
    if allowed and item not in allowed:
        cased = " (case-sensitive)" if any(c.isalpha() for c in "".join(allowed)) else ""
        return f"is not allowed: {_described(spec, 'one of ' + ', '.join(allowed) + cased)}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and kind != "Number":
        try:
            compiled = re.compile(str(pattern))
        except re.error:  # a Java pattern Python cannot read: CloudFormation will judge it
            compiled = None
        if compiled is not None and not compiled.fullmatch(item) and pattern in _INSTANCE_TYPE_PATTERNS:
            # The feature's InstanceType (or an item of InstanceTypes): the family's sizes, the nearest type.
            return f"is not allowed: {instance_type_problem(item)}"
        if compiled is not None and not compiled.fullmatch(item):
            shown = (
                f"pattern {pattern}"
                if len(str(pattern)) <= _QUOTED_PATTERN
                else f"its {len(str(pattern))}-character pattern"
            )
            return f"is not allowed: {_described(spec, shown)}"
    if numeric:
        number = float(item)
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            return f"is not allowed: {_described(spec, _range(low, high))}"
    if name.lower().endswith("cidr") and item:
        return _check_cidr(item)
    return None


def _check_length(name: str, spec: Mapping[str, Any], value: str) -> str | None:
    low, high = spec.get("MinLength"), spec.get("MaxLength")
    if (low is not None and len(value) < int(low)) or (high is not None and len(value) > int(high)):
        shortest = 0 if low is None else int(low)
        bounds = f"{shortest} to {int(high)}" if high is not None else f"at least {shortest}"
        return f"{name}={value!r} is not allowed: {_described(spec, f'{bounds} characters')} (it has {len(value)})"
    return None


def _check_cidr(item: str) -> str | None:
    address, slash, _ = item.partition("/")
    if not slash:
        return "is not a CIDR block (address/prefix length)"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return f"is not a CIDR block: {address} is not an IP address"
    try:
        network = ipaddress.ip_network(item, strict=False)
    except ValueError as error:
        return f"is not a CIDR block: {error}"
    if str(network) != item:
        return f"is not a network address: host bits are set (the network is {network})"
    return None


def _range(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"a number from {low} to {high}"
    return f"a number >= {low}" if low is not None else f"a number <= {high}"


def _described(spec: Mapping[str, Any], rule: str) -> str:
    description = spec.get("ConstraintDescription")
    return f"{description} ({rule})" if description else rule
