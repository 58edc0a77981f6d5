"""What a change set will do, grouped for an operator: add, modify, replace, remove,
with what causes each replacement, and whether it starts an instance refresh.

CloudFormation's DescribeChangeSet lists each ResourceChange with its Action
(Add, Modify, Remove, Import, Dynamic), for a Modify its Replacement (True,
Conditional, False) and Details naming the property and what caused it
(a ParameterReference, a DirectModification, ...):
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html
With IncludeNestedStacks, a nested stack's change carries the ChangeSetId of its own change set.

An emulator may list less (moto 5.2.5 lists Add/Modify/Remove from the template
text only: no Replacement, no Details, nothing for a parameter-only change, and
resources whose Condition is false as if they were there). So the plan also
works out from the templates what the change set must contain, and adds what
it did not list, marked ``(from the templates)``: a resource whose Condition
becomes false is removed, one whose Condition becomes true is added, and one
whose definition or referenced parameters change is modified (replacement
unknown). Against CloudFormation these agree with the change set and add nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from winworkers.rules import CONDITION_FUNCTIONS, as_text, condition_named, evaluate, split_list, walk

ADD, MODIFY, REPLACE, REMOVE = "add", "modify", "replace", "remove"
ORDER = (REMOVE, REPLACE, MODIFY, ADD)
NESTED = "AWS::CloudFormation::Stack"
REFRESH_TYPES = ("AWS::EC2::LaunchTemplate",)
"""A new launch template version makes the group's UpdatePolicy (or the refresh custom resource) refresh the workers."""


@dataclass(frozen=True)
class Change:
    kind: str
    logical_id: str
    resource_type: str
    causes: tuple[str, ...] = ()
    """For a replacement (or a modify): the properties and what changed them."""
    computed: bool = False
    """Not in the change set: worked out from the templates."""
    nested: bool = False
    """A nested stack whose own changes are not listed."""
    retained: bool = False
    """A removal that leaves the resource in the account (DeletionPolicy Retain): it stays."""

    def line(self) -> str:
        why = f": {', '.join(self.causes)}" if self.causes else ""
        marks = " (from the templates)" if self.computed else ""
        if self.nested:
            marks += " (its own changes are not listed: it may replace or remove resources)"
        if self.retained:
            return (
                f"  stays    {self.logical_id} ({self.resource_type}): leaves the stack, kept (DeletionPolicy Retain)"
            )
        return f"  {self.kind:<8} {self.logical_id} ({self.resource_type}){why}{marks}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    parameters: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, old, new) of each parameter whose value changes."""
    refresh: list[str] = field(default_factory=list)
    """Why the change set starts an instance refresh (empty: it does not)."""

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def risky(self) -> bool:
        """Removes or replaces something, starts a refresh, or cannot say (a nested stack not listed)."""
        return bool(self.of(REMOVE) or self.of(REPLACE) or self.refresh or any(c.nested for c in self.changes))

    def summary(self) -> str:
        kept = sum(c.retained for c in self.changes)
        sizes = {k: len(self.of(k)) - (kept if k == REMOVE else 0) for k in ORDER}
        counts = [f"{n} to {k}" for k, n in sizes.items() if n]
        counts += [f"{kept} to stay (DeletionPolicy Retain)"] if kept else []
        text = ", ".join(counts) or "no resource changes"
        return text + ("; starts an instance refresh" if self.refresh else "")

    def lines(self) -> list[str]:
        out = [f"  parameter {name}: {old!r} -> {new!r}" for name, old, new in self.parameters]
        for kind in ORDER:
            # A removal that keeps the resource is listed after the others, as staying.
            out += [c.line() for c in sorted(self.of(kind), key=lambda c: (c.retained, c.logical_id))]
        out += [f"  refresh  {why}" for why in self.refresh]
        return out


def from_change_set(
    described: Sequence[Mapping[str, Any]],
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    new_values: Mapping[str, Any],
    old_values: Mapping[str, Any],
    current: Mapping[str, str],
) -> Plan:
    """The plan of a change set.

    described: the ResourceChange of each Change (all pages); new/old: the
    templates (old None on a create); new_values/old_values: every parameter's
    value; current: the stack's resources, logical id to type.
    """
    plan = Plan()
    listed: set[str] = set()
    for change in described:
        listed.add(change["LogicalResourceId"])
        plan.changes.append(_from_aws(change))
    for expected in expected_changes(new, old, new_values, old_values, current):
        if expected.logical_id not in listed:
            plan.changes.append(expected)
    # The change set lists a resource whose Condition is false (moto): it will not be created.
    holds = resources_holding(new, new_values)
    plan.changes = [c for c in plan.changes if not (c.kind == ADD and c.logical_id not in holds and not c.computed)]
    plan.changes = [
        dataclasses.replace(c, retained=True) if c.kind == REMOVE and _retains(c.logical_id, new, old) else c
        for c in plan.changes
    ]
    plan.parameters = [
        (name, str(as_text(old_values.get(name))), str(as_text(value)))
        for name, value in sorted(new_values.items())
        if old is not None and name in old_values and as_text(old_values[name]) != as_text(value)
    ]
    plan.refresh = refresh_reasons(plan, new)
    return plan


RETAIN = ("Retain", "RetainExceptOnCreate")
"""DeletionPolicy values that keep a resource removed by a stack update (RetainExceptOnCreate deletes it
only when the stack's creation rolls back):
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html"""


def _retains(logical_id: str, new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """The DeletionPolicy in force when the resource is removed: the stack's template's (old), else the new one's
    (a resource whose Condition turns false is still defined in it)."""
    for template in (old, new):
        definition = (template or {}).get("Resources", {}).get(logical_id)
        if isinstance(definition, Mapping):
            return definition.get("DeletionPolicy") in RETAIN
    return False


def _from_aws(change: Mapping[str, Any]) -> Change:
    action = change.get("Action", "")
    logical_id = change["LogicalResourceId"]
    kind_of = change.get("ResourceType", "")
    causes = tuple(_cause(d) for d in change.get("Details", []) or [])
    if action == "Remove":
        return Change(REMOVE, logical_id, kind_of)
    if action in ("Add", "Import"):
        return Change(ADD, logical_id, kind_of)
    replacement = change.get("Replacement", "False")
    if replacement in ("True", "Conditional"):
        recreated = tuple(_cause(d) for d in change.get("Details", []) or [] if _recreates(d))
        return Change(REPLACE, logical_id, kind_of, (recreated or causes) + (("may be",) * (replacement != "True")))
    nested = kind_of == NESTED
    return Change(MODIFY, logical_id, kind_of, causes, nested=nested)


def _recreates(detail: Mapping[str, Any]) -> bool:
    return detail.get("Target", {}).get("RequiresRecreation") in ("Always", "Conditionally")


def _cause(detail: Mapping[str, Any]) -> str:
    target = detail.get("Target", {})
    what = ".".join(p for p in (target.get("Attribute"), target.get("Name")) if p and p != "Properties") or "?"
    source = detail.get("ChangeSource", "")
    entity = detail.get("CausingEntity")
    recreation = target.get("RequiresRecreation")
    by = f"{source} {entity}" if entity else source
    return f"{what} ({by}{', replaces: ' + recreation if recreation in ('Always', 'Conditionally') else ''})"


def expected_changes(
    new: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    new_values: Mapping[str, Any],
    old_values: Mapping[str, Any],
    current: Mapping[str, str],
) -> Iterator[Change]:
    """What the change set must contain, from the templates and the values."""
    holds = resources_holding(new, new_values)
    resources = new.get("Resources", {})
    for logical_id in sorted(set(current) - holds):
        yield Change(REMOVE, logical_id, current[logical_id], computed=True)
    for logical_id in sorted(holds - set(current)):
        yield Change(ADD, logical_id, str(resources[logical_id].get("Type", "")), computed=True)
    if old is None:
        return
    changed_values = {name for name in new_values if as_text(new_values.get(name)) != as_text(old_values.get(name))}
    old_resources = old.get("Resources", {})
    for logical_id in sorted(holds & set(current)):
        definition = resources[logical_id]
        if definition != old_resources.get(logical_id):
            kind = str(definition.get("Type", ""))
            yield Change(MODIFY, logical_id, kind, ("its definition",), computed=True, nested=kind == NESTED)
            continue
        used = sorted(references(definition, new) & changed_values)
        if used:
            kind = str(definition.get("Type", ""))
            yield Change(MODIFY, logical_id, kind, tuple(used), computed=True, nested=kind == NESTED)


def resources_holding(template: Mapping[str, Any], values: Mapping[str, Any]) -> set[str]:
    """The logical ids of the resources whose Condition holds for values (an unknown function: assumed to hold)."""
    conditions = template.get("Conditions", {})
    values = _typed(template, values)
    held = set()
    for name, resource in template.get("Resources", {}).items():
        condition = resource.get("Condition") if isinstance(resource, Mapping) else None
        if condition is None or condition_holds(conditions, condition, values) is not False:
            held.add(name)
    return held


def condition_holds(conditions: Mapping[str, Any], name: str, values: Mapping[str, Any]) -> bool | None:
    """A condition's value for values, None if it uses what this cannot evaluate."""
    try:
        return bool(evaluate(conditions[name], values, CONDITION_FUNCTIONS, conditions))
    except (KeyError, ValueError, TypeError, IndexError):
        return None


def references(definition: Any, template: Mapping[str, Any]) -> set[str]:
    """The parameters a resource definition uses: Ref, ${Name} in Fn::Sub, and through the conditions it uses."""
    conditions = template.get("Conditions", {})
    found: set[str] = set()
    seen: set[str] = set()

    def visit(key: str, value: Any) -> list[Any]:
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::Sub":
            found.update(_sub_names(str(value[0] if isinstance(value, list) else value)))
            return [value[1]] if isinstance(value, list) and len(value) > 1 else []
        name = condition_named(key, value)
        if name is not None and name in conditions and name not in seen:
            seen.add(name)
            return [value, conditions[name]]
        return [value]

    walk([definition], visit)
    return found


def _sub_names(text: str) -> set[str]:
    names = set()
    for part in text.split("${")[1:]:
        name, closed, _ = part.partition("}")
        if closed and not name.startswith("!"):
            names.add(name.split(".")[0])
    return names


def refresh_triggers(template: Mapping[str, Any]) -> dict[str, Any]:
    """What reaches the running workers: each resource whose change starts an instance refresh,
    and the part of it that does (one source for the deploy preview and docs/updates.md's table).

    A launch template: its properties (a new version). A custom resource that takes a launch
    template (its id or version): its properties but ServiceToken and ServiceTimeout (the refresh
    function starts a refresh when they change). A group with the AutoScalingInstanceRefresh
    UpdatePolicy: the REFRESH_PROPERTIES. The resources' Metadata is not there: CloudFormation
    makes no new version for it (register row 79).
    """
    resources = template.get("Resources", {})
    # The workers' launch templates: those a group launches from (not, say, Fast Launch's).
    groups = [r for r in resources.values() if r.get("Type") == "AWS::AutoScaling::AutoScalingGroup"]
    used = set().union(*(references(g.get("Properties", {}), template) for g in groups)) if groups else set()
    templates = {n for n, r in resources.items() if r.get("Type") in REFRESH_TYPES and (n in used or not groups)}
    triggers: dict[str, Any] = {}
    for name, resource in resources.items():
        kind, properties = resource.get("Type", ""), resource.get("Properties", {})
        if name in templates:
            triggers[name] = properties
        elif _custom(kind) and _uses(properties, templates):
            triggers[name] = {k: v for k, v in properties.items() if k not in CUSTOM_RESOURCE_OWN}
        elif kind == "AWS::AutoScaling::AutoScalingGroup" and "AutoScalingInstanceRefresh" in resource.get(
            "UpdatePolicy", {}
        ):
            triggers[name] = {k: properties[k] for k in REFRESH_PROPERTIES if k in properties}
    return triggers


CUSTOM_RESOURCE_OWN = ("ServiceToken", "ServiceTimeout")
"""A custom resource's properties that CloudFormation reads, not its function."""


def refresh_inputs(
    template: Mapping[str, Any], replaced: Mapping[str, set[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Each parameter whose change starts an instance refresh, and the triggers (refresh_triggers)
    it reaches: by Ref, ``${Name}`` in Fn::Sub, through the Conditions an Fn::If names, or through
    a resource it replaces, named by Ref or Fn::GetAtt (replaced: parameter -> the resources a
    change of it replaces, whose new physical id and attributes change what names them).
    """
    from winworkers.update_path import depends_on

    replaced = replaced or {}
    conditions = dict(template.get("Conditions", {}))
    # Parameters and resources, by Ref, Fn::GetAtt (a replaced resource's new attributes) and Fn::Sub.
    reached = {name: depends_on(part, conditions) for name, part in refresh_triggers(template).items()}
    inputs = {}
    for parameter in template.get("Parameters", {}):
        names = {parameter} | set(replaced.get(parameter, ()))
        hits = tuple(sorted(trigger for trigger, used in reached.items() if used & names))
        if hits:
            inputs[parameter] = hits
    return inputs


def refresh_reasons(plan: Plan, template: Mapping[str, Any]) -> list[str]:
    """Why executing the plan starts an instance refresh: a change of what refresh_triggers names
    (from the change set: the properties it lists; from the templates: the inputs it uses)."""
    resources = template.get("Resources", {})
    triggers = refresh_triggers(template)
    reasons = []
    for change in plan.changes:
        if change.kind not in (MODIFY, REPLACE) or change.logical_id not in triggers:
            continue
        if change.resource_type in REFRESH_TYPES:
            reasons.append(f"{change.logical_id} changes: a new launch template version replaces the running workers")
        elif change.resource_type == "AWS::AutoScaling::AutoScalingGroup" and _refreshes_group(
            triggers[change.logical_id], change, template
        ):
            reasons.append(f"{change.logical_id} changes where it runs: its UpdatePolicy replaces the running workers")
        elif _custom(change.resource_type) and resources.get(change.logical_id):
            reasons.append(f"{change.logical_id} changes: it starts an instance refresh")
    return reasons


# What makes the AutoScalingInstanceRefresh UpdatePolicy refresh a group:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-updatepolicy.html
REFRESH_PROPERTIES = (
    "LaunchTemplate",
    "MixedInstancesPolicy",
    "VPCZoneIdentifier",
    "AvailabilityZones",
    "AvailabilityZoneIds",
    "PlacementGroup",
)


def _refreshes_group(watched: Mapping[str, Any], change: Change, template: Mapping[str, Any]) -> bool:
    if not change.computed:
        return any(cause.split(" ")[0] in REFRESH_PROPERTIES for cause in change.causes)
    return bool(references(watched, template) & set(change.causes)) or change.causes == ("its definition",)


def _custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"


def _uses(definition: Any, names: set[str]) -> bool:
    """Whether definition names any of names by Ref or Fn::GetAtt."""
    used: list[bool] = []

    def visit(key: str, value: Any) -> list[Any]:
        if key == "Fn::GetAtt":
            target = (
                value[0]
                if isinstance(value, list) and value
                else value.split(".")[0]
                if isinstance(value, str)
                else None
            )
            used.append(target in names)
        used.append(key == "Ref" and value in names)
        return [value]

    walk([definition], visit)
    return any(used)


def _typed(template: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """values with list-typed parameters split, as Fn::Select and Fn::Join see them."""
    declared = template.get("Parameters", {})
    return {
        name: split_list(str(declared.get(name, {}).get("Type", "")), value) if isinstance(value, str) else value
        for name, value in values.items()
    }
