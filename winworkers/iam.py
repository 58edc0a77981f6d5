"""IAM: roles built from awacs statements, and the workers' own grants.

Grants on resources the feature owns are made beside those resources (log
groups in winworkers.observability); this module adds the grants on the
platform's inputs (bucket, queue, artifact, and their own KMS keys when given)
and on this stack, and turns a list of statements into a role. The VPC endpoint policies are derived from the same
statements (winworkers.network), so the role and the network can never
disagree about what the workers may do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awacs import autoscaling, cloudformation, cloudwatch, kms, s3, sqs
from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals, StringLike
from awacs.sts import AssumeRole
from troposphere import AccountId, If, NoValue, Ref, StackId, Sub, Template
from troposphere.iam import InstanceProfile, Policy, PolicyType, Role

from winworkers.bootstrap import group_arn
from winworkers.parameters import Params, key_condition
from winworkers.suppress import skip_cfn_lint

EC2 = "ec2.amazonaws.com"


def trust(service: str) -> PolicyDocument:
    """A trust policy for one AWS service, limited to this account against the confused
    deputy, except for EC2, which does not send aws:SourceAccount when it assumes a role."""
    statement = Statement(Effect=Allow, Principal=Principal("Service", [service]), Action=[AssumeRole])
    if service != EC2:
        statement.Condition = Condition(StringEquals({"aws:SourceAccount": AccountId}))
    return PolicyDocument(Version="2012-10-17", Statement=[statement])


def add_role(template: Template, p: Params, name: str, service: str, statements: Sequence[Statement]) -> Role:
    """A role for service with exactly statements inline, and no managed policies."""
    role = Role(
        p.config.logical_id(name),
        AssumeRolePolicyDocument=trust(service),
        Policies=[
            Policy(
                PolicyName="least-privilege",
                PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=list(statements)),
            )
        ],
    )
    return template.add_resource(role)


def data_bucket_statements(p: Params) -> list[Statement]:
    """Read and write the platform's prefix, list only inside it, and read the service artifact."""
    objects = Sub("arn:${AWS::Partition}:s3:::${Bucket}/${Prefix}*", Bucket=p["DataBucket"], Prefix=p["DataPrefix"])
    return [
        Statement(
            Effect=Allow,
            Action=[s3.GetObject, s3.PutObject, s3.AbortMultipartUpload],
            Resource=[objects],
        ),
        Statement(
            Effect=Allow,
            Action=[s3.ListBucket],
            Resource=[Sub("arn:${AWS::Partition}:s3:::${Bucket}", Bucket=p["DataBucket"])],
            Condition=Condition(StringLike({"s3:prefix": [Sub("${Prefix}*", Prefix=p["DataPrefix"])]})),
        ),
        Statement(
            Effect=Allow,
            Action=[s3.GetObject],
            Resource=[
                Sub("arn:${AWS::Partition}:s3:::${Bucket}/${Key}", Bucket=p["ArtifactBucket"], Key=p["ArtifactKey"])
            ],
        ),
    ]


def queue_statements(p: Params) -> list[Statement]:
    """Take work from the platform's queue, and nothing else on it."""
    return [
        Statement(
            Effect=Allow,
            Action=[
                sqs.ReceiveMessage,
                sqs.DeleteMessage,
                sqs.ChangeMessageVisibility,
                sqs.GetQueueAttributes,
                sqs.GetQueueUrl,
            ],
            # Through Sub so cfn-lint reports the empty default on this role (where it is
            # suppressed with its reason), not on the parameter, which cannot carry an exception.
            Resource=[Sub("${Arn}", Arn=p["WorkQueueArn"])],
        )
    ]


def stack_signal_statements() -> list[Statement]:
    """cfn-init reads this stack's metadata and cfn-signal reports to it; no other stack."""
    return [
        Statement(
            Effect=Allow,
            Action=[cloudformation.DescribeStackResource, cloudformation.SignalResource],
            Resource=[StackId],
        )
    ]


def lifecycle_statements(p: Params) -> list[Statement]:
    """Complete this group's lifecycle actions (the bootstrap's launch hook, the worker's
    drain hook), on no other group. The ARN is built from the group's fixed name: the
    role cannot Ref the group, which depends on the role's instance profile."""
    return [Statement(Effect=Allow, Action=[autoscaling.CompleteLifecycleAction], Resource=[group_arn(p.config)])]


def metrics_statements(p: Params) -> list[Statement]:
    """PutMetricData has no resource type, so it must be *; the namespace condition narrows it."""
    return [
        Statement(
            Effect=Allow,
            Action=[cloudwatch.PutMetricData],
            Resource=["*"],
            Condition=Condition(StringEquals({"cloudwatch:namespace": p.config.metrics_namespace})),
        )
    ]


# Each platform key: the service that calls KMS with it, and what the workers' use of that
# service needs. SQS: a consumer needs kms:Decrypt only, a producer also kms:GenerateDataKey
# (SQS developer guide, "Key management"); the workers only receive. S3: GetObject of an SSE-KMS
# object needs kms:Decrypt, PutObject kms:GenerateDataKey, a multipart upload both (S3 user
# guide, "Using server-side encryption with AWS KMS keys", "Multipart upload and permissions");
# the workers write only the data bucket. SQS and S3 call KMS themselves: no KMS endpoint.
PLATFORM_KEY_USES: dict[str, tuple[str, tuple[Any, ...]]] = {
    "QueueKmsKeyArn": ("sqs", (kms.Decrypt,)),
    "DataKmsKeyArn": ("s3", (kms.Decrypt, kms.GenerateDataKey)),
    "ArtifactKmsKeyArn": ("s3", (kms.Decrypt,)),
}


def platform_key_statement(p: Params, name: str) -> Statement:
    """What PLATFORM_KEY_USES grants for the platform key input name: its actions on that key only,
    through its service only (kms:ViaService). The image build's role reuses the artifact's."""
    service, actions = PLATFORM_KEY_USES[name]
    return Statement(
        Effect=Allow,
        Action=list(actions),
        # Through Sub, as queue_statements does: cfn-lint reports the empty
        # default here, where it is suppressed with its reason.
        Resource=[Sub("${Key}", Key=p[name])],
        Condition=Condition(StringEquals({"kms:ViaService": Sub(f"{service}.${{AWS::Region}}.${{AWS::URLSuffix}}")})),
    )


def add_platform_key_policies(template: Template, p: Params, role: Role) -> list[PolicyType]:
    """One inline policy of role per platform key that is set: exactly what the service needs,
    on that key only, and only when that service itself calls KMS for the workers
    (kms:ViaService). A key given as a parameter gets its policy under the key's condition;
    an unset one gets none.

    They are AWS::IAM::Policy resources (inline policies of the role), not Fn::If items of
    the role's Policies: a condition on a
    resource removes it whole, and the workers' statements, from which the endpoint policies
    are derived, stay as they are (no endpoint carries KMS calls)."""
    policies = []
    for name in PLATFORM_KEY_USES:
        when = key_condition(p, name)
        if when is False:
            continue
        short = name.removesuffix("KmsKeyArn")
        policy = PolicyType(
            p.config.logical_id(f"{short}KeyPolicy"),
            PolicyName=f"platform-key-{short.lower()}",
            Roles=[Ref(role)],
            PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[platform_key_statement(p, name)]),
        )
        if when is not True:
            policy.Condition = when
        skip_cfn_lint(policy, "W1030", "The key is empty while unset; the policy exists only when it is set")
        policies.append(template.add_resource(policy))
    return policies


def add_instance_profile(template: Template, p: Params, statements: Sequence[Statement]) -> tuple[Role, Any]:
    """The workers' role and instance profile. No SSM: nobody, not even Session Manager, gets in."""
    role = add_role(template, p, "InstanceRole", EC2, statements)
    for check in ("W1030", "W1031"):
        skip_cfn_lint(role, check, "Platform inputs are empty while disabled; a Rule requires them when on")
    keys = add_platform_key_policies(template, p, role)
    # The group waits for the profile: with the key policies there too, no worker boots
    # before it may read its artifact. A conditional one is waited for through Fn::If.
    waits = [Ref(k) if "Condition" not in k.resource else If(k.Condition, Ref(k), NoValue) for k in keys]
    profile = InstanceProfile(p.config.logical_id("InstanceProfile"), Roles=[Ref(role)])
    if waits:
        profile.Metadata = {"WaitsFor": waits}
    return role, template.add_resource(profile)
