"""The operators' alarms, on the rendered template: NoWorkersAlarm must not page on a cold start."""

from __future__ import annotations

from typing import Any

from conftest import props


def _window(alarm: dict[str, Any]) -> tuple[int, int]:
    """The alarm's period (every input's) and its evaluation window, in seconds."""
    periods = {int(q["MetricStat"]["Period"]) for q in alarm["Metrics"] if "MetricStat" in q}
    assert len(periods) == 1, periods
    (period,) = periods
    return period, int(alarm["EvaluationPeriods"]) * period


def test_no_workers_waits_out_a_whole_bootstrap_before_paging(enabled: dict[str, Any]) -> None:
    # The launch hook holds a new worker out of service until its bootstrap completes it, up to
    # the hook's HeartbeatTimeout: from zero, work is queued with no worker in service all that time.
    alarm = props(enabled, "WinNoWorkersAlarm")
    (launch,) = (
        h
        for h in props(enabled, "WinGroup")["LifecycleHookSpecificationList"]
        if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    )
    period, window = _window(alarm)
    # A period at each end: the start alarm and the launch before the hook, and the partial
    # period in which the worker comes into service (its Minimum is still 0).
    assert window - 2 * period >= int(launch["HeartbeatTimeout"])
    # Every evaluated period must breach: one in service ends it.
    assert int(alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"])) == int(alarm["EvaluationPeriods"])
    # CloudWatch: EvaluationPeriods x Period at most one day for periods under an hour (PutMetricAlarm).
    assert window <= 86400
    stuck = next(q for q in alarm["Metrics"] if q.get("ReturnData"))
    assert stuck["Expression"] == "IF(queued > 0 AND serving == 0, 1, 0)"
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        0,
        "GreaterThanThreshold",
        "notBreaching",
    )
