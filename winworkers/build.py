"""Assembling the feature: into its own template, into a parent, or as a nested stack."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from troposphere import GetAtt, Join, Output, Parameter, Ref, Template, encode_to_dict
from troposphere.autoscaling import AutoScalingGroup
from troposphere.awslambda import Function
from troposphere.cloudformation import Stack, WaitConditionHandle
from troposphere.ec2 import LaunchTemplate, SecurityGroup
from troposphere.iam import Role

from winworkers import iam, wiring
from winworkers._version import __version__
from winworkers.bootstrap import worker_settings
from winworkers.compute import add_fleet
from winworkers.config import WorkersConfig
from winworkers.diagnostics import add_boot_evidence
from winworkers.image import add_baked_image, add_build_role
from winworkers.jobs import add_dashboard, add_queue_wait_alarm
from winworkers.network import add_network
from winworkers.observability import WorkerLogs, add_alarms, add_worker_logs, grant_write
from winworkers.parameters import (
    INTERFACE,
    SWITCH,
    Group,
    Params,
    Switch,
    add_parameters,
    console_interface,
    enabled_condition,
    group_labels,
    param_name,
    parameter_specs,
)
from winworkers.refresh import add_refresh
from winworkers.rules import condition_named, is_list_type, walk
from winworkers.wake import add_wake, add_wake_errors_alarm

DESCRIPTION = "Windows Workers (winworkers): an isolated, self-patching Windows fleet nobody can log in to"
METADATA_KEY = "winworkers"
"""The key of the fingerprint Metadata, in the child template and on the parent's stack resource."""
STANDING = "Standing"
"""The standalone template's one resource outside the switch (``standing_resource``)."""


@dataclass(frozen=True)
class Feature:
    """Handles to what add_to created, for the parent to reference.

    Every resource here exists only when the feature is enabled: reference them
    from the parent under the enabled condition (Fn::If or Condition).

    Attributes:
        params: the feature's parameters and conditions in the parent.
        group, launch_template, instance_role, worker_security_group,
        refresh_function: the troposphere resources.
        log_groups: the worker and host log groups (.worker, .host).
        wake_function: the function the platform invokes right after it enqueues (winworkers.wake).
        enabled: the name of the condition that is true when the feature is on.
    """

    params: Params
    group: AutoScalingGroup
    launch_template: LaunchTemplate
    instance_role: Role
    worker_security_group: SecurityGroup
    log_groups: WorkerLogs
    refresh_function: Function
    wake_function: Function

    @property
    def enabled(self) -> str:
        """The name of the condition that is true when the feature is on."""
        return self.params.enabled


def add_to(
    template: Template,
    config: WorkersConfig | None = None,
    *,
    wired: dict[str, Any] | None = None,
    switch: wiring.SwitchArg = SWITCH,
) -> Feature:
    """Add the whole feature to template, every resource under its switch.

    switch is the parent's: the name of a parameter (the feature is on while it
    equals "true") or of a condition, or a troposphere Parameter or Condition.
    The default, EnableWinTaskScriptService, is reused when the parent has it and
    declared when it has not; any other name must exist in the parent. A switch
    that can never be on raises ValueError. Two prefixes may each have their own.
    All other names carry config.prefix; a clash raises ValueError and leaves the
    parent untouched (the feature is built aside, then merged). wired feeds
    platform inputs (winworkers.parameters.WIRABLE) from the parent's own
    resources instead of parameters, e.g. {"WorkQueueArn": GetAtt(queue, "Arn"),
    "DataBucket": Ref(bucket)}; a wiring mistake raises ValueError.
    """
    return _add(template, config or WorkersConfig(), dict(wired or {}), switch, embedded=True)


def _add(
    template: Template, config: WorkersConfig, wired: dict[str, Any], switch: wiring.SwitchArg, *, embedded: bool
) -> Feature:
    """add_to's work; embedded is False for build_template's standalone stack, whose one fleet's
    console groups keep Group's plain labels whatever its prefix."""
    resolved = _check_parent(template, config, wired, switch)
    scratch = _scratch_for(template, switch, resolved)
    feature = _build(scratch, config, wired, resolved)
    _merge(scratch, template, config, resolved, labels=group_labels(config, embedded=embedded))
    return feature


def _build(template: Template, config: WorkersConfig, wired: dict[str, Any] | None, switch: Switch) -> Feature:
    p = add_parameters(template, config, wired, switch)
    logs = add_worker_logs(template, p)
    statements = [
        *iam.data_bucket_statements(p),
        *iam.queue_statements(p),
        *iam.stack_signal_statements(),
        *iam.lifecycle_statements(p),
        *iam.metrics_statements(p),
        grant_write(logs.groups),
    ]
    role, profile = iam.add_instance_profile(template, p, statements)
    build_access, build_profile = add_build_role(template, p)
    network = add_network(template, p, role, statements, build_access)
    baked = add_baked_image(template, p, network, build_access, build_profile, worker_settings(p))
    fleet = add_fleet(template, p, network, role, profile, logs, baked.parameter, baked.first_image)
    refresh = add_refresh(template, p, fleet)
    add_boot_evidence(template, p, fleet.group, logs, refresh.dead_letters)
    wake = add_wake(template, p, logs)
    add_dashboard(template, p, wake.function)
    if config.include_alarms:
        add_alarms(template, p, Ref(fleet.group), refresh.function, refresh.refresh_failed_rule)
        add_queue_wait_alarm(template, p)
        add_wake_errors_alarm(template, p, wake.function)
    _add_outputs(template, p, fleet.group, role, logs, refresh.function)
    _condition_everything(template, p)
    return Feature(
        params=p,
        group=fleet.group,
        launch_template=fleet.launch_template,
        instance_role=role,
        worker_security_group=network.worker_security_group,
        log_groups=logs,
        refresh_function=refresh.function,
        wake_function=wake.function,
    )


def _check_parent(template: Template, config: WorkersConfig, wired: dict[str, Any], switch: wiring.SwitchArg) -> Switch:
    """Wiring mistakes that CloudFormation would report late, or never; the parent's switch."""
    resolved = wiring.resolve_switch(template, switch)
    wiring.check_wired(template, config, wired)
    return resolved


def _scratch_for(parent: Template, given: wiring.SwitchArg, switch: Switch) -> Template:
    """An empty template to build the feature in, holding the switch parameter: the parent's
    own if it has it, else a Parameter handle given as the switch (merged into the parent)."""
    scratch = Template()
    name = switch.parameter
    if name is not None and name in parent.parameters:
        scratch.add_parameter(parent.parameters[name])
    elif isinstance(given, Parameter):
        scratch.add_parameter(given)
    return scratch


_SECTIONS = {
    "parameters": "parameter",
    "conditions": "condition",
    "rules": "rule",
    "resources": "resource",
    "outputs": "output",
}


def _merge(
    feature: Template,
    parent: Template,
    config: WorkersConfig,
    switch: Switch,
    *,
    labels: Mapping[Group, str],
    template_url: str | None = None,
) -> None:
    """Copy every section of feature into parent, or nothing if any name clashes.

    Only the switch is shared: one config embeds once per parent (add_to and
    nested_stack with the same prefix would be two fleets fighting over names).
    The feature's console groups and labels join the parent's (_merge_interface), with
    template_url (a nested stack's URL parameter) first in its platform group.
    """
    clashes = sorted(
        f"{kind} {name}"
        for section, kind in _SECTIONS.items()
        for name in set(getattr(feature, section)) & set(getattr(parent, section))
        if (section, name) != ("parameters", switch.parameter)
    )
    if clashes:
        listed = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise ValueError(
            f"the parent already has {listed}; the feature adds those names with "
            f"WorkersConfig.prefix={config.prefix!r}: choose another prefix (or rename the parent's)"
        )
    for section in _SECTIONS:
        target = getattr(parent, section)
        for name, value in getattr(feature, section).items():
            target.setdefault(name, value)
    _merge_interface(parent, console_interface(config, switch, feature.parameters, labels, template_url))


def _merge_interface(parent: Template, ours: Mapping[str, Any]) -> None:
    """Add the feature's parameter groups and labels to the parent's AWS::CloudFormation::Interface,
    keeping the parent's own: a parameter the parent already groups stays where it is (a
    parameter may be in one group only), a group with the same label as one of the parent's
    joins it, the others follow the parent's, and the parent's labels win. Fleets do not share
    groups: a fleet with a prefix of its own labels its groups with it (group_label)."""
    theirs: dict[str, Any] = encode_to_dict(parent.metadata.get(INTERFACE, {}))
    groups = [{**g, "Parameters": list(g.get("Parameters", []))} for g in theirs.get("ParameterGroups", [])]
    grouped = {name for g in groups for name in g["Parameters"]}
    for group in ours["ParameterGroups"]:
        names = [name for name in group["Parameters"] if name not in grouped]
        same = next((g for g in groups if g.get("Label") == group["Label"]), None)
        if same is not None:
            same["Parameters"] += names
        elif names:
            groups.append({**group, "Parameters": names})
    labels = {**ours["ParameterLabels"], **theirs.get("ParameterLabels", {})}
    parent.metadata[INTERFACE] = {**theirs, "ParameterGroups": groups, "ParameterLabels": labels}


def build_template(config: WorkersConfig | None = None) -> Template:
    """The feature's standalone template, also the child of nested_stack (see child_template).

    Its Metadata records the winworkers version and a fingerprint of the
    template itself, which check_pair compares with a parent's.
    """
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    config = config or WorkersConfig()
    _add(template, config, {}, SWITCH, embedded=False)
    standing_resource(template, config)
    # Beside the console's AWS::CloudFormation::Interface that add_to put there (which the fingerprint covers).
    template.metadata[METADATA_KEY] = {"fingerprint": fingerprint(template.to_dict()), "version": __version__}
    return template


def standing_resource(template: Template, config: WorkersConfig) -> WaitConditionHandle:
    """The standalone template's one unconditioned resource, so that a stack with the switch
    off still has one (register row 203): CloudFormation's own docs do not say that it accepts
    a stack whose conditions leave no resource. A WaitConditionHandle has no properties, makes
    nothing outside CloudFormation (its Ref is a presigned URL nobody is given) and costs
    nothing. Not in add_to: a parent has resources of its own; a nested child is created only
    while the switch is on, and carries it like any standalone stack."""
    return template.add_resource(WaitConditionHandle(config.logical_id(STANDING)))


def child_template(config: WorkersConfig | None = None) -> Template:
    """The child template nested_stack(parent, url, config) expects at url.

    It is build_template(config): upload exactly this (winworkers build
    --config FILE writes it) and check the pair with check_pair.
    """
    return build_template(config)


def built_children(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The child template of each nested winworkers stack of template, by logical id, built from the config
    its Metadata records (nested_stack records it); a config this version cannot build is left out (the
    child is checked when fetched). What usage.parameter_kinds reads a nested child's needs from: deploy
    and constraints.check_inputs both build them here."""
    children: dict[str, Mapping[str, Any]] = {}
    for name, resource in template.get("Resources", {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::CloudFormation::Stack":
            continue
        config = _recorded(resource).get("config")
        if not isinstance(config, Mapping):
            continue
        try:
            children[name] = build_template(WorkersConfig.from_mapping(config)).to_dict()
        except ValueError:
            continue
    return children


def fingerprint(template: Mapping[str, Any]) -> str:
    """A short hash of a template's content, without its own winworkers Metadata.

    Equal fingerprints mean the same child: same config, same winworkers output.
    """
    body = dict(template)
    metadata = {k: v for k, v in body.pop("Metadata", {}).items() if k != METADATA_KEY}
    if metadata:
        body["Metadata"] = metadata
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class NestedFeature:
    """What nested_stack added to the parent, and the child it needs at its TemplateURL.

    Attributes:
        stack: the AWS::CloudFormation::Stack resource, under the enabled condition.
        child: the child template to upload (child_template(config)).
        config: the WorkersConfig both were built from.
        switch: the parent's switch the stack is conditioned on.
        enabled: the name of the condition that is true when the feature is on.
        fingerprint: the child's fingerprint, also in the stack's Metadata (see check_pair).
        output(name): a GetAtt of one of the child's outputs.
    """

    stack: Stack
    child: Template
    config: WorkersConfig
    switch: Switch = field(default_factory=Switch)

    @property
    def enabled(self) -> str:
        """The name of the condition that is true when the feature is on: the parent's own, for
        a condition switch."""
        return self.switch.name if self.switch.is_condition else enabled_condition(self.config)

    @property
    def fingerprint(self) -> str:
        """The child's fingerprint, also in the stack's Metadata (see check_pair)."""
        return str(self.child.metadata[METADATA_KEY]["fingerprint"])

    def output(self, name: str) -> GetAtt:
        """A GetAtt of one of the child's outputs, for the parent to reference under the enabled
        condition. name is the output as the child names it (docs/embedding.md's outputs table, e.g.
        "WinGroupName") or without the prefix ("GroupName"). An unknown name raises ValueError
        listing the outputs: CloudFormation would fail only once the child exists."""
        outputs = list(self.child.outputs)
        for candidate in (name, self.config.logical_id(name)):
            if candidate in outputs:
                return GetAtt(self.stack, f"Outputs.{candidate}")
        raise ValueError(f"the child has no output {name!r}: its outputs are {outputs}")


NESTED_TIMEOUT_MINUTES = 240
"""nested_stack's default TimeoutInMinutes: with ImageSource=baked the group waits for the first image
(a Windows build, about 30 to 60 minutes, not measured; its test phase, TimeoutMinutes 60) and then its
own signals (ResourceSignal, 45 minutes): 90 was sized for the network and the signals alone. In
aws-published mode a failure still ends at the group's signal timeout; only a hang waits longer."""


def nested_stack(
    template: Template,
    template_url: Any,
    config: WorkersConfig | None = None,
    *,
    wired: dict[str, Any] | None = None,
    timeout_minutes: int = NESTED_TIMEOUT_MINUTES,
    switch: wiring.SwitchArg = SWITCH,
) -> NestedFeature:
    """Add the feature to a parent as an AWS::CloudFormation::Stack.

    template_url is where child_template(config) was uploaded: an https://
    URL, or an intrinsic such as Ref(parameter). The parent gets the feature's
    parameters (reusing its switch) and its Rules, and passes the parameters
    through; wired inputs are passed from the parent's values instead (see
    add_to). The stack exists only while the switch is on (switch: as in
    add_to). The child is the same whatever the parent's switch: it gets
    EnableWinTaskScriptService from the parent's switch parameter, or "true"
    for a condition switch. The returned NestedFeature holds the stack, the
    child to upload, and its outputs.
    """
    config = config or WorkersConfig()
    wired = dict(wired or {})
    if not 1 <= timeout_minutes <= 43200:
        raise ValueError(f"timeout_minutes={timeout_minutes!r} is not allowed: 1 to 43200")
    wiring.check_template_url(template_url)
    resolved = _check_parent(template, config, wired, switch)
    child = child_template(config)
    scratch = _scratch_for(template, switch, resolved)
    # The parent declares the parameters and the Rules too: it checks inputs before it creates anything.
    p = add_parameters(scratch, config, wired, resolved)
    stack = scratch.add_resource(
        Stack(
            config.logical_id("Stack"),
            TemplateURL=template_url,
            Parameters=_pass_through(config, wired, resolved),
            TimeoutInMinutes=timeout_minutes,
            Condition=p.enabled,
            Metadata={METADATA_KEY: {**child.metadata[METADATA_KEY], "config": config.to_mapping()}},
            # Turning the switch off removes the feature; its log groups retain themselves.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    _drop_unused_conditions(scratch)
    url = _url_parameter(template, template_url)
    _merge(scratch, template, config, resolved, labels=group_labels(config), template_url=url)
    return NestedFeature(stack=stack, child=child, config=config, switch=resolved)


def _url_parameter(template: Template, template_url: Any) -> str | None:
    """The parent's parameter that template_url is a Ref to, if it is one: the console groups and
    labels it with the feature's (it has no default: the operator must give it)."""
    encoded = encode_to_dict(template_url)
    name = encoded.get("Ref") if isinstance(encoded, dict) and len(encoded) == 1 else None
    return name if isinstance(name, str) and name in template.parameters else None


def _pass_through(config: WorkersConfig, wired: dict[str, Any], switch: Switch) -> dict[str, Any]:
    """The child's parameters, from the parent's parameters or wired values.

    A nested stack's Parameters must be strings: CloudFormation refuses a list
    there, so a list-typed parameter is joined back into its comma-delimited
    form (AWS knowledge center, cloudformation-parameters-nested-stacks). The
    child's switch is the parent's switch parameter, or "true" for a condition
    switch (the stack exists only while it is true).
    """
    passed: dict[str, Any] = {}
    for spec in parameter_specs(config):
        name = param_name(config, spec.name)
        if spec.name == SWITCH:
            passed[name] = "true" if switch.parameter is None else Ref(switch.parameter)
        elif spec.name in wired:
            passed[name] = wired[spec.name]
        elif is_list_type(spec.type):
            passed[name] = Join(",", Ref(name))
        else:
            passed[name] = Ref(name)
    return passed


def _drop_unused_conditions(template: Template) -> None:
    """Keep only the conditions the template's resources and outputs use (and those they use):
    cfn-lint (W8001) flags the others, and a parent holding just the stack needs only one."""
    used: set[str] = set()

    def visit(key: str, value: Any) -> list[Any]:
        name = condition_named(key, value)
        if name is None or name in used or name not in template.conditions:
            return [value]
        used.add(name)
        return [value, encode_to_dict(template.conditions[name])]

    walk([encode_to_dict(item) for item in [*template.resources.values(), *template.outputs.values()]], visit)
    for name in set(template.conditions) - used:
        del template.conditions[name]


def check_pair(parent: Template | Mapping[str, Any], child: Template | Mapping[str, Any], *, stack: str = "") -> None:
    """Raise ValueError unless child is the template parent's nested feature stack expects.

    parent and child are Templates or their parsed JSON. stack names the
    parent's AWS::CloudFormation::Stack when it nests more than one feature.
    Also refuses a child edited after it was built (its content no longer
    matches its own fingerprint).
    """
    parent_data = parent.to_dict() if isinstance(parent, Template) else parent
    child_data = child.to_dict() if isinstance(child, Template) else child
    for what, data in (("parent", parent_data), ("child", child_data)):
        if not isinstance(data, Mapping) or not isinstance(data.get("Resources", {}), Mapping):
            raise ValueError(f"the {what} is not a CloudFormation template (a JSON object with Resources)")
    ours = _recorded(child_data)
    if "fingerprint" not in ours:
        raise ValueError("the child has no winworkers fingerprint in its Metadata: build it with child_template")
    if ours["fingerprint"] != fingerprint(child_data):
        raise ValueError(
            f"the child's content does not match its fingerprint {ours['fingerprint']}: it was changed after "
            "it was built; rebuild it with child_template (winworkers build --config FILE)"
        )
    stacks = {
        name: _recorded(resource)
        for name, resource in parent_data.get("Resources", {}).items()
        if isinstance(resource, Mapping)
        and resource.get("Type") == "AWS::CloudFormation::Stack"
        and _recorded(resource)
    }
    if stack:
        if stack not in stacks:
            raise ValueError(f"the parent has no winworkers stack {stack!r}: it has {sorted(stacks)}")
    elif len(stacks) == 1:
        (stack,) = stacks
    elif not stacks:
        raise ValueError("the parent nests no winworkers stack (no AWS::CloudFormation::Stack built by nested_stack)")
    else:
        raise ValueError(f"the parent has winworkers stacks {sorted(stacks)}: name one with stack=")
    theirs = stacks[stack]
    if theirs.get("fingerprint") != ours["fingerprint"]:
        raise ValueError(
            f"the parent's {stack} expects the child with fingerprint {theirs.get('fingerprint')} "
            f"(winworkers {theirs.get('version')}, {_differences(theirs.get('config', {}))}), "
            f"but the child's is {ours['fingerprint']} (winworkers {ours.get('version')}): build both from the same "
            "config and winworkers version (winworkers build --config FILE) and upload that child"
        )


def _recorded(holder: Mapping[str, Any]) -> Mapping[str, Any]:
    """What winworkers recorded in a template's or a resource's Metadata ({} if nothing, or not a mapping)."""
    metadata = holder.get("Metadata")
    recorded = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    return recorded if isinstance(recorded, Mapping) else {}


def _differences(config: Mapping[str, Any]) -> str:
    """A recorded config, as the fields that differ from the defaults."""
    default = WorkersConfig().to_mapping()
    changed = {k: v for k, v in config.items() if default.get(k) != v}
    return f"config {json.dumps(changed, sort_keys=True)}" if changed else "the default config"


def _condition_everything(template: Template, p: Params) -> None:
    """One pass over everything the feature built: the switch governs it all.

    Resources that already carry one of the feature's conditions keep it; each of
    those conditions is an And with the switch (see parameters._add_conditions).
    """
    for item in [*template.resources.values(), *template.outputs.values()]:
        if "Condition" not in item.resource:
            item.Condition = p.enabled


def _add_outputs(
    template: Template, p: Params, group: AutoScalingGroup, role: Role, logs: WorkerLogs, function: Function
) -> None:
    # Descriptions are short: the feature's template is held to templates.FEATURE_BUDGET.
    outputs = {
        "GroupName": (Ref(group), "Auto Scaling group name"),
        "InstanceRoleArn": (GetAtt(role, "Arn"), "Workers' role ARN"),
        "WorkerLogGroup": (Ref(logs.worker), "Worker service log group"),
        "HostLogGroup": (Ref(logs.host), "Agent and event log group"),
        "RefreshFunctionName": (Ref(function), "AMI refresh Lambda name"),
    }
    for name, (value, description) in outputs.items():
        template.add_output(Output(p.config.logical_id(name), Value=value, Description=description))
