"""The foundation: the switch governs everything, add_to and nested_stack embed
cleanly, the build is deterministic, and the committed templates do not drift."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from troposphere import Parameter, Template
from troposphere.sqs import Queue

from conftest import ROOT, as_dict, render
from winworkers import WorkersConfig, add_to, build_template, nested_stack
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters
from winworkers.templates import all_templates
from winworkers.templates import render as render_json


def test_disabled_creates_nothing(feature: dict[str, Any]) -> None:
    rendered = render(feature, {SWITCH: "false"})
    assert rendered.get("Resources", {}) == {}
    assert rendered.get("Outputs", {}) == {}


def test_disabled_even_with_every_mode_and_option_on(feature: dict[str, Any]) -> None:
    for mode in MODES:
        params = enabled_parameters(mode=mode, SubscribeToAmiReleases="true")
        params[SWITCH] = "false"
        assert render(feature, params).get("Resources", {}) == {}, mode


def test_every_resource_and_output_carries_a_condition(feature: dict[str, Any]) -> None:
    for section in ("Resources", "Outputs"):
        for name, item in feature[section].items():
            assert item.get("Condition", "").startswith("Win"), f"{section}.{name} escaped the switch"


def test_enabled_creates_the_feature(enabled: dict[str, Any]) -> None:
    kinds = {r["Type"] for r in enabled["Resources"].values()}
    assert {
        "AWS::AutoScaling::AutoScalingGroup",
        "AWS::EC2::LaunchTemplate",
        "AWS::EC2::VPC",
        "AWS::EC2::VPCEndpoint",
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
        "AWS::Logs::LogGroup",
        "AWS::IAM::Role",
    } <= kinds
    assert set(enabled["Outputs"]) >= {"WinGroupName", "WinInstanceRoleArn"}


def test_build_is_deterministic() -> None:
    first = render_json(build_template())
    second = render_json(build_template(WorkersConfig()))
    assert first == second


def test_committed_templates_are_what_make_templates_writes() -> None:
    for name, template in all_templates().items():
        committed = (ROOT / "templates" / name).read_text(encoding="utf-8")
        assert committed == render_json(template), f"templates/{name} is stale: run make templates"


def _platform_parent() -> Template:
    parent = Template()
    parent.add_parameter(Parameter(SWITCH, Type="String", AllowedValues=["true", "false"], Default="false"))
    parent.add_resource(Queue("Group"))  # a name the feature would use unprefixed
    parent.add_resource(Queue("WorkQueue"))
    return parent


def test_add_to_reuses_the_parents_switch_and_keeps_its_resources() -> None:
    parent = _platform_parent()
    feature = add_to(parent, WorkersConfig())
    data = as_dict(parent)
    assert list(data["Parameters"]).count(SWITCH) == 1
    assert {"Group", "WorkQueue", "WinGroup"} <= set(data["Resources"])
    assert feature.group.title == "WinGroup"
    assert feature.enabled == "WinEnabled"
    # The parent's own resources are untouched by the switch.
    assert "Condition" not in data["Resources"]["WorkQueue"]
    assert render(data, {SWITCH: "false"})["Resources"].keys() == {"Group", "WorkQueue"}


def test_add_to_refuses_a_clash_and_leaves_the_parent_untouched() -> None:
    parent = _platform_parent()
    parent.add_resource(Queue("WinGroup"))
    before = as_dict(parent)
    with pytest.raises(ValueError, match="WinGroup"):
        add_to(parent)
    assert as_dict(parent) == before


def test_two_features_with_different_prefixes_share_one_switch() -> None:
    parent = _platform_parent()
    add_to(parent, WorkersConfig(prefix="Masslynx"))
    add_to(parent, WorkersConfig(prefix="Other"))
    data = as_dict(parent)
    groups = [data["Resources"][f"{prefix}Group"]["Properties"] for prefix in ("Masslynx", "Other")]
    # The group is the one resource with a physical name: two in one stack must differ.
    assert [g["AutoScalingGroupName"] for g in groups] == [
        {"Fn::Sub": "${AWS::StackName}-MasslynxWorkers"},
        {"Fn::Sub": "${AWS::StackName}-OtherWorkers"},
    ]


def test_nested_stack_passes_every_parameter_through() -> None:
    parent = _platform_parent()
    stack = nested_stack(parent, "https://example.s3.amazonaws.com/winworkers.json")
    child = as_dict(build_template())
    passed = as_dict(parent)["Resources"][stack.title]
    assert passed["Condition"] == "WinEnabled"
    assert set(passed["Properties"]["Parameters"]) == set(child["Parameters"])
    assert all(value == {"Ref": name} for name, value in passed["Properties"]["Parameters"].items())


def test_nested_stack_refuses_unknown_wired_inputs() -> None:
    with pytest.raises(ValueError, match="InstanceType"):
        nested_stack(_platform_parent(), "https://x/y.json", wired={"InstanceType": "m6i.large"})


def test_cli_builds_and_prints_the_parameter_table(tmp_path: Any) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "winworkers", "build", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parent-example.json", "winworkers.json"]
    assert json.loads((tmp_path / "winworkers.json").read_text())["Resources"]
    assert "winworkers.json" in run.stdout
    table = subprocess.run(
        [sys.executable, "-m", "winworkers", "params"], capture_output=True, text=True, check=True
    ).stdout
    assert f"| Feature | `{SWITCH}` | `false` |" in table


def test_readme_library_example_runs_and_lints_clean() -> None:
    from cfnlint.api import ManualArgs, lint

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Use as a library", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), scope)
    platform = scope["platform"]
    assert {"WinGroup", "WinStack", "WorkQueue"} <= set(platform.resources)
    matches = lint(render_json(platform), config=ManualArgs(include_checks=["I"], regions=["us-east-1"]))
    # The example's own queue is bare on purpose (I3011, I3013); the feature must lint clean.
    ours = [m for m in matches if m.path[:2] != ["Resources", "WorkQueue"]]
    assert [f"{m.rule.id} {m.path} {m.message}" for m in ours] == []
