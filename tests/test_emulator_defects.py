"""The five states the emulator reported that did not happen (issue 26), each judged by
asking moto's other services what exists, never by the stack's own report:

1. deleting a nested parent re-created its live child and queue (the DescribeStacks after
   the deletion evaluated the deleted parent's outputs again);
2. any update of a nested parent deleted and re-created the whole child stack;
3. changing WinDataBucket (or WinArtifactBucket) always rolled back with the emulator's own
   Python error in the events;
4. in Spot mode the group ran one launch template version behind the latest;
5. a conditional resource an update added was not deleted when its condition turned false.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, TEMPLATE_BUCKET, stack_events
from winworkers.deploy import Clients, DeployResult, delete, deploy
from winworkers.parameters import SWITCH
from winworkers.renderings import enabled_parameters

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
NESTED = ROOT / "templates" / "parent-nested.json"


def _client(endpoint: str, name: str) -> Any:
    return boto3.client(
        name, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _deploy(aws: Clients, name: str, template: Path, parameters: dict[str, str]) -> DeployResult:
    printed: list[str] = []
    return deploy(
        aws,
        name,
        template,
        parameters,
        template_bucket=TEMPLATE_BUCKET,
        poll_seconds=0.01,
        echo=printed.append,
        yes=True,
    )


def _nested_parameters(aws: Clients, **extra: str) -> dict[str, str]:
    declared = json.loads(NESTED.read_text())["Parameters"]
    parameters = {k: v for k, v in enabled_parameters().items() if k in declared}
    aws.s3.create_bucket(Bucket="defect-children")
    aws.s3.put_object(Bucket="defect-children", Key="winworkers.json", Body=FEATURE.read_bytes())
    parameters["WinTemplateUrl"] = f"https://defect-children.s3.{REGION}.amazonaws.com/winworkers.json"
    return {**parameters, SWITCH: "true", **extra}


def _feature_parameters(**extra: str) -> dict[str, str]:
    return {**enabled_parameters(), **extra}


def _physical(aws: Clients, stack: str) -> dict[str, str]:
    summaries = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}


def _live_stacks(aws: Clients, prefix: str) -> set[str]:
    summaries = aws.cloudformation.list_stacks()["StackSummaries"]
    return {
        s["StackName"] for s in summaries if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"
    }


def _groups(endpoint: str, prefix: str) -> set[str]:
    groups = _client(endpoint, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    return {g["AutoScalingGroupName"] for g in groups if g["AutoScalingGroupName"].startswith(prefix)}


def _queues(endpoint: str, prefix: str) -> set[str]:
    urls = _client(endpoint, "sqs").list_queues().get("QueueUrls", [])
    return {url.rsplit("/", 1)[1] for url in urls if url.rsplit("/", 1)[1].startswith(prefix)}


def test_1_deleting_a_nested_parent_leaves_no_live_stack_group_or_queue(aws: Clients, endpoint: str) -> None:
    stack = "defect-gone"
    _deploy(aws, stack, NESTED, _nested_parameters(aws))
    assert _groups(endpoint, stack) and _queues(endpoint, stack)
    assert delete(aws, stack, poll_seconds=0.01, echo=lambda _: None, yes=True)
    # What deploy does next on a stack name: DescribeStacks, here on the deleted stack.
    for _ in range(2):
        with contextlib.suppress(ClientError):  # by name: "does not exist", as in AWS
            aws.cloudformation.describe_stacks(StackName=stack)
        for summary in aws.cloudformation.list_stacks()["StackSummaries"]:
            if summary["StackName"].startswith(stack):
                aws.cloudformation.describe_stacks(StackName=summary["StackId"])
    assert (_live_stacks(aws, stack), _groups(endpoint, stack), _queues(endpoint, stack)) == (set(), set(), set())


def test_2_a_nested_parents_max_size_update_keeps_the_child_and_creates_nothing(aws: Clients, endpoint: str) -> None:
    stack = "defect-nested"
    _deploy(aws, stack, NESTED, _nested_parameters(aws))
    child = _physical(aws, stack)["WinStack"]
    before = _physical(aws, child)
    logs = {g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]}
    updated = _deploy(aws, stack, NESTED, _nested_parameters(aws, WinMaxSize="6"))
    assert updated.status == "UPDATE_COMPLETE"
    assert _physical(aws, stack)["WinStack"] == child
    assert _physical(aws, child) == before
    assert {g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]} == logs
    group = next(iter(_groups(endpoint, child)))
    described = _client(endpoint, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    assert described["AutoScalingGroups"][0]["MaxSize"] == 6


@pytest.mark.parametrize("parameter", ["WinDataBucket", "WinArtifactBucket"])
def test_3_changing_a_bucket_parameter_updates_the_stack(aws: Clients, endpoint: str, parameter: str) -> None:
    stack = f"defect-{parameter.lower()}"
    _deploy(aws, stack, FEATURE, _feature_parameters())
    bucket = f"defect-other-{parameter.lower()}"
    aws.s3.create_bucket(Bucket=bucket)
    if parameter == "WinArtifactBucket":
        aws.s3.put_object(Bucket=bucket, Key=enabled_parameters()["WinArtifactKey"], Body=b"PK\x05\x06" + bytes(18))
    updated = _deploy(aws, stack, FEATURE, _feature_parameters(**{parameter: bucket}))
    reasons = [e.get("ResourceStatusReason", "") for e in stack_events(aws.cloudformation, stack)]
    assert updated.status == "UPDATE_COMPLETE", [r for r in reasons if r][:3]
    assert not [r for r in reasons if "unexpected keyword" in (r or "")]


def _launch_template_versions(endpoint: str, stack: str, aws: Clients) -> tuple[str, str]:
    """The launch template version the group runs, and the template's latest."""
    physical = _physical(aws, stack)
    ec2 = _client(endpoint, "ec2")
    latest = ec2.describe_launch_templates(LaunchTemplateIds=[physical["WinLaunchTemplate"]])["LaunchTemplates"][0]
    group = _client(endpoint, "autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[physical["WinGroup"]])
    described = group["AutoScalingGroups"][0]
    if "LaunchTemplate" in described.get("MixedInstancesPolicy", {}):
        specification = described["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
    else:
        specification = described["LaunchTemplate"]
    return str(specification["Version"]), str(latest["LatestVersionNumber"])


SPOT = {"WinOnDemandPercentage": "0", "WinInstanceTypes": "m6i.large,m5.large"}
SPOT_STEPS = [
    ("create on demand", {}),
    ("Spot on", SPOT),
    ("Spot, launch template changed", {**SPOT, "WinRootVolumeSize": "80"}),
    ("Spot, group changed", {**SPOT, "WinRootVolumeSize": "80", "WinMaxSize": "6"}),
    ("Spot, both changed", {**SPOT, "WinRootVolumeSize": "90", "WinMaxSize": "7"}),
    ("Spot off, launch template changed", {"WinRootVolumeSize": "100"}),
]


def test_4_in_spot_mode_the_group_runs_the_latest_launch_template_version(aws: Clients, endpoint: str) -> None:
    stack = "defect-spot"
    seen = []
    for step, values in SPOT_STEPS:
        _deploy(aws, stack, FEATURE, _feature_parameters(**values))
        seen.append((step, *_launch_template_versions(endpoint, stack, aws)))
        with contextlib.suppress(ClientError):  # the emulator's refreshes never end: cancel the step's
            group = _physical(aws, stack)["WinGroup"]
            _client(endpoint, "autoscaling").cancel_instance_refresh(AutoScalingGroupName=group)
    assert [(step, used) for step, used, _ in seen] == [(step, latest) for step, _, latest in seen]


def test_5_a_resource_an_update_added_goes_when_its_condition_turns_false(aws: Clients, endpoint: str) -> None:
    stack = "defect-kms"
    _deploy(aws, stack, FEATURE, _feature_parameters())
    assert "WinQueueKeyPolicy" not in _physical(aws, stack)
    key = _client(endpoint, "kms").create_key()["KeyMetadata"]["Arn"]
    _deploy(aws, stack, FEATURE, _feature_parameters(WinQueueKmsKeyArn=key))
    assert "WinQueueKeyPolicy" in _physical(aws, stack)
    cleared = _deploy(aws, stack, FEATURE, _feature_parameters(WinQueueKmsKeyArn=""))
    assert cleared.status == "UPDATE_COMPLETE"
    assert "WinQueueKeyPolicy" not in _physical(aws, stack)
    role = _physical(aws, stack)["WinInstanceRole"]
    names = _client(endpoint, "iam").list_role_policies(RoleName=role)["PolicyNames"]
    assert not [n for n in names if "QueueKey" in n], names


def test_a_planted_orphan_fails_the_deletion_naming_the_invariant(
    aws: Clients, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planted: moto's queue deletion does nothing, so the stack's queue outlives the stack.
    from moto.sqs.models import Queue

    stack = "defect-planted"
    _deploy(aws, stack, NESTED, _nested_parameters(aws, **{SWITCH: "false"}))
    monkeypatch.setattr(Queue, "delete", lambda *_: None, raising=False)
    monkeypatch.setattr(Queue, "delete_from_cloudformation_json", classmethod(lambda *_: None))
    printed: list[str] = []
    with pytest.raises(Exception) as failed:
        delete(aws, stack, poll_seconds=0.01, echo=printed.append, yes=True)
    assert "emulator invariant violated: no-orphan: WorkQueue" in str(failed.value) + "\n".join(printed)
    (described,) = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"]
    assert described["StackStatus"] == "DELETE_FAILED"
    monkeypatch.undo()
    from winworkers.emulator import reset

    reset(endpoint)  # moto's state and the emulator's bookkeeping: the planted orphan is forgotten
    assert _queues(endpoint, stack) == set() and aws.cloudformation.list_stacks()["StackSummaries"] == []


def test_a_planted_re_creation_fails_the_call_naming_the_invariant(aws: Clients, endpoint: str) -> None:
    # Planted: the deleted stack's frozen outputs are dropped, so a DescribeStacks would evaluate them
    # again, and moto's ResourceMap would create the queue they name (0.3.0's defect 1).
    from moto.cloudformation.models import cloudformation_backends

    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}},
    }
    stack_id = aws.cloudformation.create_stack(StackName="defect-recreated", TemplateBody=json.dumps(template))[
        "StackId"
    ]
    assert _queues(endpoint, "defect-recreated")
    aws.cloudformation.delete_stack(StackName="defect-recreated")
    assert _queues(endpoint, "defect-recreated") == set()
    deleted = cloudformation_backends["123456789012"][REGION].deleted_stacks[stack_id]
    del deleted.winworkers_outputs
    deleted.output_map._parsed_outputs.clear()  # and moto's cache of them
    with pytest.raises(ClientError) as refused:
        aws.cloudformation.describe_stacks(StackName=stack_id)
    assert "emulator invariant violated: deleted-stack-not-evaluated: Queue of deleted stack" in str(refused.value)
    assert _queues(endpoint, "defect-recreated") == set()
