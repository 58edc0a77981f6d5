"""The feature's stack parameters, conditions and Rules, declared once.

One table, PARAMETERS (one Param row per parameter, in template order),
produces the CloudFormation Parameters with their constraints and
descriptions, the Rules that require an input, the console's parameter groups
and labels (``AWS::CloudFormation::Interface``, console_interface), the nested
stack's pass-through, and docs/parameters.md's table (grouped as in the
console), so they cannot disagree. parameter_specs(config) reads it for one
WorkersConfig.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, TypeAlias, TypeVar

from troposphere import (
    And,
    Condition,
    Equals,
    Join,
    Not,
    Or,
    Parameter,
    Ref,
    Select,
    Split,
    Template,
)

from winworkers import config as _config
from winworkers.config import WorkersConfig
from winworkers.instance_types import (
    INSTANCE_TYPE_DESCRIPTION,
    INSTANCE_TYPE_LIST_DESCRIPTION,
    INSTANCE_TYPE_LIST_PATTERN,
    INSTANCE_TYPE_PATTERN,
)
from winworkers.rules import is_list_type

S3_KEY_LIMIT = 1024
"""S3 object keys are at most 1,024 bytes (S3 user guide, "Naming Amazon S3 objects")."""
# The boot alarm's threshold, seconds from launch to service. A Windows first boot takes
# 10-20 minutes (aws-cdk #10429, #21359): the default pages on 25. The bound is the launch
# hook's timeout (bootstrap.BOOT_TIMEOUT_SECONDS; bootstrap imports this module, and a test
# holds the two equal): a slower boot is abandoned and reports no time.
BOOT_ALARM_DEFAULT = 1500
BOOT_ALARM_MIN = 300
BOOT_ALARM_MAX = 2700
# The queue-wait alarm's threshold, seconds a job waited in the queue (P95 over 15 minutes).
# The default pages when a fleet with a warm pool and the wake misses its target by far
# (BENCHMARKS.md, "The first file after an idle night"); a cold fleet waits ~15 minutes.
QUEUE_WAIT_ALARM_DEFAULT = 1200
QUEUE_WAIT_ALARM_MIN = 30
QUEUE_WAIT_ALARM_MAX = 43200

SWITCH = "EnableWinTaskScriptService"
"""The default switch: the feature exists when this parameter is "true". Never prefixed: the
parent stack owns it. A parent may name its own (add_to and nested_stack take ``switch=``)."""


@dataclass(frozen=True)
class Switch:
    """What turns the feature on in a template: a parameter that equals "true", or a condition.

    ``wiring.resolve_switch`` makes one from what a parent passes (and refuses one that can never
    be on). For a condition, ``rule`` is the same test written with parameters only, which is all
    a Rule may read (CloudFormation Rule functions have no Condition).

    Attributes:
        name: the parameter's or the condition's logical name.
        is_condition: True when name is a condition.
        rule: the condition as a Rule expression (a condition switch only).
    """

    name: str = SWITCH
    is_condition: bool = False
    rule: Any = None

    @property
    def parameter(self) -> str | None:
        """The switch parameter's name, or None for a condition."""
        return None if self.is_condition else self.name

    def rule_condition(self) -> Any:
        """A Rule expression that is true when the feature is on."""
        return self.rule if self.is_condition else Equals(Ref(self.name), "true")


BOOLEAN = ("true", "false")
AWS_PUBLISHED = "aws-published"
BAKED = "baked"
"""The ImageSource parameter's values: the AWS image as today, or the stack's own (winworkers.image)."""
ISOLATED = "isolated-vpc"
EXISTING = "existing-subnets"
ENDPOINTS_IN_EVERY_AZ = "all"
ENDPOINTS_IN_ONE_AZ = "one"
"""EndpointAzs: the interface endpoints in every subnet of the isolated VPC, or in the first one only
(network._add_endpoints says what each costs and what the second loses)."""
WARM_POOL_OFF = "off"
WARM_POOL_STOPPED = "stopped"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy API reference).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

LONG_PATTERN = 200
"""A pattern longer than this is shown by its ConstraintDescription, not quoted (docs/deploy.md, the pre-check)."""

_BUCKET = r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$"
_KMS_KEY_ARN = r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+)?$"

# --- existing-subnets: the bound of EndpointsCidr (i18-net) ---------------------------------
ENDPOINTS_CIDR_PATTERN = r"^((\d{1,3}\.){3}\d{1,3}/(1[6-9]|2\d|3[0-2]))?$"
ENDPOINTS_CIDR_CONSTRAINT = "empty or an IPv4 CIDR of /16 to /32, the endpoints' own block"
ENDPOINTS_CIDR_RULE = (
    "{name} must hold the network's endpoints only (/16 or longer): "
    "through a NAT, 0.0.0.0/0 is HTTPS to the Internet past every endpoint policy"
)
"""Rules have no string functions, so the Rule refuses the routes to everywhere by name
(0.0.0.0/0 and its two halves); the AllowedPattern bounds every other prefix."""
ROUTES_TO_EVERYWHERE = ("0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1")


INTERFACE = "AWS::CloudFormation::Interface"
"""The template Metadata key the CloudFormation console reads for parameter groups and labels (only
the console: the CLI and the API ignore it; docs/aws-behaviours.md, row 176)."""


class Group(StrEnum):
    """The console's parameter groups, in the order an operator decides; each value is the group's
    label. docs/parameters.md's table is grouped the same way."""

    FEATURE = "Feature switch"
    PLATFORM = "Platform: queue, buckets and artifact"
    NETWORK = "Network"
    CAPACITY = "Capacity and image"
    OBSERVABILITY = "Observability"
    ADVANCED = "Advanced"


class Required(Enum):
    """When an input has no usable default: the Rules require it then, and its description says so."""

    ON = "on"
    """Whenever the feature is on (the PlatformInputs Rule)."""
    EXISTING_NETWORK = "existing network"
    """When the feature is on in the existing-subnets mode (the ExistingNetwork Rule)."""


@dataclass(frozen=True)
class ParamSpec:
    """One stack parameter for one WorkersConfig: its type, default, constraint and documentation.

    What Param.spec(config) gives for a row of PARAMETERS: every value plain.
    """

    name: str
    type: str
    default: str
    description: str
    group: Group
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    constraint: str | None = None
    label: str = ""
    required: Required | None = None

    def to_parameter(self, logical_name: str) -> Parameter:
        kwargs: dict[str, Any] = {"Type": self.type, "Description": self.description}
        kwargs["Default"] = self.default
        for key, value in (
            ("AllowedValues", list(self.allowed_values) or None),
            ("AllowedPattern", self.allowed_pattern),
            ("MinValue", self.min_value),
            ("MaxValue", self.max_value),
            ("MaxLength", self.max_length),
            ("ConstraintDescription", self.constraint),
        ):
            if value is not None:
                kwargs[key] = value
        return Parameter(logical_name, **kwargs)

    def constraint_text(self) -> str:
        """The constraint, in words, for docs/parameters.md's table."""
        numbers = [int(v) for v in self.allowed_values if v.isdigit()]
        if len(numbers) > 3 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            run = f"{numbers[0]}-{numbers[-1]}"
            return f'`""` or {run}' if "" in self.allowed_values else run
        if self.allowed_values:
            return " / ".join(f"`{v}`" if v else '`""`' for v in self.allowed_values)
        if self.min_value is not None:
            return f"{self.min_value}-{self.max_value}"
        if self.allowed_pattern and len(self.allowed_pattern) > LONG_PATTERN and self.constraint:
            return self.constraint
        if self.allowed_pattern:
            return f"pattern `{self.allowed_pattern}`"
        return f"type `{self.type}`"


T = TypeVar("T")
FromConfig: TypeAlias = T | Callable[[WorkersConfig], T]
"""A row's value, or a function of the WorkersConfig that gives it (see the functions below PARAMETERS)."""


@dataclass(frozen=True)
class Param:
    """One row of PARAMETERS: a ParamSpec whose values may come from the WorkersConfig.

    The fields and their order are ParamSpec's: name (unprefixed; see
    param_name), CloudFormation Type, Default (always a string), Description,
    console (and docs/parameters.md) Group, then the constraints by keyword. label (a
    keyword, required) is the console's name for it, which shows the logical
    name after it. required says when an input with no usable default must be
    given: the Rules require it then, and its description ends saying so. A
    value that depends on the config is a named function of it (fleet_cap,
    capacity_pattern, ...), never an inline lambda, so the table reads as data.
    when, if given, decides whether the config has the parameter at all
    (with_alarms).

    To add a parameter, add one row to PARAMETERS where it belongs in the
    template's order, e.g.::

        Param("ExampleSize", "Number", "0", "What it sets, in a few words.", Group.CAPACITY,
              label="Example size", min_value=0, max_value=fleet_cap),

    A value computed from the config becomes a small named function of it
    beside fleet_cap (or one of those already there), and a parameter that
    only some configs have gets when=.
    """

    name: str
    type: str
    default: FromConfig[str]
    description: str
    group: Group
    allowed_values: FromConfig[tuple[str, ...]] = ()
    allowed_pattern: FromConfig[str | None] = None
    min_value: int | None = None
    max_value: FromConfig[int | None] = None
    max_length: int | None = None
    constraint: FromConfig[str | None] = None
    when: Callable[[WorkersConfig], bool] | None = None
    label: str = field(kw_only=True)
    required: Required | None = None

    def spec(self, config: WorkersConfig, switch: Switch | None = None) -> ParamSpec:
        """This row for config: every function of the config called, the description ending with
        when it is required (naming switch, the default's parameter if None)."""
        required = f" {required_sentence(self.required, config, switch or Switch())}" if self.required else ""
        return ParamSpec(
            self.name,
            self.type,
            _value(self.default, config),
            self.description + required,
            self.group,
            allowed_values=_value(self.allowed_values, config),
            allowed_pattern=_value(self.allowed_pattern, config),
            min_value=self.min_value,
            max_value=_value(self.max_value, config),
            max_length=self.max_length,
            constraint=_value(self.constraint, config),
            label=self.label,
            required=self.required,
        )


def required_sentence(required: Required, config: WorkersConfig, switch: Switch) -> str:
    """The sentence a required input's description ends with: when the Rules require it."""
    on = f"{switch.name} is true" if switch.parameter else f"condition {switch.name} is true"
    if required is Required.EXISTING_NETWORK:
        on += f" and {param_name(config, 'NetworkMode')} is {EXISTING}"
    return f"Required when {on}."


def _value(value: FromConfig[T], config: WorkersConfig) -> T:
    if callable(value):
        result: T = value(config)
        return result
    return value


# The parts of the table that depend on the WorkersConfig.


def fleet_cap(config: WorkersConfig) -> int:
    """The capacity parameters' upper bound."""
    return config.max_fleet_size


def capacity_pattern(config: WorkersConfig) -> str:
    """Empty or a whole number from 0 to the cap: a String's bound, as MaxValue is a Number's."""
    return f"^({number_pattern(config.max_fleet_size)})?$"


def capacity_constraint(config: WorkersConfig) -> str:
    """capacity_pattern in words."""
    return f"empty or a whole number from 0 to {config.max_fleet_size}"


def default_instance_type(config: WorkersConfig) -> str:
    """The InstanceType parameter's default (the config checked it against the pattern)."""
    return config.default_instance_type


def windows_versions(config: WorkersConfig) -> tuple[str, ...]:
    """The WindowsVersion parameter's allowed values: the rows of config.WINDOWS_VERSIONS."""
    return tuple(row.version for row in _config.WINDOWS_VERSIONS)


def default_windows_version(config: WorkersConfig) -> str:
    """The WindowsVersion parameter's default: the first row of config.WINDOWS_VERSIONS."""
    return _config.WINDOWS_VERSIONS[0].version


def with_alarms(config: WorkersConfig) -> bool:
    """The alarms' parameters exist only when the config creates the alarms."""
    return config.include_alarms


FAST_LAUNCH_MAX = 100
"""The FastLaunchSnapshots bound: the snapshots are paid storage (docs/baked-image.md)."""
IMAGE_REVISION_MAX = 1_000_000
"""The ImageRevision bound: it is the minor of Image Builder's x.y.z versions, below 2^30."""


PARAMETERS: tuple[Param, ...] = (
    # Feature
    Param(
        SWITCH,
        "String",
        "false",
        "true creates the Windows Workers feature; false creates nothing "
        "(a standalone stack keeps a no-cost placeholder).",
        Group.FEATURE,
        label="Create the Windows Workers feature",
        allowed_values=BOOLEAN,
    ),
    # Network
    Param(
        "NetworkMode",
        "String",
        ISOLATED,
        f"{ISOLATED}: a new VPC with no route out. {EXISTING}: the subnets below.",
        Group.NETWORK,
        label="Network mode",
        allowed_values=(ISOLATED, EXISTING),
    ),
    Param(
        "AzCount",
        "String",
        "2",
        f"{ISOLATED}: Availability Zones.",
        Group.NETWORK,
        label="Availability Zones of the new VPC",
        allowed_values=("2", "3"),
    ),
    Param(
        "EndpointAzs",
        "String",
        ENDPOINTS_IN_EVERY_AZ,
        f"{ISOLATED}: interface endpoints in {ENDPOINTS_IN_EVERY_AZ} the workers' AZs, or in {ENDPOINTS_IN_ONE_AZ} "
        "(the first): less idle cost, and no AWS API for any worker while that AZ is down.",
        Group.NETWORK,
        label="AZs of the interface endpoints",
        allowed_values=(ENDPOINTS_IN_EVERY_AZ, ENDPOINTS_IN_ONE_AZ),
    ),
    Param(
        "VpcCidr",
        "String",
        "10.250.0.0/22",
        f"{ISOLATED}: VPC CIDR; subnets are its first /24s.",
        Group.NETWORK,
        label="CIDR of the new VPC",
        allowed_pattern=r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-2])$",
        constraint="an IPv4 CIDR with a prefix length from 16 to 22",
    ),
    Param(
        "VpcId",
        "String",
        "",
        f"{EXISTING}: the VPC of the subnets.",
        Group.NETWORK,
        label="Existing VPC",
        required=Required.EXISTING_NETWORK,
        allowed_pattern=r"^(vpc-[0-9a-f]{8,17})?$",
        constraint="empty or a VPC id",
    ),
    # CommaDelimitedList, not List<AWS::EC2::Subnet::Id>: the AWS-specific list type
    # rejects the empty value that the isolated mode needs (buildkite/on-demand#2).
    Param(
        "SubnetIds",
        "CommaDelimitedList",
        "",
        f"{EXISTING}: subnets, one per AZ.",
        Group.NETWORK,
        label="Existing subnets",
        required=Required.EXISTING_NETWORK,
        allowed_pattern=r"^(subnet-[0-9a-f]{8,17})?$",
        constraint="subnet ids",
    ),
    # existing-subnets (i18-net): the workers send HTTPS to this block and nowhere else but S3.
    # Bounded at /16, the largest block a VPC or subnet can have (VPC user guide, "VPC CIDR
    # blocks"): a wider one covers more than the network's endpoints, and through a NAT
    # 0.0.0.0/0 is HTTPS to the Internet past every endpoint policy. See ENDPOINTS_CIDR_RULE.
    Param(
        "EndpointsCidr",
        "String",
        "",
        f"{EXISTING}: CIDR of the network's VPC endpoints.",
        Group.NETWORK,
        label="CIDR of the existing VPC endpoints",
        required=Required.EXISTING_NETWORK,
        allowed_pattern=ENDPOINTS_CIDR_PATTERN,
        constraint=ENDPOINTS_CIDR_CONSTRAINT,
    ),
    # existing-subnets with ImageSource=baked: the build's Systems Manager and Image Builder endpoints,
    # in a block of their own, which the workers' group never reaches (docs/baked-image.md; the
    # BakedExistingNetwork Rule requires it, the deploy's pre-check refuses it overlapping EndpointsCidr).
    Param(
        "BuildEndpointsCidr",
        "String",
        "",
        f"{EXISTING}, baked: CIDR of the image build's endpoints (SSM, Image Builder), apart from EndpointsCidr.",
        Group.NETWORK,
        label="CIDR of the image build's endpoints",
        allowed_pattern=ENDPOINTS_CIDR_PATTERN,
        constraint=ENDPOINTS_CIDR_CONSTRAINT,
    ),
    Param(
        "S3PrefixListId",
        "String",
        "",
        "Prefix list com.amazonaws.<region>.s3 (winworkers deploy looks it up).",
        Group.NETWORK,
        label="S3 prefix list",
        required=Required.ON,
        allowed_pattern=r"^(pl-[0-9a-f]{8,17})?$",
        constraint="empty or a prefix list id",
    ),
    # isolated-vpc always filters its DNS (winworkers.network, _add_dns_firewall); this option
    # offers the same rule group, unassociated, to a platform that owns the resolver.
    Param(
        "CreateDnsFirewall",
        "String",
        "false",
        f"{EXISTING}: also create the DNS Firewall rule group, unassociated, for the platform's VPC.",
        Group.NETWORK,
        label="DNS Firewall rule group for the existing VPC",
        allowed_values=BOOLEAN,
    ),
    # Fleet
    Param(
        "WindowsVersion",
        "String",
        default_windows_version,
        "Windows Server version; the latest AWS AMI is used.",
        Group.CAPACITY,
        label="Windows Server version",
        allowed_values=windows_versions,
    ),
    Param(
        "InstanceType",
        "String",
        default_instance_type,
        "The workers' instance type.",
        Group.CAPACITY,
        label="Instance type",
        # Generated from a maintained list, exact, in ~0.6 KB (winworkers.instance_types).
        allowed_pattern=INSTANCE_TYPE_PATTERN,
        constraint=INSTANCE_TYPE_DESCRIPTION,
    ),
    Param(
        "RootVolumeSize",
        "Number",
        "60",
        "Root volume GiB (gp3, encrypted).",
        Group.ADVANCED,
        label="Root volume size, GiB",
        min_value=30,
        max_value=2048,
    ),
    # Seconds, not minutes: it is the termination hook's HeartbeatTimeout, and CloudFormation
    # cannot multiply. 30 to 7200 is the range Auto Scaling accepts (PutLifecycleHook).
    Param(
        "DrainSeconds",
        "Number",
        "3600",
        "Seconds a terminating worker has to finish its job.",
        Group.ADVANCED,
        label="Drain time, seconds",
        min_value=30,
        max_value=7200,
    ),
    # Boot diagnosis (winworkers.diagnostics): Auto Scaling's instance lifecycle policy keeps an
    # instance whose termination hook was abandoned, as a failed bootstrap's drain hook is.
    Param(
        "RetainFailedBoots",
        "String",
        "false",
        "true keeps a worker whose bootstrap failed, running and billed, until you terminate it.",
        Group.ADVANCED,
        label="Keep workers whose bootstrap failed",
        allowed_values=BOOLEAN,
    ),
    Param(
        "KmsKeyArn",
        "String",
        "",
        "KMS key for volumes and logs; empty: AWS-managed.",
        Group.ADVANCED,
        label="KMS key of volumes and logs",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    Param(
        "MinSize",
        "Number",
        "0",
        "Fewest workers; 0: no instance while idle.",
        Group.CAPACITY,
        label="Fewest workers",
        min_value=0,
        max_value=fleet_cap,
    ),
    Param(
        "MaxSize",
        "Number",
        "4",
        "Most workers.",
        Group.CAPACITY,
        label="Most workers",
        min_value=0,
        max_value=fleet_cap,
    ),
    Param(
        "DesiredCapacity",
        "String",
        "",
        "Workers at creation; empty: scaling decides.",
        Group.CAPACITY,
        label="Workers at creation",
        # A String, so that empty can mean "unset"; the pattern bounds it as MaxValue would.
        allowed_pattern=capacity_pattern,
        constraint=capacity_constraint,
    ),
    # Target tracking on (queued + in flight) / workers in service. 1: one job
    # per worker and none waiting, so no worker busy on a long job is counted
    # as spare.
    Param(
        "BacklogPerWorker",
        "Number",
        "1",
        "Queued and in-flight messages per worker that scaling aims for.",
        Group.ADVANCED,
        label="Messages per worker, scaling target",
        min_value=1,
        max_value=100,
    ),
    # The group's DefaultInstanceWarmup, HealthCheckGracePeriod and refreshes' InstanceWarmup.
    # All three count from InService, which the launch hook holds back until the bootstrap
    # succeeded (user guide, "Set the default instance warmup", "Health check grace period"):
    # the boot is not in it. A worker takes its first message within seconds of entering
    # service; 3 minutes lets the 1-minute SQS and group metrics show it. 0 to 3600 is what
    # DefaultInstanceWarmup accepts.
    Param(
        "InstanceWarmup",
        "Number",
        "180",
        "Seconds from a worker entering service (bootstrap done) until metrics reflect it.",
        Group.ADVANCED,
        label="Instance warmup, seconds",
        min_value=0,
        max_value=3600,
    ),
    # Capacity (warm): a pool of stopped, bootstrapped workers (winworkers.compute, _warm_pool;
    # docs/lifecycle.md, "Boot paths"). A stopped pool pays EBS only (EC2 StopInstances API).
    Param(
        "WarmPool",
        "String",
        WARM_POOL_OFF,
        f"{WARM_POOL_STOPPED}: keep bootstrapped workers stopped in a warm pool; a start skips the bootstrap.",
        Group.CAPACITY,
        label="Warm pool",
        allowed_values=(WARM_POOL_OFF, WARM_POOL_STOPPED),
    ),
    Param(
        "WarmPoolMinSize",
        "Number",
        "1",
        "Fewest stopped workers kept in the warm pool.",
        Group.CAPACITY,
        label="Warm pool, fewest stopped workers",
        min_value=0,
        max_value=fleet_cap,
    ),
    # -1 is PutWarmPool's own "unset": the pool holds MaxSize minus the desired capacity.
    Param(
        "WarmPoolMaxPrepared",
        "Number",
        "-1",
        "Most workers in service and in the pool together, unless WarmPoolMinSize needs more; -1: MaxSize.",
        Group.CAPACITY,
        label="Warm pool, most prepared workers",
        min_value=-1,
        max_value=fleet_cap,
    ),
    # Capacity (spot): the Spot / mixed instances mode (winworkers.compute, _mixed_instances). With
    # the defaults the group has no MixedInstancesPolicy and is exactly as in 0.2.0. AllowedPattern
    # applies to each item of a CommaDelimitedList, and to its empty default as one empty item
    # (docs/aws-behaviours.md): the pattern accepts the listed types, or nothing.
    Param(
        "InstanceTypes",
        "CommaDelimitedList",
        "",
        "More instance types beside InstanceType, for Spot or mixed instances.",
        Group.CAPACITY,
        label="More instance types, for Spot or mixed",
        allowed_pattern=INSTANCE_TYPE_LIST_PATTERN,
        constraint=INSTANCE_TYPE_LIST_DESCRIPTION,
    ),
    Param(
        "OnDemandBaseCapacity",
        "Number",
        "0",
        "Workers that are On-Demand whatever OnDemandPercentage says.",
        Group.CAPACITY,
        label="On-Demand base",
        min_value=0,
        max_value=fleet_cap,
    ),
    Param(
        "OnDemandPercentage",
        "Number",
        "100",
        "On-Demand % of the workers above the base; the rest are Spot. 100: no Spot.",
        Group.CAPACITY,
        label="On-Demand percentage above the base",
        min_value=0,
        max_value=100,
    ),
    # Platform
    Param(
        "DataBucket",
        "String",
        "",
        "Platform bucket the workers use.",
        Group.PLATFORM,
        label="Data bucket",
        required=Required.ON,
        allowed_pattern=_BUCKET,
        constraint="an S3 bucket name",
    ),
    Param(
        "DataPrefix",
        "String",
        "winworkers/",
        "Key prefix the workers may use; empty: the whole bucket.",
        Group.PLATFORM,
        label="Data key prefix",
        # No * or ?: the value goes into the instance role's S3 ARNs and s3:prefix condition,
        # where IAM reads them as wildcards (team*/ would grant team-other/; row 191).
        allowed_pattern=r"^([A-Za-z0-9!_.'()-]+/)*$",
        # S3 object keys are at most 1,024 bytes; the bound also bounds the UserData.
        max_length=S3_KEY_LIMIT,
        constraint="a key prefix ending in /, without * or ?",
    ),
    Param(
        "WorkQueueArn",
        "String",
        "",
        "The platform's work queue.",
        Group.PLATFORM,
        label="Work queue ARN",
        required=Required.ON,
        allowed_pattern=r"^(arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?)?$",
        # Far above any queue ARN; it bounds the UserData, which carries the value.
        max_length=256,
        constraint="an SQS queue ARN",
    ),
    Param(
        "ArtifactBucket",
        "String",
        "",
        "Bucket of the worker service zip.",
        Group.PLATFORM,
        label="Artifact bucket",
        required=Required.ON,
        allowed_pattern=_BUCKET,
        constraint="an S3 bucket name",
    ),
    Param(
        "ArtifactKey",
        "String",
        "",
        "Worker service zip; its install.ps1 installs and starts it.",
        Group.PLATFORM,
        label="Worker service zip key",
        required=Required.ON,
        # No * or ?: the instance role may read this one object, and IAM reads them as wildcards (row 191).
        allowed_pattern=r"^([A-Za-z0-9!_.'()/-]+\.zip)?$",
        max_length=S3_KEY_LIMIT,
        constraint="a .zip key, without * or ?",
    ),
    # Customer-managed KMS keys of the platform's queue and buckets (i18-net): with a key set,
    # the instance role may use it through SQS or S3 only (winworkers.iam,
    # add_platform_key_policies); empty grants nothing.
    Param(
        "QueueKmsKeyArn",
        "String",
        "",
        "KMS key of WorkQueueArn (SSE-KMS); empty: none.",
        Group.PLATFORM,
        label="KMS key of the work queue",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    Param(
        "DataKmsKeyArn",
        "String",
        "",
        "KMS key of DataBucket (SSE-KMS); empty: none.",
        Group.PLATFORM,
        label="KMS key of the data bucket",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    Param(
        "ArtifactKmsKeyArn",
        "String",
        "",
        "KMS key of ArtifactBucket (SSE-KMS); empty: none.",
        Group.PLATFORM,
        label="KMS key of the artifact bucket",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    # Observability
    Param(
        "LogRetentionDays",
        "Number",
        "90",
        "Log retention, days.",
        Group.OBSERVABILITY,
        label="Log retention, days",
        allowed_values=tuple(str(d) for d in LOG_RETENTION_DAYS),
    ),
    # Patching
    Param(
        "RefreshSchedule",
        "String",
        "rate(7 days)",
        "When to check for a newer AMI.",
        Group.CAPACITY,
        label="AMI refresh schedule",
        allowed_pattern=r"^(rate|cron)\([^)]+\)$",
        constraint="rate(...) or cron(...)",
    ),
    Param(
        "SubscribeToAmiReleases",
        "String",
        "false",
        "Also check when AWS announces new Windows AMIs.",
        Group.CAPACITY,
        label="Also refresh on AWS AMI releases",
        allowed_values=BOOLEAN,
    ),
    # Observability, with the alarms only
    Param(
        "AlarmTopicArn",
        "String",
        "",
        "SNS topic for alarms (optional).",
        Group.OBSERVABILITY,
        label="Alarm topic",
        allowed_pattern=r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+)?$",
        constraint="empty or an SNS topic ARN",
        when=with_alarms,
    ),
    Param(
        "DiskFreeAlarmPercent",
        "Number",
        "15",
        "Alarm below this free disk %.",
        Group.OBSERVABILITY,
        label="Free disk alarm, percent",
        min_value=1,
        max_value=90,
        when=with_alarms,
    ),
    # A boot past the launch hook's timeout is abandoned and publishes no timing: the bound.
    Param(
        "BootAlarmSeconds",
        "Number",
        str(BOOT_ALARM_DEFAULT),
        "Alarm above this boot time, seconds.",
        Group.OBSERVABILITY,
        label="Boot time alarm, seconds",
        min_value=BOOT_ALARM_MIN,
        max_value=BOOT_ALARM_MAX,
        when=with_alarms,
    ),
    # The wake (winworkers.wake): its function is always there for the platform to invoke;
    # this adds the one-minute schedule for a platform that does not.
    Param(
        "WakeEveryMinute",
        "String",
        "true",
        "Check the queue every minute and raise the desired capacity to its backlog, without waiting for CloudWatch.",
        Group.CAPACITY,
        allowed_values=BOOLEAN,
        label="Wake on queued work every minute",
    ),
    # Per-job records (docs/worker-contract.md, "Job records"; winworkers.jobs).
    Param(
        "QueueWaitAlarmSeconds",
        "Number",
        str(QUEUE_WAIT_ALARM_DEFAULT),
        "Alarm when the P95 of jobs' time in the queue is above this, seconds.",
        Group.OBSERVABILITY,
        label="Queue wait P95 alarm, seconds",
        min_value=QUEUE_WAIT_ALARM_MIN,
        max_value=QUEUE_WAIT_ALARM_MAX,
        when=with_alarms,
    ),
    # The baked image (winworkers.image, docs/baked-image.md): aws-published keeps the template
    # of before, resolved; baked builds the stack's own image on the same AWS image, weekly.
    Param(
        "ImageSource",
        "String",
        AWS_PUBLISHED,
        "aws-published: workers install the artifact and agent at boot; baked: a weekly Image Builder image has them.",
        Group.CAPACITY,
        label="Image source",
        allowed_values=(AWS_PUBLISHED, BAKED),
    ),
    Param(
        "FastLaunchSnapshots",
        "Number",
        "0",
        "Baked only: EC2 Fast Launch pre-provisioned snapshots of the image; 0: no Fast Launch.",
        Group.CAPACITY,
        label="Fast Launch snapshots",
        min_value=0,
        max_value=FAST_LAUNCH_MAX,
    ),
    Param(
        "ImageRevision",
        "Number",
        "0",
        "Baked only: raise it with any change of the artifact, so Image Builder makes a new image version.",
        Group.CAPACITY,
        label="Image revision",
        min_value=0,
        max_value=IMAGE_REVISION_MAX,
    ),
    Param(
        "BuildVolumeSize",
        "Number",
        "60",
        "Baked only: the image build's root volume, GiB (room for a large installer).",
        Group.CAPACITY,
        label="Image build volume, GiB",
        min_value=30,
        max_value=2048,
    ),
)
"""The feature's parameters, one row each, in the order of the template's Parameters."""


def parameter_specs(config: WorkersConfig, switch: Switch | None = None) -> tuple[ParamSpec, ...]:
    """The feature's parameters for config, a required input's description naming switch (the
    default parameter if None). Names are unprefixed here; see param_name()."""
    return tuple(row.spec(config, switch) for row in PARAMETERS if row.when is None or row.when(config))


def in_console_order(specs: Collection[ParamSpec]) -> list[ParamSpec]:
    """specs by Group, in Group's order, then in the table's: as the console lists them."""
    order = list(Group)
    return sorted(specs, key=lambda spec: order.index(spec.group))


def console_interface(
    config: WorkersConfig,
    switch: Switch,
    declared: Collection[str],
    labels: Mapping[Group, str],
    template_url: str | None = None,
) -> dict[str, Any]:
    """The ``AWS::CloudFormation::Interface`` of the feature's parameters that a template declares
    (logical names): one group per Group that has any, in Group's order, each in the table's order,
    and a label for each, "<row's label> (<logical name>)": the console shows a label instead of the
    logical name, which the Rules' messages, docs/parameters.md and the CLI use. labels are the groups' labels
    (group_labels). template_url, the parent's parameter a nested stack's TemplateURL refers to, leads the
    platform group: it has no default, and the stack is nothing without it."""
    specs = in_console_order(parameter_specs(config))
    named = [(switch.parameter if s.name == SWITCH else param_name(config, s.name), s) for s in specs]
    present = [(name, spec) for name, spec in named if name is not None and name in declared]
    members = {group: [name for name, spec in present if spec.group is group] for group in Group}
    named_labels = {name: {"default": f"{spec.label} ({name})"} for name, spec in present}
    if template_url is not None:
        members[Group.PLATFORM].insert(0, template_url)
        named_labels[template_url] = {"default": f"{TEMPLATE_URL_LABEL} ({template_url})"}
    groups = [{"Label": {"default": labels[group]}, "Parameters": names} for group, names in members.items() if names]
    return {"ParameterGroups": groups, "ParameterLabels": named_labels}


TEMPLATE_URL_LABEL = "Child template's https:// URL"


def group_labels(config: WorkersConfig, *, embedded: bool = True) -> dict[Group, str]:
    """The console labels of a fleet's groups: Group's own in its standalone stack (one fleet) and for
    the default prefix; "<prefix>: <group>" for a fleet with a prefix of its own in a parent, so that
    two fleets in one parent keep groups of their own (the parent's Interface joins groups by label)."""
    plain = not embedded or config.prefix == WorkersConfig().prefix
    return {group: group.value if plain else f"{config.prefix}: {group.value}" for group in Group}


def number_pattern(high: int) -> str:
    """A regular expression matching the whole numbers 0 to ``high`` (no leading zeros).

    Its length grows with the digits of ``high``, not with ``high``: a listed
    AllowedValues of 0..1000 would cost 6 KB of the template.
    """
    if high < 0:
        raise ValueError(f"high={high!r} is not allowed: a whole number")
    digits = str(high)
    # Every number with fewer digits than high.
    shorter = ["[0-9]"] + [f"[1-9][0-9]{{{n - 1}}}" if n > 2 else "[1-9][0-9]" for n in range(2, len(digits))]
    if len(digits) == 1:
        return "[0-9]" if high == 9 else f"[0-{high}]"
    # Numbers with as many digits as high: equal on a prefix, then smaller at one digit.
    same = []
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            top = int(digit) - 1
            rest = len(digits) - i - 1
            head = digits[:i] + (f"[{low}-{top}]" if top > int(low) else low)
            same.append(head + (f"[0-9]{{{rest}}}" if rest > 1 else "[0-9]" if rest else ""))
    same.append(digits)
    return "|".join(shorter + same)


def enabled_condition(config: WorkersConfig) -> str:
    """The logical name of the condition that is true when the feature is on."""
    return config.logical_id("Enabled")


def param_name(config: WorkersConfig, name: str) -> str:
    """The parameter's logical name: prefixed, except the platform-wide switch."""
    return name if name == SWITCH else config.logical_id(name)


# The platform's inputs the feature cannot run without, as a parent may wire them. Their
# rows are Required.ON: the PlatformInputs Rule requires them (and S3PrefixListId) when
# they are parameters; a wired value gets no Rule, so winworkers.wiring checks it.
PLATFORM_INPUTS = ("DataBucket", "WorkQueueArn", "ArtifactBucket", "ArtifactKey")

PLATFORM_KEYS = ("QueueKmsKeyArn", "DataKmsKeyArn", "ArtifactKmsKeyArn")
"""Optional inputs: each may be wired like the platform inputs it encrypts."""

# Inputs a parent may wire to its own resources instead of declaring parameters.
WIRABLE = ("DataBucket", "DataPrefix", "WorkQueueArn", "ArtifactBucket", "ArtifactKey", *PLATFORM_KEYS)


@dataclass(frozen=True)
class Params:
    """Handles to the feature's parameters and conditions inside one template."""

    config: WorkersConfig
    refs: dict[str, Any]
    wired: frozenset[str] = frozenset()
    """Inputs the parent gave as values; they have no parameter, and no Rule."""
    switch: Switch = field(default_factory=Switch)
    """What turns the feature on (the default: the EnableWinTaskScriptService parameter)."""

    def __getitem__(self, name: str) -> Any:
        return self.refs[name]

    @property
    def enabled(self) -> str:
        """Name of the condition that is true when the feature is on: the parent's own, for a
        condition switch."""
        return self.switch.name if self.switch.is_condition else enabled_condition(self.config)

    def cond(self, name: str) -> str:
        """The logical name of one of the feature's conditions."""
        return self.config.logical_id(name)

    # An SQS queue ARN is arn:partition:sqs:region:account:name.
    @property
    def queue_name(self) -> Select:
        """The work queue's name, from WorkQueueArn (the QueueName of its metrics)."""
        return Select(5, Split(":", self["WorkQueueArn"]))

    @property
    def queue_account(self) -> Select:
        """The account that owns the work queue, from WorkQueueArn."""
        return Select(4, Split(":", self["WorkQueueArn"]))


def add_parameters(
    template: Template, config: WorkersConfig, wired: dict[str, Any] | None = None, switch: Switch | None = None
) -> Params:
    """Declare the parameters (reusing a parent's switch), conditions and Rules.

    wired gives values (a parent's Ref or GetAtt) for inputs in
    WIRABLE; those get no parameter. switch is the parent's (see Switch); with
    one other than the default parameter, EnableWinTaskScriptService is not declared.
    """
    wired = dict(wired or {})
    switch = switch or Switch()
    unknown = sorted(set(wired) - set(WIRABLE))
    if unknown:
        raise ValueError(f"wired inputs {unknown} are not allowed: only {list(WIRABLE)} can be wired")
    refs: dict[str, Any] = dict(wired)
    if switch.parameter is not None:
        refs[SWITCH] = Ref(switch.parameter)
    for spec in parameter_specs(config, switch):
        if spec.name in wired or (spec.name == SWITCH and switch != Switch()):
            continue
        name = param_name(config, spec.name)
        if name in template.parameters:
            if spec.name != SWITCH:
                raise ValueError(f"the template already has a parameter named {name!r}; choose another prefix")
        else:
            template.add_parameter(spec.to_parameter(name))
        refs[spec.name] = Ref(name)
    params = Params(config=config, refs=refs, wired=frozenset(wired), switch=switch)
    _add_conditions(template, params)
    _add_rules(template, params)
    return params


def key_condition_name(p: Params, name: str) -> str:
    """The condition that is true when the platform key input name (PLATFORM_KEYS) is set."""
    return p.cond(f"Has{name.removesuffix('Arn')}")


def key_condition(p: Params, name: str) -> str | bool:
    """Whether the platform key input name is set: True or False when it is known at build
    time (a wired string, or a wired GetAtt of a key), else the name of its condition (a
    parameter, or a parent's Ref, which may be empty). A Condition cannot read a resource's
    attribute (Conditions section reference), so a wired GetAtt gets none."""
    value = p[name]
    if isinstance(value, str):
        return bool(value)
    ref = isinstance(value, Ref) or (isinstance(value, dict) and set(value) == {"Ref"})
    return key_condition_name(p, name) if ref else True


def _add_conditions(template: Template, p: Params) -> None:
    on = Condition(p.enabled)
    conditions: dict[str, Any] = {} if p.switch.is_condition else {p.enabled: Equals(p[SWITCH], "true")}
    conditions |= {
        p.cond("IsolatedVpc"): And(on, Equals(p["NetworkMode"], ISOLATED)),
        p.cond("ThreeAzs"): And(Condition(p.cond("IsolatedVpc")), Equals(p["AzCount"], "3")),
        p.cond("EndpointsInOneAz"): Equals(p["EndpointAzs"], ENDPOINTS_IN_ONE_AZ),
        # existing-subnets: the platform's VPC provides the endpoints (network module docstring).
        p.cond("UseExistingEndpoints"): And(on, Equals(p["NetworkMode"], EXISTING)),
        p.cond("SubscribeToAmiReleases"): And(on, Equals(p["SubscribeToAmiReleases"], "true")),
        p.cond("HasKmsKey"): Not(Equals(p["KmsKeyArn"], "")),
        p.cond("HasDesiredCapacity"): Not(Equals(p["DesiredCapacity"], "")),
        p.cond("HasWarmPool"): And(on, Equals(p["WarmPool"], WARM_POOL_STOPPED)),
        p.cond("BakedImage"): And(on, Equals(p["ImageSource"], BAKED)),
    }
    # The image build's endpoints (network.ENDPOINTS, for_build): the isolated VPC's own; in
    # existing-subnets the platform's network provides them (docs/baked-image.md).
    conditions[p.cond("BuildEndpoints")] = And(Condition(p.cond("BakedImage")), Condition(p.cond("IsolatedVpc")))
    conditions[p.cond("BakedInExistingNetwork")] = And(
        Condition(p.cond("BakedImage")), Condition(p.cond("UseExistingEndpoints"))
    )
    conditions[p.cond("FastLaunch")] = And(Condition(p.cond("BakedImage")), Not(Equals(p["FastLaunchSnapshots"], "0")))
    if p.config.include_alarms:
        conditions[p.cond("HasAlarmTopic")] = Not(Equals(p["AlarmTopicArn"], ""))
    # i18-net: DNS Firewall in the isolated VPC, or offered to the platform's; the instance's
    # own name is under ec2.internal in us-east-1 only (EC2 user guide, "EC2 instance hostnames").
    conditions[p.cond("HasDnsFirewall")] = Or(
        Condition(p.cond("IsolatedVpc")),
        And(Condition(p.cond("UseExistingEndpoints")), Equals(p["CreateDnsFirewall"], "true")),
    )
    conditions[p.cond("InUsEast1")] = Equals(Ref("AWS::Region"), "us-east-1")
    # spot: the group takes a MixedInstancesPolicy when Spot is asked for or more types are
    # listed. A CommaDelimitedList left empty is one empty item, so it is empty when its items
    # joined are "" (Fn::Join is allowed in a Condition's Fn::Equals; docs/aws-behaviours.md).
    conditions[p.cond("HasInstanceTypes")] = Not(Equals(Join("", p["InstanceTypes"]), ""))
    conditions[p.cond("MixedInstances")] = And(
        on, Or(Not(Equals(p["OnDemandPercentage"], "100")), Condition(p.cond("HasInstanceTypes")))
    )
    # i18-net: a platform key given as a parameter (or a parent's Ref) may be empty; its
    # policy is a resource of its own, so the condition carries the switch too.
    for name in PLATFORM_KEYS:
        if key_condition(p, name) == key_condition_name(p, name):
            conditions[key_condition_name(p, name)] = And(on, Not(Equals(p[name], "")))
    for name, expression in conditions.items():
        template.add_condition(name, expression)


RULE_CAPACITY_BOUND = 3
"""The capacity Rule compares sizes below this bound only.

Rule functions have no numeric comparison, so ``a <= b`` becomes, for each
capacity ``t``: "if b is below t, so is a", with "below t" a Contains test: the
Rule grows with the square of the values it covers (46.7 KB for 0..50). So the
Rule covers the small sizes, where the common mistakes are (MaxSize 0, 1 or 2
below MinSize), and stays the same size for any ``max_fleet_size``. Beyond it,
CloudFormation alone catches a bad order only when Auto Scaling refuses the
group (a rollback after the network is built); ``winworkers.rules`` and the
deploy command check the whole order before any call.
"""


def _add_rules(template: Template, p: Params) -> None:
    """Cross-parameter checks CloudFormation runs before it changes anything."""
    on = p.switch.rule_condition()
    existing = Equals(p["NetworkMode"], EXISTING)
    # The required inputs are the rows' (Required): their descriptions say so from the same attribute (row 179).
    required = {
        when: [
            _required(p, s)
            for s in in_console_order(parameter_specs(p.config))
            if s.required is when and s.name not in p.wired
        ]
        for when in Required
    }
    template.add_rule(p.config.logical_id("PlatformInputs"), {"RuleCondition": on, "Assertions": required[Required.ON]})
    template.add_rule(
        p.config.logical_id("ExistingNetwork"),
        {
            "RuleCondition": And(on, existing),
            "Assertions": [
                *required[Required.EXISTING_NETWORK],
                {
                    "Assert": Not({"Fn::Contains": [list(ROUTES_TO_EVERYWHERE), p["EndpointsCidr"]]}),
                    "AssertDescription": ENDPOINTS_CIDR_RULE.format(name=param_name(p.config, "EndpointsCidr")),
                },
            ],
        },
    )
    _add_build_network_rule(template, p, And(on, existing, Equals(p["ImageSource"], BAKED)))
    template.add_rule(
        p.config.logical_id("CapacityOrder"),
        {
            "Assertions": [
                _ordered(p, "MinSize", "MaxSize", also="DesiredCapacity"),
                _ordered(p, "MinSize", "DesiredCapacity"),
            ],
        },
    )
    template.add_rule(p.config.logical_id("CapacityMode"), _capacity_mode_rule(p, on))
    # The per-item pattern must let an empty item through (the empty default is one empty
    # item), so "a,,b" or a trailing comma passes it; Auto Scaling then refuses the empty
    # AllowedInstanceTypes item (1 to 30 characters) in the group's update, after the
    # update began. A list with a type in it has no empty item (docs/aws-behaviours.md).
    types = p["InstanceTypes"]
    template.add_rule(
        p.config.logical_id("InstanceTypesList"),
        {
            "RuleCondition": And(on, Not({"Fn::EachMemberEquals": [types, ""]})),
            "Assertions": [
                {
                    "Assert": Not({"Fn::Contains": [types, ""]}),
                    "AssertDescription": f"{param_name(p.config, 'InstanceTypes')} has an empty item: "
                    "remove the extra comma",
                }
            ],
        },
    )


def _add_build_network_rule(template: Template, p: Params, condition: Any) -> None:
    """existing-subnets with ImageSource=baked: the build's endpoints' block is given, bounded as
    EndpointsCidr is, and not equal to it (the deploy's pre-check also refuses it overlapping
    EndpointsCidr: no Rule can compare blocks; winworkers.network.build_cidr_problems)."""
    name = param_name(p.config, "BuildEndpointsCidr")
    template.add_rule(
        p.config.logical_id("BakedExistingNetwork"),
        {
            "RuleCondition": condition,
            "Assertions": [
                {
                    # Given, not a route to everywhere, and not EndpointsCidr itself (the Systems Manager
                    # endpoints in the block the workers send HTTPS to; rule functions compare no blocks,
                    # the deploy's pre-check refuses an overlap), in one assertion (the size budget).
                    "Assert": And(
                        Not({"Fn::Contains": [["", *ROUTES_TO_EVERYWHERE], p["BuildEndpointsCidr"]]}),
                        Not(Equals(p["BuildEndpointsCidr"], p["EndpointsCidr"])),
                    ),
                    "AssertDescription": f"{name} is required: the build endpoints' block only (/16 or longer), "
                    "not EndpointsCidr",
                },
            ],
        },
    )


def _capacity_mode_rule(p: Params, on: Any) -> dict[str, Any]:
    """The warm pool or Spot, never both: AWS refuses a warm pool on a group with a mixed
    instances policy or Spot (PutWarmPool API reference; docs/aws-behaviours.md), and would
    refuse it after the network and the group are built, rolling the stack back. Each
    assertion names both sides, so the operator sees which two inputs disagree."""
    warm, spot, types = (param_name(p.config, n) for n in ("WarmPool", "OnDemandPercentage", "InstanceTypes"))
    refused = f"{warm}={WARM_POOL_STOPPED} cannot be used with"
    return {
        "RuleCondition": And(on, Equals(p["WarmPool"], WARM_POOL_STOPPED)),
        "Assertions": [
            {
                "Assert": Equals(p["OnDemandPercentage"], "100"),
                "AssertDescription": f"{refused} Spot: set {spot} to 100, or {warm} to {WARM_POOL_OFF}",
            },
            {
                "Assert": {"Fn::EachMemberEquals": [p["InstanceTypes"], ""]},
                "AssertDescription": f"{refused} mixed instance types: empty {types}, or set {warm} to {WARM_POOL_OFF}",
            },
        ],
    }


def _required(p: Params, spec: ParamSpec) -> dict[str, Any]:
    """A Rule assertion: the parameter is not empty (a list: not only empty items)."""
    value = p[spec.name]
    empty = {"Fn::EachMemberEquals": [value, ""]} if is_list_type(spec.type) else Equals(value, "")
    return {"Assert": Not(empty), "AssertDescription": f"{param_name(p.config, spec.name)} is required"}


def _below(p: Params, t: int, name: str, unset_passes: bool = False) -> dict[str, Any]:
    """A Rule condition: name is a whole number below t."""
    values = [str(v) for v in range(t)]
    # An empty DesiredCapacity is "unset": no bound to respect as the lower side,
    # and none to impose as the upper side (where "" is simply not below t).
    return {"Fn::Contains": [[*values, ""] if unset_passes else values, p[name]]}


def _ordered(p: Params, lower: str, upper: str, also: str | None = None) -> dict[str, Any]:
    """A Rule assertion: lower <= upper (and also <= upper), for sizes below RULE_CAPACITY_BOUND."""
    # For each t: if upper < t, then lower < t (and also < t).
    clauses = [
        Or(
            Not(_below(p, t, upper)),
            And(_below(p, t, lower), _below(p, t, also, unset_passes=True)) if also else _below(p, t, lower),
        )
        for t in range(1, min(p.config.max_fleet_size, RULE_CAPACITY_BOUND) + 1)
    ]
    names = [param_name(p.config, n) for n in (lower, also, upper) if n]
    return {"Assert": _all(clauses), "AssertDescription": " <= ".join(names[:-1]) + f" <= {names[-1]}"}


def _all(clauses: list[Any]) -> Any:
    """Fn::And of any number of clauses: a Rules Fn::And takes 2 to 10."""
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) <= 10:
        return And(*clauses)
    return And(*(_all(clauses[i : i + 10]) for i in range(0, len(clauses), 10)))
