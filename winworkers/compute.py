"""The worker fleet: launch template, Auto Scaling group, queue-driven scaling, warm pool.

Image choice: the launch template's ImageId is ``resolve:ssm:`` the public
parameter of the latest AWS-published Windows AMI. Auto Scaling resolves it at
every launch, so any new instance, and every instance an instance refresh
replaces, runs the newest image, with no launch template version written
outside CloudFormation and so no drift. The price (Auto Scaling user guide,
"Use AWS Systems Manager parameters instead of AMI IDs"): an instance refresh
cannot use SkipMatching, a desired configuration or AutoRollback, and whoever
creates, updates or refreshes the group needs ``ssm:GetParameters`` on the
parameter. The refresh Lambda therefore decides itself whether a refresh is
needed, by comparing image ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import AWSProperty, GetAtt, If, NoValue, Ref, Select, Split, StackName, Sub, Tag, Template
from troposphere.autoscaling import (
    AutoScalingGroup,
    InstanceMaintenancePolicy,
    LaunchTemplateSpecification,
    LifecycleHookSpecification,
    MetricsCollection,
    ScalingPolicy,
    StepAdjustments,
    Tags,
    WarmPool,
)
from troposphere.cloudwatch import Alarm, MetricDataQuery, MetricDimension
from troposphere.ec2 import (
    EBSBlockDevice,
    IamInstanceProfile,
    LaunchTemplate,
    LaunchTemplateBlockDeviceMapping,
    LaunchTemplateData,
    MetadataOptions,
    NetworkInterfaces,
    TagSpecifications,
)
from troposphere.iam import InstanceProfile, Role
from troposphere.policies import (
    AutoScalingCreationPolicy,
    AutoScalingScheduledAction,
    CreationPolicy,
    ResourceSignal,
    UpdatePolicy,
)

from winworkers.bootstrap import DRAIN_HOOK, LAUNCH_HOOK, group_name, init_metadata, user_data
from winworkers.network import Network
from winworkers.observability import WorkerLogs, metric_query
from winworkers.parameters import Params

FEATURE_TAG = "windows-workers"
AMI_PARAMETER = "/aws/service/ami-windows-latest/Windows_Server-${Version}-English-Full-Base"
# Windows first boots take 10-20 minutes, longer than short signal timeouts
# allow (aws-cdk #10429, #21359). The launch hook waits as long as the signal.
BOOT_TIMEOUT_SECONDS = 2700
SIGNAL_TIMEOUT = f"PT{BOOT_TIMEOUT_SECONDS // 60}M"
MAX_HEALTHY_PERCENT = 200
# Refreshes replace half the fleet, then pause an hour before the rest: a worker
# that boots but misbehaves on a new AMI runs on half the fleet while the other
# half still works, and an operator can cancel the refresh. The refresh Lambda
# uses the same (tests/test_ami_refresh.py). No AutoRollback: a launch template
# resolving resolve:ssm: cannot roll back (RefreshPreferences API reference).
CHECKPOINTS = {"CheckpointPercentages": [50, 100], "CheckpointDelay": 3600}


class InstanceRefreshPolicy(AWSProperty):  # type: ignore[misc]  # troposphere is untyped
    """``UpdatePolicy.AutoScalingInstanceRefresh`` (CloudFormation, 2026-07), which
    troposphere 4.11 does not model yet; cfn-lint 1.58 validates it."""

    props = {"Strategy": (str, True), "Preferences": (dict, False)}  # noqa: RUF012


class FleetUpdatePolicy(UpdatePolicy):  # type: ignore[misc]
    props = {**UpdatePolicy.props, "AutoScalingInstanceRefresh": (InstanceRefreshPolicy, False)}  # noqa: RUF012


@dataclass(frozen=True)
class Fleet:
    """Handles: the group (``Ref`` is its name) and its launch template."""

    group: AutoScalingGroup
    launch_template: LaunchTemplate
    name: Sub


def ami_parameter_name(p: Params) -> Sub:
    """The public SSM parameter of the chosen Windows version's latest AMI."""
    return Sub(AMI_PARAMETER, Version=p["WindowsVersion"])


def add_fleet(
    template: Template, p: Params, network: Network, role: Role, profile: InstanceProfile, logs: WorkerLogs
) -> Fleet:
    lid = p.config.logical_id
    # Named, so the agent config can carry the name as a static dimension
    # without a dependency cycle (the launch template cannot Ref the group).
    # The prefix keeps two features in one stack apart (at most 128 + 1 + 32 + 7
    # of the 255 characters a group name may have).
    name = Sub(group_name(p.config))
    launch_template = template.add_resource(_launch_template(p, network, role, profile, logs, name))
    group = template.add_resource(_group(p, network, launch_template, name))
    _add_queue_scaling(template, p, group)
    template.add_resource(
        WarmPool(
            lid("WarmPool"),
            AutoScalingGroupName=Ref(group),
            PoolState="Stopped",
            MinSize=p["WarmPoolMinSize"],
            Condition=p.cond("WarmPool"),
        )
    )
    return Fleet(group=group, launch_template=launch_template, name=name)


def _tags(p: Params) -> dict[str, Any]:
    return {
        "Name": Sub("${AWS::StackName}-windows-worker"),
        "Feature": FEATURE_TAG,
        "Stack": StackName,
        **dict(p.config.tags),
    }


def _launch_template(
    p: Params, network: Network, role: Role, profile: InstanceProfile, logs: WorkerLogs, asg_name: Sub
) -> LaunchTemplate:
    lid = p.config.logical_id
    tags = [Tag(k, v) for k, v in _tags(p).items()]
    data = LaunchTemplateData(
        ImageId=Sub("resolve:ssm:" + AMI_PARAMETER, Version=p["WindowsVersion"]),
        InstanceType=p["InstanceType"],
        IamInstanceProfile=IamInstanceProfile(Arn=GetAtt(profile, "Arn")),
        # No KeyName: there is no key pair, so no Administrator password can be decrypted.
        # An explicit interface so no public IP is ever attached, whatever the subnet says.
        NetworkInterfaces=[
            NetworkInterfaces(
                DeviceIndex=0,
                AssociatePublicIpAddress=False,
                DeleteOnTermination=True,
                Groups=[Ref(network.worker_security_group)],
            )
        ],
        MetadataOptions=MetadataOptions(
            HttpEndpoint="enabled", HttpTokens="required", HttpPutResponseHopLimit=1, InstanceMetadataTags="disabled"
        ),
        BlockDeviceMappings=[
            LaunchTemplateBlockDeviceMapping(
                DeviceName="/dev/sda1",
                Ebs=EBSBlockDevice(
                    VolumeType="gp3",
                    VolumeSize=p["RootVolumeSize"],
                    Encrypted=True,
                    KmsKeyId=If(p.cond("HasKmsKey"), p["KmsKeyArn"], NoValue),
                    DeleteOnTermination=True,
                ),
            )
        ],
        UserData=user_data(p.config, lid("LaunchTemplate"), lid("Group")),
        # Instances get the group's tags (PropagateAtLaunch); volumes only get these.
        TagSpecifications=[TagSpecifications(ResourceType="volume", Tags=tags)],
    )
    return LaunchTemplate(
        lid("LaunchTemplate"),
        LaunchTemplateData=data,
        Metadata=init_metadata(p, role, logs.for_agent(), asg_name),
    )


def _group(p: Params, network: Network, launch_template: LaunchTemplate, name: Sub) -> AutoScalingGroup:
    lid = p.config.logical_id
    launch_before_terminate = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": MAX_HEALTHY_PERCENT}
    return AutoScalingGroup(
        lid("Group"),
        AutoScalingGroupName=name,
        LaunchTemplate=LaunchTemplateSpecification(
            LaunchTemplateId=Ref(launch_template), Version=GetAtt(launch_template, "LatestVersionNumber")
        ),
        MinSize=p["MinSize"],
        MaxSize=p["MaxSize"],
        DesiredCapacity=If(p.cond("HasDesiredCapacity"), p["DesiredCapacity"], NoValue),
        VPCZoneIdentifier=network.subnet_ids,
        HealthCheckType="EC2",
        HealthCheckGracePeriod=p["InstanceWarmup"],
        DefaultInstanceWarmup=p["InstanceWarmup"],
        # Replacements (refreshes, unhealthy instances) launch before they terminate.
        InstanceMaintenancePolicy=InstanceMaintenancePolicy(**launch_before_terminate),
        # In the group, not AWS::AutoScaling::LifecycleHook resources: those are created
        # after the group, and its first instances would launch without them
        # (CreateAutoScalingGroup API, LifecycleHookSpecificationList).
        LifecycleHookSpecificationList=[
            # EC2 health checks pass as soon as Windows runs; this keeps an instance out of
            # service until its bootstrap succeeded (the UserData completes it), and
            # ABANDON (failure or timeout) terminates and replaces it.
            LifecycleHookSpecification(
                LifecycleHookName=LAUNCH_HOOK,
                LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
                DefaultResult="ABANDON",
                HeartbeatTimeout=BOOT_TIMEOUT_SECONDS,
            ),
            # Scale-in and refreshes wait for the worker to finish its job (README, "Worker contract").
            LifecycleHookSpecification(
                LifecycleHookName=DRAIN_HOOK,
                LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
                DefaultResult="CONTINUE",
                HeartbeatTimeout=p["DrainSeconds"],
            ),
        ],
        MetricsCollection=[MetricsCollection(Granularity="1Minute", Metrics=["GroupInServiceInstances"])],
        Tags=Tags(**_tags(p)),
        CreationPolicy=CreationPolicy(
            AutoScalingCreationPolicy=AutoScalingCreationPolicy(MinSuccessfulInstancesPercent=100),
            ResourceSignal=ResourceSignal(
                Count=If(p.cond("HasDesiredCapacity"), p["DesiredCapacity"], p["MinSize"]), Timeout=SIGNAL_TIMEOUT
            ),
        ),
        UpdatePolicy=FleetUpdatePolicy(
            # A changed launch template is rolled out by an instance refresh that
            # launches first, so capacity never dips.
            AutoScalingInstanceRefresh=InstanceRefreshPolicy(
                Strategy="Rolling",
                Preferences={**launch_before_terminate, **CHECKPOINTS, "InstanceWarmup": p["InstanceWarmup"]},
            ),
            # Scaling owns the desired capacity; a stack update must not reset it.
            AutoScalingScheduledAction=AutoScalingScheduledAction(IgnoreUnmodifiedGroupSizeProperties=True),
        ),
    )


def _add_queue_scaling(template: Template, p: Params, group: AutoScalingGroup) -> None:
    """Out as soon as work is visible; in to MinSize once nothing is queued or in
    flight for ScaleInIdleMinutes. An instance terminated mid-task loses nothing:
    its message was never deleted, and SQS redelivers it when the visibility
    timeout ends."""
    lid = p.config.logical_id
    queue = MetricDimension(Name="QueueName", Value=Select(5, Split(":", p["WorkQueueArn"])))

    def sqs(query_id: str, metric: str) -> MetricDataQuery:
        return metric_query(query_id, "AWS/SQS", metric, "Maximum", queue, period=60)

    scale_out = template.add_resource(
        ScalingPolicy(
            lid("ScaleOutPolicy"),
            AutoScalingGroupName=Ref(group),
            PolicyType="StepScaling",
            AdjustmentType="ChangeInCapacity",
            EstimatedInstanceWarmup=p["InstanceWarmup"],
            MetricAggregationType="Maximum",
            # More workers for deeper backlogs; the alarm threshold is 0 visible messages.
            StepAdjustments=[
                StepAdjustments(MetricIntervalLowerBound=0, MetricIntervalUpperBound=10, ScalingAdjustment=1),
                StepAdjustments(MetricIntervalLowerBound=10, MetricIntervalUpperBound=50, ScalingAdjustment=2),
                StepAdjustments(MetricIntervalLowerBound=50, ScalingAdjustment=4),
            ],
        )
    )
    template.add_resource(
        Alarm(
            lid("QueueBacklogAlarm"),
            AlarmDescription="Work is queued: add workers",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[queue],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[Ref(scale_out)],
        )
    )
    scale_in = template.add_resource(
        ScalingPolicy(
            lid("ScaleInPolicy"),
            AutoScalingGroupName=Ref(group),
            PolicyType="SimpleScaling",
            # Capacity 0 is clamped to MinSize by Auto Scaling.
            AdjustmentType="ExactCapacity",
            ScalingAdjustment=0,
            Cooldown="60",
        )
    )
    template.add_resource(
        Alarm(
            lid("QueueIdleAlarm"),
            AlarmDescription="No work for ScaleInIdleMinutes: scale in to MinSize",
            Metrics=[
                sqs("visible", "ApproximateNumberOfMessagesVisible"),
                sqs("inflight", "ApproximateNumberOfMessagesNotVisible"),
                MetricDataQuery(
                    Id="work", Expression="visible + inflight", Label="Queued or in flight", ReturnData=True
                ),
            ],
            EvaluationPeriods=p["ScaleInIdleMinutes"],
            DatapointsToAlarm=p["ScaleInIdleMinutes"],
            Threshold=0,
            ComparisonOperator="LessThanOrEqualToThreshold",
            # SQS stops publishing for a long-idle queue; silence is idleness.
            TreatMissingData="breaching",
            AlarmActions=[Ref(scale_in)],
        )
    )
