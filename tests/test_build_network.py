"""The image build's network (ImageSource=baked; winworkers.network, for_build rows): what the build
reaches, what a worker cannot, judged on the rendered template of every network mode and Region."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_dns_firewall import REGIONS, decide
from test_emulator import FEATURE, _deploy, aws, session  # noqa: F401 (fixtures)

from conftest import render
from winworkers.deploy import Clients
from winworkers.deploy.base import DeployError
from winworkers.renderings import MODES, enabled_parameters
from winworkers.rules import failed_assertions

BAKED = {"ImageSource": "baked"}
BUILD_ROLE = {"Fn::GetAtt": ["WinBuildRole", "Arn"]}

# What AWS documents a build instance's agents call, per endpoint (docs/aws-behaviours.md, 250
# and 251): the actions of AmazonSSMManagedInstanceCore (AWS managed policy reference) for the
# three Systems Manager endpoints, and for Image Builder's the GetComponent of AWSTOE (Image
# Builder user guide, "Image Builder and AWS PrivateLink interface VPC endpoints").
DOCUMENTED_ACTIONS = {
    "ssm": {
        "ssm:DescribeAssociation",
        "ssm:GetDeployablePatchSnapshotForInstance",
        "ssm:GetDocument",
        "ssm:DescribeDocument",
        "ssm:GetManifest",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:ListAssociations",
        "ssm:ListInstanceAssociations",
        "ssm:PutInventory",
        "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult",
        "ssm:UpdateAssociationStatus",
        "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation",
    },
    "ssmmessages": {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    },
    "ec2messages": {
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply",
    },
    "imagebuilder": {"imagebuilder:GetComponent"},
}


def _params(mode: str, **more: str) -> dict[str, str]:
    extra = {"CreateDnsFirewall": "true"} if mode == "existing-subnets" else {}
    if mode == "existing-subnets" and more.get("ImageSource") == "baked":
        extra["BuildEndpointsCidr"] = "10.1.0.0/24"
    return enabled_parameters(mode=mode, **{**extra, **more})


def image_builder_names(region: str) -> list[str]:
    """The names a build resolves for AWSTOE and the managed components: the buckets
    ec2imagebuilder-toe-REGION-prod and ec2imagebuilder-managed-resources-REGION-prod, virtual-hosted
    on the Region's S3 name (and, in us-east-1, the legacy global one the SDKs default to there)."""
    buckets = [f"ec2imagebuilder-toe-{region}-prod", f"ec2imagebuilder-managed-resources-{region}-prod"]
    names = [f"{bucket}.s3.{region}.amazonaws.com" for bucket in buckets]
    if region == "us-east-1":
        names += [f"{bucket}.s3.amazonaws.com" for bucket in buckets]
    return names


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_dns_firewall_lets_a_build_read_image_builders_buckets_in_baked_mode_only(
    feature: dict[str, Any], mode: str, region: str
) -> None:
    baked = render(feature, _params(mode, **BAKED), region=region)
    published = render(feature, _params(mode), region=region)
    for name in image_builder_names(region):
        assert decide(baked, name) == "ALLOW", name
        assert decide(published, name) == "BLOCK", name
    # Exactly these buckets: another Region's, another environment's, another bucket's are not.
    for name in (
        f"ec2imagebuilder-toe-{region}-beta.s3.{region}.amazonaws.com",
        f"ec2imagebuilder-evil-{region}-prod.s3.{region}.amazonaws.com",
        "ec2imagebuilder-toe-ap-south-2-prod.s3.ap-south-2.amazonaws.com",
    ):
        assert decide(baked, name) == "BLOCK", name


def _endpoints(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The rendered VPC endpoints by their service (the part after com.amazonaws.REGION.)."""
    found = {}
    for resource in rendered["Resources"].values():
        if resource["Type"] == "AWS::EC2::VPCEndpoint":
            found[resource["Properties"]["ServiceName"].split(".", 3)[3]] = resource["Properties"]
    return found


def test_the_s3_gateway_lets_the_build_read_image_builders_buckets_anonymously(feature: dict[str, Any]) -> None:
    """AWSTOE's bootstrap reads its bucket without signing (AWS's data perimeter examples), so a
    statement narrowed to the build role's aws:PrincipalArn would deny it; the objects are AWS's
    public ones, the agent MSI's kind."""
    rendered = render(feature, _params("isolated-2az", **BAKED), region="eu-west-1")
    statements = _endpoints(rendered)["s3"]["PolicyDocument"]["Statement"]
    toe = "arn:aws:s3:::ec2imagebuilder-toe-eu-west-1-prod/*"
    managed = "arn:aws:s3:::ec2imagebuilder-managed-resources-eu-west-1-prod/components/*"
    (public,) = [s for s in statements if toe in json.dumps(s)]
    assert sorted(public["Resource"]) == sorted([toe, managed])
    assert public["Principal"] == "*" and "Condition" not in public
    assert public["Action"] == ["s3:GetObject"]


@pytest.mark.parametrize("mode", [m for m in sorted(MODES) if m != "existing-subnets"])
def test_each_build_endpoint_allows_the_build_role_the_documented_actions_only(
    feature: dict[str, Any], mode: str
) -> None:
    rendered = render(feature, _params(mode, **BAKED), region="eu-west-1")
    endpoints = _endpoints(rendered)
    role = rendered["Resources"]["WinBuildRole"]
    assert role
    for service, documented in DOCUMENTED_ACTIONS.items():
        statements = endpoints[service]["PolicyDocument"]["Statement"]
        actions = {a for s in statements for a in s["Action"]}
        assert actions == documented, service
        for statement in statements:
            assert statement["Effect"] == "Allow"
            assert set(statement["Principal"]) == {"AWS"}, statement
            assert "BuildRole" in json.dumps(statement["Principal"]), statement
            assert "InstanceRole" not in json.dumps(statement)


def test_image_builder_endpoint_reads_the_stacks_and_awss_components_only(feature: dict[str, Any]) -> None:
    rendered = render(feature, _params("isolated-2az", **BAKED), region="eu-west-1")
    (statement,) = _endpoints(rendered)["imagebuilder"]["PolicyDocument"]["Statement"]
    resources = sorted(statement["Resource"])
    assert len(resources) == 2
    assert resources[0].startswith("arn:aws:imagebuilder:eu-west-1:") and resources[0].endswith(":component/*")
    assert resources[1] == "arn:aws:imagebuilder:eu-west-1:aws:component/*"


# --- existing-subnets: the build's endpoints apart from the workers' ------------------------------


def _egress(rendered: dict[str, Any], group: str) -> list[Any]:
    resources = rendered["Resources"]
    inline = resources[group]["Properties"].get("SecurityGroupEgress", [])
    standalone = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupEgress" and json.dumps(r["Properties"]["GroupId"]).count(group)
    ]
    rules = [*inline, *standalone]
    return [r.get("CidrIp") or r.get("DestinationPrefixListId") or r.get("DestinationSecurityGroupId") for r in rules]


def test_existing_subnets_sends_the_build_to_its_own_endpoint_block(feature: dict[str, Any]) -> None:
    values = _params("existing-subnets", **BAKED)
    rendered = render(feature, values, region="eu-west-1")
    build = _egress(rendered, "WinBuildSecurityGroup")
    workers = _egress(rendered, "WinWorkerSecurityGroup")
    assert values["WinBuildEndpointsCidr"] in build
    assert values["WinEndpointsCidr"] not in build
    assert values["WinBuildEndpointsCidr"] not in workers


def test_the_rule_requires_the_build_block_in_baked_existing_subnets_only(feature: dict[str, Any]) -> None:
    without = {k: v for k, v in _params("existing-subnets", **BAKED).items() if k != "WinBuildEndpointsCidr"}
    required = "WinBakedExistingNetwork: WinBuildEndpointsCidr is required: the build endpoints' block only"
    assert [problem.split(" (")[0] for problem in failed_assertions(feature, without)] == [required]
    everywhere = {**without, "WinBuildEndpointsCidr": "0.0.0.0/0"}
    assert [problem.split(" (")[0] for problem in failed_assertions(feature, everywhere)] == [required]
    assert failed_assertions(feature, _params("existing-subnets")) == []
    assert failed_assertions(feature, _params("isolated-2az", **BAKED)) == []


@pytest.mark.parametrize(
    ("workers", "build"),
    [("10.0.0.0/16", "10.0.5.0/24"), ("10.0.5.0/24", "10.0.0.0/16"), ("10.0.5.0/24", "10.0.5.0/24")],
)
def test_the_pre_check_refuses_a_build_block_that_overlaps_the_workers(
    feature: dict[str, Any], workers: str, build: str
) -> None:
    from winworkers.network import build_cidr_problems

    values = _params("existing-subnets", **BAKED, EndpointsCidr=workers, BuildEndpointsCidr=build)
    (problem,) = build_cidr_problems(feature, values)
    assert problem.startswith(f"WinBuildEndpointsCidr={build} overlaps WinEndpointsCidr={workers}")
    apart = {**values, "WinEndpointsCidr": "10.0.0.0/24", "WinBuildEndpointsCidr": "10.0.1.0/24"}
    assert build_cidr_problems(feature, apart) == []
    assert build_cidr_problems(feature, _params("existing-subnets")) == []


# --- Isolation: no worker reaches Systems Manager or Image Builder, in every network mode -----------

FORBIDDEN = ("ssm", "ssmmessages", "ec2messages", "imagebuilder")


def _rules_of(rendered: dict[str, Any], kind: str, group: str) -> list[dict[str, Any]]:
    """Every rule of kind (SecurityGroupEgress / SecurityGroupIngress) of group: inline and standalone."""
    resources = rendered["Resources"]
    inline = resources[group]["Properties"].get(kind, [])
    standalone = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == f"AWS::EC2::{kind}" and r["Properties"]["GroupId"] == group
    ]
    return [*inline, *standalone]


def _overlaps(a: str, b: str) -> bool:
    from ipaddress import ip_network

    return ip_network(a).overlaps(ip_network(b))


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_no_worker_path_reaches_systems_manager_and_the_build_reaches_its_own(
    feature: dict[str, Any], mode: str, region: str
) -> None:
    """Judged on the rendered template (conditions evaluated, Fn::If branches taken): the workers'
    security group's every egress rule, the policy of every endpoint it reaches, and its role; then the
    build's paths. DNS Firewall filters per VPC, not per instance: in baked mode the Systems Manager
    names resolve in the whole VPC (the build needs them), so the proof of isolation is the network
    path and the endpoint policies, not the name (docs/baked-image.md, "Isolation while building")."""
    values = _params(mode, **BAKED)
    rendered = render(feature, values, region=region)
    resources = rendered["Resources"]
    endpoints = _endpoints(rendered)
    build_groups = {g for s in FORBIDDEN if s in endpoints for g in endpoints[s]["SecurityGroupIds"]}
    worker_egress = _rules_of(rendered, "SecurityGroupEgress", "WinWorkerSecurityGroup")
    assert worker_egress and all(rule["FromPort"] == rule["ToPort"] == 443 for rule in worker_egress)
    worker_groups = {
        rule["DestinationSecurityGroupId"] for rule in worker_egress if "DestinationSecurityGroupId" in rule
    }
    worker_blocks = [rule["CidrIp"] for rule in worker_egress if "CidrIp" in rule]
    # No security-group path from a worker to a build endpoint, nor to a block holding one.
    assert not worker_groups & build_groups
    assert "WinBuildEndpointSecurityGroup" not in worker_groups
    if mode == "existing-subnets":
        assert worker_blocks == [values["WinEndpointsCidr"]]
        assert not _overlaps(worker_blocks[0], values["WinBuildEndpointsCidr"])
        assert not endpoints  # the platform's network provides them: none of the stack's
    else:
        assert worker_blocks == [] and sorted(endpoints) == sorted(
            [*FORBIDDEN, "s3", "sqs", "cloudformation", "monitoring", "logs", "autoscaling"]
        )
        # The build endpoints' group admits the build's group alone, and holds no other endpoint.
        ingress = _rules_of(rendered, "SecurityGroupIngress", "WinBuildEndpointSecurityGroup")
        assert [rule.get("SourceSecurityGroupId") for rule in ingress] == ["WinBuildSecurityGroup"]
        assert build_groups == {"WinBuildEndpointSecurityGroup"}
        assert all(
            endpoints[s]["SecurityGroupIds"] == ["WinEndpointSecurityGroup"]
            for s in endpoints
            if s not in FORBIDDEN and "SecurityGroupIds" in endpoints[s]
        )
    # Every endpoint a worker reaches allows no Systems Manager or Image Builder action.
    for service, endpoint in endpoints.items():
        reached = service == "s3" or set(endpoint.get("SecurityGroupIds", [])) & worker_groups
        actions = json.dumps([s["Action"] for s in endpoint["PolicyDocument"]["Statement"]])
        if reached:
            assert service not in FORBIDDEN
            assert not any(f'"{prefix}:' in actions for prefix in FORBIDDEN), service
    # The workers' role grants none either, and carries no managed policy.
    role = resources["WinInstanceRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert not any(f'"{prefix}:' in json.dumps(role["Policies"]) for prefix in FORBIDDEN)
    # The build: HTTPS to S3 and to its own endpoints, nothing else.
    build_egress = _rules_of(rendered, "SecurityGroupEgress", "WinBuildSecurityGroup")
    targets = sorted(
        rule.get("DestinationPrefixListId") or rule.get("DestinationSecurityGroupId") or rule["CidrIp"]
        for rule in build_egress
    )
    own = values["WinBuildEndpointsCidr"] if mode == "existing-subnets" else "WinBuildEndpointSecurityGroup"
    assert targets == sorted([values["WinS3PrefixListId"], own])
    assert "SecurityGroupIngress" not in resources["WinBuildSecurityGroup"]["Properties"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_systems_manager_names_resolve_only_while_a_build_needs_them(feature: dict[str, Any], mode: str) -> None:
    for source, expected in (({}, "BLOCK"), (BAKED, "ALLOW")):
        rendered = render(feature, _params(mode, **source), region="eu-west-1")
        for service in FORBIDDEN:
            assert decide(rendered, f"{service}.eu-west-1.amazonaws.com") == expected, (service, source)


def test_winworkers_deploy_refuses_the_overlap_before_it_changes_anything(aws: Clients) -> None:  # noqa: F811
    values = _params("existing-subnets", **BAKED, EndpointsCidr="10.0.0.0/16", BuildEndpointsCidr="10.0.5.0/24")
    refused = r"^WinBuildEndpointsCidr=10\.0\.5\.0/24 overlaps WinEndpointsCidr=10\.0\.0\.0/16: the workers would reach"
    with pytest.raises(DeployError, match=refused):
        _deploy(aws, "ww-overlap", FEATURE, values)
    stacks = aws.cloudformation.list_stacks()["StackSummaries"]
    assert not [s for s in stacks if s["StackName"] == "ww-overlap"]
