"""Assembling the feature: into its own template, into a parent, or as a nested stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Output, Ref, Template, encode_to_dict
from troposphere.autoscaling import AutoScalingGroup
from troposphere.awslambda import Function
from troposphere.cloudformation import Stack
from troposphere.ec2 import LaunchTemplate, SecurityGroup
from troposphere.iam import Role

from winworkers import iam
from winworkers.compute import add_fleet
from winworkers.config import WorkersConfig
from winworkers.network import add_network
from winworkers.observability import WorkerLogs, add_alarms, add_worker_logs, grant_write
from winworkers.parameters import SWITCH, Params, add_parameters, param_name, parameter_specs
from winworkers.refresh import add_refresh

DESCRIPTION = "Windows Workers (winworkers): an isolated, self-patching Windows fleet nobody can log in to"


@dataclass(frozen=True)
class Feature:
    """Handles to what :func:`add_to` created, for the parent to reference.

    Every resource here exists only when the feature is enabled: reference them
    from the parent under the ``enabled`` condition (``Fn::If`` or ``Condition``).
    """

    params: Params
    group: AutoScalingGroup
    launch_template: LaunchTemplate
    instance_role: Role
    worker_security_group: SecurityGroup
    log_groups: WorkerLogs
    refresh_function: Function

    @property
    def enabled(self) -> str:
        """The name of the condition that is true when the feature is on."""
        return self.params.enabled


def add_to(template: Template, config: WorkersConfig | None = None, *, wired: dict[str, Any] | None = None) -> Feature:
    """Add the whole feature to ``template``, every resource under its switch.

    A parent's existing ``EnableWinTaskScriptService`` parameter is reused. All
    other names carry ``config.prefix``; a clash raises ``ValueError`` and leaves
    the parent untouched (the feature is built aside, then merged). ``wired``
    feeds platform inputs (:data:`winworkers.parameters.WIRABLE`) from the
    parent's own resources instead of parameters.
    """
    config = config or WorkersConfig()
    scratch = Template()
    if SWITCH in template.parameters:
        scratch.add_parameter(template.parameters[SWITCH])
    feature = _build(scratch, config, wired)
    _merge(scratch, template)
    return feature


def _build(template: Template, config: WorkersConfig, wired: dict[str, Any] | None) -> Feature:
    p = add_parameters(template, config, wired)
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
    network = add_network(template, p, role, statements)
    fleet = add_fleet(template, p, network, role, profile, logs)
    refresh = add_refresh(template, p, fleet)
    if config.include_alarms:
        add_alarms(template, p, Ref(fleet.group), refresh.function, refresh.refresh_failed_rule)
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
    )


_SECTIONS = ("parameters", "conditions", "rules", "resources", "outputs")
# Declarations a parent may already hold, identically, from another embedding of
# the same config (add_to and nested_stack side by side): those are reused.
_SHAREABLE = ("parameters", "conditions", "rules")


def _merge(feature: Template, parent: Template) -> None:
    """Copy every section of ``feature`` into ``parent``, or nothing if any name clashes."""

    def same(section: str, name: str) -> bool:
        if section == "parameters" and name == SWITCH:
            return True  # the parent owns the switch
        ours, theirs = getattr(feature, section)[name], getattr(parent, section)[name]
        return section in _SHAREABLE and encode_to_dict(ours) == encode_to_dict(theirs)

    clashes = sorted(
        f"{section}.{name}"
        for section in _SECTIONS
        for name in set(getattr(feature, section)) & set(getattr(parent, section))
        if not same(section, name)
    )
    if clashes:
        raise ValueError(f"the feature's names clash with the parent's {clashes}; choose another WorkersConfig.prefix")
    for section in _SECTIONS:
        target = getattr(parent, section)
        for name, value in getattr(feature, section).items():
            target.setdefault(name, value)


def build_template(config: WorkersConfig | None = None) -> Template:
    """The feature's standalone template, usable as a nested stack."""
    template = Template(Description=DESCRIPTION)
    template.set_version("2010-09-09")
    add_to(template, config)
    return template


def nested_stack(
    template: Template,
    template_url: Any,
    config: WorkersConfig | None = None,
    *,
    wired: dict[str, Any] | None = None,
    timeout_minutes: int = 90,
) -> Stack:
    """Add the feature to a parent as an ``AWS::CloudFormation::Stack``.

    The parent gets the feature's parameters (reusing its switch) and passes
    them through; ``wired`` inputs are passed from the parent's values instead.
    The stack exists only while the switch is ``true``.
    """
    config = config or WorkersConfig()
    wired = dict(wired or {})
    if not 1 <= timeout_minutes <= 43200:
        raise ValueError(f"timeout_minutes={timeout_minutes!r} is not allowed: 1 to 43200")
    scratch = Template()
    if SWITCH in template.parameters:
        scratch.add_parameter(template.parameters[SWITCH])
    # Parameters, conditions and Rules as in the child: the parent checks inputs before it creates anything.
    p = add_parameters(scratch, config, wired)
    passed = {
        param_name(config, spec.name): wired.get(spec.name, Ref(param_name(config, spec.name)))
        for spec in parameter_specs(config)
    }
    stack = scratch.add_resource(
        Stack(
            config.logical_id("Stack"),
            TemplateURL=template_url,
            Parameters=passed,
            TimeoutInMinutes=timeout_minutes,
            Condition=p.enabled,
            # Turning the switch off removes the feature; its log groups retain themselves.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    _merge(scratch, template)
    return stack


def _condition_everything(template: Template, p: Params) -> None:
    """One pass over everything the feature built: the switch governs it all.

    Resources that already carry one of the feature's conditions keep it; each of
    those conditions is an ``And`` with the switch (see parameters._add_conditions).
    """
    for item in [*template.resources.values(), *template.outputs.values()]:
        if "Condition" not in item.resource:
            item.Condition = p.enabled


def _add_outputs(
    template: Template, p: Params, group: AutoScalingGroup, role: Role, logs: WorkerLogs, function: Function
) -> None:
    lid = p.config.logical_id
    values = {
        "GroupName": Ref(group),
        "InstanceRoleArn": GetAtt(role, "Arn"),
        "WorkerLogGroup": Ref(logs.worker),
        "HostLogGroup": Ref(logs.host),
        "RefreshFunctionName": Ref(function),
    }
    for name, value in values.items():
        template.add_output(Output(lid(name), Value=value))
