"""The template as an operator meets it in the CloudFormation console: the parameters in groups
(AWS::CloudFormation::Interface, generated from the rows of PARAMETERS), each labelled, every
required input saying so, and a stack from only the required inputs passing the Rules and the
deploy pre-check alike (docs/aws-behaviours.md, rows 176 and 177)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cfnlint.data.schemas.other.parameters
import own_switch_parent
import pytest
from troposphere import Parameter, Template

from conftest import ROOT, TEMPLATE_BUCKET, as_dict
from winworkers import WorkersConfig, add_to, build_template, check_pair, child_template, nested_stack
from winworkers.constraints import check_inputs
from winworkers.deploy import deploy
from winworkers.parameters import INTERFACE, PARAMETERS, SWITCH, Group, Required, param_name, parameter_specs
from winworkers.renderings import EXAMPLE_INPUTS, MODES, enabled_parameters
from winworkers.rules import failed_assertions

URL = "https://templates.s3.us-east-1.amazonaws.com/winworkers.json"
FEATURE = ROOT / "templates" / "winworkers.json"
CONFIGS = {
    "default": WorkersConfig(),
    "no-alarms-prefixed": WorkersConfig(include_alarms=False, prefix="P", max_fleet_size=7),
}
REQUIRED_ON = "Required when EnableWinTaskScriptService is true."
REQUIRED_EXISTING = "Required when EnableWinTaskScriptService is true and {mode} is existing-subnets."


def _groups(template: dict[str, Any]) -> list[tuple[str, list[str]]]:
    interface = template["Metadata"][INTERFACE]
    return [(g["Label"]["default"], g["Parameters"]) for g in interface["ParameterGroups"]]


def _grouped(template: dict[str, Any]) -> list[str]:
    return [name for _, names in _groups(template) for name in names]


# The table


def test_every_row_has_a_group_and_a_label_and_every_group_has_a_row() -> None:
    for row in PARAMETERS:
        assert isinstance(row.group, Group), row.name
        assert row.label and row.label == row.label.strip() and "(" not in row.label, row.name
    assert {row.group for row in PARAMETERS} == set(Group), "a group with no parameter"
    for name, config in CONFIGS.items():
        assert {spec.group for spec in parameter_specs(config)} == set(Group), name


# The template


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_parameter_is_in_exactly_one_group_in_the_operators_order(config: WorkersConfig) -> None:
    template = as_dict(build_template(config))
    grouped = _grouped(template)
    assert sorted(grouped) == sorted(template["Parameters"]), "each parameter once, and only parameters"
    assert [label for label, _ in _groups(template)] == [group.value for group in Group]
    assert _groups(template)[0] == (Group.FEATURE.value, [SWITCH])
    platform = dict(_groups(template))[Group.PLATFORM.value]
    assert platform[:3] == [param_name(config, n) for n in ("DataBucket", "DataPrefix", "WorkQueueArn")]


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_every_parameter_has_a_label_naming_it(config: WorkersConfig) -> None:
    template = as_dict(build_template(config))
    labels = template["Metadata"][INTERFACE]["ParameterLabels"]
    assert set(labels) == set(template["Parameters"])
    rows = {param_name(config, spec.name): spec for spec in parameter_specs(config)}
    for name, label in labels.items():
        # The console shows the label instead of the logical name; the Rules' messages name it.
        assert label == {"default": f"{rows[name].label} ({name})"}, name


def test_descriptions_are_within_cloudformations_limit(feature: dict[str, Any]) -> None:
    # The limit as cfn-lint ships it, from the Parameters section reference (4,000 characters).
    schema = json.loads(
        (Path(cfnlint.data.schemas.other.parameters.__file__).parent / "configuration.json").read_text()
    )
    (parameter,) = schema["patternProperties"].values()
    limit = parameter["properties"]["Description"]["maxLength"]
    assert limit == 4000
    for name, parameter in feature["Parameters"].items():
        assert len(parameter["Description"]) <= limit, name


# Required inputs


def _described_required(template: dict[str, Any], mode: str, config: WorkersConfig) -> set[str]:
    """The parameters whose descriptions say they are required in mode."""
    sentences = [REQUIRED_ON]
    if MODES[mode].get("NetworkMode") == "existing-subnets":
        sentences.append(REQUIRED_EXISTING.format(mode=param_name(config, "NetworkMode")))
    return {n for n, p in template["Parameters"].items() if any(p["Description"].endswith(s) for s in sentences)}


def _only_required(mode: str) -> dict[str, str]:
    """The inputs an operator must give in the console in mode: the switch, the platform's, and
    the mode's own network inputs (the example values, which pass every constraint)."""
    return {SWITCH: "true", **{f"Win{k}": v for k, v in {**EXAMPLE_INPUTS, **MODES[mode]}.items() if k != "AzCount"}}


@pytest.mark.parametrize("mode", ["isolated-2az", "existing-subnets"])
def test_the_inputs_described_as_required_are_the_ones_the_rules_require(feature: dict[str, Any], mode: str) -> None:
    values = enabled_parameters(mode=mode)
    assert failed_assertions(feature, values) == []
    required = {name for name in feature["Parameters"] if failed_assertions(feature, {**values, name: ""})} - {SWITCH}
    assert required == _described_required(feature, mode, WorkersConfig())
    assert {f"Win{n}" for n in EXAMPLE_INPUTS} <= required


@pytest.mark.parametrize("mode", ["isolated-2az", "existing-subnets"])
def test_only_the_required_inputs_pass_the_rules_and_the_precheck_and_each_is_needed(
    feature: dict[str, Any], mode: str
) -> None:
    # What an operator types in the console: only the inputs whose descriptions say required.
    given = _only_required(mode)
    required = _described_required(feature, mode, WorkersConfig())
    assert set(given) - {SWITCH, "WinNetworkMode"} == required
    assert failed_assertions(feature, given) == []
    assert check_inputs(feature, given) == []
    for name in sorted(required):
        dropped = {k: v for k, v in given.items() if k != name}
        assert any(f"{name} is required" in f for f in failed_assertions(feature, dropped)), name
        assert any(f"{name} is required" in p for p in check_inputs(feature, dropped)), name


@pytest.mark.filterwarnings("ignore::UserWarning:moto")
def test_the_feature_deploys_on_the_emulator_from_only_the_required_inputs(aws: Any) -> None:
    # Only what the console's form needs typed; every other input is its default.
    given = _only_required("isolated-2az")
    created = deploy(
        aws, "ww-console", FEATURE, given, poll_seconds=0.05, echo=[].append, template_bucket=TEMPLATE_BUCKET
    )
    assert (created.status, set(created.resources)) == ("CREATE_COMPLETE", {"CREATE_COMPLETE"})
    described = aws.cloudformation.describe_stacks(StackName="ww-console")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}["WinS3PrefixListId"] == (
        given["WinS3PrefixListId"]
    )
    summaries = aws.cloudformation.list_stack_resources(StackName="ww-console")["StackResourceSummaries"]
    assert "WinGroup" in {r["LogicalResourceId"] for r in summaries}


def test_a_required_description_names_the_parents_own_switch() -> None:
    template = as_dict(own_switch_parent.own_switch_parent())
    parameters = template["Parameters"]
    assert parameters["MasslynxArtifactBucket"]["Description"].endswith("Required when EnableWindowsFleet is true.")
    assert parameters["ImagingArtifactBucket"]["Description"].endswith(
        "Required when condition ImagingFleetOn is true."
    )
    assert parameters["ImagingVpcId"]["Description"].endswith(
        "Required when condition ImagingFleetOn is true and ImagingNetworkMode is existing-subnets."
    )


def test_the_rules_require_exactly_the_rows_marked_required(feature: dict[str, Any]) -> None:
    rules = feature["Rules"]
    for rule, when in (("WinPlatformInputs", Required.ON), ("WinExistingNetwork", Required.EXISTING_NETWORK)):
        said = {
            a["AssertDescription"] for a in rules[rule]["Assertions"] if a["AssertDescription"].endswith(" is required")
        }
        assert said == {f"Win{row.name} is required" for row in PARAMETERS if row.required is when}, rule


# Embedding


def _parent_with_its_own_interface() -> Template:
    parent = Template()
    parent.add_parameter(Parameter("Stage", Type="String", Default="dev"))
    parent.add_parameter(Parameter("PlatformVpc", Type="String", Default=""))
    parent.add_parameter(Parameter(SWITCH, Type="String", AllowedValues=["true", "false"], Default="false"))
    parent.set_metadata(
        {
            INTERFACE: {
                "ParameterGroups": [
                    {"Label": {"default": "Platform"}, "Parameters": ["Stage", SWITCH]},
                    {"Label": {"default": Group.NETWORK.value}, "Parameters": ["PlatformVpc"]},
                ],
                "ParameterLabels": {"Stage": {"default": "Stage"}, SWITCH: {"default": "Windows fleet"}},
            },
            "Owner": "platform team",
        }
    )
    return parent


def test_add_to_merges_its_groups_into_the_parents_interface_without_clobbering_it() -> None:
    parent = _parent_with_its_own_interface()
    add_to(parent)
    template = as_dict(parent)
    groups = dict(_groups(template))
    # The parent's groups first and as they were; its switch stays in its group, with its label.
    assert _groups(template)[0] == ("Platform", ["Stage", SWITCH])
    assert groups[Group.NETWORK.value][0] == "PlatformVpc"
    assert groups[Group.NETWORK.value][1:] == _groups(as_dict(build_template()))[2][1]
    assert Group.FEATURE.value not in groups
    labels = template["Metadata"][INTERFACE]["ParameterLabels"]
    assert labels[SWITCH] == {"default": "Windows fleet"} and labels["Stage"] == {"default": "Stage"}
    assert labels["WinDataBucket"] == {"default": "Data bucket (WinDataBucket)"}
    assert template["Metadata"]["Owner"] == "platform team"
    assert sorted(_grouped(template)) == sorted(template["Parameters"])


def test_two_fleets_inline_keep_groups_of_their_own_and_each_parameter_is_grouped_once() -> None:
    """The default fleet keeps the plain labels; the Gpu fleet's are "Gpu: <group>", and its switch (the
    shared EnableWinTaskScriptService, grouped by the first fleet) leaves it no "Gpu: Feature switch"."""
    parent = Template()
    add_to(parent)
    add_to(parent, WorkersConfig(prefix="Gpu"))
    template = as_dict(parent)
    gpu = [f"Gpu: {group.value}" for group in Group if group is not Group.FEATURE]
    assert [label for label, _ in _groups(template)] == [group.value for group in Group] + gpu
    for label, names in _groups(template):
        assert {name.startswith("Gpu") for name in names} == {label.startswith("Gpu: ")}, label
    assert sorted(_grouped(template)) == sorted(template["Parameters"])
    assert set(template["Metadata"][INTERFACE]["ParameterLabels"]) == set(template["Parameters"])


def test_a_nested_parent_groups_the_parameters_it_passes_and_the_child_carries_its_own() -> None:
    parent = Template()
    nested = nested_stack(parent, URL)
    template, child = as_dict(parent), as_dict(nested.child)
    assert sorted(_grouped(template)) == sorted(template["Parameters"])
    assert _groups(template) == _groups(child) == _groups(as_dict(build_template()))
    check_pair(template, child)


def test_the_childs_fingerprint_covers_its_interface() -> None:
    parent, child = Template(), as_dict(child_template())
    nested_stack(parent, URL)
    child["Metadata"][INTERFACE]["ParameterLabels"][SWITCH]["default"] = "edited"
    with pytest.raises(ValueError, match="changed after it was built"):
        check_pair(parent, child)


# Review R1 -------------------------------------------------------------------------------------------------------


def test_two_fleets_in_one_parent_keep_their_parameters_in_groups_of_their_own() -> None:
    """examples/own_switch_parent.py (docs/embedding.md) embeds two fleets, Masslynx and Imaging. add_to merges
    each fleet's groups into a parent group "with the same label": the second fleet's "Network", "Capacity and
    image", ... join the first's, so the console shows one "Network" group of 18 parameters of two fleets, each
    fleet's inputs interleaved with the other's. Each group should hold one fleet's parameters (its label
    naming the fleet), as the parent's Rules and docs/parameters.md's table keep them apart."""
    interface = as_dict(own_switch_parent.own_switch_parent())["Metadata"][INTERFACE]
    mixed = [
        group["Label"]["default"]
        for group in interface["ParameterGroups"]
        if {p.startswith("Masslynx") for p in group["Parameters"]} == {True, False}
        and any(p.startswith("Imaging") for p in group["Parameters"])
    ]
    assert mixed == []


def test_the_nested_parents_template_url_is_grouped_and_labelled() -> None:
    """templates/parent-nested.json: WinTemplateUrl, which nested_stack declares, has no default (it must be
    given) and is in no group and has no label, so the console lists it last, under "Other parameters", apart
    from the feature's groups; every other parameter of the feature is grouped and labelled."""
    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    interface = parent["Metadata"][INTERFACE]
    grouped = {p for g in interface["ParameterGroups"] for p in g["Parameters"]}
    assert "Default" not in parent["Parameters"]["WinTemplateUrl"]
    assert "WinTemplateUrl" in grouped
    assert "WinTemplateUrl" in interface["ParameterLabels"]
