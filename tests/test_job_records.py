"""The sample worker's job records (examples/sample-worker/worker.ps1, docs/worker-contract.md,
"Job records"): one embedded-metric-format line per job in jobs.log, with the four figures,
for a job that succeeds, one that fails and one given up on a Spot signal; each record is
valid embedded metric format and names what the stack alarms and draws (winworkers.jobs).

The worker runs on the fake instance of tests/test_sample_worker.py (its interpreter and
clock: tick 0 is EPOCH_MS, the instance launched 60 s before it).
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from test_sample_worker import (
    AGENT_CONFIG,
    EPOCH_MS,
    NAMESPACE,
    TICK,
    Instance,
    _run,
    _run_until_reclaimed,
    _worker,
    settings,  # noqa: F401  (the fixture)
    violations,
)

from conftest import props
from winworkers.cwagent import CONFIG_PATH
from winworkers.jobs import FIGURES, FIRST_JOB, JOB_DURATION, JOBS, OUTCOMES, QUEUE_WAIT

LAUNCH_MS = EPOCH_MS - 60_000


def _emf_problems(record: dict[str, Any]) -> list[str]:
    """What makes record not embedded metric format (CloudWatch's specification, register row 220)."""
    problems = []
    meta = record.get("_aws", {})
    if not isinstance(meta.get("Timestamp"), int):
        problems.append("_aws.Timestamp is not a number of milliseconds")
    for directive in meta.get("CloudWatchMetrics", []):
        if not isinstance(directive.get("Namespace"), str):
            problems.append("a directive has no Namespace")
        for dimensions in directive.get("Dimensions", []):
            problems += [
                f"dimension {d} is not a string member" for d in dimensions if not isinstance(record.get(d), str)
            ]
        for metric in directive.get("Metrics", []):
            if not isinstance(record.get(metric["Name"]), int | float):
                problems.append(f"metric {metric['Name']} is not a number member of the root")
    if not meta.get("CloudWatchMetrics"):
        problems.append("no CloudWatchMetrics")
    return problems


def _metrics(record: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Metric name -> its dimension set, as the record declares them."""
    return {m["Name"]: tuple(d["Dimensions"][0]) for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def _check(instance: Instance, settings: dict[str, Any]) -> None:  # noqa: F811
    started = [call[1] for call in instance.calls if call[0] == "start"]
    assert [r["MessageId"] for r in instance.records] == started, "one record per job, in order"
    for record in instance.records:
        assert _emf_problems(record) == []
        assert all(isinstance(record[f], int) and record[f] >= 0 for f in FIGURES), record
        assert record[JOBS] == 1 and record["Outcome"] in OUTCOMES
        assert record["AutoScalingGroupName"] == settings["lifecycle"]["group_name"]
        assert {d["Namespace"] for d in record["_aws"]["CloudWatchMetrics"]} == {NAMESPACE}
        declared = _metrics(record)
        assert declared[QUEUE_WAIT] == declared[JOB_DURATION] == ("AutoScalingGroupName",)
        assert declared[JOBS] == ("AutoScalingGroupName", "Outcome")
    # The launch-to-first-job figure is a metric once per worker: in its first record.
    assert [FIRST_JOB in _metrics(r) for r in instance.records] == [i == 0 for i in range(len(instance.records))]


def test_a_successful_job_is_one_record_with_the_four_figures(settings: dict[str, Any]) -> None:  # noqa: F811
    instance = Instance(settings, [{"id": "A", "ticks": 3, "sent": EPOCH_MS - 42_000}], terminate_at=12)
    assert _run(_worker(), instance) == 0
    (record,) = instance.records
    assert record["Outcome"] == "succeeded" and ("delete", "A") in instance.calls
    # Started at tick 0 (the first receive returned it at once): 42 s in the queue, 60 s after launch.
    assert record[QUEUE_WAIT] == 42_000 and record[FIRST_JOB] == 60_000
    assert record[JOB_DURATION] == 3 * TICK * 1000  # three ticks of Wait-Job
    assert record["_aws"]["Timestamp"] == EPOCH_MS + record[JOB_DURATION]
    _check(instance, settings)
    assert violations(instance) == []


def test_a_failed_job_is_one_record_failed(settings: dict[str, Any]) -> None:  # noqa: F811
    instance = Instance(
        settings,
        [{"id": "A", "ticks": 2, "fails": True}, {"id": "B", "ticks": 1, "sent": EPOCH_MS - 5_000}],
        terminate_at=20,
    )
    assert _run(_worker(), instance) == 0
    assert [(r["MessageId"], r["Outcome"]) for r in instance.records] == [("A", "failed"), ("B", "succeeded")]
    assert instance.records[1][FIRST_JOB] == instance.records[0][FIRST_JOB]  # a property in every record
    assert instance.records[1][QUEUE_WAIT] == 5_000 + 2 * TICK * 1000  # B waited while A ran
    _check(instance, settings)


def test_a_job_given_up_on_a_spot_notice_is_one_record_given_up(settings: dict[str, Any]) -> None:  # noqa: F811
    instance = Instance(settings, [{"id": "A", "ticks": 100}], interruption_at=3)
    assert _run_until_reclaimed(_worker(), instance) is None
    (record,) = instance.records
    assert record["Outcome"] == "given-up" and ("visibility", "A", 0) in instance.calls
    assert record[JOB_DURATION] < 120_000  # given up within the notice's two minutes
    _check(instance, settings)


def test_a_rebalance_recommendation_takes_no_new_job_and_records_the_one_running(
    settings: dict[str, Any],  # noqa: F811
) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 4}, {"id": "B", "ticks": 1}], rebalance_at=2, terminate_at=30)
    assert _run(_worker(), instance) == 0
    assert [(r["MessageId"], r["Outcome"]) for r in instance.records] == [("A", "succeeded")]
    assert ("start", "B") not in instance.calls and instance.late == []
    _check(instance, settings)


def test_the_records_go_where_the_agent_ships_the_worker_s_logs(settings: dict[str, Any]) -> None:  # noqa: F811
    source = _worker()
    assert "$JobLog = Join-Path $LogDir 'jobs.log'" in source
    directory = settings["log_paths"][0].rsplit("\\", 1)[0]
    assert any(fnmatch.fnmatch(directory + "\\jobs.log", pattern) for pattern in settings["log_paths"])


def test_the_stack_alarms_on_the_records_p95_in_seconds(enabled: dict[str, Any]) -> None:
    alarm = props(enabled, "WinQueueWaitAlarm")
    waited, seconds = alarm["Metrics"]
    stat = waited["MetricStat"]
    assert (stat["Metric"]["MetricName"], stat["Stat"]) == (QUEUE_WAIT, "p95")
    init = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    # The fake instance's agent config is the one cfn-init writes: the records' namespace is the alarm's.
    assert AGENT_CONFIG == CONFIG_PATH
    assert stat["Metric"]["Namespace"] == init["agent"]["files"][CONFIG_PATH]["content"]["metrics"]["namespace"]
    assert stat["Metric"]["Namespace"] == NAMESPACE
    group = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}["AutoScalingGroupName"]
    assert group == init["service"]["files"]["C:\\winworkers\\worker.json"]["content"]["lifecycle"]["group_name"]
    assert seconds["Expression"] == "waited / 1000" and alarm["Threshold"] == "1200"
    assert "AlarmActions" not in alarm  # no AlarmTopicArn given: nobody to notify (HasAlarmTopic)


@pytest.mark.parametrize("defect", ["no record on failure", "records on a given-up job as succeeded"])
def test_the_checks_catch_a_worker_that_breaks_the_record_contract(settings: dict[str, Any], defect: str) -> None:  # noqa: F811
    source = _worker()
    if defect == "no record on failure":
        source = source.replace("Write-JobRecord $message $started 'failed' $first $firstStarted", "Write-Log 'none'")
        source = source.replace(
            "    Set-Visibility $message 0\n    return 'failed'", "    Set-Visibility $message 0\n    throw 'failed'"
        )
        assert "Write-Log 'none'" in source and "throw 'failed'" in source
        instance = Instance(settings, [{"id": "A", "ticks": 1, "fails": True}], terminate_at=10)
        _run(source, instance)
        with pytest.raises(AssertionError, match="one record per job"):
            _check(instance, settings)
    else:
        source = source.replace("return 'given-up'", "return 'succeeded'")
        instance = Instance(settings, [{"id": "A", "ticks": 100}], interruption_at=3)
        _run_until_reclaimed(source, instance)
        assert instance.records[0]["Outcome"] == "succeeded"  # the test above would fail: it asks given-up
