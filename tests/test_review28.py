"""Review of issue 28 (ImageSource=baked, the build's network): each finding a test that fails on the
code as reviewed, judged on the rendered template resolved for given inputs (tests/resolved.py).
Nothing here is xfail: each test fails until its finding is fixed (or argued away by the lead)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from resolved import resolve

from conftest import ROOT
from winworkers import image
from winworkers.build import build_template, built_children
from winworkers.config import WorkersConfig
from winworkers.deploy.inputs import check_stack_name
from winworkers.renderings import enabled_parameters
from winworkers.rules import failed_assertions

ON = {"EnableWinTaskScriptService": "true"}
KMS_KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    rendered: dict[str, Any] = json.loads(build_template().to_json())
    return rendered


def baked(template: dict[str, Any], mode: str = "isolated-vpc", **more: str) -> dict[str, Any]:
    given = {**ON, "WinImageSource": "baked", "WinNetworkMode": mode, **{f"Win{k}": v for k, v in more.items()}}
    if mode == "existing-subnets":
        given.setdefault("WinBuildEndpointsCidr", "10.9.0.0/24")
    resources: dict[str, Any] = resolve(template, given)["Resources"]
    return resources


def _refs(node: Any) -> set[str]:
    """The names node refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)}
                if isinstance(value, list):
                    found |= _refs(value[1])
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _created_before(resources: dict[str, Any], name: str) -> set[str]:
    """Every resource CloudFormation must finish before it creates name (Ref, GetAtt, Sub, DependsOn), in
    its Properties or its Metadata: AWS's Metadata attribute page says "you can use intrinsic functions (such
    as GetAtt and Ref) ... within the Metadata attribute to add those interpreted values"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-metadata.html), so the
    referenced resource exists first: the repository's conditional-order pattern (register row 7, the
    group's Metadata.WaitsFor)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        resource = resources[todo.pop()]
        depends = resource.get("DependsOn", [])
        direct = _refs([resource.get("Properties", {}), resource.get("Metadata", {})])
        direct |= set([depends] if isinstance(depends, str) else depends)
        for other in direct & set(resources) - seen:
            seen.add(other)
            todo.append(other)
    return seen


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def test_build_role_can_decrypt_a_kms_encrypted_artifact(template: dict[str, Any]) -> None:
    """Blocks the build when ArtifactKmsKeyArn is given: the workers' role gets kms:Decrypt on that key
    (iam.KMS_GRANTS), the build role only s3:GetObject, so AWSTOE's S3Download of an SSE-KMS artifact is
    refused and the first image (and the stack create) fails.

    AWS, Amazon S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html; read through the
    directory-bucket page s3-express-UsingKMSEncryption, translated): "To upload or download an object
    encrypted with an AWS KMS key ... you need kms:GenerateDataKey and kms:Decrypt permissions on the key".
    """
    resources = baked(template, ArtifactKmsKeyArn=KMS_KEY)

    def granted(role: str) -> list[dict[str, Any]]:
        attached = [
            s
            for r in resources.values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]
        ]
        return _statements(resources[role]) + attached

    assert any("kms:Decrypt" in s["Action"] for s in granted("WinInstanceRole")), "precondition: workers decrypt"
    build = granted("WinBuildRole")
    assert any("kms:Decrypt" in s["Action"] for s in build), "the build role cannot read an SSE-KMS artifact"


@pytest.mark.parametrize(
    ("mode", "needed"),
    [
        (
            "isolated-vpc",
            {
                "WinSsmEndpoint",
                "WinSsmmessagesEndpoint",
                "WinEc2messagesEndpoint",
                "WinImagebuilderEndpoint",
                "WinS3Endpoint",
                "WinBuildEgressToEndpoints",
                "WinBuildEndpointIngress",
            },
        ),
        ("existing-subnets", {"WinBuildEgressToNetworkEndpoints"}),
    ],
)
def test_first_image_is_built_after_the_builds_network(template: dict[str, Any], mode: str, needed: set[str]) -> None:
    """Blocks deploy (a race): FirstImage refers to the infrastructure configuration (subnet, security
    group) but to none of the build's VPC endpoints nor the security-group rules that let the build reach
    them, so CloudFormation may launch the build instance while they are still being created; the SSM
    Agent cannot register, and the build (and the stack create) fails or waits out Image Builder's timeout.

    AWS CloudFormation, DependsOn attribute
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html):
    "AWS CloudFormation creates, updates, and deletes resources in parallel to the extent possible. It
    automatically determines which resources in a template can be parallelized and which have dependencies
    that require other operations to finish first."
    """
    resources = baked(template, mode)
    assert needed <= set(resources), "precondition: the build's network is in the template"
    missing = needed - _created_before(resources, "WinFirstImage")
    assert not missing, f"FirstImage may be created before {sorted(missing)}"


def test_image_builder_names_fit_every_stack_name_the_deploy_accepts(template: dict[str, Any]) -> None:
    """Blocks deploy for long stack names: `winworkers deploy` accepts a stack name of 128 characters
    (deploy.inputs.check_stack_name), and every Image Builder name is ${AWS::StackName}-<suffix>; the AMI
    name adds "-worker-{{ imagebuilder:buildDate }}". Image Builder refuses names over its limits (the
    feature's nested stack's own name, <parent>-<logical id>-<random>, is longer still).

    AWS, Image Builder API Reference, DistributionConfiguration
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_DistributionConfiguration.html):
    name "Pattern: ^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$" (at most 128); and
    AmiDistributionConfiguration
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_AmiDistributionConfiguration.html):
    name "Length Constraints: Minimum length of 1. Maximum length of 127."
    """
    stack = "s" * 128
    check_stack_name(stack)  # the deploy accepts it
    too_long = []
    for name, resource in baked(template).items():
        if not resource["Type"].startswith("AWS::ImageBuilder::"):
            continue
        text = resource["Properties"].get("Name", {}).get("Fn::Sub", "")
        if isinstance(text, str) and len(text.replace("${AWS::StackName}", stack)) > 128:
            too_long.append(name)
        for distribution in resource["Properties"].get("Distributions", []):
            ami = distribution["AmiDistributionConfiguration"]["Name"]["Fn::Sub"]
            if len(ami.replace("${AWS::StackName}", stack)) > 127:
                too_long.append(f"{name} AMI name")
    assert not too_long, f"over Image Builder's name limits for a {len(stack)}-character stack: {too_long}"


def test_first_image_deletes_its_ami_when_replaced_or_deleted(template: dict[str, Any]) -> None:
    """Leaks (cost, and Fast Launch left running): deleting or replacing an AWS::ImageBuilder::Image
    without DeletionSettings leaves its AMI, its snapshots and, with FastLaunchSnapshots > 0, its Fast
    Launch pre-provisioned snapshots (replenished by EC2 with a launch template the stack deleted). So do
    ImageSource baked -> aws-published, the stack's delete (the lifecycle policy goes with it), and every
    ImageRevision/ArtifactKey update (the old FirstImage). docs/baked-image.md says the switch "deletes
    every resource above" and names no leftover.

    AWS CloudFormation, AWS::ImageBuilder::Image DeletionSettings
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-imagebuilder-image-deletionsettings.html):
    "Contains deletion settings of underlying resources of an image when it is replaced or deleted,
    including its Amazon Machine Images (AMIs), snapshots, or containers." Image Builder API, DeleteImage:
    "This does not delete any EC2 AMIs or ECR container images that are created during the image build
    process. You must clean those up separately".
    """
    first = baked(template, FastLaunchSnapshots="5")["WinFirstImage"]["Properties"]
    assert "DeletionSettings" in first, "FirstImage leaves its AMI, snapshots and Fast Launch snapshots behind"


def test_build_endpoint_lets_the_build_read_only_its_own_parameter(template: dict[str, Any]) -> None:
    """Least privilege: the build runs the platform's install.ps1 with the build role, whose
    AmazonSSMManagedInstanceCore grants ssm:GetParameter(s) on "*", and the isolated VPC's ssm endpoint
    policy (the one place the stack can narrow it) also allows them on "*": the build may read every
    parameter of the account in the Region (SecureStrings under aws/ssm included). It needs
    BuildSettings only (the component's Get-SSMParameterValue).

    AWS PrivateLink guide, "Control access to VPC endpoints using endpoint policies"
    (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-endpoints-access.html): "An endpoint policy
    does not override or replace identity-based policies or resource-based policies" -- it is the
    additional limit, so "*" there limits nothing.
    """
    policy = baked(template)["WinSsmEndpoint"]["Properties"]["PolicyDocument"]
    reads = [s for s in policy["Statement"] if {"ssm:GetParameter", "ssm:GetParameters"} & set(s["Action"])]
    assert reads, "precondition: the endpoint allows parameter reads"
    assert all(s["Resource"] != ["*"] for s in reads), "the build may read every parameter through the endpoint"


def test_fast_launch_snapshots_change_replaces_nothing_as_documented(template: dict[str, Any]) -> None:
    """Wrong docs (and cost): docs/baked-image.md says a change of FastLaunchSnapshots replaces "nothing
    (the distributions are updated in place)". Going to 0 deletes FastLaunchTemplate, while every image
    already built keeps Fast Launch enabled (the docs agree the setting "was set at its build"): EC2 keeps
    replenishing those AMIs' pre-provisioned snapshots with a launch template that no longer exists.

    AWS EC2 API, EnableFastLaunch, LaunchTemplate
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EnableFastLaunch.html): "The launch
    template to use when launching Windows instances from pre-provisioned snapshots."; and "The reserved
    snapshots are automatically replenished as they are used".
    """
    text = (ROOT / "docs" / "baked-image.md").read_text()
    assert "| `FastLaunchSnapshots` | nothing" in text, "precondition: the claim"
    with_snapshots = set(baked(template, FastLaunchSnapshots="5"))
    without = set(baked(template, FastLaunchSnapshots="0"))
    assert with_snapshots == without, f"FastLaunchSnapshots 5 -> 0 deletes {sorted(with_snapshots - without)}"


def test_switch_to_baked_builds_after_the_dns_firewall_allows_the_build(template: dict[str, Any]) -> None:
    """Blocks the switch ImageSource aws-published -> baked (isolated-vpc): the update moves the Systems
    Manager, Image Builder and bucket names from the blocked (quiet) list to the allowed list in place
    (docs/updates.md), but FirstImage refers to neither list, so CloudFormation may start the first build
    while the VPC's DNS Firewall still blocks ssm.<region>.amazonaws.com for the build instance.

    AWS CloudFormation, DependsOn attribute
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html): only
    "if the properties of resource A use a !Ref to resource B ... Resource B is updated before resource A";
    otherwise "AWS CloudFormation creates, updates, and deletes resources in parallel to the extent
    possible."
    """
    resources = baked(template)
    lists = {"WinDnsAllowList", "WinDnsNoiseList"}
    assert lists <= set(resources), "precondition: the DNS Firewall's lists are in the template"
    missing = lists - _created_before(resources, "WinFirstImage")
    assert not missing, f"the first build may start before {sorted(missing)} allow its names"


def test_the_rule_refuses_a_build_block_equal_to_the_workers_endpoint_block(template: dict[str, Any]) -> None:
    """Breaks isolation through CloudFormation alone: only `winworkers deploy`'s pre-check refuses a
    BuildEndpointsCidr overlapping EndpointsCidr; the template's WinBakedExistingNetwork Rule accepts the
    same block for both, which puts the platform's Systems Manager endpoints inside the block the workers'
    security group sends HTTPS to. Equality, at least, a Rule can refuse (Fn::Equals is a rule function).

    AWS CloudFormation, Rule functions
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-rules.html):
    "In the condition or assertions of a rule, you can use intrinsic functions, such as Fn::Equals, Fn::Not,
    and Fn::RefAll. ... If a parameter value isn't valid, CloudFormation doesn't create or update the stack."
    """
    values = enabled_parameters(mode="existing-subnets", ImageSource="baked", CreateDnsFirewall="true")
    values = {**values, "WinBuildEndpointsCidr": values["WinEndpointsCidr"]}
    assert values["WinEndpointsCidr"], "precondition: the workers' endpoint block is set"
    assert failed_assertions(template, values), "the Rules accept BuildEndpointsCidr == EndpointsCidr"


def test_the_nested_feature_stack_has_time_for_the_first_image(template: dict[str, Any]) -> None:
    """Blocks a nested create in baked mode: the parent gives the feature's stack TimeoutInMinutes 90,
    sized for the network and the group's boot signals (ResourceSignal PT45M). With ImageSource=baked the
    group waits for the launch template, which waits for ImageParameter, which waits for FirstImage: a
    Windows build, its AMI, and a test phase that may take TimeoutMinutes 60 on its own, all before the
    group's 45 minutes start. The worst case of the two waits alone is over the stack's timeout, and
    docs/baked-image.md itself estimates the build at 30 to 60 minutes (not measured): the nested stack
    fails and both stacks roll back.

    AWS CloudFormation, AWS::CloudFormation::Stack TimeoutInMinutes
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-stack.html;
    the same text in the SDKs' AwsCloudFormationStackDetails): "The length of time, in minutes, that
    CloudFormation waits for the nested stack to reach the CREATE_COMPLETE state."; CreateStack
    TimeoutInMinutes: "The amount of time that can pass before the stack status becomes CREATE_FAILED".
    """
    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    assert "WinImageSource" in parent["Parameters"], "precondition: the parent passes ImageSource through"
    stack = parent["Resources"]["WinStack"]["Properties"]["TimeoutInMinutes"]
    resources = baked(template)
    tests = resources["WinFirstImage"]["Properties"]["ImageTestsConfiguration"]["TimeoutMinutes"]
    signal = resources["WinGroup"]["CreationPolicy"]["ResourceSignal"]["Timeout"]
    signal_minutes = int(re.fullmatch(r"PT(\d+)M", signal).group(1))  # type: ignore[union-attr]
    assert "WinFirstImage" in _created_before(resources, "WinGroup"), "precondition: the group waits for the image"
    assert stack >= tests + signal_minutes, (
        f"the feature's stack times out after {stack} minutes; the first image's tests ({tests}) and the "
        f"group's signals ({signal_minutes}) may take {tests + signal_minutes}, before counting the build"
    )


def test_the_documented_ecr_extra_is_resolvable_through_the_dns_firewall() -> None:
    """Wrong docs / the feature fails for its own example: docs/network.md's example extra
    "ecr.api:ecr" makes the endpoint com.amazonaws.<region>.ecr.api, and the DNS Firewall allow list gets
    "<service>.<region>.amazonaws.com" = ecr.api.<region>.amazonaws.com. The SDKs and that endpoint's
    private DNS use api.ecr.<region>.amazonaws.com, which the rule group's last rule ("*", BLOCK NXDOMAIN)
    answers: no worker reaches ECR through the endpoint the stack built for it. (The same for ecr.dkr,
    whose names are *.dkr.ecr.<region>.amazonaws.com.)

    AWS General Reference, Amazon ECR endpoints
    (https://docs.aws.amazon.com/general/latest/gr/ecr.html): "the api.ecr endpoint is recommended and the
    default when using the AWS CLI or AWS SDKs. When connecting to Amazon ECR through an AWS PrivateLink VPC
    endpoint, you must use the api.ecr endpoint to make API calls."
    """
    text = (ROOT / "docs" / "network.md").read_text()
    assert '"ecr.api:ecr"' in text, "precondition: the documented example"
    rendered = json.loads(build_template(WorkersConfig(extra_endpoints=("ecr.api:ecr",))).to_json())
    resources = resolve(rendered, ON)["Resources"]
    assert resources["WinEcrApiEndpoint"]["Properties"]["PrivateDnsEnabled"] is True
    assert resources["WinDnsBlockList"]["Properties"]["Domains"] == ["*"], "precondition: all else is blocked"
    allowed = json.dumps(resources["WinDnsAllowList"]["Properties"]["Domains"])
    assert "api.ecr.${AWS::Region}.${AWS::URLSuffix}" in allowed, "the ECR API's name stays blocked"


def test_the_revision_precheck_also_guards_a_nested_deploy() -> None:
    """Blocks an update in nested mode (and the docs overstate the guard): `winworkers deploy` runs
    image.revision_problems on the template it deploys (deploy.execute._precheck, before the nested child is
    read), and for parent-nested.json that is the parent, which holds no AWS::ImageBuilder::ImageRecipe: a
    new ArtifactKey without a new ImageRevision passes the pre-check, the child's recipe is replaced with the
    same name and version, Image Builder refuses it, and the update rolls back after the rest of the feature
    was updated. docs/baked-image.md: "`winworkers deploy` refuses such an update in its pre-check".

    AWS, Image Builder user guide, "Semantic versioning in Image Builder"
    (https://docs.aws.amazon.com/imagebuilder/latest/userguide/ibhow-semantic-versioning.html): "Image
    Builder uses semantic versioning to organize resources and ensure that they have unique IDs."; the
    recipe's Version and components are create-only (AWS::ImageBuilder::ImageRecipe, "Update requires:
    Replacement").
    """
    previous = {
        "EnableWinTaskScriptService": "true",
        "WinImageSource": "baked",
        "WinNetworkMode": "isolated-vpc",
        "WinArtifactKey": "releases/1.zip",
        "WinImageRevision": "1",
    }
    now = {**previous, "WinArtifactKey": "releases/2.zip"}
    inline = json.loads((ROOT / "templates" / "parent-inline.json").read_text())
    assert image.revision_problems(inline, now, previous), "precondition: the inline parent is guarded"
    nested = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    # The children as the deploy reads them (deploy.inputs: build.built_children) and hands them on.
    children = built_children(nested)
    assert image.revision_problems(nested, now, previous, children), (
        "the nested parent passes an unguarded ArtifactKey change"
    )


def test_the_pipeline_exists_only_after_cloudformation_created_the_parameter(template: dict[str, Any]) -> None:
    """Can fail the create: the pipeline's distribution names ImageParameter by a string (no Ref), so
    CloudFormation creates ImagePipeline (ENABLED, weekly schedule) in parallel with FirstImage, an hour or
    more before ImageParameter. A scheduled run in that window (Sunday 03:00 UTC), or an operator's
    StartImagePipelineExecution, distributes and creates the parameter first; CloudFormation's create of
    ImageParameter then fails on an existing name, as docs/baked-image.md itself says of the first image's
    distribution ("a parameter the distribution had already created would fail that create").

    AWS, Image Builder API, SsmParameterConfiguration
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_SsmParameterConfiguration.html):
    "The image distribution creates the Parameter if it doesn't already exist. Otherwise, it updates the
    parameter."; CloudFormation, DependsOn: "AWS CloudFormation creates, updates, and deletes resources in
    parallel to the extent possible."
    """
    resources = baked(template)
    assert "WinImageParameter" not in _refs(resources["WinImageDistribution"]["Properties"]), "precondition"
    assert "WinImageParameter" in _created_before(resources, "WinImagePipeline"), (
        "the pipeline may run and create the parameter before CloudFormation does"
    )
