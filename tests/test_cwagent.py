"""The CloudWatch agent config: valid against the agent's own schema, exactly the promised logs."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conftest import DATA, as_dict, render, resources_of, valid_configs
from winworkers import WorkersConfig, build_template
from winworkers.cwagent import AGENT_LOG_PATH, BOOT_LOGS, CONFIG_PATH, AgentLogGroups, build_agent_config
from winworkers.renderings import enabled_parameters

AGENT_DATA = DATA / "cloudwatch-agent"
SCHEMA = json.loads((AGENT_DATA / "schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def _errors(config: dict[str, Any]) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in VALIDATOR.iter_errors(config)]


def _rendered_agent_config(
    template: dict[str, Any], config: WorkersConfig | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    config = config or WorkersConfig()
    rendered = render(template, enabled_parameters(config))
    init = rendered["Resources"][config.logical_id("LaunchTemplate")]["Metadata"]["AWS::CloudFormation::Init"]
    return init["agent"]["files"][CONFIG_PATH]["content"], rendered


@pytest.mark.parametrize("sample", ["basic_config_windows.json", "advanced_config_windows.json"])
def test_the_schema_accepts_the_agents_own_samples(sample: str) -> None:
    # Guards the validator itself: a schema we load wrongly would accept anything.
    assert _errors(json.loads((AGENT_DATA / sample).read_text())) == []
    assert _errors({"metrics": {"metrics_collected": {}}, "bogus": 1}) != []


def test_the_deployed_config_is_valid_and_writes_only_to_the_stacks_log_groups(feature: dict[str, Any]) -> None:
    config, rendered = _rendered_agent_config(feature)
    assert _errors(config) == []
    groups = set(resources_of(rendered, "AWS::Logs::LogGroup"))
    collected = config["logs"]["logs_collected"]
    used = {e["log_group_name"] for e in collected["files"]["collect_list"]} | {
        e["log_group_name"] for e in collected["windows_events"]["collect_list"]
    }
    assert used and used <= groups


def test_windows_events_are_exactly_the_promised_channels_and_levels() -> None:
    config = build_agent_config(WorkersConfig(), AgentLogGroups("w", "h"), "asg")
    events = config["logs"]["logs_collected"]["windows_events"]["collect_list"]
    assert {e["event_name"]: sorted(e["event_levels"]) for e in events} == {
        "System": ["CRITICAL", "ERROR"],
        "Application": ["CRITICAL", "ERROR", "WARNING"],
    }
    assert all("{instance_id}" in e["log_stream_name"] for e in events)


def test_agent_and_worker_logs() -> None:
    paths = ("C:\\TDP\\a.log", "D:\\TDP\\Logs\\*.txt")
    config = build_agent_config(WorkersConfig(worker_log_paths=paths), AgentLogGroups("w", "h"), "asg")
    files = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert AGENT_LOG_PATH == "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\Logs\\*.log"
    assert [(f["file_path"], f["log_group_name"]) for f in files] == [
        (paths[0], "w"),
        (paths[1], "w"),
        (AGENT_LOG_PATH, "h"),
        *((path, "h") for _, path in BOOT_LOGS),
    ]
    assert all("{instance_id}" in f["log_stream_name"] for f in files)
    assert len({f["log_stream_name"] for f in files}) == len(files)


def test_metrics_need_no_ec2_api() -> None:
    config = build_agent_config(WorkersConfig(metrics_namespace="Platform/Windows"), AgentLogGroups("w", "h"), "my-asg")
    metrics = config["metrics"]
    assert metrics["namespace"] == "Platform/Windows"
    # ${aws:AutoScalingGroupName} would call ec2:DescribeTags; the static name does not.
    assert "${aws:AutoScalingGroupName}" not in json.dumps(config)
    assert set(metrics["append_dimensions"]) == {"ImageId", "InstanceId", "InstanceType"}
    collected = metrics["metrics_collected"]
    assert collected["Memory"]["measurement"] == ["% Committed Bytes In Use"]
    assert collected["LogicalDisk"]["measurement"] == ["% Free Space"]
    assert collected["Processor"]["measurement"] == ["% Processor Time"]
    assert all(p["append_dimensions"] == {"AutoScalingGroupName": "my-asg"} for p in collected.values())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=[Phase.generate])
@given(config=valid_configs())
def test_every_config_the_library_can_produce_is_valid(config: WorkersConfig) -> None:
    assert _errors(build_agent_config(config, AgentLogGroups("w", "h"), "asg")) == []
    rendered, _ = _rendered_agent_config(as_dict(build_template(config)), config)
    assert _errors(rendered) == []


def test_a_failed_bootstrap_can_be_read_from_the_host_log_group(feature: dict[str, Any]) -> None:
    """Nobody can log in: cfn-init's logs and the launch agent's (EC2Launch v1 on 2019 AMIs,
    EC2Launch v2 on 2022 and 2025) are the only way to see why a worker failed."""
    config, _ = _rendered_agent_config(feature)
    shipped = {f["file_path"]: f for f in config["logs"]["logs_collected"]["files"]["collect_list"]}
    for path, stream in (
        ("C:\\cfn\\log\\*.log", "{instance_id}/cfn"),
        ("C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Log\\*.log", "{instance_id}/ec2launch"),
        ("C:\\ProgramData\\Amazon\\EC2Launch\\log\\*.log", "{instance_id}/ec2launch-v2"),
    ):
        assert (shipped[path]["log_group_name"], shipped[path]["log_stream_name"]) == ("WinHostLogs", stream)
