"""winworkers.constraints: the parameter constraints CloudFormation applies, checked locally
(no boto3 needed), so that `winworkers deploy` refuses a bad value before any call."""

from __future__ import annotations

from typing import Any

import pytest

from winworkers.constraints import check_inputs, check_parameters
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters


def template(**parameters: dict[str, Any]) -> dict[str, Any]:
    return {"Parameters": parameters, "Resources": {}}


def test_the_feature_defaults_and_every_example_pass(feature: dict[str, Any]) -> None:
    defaults = {name: str(spec["Default"]) for name, spec in feature["Parameters"].items()}
    assert check_inputs(feature, defaults) == []
    for mode in MODES:
        assert check_inputs(feature, enabled_parameters(mode=mode)) == [], mode


@pytest.mark.parametrize("value", ["0", "7", "-2", "2.5", ".5", "1e3", "+4", "1.E-2"])
def test_numbers_cloudformation_takes(value: str) -> None:
    assert check_parameters(template(N={"Type": "Number"}), {"N": value}) == []


@pytest.mark.parametrize("value", ["two", "", " 1", "1 ", "nan", "inf", "1_000", "0x10", "1,2"])
def test_what_is_not_a_number(value: str) -> None:
    assert check_parameters(template(N={"Type": "Number"}), {"N": value}) == [f"N={value!r} is not a number"]


def test_number_bounds_with_either_or_both() -> None:
    spec = template(Both={"Type": "Number", "MinValue": 1, "MaxValue": 9}, Low={"Type": "Number", "MinValue": 5})
    assert check_parameters(spec, {"Both": "1", "Low": "5"}) == []
    assert check_parameters(spec, {"Both": "9.5", "Low": "4.9"}) == [
        "Both='9.5' is not allowed: a number from 1 to 9",
        "Low='4.9' is not allowed: a number >= 5",
    ]


def test_allowed_values_are_exact_and_case_sensitive() -> None:
    spec = template(S={"Type": "String", "AllowedValues": ["true", "false"]})
    assert check_parameters(spec, {"S": "true"}) == []
    assert check_parameters(spec, {"S": "True"}) == ["S='True' is not allowed: one of true, false (case-sensitive)"]
    assert check_parameters(spec, {"S": "true "}) == ["S='true ' is not allowed: one of true, false (case-sensitive)"]
    numbers = template(N={"Type": "Number", "AllowedValues": ["1", "3"]})
    assert check_parameters(numbers, {"N": "2"}) == ["N='2' is not allowed: one of 1, 3"]


def test_allowed_pattern_must_match_the_whole_value() -> None:
    # CloudFormation anchors the pattern: "abc1" contains a match of [a-z]+, but is not one.
    spec = template(S={"Type": "String", "AllowedPattern": "[a-z]+"})
    assert check_parameters(spec, {"S": "abc"}) == []
    assert check_parameters(spec, {"S": "abc1"}) == ["S='abc1' is not allowed: pattern [a-z]+"]
    assert check_parameters(spec, {"S": "abc\n"}) == ["S='abc\\n' is not allowed: pattern [a-z]+"]


def test_the_constraint_description_says_what_is_allowed() -> None:
    spec = template(S={"Type": "String", "AllowedPattern": "[a-z]+", "ConstraintDescription": "lower-case letters"})
    assert check_parameters(spec, {"S": "ABC"}) == ["S='ABC' is not allowed: lower-case letters (pattern [a-z]+)"]


def test_a_comma_delimited_list_is_checked_item_by_item() -> None:
    spec = template(
        Ids={"Type": "CommaDelimitedList", "AllowedPattern": "^(subnet-[0-9a-f]{8})?$"},
        Zones={"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]},
        Counts={"Type": "List<Number>"},
    )
    good = {"Ids": "subnet-0123abcd, subnet-4567ef01", "Zones": "a,b", "Counts": "1,2"}
    assert check_parameters(spec, good) == []
    assert check_parameters(spec, {"Ids": "subnet-0123abcd,subnet-x", "Zones": "a,c", "Counts": "1,x"}) == [
        "Ids item 'subnet-x' is not allowed: pattern ^(subnet-[0-9a-f]{8})?$",
        "Zones item 'c' is not allowed: one of a, b (case-sensitive)",
        "Counts item 'x' is not a number",
    ]


def test_string_lengths() -> None:
    spec = template(S={"Type": "String", "MinLength": 2, "MaxLength": 4}, T={"Type": "String", "MinLength": 1})
    assert check_parameters(spec, {"S": "ab", "T": "x"}) == []
    assert check_parameters(spec, {"S": "abcde", "T": ""}) == [
        "S='abcde' is not allowed: 2 to 4 characters (it has 5)",
        "T='' is not allowed: at least 1 characters (it has 0)",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.0.0.1/16", "is not a network address: host bits are set (the network is 10.0.0.0/16)"),
        ("999.1.1.1/16", "is not a CIDR block: 999.1.1.1 is not an IP address"),
        ("10.0.0.0", "is not a CIDR block (address/prefix length)"),
        ("10.0.0.0/33", "is not a CIDR block: '10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    ],
)
def test_cidr_parameters_hold_real_networks(value: str, problem: str) -> None:
    # The pattern lets every one of these through: only a real parse catches them.
    spec = template(VpcCidr={"Type": "String", "AllowedPattern": r"^((\d{1,3}\.){3}\d{1,3}(/\d{1,2})?)?$"})
    assert check_parameters(spec, {"VpcCidr": "10.250.0.0/22"}) == []
    assert check_parameters(spec, {"VpcCidr": ""}) == []  # empty: the Rules decide whether it is needed
    assert check_parameters(spec, {"VpcCidr": value}) == [f"VpcCidr={value!r} {problem}"]


def test_unknown_and_missing_parameters_are_named() -> None:
    spec = template(Required={"Type": "String"}, Optional={"Type": "String", "Default": ""})
    assert check_parameters(spec, {"Typo": "x", "Other": "y"}) == [
        "Other is not a parameter of this template",
        "Typo is not a parameter of this template",
        "Required has no default: give it a value",
    ]


def test_a_pattern_python_cannot_read_is_left_to_cloudformation() -> None:
    spec = template(S={"Type": "String", "AllowedPattern": r"\p{Alpha}+"})  # Java syntax
    assert check_parameters(spec, {"S": "anything"}) == []


def test_constraints_come_before_the_rules(feature: dict[str, Any]) -> None:
    # "two" also breaks the capacity Rule, which would be a confusing thing to report.
    assert check_inputs(feature, enabled_parameters(MinSize="two")) == ["WinMinSize='two' is not a number"]
    assert check_inputs(feature, enabled_parameters(MinSize="3", MaxSize="2")) == [
        "WinCapacityOrder: WinMinSize <= WinDesiredCapacity <= WinMaxSize"
        " (got WinMinSize='3', WinDesiredCapacity='', WinMaxSize='2')"
    ]
    assert check_inputs(feature, {SWITCH: "true"})[0] == "WinPlatformInputs: WinDataBucket is required"


def test_filled_parameters_count_as_set_for_the_rules_only(feature: dict[str, Any]) -> None:
    # winworkers deploy looks up an empty prefix list; CloudFormation alone would refuse it.
    values = enabled_parameters(S3PrefixListId="")
    assert check_inputs(feature, values) == ["WinPlatformInputs: WinS3PrefixListId is required"]
    assert check_inputs(feature, values, filled=["WinS3PrefixListId"]) == []
    # The other Rules still hold, and a given value still meets its constraints.
    assert check_inputs(feature, {**values, "WinDataBucket": ""}, filled=["WinS3PrefixListId"]) == [
        "WinPlatformInputs: WinDataBucket is required"
    ]
    bad = check_inputs(feature, {**values, "WinS3PrefixListId": "pl"}, filled=["WinS3PrefixListId"])
    assert len(bad) == 1 and bad[0].startswith("WinS3PrefixListId='pl' is not allowed"), bad
    with pytest.raises(ValueError, match=r"filled=\['S3PrefixListId'\] is not allowed"):
        check_inputs(feature, values, filled=["S3PrefixListId"])


# --- WinEndpointsCidr: the network's endpoints, never the Internet (i18-net) -----------------

CIDR_REFUSED = "is not allowed: empty or an IPv4 CIDR of /16 to /32, the endpoints' own block"
CIDR_RULE = (
    "WinExistingNetwork: WinEndpointsCidr must hold the network's endpoints only (/16 or longer): "
    "through a NAT, 0.0.0.0/0 is HTTPS to the Internet past every endpoint policy"
)


class NoAws:
    """A client that fails the test if anything is called on it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"AWS was called: {name}")


@pytest.mark.parametrize("value", ["10.0.0.0/16", "10.20.30.0/24", "10.20.30.40/32", "100.64.0.0/16", ""])
def test_endpoints_cidr_takes_one_networks_block(feature: dict[str, Any], value: str) -> None:
    assert (
        check_inputs(feature, enabled_parameters(mode="existing-subnets", EndpointsCidr=value or "10.0.0.0/16")) == []
    )
    assert check_parameters(feature, {"WinEndpointsCidr": value}) == []


@pytest.mark.parametrize("value", ["0.0.0.0/0", "0.0.0.0/1", "10.0.0.0/8", "172.16.0.0/12", "10.0.0.0/15"])
def test_endpoints_cidr_wider_than_a_vpc_is_refused_by_the_parameter(feature: dict[str, Any], value: str) -> None:
    # In either mode: the parameter's own constraint, which CloudFormation applies before anything else.
    for mode in MODES:
        problems = check_inputs(feature, enabled_parameters(mode=mode, EndpointsCidr=value))
        assert problems and problems[0].startswith(f"WinEndpointsCidr={value!r} {CIDR_REFUSED}"), problems


def test_the_rule_refuses_the_routes_to_everywhere(feature: dict[str, Any]) -> None:
    from winworkers.parameters import ROUTES_TO_EVERYWHERE
    from winworkers.rules import failed_assertions

    # The Rule, as CloudFormation evaluates it (without the parameter constraints), says why.
    for value in ROUTES_TO_EVERYWHERE:
        assert CIDR_RULE in failed_assertions(feature, enabled_parameters(mode="existing-subnets", EndpointsCidr=value))
    assert failed_assertions(feature, enabled_parameters(mode="existing-subnets", EndpointsCidr="10.0.0.0/16")) == []
    # The Rule holds it even where a copy of the template lost the pattern.
    loose = {**feature, "Parameters": {**feature["Parameters"], "WinEndpointsCidr": {"Type": "String", "Default": ""}}}
    assert check_inputs(loose, enabled_parameters(mode="existing-subnets", EndpointsCidr="0.0.0.0/0")) == [CIDR_RULE]


def test_winworkers_deploy_refuses_it_in_one_line_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    from conftest import ROOT
    from winworkers.cli import main
    from winworkers.deploy import Clients, DeployError, deploy

    template = ROOT / "templates" / "winworkers.json"
    values = enabled_parameters(mode="existing-subnets", EndpointsCidr="0.0.0.0/0")
    with pytest.raises(DeployError) as refused:
        deploy(Clients(NoAws(), NoAws(), NoAws(), "us-east-1"), "ww-open", Path(template), values)
    assert str(refused.value).startswith(f"WinEndpointsCidr='0.0.0.0/0' {CIDR_REFUSED}")
    flags = [f for k, v in values.items() for f in ("--parameter", f"{k}={v}")]
    # No --endpoint-url and no credentials: the check comes before any connection.
    assert main(["deploy", "--stack-name", "ww-open", "--template", str(template), *flags]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"winworkers deploy: WinEndpointsCidr='0.0.0.0/0' {CIDR_REFUSED}") and err.count("\n") == 1
    assert out == ""


def test_the_pre_check_can_read_every_pattern_the_templates_declare() -> None:
    # A pattern Python's re cannot compile (a Java class such as \p{Lu}) is left to CloudFormation by the
    # pre-check (_check_item); none of the shipped templates' patterns may be one (review 31, finding 3).
    import json
    import re

    from conftest import ROOT

    unread = []
    for path in sorted((ROOT / "templates").glob("*.json")):
        for name, spec in json.loads(path.read_text(encoding="utf-8"))["Parameters"].items():
            try:
                re.compile(spec.get("AllowedPattern", ""))
            except re.error as error:
                unread.append(f"{path.name} {name}: {error}")
    assert unread == []
