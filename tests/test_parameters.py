"""Deploy-time input checks: every parameter constrained, and the Rules reject bad combinations."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import ROOT, as_dict
from winworkers import WorkersConfig, build_template
from winworkers.docs import parameter_table
from winworkers.parameters import RULE_CAPACITY_BOUND
from winworkers.renderings import enabled_parameters
from winworkers.rules import failed_assertions
from winworkers.templates import render

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
        ({"DesiredCapacity": "100", "MaxSize": "99"}, "<= WinMaxSize"),
        ({"DataBucket": ""}, "WinDataBucket is required"),
        ({"S3PrefixListId": ""}, "WinS3PrefixListId is required"),
    ],
)
def test_rules_reject_bad_values(feature: dict[str, Any], overrides: dict[str, str], message: str) -> None:
    failures = failed_assertions(feature, enabled_parameters(**overrides))
    assert any(message in failure for failure in failures), failures


def test_rules_accept_every_ordered_capacity(feature: dict[str, Any]) -> None:
    for low in range(0, 13):
        for high in range(low, 13):
            values = enabled_parameters(MinSize=str(low), MaxSize=str(high), DesiredCapacity=str(high))
            assert failed_assertions(feature, values) == [], (low, high)
            if low:
                bad = {**values, "WinMaxSize": str(low - 1), "WinDesiredCapacity": ""}
                assert failed_assertions(feature, bad), (low, low - 1)


@pytest.mark.parametrize(("low", "high"), [(3, 2), (50, 49), (1000, 999), (2, 0)])
def test_the_precheck_names_the_values_at_any_size(feature: dict[str, Any], low: int, high: int) -> None:
    failures = failed_assertions(feature, enabled_parameters(MinSize=str(low), MaxSize=str(high)))
    assert f"WinMinSize='{low}'" in failures[0] and f"WinMaxSize='{high}'" in failures[0], failures


def _cloudformation_rule_fails(template: dict[str, Any], values: dict[str, str]) -> bool:
    """What CloudFormation itself evaluates: the Rule, without the pre-check's numeric order."""
    from winworkers.rules import _eval, parameter_values

    parsed = parameter_values(template, values)
    rule = template["Rules"]["WinCapacityOrder"]
    return not all(_eval(a["Assert"], parsed) for a in rule["Assertions"])


def test_cloudformation_refuses_small_bad_orders_itself(feature: dict[str, Any]) -> None:
    bound = RULE_CAPACITY_BOUND
    for high in range(bound):
        for low in range(high + 1, 12):
            assert _cloudformation_rule_fails(feature, enabled_parameters(MinSize=str(low), MaxSize=str(high)))
            assert _cloudformation_rule_fails(
                feature, enabled_parameters(MinSize="0", DesiredCapacity=str(low), MaxSize=str(high))
            )
    # Above the bound, only the pre-check and Auto Scaling itself refuse it (documented).
    assert not _cloudformation_rule_fails(feature, enabled_parameters(MinSize="9", MaxSize=str(bound)))


@pytest.mark.parametrize("cap", [1, 10, 100, 1000])
def test_capacity_parameters_are_bounded_by_max_fleet_size(cap: int) -> None:
    template = as_dict(build_template(WorkersConfig(max_fleet_size=cap)))
    parameters = template["Parameters"]
    for name in ("WinMinSize", "WinMaxSize"):
        assert parameters[name]["MaxValue"] == cap
    pattern = re.compile(parameters["WinDesiredCapacity"]["AllowedPattern"])
    allowed = [n for n in range(cap * 2 + 20) if pattern.fullmatch(str(n))]
    assert allowed == list(range(cap + 1))
    assert pattern.fullmatch("") and not pattern.fullmatch("01") and not pattern.fullmatch("-1")


def test_template_size_does_not_depend_on_fleet_size() -> None:
    sizes = {cap: len(render(build_template(WorkersConfig(max_fleet_size=cap)))) for cap in (10, 100, 1000)}
    # Only the digits of the bound differ (MaxValue and the pattern).
    assert max(sizes.values()) - min(sizes.values()) < 64, sizes


def test_an_unset_desired_capacity_bounds_nothing(feature: dict[str, Any]) -> None:
    for low, high in ((1, 6), (0, 0), (10, 10)):
        values = enabled_parameters(MinSize=str(low), MaxSize=str(high), DesiredCapacity="")
        assert failed_assertions(feature, values) == [], (low, high)


def test_existing_mode_needs_its_network(feature: dict[str, Any]) -> None:
    values = enabled_parameters(mode="existing-subnets", SubnetIds="", VpcId="", EndpointsCidr="")
    failures = failed_assertions(feature, values)
    assert any("WinSubnetIds is required" in f for f in failures)
    assert any("WinVpcId is required" in f for f in failures)
    assert any("WinEndpointsCidr is required" in f for f in failures)
    # The isolated VPC reads none of them.
    assert failed_assertions(feature, enabled_parameters(mode="isolated-2az", EndpointsCidr="")) == []


def test_readme_parameter_table_is_generated() -> None:
    from readme_table import document_of

    page = document_of("parameters").read_text(encoding="utf-8")  # docs/parameters.md
    assert parameter_table(WorkersConfig()) in page, "the parameter table is stale: make templates"


def test_the_table_is_data_one_row_per_parameter_in_template_order() -> None:
    from winworkers import parameters

    names = [row.name for row in parameters.PARAMETERS]
    assert len(set(names)) == len(names), "one row per parameter"
    for config in (WorkersConfig(), WorkersConfig(include_alarms=False, prefix="P", max_fleet_size=7)):
        rendered = list(build_template(config).parameters)
        present = [row for row in parameters.PARAMETERS if row.when is None or row.when(config)]
        assert rendered == [parameters.param_name(config, row.name) for row in present]
    # What depends on the config is a named function of the module, never an inline lambda.
    functions = {v for row in parameters.PARAMETERS for v in vars(row).values() if callable(v)}
    assert functions, "the table has config-dependent values"
    for function in functions:
        assert getattr(parameters, function.__name__) is function, function


def _functions(path: str) -> list[tuple[str, int]]:
    import ast

    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return [
        (node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_parameters_module_has_no_long_function() -> None:
    # The table is data (PARAMETERS); a function that grows past this is a table in disguise.
    long = [(name, lines) for name, lines in _functions("winworkers/parameters.py") if lines > 60]
    assert long == []


def _imported_modules(path: str) -> set[str]:
    import ast

    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    modules = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return modules | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_config_and_parameters_do_not_import_each_other() -> None:
    # The instance types both need live on a floor below them, which imports only its generated data.
    assert "winworkers.parameters" not in _imported_modules("winworkers/config.py")
    below = {m for m in _imported_modules("winworkers/instance_types.py") if m.startswith("winworkers")}
    assert below == {"winworkers.instance_type_data"}
    assert not {m for m in _imported_modules("winworkers/instance_type_data.py") if m.startswith("winworkers")}
