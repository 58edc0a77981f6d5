"""The Spot / mixed instances mode (issue 20 item 2): the group, rendered and evaluated as
CloudFormation would for each mode, its parameters' constraints and the pre-check, the
update of a default 0.2.0 stack, cfn-lint on a Spot configuration, and a deploy on the emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_lint import cfn_lint

from conftest import ROOT, props, render
from winworkers import WorkersConfig, build_template
from winworkers.constraints import check_parameters
from winworkers.instance_types import INSTANCE_TYPE_LIST_PATTERN, INSTANCE_TYPES
from winworkers.renderings import enabled_parameters, with_defaults
from winworkers.rules import failed_assertions

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
    assert json.dumps(rendered, sort_keys=True) == json.dumps(json.loads(GROUP_0_2_0.read_text())[mode], sort_keys=True)


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
    assert not rendered.get("Resources")


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


def test_the_mode_lints_clean(tmp_path: Path, feature: dict[str, Any]) -> None:
    # cfn-lint judges a template with its defaults; the shipped templates hold the On-Demand ones.
    paths = []
    for n, values in enumerate(({**SPOT}, {"OnDemandPercentage": "0"}, {"InstanceTypes": THREE})):
        template = with_defaults(feature, enabled_parameters(**values))
        paths.append(tmp_path / f"spot-{n}.json")
        paths[-1].write_text(json.dumps(template, indent=1), encoding="utf-8")
    assert cfn_lint(paths) == []


def test_other_configs_build_the_mode(feature: dict[str, Any]) -> None:
    config = WorkersConfig(prefix="Masslynx", max_fleet_size=1000, default_instance_type="c7i.2xlarge")
    template = json.loads(build_template(config).to_json())
    parameters = enabled_parameters(config, InstanceTypes=THREE, OnDemandPercentage="0", OnDemandBaseCapacity="900")
    group = props(render(template, parameters), "MasslynxGroup")
    assert group["MixedInstancesPolicy"]["LaunchTemplate"]["Overrides"][0]["InstanceRequirements"][
        "AllowedInstanceTypes"
    ] == ["c7i.2xlarge", *THREE.split(",")]
    assert template["Parameters"]["MasslynxOnDemandBaseCapacity"]["MaxValue"] == 1000
