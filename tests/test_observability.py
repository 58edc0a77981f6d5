"""The operators' alarms, on the rendered template: NoWorkersAlarm must not page on a cold start,
the boot alarm reads what the workers publish, the disk alarm the workers' C: drives."""

from __future__ import annotations

from typing import Any

from conftest import ROOT, as_dict, props, render, user_data_script
from winworkers import WorkersConfig, build_template
from winworkers.bootstrap import BOOT_TIMEOUT_SECONDS, BOOT_TIMES, BOOT_TOTAL_METRIC
from winworkers.renderings import enabled_parameters


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


def test_slow_boots_page_on_the_timing_the_workers_publish(feature: dict[str, Any], enabled: dict[str, Any]) -> None:
    alarm = props(enabled, "WinSlowBootAlarm")
    script = user_data_script(enabled)
    # The series the UserData writes (tests/test_lifecycle.py runs it): namespace, name, group.
    assert f"-Namespace '{alarm['Namespace']}'" in script and alarm["Namespace"] == WorkersConfig().metrics_namespace
    assert (
        alarm["MetricName"] == BOOT_TOTAL_METRIC
        and f"(D {BOOT_TOTAL_METRIC} {BOOT_TIMES['launch']} {BOOT_TIMES['hook']})" in script
    )
    # The group's Ref is its name, which the UserData writes as the dimension's value.
    dimensions = feature["Resources"]["WinSlowBootAlarm"]["Properties"]["Dimensions"]
    assert dimensions == [{"Name": "AutoScalingGroupName", "Value": {"Ref": "WinGroup"}}]
    assert f"Value='{props(enabled, 'WinGroup')['AutoScalingGroupName']}'" in script
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
        "Maximum",
        "GreaterThanThreshold",
        "notBreaching",
    )
    assert alarm["Threshold"] == "1500"
    parameter = feature["Parameters"]["WinBootAlarmSeconds"]
    # A boot slower than the launch hook's timeout is abandoned and publishes nothing.
    assert (parameter["MinValue"], parameter["MaxValue"]) == (300, BOOT_TIMEOUT_SECONDS)
    rendered = render(feature, enabled_parameters(BootAlarmSeconds="900"))
    assert props(rendered, "WinSlowBootAlarm")["Threshold"] == "900"


def test_the_instance_role_may_publish_the_timings(enabled: dict[str, Any]) -> None:
    statements = [s for p in props(enabled, "WinInstanceRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (put,) = [s for s in statements if s["Action"] == ["cloudwatch:PutMetricData"]]
    namespace = put["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert f"-Namespace '{namespace}'" in user_data_script(enabled)


def test_no_alarms_means_no_boot_alarm_and_no_threshold() -> None:
    template = as_dict(build_template(WorkersConfig(include_alarms=False)))
    assert "WinSlowBootAlarm" not in template["Resources"] and "WinBootAlarmSeconds" not in template["Parameters"]


def test_the_disk_alarm_compares_the_fleets_fullest_c_drive(enabled: dict[str, Any]) -> None:
    alarm = props(enabled, "WinDiskFreeAlarm")
    init = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    (agent,) = [f["content"] for f in init["agent"]["files"].values()]
    metrics = agent["metrics"]
    # The agent rolls C: (only) up by group name; the alarm reads that series' Minimum.
    assert metrics["metrics_collected"]["LogicalDisk"]["resources"] == ["C:"]
    assert metrics["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert [d["Name"] for d in alarm["Dimensions"]] == ["AutoScalingGroupName"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["ComparisonOperator"]) == (
        "LogicalDisk % Free Space",
        "Minimum",
        "LessThanThreshold",
    )


def _scaling_alarms(feature: dict[str, Any]) -> set[str]:
    """Alarms whose action is one of the template's scaling policies (they start workers, not page)."""
    policies = {n for n, r in feature["Resources"].items() if r["Type"] == "AWS::AutoScaling::ScalingPolicy"}
    return {
        name
        for name, r in feature["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and any(
            action.get("Ref") in policies
            for action in r["Properties"].get("AlarmActions") or []
            if isinstance(action, dict)
        )
    }


def test_every_paging_alarm_goes_to_the_alarm_topic_and_only_when_it_is_set(feature: dict[str, Any]) -> None:
    # README "Observable": alarms go to AlarmTopicArn. Every alarm that does not drive a scaling
    # policy pages the operators, in every mode where it exists, and none has an action without a topic.
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    scaling = _scaling_alarms(feature)
    assert scaling == {"WinStartAlarm"}
    paging = {n for n, r in feature["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"} - scaling
    assert {"WinNoWorkersAlarm", "WinDiskFreeAlarm", "WinSlowBootAlarm", "WinRefreshErrorsAlarm"} <= paging
    assert {"WinRefreshFailedAlarm", "WinDnsBlockedAlarm"} <= paging
    with_topic = render(feature, enabled_parameters(AlarmTopicArn=topic))
    without = render(feature, enabled_parameters())
    for name in paging:
        assert with_topic["Resources"][name]["Properties"]["AlarmActions"] == [topic], name
        assert "AlarmActions" not in without["Resources"][name]["Properties"], name


def test_the_refresh_alarms_page_on_the_first_error_or_failed_refresh(enabled: dict[str, Any]) -> None:
    # docs/lifecycle.md: a failed instance refresh and a failing refresh Lambda both page.
    errors, failed = props(enabled, "WinRefreshErrorsAlarm"), props(enabled, "WinRefreshFailedAlarm")
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert (failed["Namespace"], failed["MetricName"], failed["Statistic"]) == ("AWS/Events", "TriggeredRules", "Sum")
    for alarm in (errors, failed):
        assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
            0,
            "GreaterThanThreshold",
            1,
        )


def test_every_log_group_is_retained_and_takes_the_customer_key_when_set(feature: dict[str, Any]) -> None:
    # README "Security model": log groups encrypted with the optional customer key; a delete (or
    # the feature turned off) keeps every one of them (docs/operations.md "Cleanup").
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    groups = {n for n, r in feature["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert {"WinWorkerLogs", "WinHostLogs", "WinRefreshLogs", "WinFlowLogs", "WinDnsQueryLogs"} <= groups
    with_key = render(feature, enabled_parameters(KmsKeyArn=key))
    without = render(feature, enabled_parameters())
    for name in groups:
        resource = feature["Resources"][name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name
        assert with_key["Resources"][name]["Properties"]["KmsKeyId"] == key, name
        assert "KmsKeyId" not in without["Resources"][name]["Properties"], name


def _minutes_stated(page: str, pattern: str) -> int:
    import re

    found = re.search(pattern, " ".join((ROOT / page).read_text(encoding="utf-8").split()))
    assert found, (page, pattern)
    return int(found.group(1))


def test_the_documented_alarm_delays_are_the_rendered_ones(enabled: dict[str, Any]) -> None:
    # docs/lifecycle.md: NoWorkersAlarm "waits 55 minutes"; docs/network.md: DnsBlockedAlarm
    # notifies "within 5 minutes". Both figures are the alarms' evaluation windows.
    _, window = _window(props(enabled, "WinNoWorkersAlarm"))
    assert window == 60 * _minutes_stated(
        "docs/lifecycle.md", r"`NoWorkersAlarm` \(work queued, no worker in service\) waits (\d+) minutes"
    )
    dns = props(enabled, "WinDnsBlockedAlarm")
    stated = _minutes_stated("docs/network.md", r"`DnsBlockedAlarm` notifies `AlarmTopicArn` within (\d+) minutes")
    assert int(dns["Period"]) * int(dns["EvaluationPeriods"]) == 60 * stated
