"""Reading a template the way CloudFormation will, for the rules in ``winworkers.lint.rules``.

A rule must see every value a property can take: ``Fn::If`` has two branches and
each is checked, with the conditions it assumed, so that a branch no deployment can
reach (its conditions contradict each other or the resource's own ``Condition``) is
not reported. cfn-lint's condition solver decides what can be reached.

Nothing here is a rule: cfn-lint instantiates every ``CloudFormationLintRule``
subclass it finds in a rules module, so helpers live apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.rules import RuleMatch
from cfnlint.template import Template

Path = list[str | int]
#: Condition name -> the value a branch assumed for it.
Assumed = dict[str, bool]
Branch = tuple[Any, Path, Assumed]

# ${Name} and ${Name.Attr} in Fn::Sub; ${!Literal} is not a reference.
_SUB_REFERENCE = re.compile(r"\$\{\s*([^!}\s][^}]*?)\s*\}")


def function(value: Any) -> tuple[str, Any] | None:
    """``(name, argument)`` when ``value`` is an intrinsic function (``Ref`` or ``Fn::*``)."""
    if isinstance(value, Mapping) and len(value) == 1:
        key, argument = next(iter(value.items()))
        if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
            return str(key), argument
    return None


def is_no_value(value: Any) -> bool:
    return function(value) == ("Ref", "AWS::NoValue")


def branches(value: Any, path: Path, assumed: Assumed) -> Iterator[Branch]:
    """Each value ``value`` can resolve to at its top level: both sides of every
    ``Fn::If`` (nested ones too), with the path to it and the conditions assumed."""
    call = function(value)
    if call and call[0] == "Fn::If":
        arguments = call[1]
        if isinstance(arguments, list) and len(arguments) == 3 and isinstance(arguments[0], str):
            condition = arguments[0]
            for side, index in ((True, 1), (False, 2)):
                if assumed.get(condition, side) == side:
                    yield from branches(arguments[index], [*path, "Fn::If", index], {**assumed, condition: side})
            return
    yield value, path, assumed


def elements(value: Any, path: Path, assumed: Assumed) -> Iterator[Branch]:
    """The elements of a list-valued property on every branch (``AWS::NoValue``
    dropped). A value that is not a list counts as its only element, as IAM allows
    for ``Statement``."""
    for resolved, at, conditions in branches(value, path, assumed):
        if isinstance(resolved, list):
            for index, item in enumerate(resolved):
                for element, element_at, element_conditions in branches(item, [*at, index], conditions):
                    if not is_no_value(element):
                        yield element, element_at, element_conditions
        elif not is_no_value(resolved):
            yield resolved, at, conditions


def references(value: Any) -> Iterator[str]:
    """Logical IDs named by ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` (``${X}``,
    ``${X.Attr}``) anywhere inside ``value``, on both sides of every ``Fn::If``:
    CloudFormation's implicit dependencies. Pseudo parameters are included."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, Mapping):
        return
    call = function(value)
    if call is not None:
        name, argument = call
        if name == "Ref" and isinstance(argument, str):
            yield argument
            return
        if name == "Fn::GetAtt":
            if isinstance(argument, str):
                yield argument.split(".", 1)[0]
                return
            if isinstance(argument, list) and argument and isinstance(argument[0], str):
                yield argument[0].split(".", 1)[0]
                yield from references(argument[1:])
                return
        if name == "Fn::Sub":
            text, local = (argument, {}) if isinstance(argument, str) else _sub_arguments(argument)
            for reference in _SUB_REFERENCE.findall(text):
                target = reference.split(".", 1)[0]
                if target not in local:
                    yield target
            yield from references(list(local.values()))
            return
        if name == "Fn::If" and isinstance(argument, list):
            yield from references(argument[1:])
            return
    for item in value.values():
        yield from references(item)


def _sub_arguments(argument: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
        local = argument[1] if isinstance(argument[1], Mapping) else {}
        return argument[0], local
    return "", {}


def resources(cfn: Template, *types: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(logical ID, resource)`` of the template's resources of ``types`` (all if none)."""
    declared = cfn.template.get("Resources", {})
    if not isinstance(declared, Mapping):
        return
    for name, resource in declared.items():
        if isinstance(resource, Mapping) and (not types or resource.get("Type") in types):
            yield str(name), resource


def created_when(resource: Mapping[str, Any]) -> Assumed:
    """The resource's own ``Condition``, assumed true: a branch is only deployed with it."""
    condition = resource.get("Condition")
    return {condition: True} if isinstance(condition, str) else {}


def properties(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    found = resource.get("Properties", {})
    return found if isinstance(found, Mapping) else {}


def reachable(cfn: Template, assumed: Assumed) -> bool:
    """Whether some deployment satisfies every assumed condition at once."""
    if not assumed:
        return True
    declared = cfn.template.get("Conditions", {})
    if not isinstance(declared, Mapping) or any(name not in declared for name in assumed):
        # An undeclared condition is cfn-lint's own error (E8002); do not hide findings behind it.
        return True
    wanted = {name: {value} for name, value in assumed.items()}
    return any(True for _ in cfn.conditions.build_scenarios(wanted))


def consistent(*assumptions: Assumed) -> Assumed | None:
    """The union of the assumptions, or None when two of them contradict."""
    merged: Assumed = {}
    for assumed in assumptions:
        for name, value in assumed.items():
            if merged.setdefault(name, value) != value:
                return None
    return merged


def scenario_text(assumed: Assumed, resource: Mapping[str, Any]) -> str:
    """`` when WinIsolatedVpc is false`` for messages: the branch's conditions except
    the resource's own (always true where it exists); empty when there are none."""
    own = created_when(resource)
    shown = sorted((name, value) for name, value in assumed.items() if own.get(name) != value)
    if not shown:
        return ""
    return " when " + " and ".join(f"{name} is {str(value).lower()}" for name, value in shown)


def unique(matches: list[RuleMatch]) -> list[RuleMatch]:
    """``matches`` without repeats (two branches can lead to the same finding)."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for found in matches:
        if (found.path_string, found.message) not in seen:
            seen.add((found.path_string, found.message))
            kept.append(found)
    return kept


def target(value: Any) -> str | None:
    """The logical ID a value names at its top level: ``Ref X`` or ``Fn::GetAtt [X, Attr]``
    (``X.Attr`` too); None for anything else (a literal, a parameter is returned as its name)."""
    call = function(value)
    if call is None:
        return None
    name, argument = call
    if name == "Ref" and isinstance(argument, str):
        return argument
    if name == "Fn::GetAtt":
        if isinstance(argument, str):
            return argument.split(".", 1)[0]
        if isinstance(argument, list) and argument and isinstance(argument[0], str):
            return argument[0].split(".", 1)[0]
    return None


def targets(
    declared: Mapping[str, Mapping[str, Any]], value: Any, path: Path, assumed: Assumed, *types: str
) -> Iterator[tuple[str, Assumed]]:
    """``(logical ID, conditions)`` for each element of a list-valued (or single)
    property, on every branch, that names a template resource of ``types``, with
    that resource's own ``Condition`` added. Elements from parameters, imports or
    literals are skipped: what the template cannot say."""
    for element, _, conditions in elements(value, path, assumed):
        name = target(element)
        found = declared.get(name) if name is not None else None
        if found is not None and (not types or found.get("Type") in types):
            both = consistent(conditions, created_when(found))
            if both is not None:
                yield str(name), both


def vpcs(
    declared: Mapping[str, Mapping[str, Any]], value: Any, assumed: Assumed, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str | None, Any, Assumed]]:
    """``(VPC, the value it comes down to, conditions)`` for each branch of a
    ``VpcId`` value: VPC is the logical ID of an ``AWS::EC2::VPC`` of the template
    (``Ref`` or ``Fn::GetAtt [Vpc, VpcId]``), following ``Fn::GetAtt [X, VpcId]``
    through every branch of X's own ``VpcId``; None when the VPC comes from
    elsewhere (a parameter, an import, a literal)."""
    for vpc, _, conditions in branches(value, [], assumed):
        call = function(vpc)
        name = target(vpc)
        owner = declared.get(name) if name is not None else None
        if owner is not None and call is not None:
            if owner.get("Type") == "AWS::EC2::VPC":
                yield name, vpc, conditions
                continue
            argument = call[1]
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            if (
                call[0] == "Fn::GetAtt"
                and isinstance(parts, list)
                and len(parts) == 2
                and parts[1] == "VpcId"
                and name not in seen
            ):
                yield from vpcs(declared, properties(owner).get("VpcId"), conditions, seen | {str(name)})
                continue
        yield None, vpc, conditions
