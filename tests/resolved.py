"""A template as CloudFormation would see it for given parameter values: every condition evaluated,
resources and outputs whose condition is false dropped, every Fn::If replaced by its branch and
AWS::NoValue removed. The Conditions are evaluated by winworkers.deploy.changes (the deploy's own
evaluator), so the resolution cannot differ from what the deploy plans with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from winworkers.deploy.changes import condition_holds
from winworkers.rules import parameter_values

_DROP = object()
REGION = "eu-west-1"
"""The Region the conditions are evaluated in (the InUsEast1 condition reads it)."""


def _typed(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    return parameter_values(template, {k: v for k, v in given.items() if k in template.get("Parameters", {})})


def _walk(node: Any, held: Mapping[str, bool]) -> Any:
    if isinstance(node, list):
        return [item for item in (_walk(i, held) for i in node) if item is not _DROP]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] == "AWS::NoValue":
        return _DROP
    if set(node) == {"Fn::If"}:
        name, yes, no = node["Fn::If"]
        return _walk(yes if held[name] else no, held)
    out = {}
    for key, value in node.items():
        walked = _walk(value, held)
        if walked is not _DROP:
            out[key] = walked
    return out


def resolve(
    template: Mapping[str, Any],
    given: Mapping[str, str],
    *,
    drop_parameters: tuple[str, ...] = (),
    region: str = REGION,
) -> Any:
    """template's Resources, Outputs and Parameters (less drop_parameters) for given values, in region."""
    values = {"AWS::Region": region, **_typed(template, given)}
    conditions = template.get("Conditions", {})
    held = {name: condition_holds(conditions, name, values) for name in conditions}
    unknown = sorted(name for name, value in held.items() if value is None)
    assert not unknown, f"conditions this cannot evaluate: {unknown}"

    def kept(section: str) -> dict[str, Any]:
        items = template.get(section, {}).items()
        return {n: _walk(d, held) for n, d in items if "Condition" not in d or held[d["Condition"]]}

    parameters = {n: d for n, d in template.get("Parameters", {}).items() if n not in drop_parameters}
    return {"Parameters": parameters, "Resources": kept("Resources"), "Outputs": kept("Outputs")}


def digest(resolved: Any) -> str:
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
