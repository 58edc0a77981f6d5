"""Deploy-time input checks: every parameter constrained, and the Rules reject bad combinations."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ROOT
from winworkers import WorkersConfig
from winworkers.docs import parameter_table
from winworkers.renderings import enabled_parameters
from winworkers.rules import failed_assertions

CONSTRAINTS = {"AllowedValues", "AllowedPattern", "MinValue", "MaxValue"}


def test_every_parameter_is_constrained(feature: dict[str, Any]) -> None:
    for name, spec in feature["Parameters"].items():
        assert CONSTRAINTS & set(spec) or spec["Type"].startswith("AWS::"), name
        assert spec["Description"], name


def test_enabled_example_values_pass_the_rules(feature: dict[str, Any]) -> None:
    from winworkers.renderings import MODES

    for mode in MODES:
        assert failed_assertions(feature, enabled_parameters(mode=mode)) == [], mode


def test_disabled_defaults_pass_the_rules(feature: dict[str, Any]) -> None:
    assert failed_assertions(feature, {}) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MinSize": "3", "MaxSize": "2"}, "WinMinSize <= WinDesiredCapacity <= WinMaxSize"),
        ({"MinSize": "10", "MaxSize": "0"}, "WinMinSize <= WinDesiredCapacity"),
        ({"DesiredCapacity": "5", "MaxSize": "4"}, "<= WinMaxSize"),
        ({"DesiredCapacity": "1", "MinSize": "2"}, "WinMinSize <= WinDesiredCapacity"),
        ({"DesiredCapacity": "10", "MaxSize": "9"}, "<= WinMaxSize"),
        ({"DataBucket": ""}, "WinDataBucket is required"),
        ({"S3PrefixListId": ""}, "WinS3PrefixListId is required"),
    ],
)
def test_rules_reject_bad_values(feature: dict[str, Any], overrides: dict[str, str], message: str) -> None:
    failures = failed_assertions(feature, enabled_parameters(**overrides))
    assert any(message in failure for failure in failures), failures


def test_rules_accept_every_ordered_capacity(feature: dict[str, Any]) -> None:
    cap = WorkersConfig().max_fleet_size
    for low in range(cap + 1):
        for high in range(low, cap + 1):
            values = enabled_parameters(MinSize=str(low), MaxSize=str(high), DesiredCapacity=str(high))
            assert failed_assertions(feature, values) == [], (low, high)
            if low:
                bad = {**values, "WinMaxSize": str(low - 1), "WinDesiredCapacity": ""}
                assert failed_assertions(feature, bad), (low, low - 1)


def test_capacities_beyond_the_rules_reach_are_not_allowed(feature: dict[str, Any]) -> None:
    # The Rules compare capacities up to max_fleet_size; the parameters allow no more.
    cap = WorkersConfig().max_fleet_size
    for name in ("MinSize", "MaxSize", "WarmPoolMinSize"):
        assert feature["Parameters"][f"Win{name}"]["MaxValue"] == cap
    assert feature["Parameters"]["WinDesiredCapacity"]["AllowedValues"] == ["", *map(str, range(cap + 1))]


def test_an_unset_desired_capacity_bounds_nothing(feature: dict[str, Any]) -> None:
    for low, high in ((1, 6), (0, 0), (10, 10)):
        values = enabled_parameters(MinSize=str(low), MaxSize=str(high), DesiredCapacity="")
        assert failed_assertions(feature, values) == [], (low, high)


def test_existing_mode_needs_its_network(feature: dict[str, Any]) -> None:
    values = enabled_parameters(mode="existing-with-endpoints", SubnetIds="", VpcId="", RouteTableIds="")
    failures = failed_assertions(feature, values)
    assert any("WinSubnetIds is required" in f for f in failures)
    assert any("WinVpcId is required" in f for f in failures)
    assert any("WinRouteTableIds is required" in f for f in failures)
    no_endpoints = enabled_parameters(mode="existing-without-endpoints", EndpointsCidr="")
    assert any("WinEndpointsCidr is required" in f for f in failed_assertions(feature, no_endpoints))


def test_readme_parameter_table_is_generated() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert parameter_table(WorkersConfig()) in readme, "README parameter table is stale: paste `winworkers params`"
