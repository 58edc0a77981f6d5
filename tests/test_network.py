"""Network isolation, asserted on renderings of every mode with the feature on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import props, render, resources_of
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
INTERFACE = {"sqs", "cloudformation", "monitoring", "logs", "autoscaling"}


@pytest.fixture(scope="module", params=sorted(MODES))
def mode(request: pytest.FixtureRequest, feature: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return request.param, render(feature, enabled_parameters(mode=request.param))


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
    if name == "existing-without-endpoints":
        assert endpoints == {}
        assert props(rendered, "WinWorkerEgressToNetworkEndpoints")["CidrIp"] == "10.0.0.0/16"
        return
    assert set(endpoints) == INTERFACE | {"s3"}
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
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


def test_isolated_vpc_has_private_subnets_and_flow_logs(feature: dict[str, Any]) -> None:
    for azs in ("2", "3"):
        rendered = render(feature, enabled_parameters(mode=f"isolated-{azs}az"))
        subnets = resources_of(rendered, "AWS::EC2::Subnet")
        assert len(subnets) == int(azs)
        assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
        flow = props(rendered, "WinFlowLog")
        assert (flow["ResourceType"], flow["TrafficType"]) == ("VPC", "ALL")
        assert props(rendered, "WinFlowLogs")["RetentionInDays"] == "90"
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
    for service, endpoint in _endpoints(enabled).items():
        for statement in endpoint["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            assert "*" not in actions and all(":" in a and not a.endswith(":*") for a in actions), service
            if service == "cloudformation" or statement["Resource"] == [
                "arn:aws:s3:::amazoncloudwatch-agent-us-east-1/windows/*"
            ]:
                assert statement["Principal"] == "*"  # this stack only / AWS's public agent bucket only
            else:
                assert statement["Principal"] == {"AWS": "WinInstanceRole.Arn"}, service
