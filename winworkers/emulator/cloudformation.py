"""CloudFormation semantics (patches 1, 2, 4, 6, 7, 9, 12-14, 16, 18, 20-29 of winworkers.emulator):
conditions, parameters, events and their pages, rollbacks, updates in place and in dependency order, outputs, and
the invariants judging each operation.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
from collections.abc import Callable
from typing import Any

from winworkers.emulator import truth
from winworkers.emulator.common import _as_given, _moto_update, _names, _one_line, _record, _resolved
from winworkers.emulator.custom_resources import _CustomResourceFailed
from winworkers.emulator.services import _EC2_DELETERS, _Skipped
from winworkers.emulator.truth import InvariantViolation

_operations = [0]
"""Stack operations under way: the invariants judge the outermost one's end state (a nested stack's
deletion during its parent's update is not an end state)."""


_NO_ROLLBACK = (
    "; the emulator did NOT roll back: its end state is left as it is, for you to see what broke the invariant"
)


def _judged(backend: Any, stack: Any, failed: str) -> bool:
    """After the outermost operation: the invariants judge ``stack``; a violation ends it ``failed``
    (its last event naming the invariant). Whether the operation was judged sound."""
    try:
        if _operations[0] == 1 and stack is not None:
            truth.verify(backend.account_id, backend.region_name, stack)
    except InvariantViolation as violation:
        _failed(stack, violation, failed)
        return False
    return True


def _failed(stack: Any, violation: InvariantViolation, failed: str) -> None:
    # An update's UPDATE_ROLLBACK_FAILED (the status AWS gives a stack it could not bring back) names no
    # rollback that ran: the emulator does not roll back what broke an invariant, and says so.
    note = _NO_ROLLBACK if failed.startswith("UPDATE") else ""
    truth.fail(stack, InvariantViolation(violation.invariant, f"{violation.detail}{note}"), failed)


def _verified(execute_change_set: Any) -> Any:
    # 21. The invariants (winworkers.emulator.truth) judge every executed change set's end state.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        failed = "CREATE_FAILED" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_FAILED"
        _operations[0] += 1
        try:
            execute_change_set(backend, change_set_name, stack_name)
            sound = _judged(backend, change_set.stack, failed)
        except InvariantViolation as violation:
            if _operations[0] > 1:
                raise
            _failed(change_set.stack, violation, failed)
            sound = False
        finally:
            _operations[0] -= 1
        if not sound:
            change_set.execution_status = "EXECUTE_FAILED"

    return execute


def _verified_direct(operation: Any, failed: str) -> Any:
    # 21. ... and every CreateStack and UpdateStack's (without a change set: aws cloudformation
    # update-stack, or any tool that does not use change sets).
    def run(backend: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        _operations[0] += 1
        try:
            stack = operation(backend, name, *args, **kwargs)
            _judged(backend, stack, failed)
        except InvariantViolation as violation:
            stack = next((s for s in backend.stacks.values() if name in (s.name, s.stack_id)), None)
            if stack is None or _operations[0] > 1:
                raise
            _failed(stack, violation, failed)
        finally:
            _operations[0] -= 1
        return stack

    return run


def _verified_deletion(delete_stack: Any) -> Any:
    # 21. ... and every stack deletion's (once, after a nested parent's children went too).
    def delete(backend: Any, name_or_stack_id: str) -> None:
        stack = next((s for s in backend.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
        _operations[0] += 1
        try:
            delete_stack(backend, name_or_stack_id)
            if _operations[0] == 1 and stack is not None:
                truth.verify(backend.account_id, backend.region_name, stack)
        except InvariantViolation as violation:
            if stack is None or _operations[0] > 1:
                raise
            backend.deleted_stacks.pop(stack.stack_id, None)
            backend.stacks[stack.stack_id] = stack  # DELETE_FAILED: still there, as in CloudFormation
            truth.fail(stack, violation, "DELETE_FAILED")
        finally:
            _operations[0] -= 1

    return delete


def _parameters_with_defaults(_: Any) -> Any:
    # An update is "no change" when every value, defaults included, is the stack's: moto compared the
    # values given at the stack's creation (a change set never updated them), so clearing a value set
    # by an earlier update ("QueueKmsKeyArn set, then cleared") was "no changes" and the resource stayed.
    def same(stack: Any, other: dict[str, Any]) -> bool:
        declared = stack.template_dict.get("Parameters", {}) or {}
        defaults = {k: str(v["Default"]) for k, v in declared.items() if "Default" in v}
        current = {k: _as_given(v) for k, v in stack.stack_parameters.items()}
        return {**defaults, **current} == {**defaults, **{k: _as_given(v) for k, v in other.items()}}

    return same


def _nested_in_place(_: Any) -> Any:
    # AWS::CloudFormation::Stack has no create-only property (its registry schema): CloudFormation
    # updates a nested stack in place, and it keeps its id. moto deleted the child and created another.
    def update(original_resource: Any, cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        from moto.cloudformation.utils import get_stack_from_s3_url
        from moto.utilities.utils import get_partition

        properties = cloudformation_json["Properties"]
        body = get_stack_from_s3_url(
            properties["TemplateURL"], account_id=account_id, partition=get_partition(region_name)
        )
        stack_id = original_resource.stack_id
        original_resource.update(body, parameters=dict(properties.get("Parameters", {})))
        if original_resource.stack_id != stack_id:
            raise InvariantViolation("nested-stack-keeps-id", f"{original_resource.name} became {stack_id}")
        return original_resource

    return _moto_update(update)


def _with_fn_cidr(clean_json: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-cidr.html
    def clean(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            block, count, bits = (clean(arg, resources_map) for arg in resource_json["Fn::Cidr"])
            network = ipaddress.ip_network(block)
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
            return [str(subnet) for _, subnet in zip(range(int(count)), subnets, strict=False)]
        cleaned = clean_json(resource_json, resources_map)
        return [item for item in cleaned if item is not None] if isinstance(resource_json, list) else cleaned

    return clean


def _numbers_compared_as_given(parse_condition: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
    # (Number: "when you use the parameter elsewhere in your template ... the value becomes a string").
    def parse(condition: Any, resources_map: Any, condition_map: Any) -> Any:
        if isinstance(condition, dict) and list(condition) == ["Fn::Equals"]:
            from moto.cloudformation.parsing import clean_json

            left, right = (
                condition_map[v["Condition"]]
                if isinstance(v, dict) and "Condition" in v
                else clean_json(v, resources_map)
                for v in condition["Fn::Equals"]
            )
            if any(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                return _as_given(left) == _as_given(right)
        return parse_condition(condition, resources_map, condition_map)

    return parse


def _holding(resources_map: Any, template: dict[str, Any]) -> dict[str, Any]:
    """``template`` without the resources whose Condition is false (conditions loaded)."""
    conditions = resources_map.lazy_condition_map
    resources = {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }
    return {**template, "Resources": resources}


def _created_if_conditions_hold(create: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
    def run(resources_map: Any, template: dict[str, Any]) -> Any:
        return create(resources_map, _holding(resources_map, template))

    return run


def _properties_absent_as_empty(build_resource_diff: Any) -> Any:
    def run(resources_map: Any, other_template: dict[str, Any], parameters: Any = None) -> Any:
        old = resources_map._resource_json_map
        for name, resource in other_template.get("Resources", {}).items():
            if "Properties" not in resource and old.get(name, {}).get("Properties") == {}:
                resource["Properties"] = {}  # as moto's parse_resource stored it
        diff = build_resource_diff(resources_map, other_template, parameters)
        diff["Modify"] = _in_dependency_order(diff["Modify"], other_template.get("Resources", {}))
        return diff

    return run


def _in_dependency_order(names: list[str], resources: dict[str, Any]) -> list[str]:
    """names, each after those of names it refers to (Ref, Fn::GetAtt, DependsOn), as CloudFormation
    updates them: moto updated in template order, so a group took its launch template's old version."""
    wanted, ordered = set(names), list[str]()
    pending = list(names)
    while pending:
        ready = [
            n
            for n in pending
            if not (
                (_names(resources.get(n, {})) | set(_depends_on(resources.get(n, {})))) & wanted - set(ordered) - {n}
            )
        ]
        for name in ready or pending[:1]:  # a cycle: template order
            ordered.append(name)
            pending.remove(name)
    return ordered


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def _updated_if_conditions_hold(update: Any) -> Any:
    def run(resources_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
        # Evaluate the new template's conditions with the new values, then restore the
        # old state: moto's update diffs against it and reloads everything itself.
        state = ("_template", "input_parameters", "resolved_parameters", "lazy_condition_map")
        old = {name: getattr(resources_map, name, None) for name in state}
        resources_map._template = template
        if parameters:
            resources_map.input_parameters = parameters
        resources_map.resolved_parameters = {}
        resources_map.load_parameters()
        resources_map.load_conditions()
        holding = _holding(resources_map, template)
        for name, value in old.items():
            setattr(resources_map, name, value)
        return update(resources_map, holding, parameters)

    return run


def _previous_values_as_given(stack_parameters: property) -> property:
    # UsePreviousValue (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html)
    # reuses the value as it was given; moto 5.2.5 reuses its parsed form (a list for a
    # CommaDelimitedList, a number for a Number), which its own parameter loading then fails on.
    def given(stack: Any) -> dict[str, Any]:
        parsed: dict[str, Any] = stack_parameters.fget(stack) if stack_parameters.fget else {}
        return {
            name: ",".join(str(v) for v in value) if isinstance(value, list) else value if value is None else str(value)
            for name, value in parsed.items()
        }

    return property(given)


def _compared_from_s3_too(validate: Any) -> Any:
    # An update with nothing new is refused whether its template comes inline or from S3
    # (moto compares only an inline TemplateBody, so a TemplateURL update always "changed").
    def run(response: Any, incoming_params: Any, stack_body: str, old_stack: Any) -> None:
        url = response._get_param("TemplateURL")
        if not stack_body and url:
            stack_body = response._get_stack_from_s3_url(url)
        validate(response, incoming_params, stack_body, old_stack)

    return run


EVENTS_PAGE = 100
"""DescribeStackEvents' events a page (29.). AWS documents pages of up to 1 MB, not a number of events:
NextToken is given "if the output exceeds 1 MB in size" (API reference); 100 events a page is what users
report (secondary: register row 283). The watcher's reads hold for any size (tests/test_deploy_operator.py
pages by 3 as well)."""


def _events_in_pages(describe_stack_events: Any) -> Any:
    # AWS answers DescribeStackEvents in pages, newest first, with a NextToken for the rest; moto answers
    # every event the stack ever had, every time. The token is how many events are older than the page
    # that ends it: events are only ever added at the newest end, so the next page is the same whatever
    # happened since (the wording AWS gives a bad token was not measured).
    def paged(response: Any) -> Any:
        from moto.cloudformation.exceptions import ValidationError
        from moto.core.responses import ActionResult

        events = describe_stack_events(response).result["StackEvents"]
        token = response._get_param("NextToken")
        skip = 0
        if token is not None:
            if not (token.isascii() and token.isdigit()) or not 0 < int(token) < len(events):
                raise ValidationError(message=f"Invalid NextToken: {token}")
            skip = len(events) - int(token)
        page = events[skip : skip + EVENTS_PAGE]
        older = len(events) - skip - len(page)
        return ActionResult({"StackEvents": page, **({"NextToken": str(older)} if older else {})})

    return paged


def _events_serialized_once(serialize_structure: Any) -> Any:
    # With 29., each page serialized its events again through moto's generic serializer, which reads
    # every member through its attribute picker: the test loop's 708 pages took 7.7 s of CPU for the
    # same events. An event's XML is a function of the event's attributes, the serializer and the shape:
    # it is kept with the event (weakly: dropped with it, at moto's reset, which drops its tracked events;
    # the strings are the event's own, so it costs little more than their dicts) and made again whenever
    # any attribute changed (an operation's last event gets a reason after the fact, _with_outputs_and_skips).
    import weakref

    from moto.cloudformation.models import Event

    kept: weakref.WeakKeyDictionary[Any, tuple[Any, dict[str, Any]]] = weakref.WeakKeyDictionary()

    @functools.wraps(serialize_structure)  # __wrapped__: moto's own, to compare with
    def serialize(serializer: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if not key or type(value) is not Event:
            serialize_structure(serializer, serialized, value, shape, key)
            return
        state = (type(serializer), shape.name, key, tuple(vars(value).items()))
        if value not in kept or kept[value][0] != state:
            fresh: dict[str, Any] = {}
            serialize_structure(serializer, fresh, value, shape, key)
            kept[value] = state, fresh
        serialized.update(kept[value][1])

    return serialize


def _defaults_kept_as_values(load_parameters: Any) -> Any:
    # CloudFormation keeps every parameter's value with the stack, a default included, so an
    # update that passes the same value (or UsePreviousValue) changes nothing. moto keeps only
    # the values given, and takes a default passed later as a change of every resource using it.
    def load(resources_map: Any) -> None:
        load_parameters(resources_map)
        for name, spec in resources_map._template.get("Parameters", {}).items():
            if name not in resources_map.input_parameters and "Default" in spec:
                resources_map.input_parameters[name] = str(spec["Default"])

    return load


def _remembering_stack(create_resource_map: Any) -> Any:
    def create(stack: Any) -> Any:
        resource_map = create_resource_map(stack)
        resource_map.winworkers_stack = stack
        return resource_map

    return create


def _creation_events(parse_and_create_resource: Any) -> Any:
    def create(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        kind = resource_json.get("Type", "")
        try:
            resource = parse_and_create_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        except Exception as error:
            _record(resources_map, logical_id, kind, "", "CREATE_IN_PROGRESS")
            _record(resources_map, logical_id, kind, "", "CREATE_FAILED", _one_line(error))
            raise
        if resource is not None:  # None: its Condition is false, nothing was created
            truth.remember(resources_map, logical_id, kind, resource)
            with contextlib.suppress(AttributeError):  # what an update compares with (create-only properties)
                resource.winworkers_applied = _resolved(resources_map, resource_json)
            physical = getattr(resource, "physical_resource_id", "")
            _record(resources_map, logical_id, kind, physical, "CREATE_IN_PROGRESS")
            _record(resources_map, logical_id, kind, physical, "CREATE_COMPLETE", _note(resource))
        return resource

    return create


def _update_events(parse_and_update_resource: Any) -> Any:
    def update(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        # moto retries failed updates (dependency order), so only successes are recorded.
        kind = resource_json.get("Type", "")
        before = resources_map._parsed_resources.get(logical_id)
        was = getattr(before, "physical_resource_id", None)
        resource = parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is not None and resource is not before:  # a new object: the stack's from now on
            truth.remember(resources_map, logical_id, kind, resource)
        physical = getattr(resource, "physical_resource_id", "")
        applied = _resolved(resources_map, resource_json)
        judged = truth.update_note(kind, getattr(before, "winworkers_applied", None), applied, physical != was)
        if truth.create_only_changed(kind, getattr(before, "winworkers_applied", None), applied):
            with contextlib.suppress(AttributeError):  # CloudFormation replaces it: so what names it (28.)
                resources_map.winworkers_replacing.add(logical_id)
        with contextlib.suppress(AttributeError):
            resource.winworkers_applied = applied
        note = "; ".join(n for n in (judged, _note(resource)) if n)
        _record(resources_map, logical_id, kind, physical, "UPDATE_IN_PROGRESS")
        _record(resources_map, logical_id, kind, physical, "UPDATE_COMPLETE", note)
        return resource

    return update


def _replacements_cascading(update: Any) -> Any:
    # 28. A replaced resource has a new physical id, so CloudFormation replaces every resource naming it
    # (Ref, Fn::GetAtt) in a create-only property, and so on (a new VPC: its security groups, endpoints,
    # route table, flow log). moto keeps those that still resolve alike: each event says so.
    def run(resources_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
        before = {name: getattr(r, "physical_resource_id", None) for name, r in truth.listed_in(resources_map).items()}
        resources_map.winworkers_replacing = set()
        try:
            return update(resources_map, template, parameters)
        finally:
            replacing = resources_map.__dict__.pop("winworkers_replacing", set())
            if replacing:
                _say_cascaded(resources_map, replacing, before)

    return run


def _create_only_names(resources_map: Any) -> dict[str, dict[str, set[str]]]:
    """{resource: {create-only property: the resources and parameters its value names}}."""
    from winworkers.update_path import at_pointer, depends_on

    conditions = resources_map._template.get("Conditions", {}) or {}
    named: dict[str, dict[str, set[str]]] = {}
    for name, resource_json in resources_map._resource_json_map.items():
        properties = resource_json.get("Properties") or {}
        for pointer in truth.create_only(resource_json.get("Type", "")) or []:
            value = at_pointer(properties, pointer)
            if value is not None:
                named.setdefault(name, {})[pointer.removeprefix("/properties/")] = depends_on(value, conditions)
    return named


def _say_cascaded(resources_map: Any, replacing: set[str], before: dict[str, Any]) -> None:
    named, cascaded = _create_only_names(resources_map), dict[str, str]()
    while True:
        more = {
            name: f"create-only {prop} names {', '.join(sorted(hit))}, which it replaces"
            for name, by_property in named.items()
            if name not in replacing and name not in cascaded
            for prop, depends in by_property.items()
            if (hit := depends & (replacing | set(cascaded)))
        }
        if not more:
            break
        cascaded.update(more)
    for name, why in sorted(cascaded.items()):
        resource = resources_map._parsed_resources.get(name)
        physical = getattr(resource, "physical_resource_id", None)
        if name in before and physical == before[name]:  # kept: moto did not replace it
            kind = resources_map._resource_json_map[name].get("Type", "")
            note = f"NOT MODELLED by the emulator: CloudFormation replaces it ({why}); moto kept it"
            _record(resources_map, name, kind, physical, "UPDATE_IN_PROGRESS")
            _record(resources_map, name, kind, physical, "UPDATE_COMPLETE", note)


def _deletion_events(delete_resource: Any) -> Any:
    def delete(resources_map: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> Any:
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        physical = getattr(parsed_resource, "physical_resource_id", "")
        deleter = _EC2_DELETERS.get(resource_json.get("Type", ""))
        if deleter is not None:
            from moto.ec2.models import ec2_backends

            result = deleter(ec2_backends[resources_map._account_id][resources_map._region_name], parsed_resource)
        else:
            result = delete_resource(resources_map, parsed_resource, resource_json)
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_IN_PROGRESS")
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_COMPLETE")
        with contextlib.suppress(AttributeError):  # gone: its logical id, added again, is made anew (27.)
            parsed_resource.winworkers_removed = True
        return result

    return delete


def _removed_made_anew(getitem: Any) -> Any:
    # 27. https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
    # A resource an update removed (its Condition false, or gone from the template) and a later update
    # adds again is created anew. moto's update deletes it but keeps the object in its ResourceMap, and
    # handed that back: the stack listed a warm pool, a policy, a child stack that no longer existed.
    def get(resources_map: Any, key: str) -> Any:
        parsed = resources_map._parsed_resources
        if getattr(parsed.get(key), "winworkers_removed", False):
            del parsed[key]
        return getitem(resources_map, key)

    return get


def _rolling_back(execute_change_set: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html
    # A failed creation is rolled back and the stack left in ROLLBACK_COMPLETE, which can only be deleted.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        if change_set.change_set_type != "CREATE":
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        try:
            execute_change_set(backend, change_set_name, stack_name)
        except InvariantViolation:
            raise
        except Exception:
            stack = change_set.stack
            failed = [e.logical_resource_id for e in stack.events if e.resource_status == "CREATE_FAILED"]
            reason = f"The following resource(s) failed to create: [{', '.join(failed)}]. Rollback requested by user."
            _rolled_back(change_set, "ROLLBACK", reason, stack.resource_map.delete)
        return None

    return execute


def _rolled_back(change_set: Any, rollback: str, reason: str, undo: Callable[[], Any]) -> None:
    """A failed operation's rollback as CloudFormation reports it: the stack's <rollback>_IN_PROGRESS (with
    the reason), undo (what moto cannot undo is left: AWS would retry), <rollback>_COMPLETE; the change set
    EXECUTE_FAILED."""
    stack = change_set.stack
    stack._add_stack_event(f"{rollback}_IN_PROGRESS", resource_status_reason=reason)
    stack.status = f"{rollback}_IN_PROGRESS"
    with contextlib.suppress(Exception):
        undo()
    stack._add_stack_event(f"{rollback}_COMPLETE")
    stack.status = f"{rollback}_COMPLETE"
    change_set.execution_status = "EXECUTE_FAILED"


def _in_progress_while_applied(apply: Any) -> Any:
    def run(change_set: Any) -> None:
        stack, before = change_set.stack, change_set.stack.status
        stack.status = f"{change_set.change_set_type}_IN_PROGRESS"
        try:
            apply(change_set)
        except Exception:
            stack.status = before
            raise

    return run


def _stale(resources_map: Any, name: str, resource_json: dict[str, Any], before: Any, updated: bool) -> bool:
    """Whether the resource's properties, resolved now, differ from those it was last given: since
    the update began, or (``updated``: moto's diff updated it) since that update, when a resource
    it names changed after it (a group updated before the launch template whose version it takes)."""
    resolved = _resolved(resources_map, resource_json)
    if resolved is None:
        return False
    if updated:  # a custom resource is not asked twice (its function would act twice): NOT modelled
        if str(resource_json.get("Type", "")).startswith("Custom::"):
            return False
        applied = getattr(resources_map._parsed_resources[name], "winworkers_applied", None)
        return applied is not None and resolved != applied
    return before is not None and resolved != before


def _following_changed_references(update: Any) -> Any:
    # CloudFormation updates a resource whose properties change once resolved, e.g. a
    # Fn::GetAtt [LaunchTemplate, LatestVersionNumber] after the launch template changed;
    # moto only updates the resources whose own JSON, or parameters they name, changed.
    def run(resources_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
        from moto.cloudformation import parsing

        old = dict(resources_map._resource_json_map)
        before = {name: _resolved(resources_map, old[name]) for name in old}
        handled = set(resources_map.build_resource_diff(template, parameters)["Modify"])
        result = update(resources_map, template, parameters)
        failed: set[str] = set()
        for _ in range(10):  # chains: the launch template, then the group, then what names the group
            changed = {  # in the template as applied: the resources whose Condition holds
                name: resource_json
                for name, resource_json in resources_map._resource_json_map.items()
                if name in old
                and name not in failed
                and name in resources_map._parsed_resources
                and _stale(resources_map, name, resource_json, before[name], name in handled)
            }
            # In dependency order, as CloudFormation: none before a resource it names that changes too.
            ready = [name for name, resource_json in changed.items() if not _names(resource_json) & set(changed)]
            for name in ready or list(changed):
                handled.add(name)
                try:
                    resources_map._parsed_resources[name] = parsing.parse_and_update_resource(
                        name, changed[name], resources_map, resources_map._account_id, resources_map._region_name
                    )
                except (_CustomResourceFailed, InvariantViolation):
                    raise
                except Exception:  # what moto cannot update it would not have tried to: leave it as it is
                    failed.add(name)
            if not changed:
                break
        return result

    return run


def _update_rolling_back(execute_change_set: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-rollback-triggers.html
    # A failed update: the resource's UPDATE_FAILED, then the previous template and
    # parameters applied again while the stack is UPDATE_ROLLBACK_IN_PROGRESS.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        stack = change_set.stack
        if change_set.change_set_type != "UPDATE":
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        template, parameters = stack.template, dict(stack.resource_map.input_parameters)
        try:
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        except InvariantViolation:
            raise
        except Exception as error:
            logical = error.logical_id if isinstance(error, _CustomResourceFailed) else ""
            if logical:
                kind = stack.resource_map._resource_json_map[logical].get("Type", "")
                _record(stack.resource_map, logical, kind, "", "UPDATE_FAILED", _one_line(error))
            reason = f"The following resource(s) failed to update: [{logical}]." if logical else _one_line(error)
            stack.template = template
            stack._parse_template()
            _rolled_back(
                change_set,
                "UPDATE_ROLLBACK",
                reason,
                lambda: stack.resource_map.update(stack.template_dict, parameters),
            )
        return None

    return execute


def _note(resource: Any) -> str:
    """What an event about resource must say beyond its status: an emulator gap, or
    the resources a nested stack did not create."""
    note = getattr(resource, "winworkers_note", "")
    if not note and hasattr(resource, "resource_map"):  # a nested stack
        note = _skipped_summary(resource)
    return str(note)


def _skipped_summary(stack: Any) -> str:
    parsed = getattr(stack.resource_map, "_parsed_resources", {})
    skipped = [f"{r.logical_resource_id} ({r.cf_resource_type})" for r in parsed.values() if isinstance(r, _Skipped)]
    if not skipped:
        return ""
    from winworkers.deploy.base import counted

    return f"the emulator did NOT create {counted(len(skipped), 'resource')}: {', '.join(sorted(skipped))}"


def _kept_when_not_updatable(parse_and_update_resource: Any) -> Any:
    # moto returns None for a type without an update handler and stores that None as the resource.
    def update(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        resource = parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is None and logical_id in resources_map._parsed_resources:
            resource = resources_map._parsed_resources[logical_id]
            kind = resource_json.get("Type", "")
            resource.winworkers_note = f"NOT UPDATED by the emulator: moto cannot update {kind}; kept as it was"
        return resource

    return update


def _retained(resource_json: dict[str, Any]) -> bool:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
    return resource_json.get("DeletionPolicy") == "Retain"


def _retaining(delete_resource: Any) -> Any:
    # An update that removes a resource deletes it unless it is retained (moto deletes it).
    def delete(resources_map: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> Any:
        if not _retained(resource_json):
            return delete_resource(resources_map, parsed_resource, resource_json)
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        physical = getattr(parsed_resource, "physical_resource_id", "")
        truth.retain(resource_json.get("Type", ""), str(physical))
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_SKIPPED")
        with contextlib.suppress(AttributeError):  # out of the stack: added again, it is made anew (27.)
            parsed_resource.winworkers_removed = True
        return None

    return delete


def _recording_retained(delete: Any) -> Any:
    # moto's stack deletion already keeps retained resources, without an event.
    def run(resources_map: Any) -> Any:
        for logical_id, resource_json in resources_map._resource_json_map.items():
            resource = resources_map._parsed_resources.get(logical_id)
            if _retained(resource_json) and resource is not None and not isinstance(resource, str):
                physical = getattr(resource, "physical_resource_id", "")
                truth.retain(resource_json.get("Type", ""), str(physical))
                _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_SKIPPED")
        return delete(resources_map)

    return run


def _with_outputs_and_skips(execute_change_set: Any) -> Any:
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        execute_change_set(backend, change_set_name, stack_name)
        stack = backend.describe_change_set(change_set_name).stack
        if stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/outputs-section-structure.html
            stack._parse_template()
            stack.output_map = stack._create_output_map()
            summary = _skipped_summary(stack)
            if summary and stack.events:
                stack.events[-1].resource_status_reason = summary

    return execute


def _outputs_evaluated_in_the_call(describe_stacks: Any) -> Any:
    # The Outputs are evaluated while DescribeStacks runs (moto evaluates them while it serializes its
    # answer, where an error is a 500 without its message): a refusal is the call's own error (22.).
    def describe(backend: Any, name_or_stack_id: str) -> Any:
        from moto.cloudformation.exceptions import ValidationError

        stacks = describe_stacks(backend, name_or_stack_id)
        for stack in stacks:
            try:
                _ = stack.outputs
            except ValidationError:  # an invariant's refusal (22.)
                raise
            except Exception:  # omitted from the answer, as moto's serializer omits them
                continue
        return stacks

    return describe
