"""The committed artifacts: the feature's template and a parent that embeds it both ways."""

from __future__ import annotations

import json
from pathlib import Path

from troposphere import GetAtt, Output, Parameter, Ref, Template
from troposphere.s3 import (
    Bucket,
    BucketEncryption,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)
from troposphere.sqs import Queue

from winworkers.build import add_to, build_template, nested_stack
from winworkers.config import WorkersConfig
from winworkers.parameters import SWITCH
from winworkers.refresh import SQS_MANAGED_SSE
from winworkers.suppress import skip_checkov

INLINE_LIMIT = 51_200
"""CloudFormation's limit on a TemplateBody; a larger template must come from S3 (TemplateURL)."""
S3_LIMIT = 1_000_000
"""CloudFormation's limit on a template read from S3."""


def parent_example(config: WorkersConfig | None = None) -> Template:
    """A minimal platform stack: its own queue and bucket, and the feature twice —
    inline with :func:`add_to`, and as a nested stack — both wired to them."""
    config = config or WorkersConfig()
    parent = Template(Description="Example platform stack embedding Windows Workers (winworkers)")
    parent.set_version("2010-09-09")
    parent.add_parameter(
        Parameter(
            SWITCH,
            Type="String",
            AllowedValues=["true", "false"],
            Default="false",
            Description="The platform's switch for its Windows Workers feature",
        )
    )
    url = parent.add_parameter(
        Parameter(
            "WinTemplateUrl",
            Type="String",
            Default="https://example.s3.amazonaws.com/winworkers.json",
            AllowedPattern=r"^https://\S+$",
            Description="Where templates/winworkers.json was uploaded",
        )
    )
    queue = parent.add_resource(
        Queue(
            "PlatformWorkQueue",
            SqsManagedSseEnabled=True,
            VisibilityTimeout=900,
            MessageRetentionPeriod=1209600,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    skip_checkov(queue, "CKV_AWS_27", SQS_MANAGED_SSE)
    bucket = parent.add_resource(
        Bucket(
            "PlatformBucket",
            BucketEncryption=BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                    )
                ]
            ),
            PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
                BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
            ),
            VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )
    skip_checkov(bucket, "CKV_AWS_18", "An example of the platform's bucket: access logging is the platform's concern")
    wired = {"DataBucket": Ref(bucket), "WorkQueueArn": GetAtt(queue, "Arn")}
    feature = add_to(parent, config, wired=wired)
    nested_stack(parent, Ref(url), config, wired=wired)
    parent.add_output(
        Output(
            "InlineWorkersGroup",
            Description="The inline feature's Auto Scaling group, when enabled",
            Value=Ref(feature.group),
            Condition=feature.enabled,
        )
    )
    return parent


def render(template: Template) -> str:
    """Deterministic JSON: sorted keys, two-space indent, UTF-8 rather than escapes
    (cfn-lint 1.58 rejects the surrogate-pair escapes of characters outside the BMP)."""
    return json.dumps(template.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def all_templates(config: WorkersConfig | None = None) -> dict[str, Template]:
    return {"winworkers.json": build_template(config), "parent-example.json": parent_example(config)}


def write_templates(out: Path, config: WorkersConfig | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, template in all_templates(config).items():
        path = out / name
        path.write_text(render(template), encoding="utf-8")
        written.append(path)
    return written
