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
  lag and SQS's approximate counts are not modelled, nor is the extra look-back
  of CloudWatch's missing-data evaluation (an alarm sees exactly its last N
  datapoints). Every period must be 60 seconds.
- Scale-in terminates the newest instances first (AWS's default termination
  policy does not know which workers are busy either), pending ones included,
  and at once: the drain hook's wait is not modelled; a busy worker's message
  reappears after ``VISIBILITY_TIMEOUT_MINUTES``. Availability Zones, launch
  failures and health checks are not modelled.
- The queue counts as inactive (no SQS datapoints) after ``SQS_INACTIVE_MINUTES``
  with no message and no worker polling it.
"""

from __future__ import annotations

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
BOOTSTRAP_MINUTES = 15
"""Launch to InService: a cold Windows Server boot with EC2Launch, then cfn-init
(hardening, the CloudWatch agent MSI, the worker service) until the UserData
completes the launch hook. An estimate, not a measurement: Windows first boots
take 10-20 minutes (winworkers/bootstrap.py, on aws-cdk #10429 and #21359, which is
why the hook waits 45); BENCHMARKS.md's "Cost and latency on paper" says the same."""

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

    @property
    def backlog(self) -> list[int]:
        return [v + f for v, f in zip(self.visible, self.in_flight, strict=True)]

    @property
    def instance_hours(self) -> float:
        return sum(self.desired) / 60


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


def simulate(policies: Policies, scenario: Scenario) -> Run:
    """Run ``scenario`` against ``policies``, starting from an empty queue and MinSize workers."""
    if scenario.bootstrap_minutes >= policies.launch_hook_minutes:
        raise ValueError(
            f"{scenario.name}: a {scenario.bootstrap_minutes}-minute bootstrap outlasts the launch hook's "
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

        while len(instances) < desired:
            in_service_at = t + scenario.bootstrap_minutes
            instances.append(_Instance(in_service_at=in_service_at, warm_at=in_service_at + policies.warmup_minutes))
        while len(instances) > desired:
            gone = instances.pop()  # the newest
            if gone.busy_until is not None:
                run.interrupted += 1
                returning.append((t + VISIBILITY_TIMEOUT_MINUTES, gone.message))
        run.desired.append(desired)
        run.in_service.append(len(serving))
        run.visible.append(visible)
        run.in_flight.append(in_flight)
    return run


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
SCENARIOS: Sequence[Scenario] = (BURST, TRICKLE, IDLE)
