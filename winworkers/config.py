"""Build-time configuration: one frozen, validated object.

Everything an operator may change per deployment is a stack *parameter* (see
winworkers.parameters). What is fixed when the template is generated —
names, paths, which optional parts exist — lives here.
"""

from __future__ import annotations

import inspect
import json
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from winworkers.instance_types import instance_type_problem
from winworkers.sdk_hosts import SDK_HOSTS

# CloudFormation logical IDs are alphanumeric; we also want PascalCase so the
# generated IDs read well, and a bound so prefix + name stays under 255.
_PREFIX_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,31}$")
# An absolute Windows path; * wildcards only in the file name. The agent globs a path with
# * ? or [ through Go's filepath.Glob and one with ** by walking from its root
# (plugins/inputs/logfile/globpath); ? [ ] and ** are refused to keep to the first, with
# * meaning "any characters but a separator".
_WIN_PATH_RE = re.compile(r"^[A-Za-z]:\\(?:[^<>:\"/\\|?*\[\]\r\n]+\\)*[^<>:\"/\\|?\[\]\r\n]+$")
# Windows' MAX_PATH. It also keeps a stream name (instance id, "/worker-N_" and the
# file's path, with publish_multi_logs) under CloudWatch Logs' 512 characters.
MAX_LOG_PATH = 260
# CloudWatch namespaces: 1-255 of [0-9A-Za-z.-_/#:], and "AWS/" is reserved.
_NAMESPACE_RE = re.compile(r"^[0-9A-Za-z.\-_/#:]{1,255}$")
# The agent's metrics_collection_interval, seconds; below 60 is high resolution.
METRIC_INTERVALS = (10, 30, 60, 120, 300)
# The largest fleet the capacity parameters allow.
MAX_FLEET_SIZE = 1000
# The public SSM parameter of a Windows Server version's latest AMI (EC2 user guide, "Find a Windows
# AMI using Systems Manager Parameter Store"): the launch template resolves it (resolve:ssm:) with the
# WindowsVersion parameter as ${Version}, so every row's parameter is this name with its version.
WINDOWS_AMI_PARAMETER = "/aws/service/ami-windows-latest/Windows_Server-${Version}-English-Full-Base"
# The launch agents of AWS's Windows AMIs (register row 223): each is a log folder the
# CloudWatch agent ships (cwagent.LAUNCH_AGENT_LOGS).
LAUNCH_AGENTS = ("EC2Launch v1", "EC2Launch v2")


@dataclass(frozen=True)
class WindowsVersion:
    """One Windows Server version the workers may run (one row of WINDOWS_VERSIONS): a value of the
    WindowsVersion parameter, the AMI parameter it resolves, the launch agent its AMIs run."""

    version: str
    """The WindowsVersion parameter's value, the year: 2019."""
    launch_agent: str
    """One of LAUNCH_AGENTS: where the AMI's launch agent logs a failed UserData."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"20[0-9]{2}", self.version):
            raise ValueError(f"WindowsVersion.version={self.version!r}: a Windows Server year such as 2019")
        if self.launch_agent not in LAUNCH_AGENTS:
            raise ValueError(f"WindowsVersion.launch_agent={self.launch_agent!r}: one of {', '.join(LAUNCH_AGENTS)}")

    @property
    def ami_parameter(self) -> str:
        """The public SSM parameter of this version's latest AMI."""
        return WINDOWS_AMI_PARAMETER.replace("${Version}", self.version)


WINDOWS_VERSIONS: tuple[WindowsVersion, ...] = (
    WindowsVersion("2019", "EC2Launch v1"),  # the default: the first row
    WindowsVersion("2022", "EC2Launch v2"),
    WindowsVersion("2025", "EC2Launch v2"),
)
"""The WindowsVersion parameter's allowed values, in order; the first is its default."""


# The platform's extra endpoints (WorkersConfig.extra_endpoints): an AWS service's part of
# com.amazonaws.<region>.<service> (with its IAM prefix when that differs), or a PrivateLink
# endpoint service's name, com.amazonaws.vpce.<region>.vpce-svc-<17 hex> (VPC guide, "Endpoint
# service names"), with the private DNS name the workers resolve and the port they use.
_AWS_SERVICE_RE = re.compile(
    r"^(?P<service>[a-z0-9][a-z0-9.-]{0,62}[a-z0-9])(?::(?P<prefix>[a-z0-9-]{2,64}))?"
    r"(?P<names>(?: (?:\*\.)?[a-z0-9][a-z0-9.-]{0,62}[a-z0-9])*)$"
)
_PRIVATE_LINK_RE = re.compile(
    r"^(?P<name>com\.amazonaws\.vpce\.[a-z0-9-]+\.(?P<service>vpce-svc-[0-9a-f]{17})) "
    r"(?P<dns>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?::(?P<port>[0-9]{1,5}))?$"
)
EXTRA_ENDPOINT_FORMS = (
    "an AWS service as in com.amazonaws.<region>.<service>, with :<IAM prefix> when it differs and then "
    "its private DNS names before .<region>.amazonaws.com when not derived (secretsmanager, ecr.api:ecr, "
    "'kinesis-firehose:firehose firehose'), "
    "or 'com.amazonaws.vpce.<region>.vpce-svc-<17 hex> <private DNS name>[:<port>]'"
)


@dataclass(frozen=True)
class ExtraEndpoint:
    """One of WorkersConfig.extra_endpoints, parsed: an interface endpoint the platform's software needs."""

    service: str
    """The service part of com.amazonaws.<region>.<service>; a PrivateLink service's vpce-svc-... id."""
    prefix: str = ""
    """An AWS service's IAM prefix (its endpoint policy's actions); empty for PrivateLink."""
    private_link: str = ""
    """A PrivateLink endpoint service's whole name; empty for an AWS service."""
    dns_name: str = ""
    """A PrivateLink service's private DNS name, which the workers resolve."""
    port: int = 443
    names: tuple[str, ...] = ()
    """An AWS service's private DNS names, each before .<region>.<URL suffix> (sdk_name by default)."""


def sdk_name(service: str) -> str:
    """The name an AWS service's endpoint answers before .<region>.<URL suffix>, as the SDKs resolve it:
    the service's name, or a sub-service's (com.amazonaws.<region>.<service>.<sub>) <sub>.<service>, as
    botocore's endpoint data names them (api.ecr, runtime.sagemaker; rows 271, 278+) — and only when that
    derivation is a host the SDKs call (sdk_hosts.SDK_HOSTS, from botocore): kinesis-firehose's is
    firehose, kinesis-streams' kinesis, so no name is guessed. Empty otherwise: the names must be given."""
    derived = ".".join(reversed(service.split(".")))
    return derived if derived in SDK_HOSTS else ""


def extra_endpoint(text: str) -> ExtraEndpoint:
    """text (one item of WorkersConfig.extra_endpoints) parsed; ConfigError naming the field otherwise."""
    aws = _AWS_SERVICE_RE.match(text) if isinstance(text, str) else None
    if aws and not text.startswith("com.amazonaws"):
        names = tuple(aws["names"].split()) or tuple(filter(None, [sdk_name(aws["service"])]))
        if not names:
            raise ConfigError("extra_endpoints", text, "give its private DNS names: " + EXTRA_ENDPOINT_FORMS)
        return ExtraEndpoint(aws["service"], prefix=aws["prefix"] or aws["service"].split(".")[0], names=names)
    link = _PRIVATE_LINK_RE.match(text) if isinstance(text, str) else None
    port = int(link["port"] or 443) if link else 0
    if not link or not 1 <= port <= 65535:
        raise ConfigError("extra_endpoints", text, EXTRA_ENDPOINT_FORMS)
    return ExtraEndpoint(link["service"], private_link=link["name"], dns_name=link["dns"], port=port)


# Auto Scaling user guide, "Tag Auto Scaling groups and instances", tag restrictions.


class ConfigError(ValueError):
    """A WorkersConfig field holds a value that is not allowed (or is no field at all)."""

    def __init__(self, field_name: str, value: object, allowed: str, *, message: str | None = None) -> None:
        self.field = field_name
        self.value = value
        super().__init__(message or f"WorkersConfig.{field_name}={value!r} is not allowed: {allowed}")


def _doc(text: str) -> dict[str, str]:
    """A field's documentation, kept in its metadata (see WorkersConfig)."""
    return {"doc": text}


@dataclass(frozen=True, kw_only=True)
class WorkersConfig:
    """What the generated template looks like. All fields are optional.

    Every field is checked on construction; a bad value raises ConfigError
    (a ValueError) naming the field, the value and what is allowed.
    WorkersConfig.from_mapping and load_config read one from TOML or JSON data.
    """

    # Each field's documentation lives in its metadata, once: the class docstring's
    # "Attributes" section is generated from it (help() ignores attribute docstrings).
    prefix: str = field(
        default="Win",
        metadata=_doc(
            "Prefix of every logical ID, so the feature cannot collide with a parent's "
            "resources. PascalCase, 1-32 alphanumerics. Logical IDs are API: changing the "
            "prefix of a deployed stack replaces every resource."
        ),
    )
    worker_log_paths: tuple[str, ...] = field(
        default=("C:\\ProgramData\\TDP\\Logs\\*.log",),
        metadata=_doc(
            "The platform's (TDP) worker log files, shipped to the worker log group, one stream "
            "per file. Absolute Windows paths of at most 260 characters; * wildcards in the file "
            "name only (not ? [ ] or **). A path without a wildcard ships that file to the stream "
            "<instance-id>/worker-<n> (n: its place in this list); a path with one ships every "
            "file it matches, each to its own stream <instance-id>/worker-<n>_<the file's path, "
            "with \\ and : as _> (the agent's publish_multi_logs)."
        ),
    )
    metrics_namespace: str = field(
        default="WinWorkers",
        metadata=_doc(
            "CloudWatch namespace of the agent's metrics. The instance role may put metrics into this namespace only."
        ),
    )
    metrics_interval_seconds: int = field(
        default=60,
        metadata=_doc("How often the agent samples CPU, memory and disk: one of 10, 30, 60, 120, 300."),
    )
    max_fleet_size: int = field(
        default=100,
        metadata=_doc(
            "Upper bound of the capacity parameters, 1-1000. The template grows only with "
            "its digits (the bound is a MaxValue and a pattern)."
        ),
    )
    include_alarms: bool = field(
        default=True,
        metadata=_doc(
            "Create the operator alarms (idle fleet with queued work, low disk, "
            "refresh Lambda errors, failed instance refresh)."
        ),
    )
    default_instance_type: str = field(
        default="m6i.large",
        metadata=_doc(
            "Default of the InstanceType parameter: one of winworkers.instance_types.INSTANCE_TYPES "
            "(x86_64 m, c and r types from the 5th generation on, t3 and t3a; large and up)."
        ),
    )
    tags: tuple[tuple[str, str], ...] = field(
        default=(),
        metadata=_doc(
            "Extra tags for the fleet's instances, as (key, value) pairs. Auto Scaling's 50 tags a group "
            "hold these, the fleet's own and the refresh function's claim."
        ),
    )

    extra_endpoints: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Interface endpoints the platform's software needs beyond the five services, one string each: "
            "an AWS service (secretsmanager; ecr.api:ecr when its IAM prefix differs), whose endpoint "
            "policy allows the workers' role that prefix's actions (the role's own policies bound them), "
            "or a PrivateLink endpoint service of another account "
            "('com.amazonaws.vpce.<region>.vpce-svc-<id> licence.example.com:27000': its private DNS "
            "name and port, 443 by default), which takes no endpoint policy. Each is created in the "
            "isolated VPC (the platform's VPC provides it in existing-subnets, in EndpointsCidr), "
            "reached by the workers' security group on its port, and its names allowed by the DNS "
            "Firewall: the private DNS names given after it, before .<region>.amazonaws.com "
            "('kinesis-firehose:firehose firehose'), or else the name the SDKs call when botocore knows it "
            "(secretsmanager; a sub-service's <sub>.<service>: ecr.api's api.ecr); refused with neither. "
            'docs/network.md, "Extra endpoints".'
        ),
    )

    def __post_init__(self) -> None:
        _check_types(self)
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigError("prefix", self.prefix, "PascalCase alphanumerics, 1-32 characters")
        if not self.worker_log_paths:
            raise ConfigError("worker_log_paths", self.worker_log_paths, "at least one path")
        for path in self.worker_log_paths:
            if "*" in path.rpartition("\\")[0] or "**" in path:
                raise ConfigError("worker_log_paths", path, "* wildcards in the file name only, and no **")
            if not _WIN_PATH_RE.match(path) or len(path) > MAX_LOG_PATH:
                raise ConfigError(
                    "worker_log_paths",
                    path,
                    rf"an absolute Windows path of at most {MAX_LOG_PATH} characters, without ? [ ], "
                    r"such as C:\Logs\*.log",
                )
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
        if not 1 <= self.max_fleet_size <= MAX_FLEET_SIZE:
            raise ConfigError("max_fleet_size", self.max_fleet_size, f"an integer from 1 to {MAX_FLEET_SIZE}")
        problem = instance_type_problem(self.default_instance_type)
        if problem:
            raise ConfigError("default_instance_type", self.default_instance_type, problem)
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
        services = [extra_endpoint(text).service for text in self.extra_endpoints]
        if len(set(services)) != len(services):
            raise ConfigError("extra_endpoints", self.extra_endpoints, "one item per service")

    def logical_id(self, name: str) -> str:
        """The logical ID of one of the feature's resources: prefix + PascalCase name."""
        return f"{self.prefix}{name}"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WorkersConfig:
        """A config from plain data, such as a parsed TOML or JSON file.

        Keys are field names; lists become tuples; tags may be a table (object)
        or a list of [key, value] pairs. An unknown key raises ConfigError.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(
                unknown[0],
                data[unknown[0]],
                "",
                message=f"unknown WorkersConfig fields {unknown}: the fields are {names}",
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "tags" and isinstance(value, Mapping):
                value = tuple(value.items())
            elif key == "tags" and isinstance(value, list):
                value = tuple(tuple(pair) if isinstance(pair, list) else pair for pair in value)
            elif isinstance(value, list):
                value = tuple(value)
            values[key] = value
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        """The config as plain data (lists, tags as an object): what from_mapping reads back."""
        data: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "tags":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        return data


def _attributes_section() -> str:
    """The "Attributes" section of WorkersConfig's docstring, from the fields' metadata."""
    lines = ["", "Attributes:"]
    for f in fields(WorkersConfig):
        lines.append(f"    {f.name} (default {f.default!r}):")
        lines += [f"        {line}" for line in textwrap.wrap(f.metadata["doc"], 72)]
    return "\n".join(lines) + "\n"


WorkersConfig.__doc__ = inspect.cleandoc(WorkersConfig.__doc__ or "") + "\n" + _attributes_section()


def load_config(path: str | Path) -> WorkersConfig:
    """Read a WorkersConfig from a .toml or .json file of its fields (see WorkersConfig.from_mapping).

    Raises OSError if the file cannot be read, ValueError if it does not parse,
    and ConfigError (a ValueError) for unknown fields or values not allowed.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: Any
    if path.suffix == ".toml":
        import tomllib  # here, not at the top: import winworkers stays fast

        data = tomllib.loads(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"{path.name}: a config file is .toml or .json")
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: expected a table (object) of WorkersConfig fields")
    return WorkersConfig.from_mapping(data)


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
