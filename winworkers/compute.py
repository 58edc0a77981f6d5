"""The worker fleet: launch template, Auto Scaling group, queue-driven scaling.

Image choice: the launch template's ImageId is ``resolve:ssm:`` the public
parameter of the latest AWS-published Windows AMI. Auto Scaling resolves it at
every launch, so any new instance, and every instance an instance refresh
replaces, runs the newest image, with no launch template version written
outside CloudFormation and so no drift of the template. (The group's Tags do drift,
as expected: the refresh function adds its claim tag, docs/aws-behaviours.md
row 197.) The price (Auto Scaling user guide,
"Use AWS Systems Manager parameters instead of AMI IDs"): an instance refresh
cannot use SkipMatching, a desired configuration or AutoRollback, and whoever
creates, updates or refreshes the group needs ``ssm:GetParameters`` on the
parameter.

Who refreshes: the refresh Lambda (winworkers.refresh, winworkers.ami_refresh),
alone. The group has no ``UpdatePolicy.AutoScalingInstanceRefresh``: that policy's
``SkipMatching`` defaults to true (CDK's documentation of the policy and its
release notes; the StartInstanceRefresh API's own default is false), which a
``resolve:ssm:`` image refuses, so every update that made a new launch template
version would fail, and its rollback, starting another refresh, could leave the
stack UPDATE_ROLLBACK_FAILED. Whether the policy also passes a desired
configuration is not documented, so setting ``SkipMatching: false`` would still
rest on a guess. Instead a custom resource (``refresh.add_refresh``) carries what
the workers run with (the launch template id and version, the subnets) and
updates after the group: CloudFormation sends its Update to the Lambda, which
starts a refresh with neither a desired configuration nor skip matching
(docs/aws-behaviours.md, rows 18 and 95 to 105).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, If, Join, NoValue, Ref, Split, StackName, Sub, Tag, Template
from troposphere.autoscaling import (
    AutoScalingGroup,
    CustomizedMetricSpecification,
    InstanceMaintenancePolicy,
    InstanceRequirements,
    InstanceReusePolicy,
    InstancesDistribution,
    LaunchTemplateOverrides,
    LaunchTemplateSpecification,
    LifecycleHookSpecification,
    MemoryMiBRequest,
    Metric,
    MetricsCollection,
    MixedInstancesPolicy,
    ScalingPolicy,
    StepAdjustments,
    Tags,
    TargetTrackingConfiguration,
    TargetTrackingMetricDataQuery,
    TargetTrackingMetricStat,
    VCpuCountRequest,
    WarmPool,
)
from troposphere.autoscaling import LaunchTemplate as GroupLaunchTemplate
from troposphere.autoscaling import MetricDimension as GroupMetricDimension
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

from winworkers.bootstrap import (
    BOOT_TIMEOUT_SECONDS,
    DRAIN_HOOK,
    LAUNCH_HOOK,
    SIGNAL_TIMEOUT,
    baked_metadata,
    group_name,
    init_metadata,
    user_data,
    with_baked,
)
from winworkers.config import WINDOWS_AMI_PARAMETER, WorkersConfig
from winworkers.diagnostics import lifecycle_policy
from winworkers.network import Network
from winworkers.observability import WorkerLogs, metric_query
from winworkers.parameters import Params

FEATURE_TAG = "windows-workers"
GROUP_METRICS = ("GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances", "WarmPoolWarmedCapacity")
"""The group metrics Auto Scaling publishes: the scaling reads the first, the dashboard all."""
AMI_PARAMETER = WINDOWS_AMI_PARAMETER
MAX_HEALTHY_PERCENT = 200
# Refreshes replace half the fleet, then pause an hour before the rest: a worker
# that boots but misbehaves on a new AMI runs on half the fleet while the other
# half still works, and an operator can cancel the refresh. The refresh Lambda
# sends these (tests/test_ami_refresh.py). No AutoRollback: a launch template
# resolving resolve:ssm: cannot roll back (RefreshPreferences API reference).
CHECKPOINTS = {"CheckpointPercentages": [50, 100], "CheckpointDelay": 3600}
# Every instance is replaced, scale-in protected or on standby alike (the refresh Lambda
# sends these): a patch that skips some workers leaves them unpatched.
REPLACE_EVERY_INSTANCE = {"ScaleInProtectedInstances": "Refresh", "StandbyInstances": "Terminate"}


@dataclass(frozen=True)
class Fleet:
    """Handles: the group (``Ref`` is its name), its launch template, the role its instances get,
    and its warm pool (``Condition`` HasWarmPool)."""

    group: AutoScalingGroup
    launch_template: LaunchTemplate
    instance_role: Role
    warm_pool: WarmPool


IMAGE_PARAMETER = "/winworkers/${AWS::StackName}/{prefix}/image-id"
"""ImageSource=baked: the stack's own SSM parameter of its baked AMI id (winworkers.image), which
Image Builder's distribution writes and the launch template resolves."""


def image_parameter_name(p: Params) -> Sub:
    """The name of the stack's own SSM parameter of the baked AMI id (ImageSource=baked)."""
    return Sub(IMAGE_PARAMETER.replace("{prefix}", p.config.prefix))


def public_parameter_name(p: Params) -> Sub:
    """The public SSM parameter of the chosen Windows version's latest AMI."""
    return Sub(AMI_PARAMETER, Version=p["WindowsVersion"])


def ami_parameter_name(p: Params) -> If:
    """The parameter the workers' image is: the stack's own with ImageSource=baked, else AWS's public
    one. The refresh function reads the same (winworkers.refresh)."""
    return If(p.cond("BakedImage"), image_parameter_name(p), public_parameter_name(p))


def add_fleet(
    template: Template,
    p: Params,
    network: Network,
    role: Role,
    profile: InstanceProfile,
    logs: WorkerLogs,
    image_parameter: Any,
    first_image: Any,
) -> Fleet:
    """The launch template, the group, its warm pool and its scaling. image_parameter is the stack's
    own image parameter (winworkers.image; under BakedImage)."""
    # Named, so the agent config can carry the name as a static dimension
    # without a dependency cycle (the launch template cannot Ref the group).
    # The prefix keeps two features in one stack apart (at most 128 + 1 + 32 + 7
    # of the 255 characters a group name may have).
    name = Sub(group_name(p.config))
    launch_template = template.add_resource(
        _launch_template(p, network, role, profile, logs, name, image_parameter, GetAtt(first_image, "ImageId"))
    )
    group = template.add_resource(_group(p, network, launch_template, name))
    warm_pool = template.add_resource(_warm_pool(p, group))
    _add_queue_scaling(template, p, group)
    return Fleet(group=group, launch_template=launch_template, instance_role=role, warm_pool=warm_pool)


def group_tags(config: WorkersConfig) -> dict[str, Any]:
    """The group's tags (its instances' and volumes' too): the fleet's own, then the config's.
    WorkersConfig counts them (Auto Scaling's 50 a group, with the refresh function's claim)."""
    return {
        "Name": Sub("${AWS::StackName}-windows-worker"),
        "Feature": FEATURE_TAG,
        "Stack": StackName,
        **dict(config.tags),
    }


def _tags(p: Params) -> dict[str, Any]:
    return group_tags(p.config)


def _launch_template(
    p: Params,
    network: Network,
    role: Role,
    profile: InstanceProfile,
    logs: WorkerLogs,
    asg_name: Sub,
    image_parameter: Any,
    image: Any,
) -> LaunchTemplate:
    lid = p.config.logical_id
    tags = [Tag(k, v) for k, v in _tags(p).items()]
    metadata = init_metadata(p, role, logs.for_agent(), asg_name)
    baked = p.cond("BakedImage")

    def scripts(what: dict[str, Any], warm: bool, configset: str = "default") -> Any:
        return user_data(p.config, lid("LaunchTemplate"), lid("Group"), what, warm=warm, configset=configset)

    data = LaunchTemplateData(
        ImageId=_image_id(p, image_parameter),
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
        BlockDeviceMappings=[_root_volume(p)],
        # Two scripts, not one: without a warm pool the UserData stays byte for byte the
        # script of 0.2.0, so a stack updated with WarmPool=off gets no new launch template
        # version (and no refresh); with it, the script runs at every boot (bootstrap).
        # ImageSource=baked: the same scripts, running the baked config sets (no installs), their
        # config line over what a baked boot reads, the first image's id with it (bootstrap).
        UserData=If(
            p.cond("HasWarmPool"),
            If(baked, scripts(baked_metadata(metadata, image), True, "baked"), scripts(metadata, True)),
            If(baked, scripts(baked_metadata(metadata, image), False, "baked"), scripts(metadata, False)),
        ),
        # Instances get the group's tags (PropagateAtLaunch); volumes only get these.
        TagSpecifications=[TagSpecifications(ResourceType="volume", Tags=tags)],
    )
    return LaunchTemplate(
        lid("LaunchTemplate"),
        LaunchTemplateData=data,
        Metadata=with_baked(metadata, baked),
    )


def _image_id(p: Params, image_parameter: Any) -> If:
    """The workers' image. Baked: the stack's parameter, whose first value is the first image, which
    the stack waited for (the Ref also orders the launch template after it); else AWS's public one."""
    return If(
        p.cond("BakedImage"),
        Sub("resolve:ssm:${Name}", Name=Ref(image_parameter)),
        Sub("resolve:ssm:" + AMI_PARAMETER, Version=p["WindowsVersion"]),
    )


def _root_volume(p: Params) -> LaunchTemplateBlockDeviceMapping:
    """The root volume: gp3, encrypted (with KmsKeyArn when given), RootVolumeSize GiB."""
    return LaunchTemplateBlockDeviceMapping(
        DeviceName="/dev/sda1",
        Ebs=EBSBlockDevice(
            VolumeType="gp3",
            VolumeSize=p["RootVolumeSize"],
            Encrypted=True,
            KmsKeyId=If(p.cond("HasKmsKey"), p["KmsKeyArn"], NoValue),
            DeleteOnTermination=True,
        ),
    )


def _group(p: Params, network: Network, launch_template: LaunchTemplate, name: Sub) -> AutoScalingGroup:
    lid = p.config.logical_id
    launch_before_terminate = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": MAX_HEALTHY_PERCENT}
    spec = LaunchTemplateSpecification(
        LaunchTemplateId=Ref(launch_template), Version=GetAtt(launch_template, "LatestVersionNumber")
    )
    mixed = p.cond("MixedInstances")
    return AutoScalingGroup(
        lid("Group"),
        AutoScalingGroupName=name,
        # One of the two, never both (CreateAutoScalingGroup API): without MixedInstances the
        # group is as in 0.2.0, so a default stack's update changes nothing here.
        LaunchTemplate=If(mixed, NoValue, spec),
        MixedInstancesPolicy=If(mixed, _mixed_instances(p, spec), NoValue),
        # Spot only: Auto Scaling launches a replacement when a Spot worker is at elevated risk
        # of interruption, and terminates the old one (through the drain hook) once the new one
        # passed its health check (user guide, "Capacity Rebalancing"). Nothing in On-Demand.
        CapacityRebalance=If(mixed, True, NoValue),
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
        LifecycleHookSpecificationList=_lifecycle_hooks(p),
        # Keeps a worker whose bootstrap failed, when asked (winworkers.diagnostics).
        InstanceLifecyclePolicy=lifecycle_policy(p),
        # The dashboard's "workers by state" (winworkers.jobs) reads the other three; one-minute
        # granularity is the only one (MetricsCollection reference, register row 222).
        MetricsCollection=[MetricsCollection(Granularity="1Minute", Metrics=list(GROUP_METRICS))],
        Tags=Tags(**_tags(p)),
        # Workers boot straight into cfn-init, which needs the endpoints, their security
        # group rules and the S3 route. DependsOn cannot name a resource whose Condition
        # is false, so Refs behind Fn::If carry the order: intrinsic functions in Metadata
        # are resolved (Metadata attribute docs), and a Ref makes CloudFormation create
        # its target first (DependsOn attribute docs).
        Metadata={"WaitsFor": network.ready},
        CreationPolicy=CreationPolicy(
            AutoScalingCreationPolicy=AutoScalingCreationPolicy(MinSuccessfulInstancesPercent=100),
            ResourceSignal=ResourceSignal(
                Count=If(p.cond("HasDesiredCapacity"), p["DesiredCapacity"], p["MinSize"]), Timeout=SIGNAL_TIMEOUT
            ),
        ),
        # No AutoScalingInstanceRefresh policy: the refresh Lambda owns every refresh (module docstring).
        UpdatePolicy=UpdatePolicy(
            # Scaling owns the desired capacity; a stack update must not reset it.
            AutoScalingScheduledAction=AutoScalingScheduledAction(IgnoreUnmodifiedGroupSizeProperties=True),
        ),
    )


def _lifecycle_hooks(p: Params) -> list[LifecycleHookSpecification]:
    """The launch hook (bootstrap done) and the drain hook (job done)."""
    return [
        # EC2 health checks pass as soon as Windows runs; this keeps an instance out of
        # service until its bootstrap succeeded (the UserData completes it), and
        # ABANDON (failure or timeout) terminates and replaces it.
        LifecycleHookSpecification(
            LifecycleHookName=LAUNCH_HOOK,
            LifecycleTransition="autoscaling:EC2_INSTANCE_LAUNCHING",
            DefaultResult="ABANDON",
            HeartbeatTimeout=BOOT_TIMEOUT_SECONDS,
        ),
        # Scale-in and refreshes wait for the worker to finish its job (docs/worker-contract.md).
        LifecycleHookSpecification(
            LifecycleHookName=DRAIN_HOOK,
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            DefaultResult="CONTINUE",
            HeartbeatTimeout=p["DrainSeconds"],
        ),
    ]


# Price protection off: the operator's list is the list. With it on (the default), Auto Scaling
# leaves out any listed type priced 20% (On-Demand) or 100% (Spot) above the cheapest C, M or R
# type matching the requirements; 999999 turns it off (InstanceRequirements API reference).
NO_PRICE_PROTECTION = 999999


def _mixed_instances(p: Params, spec: LaunchTemplateSpecification) -> MixedInstancesPolicy:
    """Spot and On-Demand across InstanceType and InstanceTypes (docs/aws-behaviours.md, spot rows).

    The types are attribute-based instance type selection narrowed to a list
    (InstanceRequirements.AllowedInstanceTypes takes a list, where Overrides would need
    one object per type, which a CommaDelimitedList of any length cannot give). They
    override the launch template's InstanceType (LaunchTemplateOverrides API reference).
    Every other requirement is open: 0 vCPUs and MiB up, burstable (t3) included (its
    default is excluded), no price protection. Price-capacity-optimized picks the Spot pools
    least likely to be interrupted among the cheapest, as AWS recommends with Capacity
    Rebalancing; On-Demand is lowest-price, the only strategy with instance requirements.
    """
    listed = Split(",", Sub("${Type},${More}", Type=p["InstanceType"], More=Join(",", p["InstanceTypes"])))
    requirements = InstanceRequirements(
        AllowedInstanceTypes=If(p.cond("HasInstanceTypes"), listed, [p["InstanceType"]]),
        VCpuCount=VCpuCountRequest(Min=0),
        MemoryMiB=MemoryMiBRequest(Min=0),
        BurstablePerformance="included",
        OnDemandMaxPricePercentageOverLowestPrice=NO_PRICE_PROTECTION,
        SpotMaxPricePercentageOverLowestPrice=NO_PRICE_PROTECTION,
    )
    return MixedInstancesPolicy(
        LaunchTemplate=GroupLaunchTemplate(
            LaunchTemplateSpecification=spec, Overrides=[LaunchTemplateOverrides(InstanceRequirements=requirements)]
        ),
        InstancesDistribution=InstancesDistribution(
            OnDemandAllocationStrategy="lowest-price",
            OnDemandBaseCapacity=p["OnDemandBaseCapacity"],
            OnDemandPercentageAboveBaseCapacity=p["OnDemandPercentage"],
            SpotAllocationStrategy="price-capacity-optimized",
        ),
    )


def _warm_pool(p: Params, group: AutoScalingGroup) -> WarmPool:
    """WarmPool=stopped: bootstrapped workers wait stopped, paying for their EBS volume only
    (EC2 StopInstances API), and serve in about a minute instead of a cold boot's ~15.

    Correct only with the group's launch hook and the persisted UserData: Auto Scaling stops
    a pooled instance as soon as it has launched unless a launch hook holds it in
    ``Warmed:Pending:Wait``; the hook fires again (``Pending:Wait``) when it leaves the pool,
    and the UserData, run at every boot, completes it then too (bootstrap.warm_boot_paths;
    warm pool instance lifecycle, user guide). Returning to the pool on scale-in passes the
    drain hook (``Warmed:Pending:Wait``), so a worker drains as before. A warm pool cannot be
    used with a mixed instances policy or Spot (PutWarmPool API). The pool is created after the
    group (it names it), so the group's CreationPolicy never counts a pooled instance."""
    return WarmPool(
        p.config.logical_id("GroupWarmPool"),
        Condition=p.cond("HasWarmPool"),
        AutoScalingGroupName=Ref(group),
        PoolState="Stopped",
        MinSize=p["WarmPoolMinSize"],
        # -1: PutWarmPool's unset, the pool is MaxSize minus the desired capacity.
        MaxGroupPreparedCapacity=p["WarmPoolMaxPrepared"],
        # A scaled-in worker goes back to the pool (after its drain) instead of being terminated.
        InstanceReusePolicy=InstanceReusePolicy(ReuseOnScaleIn=True),
    )


def _add_queue_scaling(template: Template, p: Params, group: AutoScalingGroup) -> None:
    """Capacity follows the work, both ways: AWS's backlog-per-instance pattern
    (Auto Scaling user guide, "Scaling policy based on Amazon SQS"; target
    tracking with metric math), plus a start from zero, which target tracking
    cannot do alone.

    The backlog counts in-flight messages: a worker busy on a long job is
    capacity in use, so with BacklogPerWorker 1 target tracking never scales
    below the jobs in progress. With no worker in service the division by zero
    drops the datapoint (CloudWatch metric math), the policy's alarms lack data
    and it does nothing; the start alarm adds the first worker. A terminated
    worker loses nothing: its message was never deleted, and SQS redelivers it
    when the visibility timeout ends.
    """
    _add_backlog_policy(template, p, group)
    _add_start_from_zero(template, p, group)


def _add_backlog_policy(template: Template, p: Params, group: AutoScalingGroup) -> None:
    """Target tracking of (visible + in flight) messages per worker in service."""
    queue = ("QueueName", p.queue_name)

    def stat(query_id: str, namespace: str, metric: str, statistic: str, dimension: tuple[str, Any]) -> Any:
        return TargetTrackingMetricDataQuery(
            Id=query_id,
            ReturnData=False,
            MetricStat=TargetTrackingMetricStat(
                Metric=Metric(
                    Namespace=namespace,
                    MetricName=metric,
                    Dimensions=[GroupMetricDimension(Name=dimension[0], Value=dimension[1])],
                ),
                Stat=statistic,
            ),
        )

    template.add_resource(
        ScalingPolicy(
            p.config.logical_id("BacklogPolicy"),
            AutoScalingGroupName=Ref(group),
            PolicyType="TargetTrackingScaling",
            TargetTrackingConfiguration=TargetTrackingConfiguration(
                TargetValue=p["BacklogPerWorker"],
                CustomizedMetricSpecification=CustomizedMetricSpecification(
                    Metrics=[
                        stat("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", queue),
                        stat("inflight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "Maximum", queue),
                        stat(
                            "serving",
                            "AWS/AutoScaling",
                            "GroupInServiceInstances",
                            "Average",
                            ("AutoScalingGroupName", Ref(group)),
                        ),
                        # The one query without ReturnData: it defaults to true.
                        TargetTrackingMetricDataQuery(Id="backlog", Expression="(visible + inflight) / serving"),
                    ]
                ),
            ),
        )
    )


def _add_start_from_zero(template: Template, p: Params, group: AutoScalingGroup) -> None:
    """A step policy that adds one worker, and the alarm that runs it: work queued, none in service."""
    lid = p.config.logical_id
    # Warming-up instances count as desired capacity, so repeated breaches in the
    # same step make one activity (user guide, "Step and simple scaling
    # policies", instance warmup): +1, not +1 a minute.
    start = template.add_resource(
        ScalingPolicy(
            lid("StartPolicy"),
            AutoScalingGroupName=Ref(group),
            PolicyType="StepScaling",
            AdjustmentType="ChangeInCapacity",
            StepAdjustments=[StepAdjustments(MetricIntervalLowerBound=0, ScalingAdjustment=1)],
        )
    )
    sqs = MetricDimension(Name="QueueName", Value=p.queue_name)
    template.add_resource(
        Alarm(
            lid("StartAlarm"),
            AlarmDescription="Work is queued and no worker is in service: start one",
            Metrics=[
                metric_query("visible", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", sqs, period=60),
                metric_query(
                    "serving",
                    "AWS/AutoScaling",
                    "GroupInServiceInstances",
                    "Maximum",
                    MetricDimension(Name="AutoScalingGroupName", Value=Ref(group)),
                    period=60,
                ),
                # A missing "serving" compares as 0 (CloudWatch metric math).
                MetricDataQuery(Id="start", Expression="IF(serving == 0, visible, 0)", ReturnData=True),
            ],
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[Ref(start)],
        )
    )
