"""The feature's stack parameters, conditions and Rules, declared once.

One table, parameter_specs(), produces the CloudFormation Parameters with
their constraints and descriptions, the nested stack's pass-through, and the
README's parameter table (grouped), so they cannot disagree. There is no
``AWS::CloudFormation::Interface`` metadata: its ~0.7 KB would not fit the
feature template's inline budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import (
    And,
    Condition,
    Equals,
    Not,
    Or,
    Parameter,
    Ref,
    Select,
    Split,
    Template,
)

from winworkers.config import WorkersConfig

SWITCH = "EnableWinTaskScriptService"
"""The platform-wide switch. Its name is fixed (never prefixed): the parent stack owns it."""

BOOLEAN = ("true", "false")
ISOLATED = "isolated-vpc"
EXISTING = "existing-subnets"

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

# Current-generation x86_64 families (Graviton cannot run Windows), large enough
# for Windows Server and the platform's worker.
INSTANCE_FAMILIES = ("m6i", "m7i", "c6i", "c7i", "r6i", "r7i", "m6a", "m7a", "t3")
INSTANCE_SIZES = ("large", "xlarge", "2xlarge", "4xlarge")
INSTANCE_TYPE_PATTERN = rf"^({'|'.join(INSTANCE_FAMILIES)})\.({'|'.join(INSTANCE_SIZES)})$"

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


@dataclass(frozen=True)
class ParamSpec:
    """One stack parameter: its type, default, constraint and documentation."""

    name: str
    type: str
    default: str
    description: str
    group: str
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = None
    constraint: str | None = None

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
        """The constraint, in words, for the README table."""
        numbers = [int(v) for v in self.allowed_values if v.isdigit()]
        if len(numbers) > 3 and numbers == list(range(numbers[0], numbers[-1] + 1)):
            run = f"{numbers[0]}-{numbers[-1]}"
            return f'`""` or {run}' if "" in self.allowed_values else run
        if self.allowed_values:
            return " / ".join(f"`{v}`" if v else '`""`' for v in self.allowed_values)
        if self.min_value is not None:
            return f"{self.min_value}-{self.max_value}"
        if self.allowed_pattern:
            return f"pattern `{self.allowed_pattern}`"
        return f"type `{self.type}`"


def parameter_specs(config: WorkersConfig) -> tuple[ParamSpec, ...]:
    """The feature's parameters for config. Names are unprefixed here; see param_name()."""
    cap = config.max_fleet_size
    return (
        ParamSpec(
            SWITCH,
            "String",
            "false",
            "true creates the Windows Workers feature; false creates nothing.",
            "Feature",
            allowed_values=BOOLEAN,
        ),
        # Network
        ParamSpec(
            "NetworkMode",
            "String",
            ISOLATED,
            f"{ISOLATED}: a new VPC with no route out. {EXISTING}: the subnets below.",
            "Network",
            allowed_values=(ISOLATED, EXISTING),
        ),
        ParamSpec("AzCount", "String", "2", f"{ISOLATED}: Availability Zones.", "Network", allowed_values=("2", "3")),
        ParamSpec(
            "VpcCidr",
            "String",
            "10.250.0.0/22",
            f"{ISOLATED}: VPC CIDR; subnets are its first /24s.",
            "Network",
            allowed_pattern=r"^(\d{1,3}\.){3}\d{1,3}/(1[6-9]|2[0-2])$",
            constraint="an IPv4 CIDR with a prefix length from 16 to 22",
        ),
        ParamSpec(
            "VpcId",
            "String",
            "",
            f"{EXISTING}: the VPC of the subnets.",
            "Network",
            allowed_pattern=r"^(vpc-[0-9a-f]{8,17})?$",
            constraint="empty or a VPC id",
        ),
        # CommaDelimitedList, not List<AWS::EC2::Subnet::Id>: the AWS-specific list type
        # rejects the empty value that the isolated mode needs (buildkite/on-demand#2).
        ParamSpec(
            "SubnetIds",
            "CommaDelimitedList",
            "",
            f"{EXISTING}: subnets, one per AZ.",
            "Network",
            allowed_pattern=r"^(subnet-[0-9a-f]{8,17})?$",
            constraint="subnet ids",
        ),
        # existing-subnets (i18-net): the workers send HTTPS to this block and nowhere else but S3.
        # Bounded at /16, the largest block a VPC or subnet can have (VPC user guide, "VPC CIDR
        # blocks"): a wider one covers more than the network's endpoints, and through a NAT
        # 0.0.0.0/0 is HTTPS to the Internet past every endpoint policy. See ENDPOINTS_CIDR_RULE.
        ParamSpec(
            "EndpointsCidr",
            "String",
            "",
            f"{EXISTING}: CIDR of the network's VPC endpoints.",
            "Network",
            allowed_pattern=ENDPOINTS_CIDR_PATTERN,
            constraint=ENDPOINTS_CIDR_CONSTRAINT,
        ),
        ParamSpec(
            "S3PrefixListId",
            "String",
            "",
            "Prefix list com.amazonaws.<region>.s3 (winworkers deploy looks it up).",
            "Network",
            allowed_pattern=r"^(pl-[0-9a-f]{8,17})?$",
            constraint="empty or a prefix list id",
        ),
        *_DNS_FIREWALL_PARAMETERS,
        # Fleet
        ParamSpec(
            "WindowsVersion",
            "String",
            "2019",
            "Windows Server version; the latest AWS AMI is used.",
            "Fleet",
            allowed_values=("2019", "2022", "2025"),
        ),
        ParamSpec(
            "InstanceType",
            "String",
            config.default_instance_type,
            "The workers' instance type.",
            "Fleet",
            allowed_pattern=INSTANCE_TYPE_PATTERN,
            constraint="a current x86_64 type, large to 4xlarge",
        ),
        ParamSpec(
            "RootVolumeSize", "Number", "60", "Root volume GiB (gp3, encrypted).", "Fleet", min_value=30, max_value=2048
        ),
        # Seconds, not minutes: it is the termination hook's HeartbeatTimeout, and CloudFormation
        # cannot multiply. 30 to 7200 is the range Auto Scaling accepts (PutLifecycleHook).
        ParamSpec(
            "DrainSeconds",
            "Number",
            "3600",
            "Seconds a terminating worker has to finish its job.",
            "Fleet",
            min_value=30,
            max_value=7200,
        ),
        ParamSpec(
            "KmsKeyArn",
            "String",
            "",
            "KMS key for volumes and logs; empty: AWS-managed.",
            "Fleet",
            allowed_pattern=_KMS_KEY_ARN,
            constraint="empty or a KMS key ARN",
        ),
        ParamSpec("MinSize", "Number", "0", "Fewest workers; 0 idles at no cost.", "Fleet", min_value=0, max_value=cap),
        ParamSpec("MaxSize", "Number", "4", "Most workers.", "Fleet", min_value=0, max_value=cap),
        ParamSpec(
            "DesiredCapacity",
            "String",
            "",
            "Workers at creation; empty: scaling decides.",
            "Fleet",
            # A String, so that empty can mean "unset"; the pattern bounds it as MaxValue would.
            allowed_pattern=f"^({number_pattern(cap)})?$",
            constraint=f"empty or a whole number from 0 to {cap}",
        ),
        # Target tracking on (queued + in flight) / workers in service. 1: one job
        # per worker and none waiting, so no worker busy on a long job is counted
        # as spare.
        ParamSpec(
            "BacklogPerWorker",
            "Number",
            "1",
            "Queued and in-flight messages per worker that scaling aims for.",
            "Fleet",
            min_value=1,
            max_value=100,
        ),
        # The group's DefaultInstanceWarmup, HealthCheckGracePeriod and refreshes' InstanceWarmup.
        # All three count from InService, which the launch hook holds back until the bootstrap
        # succeeded (user guide, "Set the default instance warmup", "Health check grace period"):
        # the boot is not in it. A worker takes its first message within seconds of entering
        # service; 3 minutes lets the 1-minute SQS and group metrics show it. 0 to 3600 is what
        # DefaultInstanceWarmup accepts.
        ParamSpec(
            "InstanceWarmup",
            "Number",
            "180",
            "Seconds from a worker entering service (bootstrap done) until metrics reflect it.",
            "Fleet",
            min_value=0,
            max_value=3600,
        ),
        # Platform
        ParamSpec(
            "DataBucket",
            "String",
            "",
            "Platform bucket the workers use.",
            "Platform",
            allowed_pattern=_BUCKET,
            constraint="an S3 bucket name",
        ),
        ParamSpec(
            "DataPrefix",
            "String",
            "winworkers/",
            "Key prefix the workers may use.",
            "Platform",
            allowed_pattern=r"^([A-Za-z0-9!_.*'()-]+/)*$",
            constraint="a key prefix ending in /",
        ),
        ParamSpec(
            "WorkQueueArn",
            "String",
            "",
            "The platform's work queue.",
            "Platform",
            allowed_pattern=r"^(arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}"
            r"(\.fifo)?)?$",
            constraint="an SQS queue ARN",
        ),
        ParamSpec(
            "ArtifactBucket",
            "String",
            "",
            "Bucket of the worker service zip.",
            "Platform",
            allowed_pattern=_BUCKET,
            constraint="an S3 bucket name",
        ),
        ParamSpec(
            "ArtifactKey",
            "String",
            "",
            "Worker service zip; its install.ps1 installs and starts it.",
            "Platform",
            allowed_pattern=r"^([A-Za-z0-9!_.*'()/-]+\.zip)?$",
            constraint="a .zip key",
        ),
        *_PLATFORM_KEY_PARAMETERS,
        # Observability
        ParamSpec(
            "LogRetentionDays",
            "Number",
            "90",
            "Log retention, days.",
            "Observability",
            allowed_values=tuple(str(d) for d in LOG_RETENTION_DAYS),
        ),
        # Patching
        ParamSpec(
            "RefreshSchedule",
            "String",
            "rate(7 days)",
            "When to check for a newer AMI.",
            "Patching",
            allowed_pattern=r"^(rate|cron)\([^)]+\)$",
            constraint="rate(...) or cron(...)",
        ),
        ParamSpec(
            "SubscribeToAmiReleases",
            "String",
            "false",
            "Also check when AWS announces new Windows AMIs.",
            "Patching",
            allowed_values=BOOLEAN,
        ),
    ) + (_ALARM_PARAMETERS if config.include_alarms else ())


_ALARM_PARAMETERS = (
    ParamSpec(
        "AlarmTopicArn",
        "String",
        "",
        "SNS topic for alarms (optional).",
        "Observability",
        allowed_pattern=r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+)?$",
        constraint="empty or an SNS topic ARN",
    ),
    ParamSpec(
        "DiskFreeAlarmPercent",
        "Number",
        "15",
        "Alarm below this free disk %.",
        "Observability",
        min_value=1,
        max_value=90,
    ),
)

# --- DNS Firewall (i18-net) -------------------------------------------------------------------
# isolated-vpc always filters its DNS (winworkers.network, _add_dns_firewall); this option
# offers the same rule group, unassociated, to a platform that owns the resolver.
_DNS_FIREWALL_PARAMETERS = (
    ParamSpec(
        "CreateDnsFirewall",
        "String",
        "false",
        f"{EXISTING}: also create the DNS Firewall rule group, unassociated, for the platform's VPC.",
        "Network",
        allowed_values=BOOLEAN,
    ),
)

# --- Customer-managed KMS keys of the platform's queue and buckets (i18-net) ------------------
# With a key set, the instance role may use it through SQS or S3 only (winworkers.iam,
# add_platform_key_policies); empty grants nothing.
_PLATFORM_KEY_PARAMETERS = (
    ParamSpec(
        "QueueKmsKeyArn",
        "String",
        "",
        "KMS key of WorkQueueArn (SSE-KMS); empty: none.",
        "Platform",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    ParamSpec(
        "DataKmsKeyArn",
        "String",
        "",
        "KMS key of DataBucket (SSE-KMS); empty: none.",
        "Platform",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
    ParamSpec(
        "ArtifactKmsKeyArn",
        "String",
        "",
        "KMS key of ArtifactBucket (SSE-KMS); empty: none.",
        "Platform",
        allowed_pattern=_KMS_KEY_ARN,
        constraint="empty or a KMS key ARN",
    ),
)
PLATFORM_KEYS = tuple(spec.name for spec in _PLATFORM_KEY_PARAMETERS)
"""Optional inputs: each may be wired like the platform inputs it encrypts."""


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


# The platform's inputs the feature cannot run without. The PlatformInputs Rule
# requires them (and S3PrefixListId) when they are parameters; a wired value gets
# no Rule, so winworkers.wiring checks it.
PLATFORM_INPUTS = ("DataBucket", "WorkQueueArn", "ArtifactBucket", "ArtifactKey")

# Inputs a parent may wire to its own resources instead of declaring parameters.
WIRABLE = ("DataBucket", "DataPrefix", "WorkQueueArn", "ArtifactBucket", "ArtifactKey", *PLATFORM_KEYS)


@dataclass(frozen=True)
class Params:
    """Handles to the feature's parameters and conditions inside one template."""

    config: WorkersConfig
    refs: dict[str, Any]
    wired: frozenset[str] = frozenset()
    """Inputs the parent gave as values; they have no parameter, and no Rule."""

    def __getitem__(self, name: str) -> Any:
        return self.refs[name]

    @property
    def enabled(self) -> str:
        """Name of the condition that is true when the feature is on."""
        return enabled_condition(self.config)

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


def add_parameters(template: Template, config: WorkersConfig, wired: dict[str, Any] | None = None) -> Params:
    """Declare the parameters (reusing a parent's switch), conditions and Rules.

    wired gives values (a parent's Ref or GetAtt) for inputs in
    WIRABLE; those get no parameter.
    """
    wired = dict(wired or {})
    unknown = sorted(set(wired) - set(WIRABLE))
    if unknown:
        raise ValueError(f"wired inputs {unknown} are not allowed: only {list(WIRABLE)} can be wired")
    refs: dict[str, Any] = dict(wired)
    for spec in parameter_specs(config):
        if spec.name in wired:
            continue
        name = param_name(config, spec.name)
        if name in template.parameters:
            if spec.name != SWITCH:
                raise ValueError(f"the template already has a parameter named {name!r}; choose another prefix")
        else:
            template.add_parameter(spec.to_parameter(name))
        refs[spec.name] = Ref(name)
    params = Params(config=config, refs=refs, wired=frozenset(wired))
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
    conditions: dict[str, Any] = {
        p.enabled: Equals(p[SWITCH], "true"),
        p.cond("IsolatedVpc"): And(on, Equals(p["NetworkMode"], ISOLATED)),
        p.cond("ThreeAzs"): And(Condition(p.cond("IsolatedVpc")), Equals(p["AzCount"], "3")),
        # existing-subnets: the platform's VPC provides the endpoints (network module docstring).
        p.cond("UseExistingEndpoints"): And(on, Equals(p["NetworkMode"], EXISTING)),
        p.cond("SubscribeToAmiReleases"): And(on, Equals(p["SubscribeToAmiReleases"], "true")),
        p.cond("HasKmsKey"): Not(Equals(p["KmsKeyArn"], "")),
        p.cond("HasDesiredCapacity"): Not(Equals(p["DesiredCapacity"], "")),
    }
    if p.config.include_alarms:
        conditions[p.cond("HasAlarmTopic")] = Not(Equals(p["AlarmTopicArn"], ""))
    # i18-net: DNS Firewall in the isolated VPC, or offered to the platform's; the instance's
    # own name is under ec2.internal in us-east-1 only (EC2 user guide, "EC2 instance hostnames").
    conditions[p.cond("HasDnsFirewall")] = Or(
        Condition(p.cond("IsolatedVpc")),
        And(Condition(p.cond("UseExistingEndpoints")), Equals(p["CreateDnsFirewall"], "true")),
    )
    conditions[p.cond("InUsEast1")] = Equals(Ref("AWS::Region"), "us-east-1")
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
    on = Equals(p[SWITCH], "true")
    existing = Equals(p["NetworkMode"], EXISTING)

    def required(name: str) -> dict[str, Any]:
        return {
            "Assert": Not(Equals(p[name], "")),
            "AssertDescription": f"{param_name(p.config, name)} is required",
        }

    def below(t: int, name: str, unset_passes: bool = False) -> dict[str, Any]:
        values = [str(v) for v in range(t)]
        # An empty DesiredCapacity is "unset": no bound to respect as the lower side,
        # and none to impose as the upper side (where "" is simply not below t).
        return {"Fn::Contains": [[*values, ""] if unset_passes else values, p[name]]}

    def ordered(lower: str, upper: str, also: str | None = None) -> dict[str, Any]:
        # For each t: if upper < t, then lower < t (and also < t).
        clauses = [
            Or(
                Not(below(t, upper)),
                And(below(t, lower), below(t, also, unset_passes=True)) if also else below(t, lower),
            )
            for t in range(1, min(p.config.max_fleet_size, RULE_CAPACITY_BOUND) + 1)
        ]
        names = [param_name(p.config, n) for n in (lower, also, upper) if n]
        return {"Assert": _all(clauses), "AssertDescription": " <= ".join(names[:-1]) + f" <= {names[-1]}"}

    template.add_rule(
        p.config.logical_id("PlatformInputs"),
        {
            "RuleCondition": on,
            "Assertions": [required(n) for n in (*PLATFORM_INPUTS, "S3PrefixListId") if n not in p.wired],
        },
    )
    template.add_rule(
        p.config.logical_id("ExistingNetwork"),
        {
            "RuleCondition": And(on, existing),
            "Assertions": [
                required("VpcId"),
                {
                    "Assert": Not({"Fn::EachMemberEquals": [p["SubnetIds"], ""]}),
                    "AssertDescription": f"{param_name(p.config, 'SubnetIds')} is required",
                },
                required("EndpointsCidr"),
                {
                    "Assert": Not({"Fn::Contains": [list(ROUTES_TO_EVERYWHERE), p["EndpointsCidr"]]}),
                    "AssertDescription": ENDPOINTS_CIDR_RULE.format(name=param_name(p.config, "EndpointsCidr")),
                },
            ],
        },
    )
    template.add_rule(
        p.config.logical_id("CapacityOrder"),
        {
            "Assertions": [
                ordered("MinSize", "MaxSize", also="DesiredCapacity"),
                ordered("MinSize", "DesiredCapacity"),
            ],
        },
    )


def _all(clauses: list[Any]) -> Any:
    """Fn::And of any number of clauses: a Rules Fn::And takes 2 to 10."""
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) <= 10:
        return And(*clauses)
    return And(*(_all(clauses[i : i + 10]) for i in range(0, len(clauses), 10)))
