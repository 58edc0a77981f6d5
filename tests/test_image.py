"""winworkers.image, ImageSource: the baked image, judged on the rendered template, resolved for
given parameter values (tests/resolved.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_digests import NEW_PARAMETERS
from resolved import REGION, digest, resolve

from conftest import ROOT
from winworkers.build import build_template
from winworkers.config import WorkersConfig
from winworkers.image import NAMED_BY, START_CONDITION, document_version, json_text
from winworkers.network import ENDPOINTS, IMAGE_BUILDER_OBJECTS

TEMPLATES = ROOT / "templates"
ON = {"EnableWinTaskScriptService": "true"}
BUILD_SERVICES = [row.service for row in ENDPOINTS if row.for_build]

# The resolved form (tests/resolved.py, less the new parameters) of the committed templates, for the
# feature on, with ImageSource=aws-published. Pinned when ImageSource was merged, where each was checked
# equal to the template of before ImageSource (41b13c7) resolved the same way; a later change to what
# the default mode deploys updates them on purpose (scripts/image_digests.py prints them), and says so
# in the CHANGELOG.
BEFORE = {
    (
        "parent-inline.json",
        "existing-subnets",
        "off",
    ): "30ee1bc17cd89692e87e1f6db4a770879d71eaca5752bc326f184440a9be4e7a",
    ("parent-inline.json", "isolated-vpc", "off"): "9a30ea298f59f61f1354fa2311a2db47eadb2bcfeffef5d167d60d9e2ad5b1f5",
    ("winworkers.json", "existing-subnets", "off"): "4b2fb4d392248093c43a40df15cdf9921df7a5ad57839674e0f9d2f1e889b043",
    (
        "winworkers.json",
        "existing-subnets",
        "stopped",
    ): "a8fdb3c138daa5b03336c05702988155a3a182bea9cfb65cdc7d2565546cab33",
    ("winworkers.json", "isolated-vpc", "off"): "93d16cbe4436ce290c244dfad8f8818c9c70a3c1e2002685d0b2c36a506d3139",
    ("winworkers.json", "isolated-vpc", "stopped"): "83cf53ad9fb7e5ef1fcf5830e3f10d057b0fcbfc04ff2e263f43dd24f4c30b07",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    rendered: dict[str, Any] = json.loads(build_template().to_json())
    return rendered


def baked(template: dict[str, Any], mode: str = "isolated-vpc", **more: str) -> Any:
    given = {**ON, "WinImageSource": "baked", "WinNetworkMode": mode, **{f"Win{k}": v for k, v in more.items()}}
    return resolve(template, given)


@pytest.mark.parametrize(("name", "mode", "pool"), sorted(BEFORE))
def test_aws_published_resolves_to_the_template_of_before(name: str, mode: str, pool: str) -> None:
    template = json.loads((TEMPLATES / name).read_text())
    given = {**ON, "WinNetworkMode": mode, "WinWarmPool": pool, "WinImageSource": "aws-published"}
    assert digest(resolve(template, given, drop_parameters=NEW_PARAMETERS)) == BEFORE[(name, mode, pool)]


def test_the_committed_template_is_the_rendered_one(template: dict[str, Any]) -> None:
    assert json.loads((TEMPLATES / "winworkers.json").read_text()) == template


def test_aws_published_creates_nothing_of_the_image(template: dict[str, Any]) -> None:
    resources = resolve(template, {**ON, "WinImageSource": "aws-published"})["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::ImageBuilder::")]
    assert not [n for n in resources if n.endswith(("BuildSecurityGroup", "BuildRole", "ImageParameter"))]


@pytest.mark.parametrize("mode", ["isolated-vpc", "existing-subnets"])
def test_baked_launches_the_stacks_own_image_parameter(template: dict[str, Any], mode: str) -> None:
    resources = baked(template, mode)["Resources"]
    image = resources["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]["ImageId"]
    assert image == {"Fn::Sub": ["resolve:ssm:${Name}", {"Name": {"Ref": "WinImageParameter"}}]}
    parameter = resources["WinImageParameter"]["Properties"]
    assert parameter["DataType"] == "aws:ec2:image"
    # Created with the first image's id: the stack waits for the first build.
    assert parameter["Value"] == {"Fn::GetAtt": ["WinFirstImage", "ImageId"]}
    distribution = resources["WinImageDistribution"]["Properties"]["Distributions"][0]
    assert distribution["SsmParameterConfigurations"] == [
        {"DataType": "aws:ec2:image", "ParameterName": parameter["Name"]}
    ]
    # The refresh function reads the same parameter.
    refresh = resources["WinRefreshFunction"]["Properties"]["Environment"]["Variables"]
    assert refresh["AMI_PARAMETER"] == parameter["Name"]


def test_aws_published_refresh_reads_aws_parameter(template: dict[str, Any]) -> None:
    resources = resolve(template, ON)["Resources"]
    variables = resources["WinRefreshFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["AMI_PARAMETER"] == {
        "Fn::Sub": [
            "/aws/service/ami-windows-latest/Windows_Server-${Version}-English-Full-Base",
            {"Version": {"Ref": "WinWindowsVersion"}},
        ]
    }


def test_the_recipe_bakes_on_the_aws_image_the_launch_template_reads_today(template: dict[str, Any]) -> None:
    resources = baked(template)["Resources"]
    recipe = resources["WinImageRecipe"]["Properties"]
    assert recipe["ParentImage"] == {
        "Fn::Sub": [
            "ssm:/aws/service/ami-windows-latest/Windows_Server-${Version}-English-Full-Base",
            {"Version": {"Ref": "WinWindowsVersion"}},
        ]
    }
    assert recipe["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == {"Ref": "WinBuildVolumeSize"}
    assert recipe["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_the_component_installs_through_install_ps1_and_tests_readiness(template: dict[str, Any]) -> None:
    component = baked(template)["Resources"]["WinWorkerComponent"]["Properties"]
    document = json.loads(component["Data"])
    phases = {phase["name"]: phase["steps"] for phase in document["phases"]}
    build = json.dumps(phases["build"])
    assert "install.ps1' -ConfigPath 'C:\\\\winworkers\\\\worker.json'" in build
    assert "amazon-cloudwatch-agent.msi" in build
    assert [step["name"] for step in phases["test"]] == ["Ready"]
    assert "install.ps1" in phases["test"][0]["inputs"]["commands"][0]


def test_versions_follow_the_code_and_the_revision(template: dict[str, Any]) -> None:
    """Components and recipes are immutable: a new artifact needs a new version (ImageRevision)."""
    resources = baked(template)["Resources"]
    for name in ("WinWorkerComponent", "WinImageRecipe"):
        version = resources[name]["Properties"]["Version"]
        assert version["Fn::Sub"][0].endswith(".${Revision}.0")
        assert version["Fn::Sub"][0].split(".")[0] == document_version_of_default()
        assert version["Fn::Sub"][1] == {"Revision": {"Ref": "WinImageRevision"}}


def document_version_of_default() -> str:
    from troposphere import Template

    from winworkers.parameters import add_parameters

    return document_version(add_parameters(Template(), WorkersConfig()))


def test_infrastructure_builds_isolated_with_imdsv2_and_no_key(template: dict[str, Any]) -> None:
    for mode, subnet in (
        ("isolated-vpc", {"Ref": "WinSubnetA"}),
        ("existing-subnets", {"Fn::Select": [0, {"Ref": "WinSubnetIds"}]}),
    ):
        infrastructure = baked(template, mode)["Resources"]["WinBuildInfrastructure"]["Properties"]
        assert infrastructure["InstanceMetadataOptions"]["HttpTokens"] == "required"
        assert infrastructure["TerminateInstanceOnFailure"] is True
        assert "KeyPair" not in infrastructure
        assert infrastructure["SubnetId"] == subnet
        assert infrastructure["SecurityGroupIds"] == [{"Ref": "WinBuildSecurityGroup"}]


def test_weekly_pipeline_builds_only_on_updates(template: dict[str, Any]) -> None:
    pipeline = baked(template)["Resources"]["WinImagePipeline"]["Properties"]
    assert pipeline["Schedule"]["PipelineExecutionStartCondition"] == START_CONDITION
    assert pipeline["Schedule"]["ScheduleExpression"].startswith("cron(")
    # Image Builder's cron: six fields, day of the week 1-7 or sun-sat, and "?" in the day field when
    # the day of the week is given (register row 278).
    fields = pipeline["Schedule"]["ScheduleExpression"].removeprefix("cron(").removesuffix(")").split(" ")
    minute, hour, day, month, weekday, year = fields
    assert (day, month, year) == ("?", "*", "*")
    assert weekday in {"sun", "mon", "tue", "wed", "thu", "fri", "sat"} | {str(d) for d in range(1, 8)}
    assert 0 <= int(minute) <= 59 and 0 <= int(hour) <= 23
    assert pipeline["ImageTestsConfiguration"]["ImageTestsEnabled"] is True
    lifecycle = baked(template)["Resources"]["WinImageLifecycle"]["Properties"]
    assert lifecycle["PolicyDetails"][0]["Filter"]["Type"] == "COUNT"
    assert lifecycle["ResourceSelection"]["TagMap"] == pipeline["ImageTags"]


def test_fast_launch_only_with_snapshots(template: dict[str, Any]) -> None:
    off = baked(template)["Resources"]
    assert "FastLaunchConfigurations" not in off["WinImageDistribution"]["Properties"]["Distributions"][0]
    # The template stays at 0: images built with Fast Launch keep it, and EC2 replenishes their snapshots
    # with it (EnableFastLaunch, LaunchTemplate; tests/test_review28.py, register 275).
    assert "WinFastLaunchTemplate" in off
    on = baked(template, FastLaunchSnapshots="5")["Resources"]
    (fast,) = on["WinImageDistribution"]["Properties"]["Distributions"][0]["FastLaunchConfigurations"]
    assert fast["SnapshotConfiguration"]["TargetResourceCount"] == {"Ref": "WinFastLaunchSnapshots"}
    assert fast["LaunchTemplate"] == {"LaunchTemplateId": {"Ref": "WinFastLaunchTemplate"}}
    data = on["WinFastLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["NetworkInterfaces"][0]["Groups"] == [{"Ref": "WinBuildSecurityGroup"}]
    assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is False


def _egress_targets(resources: dict[str, Any], group: str) -> list[Any]:
    inline = resources[group]["Properties"].get("SecurityGroupEgress", [])
    standalone = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupEgress"]
    rules = [*inline, *(r for r in standalone if r["GroupId"] == {"Ref": group})]
    return [r.get("DestinationSecurityGroupId") or r.get("DestinationPrefixListId") or r.get("CidrIp") for r in rules]


def test_no_worker_can_reach_systems_manager(template: dict[str, Any]) -> None:
    resources = baked(template)["Resources"]
    build_endpoints = {n: r for n, r in resources.items() if r["Type"] == "AWS::EC2::VPCEndpoint"}
    ssm = {
        n: r["Properties"]
        for n, r in build_endpoints.items()
        if r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] in BUILD_SERVICES
    }
    assert sorted(s["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1] for s in ssm.values()) == sorted(BUILD_SERVICES)
    for endpoint in ssm.values():
        # Only the build endpoints' group, which admits the build's group alone.
        assert endpoint["SecurityGroupIds"] == [{"Ref": "WinBuildEndpointSecurityGroup"}]
        principals = [s["Principal"] for s in endpoint["PolicyDocument"]["Statement"]]
        # One statement, or two on the ssm endpoint (its parameter reads narrowed): the build role's alone.
        assert principals and all(p == {"AWS": {"Fn::GetAtt": ["WinBuildRole", "Arn"]}} for p in principals)
    ingress = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
        and r["Properties"]["GroupId"] == {"Ref": "WinBuildEndpointSecurityGroup"}
    ]
    assert [r["SourceSecurityGroupId"] for r in ingress] == [{"Ref": "WinBuildSecurityGroup"}]
    assert "SecurityGroupIngress" not in resources["WinBuildEndpointSecurityGroup"]["Properties"]
    # The workers' group sends nowhere near them.
    assert {"Ref": "WinBuildEndpointSecurityGroup"} not in _egress_targets(resources, "WinWorkerSecurityGroup")
    # Neither the workers' role nor any worker endpoint grants an ssm action.
    role = json.dumps(resources["WinInstanceRole"]["Properties"])
    assert '"ssm:' not in role and "ssmmessages:" not in role and "ec2messages:" not in role
    # The SSM Agent is still stopped and disabled at every worker's boot.
    init = json.dumps(resources["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["harden"])
    assert "AmazonSSMAgent" in init and "StartupType Disabled" in init


def test_the_build_reaches_what_aws_documents_it_needs(template: dict[str, Any]) -> None:
    resources = baked(template)["Resources"]
    targets = _egress_targets(resources, "WinBuildSecurityGroup")
    assert {"Ref": "WinBuildEndpointSecurityGroup"} in targets and {"Ref": "WinS3PrefixListId"} in targets
    statements = resources["WinS3Endpoint"]["Properties"]["PolicyDocument"]["Statement"]
    (build,) = [s for s in statements if "WinBuildRole" in json.dumps(s)]
    assert "${Key}" in json.dumps(build["Resource"])
    # Image Builder's own buckets: read without signing by AWSTOE's bootstrap, so no principal condition.
    (public,) = [s for s in statements if "ec2imagebuilder" in json.dumps(s)]
    assert public["Resource"] == [{"Fn::Sub": arn} for arn in IMAGE_BUILDER_OBJECTS]
    assert public["Principal"] == "*" and "Condition" not in public
    allowed = json.dumps(resources["WinDnsAllowList"]["Properties"]["Domains"])
    quiet = json.dumps(resources["WinDnsNoiseList"]["Properties"]["Domains"])
    for service in BUILD_SERVICES:
        name = f"{service}.${{AWS::Region}}.${{AWS::URLSuffix}}"
        assert name in allowed and name not in quiet


def test_aws_published_keeps_systems_manager_names_quiet(template: dict[str, Any]) -> None:
    resources = resolve(template, ON)["Resources"]
    allowed = json.dumps(resources["WinDnsAllowList"]["Properties"]["Domains"])
    quiet = json.dumps(resources["WinDnsNoiseList"]["Properties"]["Domains"])
    assert "ssm.${AWS::Region}" in quiet and "ssm.${AWS::Region}" not in allowed


def test_existing_subnets_build_uses_the_networks_endpoints(template: dict[str, Any]) -> None:
    resources = baked(template, "existing-subnets")["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    # Its own block (BuildEndpointsCidr), never the workers' EndpointsCidr.
    assert {"Ref": "WinBuildEndpointsCidr"} in _egress_targets(resources, "WinBuildSecurityGroup")
    assert {"Ref": "WinEndpointsCidr"} not in _egress_targets(resources, "WinBuildSecurityGroup")
    assert {"Ref": "WinBuildEndpointsCidr"} not in _egress_targets(resources, "WinWorkerSecurityGroup")


def test_json_text_is_the_json_of_the_values() -> None:
    from troposphere import Ref

    sub = json.loads(json.dumps(json_text({"a": Ref("X"), "b": ["p", "q"], "c": {"d": "e"}}).to_dict()))
    text, variables = sub["Fn::Sub"]
    assert json.loads(text.replace("${V0}", "x")) == {"a": "x", "b": ["p", "q"], "c": {"d": "e"}}
    assert variables == {"V0": {"Ref": "X"}}
    assert REGION


def test_the_baked_boot_skips_the_installs_and_keeps_the_rest(template: dict[str, Any]) -> None:
    import base64

    for pool in ("off", "stopped"):
        resources = baked(template, WarmPool=pool)["Resources"]
        init = resources["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
        assert init["configSets"]["baked"] == ["harden", "bakedagent", "bakedservice"]
        # No MSI and no artifact download; the agent's config and start, worker.json and install.ps1 stay.
        assert "packages" not in init["bakedagent"] and "sources" not in init["bakedservice"]
        assert init["bakedagent"]["commands"] == init["agent"]["commands"]
        assert init["bakedservice"]["commands"] == init["service"]["commands"]
        assert init["bakedservice"]["files"] == init["service"]["files"]
        script = resources["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
        assert "--configsets baked;" in script and "--configsets default" not in script
        # The first image's id is in the config line: a new image is a new launch template version.
        (line,) = [row for row in script.splitlines() if row.startswith("# winworkers ")]
        assert "${WinFirstImage.ImageId}" in line
    assert base64  # the scripts are checked as templated text, before base64


def test_a_new_artifact_makes_a_new_image_and_one_refresh(template: dict[str, Any]) -> None:
    """ImageRevision (with the artifact) replaces the component, the recipe and the first image; the
    new image's id reaches the launch template's data (its config line): one new version, one refresh
    through the refresh custom resource, launch before terminate as every refresh."""
    from winworkers.deploy.changes import refresh_inputs
    from winworkers.update_path import update_path

    replaced, collisions = update_path(template)
    assert replaced["WinImageRevision"] == {"WinWorkerComponent", "WinImageRecipe", "WinFirstImage"}
    assert replaced["WinArtifactKey"] == {"WinImageRecipe", "WinFirstImage"}
    assert collisions == []
    inputs = refresh_inputs(template, replaced)
    assert inputs["WinImageRevision"] == ("WinLaunchTemplate",)
    assert "WinLaunchTemplate" in inputs["WinArtifactKey"]
    # Fast Launch's snapshot count changes the distribution only: no refresh.
    assert "WinFastLaunchSnapshots" not in inputs


def test_benchmarks_show_the_baked_cold_start_against_the_target() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from scaling_model import BAKED_TARGET_MINUTES, COLD_PHASES, FAST_LAUNCH_PHASES, baked_section

    report = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert baked_section() in report, "BENCHMARKS.md is stale: run `make bench`"
    # The same boot metrics, in the same order, as today's cold launch.
    assert [p.name for p in FAST_LAUNCH_PHASES] == [p.name for p in COLD_PHASES]
    fast = sum(p.minutes for p in FAST_LAUNCH_PHASES)
    assert (fast <= BAKED_TARGET_MINUTES) == ("is **not** supported" not in baked_section())


def test_the_pre_check_refuses_a_new_artifact_without_a_new_revision(template: dict[str, Any]) -> None:
    from winworkers.image import revision_problems
    from winworkers.renderings import enabled_parameters

    before = {**enabled_parameters(ImageSource="baked"), "WinImageRevision": "0"}
    after = {**before, "WinArtifactKey": "windows/worker-2.zip"}
    (problem,) = revision_problems(template, after, before)
    assert problem.startswith("WinArtifactKey changed while WinImageRevision did not: raise WinImageRevision")
    assert revision_problems(template, {**after, "WinImageRevision": "1"}, before) == []
    # Nothing to refuse: aws-published before or after, a first deploy, or no input of the recipe changed.
    published = {**before, "WinImageSource": "aws-published"}
    assert revision_problems(template, after, published) == []
    assert revision_problems(template, {**after, "WinImageSource": "aws-published"}, before) == []
    assert revision_problems(template, after, {}) == []
    assert revision_problems(template, {**before, "WinDrainSeconds": "600"}, before) == []


def test_the_pre_check_reads_a_nested_parent_s_child_recipe() -> None:
    """Review 28, finding 6: the parent-nested template holds no recipe; its child's is judged, on the
    child's parameters the parent passes by Ref, and only where the nested stack exists."""
    from winworkers.build import built_children
    from winworkers.image import revision_problems
    from winworkers.renderings import enabled_parameters

    nested = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    before = {**enabled_parameters(ImageSource="baked"), "WinImageRevision": "0"}
    after = {**before, "WinArtifactKey": "windows/worker-2.zip"}
    children = built_children(nested)  # as the deploy reads them (deploy.inputs)
    (problem,) = revision_problems(nested, after, before, children)
    assert problem.startswith("WinArtifactKey changed while WinImageRevision did not")
    assert revision_problems(nested, {**after, "WinImageRevision": "1"}, before, children) == []
    assert revision_problems(nested, {**after, "EnableWinTaskScriptService": "false"}, before, children) == []
    assert revision_problems(nested, after, before) == [], "no child given: nothing to judge"


# The review of issue 28 (register rows 241 to 248): each test below failed on the form it replaced.

PARAMETER_ARN = (
    "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/winworkers/${AWS::StackName}/Win/image-id"
)


def test_the_distribution_writes_the_parameter_through_an_execution_role_that_may(template: dict[str, Any]) -> None:
    """241, 242: the SSM output parameter needs ssm:PutParameter on it (and ec2:DescribeImages for
    aws:ec2:image) in the execution role; without one Image Builder uses its service-linked role, which may
    write only /imagebuilder/* parameters. The role replaces the service-linked role's use: AWS's
    EC2ImageBuilderExecutionPolicy is what it documents for that. The pipeline and the first image (which
    distributes Fast Launch) both take it."""
    resources = baked(template)["Resources"]
    for name in ("WinImagePipeline", "WinFirstImage"):
        assert resources[name]["Properties"]["ExecutionRole"] == {"Fn::GetAtt": ["WinImageExecutionRole", "Arn"]}
    role = resources["WinImageExecutionRole"]
    assert role["Condition"] == "WinBakedImage"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["imagebuilder.amazonaws.com"]}
    assert role["Properties"]["ManagedPolicyArns"][0] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/EC2ImageBuilderExecutionPolicy"
    }
    (policy,) = role["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    assert {"Action": ["ssm:PutParameter"], "Effect": "Allow", "Resource": [{"Fn::Sub": PARAMETER_ARN}]} in statements
    assert {"Action": ["ec2:DescribeImages"], "Effect": "Allow", "Resource": ["*"]} in statements
    assert len(statements) == 2
    # The parameter's ARN is its name's: the same text as ImageParameter's Name.
    name = resources["WinImageParameter"]["Properties"]["Name"]["Fn::Sub"]
    assert PARAMETER_ARN.endswith(":parameter" + name)


def test_the_lifecycle_policy_deletes_amis_and_snapshots_but_none_recently_launched(template: dict[str, Any]) -> None:
    """243, 244: without IncludeResources only the Image Builder image resources go; with it the
    AMIs are deregistered and their snapshots deleted, except an AMI that launched an instance within
    LAST_LAUNCHED_DAYS (two default refresh periods)."""
    from winworkers.image import LAST_LAUNCHED_DAYS

    lifecycle = baked(template)["Resources"]["WinImageLifecycle"]["Properties"]
    (detail,) = lifecycle["PolicyDetails"]
    assert detail["Action"] == {"Type": "DELETE", "IncludeResources": {"Amis": True, "Snapshots": True}}
    assert detail["ExclusionRules"] == {"Amis": {"LastLaunched": {"Unit": "DAYS", "Value": LAST_LAUNCHED_DAYS}}}
    assert LAST_LAUNCHED_DAYS >= 2 * 7  # RefreshSchedule's default, rate(7 days), twice
    # The lifecycle policy runs as the image execution role, which holds AWS's policy for it (one role: the
    # project's budget of 100 resources per template).
    assert lifecycle["ExecutionRole"] == {"Fn::GetAtt": ["WinImageExecutionRole", "Arn"]}
    role = baked(template)["Resources"]["WinImageExecutionRole"]["Properties"]
    assert role["ManagedPolicyArns"][1] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/EC2ImageBuilderLifecycleExecutionPolicy"
    }


@pytest.mark.parametrize("snapshots", ["0", "5"])
def test_the_first_image_distributes_fast_launch_not_the_parameter(template: dict[str, Any], snapshots: str) -> None:
    """245: the first image enables Fast Launch as the pipeline's do, through a distribution of its own
    without the SSM output: a distribution creates the parameter if it does not exist, so writing it before
    CloudFormation creates ImageParameter would fail the stack's create. The first image's distribution is
    there whatever FastLaunchSnapshots is (a change of it updates that distribution in place, it does not
    replace the first image)."""
    resources = baked(template, FastLaunchSnapshots=snapshots)["Resources"]
    first = resources["WinFirstImage"]["Properties"]
    assert first["DistributionConfigurationArn"] == {"Fn::GetAtt": ["WinFirstImageDistribution", "Arn"]}
    (distribution,) = resources["WinFirstImageDistribution"]["Properties"]["Distributions"]
    assert "SsmParameterConfigurations" not in distribution
    (pipelines,) = resources["WinImageDistribution"]["Properties"]["Distributions"]
    assert distribution.get("FastLaunchConfigurations") == pipelines.get("FastLaunchConfigurations")
    assert ("FastLaunchConfigurations" in distribution) == (snapshots != "0")


def test_the_component_reads_the_region_from_a_parameter_not_an_awstoe_variable(template: dict[str, Any]) -> None:
    """246: {{ aws:Region }} is no variable AWSTOE documents; Region is a component parameter the recipe
    sets to AWS::Region, as Bucket, Key and Settings are."""
    resources = baked(template)["Resources"]
    data = resources["WinWorkerComponent"]["Properties"]["Data"]
    assert "aws:" not in data.replace("aws:ec2", "")
    document = json.loads(data)
    assert {"Region": {"type": "string"}} in document["parameters"]
    assert "amazoncloudwatch-agent-{{ Region }}.s3.{{ Region }}.amazonaws.com" in data
    (component,) = resources["WinImageRecipe"]["Properties"]["Components"]
    assert {"Name": "Region", "Value": [{"Ref": "AWS::Region"}]} in component["Parameters"]


def test_what_the_second_deploy_of_these_changes_replaces() -> None:
    """docs/baked-image.md, "What an update replaces": on a running baked stack, this release's update sets
    the pipeline's and the lifecycle policy's ExecutionRole and the lifecycle's rules in place (the
    registry schemas list no such create-only property) and replaces the first image (its
    DistributionConfigurationArn is create-only; the component's new document replaces it too)."""
    from winworkers.update_path import schema_of

    def create_only(kind: str) -> set[str]:
        schema = schema_of(kind) or {}
        return {p.split("/")[2] for p in schema.get("createOnlyProperties", [])}

    assert create_only("AWS::ImageBuilder::ImagePipeline") == {"Name"}
    assert create_only("AWS::ImageBuilder::LifecyclePolicy") == {"Name"}
    assert create_only("AWS::ImageBuilder::DistributionConfiguration") == {"Name"}
    image = create_only("AWS::ImageBuilder::Image")
    assert "DistributionConfigurationArn" in image and "ExecutionRole" not in image


def test_image_builder_names_fit_with_the_longest_role_name(template: dict[str, Any]) -> None:
    """Every Image Builder name is ${<ImageExecutionRole>}-<suffix> (image.image_builder_name): with the role's
    name at IAM's limit of 64 characters (276) each fits Image Builder's 128, an AMI's 127 (API Reference,
    DistributionConfiguration and AmiDistributionConfiguration), and none reads the stack's name, which may be
    128 characters. Fails on the former ${AWS::StackName}-<suffix>."""
    role = "${Win" + NAMED_BY + "}"
    longest = "r" * 64
    names = []
    for resource in baked(template)["Resources"].values():
        if resource["Type"].startswith("AWS::ImageBuilder::") and "Name" in resource["Properties"]:
            names.append((resource["Properties"]["Name"]["Fn::Sub"], 128))
        for distribution in resource.get("Properties", {}).get("Distributions", []):
            names.append((distribution["AmiDistributionConfiguration"]["Name"]["Fn::Sub"], 127))
    assert len(names) == 9, names  # seven resources, two AMI names
    for text, limit in names:
        assert text.startswith(role + "-") and "AWS::StackName" not in text, text
        assert len(text.replace(role, longest)) <= limit, text
