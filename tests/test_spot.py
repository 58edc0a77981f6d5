"""The Spot / mixed instances mode (issue 20 item 2): the group, rendered and evaluated as
CloudFormation would for each mode, its parameters' constraints and the pre-check, the
update of a default 0.2.0 stack, cfn-lint on a Spot configuration, and a deploy on the emulator."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from test_lint import lint_deployed

from conftest import ROOT, props, render
from winworkers import WorkersConfig, build_template
from winworkers.compute import GROUP_METRICS
from winworkers.constraints import check_parameters
from winworkers.instance_types import INSTANCE_TYPE_LIST_PATTERN, INSTANCE_TYPES
from winworkers.renderings import enabled_parameters
from winworkers.rules import failed_assertions
from winworkers.update_path import schema_of

THREE = "c6i.large,m6a.large,r7i.large"
SPOT = {"InstanceTypes": THREE, "OnDemandPercentage": "30", "OnDemandBaseCapacity": "1"}
"""A Spot configuration: three more types, 30% On-Demand above one On-Demand worker."""
# The group's properties exactly as the 0.2.0 template (git show a3eb7ff:templates/winworkers.json) renders them
# with the example inputs, enabled: the default must leave a running 0.2.0 group as it is.
GROUP_0_2_0 = ROOT / "tests" / "fixtures" / "group-0.2.0.json"


def _group(feature: dict[str, Any], **values: str) -> dict[str, Any]:
    return props(render(feature, enabled_parameters(**values)), "WinGroup")


@pytest.mark.parametrize("mode", ["isolated-2az", "existing-subnets"])
def test_the_default_group_is_the_0_2_0_group(feature: dict[str, Any], mode: str) -> None:
    rendered = props(render(feature, enabled_parameters(mode=mode)), "WinGroup")
    assert "MixedInstancesPolicy" not in rendered and "CapacityRebalance" not in rendered
    assert rendered["LaunchTemplate"] == {
        "LaunchTemplateId": "WinLaunchTemplate",
        "Version": "WinLaunchTemplate.LatestVersionNumber",
    }
    # Byte for byte, once evaluated: the Fn::Ifs only add AWS::NoValue, which CloudFormation removes.
    # Since 0.2.0 one property changed on purpose: MetricsCollection gained the metrics the wake's
    # dashboard draws (compute.GROUP_METRICS), an update without interruption (not create-only).
    old = json.loads(GROUP_0_2_0.read_text())[mode]
    assert old["MetricsCollection"] == [{"Granularity": "1Minute", "Metrics": ["GroupInServiceInstances"]}]
    assert rendered["MetricsCollection"] == [{"Granularity": "1Minute", "Metrics": list(GROUP_METRICS)}]
    schema = schema_of("AWS::AutoScaling::AutoScalingGroup") or {}
    assert "/properties/MetricsCollection" not in schema["createOnlyProperties"]
    old["MetricsCollection"] = rendered["MetricsCollection"]
    assert json.dumps(rendered, sort_keys=True) == json.dumps(old, sort_keys=True)


def test_the_unevaluated_group_differs_from_0_2_0_only_in_the_three_properties(feature: dict[str, Any]) -> None:
    group = feature["Resources"]["WinGroup"]["Properties"]
    for name in ("LaunchTemplate", "MixedInstancesPolicy", "CapacityRebalance"):
        assert group[name]["Fn::If"][0] == "WinMixedInstances", name
    assert group["LaunchTemplate"]["Fn::If"][1] == {"Ref": "AWS::NoValue"}
    assert group["CapacityRebalance"]["Fn::If"][1:] == [True, {"Ref": "AWS::NoValue"}]


@pytest.mark.parametrize(
    ("values", "types", "on_demand"),
    [
        ({"OnDemandPercentage": "30"}, ["m6i.large"], "30"),
        ({"InstanceTypes": THREE}, ["m6i.large", *THREE.split(",")], "100"),
        (SPOT, ["m6i.large", *THREE.split(",")], "30"),
        ({**SPOT, "InstanceType": "c7a.xlarge", "OnDemandPercentage": "0"}, ["c7a.xlarge", *THREE.split(",")], "0"),
    ],
)
def test_spot_or_more_types_make_a_mixed_instances_group(
    feature: dict[str, Any], values: dict[str, str], types: list[str], on_demand: str
) -> None:
    group = _group(feature, **values)
    assert "LaunchTemplate" not in group, "a group takes a LaunchTemplate or a MixedInstancesPolicy, never both"
    assert group["CapacityRebalance"] is True
    policy = group["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["LaunchTemplateSpecification"] == {
        "LaunchTemplateId": "WinLaunchTemplate",
        "Version": "WinLaunchTemplate.LatestVersionNumber",
    }
    (override,) = policy["LaunchTemplate"]["Overrides"]
    requirements = override["InstanceRequirements"]
    assert requirements["AllowedInstanceTypes"] == types  # InstanceType first, then the list, nothing else
    assert requirements["VCpuCount"] == {"Min": 0} and requirements["MemoryMiB"] == {"Min": 0}
    assert requirements["BurstablePerformance"] == "included"  # t3 listed is t3 launched
    assert requirements["OnDemandMaxPricePercentageOverLowestPrice"] == 999999
    assert requirements["SpotMaxPricePercentageOverLowestPrice"] == 999999
    assert policy["InstancesDistribution"] == {
        "OnDemandAllocationStrategy": "lowest-price",
        "OnDemandBaseCapacity": values.get("OnDemandBaseCapacity", "0"),
        "OnDemandPercentageAboveBaseCapacity": on_demand,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }


def test_the_rest_of_the_group_is_the_same_in_both_modes(feature: dict[str, Any]) -> None:
    on_demand, spot = _group(feature), _group(feature, **SPOT)
    for name in ("LaunchTemplate", "MixedInstancesPolicy", "CapacityRebalance"):
        on_demand.pop(name, None)
        spot.pop(name, None)
    assert spot == on_demand  # the hooks (the drain hook runs for Spot too), sizes, tags


def test_the_switch_off_creates_no_group_whatever_the_mode(feature: dict[str, Any]) -> None:
    rendered = render(feature, {**enabled_parameters(**SPOT), "EnableWinTaskScriptService": "false"})
    # Only the standalone template's standing resource, outside the switch (register row 203).
    assert [r["Type"] for r in rendered["Resources"].values()] == ["AWS::CloudFormation::WaitConditionHandle"]


def test_the_instance_types_pattern_applies_to_each_item() -> None:
    pattern = re.compile(INSTANCE_TYPE_LIST_PATTERN)
    assert all(pattern.fullmatch(t) for t in INSTANCE_TYPES) and pattern.fullmatch("")  # the empty default
    for bad in ("m6g.large", "m5.metal", "m5.medium", "x2iedn.large", "c6i.large,m6a.large", " m6i.large"):
        assert not pattern.fullmatch(bad), bad


def test_bad_values_are_refused_before_any_call(feature: dict[str, Any]) -> None:
    assert check_parameters(feature, enabled_parameters(**SPOT)) == []
    assert failed_assertions(feature, enabled_parameters(**SPOT)) == []
    for name, value in (
        ("InstanceTypes", "c6i.large,m6g.large"),
        ("InstanceTypes", "c6i.large,m5.metal"),
        ("OnDemandPercentage", "101"),
        ("OnDemandBaseCapacity", "101"),
    ):
        problems = check_parameters(feature, enabled_parameters(**{**SPOT, name: value}))
        assert len(problems) == 1 and f"Win{name}" in problems[0], (name, value, problems)
    # An item of the list is named, with why and the nearest listed type, as InstanceType is.
    assert check_parameters(feature, enabled_parameters(InstanceTypes="c6i.large,m7i.8xlage")) == [
        "WinInstanceTypes item 'm7i.8xlage' is not allowed: m7i comes in large, xlarge, 2xlarge, 4xlarge, "
        "8xlarge, 12xlarge, 16xlarge, 24xlarge, 48xlarge; did you mean m7i.8xlarge?"
    ]


def test_an_empty_item_among_the_instance_types_is_refused_before_any_call(feature: dict[str, Any]) -> None:
    # The per-item pattern lets the empty default through, and so "a,,b" and a trailing comma;
    # Auto Scaling would refuse the empty AllowedInstanceTypes item only in the group's update.
    refused = ["WinInstanceTypesList: WinInstanceTypes has an empty item: remove the extra comma"]
    for value in ("m6a.large,", "m6a.large,,m7i.large", ",m6a.large"):
        values = enabled_parameters(**{**SPOT, "InstanceTypes": value})
        assert check_parameters(feature, values) == [], value  # the pattern passes it...
        assert failed_assertions(feature, values) == refused, value  # ...the Rule does not
        # Evaluated, the list would give the group an empty allowed type.
        allowed = props(render(feature, values), "WinGroup")["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][0]
        assert "" in allowed["InstanceRequirements"]["AllowedInstanceTypes"], value
    for value in ("", "m6a.large", "m6a.large, m7i.large"):
        assert failed_assertions(feature, enabled_parameters(**{**SPOT, "InstanceTypes": value})) == [], value
    off = {**enabled_parameters(InstanceTypes="m6a.large,"), "EnableWinTaskScriptService": "false"}
    assert failed_assertions(feature, off) == []  # the switch off: nothing to refuse


def test_the_mode_lints_clean(feature: dict[str, Any]) -> None:
    # The shipped templates hold the On-Demand defaults: Spot as deployed (test_lint.lint_deployed).
    deployments = [
        enabled_parameters(**values) for values in ({**SPOT}, {"OnDemandPercentage": "0"}, {"InstanceTypes": THREE})
    ]
    assert lint_deployed(feature, deployments) == []


def test_other_configs_build_the_mode(feature: dict[str, Any]) -> None:
    config = WorkersConfig(prefix="Masslynx", max_fleet_size=1000, default_instance_type="c7i.2xlarge")
    template = json.loads(build_template(config).to_json())
    parameters = enabled_parameters(config, InstanceTypes=THREE, OnDemandPercentage="0", OnDemandBaseCapacity="900")
    group = props(render(template, parameters), "MasslynxGroup")
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][0]["InstanceRequirements"][
        "AllowedInstanceTypes"
    ] == ["c7i.2xlarge", *THREE.split(",")]
    assert template["Parameters"]["MasslynxOnDemandBaseCapacity"]["MaxValue"] == 1000


# --- on the emulator: create in the Spot mode, then the second deploys


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    from conftest import emulator_clients
    from winworkers.emulator import local_aws

    with local_aws() as endpoint:
        clients = emulator_clients(endpoint, "us-east-1")
        scaling = boto3.client(
            "autoscaling",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
        )
        yield clients, scaling


def _deployed_group(clients: Any, scaling: Any, stack: str) -> dict[str, Any]:
    resources = clients.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    name = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "WinGroup")
    group: dict[str, Any] = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return group


@pytest.mark.filterwarnings("ignore::UserWarning:moto")
def test_the_spot_mode_deploys_and_switches_on_the_emulator(aws: tuple[Any, Any]) -> None:
    from conftest import TEMPLATE_BUCKET
    from winworkers.deploy import deploy

    clients, scaling = aws
    feature = ROOT / "templates" / "winworkers.json"
    lines: list[str] = []

    def run(values: dict[str, str]) -> Any:
        lines.clear()
        return deploy(
            clients,
            "ww-spot",
            feature,
            enabled_parameters(S3PrefixListId="", **values),
            poll_seconds=0.05,
            echo=lines.append,
            template_bucket=TEMPLATE_BUCKET,
        )

    def updated() -> set[str]:
        return {m.group(1) for line in lines if (m := re.match(r"^\S+  (\S+) +UPDATE_COMPLETE", line))}

    created = run(SPOT)
    assert created.status == "CREATE_COMPLETE" and set(created.resources) == {"CREATE_COMPLETE"}
    group = _deployed_group(clients, scaling, "ww-spot")
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"]["SpotAllocationStrategy"] == "price-capacity-optimized"
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 30
    (override,) = policy["LaunchTemplate"]["Overrides"]
    assert override["InstanceRequirements"]["AllowedInstanceTypes"] == ["m6i.large", *THREE.split(",")]
    template_id = policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"]

    # Each of the three updates only the group in place: no new launch template version, no refresh
    # (the refresh custom resource carries what the workers run with; none of the three is in it).
    for values in (
        {**SPOT, "OnDemandPercentage": "0"},
        {**SPOT, "OnDemandBaseCapacity": "2"},
        {**SPOT, "InstanceTypes": "c7i.large"},
    ):
        assert run(values).status == "UPDATE_COMPLETE"
        assert updated() == {"WinGroup", "ww-spot"}, lines
    policy = _deployed_group(clients, scaling, "ww-spot")["MixedInstancesPolicy"]
    assert policy["LaunchTemplate"]["Overrides"][0]["InstanceRequirements"]["AllowedInstanceTypes"] == [
        "m6i.large",
        "c7i.large",
    ]
    # Back to the defaults (given: a value left out keeps its previous one): the 0.2.0 group, on the
    # same launch template, and still no refresh.
    assert run(
        {"InstanceTypes": "", "OnDemandPercentage": "100", "OnDemandBaseCapacity": "0"}
    ).status == "UPDATE_COMPLETE" and updated() == {"WinGroup", "ww-spot"}
    group = _deployed_group(clients, scaling, "ww-spot")
    assert group["LaunchTemplate"]["LaunchTemplateId"] == template_id
    assert (
        scaling.describe_instance_refreshes(AutoScalingGroupName=group["AutoScalingGroupName"])["InstanceRefreshes"]
        == []
    )


def test_the_deployer_may_create_a_mixed_instances_group() -> None:
    from winworkers.deployer_policy import allows, policy_document

    document = policy_document(WorkersConfig())
    # Attribute-based selection (the registry schema's handlers: ec2:Get*), launches, the service-linked role.
    for action in ("ec2:GetInstanceTypesFromInstanceRequirements", "ec2:RunInstances", "iam:CreateServiceLinkedRole"):
        assert allows(document, action), action


@pytest.mark.filterwarnings("ignore::UserWarning:moto")
def test_a_default_stack_updated_to_spot_keeps_its_launch_template_and_starts_no_refresh(
    aws: tuple[Any, Any],
) -> None:
    from conftest import TEMPLATE_BUCKET
    from winworkers.deploy import deploy

    clients, scaling = aws
    lines: list[str] = []

    def run(values: dict[str, str]) -> Any:
        lines.clear()
        parameters = enabled_parameters(S3PrefixListId="", **values)
        return deploy(
            clients,
            "ww-to-spot",
            ROOT / "templates" / "winworkers.json",
            parameters,
            poll_seconds=0.05,
            echo=lines.append,
            template_bucket=TEMPLATE_BUCKET,
        )

    assert run({}).status == "CREATE_COMPLETE"
    before = _deployed_group(clients, scaling, "ww-to-spot")
    assert not before.get("MixedInstancesPolicy")  # the 0.2.0 group, on the emulator too (patch 18); moto shows {}
    version = before["LaunchTemplate"]
    assert run(SPOT).status == "UPDATE_COMPLETE"
    changed = {m.group(1) for line in lines if (m := re.match(r"^\S+  (\S+) +UPDATE_COMPLETE", line))}
    assert changed == {"WinGroup", "ww-to-spot"}, lines
    after = _deployed_group(clients, scaling, "ww-to-spot")
    spec = after["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert (spec["LaunchTemplateId"], spec["Version"]) == (version["LaunchTemplateId"], version["Version"])
    assert (
        scaling.describe_instance_refreshes(AutoScalingGroupName=after["AutoScalingGroupName"])["InstanceRefreshes"]
        == []
    )


def test_no_rule_routes_the_spot_signals(feature: dict[str, Any]) -> None:
    # docs/worker-contract.md: "the template routes neither event anywhere" (the interruption
    # warning and the rebalance recommendation): the worker reads the metadata itself.
    text = json.dumps(render(feature, enabled_parameters(OnDemandPercentage="0")))
    for event in ("EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"):
        assert event not in text
    contract = " ".join((ROOT / "docs" / "worker-contract.md").read_text(encoding="utf-8").split())
    assert "the template routes neither event anywhere" in contract
