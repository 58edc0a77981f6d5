"""A platform stack with switches of its own: two Windows fleets inline, each under its own.

The platform names its switches: the Masslynx fleet exists while the parameter
EnableWindowsFleet is "true"; the imaging fleet while the condition ImagingFleetOn
holds (EnableImagingFleet "true" in production). No EnableWinTaskScriptService is
declared. Each fleet reads its own queue; both share the data bucket.

    python examples/own_switch_parent.py OUT_DIR   # writes OUT_DIR/parent-own-switch.json
"""

from __future__ import annotations

import sys
from pathlib import Path

from troposphere import And, Condition, Equals, GetAtt, Output, Parameter, Ref, Template
from troposphere.s3 import Bucket, BucketEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionRule
from troposphere.sqs import Queue

from winworkers import WorkersConfig, add_to
from winworkers.suppress import skip_checkov
from winworkers.templates import render

FLEETS = (WorkersConfig(prefix="Masslynx"), WorkersConfig(prefix="Imaging", include_alarms=False))


def _switch(template: Template, name: str, description: str) -> Parameter:
    return template.add_parameter(
        Parameter(name, Type="String", AllowedValues=["true", "false"], Default="false", Description=description)
    )


def own_switch_parent() -> Template:
    """The platform with two fleets, each conditioned on the platform's own switch."""
    template = Template(Description="Example platform stack with two Windows fleets under its own switches")
    template.set_version("2010-09-09")
    _switch(template, "EnableWindowsFleet", "The platform's switch for its Masslynx Windows fleet")
    imaging = _switch(template, "EnableImagingFleet", "The platform's switch for its imaging Windows fleet")
    environment = template.add_parameter(
        Parameter("Environment", Type="String", AllowedValues=["staging", "production"], Default="staging")
    )
    template.add_condition("ImagingFleetOn", And(Equals(Ref(imaging), "true"), Equals(Ref(environment), "production")))
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
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )
    skip_checkov(bucket, "CKV_AWS_18", "The example platform's bucket: access logging is the platform's concern")
    switches = ("EnableWindowsFleet", Condition("ImagingFleetOn"))
    for config, switch in zip(FLEETS, switches, strict=True):
        # Longer than WinDrainSeconds (default 3600): a draining worker's message never reappears.
        queue = template.add_resource(
            Queue(
                f"Queue{config.prefix}",
                SqsManagedSseEnabled=True,
                VisibilityTimeout=3900,
                MessageRetentionPeriod=1209600,
                DeletionPolicy="Delete",
                UpdateReplacePolicy="Delete",
            )
        )
        skip_checkov(queue, "CKV_AWS_27", "Encrypted by SqsManagedSseEnabled; CKV_AWS_27 only knows KmsMasterKeyId")
        wired = {"WorkQueueArn": GetAtt(queue, "Arn"), "DataBucket": Ref(bucket)}
        fleet = add_to(template, config, wired=wired, switch=switch)
        template.add_output(
            Output(
                config.logical_id("WorkersGroup"),
                Value=Ref(fleet.group),
                Condition=fleet.enabled,
                Description="Its group",
            )
        )
    return template


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    (out / "parent-own-switch.json").write_text(render(own_switch_parent()), encoding="utf-8")
    print(out / "parent-own-switch.json")
