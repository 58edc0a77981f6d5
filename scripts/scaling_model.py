"""A minute-by-minute model of the fleet's queue-driven scaling, read from a rendered template.

The policies are not restated here: :func:`read_policies` takes the group's
MinSize, MaxSize, DefaultInstanceWarmup and launch lifecycle hook, every
scaling policy (target tracking, step, simple) and every alarm whose actions
invoke one, with their thresholds, metric math expressions, evaluation periods,
step adjustments and target values, from a template as CloudFormation would
create it (conditions and intrinsics resolved; see ``tests/conftest.py``'s
``render``). Change the template and the model changes with it.

What it models, each from AWS's documentation (rows in docs/aws-behaviours.md):

- SQS publishes ``ApproximateNumberOfMessagesVisible`` and ``...NotVisible`` once
  a minute, and only while the queue is active; Auto Scaling publishes
  ``GroupInServiceInstances`` once a minute (group metrics collection).
- Metric math: a missing value counts as 0 where another input has a value; a
  division by zero drops the datapoint; comparisons give 1 or 0.
- Alarms: the last ``EvaluationPeriods`` datapoints, ``DatapointsToAlarm`` of
  them breaching (M out of N), ``TreatMissingData``; an alarm with an Auto
  Scaling action invokes it once a minute while it stays in ALARM.
- A launched instance waits in ``Pending:Wait`` on the group's launch hook until
  its bootstrap completes it (``Scenario.bootstrap_minutes``, a model input: the
  template does not say how long Windows and cfn-init take), then enters
  InService: only then does it count in ``GroupInServiceInstances`` and take
  messages. Its warmup (``DefaultInstanceWarmup``) starts at InService, not at
  launch; it counts as current capacity once the warmup ends.
- Target tracking: a high alarm (above the target for ``TT_HIGH_PERIODS`` of as
  many 1-minute datapoints) and a low alarm (below ``TT_LOW_RATIO`` x target for
  ``TT_LOW_PERIODS`` of as many); the new capacity is
  ``ceil(in service x metric / target)``, rounded up so a scale-in never
  removes the capacity in use; no scaling on missing data; no scale-in while
  instances are pending or warming up.
- Step scaling: the step whose interval holds ``value - threshold``;
  ``ChangeInCapacity`` adds to the warmed-up instances and counts pending and
  warming ones as already added, so repeated breaches in one step make one
  activity; ``ExactCapacity``. Simple scaling waits its ``Cooldown`` after an
  activity.
- Several policies at once: the largest capacity wins. MinSize and MaxSize clamp.
- Each worker in service takes one message at a time and deletes it
  ``job_minutes`` later.

Modes (:class:`Mode`; given explicitly, or read by :func:`read_mode` from the template's
``AWS::AutoScaling::WarmPool`` and the group's ``MixedInstancesPolicy``):

- cold: every launch boots Windows and runs cfn-init (``COLD_PHASES``).
- warm: a Stopped warm pool; a scale-out starts a pooled instance (``WARM_PHASES``: no
  first boot, no cfn-init, no MSI; still Pending:Wait to InService); the pool refills
  with cold launches; a stopped instance pays its volume (``Prices.stopped``).
- spot: cold launches at Spot prices above the On-Demand base; interruptions at a
  monthly rate (``SPOT_INTERRUPTIONS_PER_MONTH``), the interrupted worker's message
  released at once (ChangeMessageVisibility 0).

Every boot phase carries its source (a published figure or "an estimate") and the name
of the boot metric the fleet publishes for it (winworkers.bootstrap.BOOT_PHASES). No
metric exists here, where nothing runs on AWS: an operator passes measured minutes
(``scripts/bench.py --phase BootAgent=6``; ``phases=`` of ``cold_mode`` and the others).

Limits (where the model is an approximation, not AWS):

- Every bootstrap takes exactly ``bootstrap_minutes`` (``BOOTSTRAP_MINUTES`` by
  default, an estimate: see there) and succeeds; real Windows boots vary, and a
  failed or hung bootstrap (abandoned by the hook, then replaced) is not
  modelled. A bootstrap longer than the launch hook's timeout is refused.
- Target tracking's internal alarms are not documented in numbers: 3 of 3 and
  15 of 15 one-minute datapoints are what the alarms it creates show, and the
  low alarm's threshold (``TT_LOW_RATIO``) varies (AWS says "usually more than
  10% lower" than the target). The capacity uses the latest datapoint. While
  instances warm up AWS scales out only on the metric of the instances that do
  not; the queue's backlog has no per-instance part, so the model uses all of it.
- Datapoints are available at the end of their minute: CloudWatch's ingestion
  lag and SQS's approximate counts are not modelled here, nor is the extra look-back
  of CloudWatch's missing-data evaluation (an alarm sees exactly its last N
  datapoints). Every period must be 60 seconds. The first file's path in seconds,
  with that lag and with the wake, is modelled apart (``first_file_paths``, at the end).
- Scale-in terminates the newest instances first (AWS's default termination
  policy does not know which workers are busy either), pending ones included,
  and at once: the drain hook's wait is not modelled; a busy worker's message
  reappears after ``VISIBILITY_TIMEOUT_MINUTES``. Availability Zones, launch
  failures and health checks are not modelled.
- The queue counts as inactive (no SQS datapoints) after ``SQS_INACTIVE_MINUTES``
  with no message and no worker polling it.
- Modes: a pooled instance is ready as soon as its first boot ends (the stop itself
  is not timed); Spot interruptions are spread evenly, not drawn, and always hit a busy
  worker (the worst case), with a replacement launched at once (Capacity Rebalancing's
  earlier launch is not modelled); instance types and Spot capacity shortages are not
  modelled; prices are one Region's list prices (``Prices``), the Spot one modelled.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TT_HIGH_PERIODS = 3
TT_LOW_PERIODS = 15
TT_LOW_RATIO = 0.9
SQS_INACTIVE_MINUTES = 6 * 60
VISIBILITY_TIMEOUT_MINUTES = 30


@dataclass(frozen=True)
class BootPhase:
    """One part of a launch, from a published figure or an estimate (``source`` says which).

    ``name`` is the boot metric the fleet publishes for the same part
    (winworkers.bootstrap.BOOT_PHASES, in the feature's CloudWatch namespace), so an
    operator replaces the figure with their own measurement: ``scripts/bench.py
    --phase BootAgent=6`` (or ``phases=`` of :func:`cold_mode`). This model runs
    without AWS, where no worker has ever booted: none of these is measured here."""

    name: str
    minutes: int
    source: str


COLD_PHASES: tuple[BootPhase, ...] = (
    BootPhase(
        "BootToUserData",
        5,
        "launch to the UserData: a Windows first boot (Sysprep specialize, EC2Launch v2). An estimate; AWS says "
        "Windows fast launch, which pre-provisions those Sysprep steps, launches up to 65% faster (EC2 API, "
        "EnableFastLaunch), but fast launch needs an AMI you own, and no figure for the public AMIs is published",
    ),
    BootPhase(
        "BootHarden",
        3,
        "cfn-init's hardening commands (firewall, services, accounts). An estimate",
    ),
    BootPhase(
        "BootAgent",
        3,
        "the CloudWatch agent MSI from S3 and its start. An estimate",
    ),
    BootPhase(
        "BootService",
        3,
        "the worker's artifact from S3, its install.ps1 and the service start. An estimate",
    ),
    BootPhase(
        "BootHook",
        1,
        "CompleteLifecycleAction through the autoscaling endpoint, then InService. An estimate",
    ),
)
"""A cold launch, 15 minutes in all: the whole is the project's estimate of 10-20 minutes for a
Windows first boot with cfn-init (aws-cdk #10429 and #21359 report Windows cfn-init running past
10- and 15-minute signal timeouts; secondary, and why the launch hook waits 45). The split
between the phases is not published anywhere: it is an estimate. For comparison, RunsOn (a
third-party runner service) publishes under 3 minutes cold for Windows from an image with its
software baked in, which this fleet does not use (it installs at boot)."""

BOOTSTRAP_MINUTES = sum(phase.minutes for phase in COLD_PHASES)
"""Launch to InService, cold (COLD_PHASES)."""

WARM_PHASES: tuple[BootPhase, ...] = (
    BootPhase(
        "BootToUserData",
        1,
        "a stopped pool instance starting: no Sysprep, no first boot. RunsOn publishes under 40 s for Windows "
        "from its own stopped pool (third-party), and InfoQ reports AWS's launch of warm pools as serving in "
        "as low as 30 s (secondary): rounded up to the model's minute",
    ),
    BootPhase(
        "BootHook",
        1,
        "the pooled path of the UserData: no cfn-init, no MSI; start the worker, check it, complete the "
        "launch hook (Pending:Wait to InService). An estimate",
    ),
)
"""A start from a Stopped warm pool, 2 minutes."""

SCALING_POLICY = "AWS::AutoScaling::ScalingPolicy"
ALARM = "AWS::CloudWatch::Alarm"
GROUP = "AWS::AutoScaling::AutoScalingGroup"

VISIBLE = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
NOT_VISIBLE = ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible")
IN_SERVICE = ("AWS/AutoScaling", "GroupInServiceInstances")

Datapoint = float | None


# --- CloudWatch metric math ---------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?)|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|>=|<=|&&|\|\||[-+*/()<>,]))")


def _tokens(expression: str) -> list[str]:
    out, position = [], 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if not match:
            raise ValueError(f"expression {expression!r}: cannot read {expression[position:]!r}")
        out.append(next(group for group in match.groups() if group is not None))
        position = match.end()
    return out


class _Parser:
    """Recursive descent over the metric math subset the templates use:
    numbers, query ids, + - * /, comparisons, AND / OR, IF(condition, a, b)."""

    LEVELS = (("OR", "||"), ("AND", "&&"), ("==", "!=", ">", "<", ">=", "<="), ("+", "-"), ("*", "/"))

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = _tokens(expression)
        self.at = 0

    def parse(self) -> Any:
        tree = self.level(0)
        if self.at != len(self.tokens):
            raise ValueError(f"expression {self.expression!r}: unexpected {self.tokens[self.at]!r}")
        return tree

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValueError(f"expression {self.expression!r}: expected {expected or 'more'}, got {token!r}")
        self.at += 1
        return token

    def level(self, n: int) -> Any:
        if n == len(self.LEVELS):
            return self.unary()
        left = self.level(n + 1)
        while (token := self.peek()) is not None and token.upper() in self.LEVELS[n]:
            self.take()
            left = (token.upper(), left, self.level(n + 1))
        return left

    def unary(self) -> Any:
        token = self.take()
        if token == "-":
            return ("-", ("num", 0.0), self.unary())
        if token == "(":
            inner = self.level(0)
            self.take(")")
            return inner
        if token.upper() == "IF" and self.peek() == "(":
            self.take("(")
            condition = self.level(0)
            self.take(",")
            then = self.level(0)
            self.take(",")
            otherwise = self.level(0)
            self.take(")")
            return ("IF", condition, then, otherwise)
        if token[0].isdigit():
            return ("num", float(token))
        return ("id", token)


@functools.cache
def _parse(expression: str) -> Any:
    return _Parser(expression).parse()


class _Dropped(Exception):
    """A division by zero: CloudWatch drops the datapoint."""


def _evaluate(tree: Any, values: Mapping[str, float]) -> float:
    kind = tree[0]
    if kind == "num":
        return float(tree[1])
    if kind == "id":
        return values[tree[1]]
    if kind == "IF":
        return _evaluate(tree[2] if _evaluate(tree[1], values) != 0 else tree[3], values)
    left, right = _evaluate(tree[1], values), _evaluate(tree[2], values)
    if kind == "/":
        if right == 0:
            raise _Dropped
        return left / right
    arithmetic = {"+": left + right, "-": left - right, "*": left * right}
    if kind in arithmetic:
        return arithmetic[kind]
    truth = {
        "==": left == right,
        "!=": left != right,
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
        "AND": left != 0 and right != 0,
        "&&": left != 0 and right != 0,
        "OR": left != 0 or right != 0,
        "||": left != 0 or right != 0,
    }
    return 1.0 if truth[kind] else 0.0


@dataclass(frozen=True)
class Series:
    """What an alarm or a target tracking policy watches: one metric, or metric
    math over several (``inputs``: query id to metric)."""

    inputs: Mapping[str, tuple[str, str]]
    expression: str | None = None

    def value(self, published: Mapping[tuple[str, str], Datapoint]) -> Datapoint:
        raw = {query: published.get(metric) for query, metric in self.inputs.items()}
        if self.expression is None:
            return next(iter(raw.values()))
        if all(v is None for v in raw.values()):
            return None
        try:
            return _evaluate(_parse(self.expression), {k: v or 0.0 for k, v in raw.items()})
        except _Dropped:
            return None


def _series(props: Mapping[str, Any], where: str) -> Series:
    """The Series of an alarm's properties or of a customized metric specification."""
    if "Metrics" not in props:
        _require_minute(props.get("Period", 60), where)
        return Series({"m": (props["Namespace"], props["MetricName"])})
    inputs, returned = {}, []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            _require_minute(stat.get("Period", 60), where)
            inputs[query["Id"]] = (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"])
        if "Expression" in query and query.get("ReturnData", True) in (True, "true"):
            returned.append(query["Expression"])
    if len(returned) != 1:
        raise ValueError(f"{where}: expected one returned expression, got {returned}")
    _parse(returned[0])  # fail early on an expression the model cannot read
    return Series(inputs, returned[0])


def _require_minute(period: Any, where: str) -> None:
    if int(period) != 60:
        raise ValueError(f"{where}: Period={period!r} is not allowed: the model steps in 60-second periods")


# --- What the template says -----------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    lower: float | None
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class Policy:
    name: str
    kind: str
    adjustment_type: str = ""
    adjustment: int = 0
    steps: tuple[Step, ...] = ()
    cooldown_minutes: int = 0
    target: float = 0.0
    metric: Series | None = None


_COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class AlarmSpec:
    name: str
    metric: Series
    threshold: float
    comparison: str
    periods: int
    datapoints: int
    missing: str
    actions: tuple[str, ...]

    def breaching(self, value: float) -> bool:
        return bool(_COMPARE[self.comparison](value, self.threshold))


@dataclass(frozen=True)
class Policies:
    min_size: int
    max_size: int
    warmup_minutes: int
    """DefaultInstanceWarmup: counted from InService, after the launch hook."""
    launch_hook_minutes: int
    """The launch hook's HeartbeatTimeout: a longer bootstrap is abandoned."""
    policies: Mapping[str, Policy]
    alarms: tuple[AlarmSpec, ...]


def read_policies(rendered: Mapping[str, Any]) -> Policies:
    """The group's bounds, warmup and launch hook, its scaling policies and the alarms that drive them."""
    resources: Mapping[str, Any] = rendered["Resources"]
    groups = [r["Properties"] for r in resources.values() if r["Type"] == GROUP]
    if len(groups) != 1:
        raise ValueError(f"expected one Auto Scaling group, found {len(groups)}")
    group = groups[0]
    launch_hooks = [
        hook
        for hook in group.get("LifecycleHookSpecificationList", [])
        if hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    ]
    if len(launch_hooks) != 1:
        # Without one an instance is InService minutes after launch, long before its
        # bootstrap has installed the worker: a different timeline from the one modelled.
        raise ValueError(f"expected one launch lifecycle hook, found {len(launch_hooks)}")
    policies = {name: _policy(name, r["Properties"]) for name, r in resources.items() if r["Type"] == SCALING_POLICY}
    alarms = []
    for name, resource in resources.items():
        props = resource["Properties"]
        actions = tuple(a for a in props.get("AlarmActions", []) if a in policies) if resource["Type"] == ALARM else ()
        if not actions:
            continue
        periods = int(props["EvaluationPeriods"])
        alarms.append(
            AlarmSpec(
                name=name,
                metric=_series(props, name),
                threshold=float(props["Threshold"]),
                comparison=props["ComparisonOperator"],
                periods=periods,
                datapoints=int(props.get("DatapointsToAlarm", periods)),
                missing=props.get("TreatMissingData", "missing"),
                actions=actions,
            )
        )
    return Policies(
        min_size=int(group["MinSize"]),
        max_size=int(group["MaxSize"]),
        warmup_minutes=math.ceil(int(group.get("DefaultInstanceWarmup", 0)) / 60),
        # PutLifecycleHook's default HeartbeatTimeout is 3,600 seconds.
        launch_hook_minutes=int(launch_hooks[0].get("HeartbeatTimeout", 3600)) // 60,
        policies=policies,
        alarms=tuple(alarms),
    )


def _policy(name: str, props: Mapping[str, Any]) -> Policy:
    kind = props.get("PolicyType", "SimpleScaling")
    if "EstimatedInstanceWarmup" in props:
        raise ValueError(f"{name}: EstimatedInstanceWarmup is not modelled: the group's DefaultInstanceWarmup is")
    if kind == "TargetTrackingScaling":
        config = props["TargetTrackingConfiguration"]
        if "CustomizedMetricSpecification" not in config or config.get("DisableScaleIn") in (True, "true"):
            raise ValueError(f"{name}: the model reads customized metrics with scale-in enabled only")
        return Policy(
            name,
            kind,
            target=float(config["TargetValue"]),
            metric=_series(config["CustomizedMetricSpecification"], name),
        )
    adjustment_type = props.get("AdjustmentType", "ChangeInCapacity")
    if adjustment_type not in ("ChangeInCapacity", "ExactCapacity"):
        raise ValueError(f"{name}: AdjustmentType={adjustment_type!r} is not modelled")
    if kind == "StepScaling":
        steps = tuple(
            Step(
                lower=float(s["MetricIntervalLowerBound"]) if "MetricIntervalLowerBound" in s else None,
                upper=float(s["MetricIntervalUpperBound"]) if "MetricIntervalUpperBound" in s else None,
                adjustment=int(s["ScalingAdjustment"]),
            )
            for s in props["StepAdjustments"]
        )
        return Policy(name, kind, adjustment_type, steps=steps)
    if kind == "SimpleScaling":
        return Policy(
            name,
            kind,
            adjustment_type,
            adjustment=int(props["ScalingAdjustment"]),
            cooldown_minutes=math.ceil(int(props.get("Cooldown", 300)) / 60),
        )
    raise ValueError(f"{name}: PolicyType={kind!r} is not modelled")


def replace_scaling(rendered: Mapping[str, Any], resources: Mapping[str, Any]) -> dict[str, Any]:
    """``rendered`` with its scaling policies and their alarms replaced by ``resources``
    (for instance an older version's, to compare).

    The replacements run on ``rendered``'s group: its launch hook, its bootstrap
    and its DefaultInstanceWarmup, which replaces a policy's own
    ``EstimatedInstanceWarmup`` (dropped here), so that a comparison differs in
    the policies alone. (0.1.0's 900-second warmup stood for the Windows boot,
    which the launch hook now holds out of service.)"""
    policies = {n for n, r in rendered["Resources"].items() if r["Type"] == SCALING_POLICY}
    kept = {
        name: r
        for name, r in rendered["Resources"].items()
        if name not in policies and not (r["Type"] == ALARM and set(r["Properties"].get("AlarmActions", [])) & policies)
    }
    replacements = {
        name: {**r, "Properties": {k: v for k, v in r["Properties"].items() if k != "EstimatedInstanceWarmup"}}
        if r["Type"] == SCALING_POLICY
        else r
        for name, r in resources.items()
    }
    return {**rendered, "Resources": {**kept, **replacements}}


# --- Modes: cold, warm pool, Spot -----------------------------------------------------------------

WARM_POOL = "AWS::AutoScaling::WarmPool"
COLD, WARM, SPOT = "cold", "warm", "spot"

SPOT_INTERRUPTIONS_PER_MONTH = 0.20
"""The share of Spot instances reclaimed in a month: the lower edge of the Spot Instance
Advisor's worst band. The Advisor publishes the "frequency of interruption" per instance type
and Region in bands (<5%, 5-10%, 10-15%, 15-20%, >20%: "the rate at which Spot has reclaimed
capacity during the trailing month"); no band for m6i.large could be cited here, so the model
takes a pessimistic one. Per instance-hour: this over 730 hours (an assumption: the Advisor's
rate is per month, not per hour of use)."""
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Mode:
    """How the group launches: cold (today), from a Stopped warm pool, or Spot (mixed instances).

    Given explicitly, or read from a rendered template by :func:`read_mode`."""

    name: str
    boot: tuple[BootPhase, ...] = COLD_PHASES
    """A launch of a new instance (every mode: the warm pool fills itself with cold launches)."""
    pool_start: tuple[BootPhase, ...] = WARM_PHASES
    """warm: a start from the pool to InService."""
    pool_min_size: int = 0
    pool_max_prepared: int = -1
    """MaxGroupPreparedCapacity: -1 is AWS's default, the pool holds MaxSize minus desired."""
    reuse_on_scale_in: bool = False
    on_demand_base: int = 0
    on_demand_percentage: int = 100
    """Of the capacity above the base; the rest is Spot (InstancesDistribution)."""
    interruptions_per_month: float = SPOT_INTERRUPTIONS_PER_MONTH
    source: str = "given"
    """Where the mode came from: "given", or the template's resource."""

    @property
    def boot_minutes(self) -> int:
        return sum(phase.minutes for phase in self.boot)

    @property
    def pool_start_minutes(self) -> int:
        return sum(phase.minutes for phase in self.pool_start)

    def on_demand(self, instances: int) -> int:
        """How many of ``instances`` are On-Demand: the base, then the percentage of the rest,
        rounded up (the model's choice: AWS does not say how it rounds)."""
        above = max(0, instances - self.on_demand_base)
        return min(instances, self.on_demand_base) + math.ceil(above * self.on_demand_percentage / 100 - 1e-9)


def cold_mode(phases: Mapping[str, int] | None = None) -> Mode:
    """Today's mode; ``phases`` (boot metric name to minutes) replaces figures by measured ones."""
    return Mode(COLD, boot=with_phases(COLD_PHASES, phases or {}))


def warm_mode(min_size: int = 1, max_prepared: int = -1, phases: Mapping[str, int] | None = None) -> Mode:
    """A Stopped warm pool, its instances returned to it on scale-in (the parameters' defaults:
    WarmPoolMinSize 1, WarmPoolMaxPrepared -1). ``phases`` replaces the cold phases (a new
    pool instance's first boot) and the start's (the same names: BootToUserData, BootHook)."""
    given = phases or {}
    return Mode(
        WARM,
        boot=with_phases(COLD_PHASES, given),
        pool_start=with_phases(WARM_PHASES, {k[len("Pool") :]: v for k, v in given.items() if k.startswith("Pool")}),
        pool_min_size=min_size,
        pool_max_prepared=max_prepared,
        reuse_on_scale_in=True,
    )


def spot_mode(
    on_demand_base: int = 0,
    on_demand_percentage: int = 0,
    interruptions_per_month: float = SPOT_INTERRUPTIONS_PER_MONTH,
    phases: Mapping[str, int] | None = None,
) -> Mode:
    """Spot above an On-Demand base (all Spot by default): cold boots, interruptions."""
    return Mode(
        SPOT,
        boot=with_phases(COLD_PHASES, phases or {}),
        on_demand_base=on_demand_base,
        on_demand_percentage=on_demand_percentage,
        interruptions_per_month=interruptions_per_month,
    )


def with_phases(phases: tuple[BootPhase, ...], measured: Mapping[str, int]) -> tuple[BootPhase, ...]:
    """``phases`` with the figures of ``measured`` (boot metric name to minutes) in their place."""
    out = []
    for phase in phases:
        if phase.name in measured:
            minutes = int(measured[phase.name])
            if minutes < 0:
                raise ValueError(f"{phase.name}={minutes}: minutes cannot be negative")
            phase = BootPhase(phase.name, minutes, "measured (given)")
        out.append(phase)
    return tuple(out)


def read_mode(rendered: Mapping[str, Any], phases: Mapping[str, int] | None = None) -> Mode:
    """The mode of a rendered template: a Stopped ``AWS::AutoScaling::WarmPool`` on the group
    is warm; the group's ``MixedInstancesPolicy`` with Spot above its On-Demand base is spot;
    neither is cold. Both at once is refused, as AWS refuses it (a warm pool cannot be added
    to a group with a mixed instances policy or Spot)."""
    resources: Mapping[str, Any] = rendered["Resources"]
    pools = [r.get("Properties", {}) for r in resources.values() if r["Type"] == WARM_POOL]
    groups = [r["Properties"] for r in resources.values() if r["Type"] == GROUP]
    if len(groups) != 1:
        raise ValueError(f"expected one Auto Scaling group, found {len(groups)}")
    mixed = groups[0].get("MixedInstancesPolicy") or None
    if len(pools) > 1:
        raise ValueError(f"expected at most one {WARM_POOL}, found {len(pools)}")
    if pools and mixed:
        raise ValueError(f"{WARM_POOL} with a MixedInstancesPolicy: AWS refuses a warm pool on a mixed group")
    if pools:
        pool = pools[0]
        state = pool.get("PoolState", "Stopped")
        if state != "Stopped":
            raise ValueError(f"{WARM_POOL} PoolState={state!r} is not modelled: only Stopped")
        reuse = pool.get("InstanceReusePolicy") or {}
        mode = warm_mode(int(pool.get("MinSize", 0)), int(pool.get("MaxGroupPreparedCapacity", -1)), phases)
        return dataclasses.replace(
            mode, reuse_on_scale_in=reuse.get("ReuseOnScaleIn") in (True, "true"), source=WARM_POOL
        )
    if mixed:
        distribution = mixed.get("InstancesDistribution") or {}
        mode = spot_mode(
            int(distribution.get("OnDemandBaseCapacity", 0)),
            # CreateAutoScalingGroup's default is 100: all On-Demand.
            int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100)),
            phases=phases,
        )
        if mode.on_demand(1000) == 1000:
            return dataclasses.replace(cold_mode(phases), source="MixedInstancesPolicy (all On-Demand)")
        return dataclasses.replace(mode, source="MixedInstancesPolicy")
    return dataclasses.replace(cold_mode(phases), source="no warm pool, no MixedInstancesPolicy")


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices of the default instance type, m6i.large (2 vCPUs), Windows, per hour.

    The Windows On-Demand rate is the Linux rate plus the licence: AWS's EC2 user guide
    ("Optimize CPUs for License-Included instances") lists Windows Server at $0.046 per vCPU-hour,
    and Strategic Blue's analysis of AWS's price list (April 2023, secondary) finds the Windows
    rate exactly that far above the Linux rate for most types. m6i.large Linux is $0.096
    (AWS's On-Demand pricing page, read for this model, not in the search index here; the same
    as m5.large's), so Windows is $0.188.

    No current Spot price could be cited. The model takes the Spot discount on the compute part
    (AWS: Spot is "up to 90%" off On-Demand) as ``spot_discount`` and charges the licence in
    full on Spot (an assumption: AWS lists the licence's per-vCPU rate for On-Demand and
    Savings Plans and no Spot discount on it). A stopped pool instance pays its EBS volume only
    (Auto Scaling user guide, warm pools): gp3 $0.08 per GB-month (Amazon EBS pricing)."""

    linux_on_demand: float = 0.096
    licence_per_vcpu: float = 0.046
    vcpus: int = 2
    spot_discount: float = 0.70
    ebs_gb_month: float = 0.08
    volume_gb: int = 60
    date: str = "2026-12-01"

    @property
    def licence(self) -> float:
        return self.licence_per_vcpu * self.vcpus

    @property
    def on_demand(self) -> float:
        return self.linux_on_demand + self.licence

    @property
    def spot(self) -> float:
        return self.linux_on_demand * (1 - self.spot_discount) + self.licence

    @property
    def stopped(self) -> float:
        return self.ebs_gb_month * self.volume_gb / HOURS_PER_MONTH


PRICES = Prices()


# --- The world: a queue, workers, CloudWatch, Auto Scaling --------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    minutes: int
    arrivals: Mapping[int, int]
    """Messages sent at each minute."""
    job_minutes: int
    bootstrap_minutes: int = BOOTSTRAP_MINUTES
    """From launch until the bootstrap completes the launch hook and the instance is InService."""


@dataclass
class _Instance:
    in_service_at: int
    """The bootstrap has completed the launch hook: it counts in GroupInServiceInstances and works."""
    warm_at: int
    """Its warmup has ended: it counts as current capacity, and no longer holds scale-in back."""
    busy_until: int | None = None
    message: int = 0
    """When the message it works on was sent."""


@dataclass
class Run:
    """Minute by minute: desired capacity, workers in service, queued and in-flight messages."""

    desired: list[int] = field(default_factory=list)
    in_service: list[int] = field(default_factory=list)
    visible: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    """Minutes from each message's sending to a worker taking it."""
    completed: int = 0
    interrupted: int = 0
    """Jobs cut short because scale-in terminated their worker (the message is redelivered)."""
    spot_interruptions: int = 0
    released: int = 0
    """Jobs a Spot interruption cut short: the worker released them at once (ChangeMessageVisibility 0)."""
    on_demand_minutes: int = 0
    spot_minutes: int = 0
    """Running instance-minutes by purchase option: the group's instances, the Spot ones' two
    minutes of notice, and new pool instances' first boots (which run before they stop)."""
    stopped_minutes: int = 0
    """Warm pool instances stopped: EBS only."""

    @property
    def backlog(self) -> list[int]:
        return [v + f for v, f in zip(self.visible, self.in_flight, strict=True)]

    @property
    def instance_hours(self) -> float:
        return sum(self.desired) / 60

    @property
    def first_job_minutes(self) -> int:
        """From the first message to the first job started (messages are taken in order)."""
        return self.waits[0]

    def cost(self, prices: Prices = PRICES) -> float:
        """Dollars at list prices: On-Demand and Spot instance-minutes, stopped pool volumes."""
        return (
            self.on_demand_minutes * prices.on_demand
            + self.spot_minutes * prices.spot
            + self.stopped_minutes * prices.stopped
        ) / 60

    def cost_per_1000_jobs(self, prices: Prices = PRICES) -> float:
        return self.cost(prices) / self.completed * 1000


@dataclass
class _AlarmState:
    history: list[Datapoint] = field(default_factory=list)
    state: str = "INSUFFICIENT_DATA"


def _alarm_state(spec: AlarmSpec, alarm: _AlarmState) -> str:
    window = alarm.history[-spec.periods :]
    present = [v for v in window if v is not None]
    missing = spec.periods - len(present)
    breaching = sum(spec.breaching(v) for v in present) + (missing if spec.missing == "breaching" else 0)
    if spec.missing in ("missing", "ignore") and not present:
        return alarm.state if spec.missing == "ignore" else "INSUFFICIENT_DATA"
    return "ALARM" if breaching >= spec.datapoints else "OK"


def simulate(policies: Policies, scenario: Scenario, mode: Mode | None = None) -> Run:
    """Run ``scenario`` against ``policies`` in ``mode`` (cold by default), starting from an
    empty queue, MinSize workers and a full warm pool.

    cold: a launch is in service after ``scenario.bootstrap_minutes``. warm: a scale-out
    starts a ready pool instance (``mode.pool_start_minutes``), else launches cold; the pool
    refills with cold launches (running while they boot, then stopped) to
    max(pool MinSize, MaxGroupPreparedCapacity or MaxSize, minus desired), and takes back the
    instances of a scale-in when the reuse policy says so. spot: cold launches; the Spot share
    of the group is interrupted at ``mode.interruptions_per_month`` per instance-month, spread
    evenly (a deterministic count, not a draw); an interrupted worker releases its message at
    once (ChangeMessageVisibility 0: taken the next minute), runs its two minutes of notice,
    and the group launches a replacement."""
    mode = mode or Mode(COLD)
    boot = scenario.bootstrap_minutes if mode.boot == COLD_PHASES else mode.boot_minutes
    if max(boot, mode.pool_start_minutes) >= policies.launch_hook_minutes:
        raise ValueError(
            f"{scenario.name}: a {boot}-minute bootstrap outlasts the launch hook's "
            f"{policies.launch_hook_minutes} minutes: every launch would be abandoned"
        )
    run = Run()
    desired = policies.min_size
    instances = [_Instance(in_service_at=0, warm_at=0) for _ in range(desired)]
    queue: deque[int] = deque()  # visible messages, by the minute they were sent
    returning: list[tuple[int, int]] = []  # messages of terminated workers: (reappears at, sent at)
    last_active = 0
    alarms = {spec.name: _AlarmState() for spec in policies.alarms}
    tracking = {n: p for n, p in policies.policies.items() if p.kind == "TargetTrackingScaling"}
    tracked: dict[str, list[Datapoint]] = {n: [] for n in tracking}
    last_simple: dict[str, int] = {}
    pool: list[int] = []  # warm: when each pool instance is ready (stopped, after its first boot)
    if mode.name == WARM:
        pool = [0] * _pool_target(mode, policies, desired)
    spot_due = 0.0  # interruptions owed, by the Spot instance-minutes so far
    for t in range(scenario.minutes):
        queue.extend(sent for back, sent in returning if back == t)
        queue.extend([t] * scenario.arrivals.get(t, 0))
        returning = [r for r in returning if r[0] > t]
        serving = [i for i in instances if i.in_service_at <= t]
        warmed = sum(1 for i in instances if i.warm_at <= t)
        for worker in serving:
            if worker.busy_until is not None and worker.busy_until <= t:
                worker.busy_until = None
                run.completed += 1
            if worker.busy_until is None and queue:
                worker.busy_until, worker.message = t + scenario.job_minutes, queue.popleft()
                run.waits.append(t - worker.message)
        visible = len(queue)
        in_flight = sum(1 for i in serving if i.busy_until is not None) + len(returning)
        if visible or in_flight or serving:
            last_active = t
        queue_active = t - last_active < SQS_INACTIVE_MINUTES
        published: dict[tuple[str, str], Datapoint] = {
            VISIBLE: float(visible) if queue_active else None,
            NOT_VISIBLE: float(in_flight) if queue_active else None,
            IN_SERVICE: float(len(serving)),
        }
        warming = warmed < len(instances)  # pending on the launch hook, or warming up

        out: list[int] = []
        scale_in: list[int] = []
        for name, policy in tracking.items():
            assert policy.metric is not None
            history = tracked[name]
            history.append(policy.metric.value(published))
            latest = history[-1]
            high = history[-TT_HIGH_PERIODS:]
            low = history[-TT_LOW_PERIODS:]
            if latest is None:
                continue
            wanted = math.ceil(len(serving) * latest / policy.target - 1e-9)
            if len(high) == TT_HIGH_PERIODS and all(v is not None and v > policy.target for v in high):
                out.append(wanted)
            elif len(low) == TT_LOW_PERIODS and all(v is not None and v < TT_LOW_RATIO * policy.target for v in low):
                scale_in.append(wanted)
        for spec in policies.alarms:
            alarm = alarms[spec.name]
            value = spec.metric.value(published)
            alarm.history.append(value)
            alarm.state = _alarm_state(spec, alarm)
            if alarm.state != "ALARM":
                continue
            for action in spec.actions:
                policy = policies.policies[action]
                if policy.kind == "SimpleScaling":
                    if t - last_simple.get(action, -policy.cooldown_minutes) < policy.cooldown_minutes:
                        continue
                    last_simple[action] = t
                    adjustment = policy.adjustment
                else:
                    step = _step(policy, (value or 0.0) - spec.threshold)
                    if step is None:
                        continue
                    adjustment = step.adjustment
                if policy.adjustment_type == "ExactCapacity":
                    (out if adjustment > desired else scale_in).append(adjustment)
                else:
                    # Pending and warming-up instances count as already added: one activity per step.
                    (out if adjustment > 0 else scale_in).append(
                        max(desired, warmed + adjustment) if adjustment > 0 else desired + adjustment
                    )
        if any(c > desired for c in out):
            desired = max(out)
        elif scale_in and not warming:
            desired = min(desired, max(scale_in))
        desired = max(policies.min_size, min(policies.max_size, desired))

        spot = len(instances) - mode.on_demand(len(instances))
        if spot and mode.interruptions_per_month:
            spot_due += spot * mode.interruptions_per_month / (HOURS_PER_MONTH * 60)
            if spot_due >= 1:
                spot_due -= 1
                # The worst case: a busy worker's (the oldest busy one), else the newest instance.
                busy = [i for i in instances if i.busy_until is not None]
                gone = busy[0] if busy else instances[-1]
                instances.remove(gone)
                run.spot_interruptions += 1
                run.spot_minutes += 2  # the notice: it runs two minutes more, out of the group
                if gone.busy_until is not None:
                    run.released += 1
                    returning.append((t + 1, gone.message))
        while len(instances) < desired:
            ready = [at for at in pool if at <= t]
            if ready:
                pool.remove(ready[0])
                in_service_at = t + mode.pool_start_minutes
            else:
                in_service_at = t + boot
            instances.append(_Instance(in_service_at=in_service_at, warm_at=in_service_at + policies.warmup_minutes))
        while len(instances) > desired:
            gone = instances.pop()  # the newest
            if gone.busy_until is not None:
                run.interrupted += 1
                returning.append((t + VISIBILITY_TIMEOUT_MINUTES, gone.message))
            if mode.name == WARM and mode.reuse_on_scale_in:
                pool.append(t + 1)  # stopped again, its bootstrap done
        if mode.name == WARM:
            target = _pool_target(mode, policies, desired)
            while len(pool) < target:
                pool.append(t + boot)  # a cold first boot into the pool, then stopped
            while len(pool) > target:
                pool.remove(max(pool))
            run.on_demand_minutes += sum(1 for at in pool if at > t)
            run.stopped_minutes += sum(1 for at in pool if at <= t)
        on_demand = mode.on_demand(len(instances))
        run.on_demand_minutes += on_demand
        run.spot_minutes += len(instances) - on_demand
        run.desired.append(desired)
        run.in_service.append(len(serving))
        run.visible.append(visible)
        run.in_flight.append(in_flight)
    return run


def _pool_target(mode: Mode, policies: Policies, desired: int) -> int:
    """The warm pool's size: the prepared capacity (MaxGroupPreparedCapacity, or MaxSize when it
    is -1) minus the desired capacity, at least the pool's MinSize (PutWarmPool API)."""
    prepared = policies.max_size if mode.pool_max_prepared < 0 else mode.pool_max_prepared
    return max(mode.pool_min_size, prepared - desired)


def _step(policy: Policy, distance: float) -> Step | None:
    for step in policy.steps:
        if (step.lower is None or distance >= step.lower) and (step.upper is None or distance < step.upper):
            return step
    return None


# --- The scenarios of BENCHMARKS.md and tests/test_scaling.py -------------------------------------

DAY = 24 * 60
BURST = Scenario("burst", "A burst of 500 messages (10-minute jobs)", DAY, {10: 500}, job_minutes=10)
TRICKLE = Scenario(
    "trickle",
    "30 messages, then one every 7 minutes for 12 hours (5-minute jobs)",
    DAY,
    {10: 30} | {m: 1 for m in range(60, 60 + 12 * 60, 7)},
    job_minutes=5,
)
IDLE = Scenario("idle", "An idle day after 20 messages (10-minute jobs)", DAY, {10: 20}, job_minutes=10)
NIGHT = Scenario(
    "night",
    "The first file after an idle night: one at 07:00, then one every 10 minutes until noon (10-minute jobs)",
    DAY,
    {m: 1 for m in range(7 * 60, 12 * 60, 10)},
    job_minutes=10,
)
"""Nothing from midnight: the queue is inactive (no SQS datapoints) long before the first file."""
SCENARIOS: Sequence[Scenario] = (BURST, TRICKLE, IDLE, NIGHT)


# --- The first file after an idle night, in seconds: the alarm path and the wake path ----------


@dataclass(frozen=True)
class Lag:
    """One step from a message to its job starting: anywhere from ``low`` to ``high`` seconds,
    each value as likely (a uniform wait), with its source. Rows 215 to 219 of
    docs/aws-behaviours.md hold the AWS texts."""

    name: str
    low: int
    high: int
    source: str


SQS_PERIOD = Lag(
    "SQS datapoint",
    0,
    60,
    "SQS publishes its queue metrics once a minute, only for an active queue (register row 53): the message "
    "waits for the end of its minute",
)
INGESTION = Lag(
    "CloudWatch ingestion",
    60,
    120,
    "an estimate (AWS publishes no figure for AWS/SQS; the model's earlier limit said a minute or two): not AWS's text",
)
ALARM_EVALUATION = Lag(
    "Start alarm evaluation",
    0,
    60,
    "an alarm with a 60-second period is evaluated once a minute (10 seconds only for 10- and 30-second "
    "periods; CloudWatch user guide, register row 216): the datapoint waits for the next evaluation",
)
ALARM_ACTION = Lag(
    "Step policy to scaling activity",
    1,
    10,
    "the alarm's action runs StartPolicy (+1) and Auto Scaling starts an activity: an estimate",
)
WAKE_CALL = Lag(
    "Wake call",
    1,
    5,
    "the platform invokes the wake right after SendMessage: a Lambda start, GetQueueAttributes, "
    "DescribeAutoScalingGroups twice (the second right before the set), SetDesiredCapacity (HonorCooldown "
    "false: no cooldown). An estimate",
)
WAKE_ACTIVITY = Lag(
    "Desired capacity to scaling activity",
    ALARM_ACTION.low,
    ALARM_ACTION.high,
    "SetDesiredCapacity sets only the capacity Auto Scaling attempts to maintain (register row 217); Auto "
    "Scaling then starts an activity, as after the step policy: the same estimate",
)
WAKE_SCHEDULE = Lag(
    "Wake schedule",
    0,
    60,
    "the platform does not call it: EventBridge's rate(1 minute) rule runs it within the minute (register row 219)",
)
POLL = Lag(
    "Worker's first receive",
    0,
    5,
    "the sample worker reads its lifecycle state every 5 seconds until InService, then long polls: a visible "
    "message returns at once (SQS ReceiveMessage)",
)
LAUNCH = {
    "cold": Lag(
        "Cold launch to InService",
        10 * 60,
        20 * 60,
        "a Windows first boot with cfn-init: the project's estimate of 10-20 minutes (COLD_PHASES; secondary)",
    ),
    "warm pool": Lag(
        "Pool start to InService",
        35,
        80,
        "a stopped pool instance starts (RunsOn: under 40 s for Windows, third-party; InfoQ: AWS's warm pools "
        "serve in as low as 30 s, secondary) and its UserData completes the launch hook (an estimate)",
    ),
    "Spot": Lag(
        "Cold Spot launch to InService",
        10 * 60,
        20 * 60,
        "as cold: a Spot launch boots the same Windows with cfn-init (a capacity shortage is not modelled)",
    ),
}
"""The mode's launch, as the wake or the alarm starts it. A raised desired capacity takes a pooled
instance first (register row 218). No baked-image mode exists: the fleet installs at boot."""

ALARM_PATH: tuple[Lag, ...] = (SQS_PERIOD, INGESTION, ALARM_EVALUATION, ALARM_ACTION)
WAKE_CALLED: tuple[Lag, ...] = (WAKE_CALL, WAKE_ACTIVITY)
WAKE_SCHEDULED: tuple[Lag, ...] = (WAKE_SCHEDULE, WAKE_CALL, WAKE_ACTIVITY)
FIRST_FILE_TARGET = (60, 90)
"""Seconds from a message to its job starting, P50 and P95: an idle fleet, a warm pool and the wake."""


def percentiles(lags: Sequence[Lag], points: Sequence[float] = (0.50, 0.95)) -> tuple[int, ...]:
    """The given percentiles, in whole seconds, of the sum of independent uniform waits: their
    distribution convolved second by second (exact at that resolution; no random draw)."""
    total = [1.0]
    for lag in lags:
        if not 0 <= lag.low <= lag.high:
            raise ValueError(f"{lag.name}: low {lag.low} and high {lag.high} are not 0 <= low <= high")
        width = lag.high - lag.low + 1
        step = [0.0] * lag.low + [1.0 / width] * width
        out = [0.0] * (len(total) + len(step) - 1)
        for i, a in enumerate(total):
            if a:
                for j, b in enumerate(step):
                    out[i + j] += a * b
        total = out
    found, seen = [], 0.0
    marks = iter(points)
    mark = next(marks, None)
    for second, weight in enumerate(total):
        seen += weight
        while mark is not None and seen >= mark - 1e-12:
            found.append(second)
            mark = next(marks, None)
    return tuple(found)


def first_file_paths(mode: str) -> dict[str, tuple[Lag, ...]]:
    """Each way the first file's job starts in mode: the path's steps, from SendMessage."""
    tail = (LAUNCH[mode], POLL)
    return {
        "alarm (no wake)": ALARM_PATH + tail,
        "wake, every minute": WAKE_SCHEDULED + tail,
        "wake, called on enqueue": WAKE_CALLED + tail,
    }


def _gap(value: int, goal: int, name: str) -> str:
    if value > goal:
        return f"{value - goal} s over at {name}"
    return f"{name} met with {'no margin' if value == goal else f'{goal - value} s to spare'}"


def first_file_section() -> str:
    """BENCHMARKS.md's table: per mode and path, P50 and P95 seconds from the message to its job."""
    lines = [
        "## The first file after an idle night: message to job start, seconds (modelled)",
        "",
        "`scripts/scaling_model.py` (`first_file_paths`, `percentiles`): each step below is a wait anywhere "
        "between its bounds, all values as likely; the percentiles are those of their sum (convolved, not drawn). "
        "The alarm path is today's start from zero (`StartAlarm`, then `StartPolicy`); the wake raises the desired "
        "capacity itself (`WakeFunction`): called by the platform after it enqueues, or by its one-minute schedule.",
        "",
        "| Mode | Path | P50 | P95 |",
        "| --- | --- | --- | --- |",
    ]
    for mode in LAUNCH:
        for path, lags in first_file_paths(mode).items():
            p50, p95 = percentiles(lags)
            lines.append(f"| {mode} | {path} | {p50} s | {p95} s |")
    p50, p95 = percentiles(first_file_paths("warm pool")["wake, called on enqueue"])
    scheduled = percentiles(first_file_paths("warm pool")["wake, every minute"])
    goal50, goal95 = FIRST_FILE_TARGET
    met = p50 <= goal50 and p95 <= goal95
    lines += [
        "",
        f"**Target** ({goal50} s P50, {goal95} s P95, warm pool and the wake called on enqueue): "
        + ("**met**" if met else "**not met**")
        + f", {p50} s and {p95} s. "
        + (
            f"P95 has {goal95 - p95} s to spare. "
            if met
            else f"The gap is the pool start ({_gap(p50, goal50, 'P50')}, {_gap(p95, goal95, 'P95')}): "
            f"a stopped Windows instance's start and its launch hook "
            f"({LAUNCH['warm pool'].low}-{LAUNCH['warm pool'].high} s, third-party and estimated), which "
            "no scaling can shorten. "
        )
        + f"With the schedule alone: {scheduled[0]} s and {scheduled[1]} s. Cold and Spot wait for Windows' first "
        "boot and cfn-init whatever starts them: the wake saves the alarm path's minutes, not the boot's.",
        "",
        "What the alarm path leaves out, and makes it longer still: after an idle night the queue is inactive "
        "(no message, no call for hours) and SQS publishes no datapoint until a call activates it (register "
        "row 53); how soon the first one then comes is not documented. The wake's schedule calls "
        "GetQueueAttributes every minute, which keeps the queue active. Target tracking (3 of 3 one-minute "
        "datapoints, register row 49) adds workers after the first; the step alarm starts the first.",
        "",
        "| Step | Seconds | Source |",
        "| --- | --- | --- |",
    ]
    steps = [*ALARM_PATH, WAKE_CALL, WAKE_ACTIVITY, WAKE_SCHEDULE, *LAUNCH.values(), POLL]
    lines += [f"| {s.name} | {s.low}-{s.high} | {s.source} |" for s in steps]
    return "\n".join(lines) + "\n"


# ImageSource=baked (winworkers.image, docs/baked-image.md): the same boot metrics, on the stack's
# own image. Each phase says what the image removes; none of these is measured.
BAKED_PHASES: tuple[BootPhase, ...] = (
    COLD_PHASES[0],
    COLD_PHASES[1],
    BootPhase("BootAgent", 1, "the agent is in the image: its config and start only (no MSI). An estimate"),
    BootPhase(
        "BootService",
        1,
        "the artifact is in the image: worker.json and install.ps1 again, idempotent (no download). An estimate",
    ),
    COLD_PHASES[4],
)
FAST_LAUNCH_PHASES: tuple[BootPhase, ...] = (
    BootPhase(
        "BootToUserData",
        2,
        "EC2 Fast Launch: pre-provisioned snapshots skip Sysprep's specialize and OOBE, 'up to 65% faster' "
        "(EC2 API, EnableFastLaunch), on an AMI the account owns: 5 minutes less 65%, rounded up. Not verified "
        "for a launch template that sets the root volume (register row 231)",
    ),
    *BAKED_PHASES[1:],
)
BAKED_TARGET_MINUTES = 4
"""Issue 28's target: launch to first job, P95, baked with Fast Launch."""


def baked_section() -> str:
    """BENCHMARKS.md's baked cold start: the phases per mode, against BAKED_TARGET_MINUTES."""
    modes = (
        ("aws-published (today)", COLD_PHASES),
        ("baked", BAKED_PHASES),
        ("baked + Fast Launch", FAST_LAUNCH_PHASES),
    )
    names = [phase.name for phase in COLD_PHASES]
    lines = [
        "## The baked image: cold start (modelled, not measured)",
        "",
        "Launch to in service, minutes, by boot phase (the fleet's own boot metrics measure each). "
        "`ImageSource=baked` removes the agent MSI and the artifact's download and install from the boot; "
        "Fast Launch shortens Windows' first boot. Sources per phase: `scripts/scaling_model.py` "
        "(`COLD_PHASES`, `BAKED_PHASES`, `FAST_LAUNCH_PHASES`); all but AWS's 65% are estimates.",
        "",
        "| Mode | " + " | ".join(names) + " | Total | Target |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    for label, phases in modes:
        minutes = {phase.name: phase.minutes for phase in phases}
        total = sum(minutes.values())
        verdict = "met" if total <= BAKED_TARGET_MINUTES else f"{total - BAKED_TARGET_MINUTES} min over"
        lines.append(f"| {label} | " + " | ".join(str(minutes[n]) for n in names) + f" | {total} | {verdict} |")
    lines += [
        "",
        f"The target, {BAKED_TARGET_MINUTES} minutes at P95 with a baked, Fast-Launch image, is **not** supported "
        "by these phases: the gap is the per-instance hardening (an estimate of 3 minutes for a firewall "
        "and service change that may take seconds: `BootHarden` measures it) and the first boot. What would "
        "close it: measure `BootHarden` and `BootToUserData` on the baked image; bake the hardening that "
        "needs no instance (firewall profile, RDP and services disabled) and keep only a check at boot; a "
        "stopped warm pool of the baked image (`WarmPool=stopped`: a start from the pool is modelled at "
        "2 minutes above).",
        "",
        "**Weekly cost of `baked`** (us-east-1 list prices, estimates): the pipeline builds only when AWS "
        "publishes a new image or the component changes (about monthly): one build and one test instance "
        "of `InstanceType` for about an hour each (~$0.40 for an m5.large Windows); the AMIs kept (3) at "
        "$0.05 per GB-month of snapshot (incremental; at most 3 x `BuildVolumeSize` 60 GB = $9/month); "
        "Fast Launch's `FastLaunchSnapshots` pre-provisioned snapshots (AWS's own example: about $5/month); "
        "and, in the isolated VPC, the build's 4 interface endpoints in one AZ, always on: "
        "4 x $0.01/h x 730 h = $29.20/month, the largest item.",
        "",
    ]
    return "\n".join(lines)
