"""The CloudWatch agent config: valid against the agent's own schema, exactly the promised logs."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conftest import DATA, as_dict, render, resources_of, valid_configs
from winworkers import WorkersConfig, build_template
from winworkers.cwagent import (
    AGENT_LOG_PATH,
    BOOT_LOGS,
    CONFIG_PATH,
    SYSTEM_VOLUME,
    AgentLogGroups,
    build_agent_config,
)
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
        *((path, "h") for _, path in BOOT_LOGS),
    ]
    assert all("{instance_id}" in f["log_stream_name"] for f in files)
    assert len({f["log_stream_name"] for f in files}) == len(files)
    # A wildcard ships every file it matches, each to its own stream; a plain path, its file.
    assert all(f.get("publish_multi_logs", False) == ("*" in f["file_path"]) for f in files)


# What the agent does with a collect_list entry, from its source (plugins/inputs/logfile/
# logfile.go: getTargetFiles, generateLogStreamName; globpath.go): the files a path
# matches (Go's filepath.Match: * is any run of characters but a separator), the newest
# one only unless publish_multi_logs, and then one stream per file, "<stream>_<path with
# \\ as / and every character but . - _ / # A-Z a-z 0-9 as _, then / as _>".
def _agent_streams(entry: dict[str, Any], files: dict[str, int]) -> dict[str, str]:
    """file -> the stream the agent ships it to; ``files`` are paths with their mtimes."""
    directory, _, name = entry["file_path"].rpartition("\\")
    pattern = re.escape(name).replace(r"\*", r"[^\\]*")
    matched = [f for f in files if f.rpartition("\\")[0] == directory and re.fullmatch(pattern, f.rpartition("\\")[2])]
    if not entry.get("publish_multi_logs"):
        newest = max(matched, key=files.__getitem__, default=None)
        return {} if newest is None else {newest: entry["log_stream_name"]}
    escaped = {f: re.sub(r"[^.\-_/#A-Za-z0-9]", "_", f.replace("\\", "/")).replace("/", "_") for f in matched}
    return {f: f"{entry['log_stream_name']}_{escaped[f]}" for f in matched}


def _shipped(config: dict[str, Any], files: dict[str, int]) -> dict[str, list[tuple[str, str]]]:
    """file -> every (log group, stream) the agent ships it to."""
    shipped: dict[str, list[tuple[str, str]]] = {f: [] for f in files}
    for entry in config["logs"]["logs_collected"]["files"]["collect_list"]:
        for file, stream in _agent_streams(entry, files).items():
            shipped[file].append((entry["log_group_name"], stream))
    return shipped


# What a failed bootstrap leaves behind, oldest first (cfn-init docs; EC2 guide, EC2Launch
# v1 and v2; the agent's own logs). Every one must reach the host log group on its own.
BOOT_FILES = (
    "C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Log\\Ec2Launch.log",
    "C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Log\\UserdataExecution.log",
    "C:\\ProgramData\\Amazon\\EC2Launch\\log\\agent.log",
    "C:\\ProgramData\\Amazon\\EC2Launch\\log\\err.log",
    "C:\\cfn\\log\\cfn-wire.log",
    "C:\\cfn\\log\\cfn-init-cmd.log",
    "C:\\cfn\\log\\cfn-init.log",
    "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\Logs\\configuration-validation.log",
    "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\Logs\\amazon-cloudwatch-agent.log",
)


def test_every_log_a_failed_bootstrap_needs_reaches_the_host_log_group_as_its_own_stream(
    feature: dict[str, Any],
) -> None:
    """Nobody can log in: cfn-init's logs and the launch agent's (EC2Launch v1 on 2019 AMIs,
    EC2Launch v2 on 2022 and 2025) are the only way to see why a worker failed."""
    config, _ = _rendered_agent_config(feature)
    files = {path: n for n, path in enumerate(BOOT_FILES)}
    shipped = _shipped(config, files)
    for path in BOOT_FILES:
        assert len(shipped[path]) == 1, path
        ((group, stream),) = shipped[path]
        assert group == "WinHostLogs" and stream.startswith("{instance_id}/"), path
    streams = [s for targets in shipped.values() for s in targets]
    assert len(set(streams)) == len(streams), "two files in one stream"
    assert shipped["C:\\cfn\\log\\cfn-init-cmd.log"] == [
        ("WinHostLogs", "{instance_id}/cfn_C__cfn_log_cfn-init-cmd.log")
    ]
    assert shipped["C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Log\\UserdataExecution.log"] == [
        ("WinHostLogs", "{instance_id}/ec2launch_C__ProgramData_Amazon_EC2-Windows_Launch_Log_UserdataExecution.log")
    ]


def test_the_agent_model_loses_files_without_publish_multi_logs(feature: dict[str, Any]) -> None:
    # The model above is what makes the test able to fail: the same entries without the
    # flag ship only the newest file of each folder, as the agent would.
    config, _ = _rendered_agent_config(feature)
    for entry in config["logs"]["logs_collected"]["files"]["collect_list"]:
        entry.pop("publish_multi_logs", None)
    shipped = _shipped(config, {path: n for n, path in enumerate(BOOT_FILES)})
    lost = {path for path, targets in shipped.items() if not targets}
    # All but the newest of each folder: cfn-init.log would hide cfn-init-cmd.log, which
    # holds install.ps1's errors.
    assert lost == {BOOT_FILES[i] for i in (0, 2, 4, 5, 7)}


def test_every_worker_log_is_shipped_on_its_own() -> None:
    paths = ("C:\\TDP\\Logs\\*.log", "C:\\TDP\\service.txt")
    config = build_agent_config(WorkersConfig(worker_log_paths=paths), AgentLogGroups("w", "h"), "asg")
    files = {"C:\\TDP\\Logs\\a.log": 1, "C:\\TDP\\Logs\\b.log": 2, "C:\\TDP\\service.txt": 3}
    shipped = _shipped(config, files)
    assert shipped == {
        "C:\\TDP\\Logs\\a.log": [("w", "{instance_id}/worker-0_C__TDP_Logs_a.log")],
        "C:\\TDP\\Logs\\b.log": [("w", "{instance_id}/worker-0_C__TDP_Logs_b.log")],
        "C:\\TDP\\service.txt": [("w", "{instance_id}/worker-1")],
    }


def test_the_disk_counter_watches_the_workers_volume_only() -> None:
    config = build_agent_config(WorkersConfig(), AgentLogGroups("w", "h"), "asg")
    # "*" would mix _Total and unlettered partitions into the fleet-wide series.
    assert config["metrics"]["metrics_collected"]["LogicalDisk"]["resources"] == [SYSTEM_VOLUME] == ["C:"]


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


def test_every_counter_is_sampled_at_the_configured_interval() -> None:
    config = build_agent_config(WorkersConfig(metrics_interval_seconds=30), AgentLogGroups("w", "h"), "asg")
    # The agent section's interval applies to every metric no plugin overrides.
    assert config["agent"]["metrics_collection_interval"] == 30
    assert all("metrics_collection_interval" not in p for p in config["metrics"]["metrics_collected"].values())
