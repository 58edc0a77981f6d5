"""The CloudWatch agent's configuration, built as data.

The result is a dict that cfn-init writes to the instance as JSON. Its values
may be troposphere intrinsics (a log group's ``Ref``); CloudFormation resolves
them in the launch template's Metadata. Tests render the template and validate
the resolved config against the agent's own JSON schema.

Only dimensions the agent fills from instance metadata are used (InstanceId,
ImageId, InstanceType). ``${aws:AutoScalingGroupName}`` would make the agent
call ``ec2:DescribeTags``, which the isolated network cannot reach (CloudWatch
user guide, CloudWatch-Agent-Configuration-File-Details). The group's name is
known when the template is written, so it is added as a static dimension.

The config is not validated against the agent's JSON schema at build time:
that would make ``jsonschema`` (with its compiled ``rpds-py``) a runtime
dependency of every platform build. Instead WorkersConfig checks the
only inputs a platform supplies (log paths, namespace, interval) as strictly as
the schema does, and a property test validates the agent config of any
accepted config against the schema (tests/test_cwagent.py, with the schema
kept in tests/data/cloudwatch-agent/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from winworkers.config import WorkersConfig

# The agent ships only the most recently modified file that a wildcard matches, unless
# publish_multi_logs is set; then each matching file gets its own stream, named
# "<log_stream_name>_<the file's path, with \\ and : as _>" (CloudWatch user guide,
# CloudWatch-Agent-Configuration-File-Details, file_path; the agent's
# plugins/inputs/logfile/logfile.go, getTargetFiles and generateLogStreamName). So every
# entry with a wildcard sets it (``_log``): a folder of logs is one entry, a stream per file.
AGENT_LOG_PATH = "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\Logs\\*.log"
# Nobody can log in, so a failed bootstrap is diagnosed from these. Stream suffix -> path.
BOOT_LOGS: tuple[tuple[str, str], ...] = (
    # cfn-init.log, cfn-init-cmd.log (each command's output: install.ps1's errors) and
    # cfn-wire.log (its calls to CloudFormation: an endpoint or credential failure).
    ("cfn", "C:\\cfn\\log\\*.log"),
    # EC2Launch v1, the launch agent of AWS's Windows Server 2016/2019 AMIs (EC2 guide,
    # ec2launch): Ec2Launch.log, UserdataExecution.log (the UserData's output), ...
    ("ec2launch", "C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Log\\*.log"),
    # EC2Launch v2, on 2022 and 2025 AMIs (EC2 guide, ec2launch-v2): agent.log, err.log, ...
    ("ec2launch-v2", "C:\\ProgramData\\Amazon\\EC2Launch\\log\\*.log"),
    # The agent's own logs (amazon-cloudwatch-agent.log, configuration-validation.log).
    ("agent", AGENT_LOG_PATH),
)
# Each launch agent's stream in BOOT_LOGS (config.LAUNCH_AGENTS): a row of config.WINDOWS_VERSIONS names one.
LAUNCH_AGENT_LOGS = {"EC2Launch v1": "ec2launch", "EC2Launch v2": "ec2launch-v2"}
CONFIG_PATH = "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\winworkers.json"

# Channel -> levels, exactly as the feature promises.
WINDOWS_EVENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("System", ("CRITICAL", "ERROR")),
    ("Application", ("WARNING", "CRITICAL", "ERROR")),
)

SYSTEM_VOLUME = "C:"
"""The LogicalDisk instance of the root volume, the only volume the workers have."""

# The Windows performance counters collected, as (object, counter, resources).
COUNTERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Processor", "% Processor Time", ("_Total",)),
    ("Memory", "% Committed Bytes In Use", ()),
    # The workers' only volume, the root volume, is C: (compute.py maps only /dev/sda1; the
    # allowed instance types have no instance store). "*" would add _Total and any
    # unlettered partition (the small, nearly full recovery one) to the fleet-wide series
    # the disk alarm watches.
    ("LogicalDisk", "% Free Space", (SYSTEM_VOLUME,)),
)
DISK_FREE_METRIC = "LogicalDisk % Free Space"
"""The name the agent gives the disk counter on Windows ("<object> <counter>")."""


@dataclass(frozen=True)
class AgentLogGroups:
    """The log group names the agent writes to (strings or template references):
    the platform's worker logs, and the host's (the agent's own logs and the
    Windows events), each instance writing its own streams."""

    worker: Any
    host: Any


def build_agent_config(config: WorkersConfig, log_groups: AgentLogGroups, asg_name: Any) -> dict[str, Any]:
    """The agent configuration for ``config``, writing to ``log_groups``."""
    interval = config.metrics_interval_seconds
    group_dimension = {"AutoScalingGroupName": asg_name}
    collected: dict[str, Any] = {}
    for obj, counter, resources in COUNTERS:
        # The interval is the agent section's, which applies to every metric the file
        # collects unless a plugin overrides it (agent configuration file, agent section).
        plugin: dict[str, Any] = {"measurement": [counter], "append_dimensions": group_dimension}
        if resources:
            plugin["resources"] = list(resources)
        collected[obj] = plugin
    files = [
        _log(path, log_groups.worker, f"{{instance_id}}/worker-{n}") for n, path in enumerate(config.worker_log_paths)
    ] + [_log(path, log_groups.host, f"{{instance_id}}/{name}") for name, path in BOOT_LOGS]
    events = [
        {
            "event_name": channel,
            "event_levels": list(levels),
            "log_group_name": log_groups.host,
            "log_stream_name": f"{{instance_id}}/{channel}",
        }
        for channel, levels in WINDOWS_EVENTS
    ]
    return {
        "agent": {"metrics_collection_interval": interval, "omit_hostname": True},
        "metrics": {
            "namespace": config.metrics_namespace,
            "append_dimensions": {
                "ImageId": "${aws:ImageId}",
                "InstanceId": "${aws:InstanceId}",
                "InstanceType": "${aws:InstanceType}",
            },
            # One fleet-wide series per counter, for the alarms.
            "aggregation_dimensions": [["AutoScalingGroupName"]],
            "metrics_collected": collected,
        },
        "logs": {
            "logs_collected": {
                "files": {"collect_list": files},
                "windows_events": {"collect_list": events},
            },
        },
    }


def _log(path: str, group: Any, stream: str) -> dict[str, Any]:
    """One collect_list entry. A wildcard path ships every file it matches, each to its own
    stream (publish_multi_logs), never only the newest. Files that exist before the agent
    starts (cfn-init's, EC2Launch's) are read from their start: from_beginning defaults
    to true in the JSON config (the agent's translator, ruleFromBeginning.go). No
    ``timezone``: the agent reads it only to parse a ``timestamp_format`` (fileconfig.go,
    timestampFromLogLine), and without one an event is stamped when it is read."""
    entry: dict[str, Any] = {"file_path": path, "log_group_name": group, "log_stream_name": stream}
    if "*" in path:
        entry["publish_multi_logs"] = True
    return entry
