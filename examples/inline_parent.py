"""A platform stack with its own work queue and data bucket, and Windows Workers
inline: add_to puts every resource of the feature into the platform's template.

    python examples/inline_parent.py OUT_DIR   # writes OUT_DIR/parent-inline.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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

from winworkers import WorkersConfig, add_to
from winworkers.suppress import skip_checkov
from winworkers.templates import render

CONFIG = WorkersConfig(worker_log_paths=("C:\\ProgramData\\TDP\\Logs\\*.log",))


def platform() -> tuple[Template, dict[str, Any]]:
    """The platform's own stack (its switch, work queue and data bucket), and the
    inputs the feature takes from them instead of from parameters."""
    template = Template(Description="Example platform stack with Windows Workers (winworkers)")
    template.set_version("2010-09-09")
    template.add_parameter(
        Parameter(
            "EnableWinTaskScriptService",
            Type="String",
            AllowedValues=["true", "false"],
            Default="false",
            Description="The platform's switch for its Windows Workers feature",
        )
    )
    queue = template.add_resource(
        Queue(
            "WorkQueue",
            SqsManagedSseEnabled=True,
            # Longer than the longest file takes and than WinDrainSeconds (default 3600),
            # so a message a draining worker still holds never reappears to another.
            VisibilityTimeout=3900,
            MessageRetentionPeriod=1209600,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    skip_checkov(queue, "CKV_AWS_27", "Encrypted by SqsManagedSseEnabled; CKV_AWS_27 only knows KmsMasterKeyId")
    bucket = template.add_resource(
        Bucket(
            "DataBucket",
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
    skip_checkov(bucket, "CKV_AWS_18", "The example platform's bucket: access logging is the platform's concern")
    # Ref of a queue is its URL, and GetAtt Arn of a bucket its ARN: add_to refuses those.
    return template, {"WorkQueueArn": GetAtt(queue, "Arn"), "DataBucket": Ref(bucket)}


def inline_parent(config: WorkersConfig = CONFIG) -> Template:
    """The platform with the feature inline, every resource under the platform's switch."""
    template, inputs = platform()
    feature = add_to(template, config, wired=inputs)
    # The feature's resources exist only when it is enabled: so does what refers to them.
    template.add_output(
        Output("WorkersGroup", Value=Ref(feature.group), Condition=feature.enabled, Description="Workers' group")
    )
    return template


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "parent-inline.json").write_text(render(inline_parent()), encoding="utf-8")
    print(out / "parent-inline.json")
