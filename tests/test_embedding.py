"""Embedding into a real parent stack: parents that only inline or only nest the
feature lint clean with the switch on and off in every network mode (tests/test_embedding_lint.py,
a module of its own so that its lint runs beside this one's tests), the nested stack receives
strings, the parent and its child are checked as a pair, and wiring mistakes are refused when
the parent is built."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import inline_parent
import nested_parent
import own_switch_parent
import pytest
from moto import mock_aws
from test_lint import cfn_lint, lint_deployed
from troposphere import And, Condition, Equals, GetAtt, Not, Output, Parameter, Ref, Sub, Template
from troposphere.s3 import Bucket
from troposphere.sqs import Queue

from conftest import ROOT, as_dict, render, resources_of
from winworkers import NestedFeature, WorkersConfig, add_to, build_template, check_pair, child_template, nested_stack
from winworkers.docs import output_table
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters
from winworkers.templates import INLINE_LIMIT

URL = "https://templates.s3.us-east-1.amazonaws.com/winworkers.json"


def _only_inline() -> Template:
    parent = Template()
    add_to(parent)
    return parent


def _only_nested() -> Template:
    parent = Template()
    nested_stack(parent, URL)
    return parent


PARENTS: dict[str, Callable[[], Template]] = {
    "only-inline": _only_inline,
    "only-nested": _only_nested,
    "example-inline": inline_parent.inline_parent,
    "example-nested": lambda: nested_parent.nested_parent()[0],
}


def _values(template: dict[str, Any], mode: str, switch: str) -> dict[str, str]:
    """Enabled example values for mode (the switch as given), for the parameters template declares
    (the example nested parent's child template URL too: it has no default)."""
    values = enabled_parameters(mode=mode, **{SWITCH: switch}) | {"WinTemplateUrl": URL}
    return {name: value for name, value in values.items() if name in template["Parameters"]}


def test_moto_validates_parents_that_only_inline_or_only_nest() -> None:
    # moto's ValidateTemplate runs cfn-lint and fails on its warnings (W8001: a condition nothing uses).
    with mock_aws():
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        for build in (_only_inline, _only_nested):
            cloudformation.validate_template(TemplateBody=build().to_json())


def test_a_parent_that_only_nests_declares_only_what_it_uses() -> None:
    parent = _only_nested()
    data, child = as_dict(parent), as_dict(child_template())
    assert set(data["Resources"]) == {"WinStack"}
    assert set(data["Conditions"]) == {"WinEnabled"}
    # The Rules check the inputs before anything is created; they refer to parameters only.
    assert data["Rules"] == child["Rules"]
    assert set(data["Parameters"]) == set(child["Parameters"])
    assert "Outputs" not in data


@pytest.mark.parametrize("mode", MODES)
def test_the_nested_stack_receives_strings_that_build_the_child(mode: str) -> None:
    parent, child = as_dict(_only_nested()), as_dict(child_template())
    values = _values(parent, mode, "true")
    passed = render(parent, values)["Resources"]["WinStack"]["Properties"]["Parameters"]
    # CloudFormation refuses anything but strings here (a CommaDelimitedList is a list).
    assert [name for name, value in passed.items() if not isinstance(value, str)] == []
    given = {name: str(child["Parameters"][name]["Default"]) for name in child["Parameters"]} | values
    # cloud-radar leaves out a property whose value renders as "" (CloudFormation passes it).
    assert passed == {name: value for name, value in given.items() if value != ""}
    # And the child, given exactly those strings, builds the feature.
    assert resources_of(render(child, passed), "AWS::AutoScaling::AutoScalingGroup")


def test_the_nested_stack_is_gone_when_the_switch_is_off() -> None:
    parent = as_dict(nested_parent.nested_parent()[0])
    rendered = render(parent, {SWITCH: "false", "WinTemplateUrl": URL})
    assert set(rendered["Resources"]) == {"WorkQueue", "DataBucket"}
    assert rendered.get("Outputs", {}) == {}


def test_nested_stack_returns_the_child_and_its_outputs() -> None:
    parent = Template()
    nested = nested_stack(parent, URL, WorkersConfig(prefix="Gpu"))
    assert isinstance(nested, NestedFeature)
    assert nested.enabled == "GpuEnabled"
    assert as_dict(nested.child) == as_dict(child_template(WorkersConfig(prefix="Gpu")))
    assert nested.output("GroupName").to_dict() == {"Fn::GetAtt": ["GpuStack", "Outputs.GpuGroupName"]}
    assert "GpuGroupName" in nested.child.outputs
    metadata = as_dict(parent)["Resources"]["GpuStack"]["Metadata"]["winworkers"]
    assert metadata["fingerprint"] == nested.fingerprint == nested.child.metadata["winworkers"]["fingerprint"]
    assert metadata["config"]["prefix"] == "Gpu"


# --- the pair: a parent and the child it was built for


def test_the_committed_nested_parent_and_child_are_a_pair() -> None:
    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    child = json.loads((ROOT / "templates" / "winworkers.json").read_text())
    check_pair(parent, child)


def test_a_parent_and_a_child_from_different_configs_are_refused() -> None:
    parent = Template()
    nested_stack(parent, URL, WorkersConfig(prefix="Gpu"))
    with pytest.raises(ValueError, match=r'expects the child with fingerprint \w+ .*"prefix": "Gpu"'):
        check_pair(as_dict(parent), as_dict(build_template()))


def test_a_child_edited_after_it_was_built_is_refused() -> None:
    parent, child = Template(), as_dict(child_template())
    nested_stack(parent, URL)
    check_pair(parent, child)
    child["Resources"]["WinGroup"]["Properties"]["MaxSize"] = "50"
    with pytest.raises(ValueError, match="changed after it was built"):
        check_pair(parent, child)
    del child["Metadata"]
    with pytest.raises(ValueError, match="no winworkers fingerprint"):
        check_pair(parent, child)


def test_a_parent_nesting_two_features_needs_the_stack_named() -> None:
    parent = Template()
    nested_stack(parent, URL)
    gpu = nested_stack(parent, URL, WorkersConfig(prefix="Gpu"))
    with pytest.raises(ValueError, match="name one with stack="):
        check_pair(parent, gpu.child)
    check_pair(parent, gpu.child, stack="GpuStack")
    with pytest.raises(ValueError, match="expects the child"):
        check_pair(parent, gpu.child, stack="WinStack")


# --- wiring mistakes, refused at build time


def _platform(switch: Parameter | None = None) -> tuple[Template, Queue, Bucket]:
    parent = Template()
    parent.add_parameter(switch or Parameter(SWITCH, Type="String", AllowedValues=["true", "false"], Default="false"))
    return parent, parent.add_resource(Queue("Queue")), parent.add_resource(Bucket("Bucket"))


EMBED: dict[str, Callable[..., Any]] = {
    "add_to": lambda parent, **kw: add_to(parent, **kw),
    "nested_stack": lambda parent, **kw: nested_stack(parent, URL, **kw),
}


@pytest.mark.parametrize("embed", EMBED)
@pytest.mark.parametrize(
    "switch",
    [
        Parameter(SWITCH, Type="String", AllowedValues=["yes", "no"], Default="no"),
        Parameter(SWITCH, Type="Number", Default="0"),
        Parameter(SWITCH, Type="String", AllowedPattern="^(on|off)$", Default="off"),
    ],
    ids=["yes-no", "number", "pattern"],
)
def test_a_parent_switch_that_can_never_be_true_is_refused(embed: str, switch: Parameter) -> None:
    parent, _, _ = _platform(switch)
    before = as_dict(parent)
    with pytest.raises(ValueError, match=f'{SWITCH} parameter can never be "true"'):
        EMBED[embed](parent)
    assert as_dict(parent) == before


@pytest.mark.parametrize("embed", EMBED)
def test_wired_values_of_the_wrong_kind_are_refused(embed: str) -> None:
    cases: list[tuple[Callable[[Queue, Bucket], dict[str, Any]], str]] = [
        (lambda q, b: {"WorkQueueArn": Ref(q)}, r'Ref of AWS::SQS::Queue Queue gives its URL.*GetAtt\(queue, "Arn"\)'),
        (lambda q, b: {"WorkQueueArn": GetAtt(q, "QueueName")}, "gives its name"),
        (lambda q, b: {"DataBucket": GetAtt(b, "Arn")}, r"GetAtt Arn of AWS::S3::Bucket Bucket gives its ARN.*Ref\("),
        (lambda q, b: {"ArtifactBucket": GetAtt(b, "Arn")}, "ArtifactBucket needs an S3 bucket name"),
        (lambda q, b: {"DataBucket": Ref(q)}, "DataBucket needs an S3 bucket name"),
        (lambda q, b: {"DataPrefix": Ref(b)}, "DataPrefix needs a key prefix"),
        (lambda q, b: {"WorkQueueArn": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}, "an SQS queue ARN"),
        (lambda q, b: {"DataBucket": "My_Bucket"}, "an S3 bucket name"),
        (lambda q, b: {"ArtifactKey": "worker.exe"}, "a .zip key"),
        (lambda q, b: {"DataBucket": ""}, "the feature needs an S3 bucket name"),
        (lambda q, b: {"DataBucket": 7}, "a string or an intrinsic"),
    ]
    for wire, message in cases:
        parent, queue, bucket = _platform()
        before = as_dict(parent)
        with pytest.raises(ValueError, match=message):
            EMBED[embed](parent, wired=wire(queue, bucket))
        assert as_dict(parent) == before


@pytest.mark.parametrize("embed", EMBED)
def test_right_wiring_is_accepted(embed: str) -> None:
    parent, queue, bucket = _platform()
    wired = {
        "WorkQueueArn": GetAtt(queue, "Arn"),
        "DataBucket": Ref(bucket),
        "ArtifactBucket": "example-platform-artifacts",
        "ArtifactKey": "windows/worker-service.zip",
        "DataPrefix": {"Fn::Sub": "${AWS::StackName}/"},
    }
    EMBED[embed](parent, wired=wired)


@pytest.mark.parametrize(
    "url", ["s3://templates/winworkers.json", "http://x/y.json", 42, {"Fn::Sub": "https://x/${AWS::Region}"}]
)
def test_a_template_url_that_is_not_https_is_refused(url: Any) -> None:
    with pytest.raises(ValueError, match="template_url="):
        nested_stack(Template(), url)


def test_a_template_url_may_be_an_intrinsic() -> None:
    parent = Template()
    url = parent.add_parameter(Parameter("Url", Type="String"))
    nested_stack(parent, Ref(url))
    nested_stack(parent, Sub("https://b.s3.${AWS::Region}.amazonaws.com/x.json"), WorkersConfig(prefix="B"))


# --- outputs, and clashes with the parent's names


def test_every_output_is_described_briefly_and_in_the_readme(feature: dict[str, Any]) -> None:
    for name, output in feature["Outputs"].items():
        assert 0 < len(output["Description"]) <= 30, name
    table = output_table(WorkersConfig())
    assert all(f"| `{name}` |" in table for name in feature["Outputs"])
    from readme_table import document_of

    assert table in document_of("outputs").read_text(encoding="utf-8"), "the outputs table is stale: make templates"


def test_an_output_clash_names_the_output_and_the_prefix() -> None:
    parent, _, _ = _platform()
    parent.add_output(Output("WinGroupName", Value="x"))
    before = as_dict(parent)
    with pytest.raises(ValueError, match=r"output WinGroupName.*WorkersConfig.prefix='Win': choose another prefix"):
        add_to(parent)
    assert as_dict(parent) == before


def test_one_prefix_embeds_once_inline_or_nested() -> None:
    parent, _, _ = _platform()
    add_to(parent)
    with pytest.raises(ValueError, match="condition WinEnabled"):
        nested_stack(parent, URL)
    nested_stack(parent, URL, WorkersConfig(prefix="Gpu"))


# --- the parent's own switch


def _fleet_values(template: dict[str, Any], **switches: str) -> dict[str, str]:
    """Enabled example inputs for every fleet of own_switch_parent, and the given switch values."""
    values: dict[str, str] = {}
    for config in own_switch_parent.FLEETS:
        values |= enabled_parameters(config)
    return {name: value for name, value in values.items() if name in template["Parameters"]} | switches


SWITCH_CASES = {
    # EnableWindowsFleet, EnableImagingFleet, Environment: the groups that exist.
    ("false", "false", "production"): set(),
    ("true", "false", "production"): {"MasslynxGroup"},
    ("false", "true", "production"): {"ImagingGroup"},
    ("true", "true", "production"): {"MasslynxGroup", "ImagingGroup"},
    ("true", "true", "staging"): {"MasslynxGroup"},
}


@pytest.fixture(scope="module")
def own_switch() -> dict[str, Any]:
    return as_dict(own_switch_parent.own_switch_parent())


def _queue_arns(node: Any) -> Any:
    """node with each GetAtt of a queue's Arn as the ARN CloudFormation gives (cloud-radar gives
    "Queue.Arn", which the feature cannot split into a queue name and account)."""
    if isinstance(node, dict):
        target = node.get("Fn::GetAtt")
        if isinstance(target, list) and target[0].startswith("Queue") and target[1] == "Arn":
            return f"arn:aws:sqs:us-east-1:123456789012:{target[0]}"
        return {key: _queue_arns(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_queue_arns(value) for value in node]
    return node


@pytest.mark.parametrize("case", sorted(SWITCH_CASES), ids="-".join)
def test_a_parent_with_its_own_switches_creates_exactly_the_fleets_switched_on(
    own_switch: dict[str, Any], case: tuple[str, str, str]
) -> None:
    windows, imaging, environment = case
    values = _fleet_values(own_switch, EnableWindowsFleet=windows, EnableImagingFleet=imaging, Environment=environment)
    rendered = render(_queue_arns(own_switch), values)
    assert set(resources_of(rendered, "AWS::AutoScaling::AutoScalingGroup")) == SWITCH_CASES[case]
    # Nothing of a fleet that is off: every one of its resources and outputs is gone.
    on = {name.removesuffix("Group") for name in SWITCH_CASES[case]}
    for section in ("Resources", "Outputs"):
        prefixes = {p for p in ("Masslynx", "Imaging") for name in rendered.get(section, {}) if name.startswith(p)}
        assert prefixes <= on, section


def test_a_parent_with_its_own_switches_declares_no_default_switch(own_switch: dict[str, Any]) -> None:
    assert SWITCH not in own_switch["Parameters"]
    assert "Enabled" not in own_switch["Conditions"]
    conditions = {
        name: item["Condition"]
        for section in ("Resources", "Outputs")
        for name, item in own_switch[section].items()
        if name.startswith(("Masslynx", "Imaging"))
    }
    # Every resource of a fleet is conditioned on its own switch (or a condition And-ed with it).
    for name, condition in conditions.items():
        prefix = "Masslynx" if name.startswith("Masslynx") else "Imaging"
        assert condition.startswith(prefix) or (condition == "ImagingFleetOn" and prefix == "Imaging"), name
    assert own_switch["Conditions"]["MasslynxEnabled"] == {"Fn::Equals": [{"Ref": "EnableWindowsFleet"}, "true"]}
    assert conditions["ImagingGroup"] == "ImagingFleetOn"
    assert own_switch["Conditions"]["ImagingIsolatedVpc"]["Fn::And"][0] == {"Condition": "ImagingFleetOn"}
    # The Rules cannot read conditions: they repeat the imaging switch with its parameters.
    assert own_switch["Rules"]["ImagingPlatformInputs"]["RuleCondition"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "EnableImagingFleet"}, "true"]},
            {"Fn::Equals": [{"Ref": "Environment"}, "production"]},
        ]
    }
    assert own_switch["Rules"]["MasslynxPlatformInputs"]["RuleCondition"] == {
        "Fn::Equals": [{"Ref": "EnableWindowsFleet"}, "true"]
    }


def test_the_rules_of_a_fleet_that_is_off_ask_for_nothing(own_switch: dict[str, Any]) -> None:
    from winworkers.rules import failed_assertions

    bare = {name: value for name, value in _fleet_values(own_switch).items() if "Artifact" not in name}
    for case, groups in SWITCH_CASES.items():
        windows, imaging, environment = case
        values = bare | {"EnableWindowsFleet": windows, "EnableImagingFleet": imaging, "Environment": environment}
        failed = failed_assertions(own_switch, values)
        asked = {f.split("PlatformInputs")[0] for f in failed}
        assert asked == {g.removesuffix("Group") for g in groups}, (case, failed)


def test_a_parent_with_its_own_switches_lints_clean(own_switch: dict[str, Any], tmp_path: Path) -> None:
    nested = tmp_path / "nested.json"
    nested.write_text(_nested_own_switches()[0].to_json())
    assert cfn_lint([nested]) == []
    names = ("EnableWindowsFleet", "EnableImagingFleet", "Environment")
    cases = [("true", "true", "production"), ("true", "false", "staging")]
    deployments = [_fleet_values(own_switch, **dict(zip(names, case, strict=True))) for case in cases]
    assert lint_deployed(own_switch, deployments) == []


def _nested_own_switches() -> tuple[Template, NestedFeature, NestedFeature]:
    """A parent nesting two fleets: one under its parameter, one under its condition."""
    parent = Template()
    parent.add_parameter(
        Parameter("EnableWindowsFleet", Type="String", AllowedValues=["true", "false"], Default="false")
    )
    flag = parent.add_parameter(Parameter("Tier", Type="String", AllowedValues=["small", "large"], Default="small"))
    parent.add_condition("LargeTier", Equals(Ref(flag), "large"))
    a = nested_stack(parent, URL, switch="EnableWindowsFleet")
    b = nested_stack(parent, URL, WorkersConfig(prefix="Gpu"), switch=Condition("LargeTier"))
    return parent, a, b


def test_nested_stacks_each_under_the_parents_own_switch() -> None:
    parent, a, b = _nested_own_switches()
    data = as_dict(parent)
    assert (a.enabled, b.enabled) == ("WinEnabled", "LargeTier")
    assert (data["Resources"]["WinStack"]["Condition"], data["Resources"]["GpuStack"]["Condition"]) == (
        "WinEnabled",
        "LargeTier",
    )
    # The child is the same whatever the parent calls its switch; it gets "true" whenever it exists.
    assert data["Resources"]["WinStack"]["Properties"]["Parameters"][SWITCH] == {"Ref": "EnableWindowsFleet"}
    assert data["Resources"]["GpuStack"]["Properties"]["Parameters"][SWITCH] == "true"
    assert SWITCH not in data["Parameters"]
    assert a.child.to_json() == child_template().to_json()
    base = {"WinTemplateUrl": URL} if "WinTemplateUrl" in data["Parameters"] else {}
    for windows, tier, stacks in [("true", "small", {"WinStack"}), ("false", "large", {"GpuStack"})]:
        values = {
            **{k: v for k, v in enabled_parameters().items() if k in data["Parameters"]},
            **{k: v for k, v in enabled_parameters(WorkersConfig(prefix="Gpu")).items() if k in data["Parameters"]},
            **base,
            "EnableWindowsFleet": windows,
            "Tier": tier,
        }
        assert set(render(data, values)["Resources"]) == stacks


SWITCH_PARAMETER = Parameter("EnableWindowsFleet", Type="String", AllowedValues=["true", "false"], Default="false")


@pytest.mark.parametrize("embed", EMBED)
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda t: "EnableFleet", "switch='EnableFleet': the parent has no parameter or condition of that name"),
        (lambda t: Condition("Nowhere"), "the parent has no condition 'Nowhere'"),
        (lambda t: 7, "switch=7 is not allowed"),
        (
            lambda t: t.add_parameter(Parameter("Flag", Type="String", AllowedValues=["on", "off"])),
            'Flag parameter can never be "true"',
        ),
        (
            lambda t: (
                (
                    t.add_parameter(Parameter("Size", Type="String", AllowedValues=["s", "m"])),
                    t.add_condition("Huge", Equals(Ref("Size"), "xl")),
                )
                and "Huge"
            ),
            "condition Huge can never be true",
        ),
        (
            lambda t: (
                (
                    t.add_parameter(Parameter("Mode", Type="String", AllowedPattern="^[a-z]+$")),
                    t.add_condition("Both", And(Equals(Ref("Mode"), "a"), Equals(Ref("Mode"), "b"))),
                )
                and Condition("Both")
            ),
            "condition Both can never be true",
        ),
        (
            lambda t: t.add_condition("InIreland", Equals(Ref("AWS::Region"), "eu-west-1")) and "InIreland",
            'condition InIreland uses {"Ref": "AWS::Region"}, which the feature\'s Rules cannot repeat',
        ),
        (
            lambda t: (
                (
                    t.add_parameter(Parameter("Flag", Type="String", AllowedValues=["true", "false"])),
                    t.add_condition("Flag", Equals(Ref("Flag"), "true")),
                )
                and "Flag"
            ),
            "names both a parameter and a condition",
        ),
        (
            lambda t: (
                t.add_parameter(Parameter("EnableWindowsFleet", Type="String")),
                SWITCH_PARAMETER,
            )[1],
            "already has a different parameter 'EnableWindowsFleet'",
        ),
    ],
    ids=[
        "unknown-name",
        "unknown-condition",
        "not-a-switch",
        "never-true-parameter",
        "never-true-condition",
        "contradiction",
        "pseudo-parameter",
        "ambiguous",
        "different-handle",
    ],
)
def test_a_switch_that_cannot_work_is_refused(embed: str, build: Callable[[Template], Any], message: str) -> None:
    parent, _, _ = _platform()
    switch = build(parent)
    before = as_dict(parent)
    with pytest.raises(ValueError, match=re.escape(message)):
        EMBED[embed](parent, switch=switch)
    assert as_dict(parent) == before


@pytest.mark.parametrize("embed", EMBED)
def test_a_switch_may_be_a_name_or_a_handle(embed: str) -> None:
    for switch in ("EnableWindowsFleet", SWITCH_PARAMETER):
        parent = Template()
        parent.add_parameter(SWITCH_PARAMETER)
        EMBED[embed](parent, switch=switch)
        assert SWITCH not in as_dict(parent)["Parameters"]
    # A handle the parent does not have yet arrives with the feature.
    parent = Template()
    EMBED[embed](parent, switch=SWITCH_PARAMETER)
    assert as_dict(parent)["Parameters"]["EnableWindowsFleet"] == as_dict_parameter(SWITCH_PARAMETER)
    # A condition built from parameters, through another condition.
    parent = Template()
    parent.add_parameter(Parameter("Stage", Type="String"))
    parent.add_condition("IsProd", Equals(Ref("Stage"), "prod"))
    parent.add_condition("FleetOn", Not(Condition("IsProd")))
    feature = EMBED[embed](parent, switch="FleetOn")
    assert feature.enabled == "FleetOn"
    rule = as_dict(parent)["Rules"]["WinPlatformInputs"]["RuleCondition"]
    assert rule == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Stage"}, "prod"]}]}


def as_dict_parameter(parameter: Parameter) -> dict[str, Any]:
    return json.loads(json.dumps(parameter.to_dict()))


# --- NestedFeature.output: the names docs/embedding.md lists


def test_output_takes_the_readmes_names_and_refuses_others() -> None:
    nested = nested_stack(Template(), URL, WorkersConfig(prefix="Gpu"))
    for name in ("GroupName", "GpuGroupName"):
        assert nested.output(name).to_dict() == {"Fn::GetAtt": ["GpuStack", "Outputs.GpuGroupName"]}
    for name in ("GpuGpuGroupName", "WinGroupName", "Group", ""):
        with pytest.raises(ValueError, match=r"no output .* its outputs are \[.*'GpuGroupName', 'GpuInstanceRoleArn'"):
            nested.output(name)
    # Every name of the Outputs table (docs/embedding.md) (the default prefix) works as written.
    default = nested_stack(Template(), URL)
    table = output_table(WorkersConfig())
    names = re.findall(r"^\| `(\w+)` \|", table, re.M)
    assert names == list(default.child.outputs)
    for name in names:
        assert default.output(name).to_dict() == {"Fn::GetAtt": ["WinStack", f"Outputs.{name}"]}


@pytest.mark.parametrize("embed", EMBED)
def test_moving_to_the_parents_own_switch_changes_no_resource(embed: str) -> None:
    """A stack update from the default switch to the parent's own (a parameter, or a condition)
    keeps every resource as it is while the switch is on: same logical IDs, same properties."""
    rendered = {}
    for kind in ("default", "parameter", "condition"):
        parent = Template()
        parent.add_parameter(Parameter("Fleet", Type="String", AllowedValues=["on", "off"], Default="off"))
        parent.add_condition("FleetOn", Equals(Ref("Fleet"), "on"))
        parent.add_parameter(SWITCH_PARAMETER)
        switch = {"default": SWITCH, "parameter": "EnableWindowsFleet", "condition": "FleetOn"}[kind]
        EMBED[embed](parent, switch=switch)
        data = as_dict(parent)
        values = {k: v for k, v in enabled_parameters().items() if k in data["Parameters"]}
        values |= {"Fleet": "on", "EnableWindowsFleet": "true", "WinTemplateUrl": URL}
        resources = render(data, {k: v for k, v in values.items() if k in data["Parameters"]})["Resources"]
        # AWS::StackId: cloud-radar makes up a new one at each rendering.
        rendered[kind] = json.loads(re.sub(r"(:stack/[\w-]+/)[0-9a-f-]{36}", r"\1ID", json.dumps(resources)))
    assert rendered["parameter"] == rendered["default"]
    if embed == "add_to":
        assert rendered["condition"] == rendered["default"]
    else:
        # The child gets "true" instead of the parent's "true": the same value.
        assert rendered["condition"].keys() == rendered["default"].keys() == {"WinStack"}
        assert (
            rendered["condition"]["WinStack"]["Properties"]["Parameters"]
            == rendered["default"]["WinStack"]["Properties"]["Parameters"]
        )


def test_the_two_fleet_example_must_be_deployed_from_s3(own_switch: dict[str, Any]) -> None:
    # docs/embedding.md, "The parent's own switch": over the inline limit, so from S3 (the figures
    # it once gave, 89 resources and 98 KB, had drifted: no figure is stated). Every page that
    # shows the example says so; the page that holds its generated code is one of them.
    from readme_table import document_of

    minified = json.dumps(own_switch, separators=(",", ":"))
    assert len(minified.encode()) > INLINE_LIMIT
    pages = [p for p in (ROOT / "README.md", *(ROOT / "docs").glob("*.md")) if "own_switch_parent.py" in p.read_text()]
    assert document_of("examples/own_switch_parent.py") in pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "over the 51,200 bytes CloudFormation takes inline" in " ".join(text.split()), page
    assert INLINE_LIMIT == 51_200


def test_a_child_from_a_version_whose_output_differs_is_refused_naming_both_versions() -> None:
    # docs/embedding.md "Nested": the pair is refused when the child's content is not what the parent
    # expects; the message names the versions each half was built with.
    parent, child = Template(), as_dict(child_template())
    nested_stack(parent, URL)
    parent_data = as_dict(parent)
    (stack,) = (r for r in parent_data["Resources"].values() if r["Type"] == "AWS::CloudFormation::Stack")
    stack["Metadata"]["winworkers"]["version"] = "0.0.1"
    stack["Metadata"]["winworkers"]["fingerprint"] = "0" * 16  # that version's output was another child
    with pytest.raises(
        ValueError, match=r"\(winworkers 0\.0\.1, the default config\), but the child's is .* \(winworkers "
    ):
        check_pair(parent_data, child)
