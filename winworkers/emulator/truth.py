"""The emulator's invariants (issue 26), checked after every stack operation, and the
patches that keep moto from creating, re-creating or replacing what CloudFormation would not.

An operation whose end state breaks an invariant fails loudly, naming it: the stack ends
CREATE_FAILED, UPDATE_ROLLBACK_FAILED or DELETE_FAILED, and its last event says
``emulator invariant violated: <invariant>: <what>``. The invariants:

- ``listed-resources-exist``: every resource a stack lists exists in moto's backends;
- ``no-orphan``: nothing a stack made exists outside it (a resource deleted, replaced or
  re-created that is still there), unless it was retained (DeletionPolicy Retain);
- ``deleted-stack-not-evaluated``: a deleted stack's outputs and resources are never
  evaluated again (moto's ResourceMap creates a resource on first access, so evaluating a
  deleted stack's outputs re-created what they named);
- ``nested-stack-keeps-id``: a nested stack keeps its id across an in-place update;
- ``launch-template-version``: a group runs the launch template version its template resolves to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

INVARIANTS = (
    "listed-resources-exist",
    "no-orphan",
    "deleted-stack-not-evaluated",
    "nested-stack-keeps-id",
    "launch-template-version",
)


class InvariantViolation(Exception):
    """An emulator invariant did not hold: the operation fails, naming it."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"emulator invariant violated: {invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


_made: dict[tuple[str, str], list[tuple[str, str, str, str, Any]]] = {}
"""What the stacks made, by (account, region): (stack id, logical id, type, physical id, resource)."""
_retained: set[tuple[str, str]] = set()
"""(type, physical id) of the resources kept by DeletionPolicy Retain: they may outlive their stack."""


def reset() -> None:
    """Forget the bookkeeping (moto's own reset clears the resources)."""
    _made.clear()
    _retained.clear()


def remember(resources_map: Any, logical_id: str, kind: str, resource: Any) -> None:
    stack = getattr(resources_map, "winworkers_stack", None)
    if stack is None or resource is None:
        return
    key = (resources_map._account_id, resources_map._region_name)
    physical = str(getattr(resource, "physical_resource_id", "") or "")
    _made.setdefault(key, []).append((stack.stack_id, logical_id, kind, physical, resource))


def retain(kind: str, physical: str) -> None:
    _retained.add((kind, physical))


def _live(account: str, region: str, kind: str, physical: str, resource: Any) -> bool | None:
    """Whether moto's backend holds the resource; None: this type is not checked."""
    check = _EXISTS.get(kind)
    if check is None or not physical:
        return None
    try:
        return bool(check(account, region, physical, resource))
    except Exception:  # a backend that cannot answer counts as not holding it
        return False


def _stack_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.cloudformation.models import cloudformation_backends

    return resource.stack_id in cloudformation_backends[account][region].stacks


def _queue_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.sqs.models import sqs_backends

    return physical.rsplit("/", 1)[-1] in sqs_backends[account][region].queues


def _group_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.autoscaling.models import autoscaling_backends

    return physical in autoscaling_backends[account][region].autoscaling_groups


def _log_group_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.logs.models import logs_backends

    return physical in logs_backends[account][region].groups


def _ec2(attribute: str) -> Callable[[str, str, str, Any], bool]:
    def live(account: str, region: str, physical: str, resource: Any) -> bool:
        from moto.ec2.models import ec2_backends

        held = getattr(ec2_backends[account][region], attribute)
        if attribute == "subnets":  # by availability zone
            return any(physical in subnets for subnets in held.values())
        return physical in held and getattr(held[physical], "state", "") != "deleted"  # endpoints stay, "deleted"

    return live


def _role_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.iam.models import iam_backends

    return any(role.name == physical for role in iam_backends[account]["aws"].roles.values())


def _function_live(account: str, region: str, physical: str, resource: Any) -> bool:
    from moto.awslambda.utils import get_backend

    get_backend(account, region).get_function(physical)
    return True


_EXISTS: dict[str, Callable[[str, str, str, Any], bool]] = {
    "AWS::CloudFormation::Stack": _stack_live,
    "AWS::SQS::Queue": _queue_live,
    "AWS::AutoScaling::AutoScalingGroup": _group_live,
    "AWS::Logs::LogGroup": _log_group_live,
    "AWS::EC2::VPC": _ec2("vpcs"),
    "AWS::EC2::Subnet": _ec2("subnets"),
    "AWS::EC2::LaunchTemplate": _ec2("launch_templates"),
    "AWS::EC2::RouteTable": _ec2("route_tables"),
    "AWS::EC2::VPCEndpoint": _ec2("vpc_end_points"),
    "AWS::EC2::FlowLog": _ec2("flow_logs"),
    "AWS::IAM::Role": _role_live,
    "AWS::Lambda::Function": _function_live,
}
"""The types whose existence the invariants check: every type the templates make that moto holds in a
backend a lookup can answer (the rest are listed by coverage() as not checked)."""


def checked_types() -> set[str]:
    return set(_EXISTS)


def listed(stack: Any) -> dict[str, Any]:
    """The resources a stack lists: those it made and holds (moto's ResourceMap would create
    the others on first access)."""
    return listed_in(stack.resource_map)


def listed_in(resources_map: Any) -> dict[str, Any]:
    """listed(), of a stack's ResourceMap."""
    parsed = resources_map._parsed_resources
    return {
        name: parsed[name]
        for name in resources_map._resource_json_map
        if name in parsed and parsed[name] is not None and not isinstance(parsed[name], str)
    }


def _involved(stack: Any) -> list[Any]:
    """The stack and its nested stacks, recursively."""
    found = [stack]
    for resource in listed(stack).values():
        if getattr(resource, "cf_resource_type", "") == "AWS::CloudFormation::Stack":
            found += _involved(resource)
    return found


def verify(account: str, region: str, operated: Any) -> None:
    """Raise InvariantViolation unless the operated stack's resources (its nested stacks' included)
    exist and nothing it made, or they made, is orphaned. Other stacks are not judged here: each
    is judged by its own operations."""
    from moto.cloudformation.models import cloudformation_backends

    stacks = cloudformation_backends[account][region].stacks
    involved = _involved(operated) if not operated.status.startswith("DELETE") else []
    ids = {operated.stack_id} | {s.stack_id for s in involved}
    ids |= {e[0] for e in _made.get((account, region), []) if e[0] not in stacks}  # deleted with it
    for stack in involved:
        if stack.status.startswith("DELETE") or stack.status == "REVIEW_IN_PROGRESS":
            continue
        for name, resource in listed(stack).items():
            kind = getattr(resource, "cf_resource_type", "")
            physical = str(getattr(resource, "physical_resource_id", "") or "")
            if _live(account, region, kind, physical, resource) is False:
                raise InvariantViolation(
                    "listed-resources-exist", f"stack {stack.name} lists {name} ({kind} {physical}), moto has none"
                )
        _check_group_versions(stack)
    kept = []
    for stack_id, name, kind, physical, resource in _made.get((account, region), []):
        if stack_id not in ids:
            kept.append((stack_id, name, kind, physical, resource))
            continue
        owner = stacks.get(stack_id)
        holding = listed(owner).get(name) if owner is not None else None
        owned = holding is not None and str(getattr(holding, "physical_resource_id", "") or "") == physical
        if owned:
            kept.append((stack_id, name, kind, physical, resource))
        elif (kind, physical) not in _retained and _live(account, region, kind, physical, resource):
            raise InvariantViolation(
                "no-orphan", f"{name} ({kind} {physical}) is no longer in its stack but still exists"
            )
    _made[(account, region)] = kept


def _check_group_versions(stack: Any) -> None:
    from moto.cloudformation.parsing import clean_json

    resources_map = stack.resource_map
    for name, resource in listed(stack).items():
        if getattr(resource, "cf_resource_type", "") != "AWS::AutoScaling::AutoScalingGroup":
            continue
        try:
            properties = clean_json(resources_map._resource_json_map[name].get("Properties", {}), resources_map)
        except Exception:  # moto cannot resolve it: nothing to compare
            continue
        wanted = (properties.get("LaunchTemplate") or {}).get("Version") or (
            ((properties.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {})
            .get("LaunchTemplateSpecification", {})
            .get("Version")
        )
        running = _running_version(resource)
        if wanted is not None and running is not None and str(wanted) != str(running):
            raise InvariantViolation(
                "launch-template-version",
                f"{stack.name}/{name} runs launch template version {running}, its template resolves {wanted}",
            )


def _running_version(group: Any) -> Any:
    policy = getattr(group, "mixed_instances_policy", None) or {}
    specification = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification") or {}
    return specification.get("Version") or getattr(group, "provided_launch_template_version", None)


def fail(stack: Any, violation: InvariantViolation, status: str) -> None:
    """The stack ends ``status``, its last event naming the violated invariant."""
    stack._add_stack_event(status, resource_status_reason=str(violation))
    stack.status = status


# Patches --------------------------------------------------------------------------------------------------------


def guarded_getitem(getitem: Any) -> Any:
    # moto's ResourceMap creates a resource on its first access: after a stack's deletion, an
    # evaluation of its outputs (DescribeStacks) or resources (ListStackResources) re-created them.
    def get(resources_map: Any, key: str) -> Any:
        deleted = getattr(resources_map, "winworkers_deleted", False)
        if deleted and key not in resources_map._parsed_resources and key in resources_map._resource_json_map:
            from moto.cloudformation.exceptions import ValidationError

            stack = getattr(resources_map, "winworkers_stack", None)
            violation = InvariantViolation(
                "deleted-stack-not-evaluated",
                f"{key} of deleted stack {getattr(stack, 'name', '?')} was about to be created again",
            )
            raise ValidationError(message=str(violation))  # the API call fails with it, as a 400
        return getitem(resources_map, key)

    return get


def listed_resources(_: property) -> property:
    # ListStackResources lists what the stack holds (moto evaluated every declared resource, creating
    # the missing ones: a deleted stack's listing re-created them).
    return property(lambda stack: list(listed(stack).values()))


def frozen_outputs(outputs: property) -> property:
    # A deleted stack's outputs are those it had: never evaluated again.
    def get(stack: Any) -> Any:
        if hasattr(stack, "winworkers_outputs"):
            return stack.winworkers_outputs
        return outputs.fget(stack) if outputs.fget else None

    return property(get)


def deleting(delete: Any) -> Any:
    def run(stack: Any) -> None:
        try:  # what it had, evaluated while its resources exist
            stack.winworkers_outputs = stack.outputs
        except Exception:  # moto cannot evaluate them (a nested stack's Outputs.X): none
            stack.winworkers_outputs = None
        stack.resource_map.winworkers_deleted = True
        delete(stack)

    return run


# Updates as CloudFormation makes them (createOnlyProperties) -------------------------------------------------


def create_only(kind: str) -> list[str] | None:
    """The type's createOnlyProperties pointers (its registry schema, as cfn-lint ships it); None
    when they cannot be read here (cfn-lint is not installed, or the type has no schema)."""
    try:
        from winworkers.update_path import schema_of

        schema = schema_of(kind) or {}
    except Exception:  # cfn-lint missing, or no schema for the type
        return None
    return list(schema.get("createOnlyProperties", []))


def create_only_changed(kind: str, old: Any, new: Any) -> list[str] | None:
    """The create-only properties of ``kind`` whose value differs from old to new (resolved properties):
    CloudFormation replaces the resource when any does. None: not judged (no schema, or no values)."""
    from winworkers.update_path import at_pointer

    pointers = create_only(kind)
    if pointers is None or old is None or new is None:
        return None
    return [p.removeprefix("/properties/") for p in pointers if at_pointer(old, p) != at_pointer(new, p)]


def update_note(kind: str, old: Any, new: Any, replaced: bool) -> str:
    """What an UPDATE event must say when the emulator's update is not the one CloudFormation
    makes: CloudFormation replaces a resource only when a create-only property changes."""
    changed = create_only_changed(kind, old, new)
    if changed is None:
        return "" if not replaced else "replaced by moto; not judged (no registry schema here)"
    if changed and replaced:
        return f"replaced: create-only {', '.join(changed)} changed"
    if changed:
        return f"NOT MODELLED by the emulator: CloudFormation replaces it (create-only {', '.join(changed)} changed)"
    if replaced:
        return "NOT MODELLED by the emulator: CloudFormation modifies it in place; moto replaced it"
    return ""
