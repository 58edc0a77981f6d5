"""The dashboard (winworkers.jobs): its body, as CloudFormation renders it in every mode, is a
dashboard body CloudWatch reads (CloudWatch API reference, "Dashboard Body Structure and
Syntax"; register row 222), and it draws what the fleet publishes under the names the
fleet publishes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Rendered, props, render
from winworkers.bootstrap import BOOT_PHASES, POOL_START_METRIC
from winworkers.compute import GROUP_METRICS
from winworkers.jobs import FIGURES, JOBS, OUTCOMES
from winworkers.renderings import MODES, enabled_parameters

EXTRA_MODES = {"warm pool": {"WarmPool": "stopped"}, "spot": {"OnDemandPercentage": "0"}}


def _cases() -> list[tuple[str, dict[str, str]]]:
    return [(m, {}) for m in sorted(MODES)] + [("isolated-2az", v) for v in EXTRA_MODES.values()]


def _body(rendered: Rendered) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(props(rendered, "WinDashboard")["DashboardBody"])
    return body


def _metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [m for w in body["widgets"] for m in w["properties"]["metrics"]]


@pytest.mark.parametrize(("mode", "extra"), _cases(), ids=[f"{m}-{'-'.join(e) or 'plain'}" for m, e in _cases()])
def test_the_dashboard_renders_in_every_mode(feature: dict[str, Any], mode: str, extra: dict[str, str]) -> None:
    rendered = render(feature, enabled_parameters(mode=mode, **extra))
    text = props(rendered, "WinDashboard")["DashboardBody"]
    assert "${" not in text  # every Fn::Sub variable resolved
    body = _body(rendered)
    assert 1 <= len(body["widgets"]) <= 500
    group = props(rendered, "WinWakeFunction")["Environment"]["Variables"]["GROUP_NAME"]
    for widget in body["widgets"]:
        assert widget["type"] == "metric" and widget["x"] + widget["width"] <= 24
        properties = widget["properties"]
        assert properties["region"] == "us-east-1" and properties["title"]
        for metric in properties["metrics"]:
            options = metric[-1] if isinstance(metric[-1], dict) else {}
            names = metric[: len(metric) - (1 if options else 0)]
            assert len(names) % 2 == 0 and all(isinstance(n, str) and n for n in names), metric
            dimensions = dict(zip(names[2::2], names[3::2], strict=True))
            if "AutoScalingGroupName" in dimensions:
                assert dimensions["AutoScalingGroupName"] == group
            if "QueueName" in dimensions:
                assert dimensions["QueueName"] == "example-platform-work"
            if "FunctionName" in dimensions:
                assert dimensions["FunctionName"] == "WinWakeFunction"  # cloud-radar's Ref of a function


def test_it_draws_backlog_workers_boot_phases_queue_wait_and_outcomes(enabled: Rendered) -> None:
    drawn = {(m[0], m[1]) for m in _metrics(_body(enabled))}
    namespace = next(m[0] for m in _metrics(_body(enabled)) if m[1] == JOBS)
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateNumberOfMessagesNotVisible"),
    } <= drawn
    assert {("AWS/AutoScaling", m) for m in GROUP_METRICS} <= drawn
    assert {(namespace, name) for name, _, _ in BOOT_PHASES} | {(namespace, POOL_START_METRIC)} <= drawn
    assert {(namespace, f) for f in FIGURES} <= drawn
    outcomes = [m[5] for m in _metrics(_body(enabled)) if m[1] == JOBS]
    assert outcomes == list(OUTCOMES)


def test_the_group_publishes_every_metric_the_dashboard_draws(enabled: Rendered) -> None:
    collected = props(enabled, "WinGroup")["MetricsCollection"][0]
    assert collected["Granularity"] == "1Minute" and set(collected["Metrics"]) == set(GROUP_METRICS)


def test_without_the_alarms_the_dashboard_and_the_wake_stay_and_the_queue_wait_alarm_goes() -> None:
    from winworkers import WorkersConfig, build_template

    template = json.loads(build_template(WorkersConfig(include_alarms=False)).to_json())
    assert "WinQueueWaitAlarm" not in template["Resources"] and "WinQueueWaitAlarmSeconds" not in template["Parameters"]
    assert {"WinDashboard", "WinWakeFunction", "WinWakeSchedule"} <= set(template["Resources"])
    assert "WinWakeEveryMinute" in template["Parameters"]
