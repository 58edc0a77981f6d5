"""Every job measured: the workers' per-job records, the queue-wait alarm and the dashboard.

A worker writes one record per job to its log file, in CloudWatch's embedded metric
format (docs/worker-contract.md, "Job records"; the sample worker does): the agent ships
the file to the worker log group as it ships every log line, and CloudWatch Logs turns
the record into metrics in the feature's namespace, with the group's name as dimension
(register rows 220, 221). No agent listener, no port, no new permission: the
instance role already writes to that log group. The stack alarms on the P95 of the
time jobs waited in the queue (QueueWaitAlarmSeconds, to AlarmTopicArn) and draws one
dashboard of the backlog, the workers by state, the boot phases, the queue wait and
the jobs' outcomes (register row 222).
"""

from __future__ import annotations

import json
from typing import Any

from troposphere import If, NoValue, Ref, Sub, Template
from troposphere.cloudwatch import Alarm, Dashboard, Metric, MetricDataQuery, MetricDimension, MetricStat

from winworkers.bootstrap import BOOT_PHASES, POOL_START_METRIC, group_name
from winworkers.compute import GROUP_METRICS
from winworkers.parameters import Params

QUEUE_WAIT = "QueueWaitMilliseconds"
"""From the message's SentTimestamp to its job's start. Every figure is in milliseconds,
SentTimestamp's unit, so that a worker writes differences of two clock readings, no division."""
FIRST_JOB = "LaunchToFirstJobMilliseconds"
"""From the worker's start (its boot: a pooled worker's start from the pool) to its first job;
a metric in the first job's record only, a property in every record."""
JOB_DURATION = "JobMilliseconds"
"""From the job's start to its end, whatever its outcome."""
JOBS = "Jobs"
"""1 per record, by Outcome."""
OUTCOMES = ("succeeded", "failed", "given-up")
"""A job's outcome: done and deleted; failed and released; stopped and released (a drain or a
Spot signal that it could not outlast)."""
FIGURES = (QUEUE_WAIT, FIRST_JOB, JOB_DURATION)
QUEUE_WAIT_PERIOD = 300
QUEUE_WAIT_PERIODS = 3
QUEUE_WAIT_BREACHING = 2
"""M of N: a record exists only for a job that ended, so sparse traffic (a job ending every
10 minutes) leaves every other period empty, and an empty period is good (notBreaching): N
of N would never page it. 2 of 3 pages a slow job in every other period, not one slow job
alone (AWS recommends M of N for embedded metrics; register row 239)."""


def add_queue_wait_alarm(template: Template, p: Params) -> Alarm:
    """Pages when the P95 of jobs' time in the queue is above QueueWaitAlarmSeconds in
    QUEUE_WAIT_BREACHING of QUEUE_WAIT_PERIODS periods; no job, no data, no page. The records count milliseconds: the
    alarm compares their P95 in seconds (metric math), so the parameter reads as it pages."""
    waited = MetricDataQuery(
        Id="waited",
        ReturnData=False,
        MetricStat=MetricStat(
            Metric=Metric(
                Namespace=p.config.metrics_namespace,
                MetricName=QUEUE_WAIT,
                Dimensions=[MetricDimension(Name="AutoScalingGroupName", Value=Sub(group_name(p.config)))],
            ),
            Period=QUEUE_WAIT_PERIOD,
            Stat="p95",
        ),
    )
    return template.add_resource(
        Alarm(
            p.config.logical_id("QueueWaitAlarm"),
            AlarmDescription="Jobs wait too long in the queue before a worker starts them (P95)",
            AlarmActions=If(p.cond("HasAlarmTopic"), [p["AlarmTopicArn"]], NoValue),
            Metrics=[waited, MetricDataQuery(Id="seconds", Expression="waited / 1000", ReturnData=True)],
            EvaluationPeriods=QUEUE_WAIT_PERIODS,
            DatapointsToAlarm=QUEUE_WAIT_BREACHING,
            Threshold=p["QueueWaitAlarmSeconds"],
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    )


def dashboard_body(namespace: str, group_name_sub: str) -> str:
    """The dashboard's JSON for Fn::Sub: ${AWS::Region}, the group's name (a Sub string of
    pseudo parameters), ${Queue} and ${Wake}. Fn::Sub's variables may not be Fn::Sub
    themselves, so the group's name is in the body (template reference, Fn::Sub)."""
    group = ["AutoScalingGroupName", group_name_sub]

    def ours(name: str, stat: str = "p50", **extra: Any) -> list[Any]:
        return [namespace, name, *group, {"stat": stat, **extra}]

    def widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str = "Maximum") -> dict[str, Any]:
        properties = {"title": title, "region": "${AWS::Region}", "view": "timeSeries", "stat": stat, "period": 60}
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {**properties, "metrics": metrics},
        }

    queue = ["QueueName", "${Queue}"]
    widgets = [
        widget(
            "Backlog",
            [
                ["AWS/SQS", m, *queue]
                for m in ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible")
            ]
            + [["AWS/SQS", "ApproximateAgeOfOldestMessage", *queue, {"yAxis": "right"}]],
            0,
            0,
        ),
        widget("Workers by state", [["AWS/AutoScaling", m, *group] for m in GROUP_METRICS], 12, 0),
        widget("Boot phases, seconds (P50)", [ours(n) for n, _, _ in BOOT_PHASES] + [ours(POOL_START_METRIC)], 0, 6),
        widget(
            "Queue wait and jobs, milliseconds",
            [ours(QUEUE_WAIT), ours(QUEUE_WAIT, "p95"), ours(FIRST_JOB), ours(JOB_DURATION), ours(JOB_DURATION, "p95")],
            12,
            6,
        ),
        widget("Job outcomes", [[namespace, JOBS, *group, "Outcome", o] for o in OUTCOMES], 0, 12, "Sum"),
        widget(
            "Wake calls",
            [["AWS/Lambda", m, "FunctionName", "${Wake}"] for m in ("Invocations", "Errors", "Throttles")],
            12,
            12,
            "Sum",
        ),
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def add_dashboard(template: Template, p: Params, wake: Any) -> Dashboard:
    """One page for an operator. Its name is CloudFormation's (generated): two stacks never clash."""
    return template.add_resource(
        Dashboard(
            p.config.logical_id("Dashboard"),
            DashboardBody=Sub(
                dashboard_body(p.config.metrics_namespace, group_name(p.config)),
                Queue=p.queue_name,
                Wake=Ref(wake),
            ),
        )
    )
