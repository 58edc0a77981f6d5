"""What every patch uses: events on a stack, the names a value refers to, a resource's resolved
properties, moto's update signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _moto_update(update: Callable[[Any, dict[str, Any], str, str], Any]) -> Any:
    """An ``update_from_cloudformation_json`` as moto calls it (a classmethod, these names as keywords), for an
    update of (the resource, its template JSON, the account, the Region) that returns the updated resource."""

    def from_cloudformation_json(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        return update(original_resource, cloudformation_json, account_id, region_name)

    return classmethod(from_cloudformation_json)


def _as_given(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _record(resources_map: Any, logical_id: str, kind: str, physical_id: Any, status: str, reason: str = "") -> None:
    from moto.cloudformation.models import Event

    stack = getattr(resources_map, "winworkers_stack", None)
    if stack is None:
        return
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=str(physical_id or ""),
        resource_type=kind,
        resource_status=status,
        resource_status_reason=reason or None,
        resource_properties=None,
    )
    stack.events.append(event)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _names(value: Any) -> set[str]:
    """The resources and parameters ``value`` names with Ref or Fn::GetAtt."""
    if isinstance(value, dict):
        named = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        if isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"]:
            named.add(str(value["Fn::GetAtt"][0]))
        return named.union(*(_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value))
    return set()


def _resolved(resources_map: Any, resource_json: dict[str, Any]) -> Any:
    from moto.cloudformation.parsing import clean_json

    try:
        return clean_json(resource_json.get("Properties", {}), resources_map)
    except Exception:  # moto cannot resolve everything; such a resource counts as unchanged
        return None
