"""The wake: the first worker starts on the message, not on a metric.

Today's start from idle waits for CloudWatch: SQS publishes its queue metrics once a
minute and only while the queue is active, CloudWatch ingests them, and the start alarm
evaluates a one-minute period (register rows 53, 215 to 217). The wake function
(winworkers.wake_handler, embedded verbatim) reads the backlog itself with
GetQueueAttributes and raises the group's desired capacity to what it needs, within
MaxSize. Two ways in:

- the platform invokes it right after it enqueues (the WakeFunctionArn output; add_to's
  Feature.wake_function, nested_stack's output("WakeFunctionArn")), asynchronously and
  once per batch, not once per message: each call reads the whole backlog;
- an EventBridge schedule, rate(1 minute), while WakeEveryMinute is true (the default),
  so that a platform that never calls it still starts its first worker within about a
  minute (register row 219).

It only raises. Target tracking (BacklogPolicy) keeps scaling both ways on the same
formula, so the two agree on what the backlog needs: a manual SetDesiredCapacity is not
undone by target tracking, which acts again only when its own alarms fire (register row
218); the start alarm's +1 may still add one worker a few minutes later when it
finds none in service yet, which target tracking then removes. The function runs outside
the VPC in both network modes (it calls SQS and Auto Scaling, never the workers), and its
role may read this queue's attributes and set this group's capacity, nothing else; its ARN
is an output (WakeRoleArn) for the policy of a queue in another account.

A failed call is not retried by Lambda and goes to no dead-letter queue (WakeRetries: the
schedule calls again within a minute, and 1,440 failures a day would bury the refresh's
dead letters); WakeErrorsAlarm pages AlarmTopicArn instead (register row 240).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from awacs import autoscaling, sqs
from awacs.aws import Allow, Statement
from troposphere import And, Condition, Equals, GetAtt, If, NoValue, Output, Ref, Select, Split, Sub, Template
from troposphere.awslambda import EventInvokeConfig, Function, Permission
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.events import Rule, Target
from troposphere.iam import Role

from winworkers import iam
from winworkers.bootstrap import group_arn, group_name
from winworkers.functions import add_function
from winworkers.observability import WorkerLogs, grant_write
from winworkers.parameters import Params
from winworkers.suppress import skip_cfn_lint, skip_checkov

SOURCE = Path(__file__).with_name("wake_handler.py")
SCHEDULE = "rate(1 minute)"
EVERY_MINUTE = "WakeEveryMinute"
OUTPUT = "WakeFunctionArn"
ROLE_OUTPUT = "WakeRoleArn"
ERRORS_PERIOD = 300
"""The errors alarm's period: a wake that fails every call pages within about 5 minutes."""


@dataclass(frozen=True)
class Wake:
    """Handles: the wake function (the platform invokes it) and its one-minute rule
    (Condition: WakeEveryMinute)."""

    function: Function
    schedule: Rule
    role: Role


def queue_url(p: Params) -> Sub:
    """The work queue's URL, from WorkQueueArn (arn:partition:sqs:region:account:name)."""
    arn = Split(":", p["WorkQueueArn"])
    return Sub(
        "https://sqs.${Region}.${AWS::URLSuffix}/${Account}/${Name}",
        Region=Select(3, arn),
        Account=p.queue_account,
        Name=p.queue_name,
    )


def wake_statements(p: Params) -> list[Statement]:
    """Read this queue's counts; set this group's capacity. Describe calls take no resource."""
    return [
        Statement(Effect=Allow, Action=[sqs.GetQueueAttributes], Resource=[Sub("${Arn}", Arn=p["WorkQueueArn"])]),
        Statement(Effect=Allow, Action=[autoscaling.DescribeAutoScalingGroups], Resource=["*"]),
        Statement(Effect=Allow, Action=[autoscaling.SetDesiredCapacity], Resource=[group_arn(p.config)]),
    ]


def add_wake(template: Template, p: Params, logs: WorkerLogs) -> Wake:
    lid = p.config.logical_id
    template.add_condition(p.cond(EVERY_MINUTE), And(Condition(p.enabled), Equals(p[EVERY_MINUTE], "true")))
    role = iam.add_role(
        template, p, "WakeRole", "lambda.amazonaws.com", [*wake_statements(p), grant_write((logs.host,))]
    )
    # As the instance role's (iam.add_instance_profile): the queue ARN is the same input.
    skip_cfn_lint(role, "W1031", "Platform inputs are empty while disabled; a Rule requires them when on")
    function = add_function(
        template,
        lid("WakeFunction"),
        description="Raises the Windows workers' desired capacity to what the queue's backlog needs",
        source=SOURCE,
        role=role,
        # The group's fixed name: the function needs no Ref to it, as the instance role.
        variables={
            "QUEUE_URL": queue_url(p),
            "GROUP_NAME": Sub(group_name(p.config)),
            "BACKLOG_PER_WORKER": p["BacklogPerWorker"],
        },
        logs=logs.host,
        dead_letters=None,
        # One SQS call and three Auto Scaling calls (a read, a read again, a set), with retries.
        timeout=30,
        outside_the_vpc="Not in the VPC on purpose: it calls SQS and Auto Scaling, "
        "which the isolated VPC cannot reach, and it never talks to the workers",
        unreserved="Reserving concurrency fails in low-quota accounts; a call only ever raises capacity",
    )
    skip_checkov(function, "CKV_AWS_116", "A failed wake is not kept: the schedule calls again; WakeErrorsAlarm pages")
    # No retry: a retry lands after the schedule's next call, and a failure is discarded, not dead-lettered.
    template.add_resource(
        EventInvokeConfig(lid("WakeRetries"), FunctionName=Ref(function), Qualifier="$LATEST", MaximumRetryAttempts=0)
    )
    schedule = template.add_resource(
        Rule(
            lid("WakeSchedule"),
            Condition=p.cond(EVERY_MINUTE),
            Description="Every minute: wake the Windows workers if work is queued",
            ScheduleExpression=SCHEDULE,
            Targets=[Target(Id="wake", Arn=GetAtt(function, "Arn"))],
        )
    )
    template.add_resource(
        Permission(
            lid("WakeInvoke"),
            Condition=p.cond(EVERY_MINUTE),
            Action="lambda:InvokeFunction",
            FunctionName=Ref(function),
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(schedule, "Arn"),
        )
    )
    template.add_output(Output(lid(OUTPUT), Value=GetAtt(function, "Arn"), Description="Wake Lambda ARN"))
    # A queue in another account must allow this role in its queue policy.
    template.add_output(Output(lid(ROLE_OUTPUT), Value=GetAtt(role, "Arn"), Description="Wake role ARN"))
    return Wake(function=function, schedule=schedule, role=role)


def add_wake_errors_alarm(template: Template, p: Params, function: Function) -> Alarm:
    """Pages AlarmTopicArn when a wake call fails (Lambda's Errors, per function), as the
    refresh's errors alarm does: the fleet then starts through the slower alarm path."""
    return template.add_resource(
        Alarm(
            p.config.logical_id("WakeErrorsAlarm"),
            AlarmDescription="The wake Lambda failed: the first worker waits for the start alarm",
            AlarmActions=If(p.cond("HasAlarmTopic"), [p["AlarmTopicArn"]], NoValue),
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Dimensions=[MetricDimension(Name="FunctionName", Value=Ref(function))],
            Period=ERRORS_PERIOD,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    )
