"""The second deploy: which stack inputs replace which resources, derived from the resource
schemas (cfn-lint's bundled CloudFormation registry schemas; cfn-lint is a dev and ``lint`` extra).

A property in a schema's ``createOnlyProperties`` cannot change in place: a new value
replaces the resource (its physical id changes), and so replaces every resource whose
create-only property names it (Ref, Fn::GetAtt). A replacement creates the new
resource before deleting the old one, so a fixed physical name (a ``primaryIdentifier``
set in the template) that the replacement does not change collides with itself.
``tests/test_update_path.py`` pins it; ``docs.refresh_table`` reads it.
"""

from __future__ import annotations

import re
from typing import Any

REGION = "us-east-1"


def depends_on(value: Any, conditions: dict[str, Any]) -> set[str]:
    """Parameters, pseudo parameters and resources ``value`` depends on (through Conditions too)."""
    if isinstance(value, list):
        return set().union(*(depends_on(v, conditions) for v in value))
    if not isinstance(value, dict):
        return set()
    found: set[str] = set()
    for key, arg in value.items():
        if key == "Ref" and isinstance(arg, str):
            found.add(arg)
        elif key == "Fn::GetAtt":
            found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
        elif key == "Fn::Sub":
            text = arg[0] if isinstance(arg, list) else arg
            local = set(arg[1]) if isinstance(arg, list) else set()
            found |= {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text)} - local
            found |= depends_on(arg[1:], conditions) if isinstance(arg, list) else set()
        elif key == "Fn::If":
            found |= depends_on(conditions[arg[0]], conditions) | depends_on(arg[1:], conditions)
        elif key == "Condition" and isinstance(arg, str) and arg in conditions:
            found |= depends_on(conditions[arg], conditions)
        elif key == "Fn::GetAZs":
            found.add("AWS::Region")
        else:
            found |= depends_on(arg, conditions)
    return found


def at_pointer(properties: dict[str, Any], pointer: str) -> Any:
    value: Any = properties
    for part in pointer.split("/")[2:]:
        if part == "*" or not isinstance(value, dict):
            return value
        if part not in value:
            return None
        value = value[part]
    return value


def schema_of(kind: str) -> dict[str, Any] | None:
    if kind.startswith("Custom::"):
        return {"createOnlyProperties": ["/properties/ServiceToken"], "primaryIdentifier": []}
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema: dict[str, Any] = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, kind).schema
    return schema


def update_path(template: dict[str, Any]) -> tuple[dict[str, set[str]], list[str]]:
    """({input: resources a change of it replaces}, [fixed names a replacement collides on])."""
    resources, conditions = template["Resources"], template.get("Conditions", {})
    create_only: dict[str, set[str]] = {}
    fixed: dict[str, set[str]] = {}
    for name, resource in resources.items():
        schema = schema_of(resource["Type"]) or {}
        properties = resource.get("Properties", {})
        for pointer in schema.get("createOnlyProperties", []):
            value = at_pointer(properties, pointer)
            if value is None:
                continue
            depends = depends_on(value, conditions)
            create_only.setdefault(name, set()).update(depends)
            if pointer in schema.get("primaryIdentifier", []):
                fixed[name] = depends
    replaced: dict[str, set[str]] = {}
    for parameter in template["Parameters"]:
        hit = {parameter}
        while True:  # a replaced resource's new physical id replaces what names it in a create-only property
            more = {r for r, depends in create_only.items() if depends & hit} - hit
            if not more:
                break
            hit |= more
        replaced[parameter] = hit - {parameter}
    collisions = [
        f"{resource} (fixed name) replaced by {parameter}"
        for parameter, hit in replaced.items()
        for resource in hit
        if resource in fixed and parameter not in _closure(fixed[resource], create_only)
    ]
    return {p: r for p, r in replaced.items() if r}, collisions


def _closure(names: set[str], create_only: dict[str, set[str]]) -> set[str]:
    found, todo = set(), set(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo |= create_only.get(name, set())
    return found
