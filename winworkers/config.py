"""Build-time configuration: one frozen, validated object.

Everything an operator may change per deployment is a stack *parameter* (see
:mod:`winworkers.parameters`). What is fixed when the template is generated —
names, paths, which optional parts exist — lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

# CloudFormation logical IDs are alphanumeric; we also want PascalCase so the
# generated IDs read well, and a bound so prefix + name stays under 255.
_PREFIX_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,31}$")
# An absolute Windows path, with the agent's glob wildcards allowed in the last part.
_WIN_PATH_RE = re.compile(r"^[A-Za-z]:\\(?:[^<>:\"/\\|?\r\n]+\\)*[^<>:\"/\\|?\r\n]+$")
# CloudWatch namespaces: 1-255 of [0-9A-Za-z.-_/#:], and "AWS/" is reserved.
_NAMESPACE_RE = re.compile(r"^[0-9A-Za-z.\-_/#:]{1,255}$")
# The agent's metrics_collection_interval, seconds; below 60 is high resolution.
METRIC_INTERVALS = (10, 30, 60, 120, 300)


class ConfigError(ValueError):
    """A :class:`WorkersConfig` field holds a value that is not allowed."""

    def __init__(self, field_name: str, value: object, allowed: str) -> None:
        self.field = field_name
        self.value = value
        super().__init__(f"WorkersConfig.{field_name}={value!r} is not allowed: {allowed}")


@dataclass(frozen=True, kw_only=True)
class WorkersConfig:
    """What the generated template looks like. All fields are optional.

    Every field is checked on construction; a bad value raises
    :class:`ConfigError` (a ``ValueError``) naming the field, the value and
    what is allowed.
    """

    prefix: str = "Win"
    """Prefix of every logical ID, so the feature cannot collide with a parent's
    resources. PascalCase, 1-32 alphanumerics. Logical IDs are API: changing the
    prefix of a deployed stack replaces every resource."""

    worker_log_paths: tuple[str, ...] = ("C:\\ProgramData\\TDP\\Logs\\*.log",)
    """The platform's (TDP) worker log files, shipped to the ``worker`` log group.
    Absolute Windows paths; the last part may contain ``*`` wildcards."""

    metrics_namespace: str = "WinWorkers"
    """CloudWatch namespace of the agent's metrics. The instance role may put
    metrics into this namespace only."""

    metrics_interval_seconds: int = 60
    """How often the agent samples CPU, memory and disk: one of 10, 30, 60, 120, 300."""

    max_fleet_size: int = 10
    """Upper bound of the capacity parameters, 1-50. The template's Rules
    enumerate capacities up to this bound (CloudFormation Rules cannot compare
    numbers), so they grow with its square: about 4 KB at 10, 20 KB at 30,
    45 KB at 50. Above 10 the feature's template no longer fits the 51,200-byte
    inline limit and deploys from S3 (``winworkers deploy --template-bucket``)."""

    include_alarms: bool = True
    """Create the operator alarms (idle fleet with queued work, low disk,
    refresh Lambda errors, failed instance refresh)."""

    default_instance_type: str = "m6i.large"
    """Default of the ``InstanceType`` parameter; must match its AllowedPattern."""

    tags: tuple[tuple[str, str], ...] = field(default=())
    """Extra tags for the fleet's instances, as ``(key, value)`` pairs."""

    def __post_init__(self) -> None:
        _check_types(self)
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigError("prefix", self.prefix, "PascalCase alphanumerics, 1-32 characters")
        if not self.worker_log_paths:
            raise ConfigError("worker_log_paths", self.worker_log_paths, "at least one path")
        for path in self.worker_log_paths:
            if not _WIN_PATH_RE.match(path):
                raise ConfigError("worker_log_paths", path, r"an absolute Windows path such as C:\Logs\*.log")
        if len(set(self.worker_log_paths)) != len(self.worker_log_paths):
            raise ConfigError("worker_log_paths", self.worker_log_paths, "paths without duplicates")
        if not _NAMESPACE_RE.match(self.metrics_namespace) or self.metrics_namespace.startswith("AWS/"):
            raise ConfigError(
                "metrics_namespace",
                self.metrics_namespace,
                "1-255 of A-Z a-z 0-9 . - _ / # :, not starting with AWS/",
            )
        if self.metrics_interval_seconds not in METRIC_INTERVALS:
            raise ConfigError("metrics_interval_seconds", self.metrics_interval_seconds, f"one of {METRIC_INTERVALS}")
        if not 1 <= self.max_fleet_size <= 50:
            raise ConfigError("max_fleet_size", self.max_fleet_size, "an integer from 1 to 50")
        from winworkers.parameters import INSTANCE_TYPE_PATTERN

        if not re.match(INSTANCE_TYPE_PATTERN, self.default_instance_type):
            raise ConfigError("default_instance_type", self.default_instance_type, INSTANCE_TYPE_PATTERN)
        keys = [key for key, _ in self.tags]
        for key, value in self.tags:
            if (
                not 1 <= len(key) <= 128
                or key.lower().startswith("aws:")
                or len(value) > 256
                or not all(_tag_char(c) for c in key + value)
            ):
                raise ConfigError(
                    "tags",
                    (key, value),
                    "keys of 1-128 and values of 0-256 Unicode letters, digits, spaces and _ . : / = + - @; "
                    "keys not starting with aws:",
                )
        if len(set(keys)) != len(keys) or {"Name", "Feature"} & set(keys):
            raise ConfigError("tags", keys, "unique keys other than the reserved Name and Feature")

    def logical_id(self, name: str) -> str:
        """The logical ID of one of the feature's resources: prefix + PascalCase name."""
        return f"{self.prefix}{name}"


def _tag_char(char: str) -> bool:
    """What EC2 and Auto Scaling accept in tags (Tag API reference)."""
    return char.isalnum() or char == " " or char in "_.:/=+-@"


def _check_types(config: WorkersConfig) -> None:
    """Reject wrong types before the range checks, with the same kind of message."""
    expected: dict[str, Any] = {
        "prefix": str,
        "metrics_namespace": str,
        "default_instance_type": str,
        "metrics_interval_seconds": int,
        "max_fleet_size": int,
        "include_alarms": bool,
    }
    for f in fields(config):
        value = getattr(config, f.name)
        kind = expected.get(f.name)
        if kind is not None:
            # bool is an int in Python; a capacity of True is a bug, not 1.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ConfigError(f.name, value, f"a value of type {kind.__name__}")
        elif not isinstance(value, tuple):
            raise ConfigError(f.name, value, "a tuple")
    for path in config.worker_log_paths:
        if not isinstance(path, str):
            raise ConfigError("worker_log_paths", path, "strings")
    for tag in config.tags:
        if not (isinstance(tag, tuple) and len(tag) == 2 and all(isinstance(x, str) for x in tag)):
            raise ConfigError("tags", tag, "(key, value) pairs of strings")
