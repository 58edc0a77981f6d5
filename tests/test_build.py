"""The foundation: the switch governs everything, add_to and nested_stack embed
cleanly, the build is deterministic, and the committed templates do not drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import inline_parent
import nested_parent
import pytest
import readme_table
from troposphere import Parameter, Template
from troposphere.sqs import Queue

import winworkers
from conftest import ROOT, as_dict, render
from winworkers import WorkersConfig, add_to, build_template, child_template, nested_stack
from winworkers.docs import parameter_table
from winworkers.parameters import SWITCH, Group
from winworkers.renderings import MODES, enabled_parameters
from winworkers.templates import all_templates
from winworkers.templates import render as render_json

# The standalone template's one resource outside the switch (build.standing_resource, register
# row 203): a stack with the switch off keeps it, and nothing else.
STANDING = {"WinStanding": "AWS::CloudFormation::WaitConditionHandle"}


def _kinds(rendered: dict[str, Any]) -> dict[str, str]:
    return {name: r["Type"] for name, r in rendered.get("Resources", {}).items()}


def test_disabled_creates_only_the_standing_resource(feature: dict[str, Any]) -> None:
    rendered = render(feature, {SWITCH: "false"})
    assert _kinds(rendered) == STANDING
    assert rendered.get("Outputs", {}) == {}


def test_disabled_even_with_every_mode_and_option_on(feature: dict[str, Any]) -> None:
    for mode in MODES:
        params = enabled_parameters(mode=mode, SubscribeToAmiReleases="true")
        params[SWITCH] = "false"
        assert _kinds(render(feature, params)) == STANDING, mode


def test_every_resource_and_output_but_the_standing_one_carries_a_condition(feature: dict[str, Any]) -> None:
    for section in ("Resources", "Outputs"):
        for name, item in feature[section].items():
            if section == "Resources" and name in STANDING:
                assert item == {"Type": STANDING[name]}, "the standing resource is bare: no condition, no property"
                continue
            assert item.get("Condition", "").startswith("Win"), f"{section}.{name} escaped the switch"


def test_the_standing_resource_is_the_standalone_templates_alone() -> None:
    # A parent that adds the feature inline has resources of its own, and a nested child is
    # created only while the parent's switch is on: neither gets one.
    parent = Template()
    parent.add_resource(Queue("WorkQueue"))
    add_to(parent, WorkersConfig())
    assert "WinStanding" not in parent.resources
    nested = Template()
    added = nested_stack(nested, "https://bucket.s3.amazonaws.com/child.json", WorkersConfig())
    assert [r.resource.get("Condition") for r in nested.resources.values()] == ["WinEnabled"]
    assert "WinStanding" in child_template(WorkersConfig()).resources
    assert added.stack.resource["Condition"] == "WinEnabled"


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
    parent_nested, child = nested_parent.nested_parent()
    built = {
        **all_templates(),
        "parent-inline.json": inline_parent.inline_parent(),
        "parent-nested.json": parent_nested,
    }
    assert render_json(child) == render_json(built["winworkers.json"]), "the nested example's child is not the default"
    assert sorted(built) == sorted(p.name for p in (ROOT / "templates").glob("*.json"))
    for name, template in built.items():
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
    nested = nested_stack(parent, "https://example.s3.amazonaws.com/winworkers.json")
    child = as_dict(build_template())
    passed = as_dict(parent)["Resources"][nested.stack.title]
    assert passed["Condition"] == "WinEnabled"
    assert set(passed["Properties"]["Parameters"]) == set(child["Parameters"])
    for name, value in passed["Properties"]["Parameters"].items():
        # Lists go to a nested stack as their comma-delimited string.
        is_list = child["Parameters"][name]["Type"] == "CommaDelimitedList"
        assert value == ({"Fn::Join": [",", {"Ref": name}]} if is_list else {"Ref": name}), name


def test_nested_stack_refuses_unknown_wired_inputs() -> None:
    with pytest.raises(ValueError, match="InstanceType"):
        nested_stack(_platform_parent(), "https://x/y.json", wired={"InstanceType": "m6i.large"})


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "winworkers", *args], capture_output=True, text=True)


def test_cli_builds_and_prints_the_parameter_table(tmp_path: Path) -> None:
    run = _cli("build", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["winworkers.json"]
    assert json.loads((tmp_path / "winworkers.json").read_text())["Resources"]
    assert "winworkers.json" in run.stdout
    table = _cli("params").stdout
    assert f"| {Group.FEATURE} | `{SWITCH}` | `false` |" in table


def test_cli_builds_the_child_for_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "gpu.toml").write_text('prefix = "Gpu"\nmax_fleet_size = 4\n[tags]\nTeam = "imaging"\n')
    (tmp_path / "gpu.json").write_text(
        json.dumps({"prefix": "Gpu", "max_fleet_size": 4, "tags": [["Team", "imaging"]]})
    )
    config = WorkersConfig(prefix="Gpu", max_fleet_size=4, tags=(("Team", "imaging"),))
    for name in ("gpu.toml", "gpu.json"):
        out = tmp_path / name.replace(".", "-")
        run = _cli("build", "--config", str(tmp_path / name), "--out", str(out))
        assert run.returncode == 0, run.stderr
        assert (out / "winworkers.json").read_text(encoding="utf-8") == render_json(child_template(config))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('prefix = "Gpu"\nmax_size = 4\nzone = 1\n', "unknown WorkersConfig fields ['max_size', 'zone']"),
        ('prefix = "gpu"\n', "WorkersConfig.prefix='gpu' is not allowed: PascalCase"),
        ("max_fleet_size = 1001\n", "WorkersConfig.max_fleet_size=1001 is not allowed"),
        ("tags = {Team = 7}\n", "WorkersConfig.tags=('Team', 7) is not allowed: (key, value) pairs of strings"),
        ("prefix = \n", "Invalid value"),
    ],
)
def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    run = _cli("build", "--config", str(path), "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"winworkers: error: {path}: ") and message in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_or_unknown_config_file(tmp_path: Path) -> None:
    for path, message in ((tmp_path / "none.toml", "No such file"), (tmp_path / "c.yaml", ".toml or .json")):
        if path.suffix == ".yaml":
            path.write_text("prefix: Gpu\n")
        run = _cli("build", "--config", str(path))
        assert (run.returncode, run.stderr.count("\n")) == (2, 1) and message in run.stderr, run.stderr


def test_cli_checks_a_nested_pair(tmp_path: Path) -> None:
    parent, child = ROOT / "templates" / "parent-nested.json", ROOT / "templates" / "winworkers.json"
    run = _cli("check", str(parent), str(child))
    assert (run.returncode, run.stdout) == (0, f"{parent} and {child} are a pair\n"), run.stderr
    other = tmp_path / "gpu.json"
    other.write_text(render_json(child_template(WorkersConfig(prefix="Gpu"))))
    run = _cli("check", str(parent), str(other))
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert "are no pair: the parent's WinStack expects the child with fingerprint" in run.stderr
    assert _cli("check", str(parent), str(tmp_path / "none.json")).returncode == 2


@pytest.mark.parametrize(
    ("parent", "message"),
    [
        ([], "the parent is not a CloudFormation template"),
        ({"Resources": {}}, "the parent nests no winworkers stack"),
        ({"Resources": {"S": {"Type": "AWS::CloudFormation::Stack", "Metadata": "x"}}}, "nests no winworkers stack"),
        (
            {"Resources": {"S": {"Type": "AWS::CloudFormation::Stack", "Metadata": {"winworkers": {"x": 1}}}}},
            "expects the child with fingerprint None",
        ),
    ],
)
def test_cli_check_refuses_malformed_templates_in_one_line(tmp_path: Path, parent: Any, message: str) -> None:
    path = tmp_path / "parent.json"
    path.write_text(json.dumps(parent))
    run = _cli("check", str(path), str(ROOT / "templates" / "winworkers.json"))
    assert (run.returncode, run.stderr.count("\n")) == (1, 1) and message in run.stderr, run.stderr


def test_cli_build_into_an_impossible_folder_fails_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = _cli("build", "--out", str(blocker / "out"))
    assert (run.returncode, run.stderr.count("\n")) == (2, 1) and "winworkers: error:" in run.stderr, run.stderr


def test_cli_prints_its_version() -> None:
    run = _cli("--version")
    assert (run.returncode, run.stdout) == (0, f"winworkers {winworkers.__version__}\n")


def _readme_block(readme: str, name: str) -> str:
    return readme.split(f"<!-- {name}:begin -->\n", 1)[1].split("```", 2)[1].split("\n", 1)[1]


def test_readme_shows_the_examples_exactly_and_they_run() -> None:
    from cfnlint.api import ManualArgs, lint

    for document in readme_table.DOCUMENTS:
        text = (ROOT / document).read_text(encoding="utf-8")
        assert readme_table.rewrite(text) == text, f"{document}'s generated parts are stale: run make templates"
    # Every example the docs show, where readme_table puts it (docs/embedding.md today), exactly.
    shown = {
        block: readme_table.document_of(block).read_text(encoding="utf-8")
        for required in readme_table.DOCUMENTS.values()
        for block in required
        if block.startswith("examples/")
    }
    examples = (ROOT / "examples").iterdir()
    assert set(shown) == {f"examples/{p.name}" for p in examples if p.suffix in readme_table.LANGUAGES}
    for block, document in shown.items():
        assert _readme_block(document, block) == (ROOT / block).read_text(encoding="utf-8")
    scope: dict[str, Any] = {}
    inline = readme_table.document_of("examples/inline_parent.py")
    code = _readme_block(inline.read_text(encoding="utf-8"), "examples/inline_parent.py")
    exec(compile(code, str(inline), "exec"), scope)
    platform = scope["inline_parent"]()
    assert {"WinGroup", "WorkQueue", "DataBucket"} <= set(platform.resources)
    matches = lint(render_json(platform), config=ManualArgs(include_checks=["I"], regions=["us-east-1"]))
    assert [f"{m.rule.id} {m.path} {m.message}" for m in matches] == []


def test_cli_params_follows_the_config(tmp_path: Path) -> None:
    path = tmp_path / "gpu.toml"
    path.write_text('prefix = "Gpu"\nmax_fleet_size = 1000\n')
    run = _cli("params", "--config", str(path))
    assert run.returncode == 0 and run.stdout == parameter_table(WorkersConfig(prefix="Gpu", max_fleet_size=1000))
    assert "`GpuMaxSize` | `4` | 0-1000 |" in run.stdout
