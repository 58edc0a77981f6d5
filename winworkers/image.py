"""The baked image (ImageSource=baked): an EC2 Image Builder pipeline that the stack owns.

On the newest AWS-published image of the chosen Windows version (Image Builder's ``ssm:``
parent image, the same public parameter the launch template resolves in aws-published
mode), a component unpacks the platform's artifact and runs its ``install.ps1`` exactly as
cfn-init does at first boot, and installs the CloudWatch agent. The test phase runs
``install.ps1`` again on an instance of the new image: the worker contract's readiness check
(an idempotent re-run exits 0; docs/worker-contract.md, "A warm pool"). The distribution
writes the AMI id to the stack's own SSM parameter (``ImageParameter``), which the launch
template resolves, and enables EC2 Fast Launch when ``FastLaunchSnapshots`` is not 0. A
weekly pipeline builds only when the parent image or a component is newer
(``EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE``); a lifecycle policy deletes all but
the last images. docs/baked-image.md says how the first image exists, what an update
replaces, and which endpoints the build needs; docs/aws-behaviours.md, rows 227 on.

Everything here exists under the BakedImage condition (the switch and ImageSource=baked).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awacs import ec2, s3, ssm
from awacs.aws import Allow, PolicyDocument, Statement
from troposphere import AWSHelperFn, GetAtt, If, NoValue, Ref, Sub, Template
from troposphere.ec2 import (
    LaunchTemplate,
    LaunchTemplateData,
    MetadataOptions,
    NetworkInterfaces,
    SecurityGroup,
)
from troposphere.iam import InstanceProfile, Policy, Role
from troposphere.imagebuilder import (
    Action,
    AmiDistributionConfiguration,
    AmiExclusionRules,
    Component,
    ComponentConfiguration,
    ComponentParameter,
    DeletionSettings,
    DistributionConfiguration,
    EbsInstanceBlockDeviceSpecification,
    ExclusionRules,
    FastLaunchConfiguration,
    FastLaunchLaunchTemplateSpecification,
    FastLaunchSnapshotConfiguration,
    Filter,
    Image,
    ImagePipeline,
    ImageRecipe,
    ImageTestsConfiguration,
    IncludeResources,
    InfrastructureConfiguration,
    InstanceBlockDeviceMapping,
    InstanceMetadataOptions,
    LastLaunched,
    LifecyclePolicy,
    PolicyDetail,
    ResourceSelection,
    Schedule,
    SsmParameterConfiguration,
)
from troposphere.imagebuilder import Distribution as ImageDistribution
from troposphere.ssm import Parameter as SsmParameter

from winworkers import iam
from winworkers.bootstrap import SERVICE_CONFIG, SERVICE_DIR
from winworkers.compute import AMI_PARAMETER, IMAGE_PARAMETER, image_parameter_name
from winworkers.network import BuildAccess, Network
from winworkers.parameters import Params, key_condition
from winworkers.suppress import skip_cfn_lint

BUILD_SCHEDULE = "cron(0 3 ? * sun *)"
"""Weekly, Sunday 03:00 UTC: the seed's weekly check, done by Image Builder (row 230)."""
START_CONDITION = "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"
IMAGES_KEPT = 3
"""The lifecycle policy keeps this many of the newest images (and their snapshots)."""
AGENT_MSI = (
    "https://amazoncloudwatch-agent-{{ Region }}.s3.{{ Region }}.amazonaws.com"
    "/windows/amd64/latest/amazon-cloudwatch-agent.msi"
)
"""The agent's MSI in the build's Region: Region is a component parameter the recipe sets to
AWS::Region (AWSTOE documents no built-in Region variable; register row 246)."""
COMPONENT_PARAMETERS = ("Bucket", "Key", "Settings", "Region")
LAST_LAUNCHED_DAYS = 14
"""The lifecycle policy never deletes an AMI that launched an instance within this many days: two periods
of RefreshSchedule's default, rate(7 days) (docs/baked-image.md says why; rows 243, 244)."""
EXECUTION_POLICIES = ("EC2ImageBuilderExecutionPolicy", "service-role/EC2ImageBuilderLifecycleExecutionPolicy")
"""The image execution role's managed policies: what AWS documents for a custom execution role, in place of
its service-linked role (row 242), and for a lifecycle policy's role (row 243). One role for
both: the pipeline's, the first image's and the lifecycle policy's, all Image Builder acting on the
stack's images (the project's budget of 100 resources per template)."""
MANAGED_POLICIES = ("EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore")
"""What Image Builder documents its build and test instances' profile needs (row 232): the
build instance is driven through Systems Manager, which no worker may reach."""
FIRST_SUBNET = "The first subnet: SubnetIds is read only in existing-subnets mode; a Rule requires it there"
IMAGE_TAG = "winworkers:image"
ROOT_DEVICE = "/dev/sda1"
ROOT_VOLUME = {"VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True}
RECIPE_CODE = {"ParentImage": AMI_PARAMETER, "DeviceName": ROOT_DEVICE, **ROOT_VOLUME}
"""What the recipe's properties hold that this code (not an input) decides: in document_version's digest."""


@dataclass(frozen=True)
class BakedImage:
    """Handles: the stack's image parameter (``Ref`` is its name) and the first image, which the
    stack waits for."""

    parameter: SsmParameter
    first_image: Image
    build_role: Role
    build_security_group: SecurityGroup


def _install_document(p: Params) -> dict[str, Any]:
    """The component's AWSTOE document: the artifact unpacked and installed as cfn-init does at
    first boot (bootstrap.init_metadata), the agent MSI installed; test: install.ps1 again."""
    install = f"& '{SERVICE_DIR}\\install.ps1' -ConfigPath '{SERVICE_CONFIG}'; exit $LASTEXITCODE"
    zip_path = "C:\\winworkers\\artifact.zip"
    steps = [
        {
            "name": "Artifact",
            "action": "S3Download",
            "inputs": [{"source": "s3://{{ Bucket }}/{{ Key }}", "destination": zip_path}],
        },
        {
            "name": "Unpack",
            "action": "ExecutePowerShell",
            "inputs": {
                "commands": [
                    f"Expand-Archive -Path '{zip_path}' -DestinationPath '{SERVICE_DIR}' -Force",
                    f"Remove-Item '{zip_path}'",
                ]
            },
        },
        {"name": "AgentMsi", "action": "WebDownload", "inputs": [{"source": AGENT_MSI, "destination": "C:\\a.msi"}]},
        {
            "name": "Agent",
            "action": "ExecuteBinary",
            "inputs": {"path": "msiexec.exe", "arguments": ["/i", "C:\\a.msi", "/qn", "/norestart"]},
        },
        {
            "name": "Install",
            "action": "ExecutePowerShell",
            "inputs": {
                "commands": [
                    "(Get-SSMParameterValue -Name '{{ Settings }}').Parameters[0].Value"
                    f" | Set-Content '{SERVICE_CONFIG}'",
                    install,
                ]
            },
        },
    ]
    test = [{"name": "Ready", "action": "ExecutePowerShell", "inputs": {"commands": [install]}}]
    return {
        "name": "winworkers-worker",
        "schemaVersion": 1.0,
        "parameters": [{name: {"type": "string"}} for name in COMPONENT_PARAMETERS],
        "phases": [{"name": "build", "steps": steps}, {"name": "test", "steps": test}],
    }


def json_text(node: Any) -> Sub:
    """node (a dict of strings, lists and intrinsics) as JSON text at deploy time: an Fn::Sub whose
    variables are the intrinsics, each placed in quotes as is (the parameters' patterns keep quotes
    and backslashes out of them)."""
    variables: dict[str, Any] = {}

    def text(value: Any) -> str:
        if isinstance(value, AWSHelperFn):
            name = f"V{len(variables)}"
            variables[name] = value
            return f'"${{{name}}}"'
        if isinstance(value, dict):
            return "{" + ",".join(json.dumps(k) + ":" + text(v) for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ",".join(text(v) for v in value) + "]"
        return json.dumps(value).replace("${", "${!")

    return Sub(text(node), **variables)


def document_version(p: Params) -> str:
    """The major of the component's and recipe's versions: a digest of what this code builds (the
    component's document and the recipe's code-defined properties, RECIPE_CODE), so a winworkers
    release that changes either makes a new version (they are immutable)."""
    data = json.dumps([_install_document(p), RECIPE_CODE], sort_keys=True)
    return str(int(hashlib.sha256(data.encode()).hexdigest()[:7], 16))


def _version(p: Params) -> Sub:
    """x.y.z: the code's digest, then ImageRevision, which the operator raises with the artifact."""
    return Sub(f"{document_version(p)}.${{Revision}}.0", Revision=p["ImageRevision"])


def add_baked_image(
    template: Template, p: Params, network: Network, build: BuildAccess, profile: InstanceProfile, worker_settings: Any
) -> BakedImage:
    """Everything of the baked image, under BakedImage, in the feature's network (the build's
    security group is network's; its role is add_build_role's); returns its handles."""
    lid = p.config.logical_id
    baked = p.cond("BakedImage")
    group = network.build_security_group
    subnet_ids = network.first_subnet_id
    component, settings = _component_and_settings(template, p, worker_settings)
    recipe = template.add_resource(_recipe(p, component, settings))
    infrastructure = _infrastructure(p, profile, group, subnet_ids)
    # The first image and the pipeline read the infrastructure configuration: its Metadata carries the
    # build's network (Fn::If per mode; DependsOn cannot be conditional), as compute does the group's.
    # On a switch aws-published -> baked the DNS Firewall's lists, updated in place, come first too.
    infrastructure.Metadata = {"WaitsFor": network.build_ready}
    fast = _fast_launch_template(p, group, subnet_ids)
    for resource in (infrastructure, fast):
        # cfn-lint resolves SubnetIds' empty default; a Rule requires it in existing-subnets.
        skip_cfn_lint(resource, "W1035", FIRST_SUBNET)
        template.add_resource(resource)
    distribution = template.add_resource(_distribution(p, fast, "ImageDistribution", "distribution", output=True))
    first_distribution = _distribution(p, fast, "FirstImageDistribution", "firstdistribution", output=False)
    template.add_resource(first_distribution)
    execution = template.add_resource(_execution_role(p))
    arns = {
        "ImageRecipeArn": GetAtt(recipe, "Arn"),
        "InfrastructureConfigurationArn": GetAtt(infrastructure, "Arn"),
        "DistributionConfigurationArn": GetAtt(distribution, "Arn"),
        "ImageTestsConfiguration": ImageTestsConfiguration(ImageTestsEnabled=True, TimeoutMinutes=60),
        "ExecutionRole": GetAtt(execution, "Arn"),
    }
    first = template.add_resource(_first_image(p, arns, first_distribution))
    parameter = template.add_resource(_parameter(p, first))
    template.add_resource(
        ImagePipeline(
            lid("ImagePipeline"),
            # After CloudFormation created the parameter: a run before would create it first (row 245),
            # and ImageParameter's create would fail on the existing name.
            DependsOn=[parameter],
            Name=image_builder_name(p, "image"),
            Schedule=Schedule(ScheduleExpression=BUILD_SCHEDULE, PipelineExecutionStartCondition=START_CONDITION),
            Status="ENABLED",
            ImageTags=image_tags(p),
            Condition=baked,
            **arns,
        )
    )
    template.add_resource(_lifecycle(p, execution))
    return BakedImage(parameter=parameter, first_image=first, build_role=build.role, build_security_group=group)


def _component_and_settings(template: Template, p: Params, worker_settings: Any) -> tuple[Component, SsmParameter]:
    """The component (its AWSTOE document) and the build's worker.json parameter."""
    lid = p.config.logical_id
    baked = p.cond("BakedImage")
    component = template.add_resource(
        Component(
            lid("WorkerComponent"),
            Name=image_builder_name(p, "worker"),
            Version=_version(p),
            Platform="Windows",
            Data=json.dumps(_install_document(p), indent=1),
            Description="The platform's artifact through its install.ps1, and the CloudWatch agent",
            Condition=baked,
        )
    )
    # worker.json as the boot writes it, for install.ps1 at the build: a parameter of the stack's
    # (mutable), so a change of the queue or the drain time needs no new recipe version.
    settings = template.add_resource(
        SsmParameter(
            lid("BuildSettings"),
            Name=Sub(IMAGE_PARAMETER.replace("{prefix}", p.config.prefix).replace("image-id", "build-settings")),
            Type="String",
            Value=json_text(worker_settings),
            Description="worker.json for install.ps1 in the image build (winworkers.image)",
            Condition=baked,
        )
    )
    return component, settings


def _first_image(p: Params, arns: dict[str, Any], first_distribution: DistributionConfiguration) -> Image:
    """The first image, built while the stack is created (CloudFormation waits for it). Its own
    distribution enables Fast Launch as the pipeline's does, but writes no parameter: a distribution
    creates the parameter when it does not exist (row 245), and CloudFormation creates
    ImageParameter after this image, with its AMI id (docs/baked-image.md)."""
    return Image(
        p.config.logical_id("FirstImage"),
        ImageRecipeArn=arns["ImageRecipeArn"],
        InfrastructureConfigurationArn=arns["InfrastructureConfigurationArn"],
        DistributionConfigurationArn=GetAtt(first_distribution, "Arn"),
        ImageTestsConfiguration=arns["ImageTestsConfiguration"],
        ExecutionRole=arns["ExecutionRole"],
        # Its AMI and snapshots go with it when it is replaced or deleted (274): without this,
        # each ImageRevision update and the switch back to aws-published leaves them.
        DeletionSettings=DeletionSettings(ExecutionRole=arns["ExecutionRole"]),
        Tags=image_tags(p),
        Condition=p.cond("BakedImage"),
    )


def add_build_role(template: Template, p: Params) -> tuple[BuildAccess, InstanceProfile]:
    """The build and test instances' role and profile (BakedImage): Image Builder's and Systems
    Manager's managed policies, and the one artifact object. No worker has it."""
    artifact = Sub("arn:${AWS::Partition}:s3:::${Bucket}/${Key}", Bucket=p["ArtifactBucket"], Key=p["ArtifactKey"])
    statement = Statement(Effect=Allow, Action=[s3.GetObject], Resource=[artifact])
    role = template.add_resource(
        Role(
            p.config.logical_id("BuildRole"),
            AssumeRolePolicyDocument=iam.trust(iam.EC2),
            ManagedPolicyArns=[Sub(f"arn:${{AWS::Partition}}:iam::aws:policy/{name}") for name in MANAGED_POLICIES],
            Policies=[
                Policy(
                    PolicyName="artifact",
                    PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[statement]),
                ),
                *_artifact_key_policy(p),
            ],
            Condition=p.cond("BakedImage"),
        )
    )
    skip_cfn_lint(role, "W1030", "The artifact's key is empty while unset; its policy exists only when it is set")
    profile = template.add_resource(
        InstanceProfile(p.config.logical_id("BuildProfile"), Roles=[Ref(role)], Condition=p.cond("BakedImage"))
    )
    # Image Builder's own objects (network.IMAGE_BUILDER_OBJECTS) are public: the S3 gateway adds them.
    return BuildAccess(role=role, s3_objects=(artifact,)), profile


def _artifact_key_policy(p: Params) -> list[Any]:
    """kms:Decrypt on ArtifactKmsKeyArn through S3, as the workers' role has it (iam.PLATFORM_KEY_USES):
    AWSTOE's S3Download of an SSE-KMS artifact needs it (273). None while the key is unset."""
    when = key_condition(p, "ArtifactKmsKeyArn")
    if when is False:
        return []
    document = PolicyDocument(Version="2012-10-17", Statement=[iam.platform_key_statement(p, "ArtifactKmsKeyArn")])
    policy = Policy(PolicyName="artifact-key", PolicyDocument=document)
    return [policy if when is True else If(when, policy, NoValue)]


def _recipe(p: Params, component: Component, settings: SsmParameter) -> ImageRecipe:
    return ImageRecipe(
        p.config.logical_id("ImageRecipe"),
        Name=image_builder_name(p, "recipe"),
        Version=_version(p),
        # Image Builder's ssm: parent image: the AWS-published image the launch template reads in
        # aws-published mode, resolved at each build (row 227).
        ParentImage=Sub("ssm:" + AMI_PARAMETER, Version=p["WindowsVersion"]),
        Components=[
            ComponentConfiguration(
                ComponentArn=GetAtt(component, "Arn"),
                Parameters=[
                    ComponentParameter(Name="Bucket", Value=[p["ArtifactBucket"]]),
                    ComponentParameter(Name="Key", Value=[p["ArtifactKey"]]),
                    ComponentParameter(Name="Settings", Value=[Ref(settings)]),
                    ComponentParameter(Name="Region", Value=[Ref("AWS::Region")]),
                ],
            )
        ],
        BlockDeviceMappings=[
            InstanceBlockDeviceMapping(
                DeviceName=ROOT_DEVICE,
                Ebs=EbsInstanceBlockDeviceSpecification(VolumeSize=p["BuildVolumeSize"], **ROOT_VOLUME),
            )
        ],
        Condition=p.cond("BakedImage"),
    )


def _infrastructure(p: Params, profile: InstanceProfile, group: SecurityGroup, subnet_ids: Any) -> Any:
    return InfrastructureConfiguration(
        p.config.logical_id("BuildInfrastructure"),
        Name=image_builder_name(p, "build"),
        InstanceProfileName=Ref(profile),
        InstanceTypes=[p["InstanceType"]],
        SubnetId=subnet_ids,
        SecurityGroupIds=[Ref(group)],
        # No KeyPair: nobody logs in to a build either.
        InstanceMetadataOptions=InstanceMetadataOptions(HttpTokens="required", HttpPutResponseHopLimit=1),
        TerminateInstanceOnFailure=True,
        Condition=p.cond("BakedImage"),
    )


def _fast_launch_template(p: Params, group: SecurityGroup, subnet_ids: Any) -> LaunchTemplate:
    """The launch template of Fast Launch's pre-provisioning instances: the feature's network, IMDSv2."""
    return LaunchTemplate(
        p.config.logical_id("FastLaunchTemplate"),
        LaunchTemplateData=LaunchTemplateData(
            InstanceType=p["InstanceType"],
            NetworkInterfaces=[
                NetworkInterfaces(
                    DeviceIndex=0,
                    AssociatePublicIpAddress=False,
                    DeleteOnTermination=True,
                    SubnetId=subnet_ids,
                    Groups=[Ref(group)],
                )
            ],
            MetadataOptions=MetadataOptions(HttpEndpoint="enabled", HttpTokens="required", HttpPutResponseHopLimit=1),
        ),
        # Whenever baked, not only while FastLaunchSnapshots > 0: the images already built keep Fast
        # Launch with this template, and EC2 replenishes their snapshots with it (275).
        Condition=p.cond("BakedImage"),
    )


def _parameter(p: Params, first: Image) -> SsmParameter:
    """The stack's image parameter: created with the first image's AMI id (so the stack waits for
    the first build), then written by the pipeline's distribution at each new image. CloudFormation
    writes it again only when the first image is replaced (docs/baked-image.md)."""
    return SsmParameter(
        p.config.logical_id("ImageParameter"),
        Name=image_parameter_name(p),
        Type="String",
        DataType="aws:ec2:image",
        Value=GetAtt(first, "ImageId"),
        Description="The baked worker image (winworkers.image); Image Builder's distribution writes it",
        Condition=p.cond("BakedImage"),
    )


def _execution_role(p: Params) -> Role:
    """The role Image Builder runs the pipeline's and the first image's workflows, and the lifecycle policy, as: AWS's
    EC2ImageBuilderExecutionPolicy in place of its service-linked role, whose ssm:PutParameter reaches
    /imagebuilder/* only, and what the SSM output needs: ssm:PutParameter on the stack's image parameter
    and ec2:DescribeImages for its aws:ec2:image data type (rows 241, 242)."""
    parameter = Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter" + _parameter_path(p))
    document = PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(Effect=Allow, Action=[ssm.PutParameter], Resource=[parameter]),
            # DescribeImages takes no resource (Service Authorization Reference).
            Statement(Effect=Allow, Action=[ec2.DescribeImages], Resource=["*"]),
        ],
    )
    return Role(
        p.config.logical_id(NAMED_BY),
        AssumeRolePolicyDocument=iam.trust("imagebuilder.amazonaws.com"),
        ManagedPolicyArns=[Sub(f"arn:${{AWS::Partition}}:iam::aws:policy/{name}") for name in EXECUTION_POLICIES],
        Policies=[Policy(PolicyName="image-parameter", PolicyDocument=document)],
        Condition=p.cond("BakedImage"),
    )


def _parameter_path(p: Params) -> str:
    """ImageParameter's name as Fn::Sub text (compute.IMAGE_PARAMETER)."""
    return IMAGE_PARAMETER.replace("{prefix}", p.config.prefix)


def _distribution(p: Params, fast: LaunchTemplate, name: str, suffix: str, output: bool) -> DistributionConfiguration:
    """A distribution with Fast Launch (FastLaunch), and with output the SSM parameter the launch
    template resolves (the pipeline's); without it, the first image's."""
    fast_launch = FastLaunchConfiguration(
        Enabled=True,
        LaunchTemplate=FastLaunchLaunchTemplateSpecification(LaunchTemplateId=Ref(fast)),
        SnapshotConfiguration=FastLaunchSnapshotConfiguration(TargetResourceCount=p["FastLaunchSnapshots"]),
        MaxParallelLaunches=6,
    )
    outputs = [SsmParameterConfiguration(ParameterName=image_parameter_name(p), DataType="aws:ec2:image")]
    return DistributionConfiguration(
        p.config.logical_id(name),
        Name=image_builder_name(p, suffix),
        Distributions=[
            ImageDistribution(
                Region=Ref("AWS::Region"),
                AmiDistributionConfiguration=AmiDistributionConfiguration(
                    Name=image_builder_name(p, "worker-{{ imagebuilder:buildDate }}", logical=False),
                    Description=Sub("The worker image of stack ${AWS::StackName} (winworkers)"),
                ),
                SsmParameterConfigurations=outputs if output else NoValue,
                FastLaunchConfigurations=If(p.cond("FastLaunch"), [fast_launch], NoValue),
            )
        ],
        Condition=p.cond("BakedImage"),
    )


NAMED_BY = "ImageExecutionRole"
"""The role whose name starts every Image Builder name of the stack's (and its AMIs' names)."""


def image_builder_name(p: Params, suffix: str, logical: bool = True) -> Sub:
    """``${<ImageExecutionRole>}-<suffix>``: the execution role's generated name (<stack>-<logical id>-<random>,
    the stack name cut as needed, at most 64 characters: IAM's RoleName limit; 276), so every name fits
    Image Builder's 128 (an AMI's 127) whatever the stack's name, starts with it when it is short, and is
    unique (a role's name is, in the account). ${AWS::StackName} may be 128 characters (a nested stack's
    name is longer than its parent's). suffix is a logical id's (logical) or literal text."""
    role = p.config.logical_id(NAMED_BY)
    return Sub(f"${{{role}}}-" + (p.config.logical_id(suffix) if logical else suffix))


def image_tags(p: Params) -> dict[str, Any]:
    """The tag of the stack's images, which the lifecycle policy selects them by."""
    return {IMAGE_TAG: Sub("${AWS::StackName}/" + p.config.prefix)}


def _lifecycle(p: Params, role: Role) -> LifecyclePolicy:
    """Keep the last IMAGES_KEPT images: older AMIs are deregistered and their snapshots deleted,
    as role (the execution role, which also holds EC2ImageBuilderLifecycleExecutionPolicy).
    The newest is the one the parameter names, so the group never loses its image."""
    return LifecyclePolicy(
        p.config.logical_id("ImageLifecycle"),
        Name=image_builder_name(p, "images"),
        ExecutionRole=GetAtt(role, "Arn"),
        ResourceType="AMI_IMAGE",
        PolicyDetails=[
            PolicyDetail(
                # The AMIs and their snapshots too: without IncludeResources only the Image Builder
                # image resources would go (row 243).
                Action=Action(Type="DELETE", IncludeResources=IncludeResources(Amis=True, Snapshots=True)),
                Filter=Filter(Type="COUNT", Value=IMAGES_KEPT),
                # Never an AMI that launched an instance lately (row 244; docs/baked-image.md).
                ExclusionRules=ExclusionRules(
                    Amis=AmiExclusionRules(LastLaunched=LastLaunched(Unit="DAYS", Value=LAST_LAUNCHED_DAYS))
                ),
            )
        ],
        # The stack's images by their tag: every version of the recipe, the first image's too.
        ResourceSelection=ResourceSelection(TagMap=image_tags(p)),
        Condition=p.cond("BakedImage"),
    )


def revision_problems(
    template: Mapping[str, Any],
    values: Mapping[str, str],
    previous: Mapping[str, str],
    children: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """The deploy's pre-check (winworkers.deploy.execute): for each image recipe of template that exists
    before and after the update (its condition holds for both), the inputs it reads that change while
    its revision (the ImageRevision its Version reads) does not. Image Builder refuses a second recipe
    of the same name and version, so such an update would roll back after the network is built.
    A nested winworkers stack's recipe is its child's: ``children``, by the stack's logical id, as
    build.built_children gives them (the deploy passes those it has read; image may not import build,
    tests/test_package.py), judged on the child's parameters the parent passes by Ref. Without
    ``children`` a nested stack's recipe is not judged."""
    from winworkers.deploy.changes import references, resources_holding

    parameters = template.get("Parameters", {})
    held = resources_holding(template, values) & resources_holding(template, {**values, **previous})
    problems = []
    for name, child in (children or {}).items():
        if name in held and previous:
            passed = template["Resources"][name].get("Properties", {}).get("Parameters", {})
            by_ref = {k: v["Ref"] for k, v in passed.items() if isinstance(v, Mapping) and list(v) == ["Ref"]}
            given, before = ({k: d[v] for k, v in by_ref.items() if v in d} for d in (values, previous))
            problems += revision_problems(child, given, before, children={})
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::ImageBuilder::ImageRecipe" or name not in held or not previous:
            continue
        properties = resource.get("Properties", {})
        revision = {n for n in references(properties.get("Version"), template) if n in parameters}
        inputs = {n for n in references(properties, template) if n in parameters} - revision
        changed = sorted(n for n in inputs if n in previous and previous[n] != values.get(n, previous[n]))
        if changed and all(previous.get(r) == values.get(r, previous.get(r)) for r in revision):
            raise_too = ", ".join(sorted(revision))
            problems.append(
                f"{', '.join(changed)} changed while {raise_too} did not: raise {raise_too} with it "
                "(Image Builder recipes are immutable versions; docs/baked-image.md)"
            )
    return problems
