"""Queue-driven scaling, run through scripts/scaling_model.py: the policies come from the
rendered template, the scenarios are a burst, a trickle and an idle day, and the bounds are
derived from the alarms' evaluation periods, the group's warmup and launch hook, and the
model's bootstrap time (BOOTSTRAP_MINUTES: an estimate, not in the template)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any

import pytest
import scaling_model as model

from conftest import ROOT, render
from winworkers.renderings import enabled_parameters

MAX_SIZE = 10
OLD = json.loads((ROOT / "tests" / "fixtures" / "old-queue-scaling.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rendered(feature: dict[str, Any]) -> dict[str, Any]:
    return render(feature, enabled_parameters(MaxSize=str(MAX_SIZE)))


@pytest.fixture(scope="module")
def new(rendered: dict[str, Any]) -> model.Policies:
    return model.read_policies(rendered)


@pytest.fixture(scope="module")
def old(rendered: dict[str, Any]) -> model.Policies:
    return model.read_policies(model.replace_scaling(rendered, OLD["Resources"]))


def _start_alarm(policies: model.Policies) -> model.AlarmSpec:
    (alarm,) = (a for a in policies.alarms if "serving" in (a.metric.expression or ""))
    return alarm


def _first_arrival(scenario: model.Scenario) -> int:
    return min(scenario.arrivals)


def test_model_reads_the_policies_from_the_rendered_template(
    feature: dict[str, Any], rendered: dict[str, Any], new: model.Policies
) -> None:
    group = rendered["Resources"]["WinGroup"]["Properties"]
    assert (new.min_size, new.max_size) == (int(group["MinSize"]), MAX_SIZE)
    assert new.warmup_minutes * 60 == int(group["DefaultInstanceWarmup"])
    (launch,) = (h for h in group["LifecycleHookSpecificationList"] if h["LifecycleTransition"].endswith("LAUNCHING"))
    assert new.launch_hook_minutes * 60 == int(launch["HeartbeatTimeout"])
    tracking = new.policies["WinBacklogPolicy"]
    config = rendered["Resources"]["WinBacklogPolicy"]["Properties"]["TargetTrackingConfiguration"]
    assert tracking.target == float(config["TargetValue"]) == 1.0
    assert tracking.metric is not None and tracking.metric.inputs == {
        "visible": model.VISIBLE,
        "inflight": model.NOT_VISIBLE,
        "serving": model.IN_SERVICE,
    }
    start = _start_alarm(new)
    assert start.actions == ("WinStartPolicy",)
    assert new.policies["WinStartPolicy"].steps == (model.Step(lower=0.0, upper=None, adjustment=1),)
    # A parameter changes what the model runs.
    wider = model.read_policies(render(feature, enabled_parameters(BacklogPerWorker="3")))
    assert wider.policies["WinBacklogPolicy"].target == 3.0


def test_burst_scales_out_to_max_size_within_the_derived_bound(new: model.Policies) -> None:
    run = model.simulate(new, model.BURST)
    arrival = _first_arrival(model.BURST)
    assert max(run.desired) == new.max_size and max(run.in_service) <= new.max_size
    # One start period, one bootstrap, then target tracking's high alarm (the warmup delays nothing here).
    bound = arrival + _start_alarm(new).periods + model.BURST.bootstrap_minutes + model.TT_HIGH_PERIODS
    assert run.desired[bound] == new.max_size, run.desired[arrival : bound + 1]
    assert run.completed == sum(model.BURST.arrivals.values()) and run.interrupted == 0


def test_capacity_follows_the_backlog_not_just_its_presence(feature: dict[str, Any]) -> None:
    few = model.Scenario("few", "3 long jobs", 6 * 60, {10: 3}, job_minutes=120)
    for per_worker in (1, 2, 3):
        policies = model.read_policies(
            render(feature, enabled_parameters(MaxSize=str(MAX_SIZE), BacklogPerWorker=str(per_worker)))
        )
        run = model.simulate(policies, few)
        assert max(run.desired) == math.ceil(3 / per_worker), per_worker


@pytest.mark.parametrize("scenario", model.SCENARIOS, ids=[s.name for s in model.SCENARIOS])
def test_work_arriving_at_an_empty_fleet_starts_a_worker(new: model.Policies, scenario: model.Scenario) -> None:
    run = model.simulate(new, scenario)
    arrival = _first_arrival(scenario)
    assert run.desired[arrival - 1] == 0
    launched = arrival + _start_alarm(new).periods - 1
    assert run.desired[launched] >= 1
    # In service when its bootstrap completes the launch hook, not before.
    assert run.in_service[launched + scenario.bootstrap_minutes - 1] == 0
    assert run.in_service[launched + scenario.bootstrap_minutes] >= 1
    assert run.waits[0] == launched + scenario.bootstrap_minutes - arrival


def test_the_warmup_counts_from_in_service_and_holds_scale_in_back(feature: dict[str, Any]) -> None:
    # A long warmup (the old default's 15 minutes, or more) delays no worker: they serve as soon as
    # the hook lets them. It holds scale-in back for the bootstrap plus the warmup after each launch.
    one = model.Scenario("one", "one 5-minute job", 3 * 60, {10: 1}, job_minutes=5)
    runs = {}
    for seconds in ("0", "900", "3600"):
        policies = model.read_policies(
            render(feature, enabled_parameters(MaxSize=str(MAX_SIZE), InstanceWarmup=seconds))
        )
        run = model.simulate(policies, one)
        launched = next(t for t, d in enumerate(run.desired) if d)
        serving = next(t for t, n in enumerate(run.in_service) if n)
        assert serving - launched == one.bootstrap_minutes, seconds
        stopped = next(t for t in range(launched, one.minutes) if run.desired[t] == 0)
        warm = serving + policies.warmup_minutes
        # Not before the warmup ends; after it, as soon as the low alarm has 15 datapoints since the job.
        assert warm <= stopped <= max(warm, serving + one.job_minutes + model.TT_LOW_PERIODS), seconds
        runs[seconds] = run
    assert runs["0"].instance_hours <= runs["900"].instance_hours < runs["3600"].instance_hours


def test_the_default_warmup_is_not_a_second_boot(feature: dict[str, Any]) -> None:
    # The launch hook covers the boot; the warmup only lets the 1-minute metrics see the worker.
    parameter = feature["Parameters"]["WinInstanceWarmup"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (0, 3600)  # DefaultInstanceWarmup's range
    assert 60 <= int(parameter["Default"]) <= 300 < model.BOOTSTRAP_MINUTES * 60
    rendered = render(feature, enabled_parameters(InstanceWarmup="240"))
    group = rendered["Resources"]["WinGroup"]
    refresh = rendered["Resources"]["WinRefreshFunction"]["Properties"]["Environment"]["Variables"]
    assert group["Properties"]["DefaultInstanceWarmup"] == group["Properties"]["HealthCheckGracePeriod"] == "240"
    assert refresh["INSTANCE_WARMUP"] == "240"  # every refresh's InstanceWarmup (ami_refresh._preferences)


def test_target_tracking_alone_cannot_start_from_zero(rendered: dict[str, Any]) -> None:
    # (visible + inflight) / 0 drops the datapoint, so the policy's alarms have no data.
    only_tracking = {"WinBacklogPolicy": rendered["Resources"]["WinBacklogPolicy"]}
    policies = model.read_policies(model.replace_scaling(rendered, only_tracking))
    run = model.simulate(policies, model.BURST)
    assert max(run.desired) == 0 and run.backlog[-1] == sum(model.BURST.arrivals.values())


@pytest.mark.parametrize("which", ["new", "old"])
def test_an_idle_queue_returns_to_min_size_within_the_derived_bound(
    which: str, new: model.Policies, old: model.Policies
) -> None:
    policies = new if which == "new" else old
    run = model.simulate(policies, model.IDLE)
    idle_from = max(t for t, b in enumerate(run.backlog) if b) + 1
    # New: target tracking's low alarm, one datapoint a minute. Old: the idle alarm, plus its cooldown.
    if which == "new":
        bound = model.TT_LOW_PERIODS
    else:
        idle_alarm = next(a for a in old.alarms if a.comparison.startswith("LessThan"))
        bound = idle_alarm.periods + max(p.cooldown_minutes for p in old.policies.values())
    assert all(d == policies.min_size for d in run.desired[idle_from + bound :]), run.desired[idle_from:]
    assert sum(run.desired[idle_from + bound :]) == 0


def test_a_trickle_does_not_hold_the_high_water_mark_but_the_old_policies_did(
    new: model.Policies, old: model.Policies
) -> None:
    trickle = [t for t, n in model.TRICKLE.arrivals.items() if n == 1]
    window = slice(trickle[0] + 60, trickle[-1])  # after the opening burst has been worked off
    new_run, old_run = model.simulate(new, model.TRICKLE), model.simulate(old, model.TRICKLE)
    # Old: a message every 7 minutes never leaves the queue idle for 15, so nothing scales in.
    assert min(old_run.desired[window]) == max(old_run.desired) > 1
    # New: the fleet follows the trickle, not the burst before it.
    assert max(new_run.desired[window]) < max(new_run.desired)
    held = new_run.desired[window]
    assert sum(held) / len(held) < max(new_run.desired) / 3
    assert new_run.instance_hours < old_run.instance_hours / 2
    assert new_run.completed == old_run.completed == sum(model.TRICKLE.arrivals.values())


def test_counting_in_flight_messages_keeps_busy_workers(rendered: dict[str, Any], new: model.Policies) -> None:
    long_jobs = model.Scenario("long", "20 one-hour jobs", 6 * 60, {10: 20}, job_minutes=60)
    assert model.simulate(new, long_jobs).interrupted == 0
    # Without the in-flight count, jobs that outlast the low alarm look like idleness.
    visible_only = copy.deepcopy(rendered)
    metrics = visible_only["Resources"]["WinBacklogPolicy"]["Properties"]["TargetTrackingConfiguration"][
        "CustomizedMetricSpecification"
    ]["Metrics"]
    next(q for q in metrics if "Expression" in q)["Expression"] = "visible / serving"
    assert model.simulate(model.read_policies(visible_only), long_jobs).interrupted > 0


# --- The model's own rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("(visible + inflight) / serving", {"visible": 3.0, "inflight": 1.0, "serving": 2.0}, 2.0),
        ("(visible + inflight) / serving", {"visible": 3.0, "inflight": 1.0, "serving": 0.0}, None),
        ("(visible + inflight) / serving", {"visible": 3.0, "inflight": None, "serving": 2.0}, 1.5),
        ("(visible + inflight) / serving", {"visible": None, "inflight": None, "serving": None}, None),
        ("IF(serving == 0, visible, 0)", {"visible": 4.0, "serving": None}, 4.0),
        ("IF(serving == 0, visible, 0)", {"visible": 4.0, "serving": 1.0}, 0.0),
        ("IF(queued > 0 AND serving == 0, 1, 0)", {"queued": 2.0, "serving": 0.0}, 1.0),
        ("-a + b * 2 >= 3 || a", {"a": 1.0, "b": 1.0}, 1.0),
    ],
)
def test_metric_math_drops_division_by_zero_and_counts_missing_as_zero(
    expression: str, values: dict[str, float | None], expected: float | None
) -> None:
    series = model.Series({k: ("N", k) for k in values}, expression)
    assert series.value({("N", k): v for k, v in values.items()}) == expected


@pytest.mark.parametrize(
    ("missing", "history", "state"),
    [
        ("breaching", [None, None, None], "ALARM"),
        ("notBreaching", [None, None, 1.0], "OK"),
        ("missing", [None, None, None], "INSUFFICIENT_DATA"),
        ("missing", [0.0, None, 0.0], "ALARM"),
        ("notBreaching", [0.0, 1.0, 0.0], "ALARM"),
        ("notBreaching", [1.0, 1.0, 0.0], "OK"),
    ],
)
def test_alarms_count_m_of_n_with_missing_data_treated_as_configured(
    missing: str, history: list[float | None], state: str
) -> None:
    spec = model.AlarmSpec("a", model.Series({"m": ("N", "m")}), 0.0, "LessThanOrEqualToThreshold", 3, 2, missing, ())
    assert model._alarm_state(spec, model._AlarmState(history=history)) == state


def test_the_model_refuses_what_it_does_not_model(rendered: dict[str, Any]) -> None:
    own_warmup = copy.deepcopy(rendered)
    own_warmup["Resources"]["WinStartPolicy"]["Properties"]["EstimatedInstanceWarmup"] = 60
    with pytest.raises(ValueError, match="WinStartPolicy: EstimatedInstanceWarmup"):
        model.read_policies(own_warmup)
    no_hook = copy.deepcopy(rendered)
    no_hook["Resources"]["WinGroup"]["Properties"].pop("LifecycleHookSpecificationList")
    with pytest.raises(ValueError, match="launch lifecycle hook"):
        model.read_policies(no_hook)
    policies = model.read_policies(rendered)
    slow = dataclasses.replace(model.BURST, bootstrap_minutes=policies.launch_hook_minutes)
    with pytest.raises(ValueError, match="outlasts the launch hook"):
        model.simulate(policies, slow)
    five_minutes = copy.deepcopy(rendered)
    five_minutes["Resources"]["WinStartAlarm"]["Properties"]["Metrics"][0]["MetricStat"]["Period"] = 300
    with pytest.raises(ValueError, match="WinStartAlarm: Period=300"):
        model.read_policies(five_minutes)
    percent = copy.deepcopy(rendered)
    percent["Resources"]["WinStartPolicy"]["Properties"]["AdjustmentType"] = "PercentChangeInCapacity"
    with pytest.raises(ValueError, match="WinStartPolicy: AdjustmentType"):
        model.read_policies(percent)
    with pytest.raises(ValueError, match="cannot read"):
        model.Series({"a": ("N", "a")}, "a % 2").value({("N", "a"): 1.0})


# --- Modes: cold, warm pool, Spot -----------------------------------------------------------------


def _with(rendered: dict[str, Any], group: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    """``rendered`` with the group's properties updated and resources added (hand-written fixtures
    shaped like the warm and spot branches' resources)."""
    out = copy.deepcopy(rendered)
    out["Resources"]["WinGroup"]["Properties"].update(group or {})
    out["Resources"].update(resources)
    return out


WARM_POOL = {
    "Type": "AWS::AutoScaling::WarmPool",
    "Properties": {
        "AutoScalingGroupName": "WinGroup",
        "PoolState": "Stopped",
        "MinSize": 2,
        "MaxGroupPreparedCapacity": 4,
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    },
}
MIXED = {
    "MixedInstancesPolicy": {
        "InstancesDistribution": {
            "OnDemandBaseCapacity": 1,
            "OnDemandPercentageAboveBaseCapacity": 25,
            "SpotAllocationStrategy": "price-capacity-optimized",
        },
        "LaunchTemplate": {"Overrides": [{"InstanceType": "m6i.large"}, {"InstanceType": "m7i.large"}]},
    }
}


def test_the_mode_is_read_from_the_template(rendered: dict[str, Any]) -> None:
    assert model.read_mode(rendered).name == model.COLD
    warm = model.read_mode(_with(rendered, WinWarmPool=WARM_POOL))
    assert (warm.name, warm.pool_min_size, warm.pool_max_prepared, warm.reuse_on_scale_in) == (model.WARM, 2, 4, True)
    spot = model.read_mode(_with(rendered, MIXED))
    assert (spot.name, spot.on_demand_base, spot.on_demand_percentage) == (model.SPOT, 1, 25)
    # 1 base, then 25% of the rest rounded up: 1 + 1 of 4, 1 + 3 of 10.
    assert (spot.on_demand(1), spot.on_demand(4), spot.on_demand(10)) == (1, 2, 4)
    # A mixed policy that is all On-Demand (several types, no Spot) boots and costs as cold.
    all_on_demand = copy.deepcopy(MIXED)
    all_on_demand["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] = 100
    assert model.read_mode(_with(rendered, all_on_demand)).name == model.COLD
    # Without a percentage, AWS's default is 100: On-Demand.
    no_percentage = {"MixedInstancesPolicy": {"InstancesDistribution": {}}}
    assert model.read_mode(_with(rendered, no_percentage)).name == model.COLD


def test_the_model_refuses_the_modes_aws_refuses(rendered: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="mixed"):
        model.read_mode(_with(rendered, MIXED, WinWarmPool=WARM_POOL))
    running = copy.deepcopy(WARM_POOL)
    running["Properties"]["PoolState"] = "Running"
    with pytest.raises(ValueError, match="PoolState='Running'"):
        model.read_mode(_with(rendered, WinWarmPool=running))


def test_a_start_from_the_pool_skips_the_cold_boot(new: model.Policies) -> None:
    warm, cold = model.warm_mode(), model.cold_mode()
    assert warm.pool_start_minutes < warm.boot_minutes == cold.boot_minutes == model.BOOTSTRAP_MINUTES
    for scenario in model.SCENARIOS:
        warm_run, cold_run = model.simulate(new, scenario, warm), model.simulate(new, scenario, cold)
        arrival = _first_arrival(scenario)
        # The start alarm's period, then a start from the pool (Pending:Wait to InService).
        assert warm_run.first_job_minutes == _start_alarm(new).periods - 1 + warm.pool_start_minutes, scenario.name
        assert cold_run.first_job_minutes == _start_alarm(new).periods - 1 + model.BOOTSTRAP_MINUTES, scenario.name
        assert warm_run.in_service[arrival + warm.pool_start_minutes] >= 1
        # The stopped pool pays its volumes; nothing stopped in the cold mode.
        assert warm_run.stopped_minutes > 0 == cold_run.stopped_minutes


def test_the_pool_holds_max_size_minus_desired_or_its_prepared_capacity(new: model.Policies) -> None:
    idle = dataclasses.replace(model.IDLE, arrivals={}, minutes=60)
    default = model.simulate(new, idle, model.warm_mode())
    assert default.stopped_minutes == new.max_size * 60  # MaxGroupPreparedCapacity -1: MaxSize minus 0
    sized = model.simulate(new, idle, model.warm_mode(min_size=1, max_prepared=3))
    assert sized.stopped_minutes == 3 * 60
    # A burst larger than the pool: the pool's instances start warm, the rest boot cold.
    run = model.simulate(new, model.BURST, model.warm_mode(min_size=0, max_prepared=3))
    arrival = _first_arrival(model.BURST)
    assert run.first_job_minutes < model.BOOTSTRAP_MINUTES
    assert max(run.in_service[: arrival + model.BOOTSTRAP_MINUTES]) <= 3


def test_a_spot_interruption_releases_the_work_at_once(new: model.Policies) -> None:
    # A rate far above any band, so that interruptions happen within a day: each one costs the
    # job its worker, not the visibility timeout, and the group launches a replacement.
    often = model.spot_mode(interruptions_per_month=100.0)
    run = model.simulate(new, model.BURST, often)
    assert run.spot_interruptions > 0 and run.released > 0
    assert run.completed == sum(model.BURST.arrivals.values())
    calm = model.simulate(new, model.BURST, model.spot_mode(interruptions_per_month=0.0))
    # A released job waits at most a few minutes longer, never the 30-minute visibility timeout per release.
    assert max(run.waits) - max(calm.waits) < model.VISIBILITY_TIMEOUT_MINUTES
    # The published band's worst edge: a day's instance-hours expect well under one interruption.
    assert model.simulate(new, model.BURST, model.spot_mode()).spot_interruptions == 0
    # All Spot costs the Spot price for every running minute; the cold mode the On-Demand one.
    assert calm.on_demand_minutes == 0 and calm.spot_minutes == sum(calm.desired)
    cold = model.simulate(new, model.BURST)
    assert cold.spot_minutes == 0 and cold.on_demand_minutes == sum(cold.desired)
    assert calm.cost() / cold.cost() == pytest.approx(model.PRICES.spot / model.PRICES.on_demand)


def test_measured_boot_phases_replace_the_estimates(new: model.Policies) -> None:
    # An operator's figures, by the names of the fleet's boot metrics (bootstrap.BOOT_PHASES).
    from winworkers.bootstrap import BOOT_PHASES

    metric_names = {name for name, _, _ in BOOT_PHASES}
    assert {p.name for p in model.COLD_PHASES} == metric_names - {"BootTotal"}
    measured = model.cold_mode({"BootToUserData": 9, "BootAgent": 1})
    assert measured.boot_minutes == model.BOOTSTRAP_MINUTES + 4 - 2
    run = model.simulate(new, model.IDLE, measured)
    assert run.first_job_minutes == _start_alarm(new).periods - 1 + measured.boot_minutes
    warm = model.warm_mode(phases={"PoolBootToUserData": 3})
    assert warm.pool_start_minutes == 4 and warm.boot_minutes == model.BOOTSTRAP_MINUTES
    with pytest.raises(ValueError, match="negative"):
        model.cold_mode({"BootHook": -1})
