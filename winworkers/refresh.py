"""Patch auto-updates and stack-update rollouts: the refresh Lambda, its triggers and its role.

The function's code is winworkers.ami_refresh, embedded as an inline ZipFile
(with boot_evidence's _launch_abandoned inlined: functions.lambda_source): one
source of truth, tested as a module, deployed as index.py.
It is the only thing that starts instance refreshes (compute.py docstring says
why), and it never asks for skip matching or a desired configuration. Triggers:

- The schedule, and optionally AWS's AMI release topic: an instance whose image,
  or launch template version, is not the group's is outdated; if any is, one
  refresh starts. ``{"dryRun": true}`` changes nothing. A Terminating instance does
  not count: one kept ``Terminating:Retained`` (RetainFailedBoots) stays on its image
  until an operator ends it, and would start a whole-fleet refresh (no skip matching)
  every week that never replaces it.
- The custom resource ``FleetRefresh``, whose properties are what the workers run
  with. Create and Delete do nothing (new instances are current; nothing to undo).
  An Update that changes them starts one refresh and answers SUCCESS with its id,
  without waiting for it. If a refresh is already active the update fails with
  one line naming it and its progress: cancelling it and starting anew would
  mean waiting for its in-flight terminations, whose drain hooks may outlast any
  Lambda (CancelInstanceRefresh waits for transitioning instances). During a
  rollback (the stack or its root ``*ROLLBACK*``), or when the stack's status
  cannot be read, it starts nothing and answers SUCCESS: a failure there would
  leave the stack UPDATE_ROLLBACK_FAILED; the weekly run replaces what is left
  on another launch template version. It answers every delivery of a request
  exactly once, and each delivery alike: Lambda may deliver one twice, so a
  group tag (``ami_refresh.CLAIM``, not propagated) records the request before
  the start and the refresh after it, and a refresh that began after this
  request found none active (InstanceRefreshInProgress, e.g. its own start's lost
  answer retried by botocore) rolls out the group's update: it is the one.

- With ``WarmPool=stopped``, Auto Scaling's terminate lifecycle action for an instance
  leaving the warm pool (``Origin`` WarmPool): a stopped pooled worker cannot complete its
  drain hook, so the function completes it with CONTINUE once it has read that the instance
  waits in ``Warmed:Terminating:Wait`` and is stopped or, if not, that its launch activity
  does not say its lifecycle action was abandoned (the boot evidence function's test and
  code, row 214): a failed first boot is that function's, which captures, then releases it.
  It starts no refresh.

The two kinds of trigger exclude each other, so refreshes never collide:
the scheduled or SNS run starts nothing while the stack or its root stack is in
any ``*_IN_PROGRESS`` state (so not during the update whose custom resource
refreshes), nor while a refresh is active; the custom resource starts nothing
while a refresh is active; and Auto Scaling itself refuses a second active
refresh (InstanceRefreshInProgress), which both sides treat as "in progress".
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from awacs import autoscaling, cloudformation, ec2, sqs, ssm
from awacs import iam as iam_actions
from awacs.aws import Allow, ArnEquals, Condition, ForAllValuesStringEquals, Statement, StringEquals
from troposphere import GetAtt, Join, Ref, Split, StackId, Sub, Template
from troposphere.awslambda import Function, Permission
from troposphere.cloudformation import CustomResource
from troposphere.events import Rule, Target
from troposphere.sns import SubscriptionResource
from troposphere.sqs import Queue

from winworkers import iam
from winworkers.bootstrap import group_arn
from winworkers.compute import Fleet, ami_parameter_name, group_tags
from winworkers.config import ConfigError, WorkersConfig
from winworkers.functions import add_autoscaling_rule, add_function, add_rule_invoke, lambda_source
from winworkers.observability import add_log_group, grant_write
from winworkers.parameters import Params
from winworkers.suppress import skip_checkov

SOURCE = Path(__file__).with_name("ami_refresh.py")
# AWS announces new Windows AMIs on this topic, in us-east-1 only
# (EC2 Windows guide, "Subscribe to Windows AMI notifications").
AMI_RELEASES_TOPIC = "arn:aws:sns:us-east-1:801119661308:ec2-windows-ami-update"
REFRESH_FAILED = "EC2 Auto Scaling Instance Refresh Failed"
POOL_EXIT = "EC2 Instance-terminate Lifecycle Action"
NO_RESERVED_CONCURRENCY = (
    "Reserving concurrency fails in low-quota accounts; concurrent runs are safe: "
    "the handler treats an active refresh as in progress"
)
SQS_MANAGED_SSE = "Encrypted by SqsManagedSseEnabled; checkov's CKV_AWS_27 only knows KmsMasterKeyId"
# How long CloudFormation waits for the custom resource's response (default 3600 s):
# the function's 120 s and Lambda's two asynchronous retries fit with room to spare.
SERVICE_TIMEOUT = 600


class FleetRefreshResource(CustomResource):  # type: ignore[misc]  # troposphere is untyped
    """The custom resource whose Update makes the refresh Lambda roll out a stack update.

    Its properties are what the workers run with; ami_refresh.ROLLED_OUT names them."""

    resource_type = "Custom::WorkersRefresh"
    props = {  # noqa: RUF012
        **CustomResource.props,
        "GroupName": (str, True),
        "LaunchTemplateId": (str, True),
        "LaunchTemplateVersion": (str, True),
        "Subnets": (list, True),
    }


@dataclass(frozen=True)
class Refresh:
    function: Function
    refresh_failed_rule: Rule
    dead_letters: Queue  # also the boot evidence function's (winworkers.diagnostics)


def function_source() -> str:
    """The function's code as deployed: the module, with what it shares with boot_evidence inlined."""
    return lambda_source(SOURCE)


def source_constant(name: str) -> str:
    """A string constant of the function's source, read without importing it (it needs boto3)."""
    constants = _constants(function_source())
    if name not in constants:
        raise KeyError(f"{SOURCE.name} defines no {name}")
    value = constants[name]
    if value is None:
        raise ValueError(f"{SOURCE.name}'s {name} is not a literal")
    return value


@functools.lru_cache(maxsize=4)
def _constants(text: str) -> MappingProxyType[str, str | None]:
    """Each top-level ``NAME = value`` of Python source text (the first of a name): the value as a string
    if it is a literal, else None; parsed once per text (each template build asks again)."""
    constants: dict[str, str | None] = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value: str | None = str(ast.literal_eval(node.value))
            except (ValueError, TypeError, SyntaxError, RecursionError):  # what literal_eval raises
                value = None
            constants.setdefault(node.targets[0].id, value)
    return MappingProxyType(constants)


def _statements(p: Params, dead_letters: Queue, fleet: Fleet) -> list[Statement]:
    # Public parameters have an empty account field; "*" matches it (and only AWS can own names
    # under /aws/), where an empty field fails parliament's ARN check.
    parameter = Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:*:parameter${Name}", Name=ami_parameter_name(p))
    return [
        # Describe calls support no resource-level permissions: "*" is the only resource AWS accepts.
        Statement(
            Effect=Allow,
            Action=[
                autoscaling.DescribeAutoScalingGroups,
                autoscaling.DescribeAutoScalingInstances,
                autoscaling.DescribeInstanceRefreshes,
                autoscaling.DescribeScalingActivities,
                autoscaling.DescribeWarmPool,
                ec2.DescribeInstances,
            ],
            Resource=["*"],
        ),
        # CompleteLifecycleAction: a healthy pooled worker's drain hook (_add_rules, pool exits).
        Statement(
            Effect=Allow,
            Action=[autoscaling.StartInstanceRefresh, autoscaling.CompleteLifecycleAction],
            Resource=[group_arn(p.config)],
        ),
        # Its one tag on the group: which stack update request started which refresh (ami_refresh.CLAIM).
        Statement(
            Effect=Allow,
            Action=[autoscaling.CreateOrUpdateTags],
            Resource=[group_arn(p.config)],
            Condition=Condition(ForAllValuesStringEquals({"aws:TagKeys": [source_constant("CLAIM")]})),
        ),
        *_launch_template_statements(fleet),
        # GetParameters too: Auto Scaling checks the caller of StartInstanceRefresh can
        # resolve the launch template's resolve:ssm: ImageId.
        Statement(Effect=Allow, Action=[ssm.GetParameter, ssm.GetParameters], Resource=[parameter]),
        Statement(Effect=Allow, Action=[sqs.SendMessage], Resource=[GetAtt(dead_letters, "Arn")]),
        # Its own stack, and the root stack of a nested one: a nested stack lives in its
        # root's account and Region, and the child template cannot know the root's name.
        Statement(
            Effect=Allow,
            Action=[cloudformation.DescribeStacks],
            Resource=[Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*")],
        ),
    ]


def _launch_template_statements(fleet: Fleet) -> list[Statement]:
    """What Auto Scaling checks that the caller of StartInstanceRefresh may do with the group's launch
    template (user guide, launch template permissions; docs/aws-behaviours.md row 198): launch from
    it, into the group's subnets with the workers' security group only, pass its instance profile's
    role to EC2, tag what its tag specifications tag at launch."""
    template = Sub(
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:launch-template/${Id}",
        Id=Ref(fleet.launch_template),
    )
    data = fleet.launch_template.LaunchTemplateData
    tagged = sorted(spec.ResourceType for spec in data.TagSpecifications)
    (groups,) = [interface.Groups for interface in data.NetworkInterfaces]
    made = [_ec2_arn(f"{kind}/*") for kind in ("instance", "volume", "network-interface")]
    public = [Sub(f"arn:${{AWS::Partition}}:ec2:${{AWS::Region}}::{kind}/*") for kind in ("image", "snapshot")]
    where = [_ec2_arn("security-group/${Id}", Id=group) for group in groups]
    return [
        # Only from this template (ec2:LaunchTemplate, which every resource type of a launch knows),
        # each resource type named: what the launch makes (this account's), the AWS-owned public image
        # (and its snapshot) of the SSM parameter, the template; and where, which RunInstances' own
        # parameters would override: the security group the template gives its interface and the
        # subnets the group launches into (its VPCZoneIdentifier, in every mode). No key-pair: none
        # can be added. One statement: parliament wants each statement to name every required type.
        Statement(
            Effect=Allow,
            Action=[ec2.RunInstances],
            Resource=_arns([*made, *public, template, *where], subnets=fleet.group.VPCZoneIdentifier),
            Condition=Condition(ArnEquals({"ec2:LaunchTemplate": template})),
        ),
        Statement(
            Effect=Allow,
            Action=[iam_actions.PassRole],
            Resource=[GetAtt(fleet.instance_role, "Arn")],
            Condition=Condition(StringEquals({"iam:PassedToService": "ec2.amazonaws.com"})),
        ),
        Statement(
            Effect=Allow,
            Action=[ec2.CreateTags],
            Resource=[_ec2_arn(f"{kind}/*") for kind in tagged],
            Condition=Condition(StringEquals({"ec2:CreateAction": "RunInstances"})),
        ),
    ]


def _ec2_arn(resource: str, **values: Any) -> Sub:
    return Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:" + resource, **values)


def _arns(arns: list[Any], subnets: Any) -> Split:
    """``arns`` and the ARNs of the subnet ids ``subnets`` (a list parameter or a list of Refs), as one
    list. Fn::Join's delimiter takes no function, so a subnet's partition, Region and account are
    wildcards (a shared VPC's subnet is its owner's account's anyway); its id is what binds."""
    each = "arn:*:ec2:*:*:subnet/"
    return Split(",", Join(",", [*arns, Join("", [each, Join("," + each, subnets)])]))


MAX_GROUP_TAGS = 50
"""Auto Scaling's tags a group (user guide, tag restrictions; docs/aws-behaviours.md row 212)."""


def check_room_for_claim(config: WorkersConfig) -> None:
    """Refuse config.tags that, with the group's own tags and the function's claim, exceed Auto Scaling's
    50: the group would deploy, then every update that should refresh would fail (CreateOrUpdateTags)."""
    tags = {**group_tags(config), source_constant("CLAIM"): ""}
    if len(tags) > MAX_GROUP_TAGS:
        room = MAX_GROUP_TAGS - (len(tags) - len(config.tags))
        also = ", ".join(sorted(set(tags) - {k for k, _ in config.tags}))
        allowed = (
            f"at most {room}: Auto Scaling allows {MAX_GROUP_TAGS} tags a group, and the group also carries {also}"
        )
        raise ConfigError("tags", f"{len(config.tags)} tags", allowed)


def add_refresh(template: Template, p: Params, fleet: Fleet) -> Refresh:
    check_room_for_claim(p.config)
    dead_letters = _add_dead_letters(template, p)
    function = _add_function(template, p, fleet, dead_letters)
    arn, lid = GetAtt(function, "Arn"), p.config.logical_id
    # After the group (its Ref), so the group already launches from the new version;
    # an update that changes none of these properties sends the function nothing.
    template.add_resource(
        FleetRefreshResource(
            lid("FleetRefresh"),
            ServiceToken=arn,
            ServiceTimeout=SERVICE_TIMEOUT,
            GroupName=Ref(fleet.group),
            LaunchTemplateId=Ref(fleet.launch_template),
            LaunchTemplateVersion=GetAtt(fleet.launch_template, "LatestVersionNumber"),
            Subnets=fleet.group.VPCZoneIdentifier,
        )
    )
    schedule, failed, exits = _add_rules(template, p, fleet, function)
    add_rule_invoke(template, lid("ScheduleInvoke"), function, schedule)
    add_rule_invoke(template, lid("FailedInvoke"), function, failed)
    add_rule_invoke(template, lid("PoolExitInvoke"), function, exits, p.cond("HasWarmPool"))
    # The pool goes first (stopped -> off, the stack's deletion) and comes last: its workers'
    # exits still reach the rule, the permission, and through them the function and its role
    # (named by GetAtt and Ref), or each waits DrainSeconds (row 199). All three carry HasWarmPool:
    # a DependsOn on a resource whose Condition is false is a template error (row 7).
    fleet.warm_pool.DependsOn = [exits.title, lid("PoolExitInvoke")]
    _add_ami_releases(template, p, function)
    return Refresh(function=function, refresh_failed_rule=failed, dead_letters=dead_letters)


def _add_dead_letters(template: Template, p: Params) -> Queue:
    dead_letters = template.add_resource(
        # Failed invocations, kept the SQS maximum of 14 days for diagnosis; nothing
        # else depends on them, so they go with the stack.
        Queue(
            p.config.logical_id("RefreshDeadLetters"),
            SqsManagedSseEnabled=True,
            MessageRetentionPeriod=1209600,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    skip_checkov(dead_letters, "CKV_AWS_27", SQS_MANAGED_SSE)
    return dead_letters


def _add_function(template: Template, p: Params, fleet: Fleet, dead_letters: Queue) -> Function:
    logs = add_log_group(template, p, "RefreshLogs")
    role = iam.add_role(
        template,
        p,
        "RefreshRole",
        "lambda.amazonaws.com",
        [*_statements(p, dead_letters, fleet), grant_write((logs,))],
    )
    return add_function(
        template,
        p.config.logical_id("RefreshFunction"),
        description="Replaces the Windows workers: newer Windows AMI, or a stack update of what they run with",
        source=SOURCE,
        role=role,
        variables={
            "ASG_NAME": Ref(fleet.group),
            "AMI_PARAMETER": ami_parameter_name(p),
            "INSTANCE_WARMUP": p["InstanceWarmup"],
            "STACK_ID": StackId,
        },
        logs=logs,
        dead_letters=dead_letters,
        # A handful of API calls with retries; boto3 import dominates.
        timeout=120,
        outside_the_vpc="Not in the VPC on purpose: it calls Auto Scaling, EC2 and SSM, "
        "which the isolated VPC cannot reach, and it never talks to the workers",
        unreserved=NO_RESERVED_CONCURRENCY,
        environment="The environment holds only names (group, SSM parameter), no secrets",
    )


def _add_rules(template: Template, p: Params, fleet: Fleet, function: Function) -> tuple[Rule, Rule, Rule]:
    """What invokes the function: the schedule, a failed refresh, a stopped pooled worker's exit."""
    lid = p.config.logical_id
    arn = GetAtt(function, "Arn")
    schedule = template.add_resource(
        Rule(
            lid("RefreshScheduleRule"), ScheduleExpression=p["RefreshSchedule"], Targets=[Target(Id="refresh", Arn=arn)]
        )
    )
    failed = add_autoscaling_rule(
        template,
        lid("RefreshFailedRule"),
        description="An instance refresh of the Windows workers failed",
        event=REFRESH_FAILED,
        detail={"AutoScalingGroupName": [Ref(fleet.group)]},
        # The function reports the failure as an error, so it alarms and is dead-lettered.
        function=function,
        target="refresh",
    )
    # WarmPool=stopped: a pooled worker that is terminated from the pool (a refresh replaces it,
    # the pool shrinks or is deleted) passes the drain hook in Warmed:Terminating:Wait while it
    # is stopped, so nothing on it can complete the hook, and it would wait DrainSeconds (an hour
    # by default; DeleteWarmPool waits for it, and so does the stack update). It never takes
    # work there, so the function completes the hook with CONTINUE at once, after checking that
    # the instance is in that state and stopped or launched without an abandoned lifecycle action
    # (warm pool lifecycle and its EventBridge events, user guide; a failed first boot is the
    # evidence function's, rows 200 and 214). A worker
    # scaled in back to the pool (Origin AutoScalingGroup) is left to drain itself.
    exits = add_autoscaling_rule(
        template,
        lid("PoolExitRule"),
        description="A stopped warm pool worker is terminated: no job to drain",
        event=POOL_EXIT,
        detail={"AutoScalingGroupName": [Ref(fleet.group)], "Origin": ["WarmPool"]},
        function=function,
        target="refresh",
        condition=p.cond("HasWarmPool"),
    )
    return schedule, failed, exits


def _add_ami_releases(template: Template, p: Params, function: Function) -> None:
    """SubscribeToAmiReleases: AWS's topic of new Windows AMIs invokes the function."""
    lid, releases = p.config.logical_id, p.cond("SubscribeToAmiReleases")
    template.add_resource(
        SubscriptionResource(
            lid("AmiReleases"),
            TopicArn=AMI_RELEASES_TOPIC,
            Protocol="lambda",
            Endpoint=GetAtt(function, "Arn"),
            Region="us-east-1",
            Condition=releases,
        )
    )
    template.add_resource(
        Permission(
            lid("AmiReleasesInvoke"),
            Action="lambda:InvokeFunction",
            FunctionName=Ref(function),
            Principal="sns.amazonaws.com",
            SourceArn=AMI_RELEASES_TOPIC,
            Condition=releases,
        )
    )
