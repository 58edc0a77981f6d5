"""Per-service gaps (patches 3, 5, 8, 11, 15, 17 of winworkers.emulator): what moto's services or its
CloudFormation models lack for the types these templates render, and coverage(), the single list of
what happens to each type.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from winworkers.emulator.common import _moto_update, _one_line


def _keeping_its_warm_pool(update: Any) -> Any:
    # AWS updates a group in place (UpdateAutoScalingGroup), and its warm pool stays; moto
    # replaces the group object (it deletes and creates the group), and the new one had none.
    def run(*args: Any, **kwargs: Any) -> Any:
        pool = getattr(kwargs.get("original_resource"), "warm_pool", None)
        group = update(*args, **kwargs)
        if pool is not None and getattr(group, "warm_pool", None) is None:
            group.warm_pool = pool
        return group

    return staticmethod(run)


def _with_vpc_id(get_cfn_attribute: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html#aws-resource-ec2-securitygroup-return-values
    def get(group: Any, attribute: str) -> Any:
        return group.vpc_id if attribute == "VpcId" else get_cfn_attribute(group, attribute)

    return get


# Resources moto's CloudFormation creates but never deletes (a no-op, silently), so that deleting
# the isolated VPC then fails with DependencyViolation, or (a flow log) outlives it.
_EC2_DELETERS: dict[str, Callable[[Any, Any], Any]] = {
    "AWS::EC2::RouteTable": lambda ec2, table: ec2.delete_route_table(table.id),
    "AWS::EC2::VPCEndpoint": lambda ec2, endpoint: _delete_endpoint(ec2, endpoint),
    "AWS::EC2::SubnetRouteTableAssociation": lambda ec2, association: ec2.subnet_associations.pop(
        f"{association.route_table_id}:{association.subnet_id}", None
    ),
    # moto's FlowLogs has no CloudFormation delete: the deleted VPC's flow log stayed (DeleteFlowLogs).
    "AWS::EC2::FlowLog": lambda ec2, flow_log: (
        ec2.delete_flow_logs([flow_log.id]) if flow_log.id in ec2.flow_logs else None
    ),
}


def _delete_endpoint(ec2: Any, endpoint: Any) -> None:
    # A gateway endpoint's routes go with it, and with their route table if that went first
    # (moto's delete_vpc_endpoints fails on a route table already deleted).
    for table in endpoint.route_table_ids or []:
        with contextlib.suppress(Exception):
            ec2.delete_route(table, endpoint.destination_prefix_list_id)
    endpoint.route_table_ids = []
    ec2.delete_vpc_endpoints([endpoint.id])


_ACTIVE_REFRESH = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}


def _refresh_error(code: str, message: str) -> Exception:
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)


def _refreshes(response: Any, group_name: str) -> list[dict[str, Any]]:
    """The group's refreshes, newest first (state kept on the backend, so a reset clears it)."""
    backend = response.autoscaling_backend
    if group_name not in backend.autoscaling_groups:
        raise _refresh_error("ValidationError", f"AutoScalingGroup name not found - {group_name}")
    state: dict[str, list[dict[str, Any]]] = backend.__dict__.setdefault("winworkers_refreshes", {})
    return state.setdefault(group_name, [])


def _resolves_ssm(group: Any) -> bool:
    template = group.ec2_launch_template
    if template is None:
        return False
    version = template.get_version(group.provided_launch_template_version or "$Default")
    return str(version.data.get("ImageId", "")).startswith("resolve:ssm:")


def _start_instance_refresh(response: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.moto_api._internal import mock_random

    params = response._get_params()
    name = params["AutoScalingGroupName"]
    refreshes = _refreshes(response, name)
    if active := [r for r in refreshes if r["Status"] in _ACTIVE_REFRESH]:
        raise _refresh_error(
            "InstanceRefreshInProgress",
            f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh. "
            f"{active[0]['InstanceRefreshId']}",
        )
    preferences = params.get("Preferences") or {}
    desired = params.get("DesiredConfiguration")
    group = response.autoscaling_backend.autoscaling_groups[name]
    # Auto Scaling user guide, "Use AWS Systems Manager parameters instead of AMI IDs", limitations.
    if (desired or str(preferences.get("SkipMatching", "")).lower() == "true") and _resolves_ssm(group):
        raise _refresh_error(
            "ValidationError",
            "An instance refresh with skip matching or a desired configuration is not supported "
            "for a launch template that uses a Systems Manager parameter for its AMI",
        )
    refresh = {
        "InstanceRefreshId": str(mock_random.uuid4()),
        "AutoScalingGroupName": name,
        "Status": "InProgress",
        "StatusReason": "modelled by winworkers.emulator: it never progresses",
        "StartTime": utcnow(),
        "PercentageComplete": 0,
        "InstancesToUpdate": len(group.instance_states),
        "Preferences": preferences,
        **({"DesiredConfiguration": desired} if desired else {}),
    }
    refreshes.insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _describe_instance_refreshes(response: Any) -> Any:
    from moto.core.responses import ActionResult

    params = response._get_params()
    wanted = params.get("InstanceRefreshIds") or []
    refreshes = [
        r
        for r in _refreshes(response, params["AutoScalingGroupName"])
        if not wanted or r["InstanceRefreshId"] in wanted
    ]
    return ActionResult({"InstanceRefreshes": refreshes[: int(params.get("MaxRecords") or 50)]})


def _cancel_instance_refresh(response: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow

    params = response._get_params()
    active = [r for r in _refreshes(response, params["AutoScalingGroupName"]) if r["Status"] in _ACTIVE_REFRESH]
    if not active:
        raise _refresh_error("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found")
    active[0].update(Status="Cancelled", StatusReason="Cancelled by the user", EndTime=utcnow())
    return ActionResult({"InstanceRefreshId": active[0]["InstanceRefreshId"]})


class _Made:
    """A resource an emulated type made through moto's backend: its Ref, its GetAtt
    attributes, and how to delete it (what moto's ResourceMap asks of a resource)."""

    winworkers_note = ""

    logical_resource_id = ""  # moto sets these two after creation
    cf_resource_type = ""

    def __init__(self, physical_id: str, attributes: dict[str, Any], remove: Callable[[], None]) -> None:
        self.physical_resource_id = physical_id
        self.attributes = attributes
        self.remove = remove

    def get_cfn_attribute(self, name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[name]

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        self.remove()


class _Skipped(_Made):
    """A resource of a type the emulator cannot create: listed, never silent."""

    def __init__(self, kind: str) -> None:
        super().__init__("", {}, lambda: None)
        self.winworkers_note = f"NOT CREATED by the emulator: moto has no {kind}; CloudFormation would create it"

    def get_cfn_attribute(self, name: str) -> Any:
        return ""


NOT_MODELLED = {
    "AWS::ImageBuilder::Image": (
        "NOT MODELLED: no image was built; one of moto's Windows AMIs stands in for its ImageId"
    ),
}
"""What the emulator answers in place of a not-created type's attribute, said in the coverage table."""
STAND_IN_NOTE = "NOT MODELLED: no image was built; moto's Windows AMI {image} ({name}) stands in for its ImageId"


class _StandInImage(_Skipped):
    """An AWS::ImageBuilder::Image the emulator did not build: its ImageId is a stand-in, one of moto's
    Windows AMIs (moto has none of the public /aws/service/ami-windows-latest parameters a recipe's ssm:
    parent image names), so what reads it (the stack's image parameter) deploys; the event says so."""

    def __init__(self, kind: str, account_id: str, region_name: str) -> None:
        super().__init__(kind)
        from moto.ec2.models import ec2_backends

        images = ec2_backends[account_id][region_name].describe_images(filters={"name": "Windows_Server-*"})
        image = min(images, key=lambda i: (i.name, i.id))
        self.image_id = image.id
        stand_in = STAND_IN_NOTE.format(image=image.id, name=image.name)
        self.winworkers_note = f"{self.winworkers_note}. {stand_in}"

    def get_cfn_attribute(self, name: str) -> Any:
        return self.image_id if name == "ImageId" else ""


def _checked(service: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """request as the API takes it, or ValueError: the properties are coerced to the
    operation's input shape (CloudFormation converts "1" to 1 where the schema wants a
    number), then validated by botocore against that shape. CloudFormation's handler
    for the type makes this call, so a property it would refuse fails here too."""
    from botocore.validate import ParamValidator

    shape = _input_shape(service, operation)
    coerced = _coerced(request, shape)
    report = ParamValidator().validate(coerced, shape)
    if report.has_errors():
        raise ValueError(f"{operation} refuses these properties: {_one_line(ValueError(report.generate_report()))}")
    return dict(coerced)


@functools.cache
def _input_shape(service: str, operation: str) -> Any:
    """The operation's input shape, from one botocore session per process (_model_session): a session
    (its 116 built-in event handlers registered) and a service model (botocore's JSON, parsed) made for
    each resource created cost more than the emulator's own work. botocore's models are its installed
    files: they do not change while the emulator runs (tests/test_emulator_budget.py counts sessions)."""
    return _model_session().get_service_model(service).operation_model(operation).input_shape


@functools.cache
def _model_session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def _coerced(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerced(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_coerced(item, shape.member) for item in value]
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            if kind in ("integer", "long"):
                return int(value)
            if kind in ("float", "double"):
                return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def _alarm(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-alarm.html
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends

    props = _checked("cloudwatch", "PutMetricAlarm", {"AlarmName": name, **props})
    queries = []
    for query in props.get("Metrics", []):
        stat, metric = query.get("MetricStat"), query.get("MetricStat", {}).get("Metric", {})
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        queries.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData", True),
                expression=query.get("Expression"),
                metric_stat=MetricStat(
                    Metric(metric["MetricName"], metric["Namespace"], dimensions),
                    stat["Period"],
                    stat["Stat"],
                    stat.get("Unit"),
                )
                if stat
                else None,
            )
        )
    backend: Any = cloudwatch_backends[account][region]  # moto types as str what its handler passes as None
    # Absent properties are None, as moto's PutMetricAlarm handler passes them.
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=props.get("Namespace"),
        metric_name=props.get("MetricName"),
        comparison_operator=props["ComparisonOperator"],
        evaluation_periods=props["EvaluationPeriods"],
        period=props.get("Period"),
        threshold=props.get("Threshold"),
        statistic=props.get("Statistic"),
        description=props.get("AlarmDescription"),
        dimensions=props.get("Dimensions", []),
        alarm_actions=props.get("AlarmActions", []),
        metric_data_queries=queries or None,
        datapoints_to_alarm=props.get("DatapointsToAlarm"),
        ok_actions=props.get("OKActions", []),
        insufficient_data_actions=props.get("InsufficientDataActions", []),
        treat_missing_data=props.get("TreatMissingData"),
    )
    return _Made(name, {"Arn": alarm.alarm_arn}, lambda: backend.delete_alarms([name]))


def _scaling_policy(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-scalingpolicy.html
    # Ref returns the policy's ARN (an alarm's action), GetAtt Arn and PolicyName.
    from moto.autoscaling.models import autoscaling_backends

    props = _checked("autoscaling", "PutScalingPolicy", {"PolicyName": name, **props})
    backend: Any = autoscaling_backends[account][region]  # likewise
    # Absent properties are None, as moto's PutScalingPolicy handler passes them.
    policy = backend.put_scaling_policy(
        name=name,
        policy_type=props.get("PolicyType", "SimpleScaling"),
        metric_aggregation_type=props.get("MetricAggregationType"),
        adjustment_type=props.get("AdjustmentType"),
        as_name=props["AutoScalingGroupName"],
        min_adjustment_magnitude=props.get("MinAdjustmentMagnitude"),
        scaling_adjustment=props.get("ScalingAdjustment"),
        cooldown=props.get("Cooldown"),
        target_tracking_config=props.get("TargetTrackingConfiguration", {}),
        step_adjustments=props.get("StepAdjustments", []),
        estimated_instance_warmup=props.get("EstimatedInstanceWarmup"),
        predictive_scaling_configuration=props.get("PredictiveScalingConfiguration", {}),
    )
    return _Made(policy.arn, {"Arn": policy.arn, "PolicyName": name}, lambda: backend.delete_policy(name))


def _egress(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroupegress.html
    from moto.ec2.models import ec2_backends

    described = {"Description": props["Description"]} if "Description" in props else {}
    permission: dict[str, Any] = {"IpProtocol": props["IpProtocol"]}
    permission.update({k: props[k] for k in ("FromPort", "ToPort") if k in props})
    if "CidrIp" in props:
        permission["IpRanges"] = [{"CidrIp": props["CidrIp"], **described}]
    if "CidrIpv6" in props:
        permission["Ipv6Ranges"] = [{"CidrIpv6": props["CidrIpv6"], **described}]
    if "DestinationSecurityGroupId" in props:
        permission["UserIdGroupPairs"] = [{"GroupId": props["DestinationSecurityGroupId"], **described}]
    if "DestinationPrefixListId" in props:
        permission["PrefixListIds"] = [{"PrefixListId": props["DestinationPrefixListId"], **described}]
    request = {"GroupId": props["GroupId"], "IpPermissions": [permission]}
    (permission,) = _checked("ec2", "AuthorizeSecurityGroupEgress", request)["IpPermissions"]
    backend = ec2_backends[account][region]
    rule = {
        "group_name_or_id": props["GroupId"],
        "ip_protocol": permission["IpProtocol"],
        "from_port": permission.get("FromPort"),
        "to_port": permission.get("ToPort"),
        "ip_ranges": permission.get("IpRanges", []) + permission.get("Ipv6Ranges", []),
        "source_groups": permission.get("UserIdGroupPairs", []),
        "prefix_list_ids": permission.get("PrefixListIds", []),
    }
    rules, _ = backend.authorize_security_group_egress(**rule)

    def revoke() -> None:
        from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError

        try:
            if backend.get_security_group_by_name_or_id(props["GroupId"]) is not None:
                backend.revoke_security_group_egress(**rule)
        except InvalidSecurityGroupNotFoundError:  # it went with its group (or the group it allowed)
            pass

    return _Made(rules[0].id, {"Id": rules[0].id}, revoke)


def _warm_pool(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-warmpool.html
    # One pool per group, named by the group (the schema's primaryIdentifier); moto's group
    # keeps it (DescribeWarmPool answers its configuration), and launches no pooled instance.
    from moto.autoscaling.models import autoscaling_backends

    props = _checked("autoscaling", "PutWarmPool", props)
    backend: Any = autoscaling_backends[account][region]
    group = props["AutoScalingGroupName"]
    # Absent properties are None, as moto's PutWarmPool handler passes them.
    backend.put_warm_pool(
        group_name=group,
        max_group_prepared_capacity=props.get("MaxGroupPreparedCapacity"),
        min_size=props.get("MinSize"),
        pool_state=props.get("PoolState"),
        instance_reuse_policy=props.get("InstanceReusePolicy"),
    )

    def delete() -> None:
        if backend.autoscaling_groups.get(group) is not None:  # it went with its group
            backend.delete_warm_pool(group)

    return _Made(group, {}, delete)


def _wait_condition_handle(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-waitconditionhandle.html
    # No properties; CloudFormation keeps it itself, and its Ref is a presigned URL for signals.
    if props:
        raise ValueError(f"AWS::CloudFormation::WaitConditionHandle has no properties, not {sorted(props)}")
    url = f"https://cloudformation-waitcondition-{region}.s3.amazonaws.com/{account}/{name}"
    return _Made(url, {}, lambda: None)


_EMULATED: dict[str, Callable[[str, dict[str, Any], str, str], _Made]] = {
    "AWS::CloudFormation::WaitConditionHandle": _wait_condition_handle,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::AutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::AutoScaling::WarmPool": _warm_pool,
    "AWS::EC2::SecurityGroupEgress": _egress,
}
"""The types moto's CloudFormation skips that the emulator creates through moto's backends."""


# The name property of each emulated type: given, it names the resource; else CloudFormation generates one.
_NAME_PROPERTIES = {"AWS::CloudWatch::Alarm": "AlarmName", "AWS::AutoScaling::ScalingPolicy": "PolicyName"}


class _Maker:
    """What moto's CloudFormation asks of a resource class, for one emulated type."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def has_cfn_attr(self, attribute: str) -> bool:
        return True

    def create_from_cloudformation_json(
        self, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
    ) -> _Made:
        props = dict(cloudformation_json.get("Properties") or {})
        name = props.pop(_NAME_PROPERTIES.get(self.kind, ""), resource_name)
        return _EMULATED[self.kind](name, props, account_id, region_name)

    def update_from_cloudformation_json(
        self,
        original_resource: _Made,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _Made:
        # Replace it: delete the old, create the new, under the same generated name when none is given.
        original_resource.remove()
        name = original_resource.attributes.get("PolicyName") or original_resource.physical_resource_id
        if self.kind == "AWS::EC2::SecurityGroupEgress":
            name = new_resource_name
        return self.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    def delete_from_cloudformation_json(self, *_: Any) -> None:
        return None  # _Made.delete did it


class _Skipping(_Maker):
    """A type neither moto nor the emulator can create: a _Skipped placeholder, listed in the events."""

    def create_from_cloudformation_json(self, *args: Any, **__: Any) -> _Made:
        if self.kind == "AWS::ImageBuilder::Image":  # moto passes name, json, account, region
            return _StandInImage(self.kind, str(args[2]), str(args[3]))
        return _Skipped(self.kind)

    def update_from_cloudformation_json(self, original_resource: _Made, *_: Any, **__: Any) -> _Made:
        # moto passes its arguments by keyword (a positional-only signature failed every update of
        # such a resource with "unexpected keyword argument 'new_resource_name'").
        original_resource.winworkers_note = f"NOT UPDATED by the emulator: not modelled (moto has no {self.kind})"
        return original_resource


def _with_emulated_types(resource_class_from_type: Any) -> Any:
    def find(resource_type: str) -> Any:
        if resource_type in _EMULATED:
            return _Maker(resource_type)
        found = resource_class_from_type(resource_type)
        return found if found is not None else _Skipping(resource_type)

    return find


def coverage(types: Any) -> dict[str, str]:
    """What the emulator does with each resource type: "moto" (moto's CloudFormation
    creates it), "emulator" (created through moto's backend, patch 11) or "not created"
    (listed in the deploy output). Needs moto."""
    from moto.cloudformation.parsing import get_model_map

    def what(kind: str) -> str:
        if kind in _EMULATED:
            return "emulator"
        return "moto" if kind in get_model_map() or kind.startswith("Custom::") else "not created"

    return {kind: what(kind) for kind in sorted(set(types))}


def coverage_table(types: Any) -> str:
    """coverage(types) as the README's Markdown table."""
    meaning = {
        "moto": "moto's CloudFormation creates it",
        "emulator": "created through moto's backend by the emulator, its properties checked against the API",
        "not created": "NOT created: listed in the deploy output (its event and the stack's)",
    }
    from winworkers.emulator.truth import checked_types

    checked = checked_types()  # the invariants' own list (truth._EXISTS): one source

    rows = ["| Resource type | Emulator | What happens | Invariants |", "| --- | --- | --- | --- |"]
    rows += [
        f"| `{kind}` | {how} | {'; '.join(filter(None, (meaning[how], NOT_MODELLED.get(kind))))} | "
        f"{'existence checked' if kind in checked else '**NOT CHECKED**'} |"
        for kind, how in coverage(types).items()
    ]
    return "\n".join(rows) + "\n"


def _endpoint_modified_in_place(_: Any) -> Any:
    # AWS::EC2::VPCEndpoint's schema lists none of these as create-only: CloudFormation calls
    # ModifyVpcEndpoint (its update handler's permission) and the endpoint keeps its id.
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpcEndpoint.html
    def update(original_resource: Any, cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        import json

        properties = cloudformation_json.get("Properties", {})

        def change(key: str, current: list[str] | None) -> tuple[list[str] | None, list[str] | None]:
            wanted, now = set(properties.get(key) or []), set(current or [])
            return sorted(wanted - now) or None, sorted(now - wanted) or None

        add_subnets, remove_subnets = change("SubnetIds", original_resource.subnet_ids)
        add_groups, remove_groups = change("SecurityGroupIds", original_resource.security_group_ids)
        add_tables, remove_tables = change("RouteTableIds", original_resource.route_table_ids)
        policy = properties.get("PolicyDocument")
        original_resource.modify(
            json.dumps(policy) if isinstance(policy, dict) else policy,
            add_subnets,
            remove_subnets,
            add_tables,
            remove_tables,
            add_groups,
            remove_groups,
        )
        return original_resource

    return _moto_update(update)
