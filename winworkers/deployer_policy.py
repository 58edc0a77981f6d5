"""The IAM policy a CI role needs to deploy, update and delete the feature with winworkers deploy.

winworkers deployer-policy [--config FILE] [--template-bucket BUCKET] [--nested] [--stack-name NAME]
prints it as JSON. It is derived from the resource types the feature's
template contains for that config (every network mode: the template holds them
all, each under its condition), one statement per type from RESOURCE_ACTIONS;
a type the table does not know is refused, so a new resource cannot ship
without its permissions. Then what winworkers deploy itself calls:
CloudFormation's change sets and describes, the S3 prefix-list lookup,
DescribeInstanceRefreshes, and S3 for the template bucket.

Without a stack service role (deploy --role-arn), CloudFormation creates each
resource with the caller's permissions; iam:PassRole is scoped to the
feature's roles, each to the one service it is passed to, and
ssm:GetParameters to the public Windows AMI parameters that the launch
template resolves (Auto Scaling resolves resolve:ssm: with the caller's rights).
Resource-level scoping is used where the names are known (roles, instance
profiles, the AMI parameters, the bucket); most EC2 create actions take no
resource-level permission before the resource exists, so they are "*".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from awacs import (
    autoscaling,
    awslambda,
    cloudformation,
    cloudwatch,
    ec2,
    events,
    iam,
    logs,
    route53resolver,
    s3,
    sns,
    sqs,
    ssm,
)
from awacs.aws import Action, Allow, Condition, PolicyDocument, Statement, StringEquals

from winworkers.config import WorkersConfig

_TAGS = [ec2.CreateTags, ec2.DeleteTags]

RESOURCE_ACTIONS: dict[str, list[Action]] = {
    "AWS::EC2::VPC": [
        ec2.CreateVpc,
        ec2.DeleteVpc,
        ec2.DescribeVpcs,
        ec2.ModifyVpcAttribute,
        ec2.DescribeVpcAttribute,
        *_TAGS,
    ],
    "AWS::EC2::Subnet": [
        ec2.CreateSubnet,
        ec2.DeleteSubnet,
        ec2.DescribeSubnets,
        ec2.ModifySubnetAttribute,
        ec2.DescribeAvailabilityZones,
        *_TAGS,
    ],
    "AWS::EC2::RouteTable": [ec2.CreateRouteTable, ec2.DeleteRouteTable, ec2.DescribeRouteTables, *_TAGS],
    "AWS::EC2::SubnetRouteTableAssociation": [
        ec2.AssociateRouteTable,
        ec2.DisassociateRouteTable,
        ec2.ReplaceRouteTableAssociation,
        ec2.DescribeRouteTables,
    ],
    "AWS::EC2::VPCEndpoint": [
        ec2.CreateVpcEndpoint,
        ec2.ModifyVpcEndpoint,
        ec2.DeleteVpcEndpoints,
        ec2.DescribeVpcEndpoints,
        ec2.DescribePrefixLists,
        *_TAGS,
    ],
    "AWS::EC2::SecurityGroup": [
        ec2.CreateSecurityGroup,
        ec2.DeleteSecurityGroup,
        ec2.DescribeSecurityGroups,
        ec2.AuthorizeSecurityGroupEgress,
        ec2.RevokeSecurityGroupEgress,
        ec2.AuthorizeSecurityGroupIngress,
        ec2.RevokeSecurityGroupIngress,
        *_TAGS,
    ],
    "AWS::EC2::SecurityGroupEgress": [
        ec2.AuthorizeSecurityGroupEgress,
        ec2.RevokeSecurityGroupEgress,
        ec2.DescribeSecurityGroups,
        ec2.DescribeSecurityGroupRules,
    ],
    "AWS::EC2::SecurityGroupIngress": [
        ec2.AuthorizeSecurityGroupIngress,
        ec2.RevokeSecurityGroupIngress,
        ec2.DescribeSecurityGroups,
        ec2.DescribeSecurityGroupRules,
    ],
    "AWS::EC2::FlowLog": [ec2.CreateFlowLogs, ec2.DeleteFlowLogs, ec2.DescribeFlowLogs, *_TAGS],
    "AWS::EC2::LaunchTemplate": [
        ec2.CreateLaunchTemplate,
        ec2.CreateLaunchTemplateVersion,
        ec2.ModifyLaunchTemplate,
        ec2.DeleteLaunchTemplate,
        ec2.DeleteLaunchTemplateVersions,
        ec2.DescribeLaunchTemplates,
        ec2.DescribeLaunchTemplateVersions,
        *_TAGS,
    ],
    "AWS::AutoScaling::AutoScalingGroup": [
        autoscaling.CreateAutoScalingGroup,
        autoscaling.UpdateAutoScalingGroup,
        autoscaling.DeleteAutoScalingGroup,
        autoscaling.DescribeAutoScalingGroups,
        autoscaling.DescribeScalingActivities,
        autoscaling.PutLifecycleHook,
        autoscaling.DeleteLifecycleHook,
        autoscaling.DescribeLifecycleHooks,
        autoscaling.EnableMetricsCollection,
        autoscaling.DisableMetricsCollection,
        autoscaling.CreateOrUpdateTags,
        autoscaling.DeleteTags,
        autoscaling.StartInstanceRefresh,
        autoscaling.DescribeInstanceRefreshes,
        autoscaling.CancelInstanceRefresh,
        # Auto Scaling launches from the launch template with the caller's rights.
        ec2.RunInstances,
        ec2.DescribeInstances,
        ec2.DescribeImages,
        ec2.DescribeInstanceTypes,
        ec2.CreateTags,
        # spot: a MixedInstancesPolicy's InstanceRequirements (attribute-based instance type
        # selection). The resource type's registry schema grants its handlers ec2:Get*; this
        # is the one Get action for instance requirements (EC2 API reference).
        ec2.GetInstanceTypesFromInstanceRequirements,
    ],
    # The resource schema's handlers (cfn-lint's bundled schema; tests/test_deployer_policy.py).
    "AWS::AutoScaling::WarmPool": [
        autoscaling.PutWarmPool,
        autoscaling.DeleteWarmPool,
        autoscaling.DescribeWarmPool,
        autoscaling.DescribeAutoScalingGroups,
    ],
    "AWS::AutoScaling::ScalingPolicy": [
        autoscaling.PutScalingPolicy,
        autoscaling.DeletePolicy,
        autoscaling.DescribePolicies,
        # Target tracking creates and deletes its own alarms.
        cloudwatch.PutMetricAlarm,
        cloudwatch.DeleteAlarms,
        cloudwatch.DescribeAlarms,
    ],
    "AWS::CloudWatch::Alarm": [
        cloudwatch.PutMetricAlarm,
        cloudwatch.DeleteAlarms,
        cloudwatch.DescribeAlarms,
        cloudwatch.TagResource,
        cloudwatch.UntagResource,
    ],
    "AWS::IAM::Role": [
        iam.CreateRole,
        iam.DeleteRole,
        iam.GetRole,
        iam.UpdateAssumeRolePolicy,
        iam.PutRolePolicy,
        iam.DeleteRolePolicy,
        iam.GetRolePolicy,
        iam.ListRolePolicies,
        iam.AttachRolePolicy,
        iam.DetachRolePolicy,
        iam.ListAttachedRolePolicies,
        iam.TagRole,
        iam.UntagRole,
    ],
    "AWS::IAM::InstanceProfile": [
        iam.CreateInstanceProfile,
        iam.DeleteInstanceProfile,
        iam.GetInstanceProfile,
        iam.AddRoleToInstanceProfile,
        iam.RemoveRoleFromInstanceProfile,
    ],
    "AWS::Lambda::Function": [
        awslambda.CreateFunction,
        awslambda.DeleteFunction,
        awslambda.GetFunction,
        awslambda.GetFunctionConfiguration,
        awslambda.UpdateFunctionCode,
        awslambda.UpdateFunctionConfiguration,
        awslambda.PutFunctionConcurrency,
        awslambda.DeleteFunctionConcurrency,
        awslambda.TagResource,
        awslambda.UntagResource,
        awslambda.ListTags,
    ],
    "AWS::Lambda::Permission": [awslambda.AddPermission, awslambda.RemovePermission, awslambda.GetPolicy],
    "AWS::Logs::LogGroup": [
        logs.CreateLogGroup,
        logs.DeleteLogGroup,
        logs.DescribeLogGroups,
        logs.PutRetentionPolicy,
        logs.DeleteRetentionPolicy,
        logs.AssociateKmsKey,
        logs.DisassociateKmsKey,
        logs.TagResource,
        logs.UntagResource,
        logs.ListTagsForResource,
    ],
    "AWS::Events::Rule": [
        events.PutRule,
        events.DeleteRule,
        events.DescribeRule,
        events.PutTargets,
        events.RemoveTargets,
        events.ListTargetsByRule,
    ],
    "AWS::SNS::Subscription": [
        sns.Subscribe,
        sns.Unsubscribe,
        sns.GetSubscriptionAttributes,
        sns.SetSubscriptionAttributes,
    ],
    "AWS::SQS::Queue": [
        sqs.CreateQueue,
        sqs.DeleteQueue,
        sqs.GetQueueAttributes,
        sqs.SetQueueAttributes,
        sqs.GetQueueUrl,
        sqs.TagQueue,
        sqs.UntagQueue,
        sqs.ListQueueTags,
    ],
    # A nested parent: CloudFormation creates the child stack with the caller's rights.
    "AWS::CloudFormation::Stack": [
        cloudformation.CreateStack,
        cloudformation.UpdateStack,
        cloudformation.DeleteStack,
        cloudformation.DescribeStacks,
        cloudformation.DescribeStackEvents,
        cloudformation.GetTemplate,
    ],
    # The standalone template's standing resource (winworkers.build.standing_resource): CloudFormation
    # makes it itself, calling no other service (its registry schema declares no handler permissions),
    # so it needs no statement of its own.
    "AWS::CloudFormation::WaitConditionHandle": [],
    # A custom resource: CloudFormation invokes its Lambda with the caller's rights.
    "AWS::CloudFormation::CustomResource": [awslambda.InvokeFunction],
    # An inline policy of one of the feature's roles: granted with the roles, on their ARNs only
    # (a PutRolePolicy on "*" would let the CI role grant itself anything).
    "AWS::IAM::Policy": [iam.PutRolePolicy, iam.DeleteRolePolicy, iam.GetRolePolicy],
    "AWS::Logs::MetricFilter": [logs.PutMetricFilter, logs.DeleteMetricFilter, logs.DescribeMetricFilters],
    "AWS::Route53Resolver::FirewallDomainList": [
        route53resolver.CreateFirewallDomainList,
        route53resolver.UpdateFirewallDomains,
        route53resolver.GetFirewallDomainList,
        route53resolver.ListFirewallDomains,
        route53resolver.DeleteFirewallDomainList,
        route53resolver.TagResource,
        route53resolver.UntagResource,
        route53resolver.ListTagsForResource,
    ],
    "AWS::Route53Resolver::FirewallRuleGroup": [
        route53resolver.CreateFirewallRuleGroup,
        route53resolver.GetFirewallRuleGroup,
        route53resolver.DeleteFirewallRuleGroup,
        route53resolver.CreateFirewallRule,
        route53resolver.UpdateFirewallRule,
        route53resolver.DeleteFirewallRule,
        route53resolver.ListFirewallRules,
        route53resolver.TagResource,
        route53resolver.UntagResource,
        route53resolver.ListTagsForResource,
    ],
    "AWS::Route53Resolver::FirewallRuleGroupAssociation": [
        route53resolver.AssociateFirewallRuleGroup,
        route53resolver.UpdateFirewallRuleGroupAssociation,
        route53resolver.GetFirewallRuleGroupAssociation,
        route53resolver.DisassociateFirewallRuleGroup,
        route53resolver.TagResource,
        route53resolver.UntagResource,
        route53resolver.ListTagsForResource,
    ],
    # Query logs to CloudWatch Logs: Route 53 Resolver sets up a vended log delivery, and
    # CloudWatch Logs' resource policy, with the caller's rights (Resolver query logging guide).
    "AWS::Route53Resolver::ResolverQueryLoggingConfig": [
        route53resolver.CreateResolverQueryLogConfig,
        route53resolver.GetResolverQueryLogConfig,
        route53resolver.DeleteResolverQueryLogConfig,
        route53resolver.TagResource,
        route53resolver.UntagResource,
        route53resolver.ListTagsForResource,
        logs.CreateLogDelivery,
        logs.GetLogDelivery,
        logs.UpdateLogDelivery,
        logs.DeleteLogDelivery,
        logs.ListLogDeliveries,
        logs.PutResourcePolicy,
        logs.DescribeResourcePolicies,
        logs.DescribeLogGroups,
    ],
    "AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation": [
        route53resolver.AssociateResolverQueryLogConfig,
        route53resolver.GetResolverQueryLogConfigAssociation,
        route53resolver.DisassociateResolverQueryLogConfig,
    ],
}
"""What CloudFormation calls, with the caller's rights, to create, update and delete each type."""

# What winworkers deploy, delete and status call themselves: on the stack (its ARN), and the lookups.
STACK_ACTIONS: list[Action] = [
    cloudformation.CreateChangeSet,
    cloudformation.DescribeChangeSet,
    cloudformation.ExecuteChangeSet,
    cloudformation.DeleteChangeSet,
    cloudformation.DescribeStacks,
    cloudformation.DescribeStackEvents,
    cloudformation.ListStackResources,
    cloudformation.GetTemplate,
    cloudformation.DeleteStack,
]
LOOKUP_ACTIONS: list[Action] = [ec2.DescribeManagedPrefixLists, autoscaling.DescribeInstanceRefreshes]
DEPLOY_ACTIONS = [*STACK_ACTIONS, *LOOKUP_ACTIONS]

# Public parameters have no account in their ARN (arn:aws:ssm:REGION::parameter/aws/service/...): "*" matches it.
_AMI_PARAMETERS = "arn:aws:ssm:*:*:parameter/aws/service/ami-windows-latest/*"
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
_AUTOSCALING_LINKED_ROLE = "arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
TEMPLATE_BUCKET_PLACEHOLDER = "TEMPLATE-BUCKET"


def resource_types(template: Mapping[str, Any]) -> list[str]:
    """The resource types of a template (custom resources as AWS::CloudFormation::CustomResource)."""
    found = set()
    for resource in template.get("Resources", {}).values():
        kind = str(resource.get("Type", ""))
        found.add("AWS::CloudFormation::CustomResource" if kind.startswith("Custom::") else kind)
    return sorted(found)


def stack_arns(stack_name: str | None) -> list[str]:
    """The stack's ARNs and its nested stacks' (CloudFormation names those <stack>-<logical id>-<random>)."""
    if not stack_name:
        return ["arn:aws:cloudformation:*:*:stack/*"]
    return [f"arn:aws:cloudformation:*:*:stack/{stack_name}/*", f"arn:aws:cloudformation:*:*:stack/{stack_name}-*/*"]


def statements(
    template: Mapping[str, Any], *, template_bucket: str | None = None, stack_name: str | None = None
) -> list[Statement]:
    """The statements for a template: one per resource type, then roles, AMI parameters, deploy and S3.
    With stack_name, CloudFormation's actions are limited to that stack and its nested stacks."""
    kinds = resource_types(template)
    unknown = [k for k in kinds if k not in RESOURCE_ACTIONS]
    if unknown:
        raise ValueError(f"no deployer actions known for {', '.join(unknown)}: add them to RESOURCE_ACTIONS")
    out = [
        Statement(
            Sid=_sid(kind),
            Effect=Allow,
            Action=_unique(RESOURCE_ACTIONS[kind]),
            Resource=stack_arns(stack_name) if kind == "AWS::CloudFormation::Stack" else ["*"],
        )
        for kind in kinds
        if kind not in ("AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::Policy") and RESOURCE_ACTIONS[kind]
    ]
    resources = template.get("Resources", {})
    roles = sorted(n for n, r in resources.items() if r.get("Type") == "AWS::IAM::Role")
    profiles = sorted(n for n, r in resources.items() if r.get("Type") == "AWS::IAM::InstanceProfile")
    if roles:
        # CloudFormation names them <stack>-<logical id>-<random>.
        out.append(
            Statement(
                Sid="IAMRole",
                Effect=Allow,
                # The feature's inline policies (AWS::IAM::Policy) are PutRolePolicy on these roles too.
                Action=_unique(RESOURCE_ACTIONS["AWS::IAM::Role"]),
                Resource=[f"arn:aws:iam::*:role/*-{name}-*" for name in roles],
            )
        )
        for name in roles:
            out.append(
                Statement(
                    Sid=f"PassRole{name}",
                    Effect=Allow,
                    Action=[iam.PassRole],
                    Resource=[f"arn:aws:iam::*:role/*-{name}-*"],
                    Condition=Condition(StringEquals("iam:PassedToService", _trusted(resources[name]))),
                )
            )
    if profiles:
        out.append(
            Statement(
                Sid="IAMInstanceProfile",
                Effect=Allow,
                Action=_unique(RESOURCE_ACTIONS["AWS::IAM::InstanceProfile"]),
                Resource=[f"arn:aws:iam::*:instance-profile/*-{name}-*" for name in profiles],
            )
        )
    if "AWS::AutoScaling::AutoScalingGroup" in kinds:
        out.append(
            Statement(
                Sid="AutoScalingServiceLinkedRole",
                Effect=Allow,
                Action=[iam.CreateServiceLinkedRole],
                Resource=[_AUTOSCALING_LINKED_ROLE],
                Condition=Condition(StringEquals("iam:AWSServiceName", "autoscaling.amazonaws.com")),
            )
        )
    if "AWS::EC2::LaunchTemplate" in kinds:
        out.append(
            Statement(Sid="WindowsAmiParameters", Effect=Allow, Action=[ssm.GetParameters], Resource=[_AMI_PARAMETERS])
        )
    out.append(
        Statement(Sid="WinworkersDeploy", Effect=Allow, Action=_unique(STACK_ACTIONS), Resource=stack_arns(stack_name))
    )
    out.append(Statement(Sid="WinworkersLookups", Effect=Allow, Action=_unique(LOOKUP_ACTIONS), Resource=["*"]))
    bucket = template_bucket or TEMPLATE_BUCKET_PLACEHOLDER
    out.append(
        Statement(Sid="TemplateBucket", Effect=Allow, Action=[s3.ListBucket], Resource=[f"arn:aws:s3:::{bucket}"])
    )
    out.append(
        Statement(
            Sid="TemplateObjects",
            Effect=Allow,
            Action=[s3.GetObject, s3.PutObject],
            Resource=[f"arn:aws:s3:::{bucket}/*"],
        )
    )
    return out


def policy_document(
    config: WorkersConfig | None = None,
    *,
    template_bucket: str | None = None,
    nested: bool = False,
    stack_name: str | None = None,
) -> dict[str, Any]:
    """The policy for the feature's template built from config (with the nested stack's own actions if nested)."""
    from winworkers.build import build_template

    template = build_template(config).to_dict()
    if nested:
        template["Resources"]["NestedFeatureStack"] = {"Type": "AWS::CloudFormation::Stack"}
    document: dict[str, Any] = json.loads(
        PolicyDocument(
            Version="2012-10-17", Statement=statements(template, template_bucket=template_bucket, stack_name=stack_name)
        ).to_json()
    )
    return document


def actions(document: Mapping[str, Any]) -> set[str]:
    """Every action a policy document allows."""
    return {str(a) for s in document["Statement"] for a in s["Action"]}


def _trusted(role: Mapping[str, Any]) -> list[str]:
    services: list[str] = []
    for statement in role.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement", []):
        principal = statement.get("Principal", {}).get("Service", [])
        services += [principal] if isinstance(principal, str) else list(principal)
    return sorted(set(services))


def _unique(listed: list[Action]) -> list[Action]:
    seen: dict[str, Action] = {}
    for action in listed:
        seen.setdefault(action.JSONrepr(), action)
    return [seen[k] for k in sorted(seen)]


def _sid(kind: str) -> str:
    return "".join(part for part in kind.split("::")[1:])
