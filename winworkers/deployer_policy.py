"""The IAM policies a CI role needs to deploy, update and delete the feature with winworkers deploy.

winworkers deployer-policy [--config FILE] [--template-bucket BUCKET] [--nested] [--stack-name NAME] [--out DIR]
prints them as one JSON object, managed policy name -> policy document; with --out DIR
it writes DIR/<name>.json for each and prints the `aws iam create-policy` commands that
create them. Each document fits a managed policy: at most 6,144 characters, which IAM
counts without white space (IAM quotas); a document over it is refused at build time.

The actions are derived from the resource types the feature's template contains for
that config (every network mode: the template holds them all, each under its
condition): for each type, the permissions its CloudFormation registry schema lists for
the create, update, delete and read handlers (cfn-lint's bundled schemas). Read is
included because CloudFormation calls it during stack updates and for drift detection
(the resource type development guide); list is not, as it serves requests for many
resources of a type (Cloud Control's ListResources), not a stack's own resources.
A handler permission is left out only when (LEFT_OUT) it acts on what a property names
and the template never sets that property (checked here, for the template built), or
(NOT_IAM_ACTIONS) it is not an action of AWS's Service Authorization Reference, so IAM
cannot grant it. A type without a schema (a custom resource) takes UNSCHEMED_ACTIONS;
then what winworkers deploy itself calls (change sets, describes, the S3 prefix-list
lookup, DescribeInstanceRefreshes, S3 for the template bucket).

Scoping, by service: iam actions are never "*": a role's and its inline policies'
actions on the feature's roles, an instance profile's on its profiles, iam:PassRole on
each role for the one service its trust policy names, iam:CreateServiceLinkedRole on
the service-linked roles of exactly the services whose handlers create one (with
iam:AWSServiceName); an iam action of any other type is refused. ssm actions are on the
public Windows AMI parameters the launch template resolves (Auto Scaling resolves
resolve:ssm: with the caller's rights); cloudformation actions on the stack and its
nested stacks (--stack-name); s3 on the template bucket, and an s3 action from a schema
is refused. SCOPES puts the actions on the stack's own resources: Lambda, SQS, Logs and
EventBridge by the ARNs of the names CloudFormation generates (<stack>-<logical id>-<random>),
Auto Scaling by the group's name (<stack>-<Prefix>Workers), EC2 by the
aws:cloudformation:stack-name tag; the stack name narrows them to <stack>-* (without it, or
where a generated name could be cut, the type's every resource). Creates that take no ARN
before the resource exists, Describe* and what takes no resource are on "*", as are the
services SCOPES does not list (their reasons in docs/aws-behaviours.md).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from awacs import autoscaling, cloudformation, ec2, s3, ssm
from awacs.aws import Action, Allow, Condition, PolicyDocument, Statement, StringEquals, StringLike

from winworkers.config import WINDOWS_AMI_PARAMETER, WorkersConfig
from winworkers.handler_permissions import HANDLER_PERMISSIONS

HANDLERS = ("create", "update", "delete", "read")
"""The handlers whose permissions are granted (module docstring: why read is, and list is not)."""
MANAGED_POLICY_CHARACTERS = 6144
"""A managed policy's size quota; IAM does not count white space (IAM quotas, register row 173)."""

LEFT_OUT: dict[str, dict[str, tuple[str, ...]]] = {
    # winworkers.image gives the component's document inline (Data), never from S3 (Uri).
    "AWS::ImageBuilder::Component": {
        "Uri": ("s3:GetBucketLocation", "s3:GetObject", "s3:HeadBucket"),
        "KmsKeyId": (
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyPair",
            "kms:GenerateDataKeyPairWithoutPlaintext",
            "kms:GenerateDataKeyWithoutPlaintext",
        ),
    },
    "AWS::AutoScaling::AutoScalingGroup": {
        "LoadBalancerNames": (
            "autoscaling:AttachLoadBalancers",
            "autoscaling:DetachLoadBalancers",
            "elasticloadbalancing:Describe*",
        ),
        "TargetGroupARNs": (
            "autoscaling:AttachLoadBalancerTargetGroups",
            "autoscaling:DetachLoadBalancerTargetGroups",
            "elasticloadbalancing:Describe*",
        ),
        "TrafficSources": (
            "autoscaling:AttachTrafficSources",
            "autoscaling:DetachTrafficSources",
            "vpc-lattice:DeregisterTargets",
            "vpc-lattice:GetTargetGroup",
            "vpc-lattice:ListTargets",
            "vpc-lattice:RegisterTargets",
        ),
        "NotificationConfigurations": (
            "autoscaling:PutNotificationConfiguration",
            "autoscaling:DeleteNotificationConfiguration",
        ),
        "NotificationConfiguration": (
            "autoscaling:PutNotificationConfiguration",
            "autoscaling:DeleteNotificationConfiguration",
        ),
    },
    # An S3 or Firehose destination (its bucket policy; the log delivery's service-linked role).
    "AWS::EC2::FlowLog": {
        "LogDestination": ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "iam:CreateServiceLinkedRole"),
    },
    "AWS::EC2::Subnet": {
        "Ipv6CidrBlock": ("ec2:AssociateSubnetCidrBlock", "ec2:DisassociateSubnetCidrBlock"),
        "Ipv6CidrBlocks": ("ec2:AssociateSubnetCidrBlock", "ec2:DisassociateSubnetCidrBlock"),
    },
    "AWS::EC2::VPC": {
        "VpcEncryptionControl": ("ec2:CreateVpcEncryptionControl",),
        "InstanceTenancy": ("ec2:ModifyVpcTenancy",),
    },
    "AWS::EC2::VPCEndpoint": {
        "ServiceNetworkArn": (
            "vpc-lattice:CreateServiceNetworkVpcEndpointAssociation",
            "vpc-lattice:DescribeServiceNetworkVpcEndpointAssociation",
        ),
        "ServiceRegion": ("vpce:AllowMultiRegion",),
    },
    "AWS::IAM::Policy": {
        "Groups": ("iam:PutGroupPolicy", "iam:DeleteGroupPolicy", "iam:GetGroupPolicy"),
        "Users": ("iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:GetUserPolicy"),
    },
    "AWS::IAM::Role": {"PermissionsBoundary": ("iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary")},
    "AWS::Lambda::Function": {
        "KmsKeyArn": ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"),
        "CodeSigningConfigArn": (
            "lambda:GetCodeSigningConfig",
            "lambda:PutFunctionCodeSigningConfig",
            "lambda:DeleteFunctionCodeSigningConfig",
        ),
        "Layers": ("lambda:GetLayerVersion",),
        "FileSystemConfigs": ("elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets"),
        "RecursiveLoop": ("lambda:PutFunctionRecursionConfig",),
        "RuntimeManagementConfig": ("lambda:PutRuntimeManagementConfig",),
        "CapacityProviderConfig": ("lambda:PassCapacityProvider",),
        "FunctionScalingConfig": ("lambda:PutFunctionScalingConfig",),
        "Code.S3Bucket": ("s3:GetObject", "s3:GetObjectVersion"),
    },
    "AWS::Logs::LogGroup": {
        "DataProtectionPolicy": ("logs:PutDataProtectionPolicy", "logs:DeleteDataProtectionPolicy"),
        "FieldIndexPolicies": ("logs:PutIndexPolicy", "logs:DeleteIndexPolicy"),
        "BearerTokenAuthenticationEnabled": ("logs:PutBearerTokenAuthentication",),
        "DeletionProtectionEnabled": ("logs:PutLogGroupDeletionProtection",),
        "ResourcePolicyDocument": ("logs:PutResourcePolicy", "logs:DeleteResourcePolicy"),
    },
    "AWS::Route53Resolver::FirewallDomainList": {"DomainFileUrl": ("route53resolver:ImportFirewallDomains",)},
    # A Firehose endpoint's role.
    "AWS::SNS::Subscription": {"SubscriptionRoleArn": ("iam:GetRole", "iam:PassRole")},
}
"""Handler permissions left out, by type and property: each writes what the property configures, or
reads what it names (a bucket, a key, a layer, a target group), and the template never sets the
property (refused if it does). Reads of the resource itself are kept: a read handler returns every
property, set or not."""

NOT_IAM_ACTIONS = frozenset(
    {
        "lambda:AssociateRuntimeAlias",
        "managed-fleets:CreateAutoScalingGroup",
        "managed-fleets:DeleteAutoScalingGroup",
        "managed-fleets:DeregisterAutoScalingGroup",
        "managed-fleets:Get*",
        "managed-fleets:RegisterAutoScalingGroup",
        "managed-fleets:UpdateAutoScalingGroup",
        "resolverquerylogging:AssociateConfig",
        "resolverquerylogging:CreateConfig",
        "resolverquerylogging:DeleteConfig",
        "resolverquerylogging:DisassociateConfig",
        "resolverquerylogging:GetConfig",
        "resolverquerylogging:GetConfigAssociation",
        "resolverquerylogging:ListConfig",
        "resolverquerylogging:ListConfigAssociation",
        "s3:REST.PUT.OBJECT",
    }
)
"""Handler permissions that are no action of AWS's Service Authorization Reference (awacs, generated
from it, has none of them; tests/test_deployer_policy.py): IAM cannot grant them."""

UNSCHEMED_ACTIONS: dict[str, tuple[str, ...]] = {
    # A custom resource: CloudFormation invokes its Lambda with the caller's rights.
    "AWS::CloudFormation::CustomResource": ("lambda:InvokeFunction",),
}
"""The types without a registry schema, and what CloudFormation calls for them."""

SERVICE_LINKED_ROLES: dict[str, tuple[str, str]] = {
    # https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-service-linked-role.html
    "AWS::AutoScaling::AutoScalingGroup": ("autoscaling.amazonaws.com", "AWSServiceRoleForAutoScaling"),
    # https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/using-service-linked-roles.html
    "AWS::Route53Resolver::ResolverQueryLoggingConfig": (
        "route53resolver.amazonaws.com",
        "AWSServiceRoleForRoute53Resolver",
    ),
    # ImageSource=baked (winworkers.image): Image Builder's handlers create its service-linked role
    # (Image Builder user guide, "Using service-linked roles for Image Builder"; row 235).
    **dict.fromkeys(
        (
            f"AWS::ImageBuilder::{kind}"
            for kind in (
                "Component",
                "DistributionConfiguration",
                "Image",
                "ImagePipeline",
                "ImageRecipe",
                "InfrastructureConfiguration",
                "LifecyclePolicy",
            )
        ),
        ("imagebuilder.amazonaws.com", "AWSServiceRoleForImageBuilder"),
    ),
}
"""The service-linked role each type's handlers create (iam:CreateServiceLinkedRole): service, role name."""

DOCUMENTS: dict[str, tuple[str, ...]] = {
    "Fleet": ("ec2", "vpce", "route53resolver", "autoscaling", "cloudwatch", "elasticloadbalancing", "ssm"),
    "Roles": ("iam",),
    "Services": ("lambda", "events", "logs", "sns", "sqs", "firehose", "cloudformation", "s3"),
    # ImageSource=baked (winworkers.image); ecr and inspector2: the image handlers' reads of scanning.
    "Image": ("imagebuilder", "ecr", "inspector2"),
}
"""The managed policies, by the services whose statements each holds (named <Prefix>Deployer<Key>)."""

NARROWED = {"ssm:Get*": "ssm:GetParameter*", "ec2:Get*": "ec2:GetInstanceTypesFromInstanceRequirements"}
"""Schema wildcards granted narrower: on the AMI parameters, ssm:Get* can only be a parameter read; the
Auto Scaling group's ec2:Get* is the Get action behind attribute-based instance type selection (register
row 160), not GetPasswordData, GetConsoleScreenshot, GetConsoleOutput nor GetLaunchTemplateData (row 206).
The Describe* wildcards (ec2:, autoscaling:) are kept: Describe actions are List/Read access that returns
configuration, no secret and no instance's data (Service Authorization Reference; row 206)."""


@dataclass(frozen=True)
class Scope:
    """Where a service's actions are granted: on the stack's own resources, by ARN (arns, "{name}" the
    resource's name pattern), or on the resources of the types tagged under the
    aws:ResourceTag/aws:cloudformation:stack-name condition, and of the types by_type (CloudFormation gives
    them no stack tag) without it (the actions matching typed; those matching typed_only act on no tagged
    type); the actions matching anywhere on "*" (scoped overrides anywhere)."""

    reason: str
    arns: tuple[str, ...] = ()
    tagged: tuple[str, ...] = ()
    by_type: tuple[str, ...] = ()
    typed: tuple[str, ...] = ()
    typed_only: tuple[str, ...] = ()
    anywhere: tuple[str, ...] = ()
    scoped: tuple[str, ...] = ()
    kind: str = ""
    limit: int = 0


# CloudFormation names a resource without an explicit name <stack>-<logical id>-<random> (a nested
# stack <parent>-<logical id>-<random>); under the name's length limit only (kind, limit), else "*".
SCOPES: dict[str, Scope] = {
    "autoscaling": Scope(
        "the group's name is explicit, <stack>-<Prefix>Workers; Describe* take no resource (row 205)",
        arns=("arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/{name}",),
        anywhere=("autoscaling:Describe*",),
    ),
    "ec2": Scope(
        "EC2 ARNs hold IDs, not names: VPCs, subnets, route tables and security groups by the stack's tag; "
        "launch templates (CloudFormation does not give them the stack's tags), endpoints and flow logs (not "
        "documented) by type only; a create takes no ARN of the resource before it exists, RunInstances (Auto "
        "Scaling's check) the image and subnets, Describe* and GetInstanceTypesFromInstanceRequirements none "
        "(row 205)",
        tagged=tuple(f"arn:aws:ec2:*:*:{t}/*" for t in ("vpc", "subnet", "route-table", "security-group")),
        by_type=tuple(f"arn:aws:ec2:*:*:{t}/*" for t in ("launch-template", "vpc-endpoint", "vpc-flow-log")),
        typed=("ec2:*LaunchTemplate*", "ec2:*VpcEndpoint*", "ec2:*FlowLogs", "ec2:*Tags"),
        # ModifyVpcEndpoint also names the subnets and security groups it adds (EndpointAzs changes them in
        # place), so it is granted on the stack's tagged ones as well as on the endpoints.
        typed_only=("ec2:*LaunchTemplate*", "ec2:DeleteVpcEndpoints", "ec2:DeleteFlowLogs"),
        anywhere=("ec2:Describe*", "ec2:Create*", "ec2:RunInstances", "ec2:GetInstanceTypesFromInstanceRequirements"),
        scoped=("ec2:CreateLaunchTemplateVersion", "ec2:CreateTags"),
    ),
    "events": Scope(
        "generated rule names", arns=("arn:aws:events:*:*:rule/{name}",), kind="AWS::Events::Rule", limit=64
    ),
    "lambda": Scope(
        "generated function names", arns=("arn:aws:lambda:*:*:function:{name}",), kind="AWS::Lambda::Function", limit=64
    ),
    "logs": Scope(
        "generated log group names; the log deliveries, resource policies and Describe* take no resource",
        arns=("arn:aws:logs:*:*:log-group:{name}",),
        anywhere=(
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:Describe*",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
        ),
        scoped=("logs:DescribeMetricFilters",),
        kind="AWS::Logs::LogGroup",
        limit=512,
    ),
    "sqs": Scope("generated queue names", arns=("arn:aws:sqs:*:*:{name}",), kind="AWS::SQS::Queue", limit=80),
    "imagebuilder": Scope(
        "explicit names, ${<execution role>}-<name>, lower case in the ARN (an image's is its recipe's; row "
        "247); the reads (Get*) on every resource: the handlers read AWS-owned ones too (the managed "
        "build and test workflows, arn:...:aws:workflow/...)",
        arns=("arn:aws:imagebuilder:*:*:{name}",),
        anywhere=("imagebuilder:Get*", "imagebuilder:List*"),
    ),
}
"""How each service's actions are scoped; a service not listed is on "*" (cloudwatch alarms, route53resolver,
vpce, sns, firehose: row 205 says why), cloudformation on the stack, ssm's reads on the AMI parameters and
the stack's own, its writes on the stack's own only (row 248), iam by role."""
IMAGE_BUILDER_PATHS = {
    "AWS::ImageBuilder::Component": "component/{name}/*",
    "AWS::ImageBuilder::ImageRecipe": "image-recipe/{name}/*",
    "AWS::ImageBuilder::InfrastructureConfiguration": "infrastructure-configuration/{name}",
    "AWS::ImageBuilder::DistributionConfiguration": "distribution-configuration/{name}",
    "AWS::ImageBuilder::ImagePipeline": "image-pipeline/{name}",
    "AWS::ImageBuilder::LifecyclePolicy": "lifecycle-policy/{name}",
}
"""Each Image Builder type's resource path in its ARN (<name>/<version>/<build> for the versioned); an
AWS::ImageBuilder::Image's is image/<its recipe's name>/<version>/<build>."""
SSM_READS = ("ssm:GetParameter*", "ssm:ListTagsForResource", "ssm:DescribeParameters")
STACK_TAG = "aws:ResourceTag/aws:cloudformation:stack-name"
GENERATED_SUFFIX = 14
IAM_NAME_LIMIT = 64
"""IAM's RoleName: "Maximum length of 64" (CreateRole API); a generated role name is cut to fit it."""
"""The random part of a generated name and its hyphen: 13 characters and "-" at most (12 or 13 seen)."""

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
# Every row of config.WINDOWS_VERSIONS: the folder of their AMI parameter.
# ImageSource=baked: the stack's own image and build-settings parameters (compute.IMAGE_PARAMETER).
_OWN_PARAMETERS = "arn:aws:ssm:*:*:parameter/winworkers/"
_AMI_PARAMETERS = "arn:aws:ssm:*:*:parameter" + WINDOWS_AMI_PARAMETER.rsplit("/", 1)[0] + "/*"
TEMPLATE_BUCKET_PLACEHOLDER = "TEMPLATE-BUCKET"
_ROLE_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy")


def resource_types(template: Mapping[str, Any]) -> list[str]:
    """The resource types of a template (custom resources as AWS::CloudFormation::CustomResource)."""
    found = set()
    for resource in template.get("Resources", {}).values():
        kind = str(resource.get("Type", ""))
        found.add("AWS::CloudFormation::CustomResource" if kind.startswith("Custom::") else kind)
    return sorted(found)


def schema_permissions(kinds: Iterable[str], region: str = "us-east-1") -> dict[str, tuple[str, ...]]:
    """Each type's HANDLERS permissions as cfn-lint's registry schemas list them (needs cfn-lint:
    scripts/handler_permissions.py writes winworkers/handler_permissions.py from this)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    out: dict[str, tuple[str, ...]] = {}
    for kind in sorted(set(kinds) - set(UNSCHEMED_ACTIONS)):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema.get("handlers", {})
        out[kind] = tuple(sorted({p for h in HANDLERS for p in handlers.get(h, {}).get("permissions", [])}))
    return out


def handler_actions(kind: str) -> set[str]:
    """What CloudFormation's handlers call for a type (its schema's HANDLERS permissions)."""
    if kind in UNSCHEMED_ACTIONS:
        return set(UNSCHEMED_ACTIONS[kind])
    if kind not in HANDLER_PERMISSIONS:
        raise ValueError(f"no deployer actions known for {kind}: run scripts/handler_permissions.py (make templates)")
    return set(HANDLER_PERMISSIONS[kind])


def needed_actions(kind: str, template: Mapping[str, Any]) -> set[str]:
    """A type's handler actions less NOT_IAM_ACTIONS and LEFT_OUT (refused if the template sets such a property)."""
    left_out: set[str] = set()
    for prop, listed in LEFT_OUT.get(kind, {}).items():
        setting = [name for name, r in _resources(template, kind) if _sets(r, prop)]
        if setting:
            raise ValueError(f"{', '.join(setting)} sets {prop}: grant {', '.join(listed)} (LEFT_OUT)")
        left_out |= set(listed)
    return handler_actions(kind) - NOT_IAM_ACTIONS - left_out


def stack_arns(stack_name: str | None, nested: bool = True) -> list[str]:
    """The stack's ARNs and, when it nests one, its nested stacks' (CloudFormation names those
    <stack>-<logical id>-<random>): without nesting, a sibling stack named <stack>-... is not reached."""
    if not stack_name:
        return ["arn:aws:cloudformation:*:*:stack/*"]
    own = [f"arn:aws:cloudformation:*:*:stack/{stack_name}/*"]
    return [*own, f"arn:aws:cloudformation:*:*:stack/{stack_name}-*/*"] if nested else own


def statements(
    template: Mapping[str, Any], *, template_bucket: str | None = None, stack_name: str | None = None
) -> list[Statement]:
    """The statements for a template: the IAM ones, each other service's actions, the stack's, S3.
    With stack_name, CloudFormation's actions are limited to that stack and its nested stacks."""
    needed = {kind: needed_actions(kind, template) for kind in resource_types(template)}
    by_service: dict[str, set[str]] = {}
    own = [*LOOKUP_ACTIONS, *STACK_ACTIONS]
    if "AWS::EC2::LaunchTemplate" in needed:
        # Auto Scaling resolves the launch template's resolve:ssm: image with the caller's rights.
        own.append(ssm.GetParameters)
    for name in [*(a for listed in needed.values() for a in listed), *(str(a.JSONrepr()) for a in own)]:
        by_service.setdefault(name.partition(":")[0], set()).add(name)
    out = _iam_statements(template, needed, stack_name)
    for service in sorted(set(by_service) - {"iam"}):
        names = _name_patterns(service, template, stack_name)
        out += _service_statements(service, by_service[service], stack_name, names, _nests(template))
    return out + _bucket_statements(template_bucket or TEMPLATE_BUCKET_PLACEHOLDER)


def _nests(template: Mapping[str, Any]) -> bool:
    return bool(_resources(template, "AWS::CloudFormation::Stack"))


def _name_patterns(service: str, template: Mapping[str, Any], stack_name: str | None) -> list[str]:
    """The stack's resources' names, one pattern each: <stack>-<logical id>-* (CloudFormation's generated
    name), the group's explicit ${AWS::StackName}-<name>; "*" without --stack-name, or where a generated
    name could be cut to the type's length limit (a nested feature stack's name is the parent's choice)."""
    scope = SCOPES.get(service)
    if service == "imagebuilder":
        return _image_builder_paths(template, stack_name)
    if not stack_name or scope is None:
        return ["*"]
    if service == "autoscaling":
        infix = "-*-" if _nests(template) else "-"
        return [f"{stack_name}{infix}{_group_suffix(r)}" for _, r in _resources(template, _GROUP)] or ["*"]
    ids = [n for n, _ in _resources(template, scope.kind)]
    longest = max((len(n) for n in ids), default=0)
    if _nests(template) or len(stack_name) + 1 + longest + GENERATED_SUFFIX > scope.limit:
        return ["*"]
    return [f"{stack_name}-{n}-*" for n in sorted(ids)]


_GROUP = "AWS::AutoScaling::AutoScalingGroup"


def _image_builder_paths(template: Mapping[str, Any], stack_name: str | None) -> list[str]:
    """The ARN paths of the template's Image Builder resources, named ${<role>}-<name> (image.image_builder_name):
    the role's generated name is <stack>-<role>-<random>, "*" where the stack's name could be cut (IAM's 64)
    or is the parent's choice (a nested feature stack); Image Builder writes a name in lower case in its ARN
    (row 247). Without stack_name: every resource of those types."""
    nests = _nests(template)

    def name(resource: Mapping[str, Any]) -> str:
        if not stack_name:
            return "*"
        role, suffix = _name_parts(template, resource)
        whole = not nests and len(stack_name) + 1 + len(role) + GENERATED_SUFFIX <= IAM_NAME_LIMIT
        return (f"{stack_name}-{role}-*-{suffix}" if whole else f"*-{suffix}").lower()

    paths = [
        path.format(name=name(r)) for kind, path in IMAGE_BUILDER_PATHS.items() for _, r in _resources(template, kind)
    ]
    recipes = dict(_resources(template, "AWS::ImageBuilder::ImageRecipe"))
    for _, image in _resources(template, "AWS::ImageBuilder::Image"):
        recipe = image.get("Properties", {}).get("ImageRecipeArn", {}).get("Fn::GetAtt", [""])[0]
        if recipe not in recipes:
            raise ValueError("an image's recipe must be the template's for the deployer policy to scope it")
        paths.append(f"image/{name(recipes[recipe])}/*")
    return sorted(set(paths))


def _name_parts(template: Mapping[str, Any], resource: Mapping[str, Any]) -> tuple[str, str]:
    """The role and the suffix of an Image Builder name ``Fn::Sub ${<role>}-<suffix>``."""
    name = resource.get("Properties", {}).get("Name", {})
    text = name.get("Fn::Sub", "") if isinstance(name, Mapping) else ""
    found = re.fullmatch(r"\$\{([A-Za-z0-9]+)\}-(.+)", text) if isinstance(text, str) else None
    roles = dict(_resources(template, "AWS::IAM::Role"))
    if not found or found.group(1) not in roles:
        raise ValueError("an Image Builder name must be ${<a role of the template>}-<name> for the deployer policy")
    return found.group(1), found.group(2)


def _group_suffix(group: Mapping[str, Any]) -> str:
    """What follows the stack's name in the group's explicit name (``Fn::Sub ${AWS::StackName}-<suffix>``)."""
    return _name_suffix(group, "AutoScalingGroupName", "the group's name")


def _name_suffix(resource: Mapping[str, Any], prop: str, what: str) -> str:
    """What follows the stack's name in resource's explicit name prop (``Fn::Sub ${AWS::StackName}-<suffix>``)."""
    name = resource.get("Properties", {}).get(prop, {})
    text = name.get("Fn::Sub", "") if isinstance(name, Mapping) else ""
    if not isinstance(text, str) or not text.startswith("${AWS::StackName}-"):
        raise ValueError(f"{what} must be ${{AWS::StackName}}-<name> for the deployer policy to scope it")
    return text.removeprefix("${AWS::StackName}-")


def policy_documents(
    config: WorkersConfig | None = None,
    *,
    template: Mapping[str, Any] | None = None,
    template_bucket: str | None = None,
    nested: bool = False,
    stack_name: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The managed policies for the feature's template (read from ``template``, the feature built from
    config as the caller has it; built here from config when not given), name -> document, each within
    MANAGED_POLICY_CHARACTERS (a ValueError names one that is not)."""
    config = config or WorkersConfig()
    grouped: dict[str, list[dict[str, Any]]] = {group: [] for group in DOCUMENTS}
    for statement in _statement_dicts(_feature(config, template), template_bucket, nested, stack_name):
        grouped[_document_of(statement)].append(statement)
    out: dict[str, dict[str, Any]] = {}
    for group, listed in grouped.items():
        if not listed:
            continue
        name = f"{stack_name + '-' if stack_name else ''}{config.prefix}Deployer{group}"
        document = {"Version": "2012-10-17", "Statement": listed}
        if policy_size(document) > MANAGED_POLICY_CHARACTERS:
            raise ValueError(f"{name} is {policy_size(document)} characters, over {MANAGED_POLICY_CHARACTERS}")
        if len(name) > 128:
            raise ValueError(f"--stack-name {stack_name!r}: the policy name {name} is over 128 characters")
        out[name] = document
    return out


def policy_document(
    config: WorkersConfig | None = None,
    *,
    template: Mapping[str, Any] | None = None,
    template_bucket: str | None = None,
    nested: bool = False,
    stack_name: str | None = None,
) -> dict[str, Any]:
    """Every statement of policy_documents in one document: for analysis (over a managed policy's size)."""
    listed = _statement_dicts(_feature(config or WorkersConfig(), template), template_bucket, nested, stack_name)
    return {"Version": "2012-10-17", "Statement": listed}


def policy_size(document: Mapping[str, Any]) -> int:
    """The document's characters as minified JSON: what IAM counts (no white space between tokens;
    the documents' strings hold none)."""
    return len(json.dumps(document, separators=(",", ":")))


def actions(document: Mapping[str, Any]) -> set[str]:
    """Every action (or action pattern) a policy document lists."""
    return {str(a) for s in document["Statement"] for a in s["Action"]}


def allows(document: Mapping[str, Any], action: str) -> bool:
    """Whether the document lists action or a pattern matching it (IAM matches actions case-insensitively)."""
    return any(fnmatch.fnmatchcase(action.lower(), listed.lower()) for listed in actions(document))


def _feature(config: WorkersConfig, template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The template to read: the caller's, else the feature built from config."""
    if template is not None:
        return template
    from winworkers.build import build_template

    built: dict[str, Any] = build_template(config).to_dict()
    return built


def _statement_dicts(
    feature: Mapping[str, Any], template_bucket: str | None, nested: bool, stack_name: str | None
) -> list[dict[str, Any]]:
    """The statements read from feature (with a nested stack of its own when nested), as JSON."""
    template = {**feature, "Resources": dict(feature["Resources"])}
    if nested:
        template["Resources"]["NestedFeatureStack"] = {"Type": "AWS::CloudFormation::Stack"}
    listed = statements(template, template_bucket=template_bucket, stack_name=stack_name)
    document = json.loads(PolicyDocument(Version="2012-10-17", Statement=listed).to_json())
    return list(document["Statement"])


def _document_of(statement: Mapping[str, Any]) -> str:
    service = str(statement["Action"][0]).partition(":")[0]
    for group, services in DOCUMENTS.items():
        if service in services:
            return group
    raise ValueError(f"no deployer policy holds {service} actions: add the service to DOCUMENTS")


def _iam_name(template: Mapping[str, Any], stack_name: str | None, name: str, limit: int) -> str:
    """A role's or profile's generated name, <stack>-<logical id>-<random>: the stack's part only where
    CloudFormation cannot have cut it (IAM's name limit) and the stack nests no feature stack."""
    if not stack_name or _nests(template) or len(stack_name) + 1 + len(name) + GENERATED_SUFFIX > limit:
        return f"*-{name}-*"
    return f"{stack_name}-{name}-*"


def _iam_statements(
    template: Mapping[str, Any], needed: Mapping[str, set[str]], stack_name: str | None = None
) -> list[Statement]:
    """Roles' and inline policies' actions on the roles, profiles' on the profiles, PassRole per role,
    and the service-linked roles of the types whose handlers create one."""
    out: list[Statement] = []
    role_actions = {a for kind in _ROLE_TYPES for a in needed.get(kind, set())}
    profile_actions = needed.get("AWS::IAM::InstanceProfile", set()) - {"iam:PassRole"}
    other = {
        a for kind, listed in needed.items() if kind not in (*_ROLE_TYPES, "AWS::IAM::InstanceProfile") for a in listed
    }
    # Another type's handler reading a role or a profile (Image Builder's reads the build's, the
    # lifecycle policy's role): on the stack's roles and profiles, like their own actions.
    role_actions |= {a for a in other if a == "iam:GetRole"}
    profile_actions |= {a for a in other if a == "iam:GetInstanceProfile"}
    scoped = ("iam:PassRole", "iam:CreateServiceLinkedRole", "iam:GetRole", "iam:GetInstanceProfile")
    stray = sorted(a for a in other if a.startswith("iam:") and a not in scoped)
    if stray:
        raise ValueError(f"no scope known for {', '.join(stray)}: iam actions are never granted on '*'")
    roles = sorted(n for n, _ in _resources(template, "AWS::IAM::Role"))
    profiles = sorted(n for n, _ in _resources(template, "AWS::IAM::InstanceProfile"))
    # CloudFormation names them <stack>-<logical id>-<random>.
    if roles and role_actions:
        resources = [f"arn:aws:iam::*:role/{_iam_name(template, stack_name, name, 64)}" for name in roles]
        out.append(_statement("IAMRole", role_actions, resources))
    if profiles and profile_actions:
        resources = [
            f"arn:aws:iam::*:instance-profile/{_iam_name(template, stack_name, name, 128)}" for name in profiles
        ]
        out.append(_statement("IAMInstanceProfile", profile_actions, resources))
    for name in roles:
        trusted = _trusted(dict(template["Resources"])[name])
        condition = Condition(StringEquals("iam:PassedToService", trusted))
        role = f"arn:aws:iam::*:role/{_iam_name(template, stack_name, name, 64)}"
        out.append(_statement(f"PassRole{name}", {"iam:PassRole"}, [role], condition))
    return out + _service_linked_role_statements(needed)


def _service_linked_role_statements(needed: Mapping[str, set[str]]) -> list[Statement]:
    kinds = sorted(k for k, listed in needed.items() if "iam:CreateServiceLinkedRole" in listed)
    unknown = [k for k in kinds if k not in SERVICE_LINKED_ROLES]
    if unknown:
        raise ValueError(f"no service-linked role known for {', '.join(unknown)}: add it to SERVICE_LINKED_ROLES")
    out = []
    for service, role in sorted({SERVICE_LINKED_ROLES[k] for k in kinds}):
        resource = f"arn:aws:iam::*:role/aws-service-role/{service}/{role}"
        condition = Condition(StringEquals("iam:AWSServiceName", service))
        sid = f"ServiceLinkedRole{role.removeprefix('AWSServiceRoleFor')}"
        out.append(_statement(sid, {"iam:CreateServiceLinkedRole"}, [resource], condition))
    return out


def _service_statements(
    service: str, listed: set[str], stack: str | None, names: list[str], nested: bool
) -> list[Statement]:
    """One service's actions: on the stack for cloudformation, the AMI parameters for ssm, as SCOPES
    says for the services it lists, else "*"."""
    if service == "s3":
        raise ValueError(f"no scope known for {', '.join(sorted(listed))}: s3 is granted on the template bucket only")
    granted = {NARROWED.get(a, a) for a in listed}
    if service == "ssm":
        return _ssm_statements(granted, stack, nested)
    special = {"cloudformation": stack_arns(stack, nested)}
    scope = SCOPES.get(service)
    if scope is None:
        return [_statement(_sid(service), granted, special.get(service, ["*"]))]
    anywhere = {a for a in granted if _matches(a, scope.anywhere) and not _matches(a, scope.scoped)}
    out = [_statement(f"{_sid(service)}Anywhere", anywhere, ["*"])] if anywhere else []
    own = granted - anywhere
    tagged = {a for a in own if not _matches(a, scope.typed_only)}
    if tagged and scope.tagged:
        # The stack's own name; a nested feature stack's is <parent>-<logical id>-<random>.
        values = ([stack, f"{stack}-*"] if nested else [stack]) if stack else ["*"]
        out.append(_statement(_sid(service), tagged, list(scope.tagged), Condition(StringLike(STACK_TAG, values))))
    typed = {a for a in own if _matches(a, scope.typed)}
    if typed and scope.by_type:
        out.append(_statement(f"{_sid(service)}ByType", typed, list(scope.by_type)))
    if own and scope.arns:
        out.append(_statement(_sid(service), own, [arn.format(name=n) for arn in scope.arns for n in names]))
    if service == "ec2" and "ec2:CreateTags" in granted:
        out.append(_tag_on_create_statement(granted))
    return out


def _ssm_statements(granted: set[str], stack: str | None, nested: bool) -> list[Statement]:
    """Reads on AWS's AMI parameters and the stack's own; writes (the stack's image and build-settings
    parameters, compute.IMAGE_PARAMETER: /winworkers/${AWS::StackName}/...) on the stack's own only, never
    on AWS's public path (row 248)."""
    own = [f"{_OWN_PARAMETERS}{stack}/*", *([f"{_OWN_PARAMETERS}{stack}-*/*"] if nested else [])] if stack else []
    own = own or [f"{_OWN_PARAMETERS}*/*"]
    reads = {a for a in granted if _matches(a, SSM_READS)}
    out = [_statement(_sid("ssm"), reads, [_AMI_PARAMETERS, *own])] if reads else []
    writes = granted - reads
    return out + ([_statement("OwnParameters", writes, own)] if writes else [])


def _tag_on_create_statement(granted: set[str]) -> Statement:
    """ec2:CreateTags for the tags a create call applies (TagSpecifications): ec2:CreateAction names it (row 205)."""
    creating = ("ec2:Create", "ec2:Authorize")  # a security group rule is created, and may be tagged, too
    creates = sorted(a.partition(":")[2] for a in granted if a.startswith(creating) and a != "ec2:CreateTags")
    condition = Condition(StringEquals("ec2:CreateAction", creates))
    return _statement("EC2TagOnCreate", {"ec2:CreateTags"}, ["*"], condition)


def _matches(action: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(action, p) for p in patterns)


def _bucket_statements(bucket: str) -> list[Statement]:
    return [
        Statement(Sid="TemplateBucket", Effect=Allow, Action=[s3.ListBucket], Resource=[f"arn:aws:s3:::{bucket}"]),
        Statement(
            Sid="TemplateObjects",
            Effect=Allow,
            Action=[s3.GetObject, s3.PutObject],
            Resource=[f"arn:aws:s3:::{bucket}/*"],
        ),
    ]


def _statement(sid: str, listed: set[str], resources: list[str], condition: Condition | None = None) -> Statement:
    """A statement of the actions, sorted, less those a pattern of the same statement already matches."""
    kept = sorted(a for a in listed if not any(p != a and fnmatch.fnmatchcase(a, p) for p in listed))
    granted = [Action(*a.split(":", 1)) for a in kept]
    if condition is None:
        return Statement(Sid=sid, Effect=Allow, Action=granted, Resource=resources)
    return Statement(Sid=sid, Effect=Allow, Action=granted, Resource=resources, Condition=condition)


def _resources(template: Mapping[str, Any], kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    return sorted((n, r) for n, r in template.get("Resources", {}).items() if r.get("Type") == kind)


def _sets(resource: Mapping[str, Any], prop: str) -> bool:
    value: Any = resource.get("Properties", {})
    for part in prop.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
    return bool(value != {"Ref": "AWS::NoValue"})


def _trusted(role: Mapping[str, Any]) -> list[str]:
    services: list[str] = []
    for statement in role.get("Properties", {}).get("AssumeRolePolicyDocument", {}).get("Statement", []):
        principal = statement.get("Principal", {}).get("Service", [])
        services += [principal] if isinstance(principal, str) else list(principal)
    return sorted(set(services))


_SIDS = {
    "autoscaling": "AutoScaling",
    "cloudformation": "CloudFormation",
    "cloudwatch": "CloudWatch",
    "ec2": "EC2",
    "route53resolver": "Route53Resolver",
    "sns": "SNS",
    "sqs": "SQS",
    "ssm": "WindowsAmiParameters",
    "vpce": "VPCE",
}


def _sid(service: str) -> str:
    return _SIDS.get(service, "".join(part.capitalize() for part in service.split("-")))
