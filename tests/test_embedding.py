"""Embedding into a real parent stack: parents that only inline or only nest the
feature lint clean with the switch on and off in every network mode, the nested
stack receives strings, the parent and its child are checked as a pair, and
wiring mistakes are refused when the parent is built."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import inline_parent
import nested_parent
import pytest
from moto import mock_aws
from test_lint import cfn_lint
from troposphere import GetAtt, Output, Parameter, Ref, Sub, Template
from troposphere.s3 import Bucket
from troposphere.sqs import Queue

from conftest import ROOT, as_dict, render, resources_of
from winworkers import NestedFeature, WorkersConfig, add_to, build_template, check_pair, child_template, nested_stack
from winworkers.docs import output_table
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters, with_defaults

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
    """Enabled example values for mode (the switch as given), for the parameters template declares."""
    values = enabled_parameters(mode=mode, **{SWITCH: switch})
    return {name: value for name, value in values.items() if name in template["Parameters"]}


def test_parents_lint_clean_with_the_switch_on_and_off_in_every_mode(tmp_path: Path) -> None:
    paths = []
    for kind, build in PARENTS.items():
        template = as_dict(build())
        for mode in MODES:
            for switch in ("true", "false"):
                path = tmp_path / f"{kind}.{mode}.{switch}.json"
                path.write_text(json.dumps(with_defaults(template, _values(template, mode, switch))))
                paths.append(path)
    assert cfn_lint(paths) == []


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
    assert table in (ROOT / "README.md").read_text(encoding="utf-8"), "README outputs table is stale: make templates"


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
