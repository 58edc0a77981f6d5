"""A failed boot, diagnosed without a login.

The console capture: the group's drain hook holds every terminating worker in
Terminating:Wait, an abandoned launch included (the UserData ABANDONs the launch
hook, or the hook times out with ABANDON, then Auto Scaling terminates the
instance through the drain hook), and Auto Scaling sends "EC2 Instance-terminate
Lifecycle Action" to EventBridge (Auto Scaling user guide, event reference). A
rule routes those events of this group's drain hook to a function
(winworkers.boot_evidence, embedded verbatim) that writes the instance's console
output and screenshot to the host log group, stream <instance id>/console. The
function reads the console of this group's instances only, writes to that log
group only, and runs outside the VPC (it calls EC2, Auto Scaling and CloudWatch
Logs, which the isolated VPC cannot reach, and never talks to the workers).

The screenshot is stored in the same stream, base64 in events after a line
giving its size, rather than skipped or put in a bucket: it is the only place a
stop error or a hung setup screen shows, and a bucket would add a resource, its
policy and its own retention and encryption, where the log group already has
the stack's (LogRetentionDays, KmsKeyArn). A JPG of a Windows console is tens to
hundreds of KB, a few events; docs/operations.md shows the one command that rebuilds it.

The launch lifecycle action is not used: it fires when the boot begins, before
there is anything to see. "EC2 Instance Launch Unsuccessful" is not used either:
an instance EC2 never launched has no console, and one that launched is
terminated through the drain hook anyway.

Who ends a failed boot's wait (register row 200): the function, after the capture.
GetConsoleScreenshot needs a running instance, and the UserData used to ABANDON the
drain hook itself right after the launch hook, so the instance was gone seconds after
the event. Now the UserData ABANDONs the launch hook only; the function, once the
console is written, completes the drain hook with ABANDON for an instance still in
(Warmed:)Terminating:Wait whose launch activity says its lifecycle action was
abandoned. A worker that was in service drains itself, as before. If the function
never gets there (an error, throttling, a lost event), the drain hook's timeout ends
the wait: DrainSeconds (default 3,600), then its DefaultResult, CONTINUE: terminated,
not retained.

The retention option: Auto Scaling's instance lifecycle policy retains an
instance whose *termination* hook is abandoned (RetentionTriggers
TerminateHookAbandon; it has no trigger for a launch hook). The function's ABANDON
of a failed boot's drain hook terminates the instance as CONTINUE would, unless
RetainFailedBoots is true: then the instance is kept in Terminating:Retained,
running and billed, until an operator terminates it (docs/operations.md, "Troubleshooting a
failed boot"). The function does not read the option: the group's policy decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from awacs import autoscaling, ec2, sqs
from awacs.aws import Allow, Condition, Statement, StringEquals
from troposphere import Equals, GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.autoscaling import AutoScalingGroup, InstanceLifecyclePolicy, RetentionTriggers
from troposphere.awslambda import Function
from troposphere.events import Rule
from troposphere.sqs import Queue

from winworkers import iam
from winworkers.bootstrap import DRAIN_HOOK, group_arn, group_name
from winworkers.functions import add_autoscaling_rule, add_function, add_rule_invoke
from winworkers.observability import WorkerLogs, grant_write
from winworkers.parameters import Params

SOURCE = Path(__file__).with_name("boot_evidence.py")
TERMINATING = "EC2 Instance-terminate Lifecycle Action"
RETAIN = "RetainFailedBoots"
# Auto Scaling tags each instance with its group's name (Auto Scaling user guide, "Tag Auto
# Scaling groups and instances"); GetConsoleOutput and GetConsoleScreenshot authorize on the
# instance and its aws:ResourceTag keys (Service Authorization Reference, Amazon EC2).
GROUP_TAG = "aws:ResourceTag/aws:autoscaling:groupName"


@dataclass(frozen=True)
class BootEvidence:
    """Handles: the capture function and the rule that triggers it."""

    function: Function
    rule: Rule


def console_statements(p: Params) -> list[Statement]:
    """Read the console of this group's instances, of no other instance."""
    return [
        Statement(
            Effect=Allow,
            Action=[ec2.GetConsoleOutput, ec2.GetConsoleScreenshot],
            Resource=[Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*")],
            Condition=Condition(StringEquals({GROUP_TAG: Sub(group_name(p.config))})),
        )
    ]


def release_statements(p: Params) -> list[Statement]:
    """Tell a failed boot from a draining worker, then ABANDON its drain hook: this group's only."""
    return [
        # Describe calls support no resource-level permissions: "*" is the only resource AWS accepts.
        Statement(
            Effect=Allow,
            Action=[autoscaling.DescribeAutoScalingInstances, autoscaling.DescribeScalingActivities],
            Resource=["*"],
        ),
        Statement(Effect=Allow, Action=[autoscaling.CompleteLifecycleAction], Resource=[group_arn(p.config)]),
    ]


def lifecycle_policy(p: Params) -> If:
    """The group's InstanceLifecyclePolicy: retain an instance whose drain hook was
    abandoned when RetainFailedBoots is true, else the property is absent (AWS's
    default, terminate). Its condition is declared by add_boot_evidence."""
    retain = InstanceLifecyclePolicy(RetentionTriggers=RetentionTriggers(TerminateHookAbandon="retain"))
    return If(p.cond(RETAIN), retain, NoValue)


def add_boot_evidence(
    template: Template, p: Params, group: AutoScalingGroup, logs: WorkerLogs, dead_letters: Queue
) -> BootEvidence:
    lid = p.config.logical_id
    template.add_condition(p.cond(RETAIN), Equals(p[RETAIN], "true"))
    role = iam.add_role(
        template,
        p,
        "EvidenceRole",
        "lambda.amazonaws.com",
        [
            *console_statements(p),
            *release_statements(p),
            grant_write((logs.host,)),
            Statement(Effect=Allow, Action=[sqs.SendMessage], Resource=[GetAtt(dead_letters, "Arn")]),
        ],
    )
    function = add_function(
        template,
        lid("EvidenceFunction"),
        description="Copies a terminating Windows worker's console to the host log group, then releases a failed boot",
        source=SOURCE,
        role=role,
        variables={"LOG_GROUP": Ref(logs.host)},
        # Its own one-line results go where an operator looks for the evidence.
        logs=logs.host,
        dead_letters=dead_letters,
        # Two console calls, a screenshot, a few PutLogEvents and three Auto Scaling calls, with retries.
        timeout=60,
        outside_the_vpc="Not in the VPC on purpose: it calls EC2 and CloudWatch Logs, "
        "which the isolated VPC cannot reach, and it never talks to the workers",
        unreserved="Reserving concurrency fails in low-quota accounts; each run writes only its own instance's stream",
    )
    rule = add_autoscaling_rule(
        template,
        lid("EvidenceRule"),
        description="A Windows worker is terminating: keep its console",
        event=TERMINATING,
        # The group's fixed name, not a Ref: the group depends on this rule (below).
        detail={"AutoScalingGroupName": [Sub(group_name(p.config))], "LifecycleHookName": [DRAIN_HOOK]},
        function=function,
        target="evidence",
    )
    invoke = add_rule_invoke(template, lid("EvidenceInvoke"), function, rule)
    # The first workers boot while the stack is being created, and a failed first boot is the
    # one most worth seeing: the group waits for the rule and its permission. Both carry the
    # group's condition, so DependsOn cannot name a resource that is not there.
    group.DependsOn = sorted({*(group.resource.get("DependsOn") or []), rule.title, invoke.title})
    return BootEvidence(function=function, rule=rule)
