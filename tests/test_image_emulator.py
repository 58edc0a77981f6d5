"""ImageSource=baked on the emulator (winworkers.emulator). moto has no Image Builder: the emulator lists
its types as not created (docs/emulator.md). The stack's image parameter takes its first value from the
first image's ImageId; no image is built there, so the emulator answers that ImageId with a stand-in
(one of moto's Windows AMIs), and says so in the event and in coverage's notes: the deploy completes,
the gap is listed, nothing claims a build happened."""

from __future__ import annotations

from typing import Any

from test_emulator import FEATURE, _deploy, _events, _physical, aws, client, session  # noqa: F401 (fixtures)

from winworkers.deploy import Clients, delete
from winworkers.emulator import coverage
from winworkers.emulator.services import NOT_MODELLED, STAND_IN_NOTE
from winworkers.renderings import enabled_parameters

IMAGE_BUILDER_TYPES = (
    "AWS::ImageBuilder::Component",
    "AWS::ImageBuilder::DistributionConfiguration",
    "AWS::ImageBuilder::Image",
    "AWS::ImageBuilder::ImagePipeline",
    "AWS::ImageBuilder::ImageRecipe",
    "AWS::ImageBuilder::InfrastructureConfiguration",
    "AWS::ImageBuilder::LifecyclePolicy",
)


def test_the_emulator_lists_image_builder_as_not_created() -> None:
    listed = coverage(IMAGE_BUILDER_TYPES)
    assert all(listed[kind] == "not created" for kind in IMAGE_BUILDER_TYPES), listed
    assert "no image was built" in NOT_MODELLED["AWS::ImageBuilder::Image"]


def test_a_baked_deploy_completes_with_a_stand_in_image_said_loudly(aws: Clients, client: Any) -> None:  # noqa: F811
    stack = "baked-standin"
    printed = _deploy(aws, stack, FEATURE, enabled_parameters(ImageSource="baked"))
    events = _events(printed)
    assert aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    not_created = {e[0] for e in events if e[1] == "CREATE_COMPLETE" and e[2].startswith("NOT CREATED")}
    assert {"WinFirstImage", "WinImagePipeline", "WinImageRecipe", "WinWorkerComponent"} <= not_created
    (first,) = [e[2] for e in events if e[0] == "WinFirstImage" and e[1] == "CREATE_COMPLETE"]
    assert "NOT MODELLED: no image was built" in first and "stands in" in first
    # The image parameter (which the launch template resolves) holds the stand-in, a moto Windows AMI.
    physical = _physical(aws, stack)
    value = client("ssm").get_parameter(Name=physical["WinImageParameter"])["Parameter"]["Value"]
    (image,) = aws.ec2.describe_images(ImageIds=[value])["Images"]
    assert image["Name"].startswith("Windows_Server-")
    assert STAND_IN_NOTE.format(image=value, name=image["Name"]) in first
    template = aws.ec2.describe_launch_template_versions(LaunchTemplateId=physical["WinLaunchTemplate"])
    data = template["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["ImageId"] == f"resolve:ssm:{physical['WinImageParameter']}"
    delete(aws, stack, poll_seconds=0.05, echo=lambda _: None, yes=True)
