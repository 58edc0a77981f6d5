"""Network isolation, asserted on renderings of every mode with the feature on."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from conftest import props, render, resources_of
from winworkers.network import ENDPOINTS
from winworkers.renderings import EXAMPLE_INPUTS, MODES, enabled_parameters

FORBIDDEN = {
    "AWS::EC2::InternetGateway",
    "AWS::EC2::EgressOnlyInternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EIP",
    "AWS::EC2::VPCPeeringConnection",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::VPNGateway",
    "AWS::EC2::Route",
}
INTERFACE = {row.service for row in ENDPOINTS if row.kind == "Interface" and not row.condition}
GATEWAYS = {row.service for row in ENDPOINTS if row.kind == "Gateway" and not row.condition}
# What would change the platform's VPC for every other workload in it.
NOT_IN_THE_PLATFORMS_VPC = {
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::Route",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::FlowLog",
}
AGENT_OBJECTS = "arn:aws:s3:::amazoncloudwatch-agent-us-east-1/windows/*"


@pytest.fixture(scope="module", params=sorted(MODES))
def mode(request: pytest.FixtureRequest, feature: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return request.param, render(feature, enabled_parameters(mode=request.param))


def _kinds(rendered: dict[str, Any]) -> set[str]:
    return {r["Type"] for r in rendered["Resources"].values()}


def _endpoints(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        props(rendered, name)["ServiceName"].rsplit(".", 1)[-1]: props(rendered, name)
        for name in resources_of(rendered, "AWS::EC2::VPCEndpoint")
    }


def test_no_way_out_to_the_internet(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    kinds = {r["Type"] for r in rendered["Resources"].values()}
    assert not kinds & FORBIDDEN
    assert "0.0.0.0/0" not in json.dumps(rendered["Resources"])


def test_workers_accept_no_inbound_and_send_only_https(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    worker_sg = props(rendered, "WinWorkerSecurityGroup")
    assert "SecurityGroupIngress" not in worker_sg
    for name in resources_of(rendered, "AWS::EC2::SecurityGroupIngress"):
        assert props(rendered, name)["GroupId"] != "WinWorkerSecurityGroup", name
    egress = [
        *worker_sg["SecurityGroupEgress"],
        *(props(rendered, n) for n in resources_of(rendered, "AWS::EC2::SecurityGroupEgress")),
    ]
    assert egress
    for rule in egress:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert worker_sg["SecurityGroupEgress"][0]["DestinationPrefixListId"] == EXAMPLE_INPUTS["S3PrefixListId"]


def test_launch_template_never_attaches_a_public_ip(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    data = props(rendered, "WinLaunchTemplate")["LaunchTemplateData"]
    assert [nic["AssociatePublicIpAddress"] for nic in data["NetworkInterfaces"]] == [False]


def test_endpoints_per_mode(mode: tuple[str, dict[str, Any]]) -> None:
    name, rendered = mode
    endpoints = _endpoints(rendered)
    if name.startswith("existing"):
        # The platform's VPC: no endpoint (private DNS is VPC-wide), no route, no route table touched.
        assert endpoints == {}
        assert not _kinds(rendered) & NOT_IN_THE_PLATFORMS_VPC
        egress = props(rendered, "WinWorkerEgressToNetworkEndpoints")
        assert (egress["CidrIp"], egress["FromPort"], egress["ToPort"]) == ("10.0.0.0/16", 443, 443)
        return
    assert set(endpoints) == INTERFACE | GATEWAYS
    assert "s3" in GATEWAYS
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    assert endpoints["s3"]["RouteTableIds"] == ["WinRouteTable"]
    for service in INTERFACE:
        assert endpoints[service]["VpcEndpointType"] == "Interface"
        assert endpoints[service]["PrivateDnsEnabled"] is True
    endpoint_sg = props(rendered, "WinEndpointSecurityGroup")
    assert "SecurityGroupIngress" not in endpoint_sg
    assert endpoint_sg["SecurityGroupEgress"] == [
        {"CidrIp": "127.0.0.1/32", "Description": "No egress", "FromPort": -1, "IpProtocol": "icmp", "ToPort": -1}
    ]
    ingress = props(rendered, "WinEndpointIngressFromWorkers")
    assert (ingress["SourceSecurityGroupId"], ingress["FromPort"]) == ("WinWorkerSecurityGroup", 443)


def test_existing_subnets_mode_has_no_endpoint_parameters(feature: dict[str, Any]) -> None:
    # Removed in favour of the platform-provides-the-endpoints contract (CHANGELOG).
    assert not {"WinCreateEndpoints", "WinRouteTableIds"} & set(feature["Parameters"])
    assert "WinEndpointsCidr" in feature["Parameters"]


def test_isolated_vpc_has_private_subnets_and_flow_logs(feature: dict[str, Any]) -> None:
    for azs in ("2", "3"):
        rendered = render(feature, enabled_parameters(mode=f"isolated-{azs}az"))
        subnets = resources_of(rendered, "AWS::EC2::Subnet")
        assert len(subnets) == int(azs)
        assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
        flow = props(rendered, "WinFlowLog")
        assert (flow["ResourceType"], flow["TrafficType"]) == ("VPC", "ALL")
        assert props(rendered, "WinFlowLogs")["RetentionInDays"] == "90"
        role = props(rendered, "WinFlowLogsRole")
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": ["vpc-flow-logs.amazonaws.com"]}
        assert list(trust["Condition"]["StringEquals"]) == ["aws:SourceAccount"]  # against the confused deputy
        actions = {a for p in role["Policies"] for st in p["PolicyDocument"]["Statement"] for a in st["Action"]}
        # The VPC guide's flow-log role; CreateLogGroup is not needed, the stack creates the group.
        assert actions == {
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
            "logs:DescribeLogGroups",
        }
        vpc = props(rendered, "WinVpc")
        assert vpc["EnableDnsSupport"] and vpc["EnableDnsHostnames"]  # private DNS needs both


def test_s3_endpoint_allows_only_the_platform_the_artifact_and_the_agent(enabled: dict[str, Any]) -> None:
    policy = _endpoints(enabled)["s3"]["PolicyDocument"]
    resources = sorted(r for s in policy["Statement"] for r in s["Resource"])
    assert resources == sorted(
        [
            "arn:aws:s3:::amazoncloudwatch-agent-us-east-1/windows/*",
            "arn:aws:s3:::example-platform-artifacts/windows/worker-service.zip",
            "arn:aws:s3:::example-platform-data",
            "arn:aws:s3:::example-platform-data/winworkers/*",
        ]
    )
    assert "*" not in resources


def test_every_endpoint_policy_is_narrowed_to_the_workers(enabled: dict[str, Any]) -> None:
    rows = {row.service: row for row in ENDPOINTS}
    assert {row.service for row in ENDPOINTS if row.any_principal} == {"cloudformation"}
    for service, endpoint in _endpoints(enabled).items():
        for statement in endpoint["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            assert "*" not in actions and all(":" in a and not a.endswith(":*") for a in actions), service
            if rows[service].any_principal or statement["Resource"] == [AGENT_OBJECTS]:
                assert statement["Principal"] == "*"  # this stack only / AWS's public agent bucket only
            elif rows[service].kind == "Gateway":
                assert statement["Principal"] == "*"
                assert statement["Condition"]["ArnEquals"] == {"aws:PrincipalArn": "WinInstanceRole.Arn"}
            else:
                assert statement["Principal"] == {"AWS": "WinInstanceRole.Arn"}, service


def test_gateway_endpoint_policies_name_no_principal(feature: dict[str, Any]) -> None:
    """A gateway endpoint policy's Principal must be "*"; the role is named by aws:PrincipalArn
    (PrivateLink guide: an "AWS" principal there grants the account's root user only)."""
    for mode in MODES:
        rendered = render(feature, enabled_parameters(mode=mode))
        gateways = [e for e in _endpoints(rendered).values() if e["VpcEndpointType"] == "Gateway"]
        for endpoint in gateways:
            statements = endpoint["PolicyDocument"]["Statement"]
            assert {json.dumps(s["Principal"]) for s in statements} == {'"*"'}, mode
            for statement in statements:
                if statement["Resource"] != [AGENT_OBJECTS]:  # read anonymously: no principal to match
                    assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == "WinInstanceRole.Arn"
    listing = next(
        s
        for s in _endpoints(render(feature, enabled_parameters()))["s3"]["PolicyDocument"]["Statement"]
        if s["Action"] == ["s3:ListBucket"]
    )
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["winworkers/*"]}  # the role's own condition kept


def test_endpoint_policy_refuses_an_unknown_service() -> None:
    from troposphere.iam import Role

    from winworkers.network import endpoint_policy

    with pytest.raises(ValueError, match="prefix='ec2' is not allowed"):
        endpoint_policy("ec2", Role("R"), [])


# What each worker needs before it boots: cfn-init reaches CloudFormation and S3 at once.
BOOT_NEEDS = {
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SubnetRouteTableAssociation",
    # Its DNS is filtered and logged from the first query on.
    "AWS::Route53Resolver::FirewallRuleGroupAssociation",
    "AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation",
}


def _references(value: Any, conditions: dict[str, bool], names: set[str]) -> set[str]:
    """Resources that ``value`` refers to (Ref, GetAtt, Sub), Fn::If resolved by ``conditions``."""
    if isinstance(value, list):
        return set().union(*(_references(v, conditions, names) for v in value))
    if not isinstance(value, dict):
        return set()
    if set(value) == {"Fn::If"}:
        condition, yes, no = value["Fn::If"]
        return _references(yes if conditions[condition] else no, conditions, names)
    if set(value) == {"Ref"}:
        return {value["Ref"]} & names
    if set(value) == {"Fn::GetAtt"}:
        return {value["Fn::GetAtt"][0]} & names
    if set(value) == {"Fn::Sub"}:
        text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        found = {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} - set(variables)
        return (found & names) | _references(variables, conditions, names)
    return set().union(*(_references(v, conditions, names) for v in value.values()))


def dependencies(template: dict[str, Any], conditions: dict[str, bool], name: str) -> set[str]:
    """Everything CloudFormation creates before ``name``: DependsOn and references anywhere
    in the resource (Properties, Metadata, policies), transitively, for these conditions."""
    resources = {n: r for n, r in template["Resources"].items() if "Condition" not in r or conditions[r["Condition"]]}
    names = set(resources)
    found: set[str] = set()
    todo = [name]
    while todo:
        resource = resources[todo.pop()]
        depends = resource.get("DependsOn", [])
        direct = set([depends] if isinstance(depends, str) else depends)
        direct |= _references({k: v for k, v in resource.items() if k != "Condition"}, conditions, names)
        todo += sorted(direct - found)
        found |= direct
    return found


@pytest.mark.parametrize("mode", sorted(MODES))
def test_workers_boot_only_after_the_network_is_ready(feature: dict[str, Any], mode: str) -> None:
    rendered = render(feature, enabled_parameters(mode=mode))
    needed = {n for n, r in rendered["Resources"].items() if r["Type"] in BOOT_NEEDS or n == "WinEndpointSecurityGroup"}
    assert needed, mode
    conditions = rendered["Conditions"]
    assert needed <= dependencies(feature, conditions, "WinGroup"), needed - dependencies(
        feature, conditions, "WinGroup"
    )
    # The check can fail: without the group's Metadata nothing orders it after the network.
    unordered = copy.deepcopy(feature)
    del unordered["Resources"]["WinGroup"]["Metadata"]
    missing = needed - dependencies(unordered, conditions, "WinGroup")
    assert missing and not any(n.startswith("WinWorkerSecurityGroup") for n in missing), missing


@pytest.mark.parametrize("azs", ["2", "3"])
def test_endpoints_in_one_az_leave_the_workers_in_every_az(feature: dict[str, Any], azs: str) -> None:
    # EndpointAzs: every interface endpoint bills per AZ-hour (PrivateLink pricing); "one" puts
    # them in the first subnet, the workers keep every AZ (cloud-radar renders NoValue as "").
    subnets = ["WinSubnetA", "WinSubnetB", "WinSubnetC"][: int(azs)]
    for choice, endpoint_subnets in (("all", subnets), ("one", ["WinSubnetA"])):
        rendered = render(feature, enabled_parameters(mode=f"isolated-{azs}az", EndpointAzs=choice))
        endpoints = _endpoints(rendered)
        for service in INTERFACE:
            assert [s for s in endpoints[service]["SubnetIds"] if s] == endpoint_subnets, (azs, choice, service)
        # The S3 gateway endpoint is a route of the VPC's one route table, in no AZ.
        assert endpoints["s3"]["RouteTableIds"] == ["WinRouteTable"] and "SubnetIds" not in endpoints["s3"]
        group = props(rendered, "WinGroup")
        assert [s for s in group["VPCZoneIdentifier"] if s] == subnets, (azs, choice)


def test_endpoint_azs_is_a_choice_of_two_and_defaults_to_every_az(feature: dict[str, Any]) -> None:
    spec = feature["Parameters"]["WinEndpointAzs"]
    assert (spec["Type"], spec["Default"], spec["AllowedValues"]) == ("String", "all", ["all", "one"])
    assert feature["Conditions"]["WinEndpointsInOneAz"] == {"Fn::Equals": [{"Ref": "WinEndpointAzs"}, "one"]}
    # The parameter's default renders what 0.2.0 rendered: the endpoints in every subnet.
    default = render(feature, enabled_parameters(mode="isolated-3az"))
    assert _endpoints(default)["sqs"]["SubnetIds"] == ["WinSubnetA", "WinSubnetB", "WinSubnetC"]
