"""The second deploy: which stack inputs replace which resources, derived from the
resource schemas (cfn-lint's bundled CloudFormation registry schemas), not listed by hand.

A property in a schema's ``createOnlyProperties`` cannot change in place: a new value
replaces the resource (its physical id changes), and so replaces every resource whose
create-only property names it (Ref, Fn::GetAtt). A replacement creates the new
resource before deleting the old one, so a fixed physical name (a ``primaryIdentifier``
set in the template) that the replacement does not change collides with itself.
"""

from __future__ import annotations

from typing import Any

from winworkers.network import ENDPOINTS
from winworkers.update_path import at_pointer as _at
from winworkers.update_path import depends_on as _names
from winworkers.update_path import schema_of as _schema
from winworkers.update_path import update_path

PSEUDO = {"AWS::Region", "AWS::StackName", "AWS::StackId", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
NETWORK = {
    "WinVpc",
    "WinSubnetA",
    "WinSubnetB",
    "WinSubnetC",
    "WinRouteTable",
    "WinSubnetARoutes",
    "WinSubnetBRoutes",
    "WinSubnetCRoutes",
    *(f"Win{row.logical_name}" for row in ENDPOINTS),
    "WinEndpointSecurityGroup",
    "WinEndpointIngressFromWorkers",
    "WinWorkerSecurityGroup",
    "WinWorkerEgressToEndpoints",
    "WinWorkerEgressToNetworkEndpoints",
    "WinFlowLog",
    # The DNS Firewall and query logging associations name the VPC (createOnly VpcId, ResourceId).
    "WinDnsFirewallAssociation",
    "WinDnsQueryLoggingAssociation",
}
WORKER_SECURITY_GROUP = {
    "WinWorkerSecurityGroup",
    "WinWorkerEgressToEndpoints",
    "WinWorkerEgressToNetworkEndpoints",
    "WinEndpointIngressFromWorkers",
}
# ImageSource=baked (winworkers.image): the build's security group and its rules follow the VPC as
# the workers' do; the build endpoints' group is the isolated VPC's.
BUILD_SECURITY_GROUP = {
    "WinBuildSecurityGroup",
    "WinBuildEgressToEndpoints",
    "WinBuildEgressToNetworkEndpoints",
    "WinBuildEndpointIngress",
}
# Image Builder's recipes and components are immutable versions (every property create-only): a new
# artifact, parent image version or volume makes a new recipe, and so a new first image; a new
# ImageRevision a new component too. The recipe's and component's Name and Version are theirs alone
# (no primaryIdentifier: their ARN is), so update_path sees no collision; the same Name and Version
# would be refused by Image Builder, hence ImageRevision (docs/baked-image.md, "What an update replaces").
IMAGE = {"WinFirstImage", "WinImageRecipe"}
# What a stack update of each input replaces (the rest of the inputs replace nothing).
# Reviewed: none of these has a fixed name; the workers follow through the launch
# template's new version (its security group) and the refresh custom resource.
REPLACED_BY = {
    "WinVpcCidr": NETWORK | BUILD_SECURITY_GROUP | {"WinBuildEndpointSecurityGroup"},
    "WinNetworkMode": WORKER_SECURITY_GROUP | BUILD_SECURITY_GROUP,
    "WinVpcId": WORKER_SECURITY_GROUP | BUILD_SECURITY_GROUP,
    # via its VpcId's conditions; switched off, all goes anyway
    "EnableWinTaskScriptService": WORKER_SECURITY_GROUP | BUILD_SECURITY_GROUP,
    "WinEndpointsCidr": {"WinWorkerEgressToNetworkEndpoints"},
    # existing-subnets, baked: the build's rule alone; no worker is refreshed (docs/updates.md).
    "WinBuildEndpointsCidr": {"WinBuildEgressToNetworkEndpoints"},
    "WinArtifactBucket": IMAGE,
    "WinArtifactKey": IMAGE,
    "WinBuildVolumeSize": IMAGE,
    "WinWindowsVersion": IMAGE,
    "WinImageRevision": IMAGE | {"WinWorkerComponent"},
}


def test_the_inputs_that_replace_resources_are_known(feature: dict[str, Any]) -> None:
    replaced, _ = update_path(feature)
    assert replaced == REPLACED_BY


def test_no_replacement_collides_on_a_fixed_name(feature: dict[str, Any]) -> None:
    # The fixed names: the group (<stack>-<prefix>Workers, which the lifecycle ARNs and the agent
    # config name) and the log groups; none is replaced by any input.
    _, collisions = update_path(feature)
    assert collisions == []
    resources = feature["Resources"]
    named = {
        name
        for name, resource in resources.items()
        if any(
            _at(resource.get("Properties", {}), p) is not None
            for p in (_schema(resource["Type"]) or {}).get("primaryIdentifier", [])
        )
    }
    assert "WinGroup" in named and not named & set().union(*REPLACED_BY.values())


def test_the_analysis_sees_a_planted_collision(feature: dict[str, Any]) -> None:
    import copy

    planted = copy.deepcopy(feature)
    group = planted["Resources"]["WinGroup"]["Properties"]
    group["InstanceId"] = {"Ref": "WinInstanceType"}  # create-only: the instance type would replace the group
    replaced, collisions = update_path(planted)
    assert "WinGroup" in replaced["WinInstanceType"]
    assert collisions == ["WinGroup (fixed name) replaced by WinInstanceType"]
    group["AutoScalingGroupName"] = {"Fn::Sub": "${AWS::StackName}-${WinInstanceType}"}  # the name follows it
    assert update_path(planted)[1] == []


def test_the_example_parents_replace_the_same() -> None:
    # The inline parent holds the feature under the same logical ids; the nested one only the
    # stack resource, which a new template or parameter value updates in place.
    import json

    from conftest import ROOT

    inline = json.loads((ROOT / "templates" / "parent-inline.json").read_text(encoding="utf-8"))
    nested = json.loads((ROOT / "templates" / "parent-nested.json").read_text(encoding="utf-8"))
    assert update_path(inline) == (REPLACED_BY, [])
    assert update_path(nested) == ({}, [])


def test_endpoint_azs_changes_the_endpoints_in_place(feature: dict[str, Any]) -> None:
    # EndpointAzs all <-> one changes only the interface endpoints' SubnetIds, which the
    # schema does not list as create-only: CloudFormation updates the endpoint in place
    # (ModifyVpcEndpoint adds or removes network interfaces; its handler's permissions).
    schema = _schema("AWS::EC2::VPCEndpoint")
    assert schema is not None
    assert "/properties/SubnetIds" not in schema["createOnlyProperties"]
    assert "ec2:ModifyVpcEndpoint" in schema["handlers"]["update"]["permissions"]
    replaced, _ = update_path(feature)
    assert "WinEndpointAzs" not in replaced
    uses = {
        name
        for name, resource in feature["Resources"].items()
        if "WinEndpointAzs" in _names(resource.get("Properties", {}), feature["Conditions"])
    }
    assert uses == {f"Win{n}Endpoint" for n in ("Sqs", "Cloudformation", "Monitoring", "Logs", "Autoscaling")}


def test_the_spot_inputs_replace_nothing_and_refresh_nothing(feature: dict[str, Any]) -> None:
    # spot: InstanceTypes, OnDemandBaseCapacity and OnDemandPercentage reach only the group's
    # LaunchTemplate / MixedInstancesPolicy / CapacityRebalance, none create-only (the schema):
    # an update changes the group in place. The refresh custom resource, whose change starts an
    # instance refresh, depends on none of them; Auto Scaling itself moves the fleet toward a new
    # On-Demand/Spot split (UpdateAutoScalingGroup API reference; docs/aws-behaviours.md).
    replaced, _ = update_path(feature)
    spot = {"WinInstanceTypes", "WinOnDemandBaseCapacity", "WinOnDemandPercentage"}
    assert not spot & set(replaced)
    create_only = set((_schema("AWS::AutoScaling::AutoScalingGroup") or {})["createOnlyProperties"])
    assert (
        not {f"/properties/{p}" for p in ("LaunchTemplate", "MixedInstancesPolicy", "CapacityRebalance")} & create_only
    )
    conditions = feature["Conditions"]
    refresh = feature["Resources"]["WinFleetRefresh"]["Properties"]
    assert not _names(refresh, conditions) & spot
    launch_template = feature["Resources"]["WinLaunchTemplate"]
    assert not _names(launch_template, conditions) & spot, "a new launch template version would refresh the fleet"
    assert spot <= _names(feature["Resources"]["WinGroup"]["Properties"], conditions)


def test_the_warm_pool_parameters_update_in_place_or_create_and_delete_the_pool(feature: dict[str, Any]) -> None:
    # The pool's one create-only property is the group's name, which no input changes: a new
    # WarmPoolMinSize or WarmPoolMaxPrepared updates it in place (PutWarmPool). WarmPool itself
    # is its Condition: off -> stopped creates it, stopped -> off deletes it (DeleteWarmPool,
    # which terminates the pooled instances). Its UserData Fn::If makes a new launch template
    # version either way, so the refresh custom resource replaces the workers in service.
    replaced, _ = update_path(feature)
    assert not {"WinWarmPool", "WinWarmPoolMinSize", "WinWarmPoolMaxPrepared"} & set(replaced)
    (pool,) = [n for n, r in feature["Resources"].items() if r["Type"] == "AWS::AutoScaling::WarmPool"]
    assert _schema("AWS::AutoScaling::WarmPool")["createOnlyProperties"] == ["/properties/AutoScalingGroupName"]
    conditions = feature["Conditions"]
    assert {"WinWarmPool", "EnableWinTaskScriptService"} <= _names(
        {"Condition": feature["Resources"][pool]["Condition"]}, conditions
    )
    user_data = feature["Resources"]["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    assert "WinWarmPool" in _names(user_data, conditions)
    assert not {"WinWarmPoolMinSize", "WinWarmPoolMaxPrepared"} & _names(user_data, conditions)


def test_the_refresh_changes_update_in_place(feature: dict[str, Any]) -> None:
    # Issue 25's refresh changes on a running stack: the refresh role's inline policy (the claim tag,
    # the launch template's permissions), the function's inline code and the warm pool's DependsOn.
    # Policies and Code are not create-only, neither resource has a fixed name, and DependsOn is an
    # attribute, not a property: each is updated in place, nothing is replaced (and the refresh
    # custom resource, whose properties are unchanged, sends the function nothing).
    changed = {"WinRefreshRole": "/properties/Policies", "WinRefreshFunction": "/properties/Code"}
    for name, pointer in changed.items():
        schema = _schema(feature["Resources"][name]["Type"]) or {}
        assert pointer not in schema["createOnlyProperties"], name
        assert not {p for p in schema["primaryIdentifier"] if _at(feature["Resources"][name]["Properties"], p)}, name
    replaced, _ = update_path(feature)
    assert not set(changed) & set().union(*replaced.values())  # no input replaces them either
    pool = feature["Resources"]["WinGroupWarmPool"]
    assert sorted(pool["DependsOn"]) == ["WinPoolExitInvoke", "WinPoolExitRule"]
    assert "DependsOn" not in (_schema("AWS::AutoScaling::WarmPool") or {}).get("properties", {})


def test_the_wake_and_job_metrics_update_in_place_and_refresh_nothing(feature: dict[str, Any]) -> None:
    # Issue 27 on a running stack. WakeEveryMinute is the Condition of the schedule and its
    # permission: true -> false deletes both, false -> true creates them; the function stays.
    # QueueWaitAlarmSeconds is the alarm's Threshold, BacklogPerWorker also the wake's
    # Environment: neither create-only, both updated in place. None reaches the launch
    # template or the refresh custom resource, so no worker is replaced. An update to this
    # version adds the wake's four resources, the alarm and the dashboard, and changes the
    # group's MetricsCollection in place (not create-only).
    replaced, _ = update_path(feature)
    new = {"WinWakeEveryMinute", "WinQueueWaitAlarmSeconds"}
    assert not new & set(replaced)
    conditions = feature["Conditions"]
    resources = feature["Resources"]
    for name in ("WinWakeSchedule", "WinWakeInvoke"):
        assert {"WinWakeEveryMinute", "EnableWinTaskScriptService"} <= _names(
            {"Condition": resources[name]["Condition"]}, conditions
        )
    assert "Condition" not in resources["WinWakeFunction"] or "WinWakeEveryMinute" not in _names(
        {"Condition": resources["WinWakeFunction"]["Condition"]}, conditions
    )
    assert "WinQueueWaitAlarmSeconds" in _names(resources["WinQueueWaitAlarm"]["Properties"]["Threshold"], conditions)
    assert "/properties/Threshold" not in _schema("AWS::CloudWatch::Alarm")["createOnlyProperties"]
    assert "WinBacklogPerWorker" in _names(resources["WinWakeFunction"]["Properties"]["Environment"], conditions)
    assert "/properties/Environment" not in _schema("AWS::Lambda::Function")["createOnlyProperties"]
    for name in ("WinLaunchTemplate", "WinFleetRefresh"):
        assert not (new | {"WinBacklogPerWorker"}) & _names(resources[name], conditions), name
    assert "/properties/MetricsCollection" not in _schema("AWS::AutoScaling::AutoScalingGroup")["createOnlyProperties"]
    # The review of issue 27, on a stack of the version before it: it adds WinWakeRetries (the wake's
    # EventInvokeConfig), WinWakeErrorsAlarm and the output WinWakeRoleArn; it removes the wake's
    # DeadLetterConfig and its role's sqs:SendMessage, and adds the queue-wait alarm's
    # DatapointsToAlarm, all updated in place (none create-only); nothing else changes.
    assert resources["WinWakeRetries"]["Type"] == "AWS::Lambda::EventInvokeConfig"
    assert resources["WinWakeErrorsAlarm"]["Type"] == "AWS::CloudWatch::Alarm"
    assert "WinWakeRoleArn" in feature["Outputs"]
    assert "DeadLetterConfig" not in resources["WinWakeFunction"]["Properties"]
    assert "/properties/DeadLetterConfig" not in _schema("AWS::Lambda::Function")["createOnlyProperties"]
    assert "/properties/Policies" not in _schema("AWS::IAM::Role")["createOnlyProperties"]
    assert resources["WinQueueWaitAlarm"]["Properties"]["DatapointsToAlarm"] == 2
    assert "/properties/DatapointsToAlarm" not in _schema("AWS::CloudWatch::Alarm")["createOnlyProperties"]
