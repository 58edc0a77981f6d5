"""Everything an instance is configured with reaches the launch template data.

cfn-init reads the launch template's Metadata once, at first boot. A stack update that
changes only the Metadata leaves LaunchTemplateData, and so the launch template's
version, as it was: no refresh, and running workers keep the old queue, prefix, worker
build and drain time. So the UserData carries a config line (bootstrap.config_line): a
digest of the Metadata as built, and the deploy-time value of every input the Metadata
reads. On a running stack, a change of any of these inputs now makes a new launch
template version, and the refresh custom resource replaces the workers, launch before
terminate (docs/lifecycle.md).

The inputs are enumerated from the Metadata itself, by a walk of its own (not the
library's), so that an input added to the Metadata cannot be forgotten here: it needs an
alternative value in ``ALTERNATIVES`` or this test fails.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any

import pytest

from conftest import as_dict, props, render, user_data_script
from winworkers import WorkersConfig, build_template
from winworkers.bootstrap import config_line, metadata_inputs
from winworkers.renderings import enabled_parameters

# A second valid value for each stack parameter the Metadata reads.
ALTERNATIVES = {
    "WinWorkQueueArn": "arn:aws:sqs:us-east-1:123456789012:other-platform-work",
    "WinDataBucket": "other-platform-data",
    "WinDataPrefix": "other/prefix/",
    "WinDrainSeconds": "900",
    "WinArtifactBucket": "other-platform-artifacts",
    "WinArtifactKey": "windows/worker-service-2.zip",
}
# A second valid value for each WorkersConfig field.
CONFIG_ALTERNATIVES: dict[str, Any] = {
    "prefix": "Gpu",
    "worker_log_paths": ("D:\\Other\\Logs\\*.log",),
    "metrics_namespace": "Other/Workers",
    "metrics_interval_seconds": 30,
    "max_fleet_size": 50,
    "include_alarms": False,
    "default_instance_type": "c7i.2xlarge",
    "tags": (("Team", "imaging"),),
    # Reaches no instance: its endpoint and DNS name only (tests/test_extra_endpoints.py).
    "extra_endpoints": ("secretsmanager",),
}
# The fields that configure an instance through the Metadata (the test proves each does).
REACHES_INSTANCES = {"prefix", "worker_log_paths", "metrics_namespace", "metrics_interval_seconds"}


def _inputs(node: Any, template: dict[str, Any]) -> set[str]:
    """Every parameter or resource a Metadata value depends on: Refs, Fn::Sub names,
    Fn::GetAtt targets, and the parameters of any condition an Fn::If tests."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _inputs(item, template)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, local = (value, {}) if isinstance(value, str) else value
                found |= {n.split(".")[0] for n in re.findall(r"\$\{([^!}][^}]*)\}", text) if n not in local}
                found |= _inputs(local, template)
            elif key in {"Fn::If", "Condition"}:
                condition = value[0] if isinstance(value, list) else value
                found |= _inputs(template["Conditions"][condition], template) | _inputs(value[1:], template)
            else:
                found |= _inputs(value, template)
    return {name for name in found if not name.startswith("AWS::")}


def _launch_template(rendered: dict[str, Any], config: WorkersConfig | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = rendered["Resources"][(config or WorkersConfig()).logical_id("LaunchTemplate")]
    return resource


def _without_config_line(properties: dict[str, Any]) -> str:
    data = dict(properties["LaunchTemplateData"])
    data["UserData"] = re.sub(r"# winworkers [^\n]*\n", "", base64.b64decode(data["UserData"]).decode())
    return json.dumps(data, sort_keys=True)


@pytest.fixture(scope="module")
def inputs(feature: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(parameters, resources) the launch template's Metadata reads."""
    names = _inputs(feature["Resources"]["WinLaunchTemplate"]["Metadata"], feature)
    return names & set(feature["Parameters"]), names - set(feature["Parameters"])


def test_the_walk_finds_the_inputs_the_worker_is_configured_with(inputs: tuple[set[str], set[str]]) -> None:
    parameters, resources = inputs
    assert parameters >= {"WinWorkQueueArn", "WinDataBucket", "WinDataPrefix", "WinDrainSeconds"}
    assert parameters >= {"WinArtifactBucket", "WinArtifactKey"}
    assert resources == {"WinInstanceRole", "WinWorkerLogs", "WinHostLogs"}


def test_every_parameter_the_metadata_reads_changes_the_launch_template_data(
    feature: dict[str, Any], enabled: dict[str, Any], inputs: tuple[set[str], set[str]]
) -> None:
    parameters, _ = inputs
    # ImageSource (through BakedImage's Fn::If, with the switch) chooses which config sets exist and
    # which script runs them, not a value in the line: it changes the Metadata and the data itself.
    chooses = {"EnableWinTaskScriptService", "WinImageSource"}
    assert parameters & chooses == chooses
    before = _launch_template(enabled)
    after = _launch_template(render(feature, enabled_parameters(ImageSource="baked")))
    assert after["Metadata"] != before["Metadata"]
    assert after["Properties"]["LaunchTemplateData"]["ImageId"] != before["Properties"]["LaunchTemplateData"]["ImageId"]
    assert "--configsets baked" in base64.b64decode(after["Properties"]["LaunchTemplateData"]["UserData"]).decode()
    parameters -= chooses
    assert parameters <= set(ALTERNATIVES), f"give {sorted(parameters - set(ALTERNATIVES))} a second value"
    for name in sorted(parameters):
        after = _launch_template(render(feature, enabled_parameters(**{name[3:]: ALTERNATIVES[name]})))
        assert after["Metadata"] != before["Metadata"], f"{name} does not reach the instance"
        assert after["Properties"]["LaunchTemplateData"] != before["Properties"]["LaunchTemplateData"], name
        # The config line carries it: without the line the data would be the same.
        assert _without_config_line(after["Properties"]) == _without_config_line(before["Properties"]), name


def test_every_resource_the_metadata_reads_is_in_the_config_line(
    feature: dict[str, Any], inputs: tuple[set[str], set[str]]
) -> None:
    # A resource's name changes only when CloudFormation replaces it, which cloud-radar
    # cannot render: the line names each one, so its new name changes the data.
    _, resources = inputs
    user_data = feature["Resources"]["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    # Fn::If HasWarmPool: the warm pool's script, then the cold one; each Fn::If BakedImage, the
    # baked boot's (ImageSource=baked), then the aws-published one; all four carry the line.
    condition, *pools = user_data["Fn::If"]
    assert condition == "WinHasWarmPool" and len(pools) == 2
    scripts = []
    for pool in pools:
        baked, *two = pool["Fn::If"]
        assert baked == "WinBakedImage" and len(two) == 2
        scripts += two
    for script in scripts:
        (first,) = [row for row in script["Fn::Base64"]["Fn::Sub"].splitlines() if row.startswith("# winworkers ")]
        assert {n for n in re.findall(r"\$\{([^}]+)\}", first)} >= resources


def test_every_config_field_that_configures_an_instance_changes_the_launch_template_data(
    enabled: dict[str, Any],
) -> None:
    assert set(CONFIG_ALTERNATIVES) == {f.name for f in dataclasses.fields(WorkersConfig)}, "a new field"
    before = _launch_template(enabled)
    changed = set()
    for field, value in sorted(CONFIG_ALTERNATIVES.items()):
        config = WorkersConfig(**{field: value})
        after = _launch_template(render(as_dict(build_template(config)), enabled_parameters(config)), config)
        if after["Metadata"] != before["Metadata"]:
            changed.add(field)
            assert after["Properties"]["LaunchTemplateData"] != before["Properties"]["LaunchTemplateData"], field
    assert changed == REACHES_INSTANCES


def test_the_config_line_is_one_comment_and_tells_every_value_apart(
    feature: dict[str, Any], inputs: tuple[set[str], set[str]]
) -> None:
    # Values are separated by spaces on one comment line: each parameter must refuse both.
    parameters, _ = inputs
    for name in sorted(parameters):
        spec = feature["Parameters"][name]
        if spec["Type"] == "Number" or "AllowedValues" in spec:
            assert all(not re.search(r"\s", str(v)) for v in spec.get("AllowedValues", [])), name
            continue
        value = ALTERNATIVES[name]
        assert re.fullmatch(spec["AllowedPattern"], value), name
        for bad in (value[:4] + " " + value[4:], value + "\n", value[:4] + "\r\n" + value[4:]):
            assert not re.fullmatch(spec["AllowedPattern"], bad), (name, bad)
    assert user_data_script(render(feature, enabled_parameters())).splitlines()[0].startswith("# winworkers ")


def test_the_digest_follows_the_metadata_as_built() -> None:
    metadata = {"AWS::CloudFormation::Init": {"a": {"commands": {"01": {"command": "x"}}}}}
    changed = {"AWS::CloudFormation::Init": {"a": {"commands": {"01": {"command": "y"}}}}}
    assert config_line(metadata) != config_line(changed)
    assert config_line(metadata) == config_line(json.loads(json.dumps(metadata)))


def test_metadata_inputs_reads_refs_subs_and_attributes() -> None:
    metadata = {
        "a": {"Ref": "Queue"},
        "b": {"Fn::Sub": ["${Bucket}/${Key}/${AWS::Region}/${!Literal}", {"Key": {"Ref": "KeyParam"}}]},
        "c": [{"Fn::GetAtt": ["Role", "Arn"]}, {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "List"}]}]}],
        "d": {"Ref": "AWS::StackName"},
    }
    assert metadata_inputs(metadata) == {"Queue", "Bucket", "KeyParam", "Role.Arn", "List"}


@pytest.mark.parametrize("intrinsic", ["Fn::If", "Fn::FindInMap", "Fn::ImportValue"])
def test_an_input_the_config_line_cannot_see_fails_the_build(intrinsic: str) -> None:
    with pytest.raises(ValueError, match=intrinsic):
        metadata_inputs({"files": {"x": {"content": {intrinsic: ["A", "B", "C"]}}}})


def test_the_rendered_config_line_holds_the_resolved_values(enabled: dict[str, Any]) -> None:
    line = user_data_script(enabled).splitlines()[0]
    values = enabled_parameters()
    assert values["WinWorkQueueArn"] in line.split() and values["WinArtifactKey"] in line.split()
    assert "${" not in line
    assert props(enabled, "WinLaunchTemplate")["LaunchTemplateData"]["UserData"]
