"""Where the workers run: an isolated VPC, or subnets the platform gives.

The isolated VPC has no internet gateway, NAT, Elastic IP or peering; its only
route is the local one plus the S3 gateway endpoint. The workers reach six
services through VPC endpoints, and each endpoint's policy is derived from the
workers' own IAM statements, so the endpoint allows exactly what the role does
(plus the public CloudWatch agent bucket, read anonymously by the bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from awacs import s3
from awacs.aws import Allow, AWSPrincipal, PolicyDocument, Principal, Statement
from troposphere import Cidr, GetAtt, GetAZs, If, NoValue, Ref, Select, Sub, Tags, Template
from troposphere.ec2 import (
    VPC,
    FlowLog,
    RouteTable,
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    SecurityGroupRule,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
)
from troposphere.iam import Role

from winworkers import iam
from winworkers.observability import add_log_group, grant_write
from winworkers.parameters import Params
from winworkers.suppress import skip_cfn_lint

HTTPS = 443
_HTTPS: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": HTTPS, "ToPort": HTTPS}

# service name -> (endpoint type, IAM action prefix whose statements form its policy)
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("s3", "Gateway", "s3"),
    ("sqs", "Interface", "sqs"),
    ("cloudformation", "Interface", "cloudformation"),
    ("monitoring", "Interface", "cloudwatch"),
    ("logs", "Interface", "logs"),
    # The UserData and the worker complete the group's lifecycle hooks.
    ("autoscaling", "Interface", "autoscaling"),
)


# cfn-lint resolves Refs with the parameters' defaults, on every branch of an Fn::If.
EMPTY_UNTIL_USED = "{name}: read only in existing-subnets mode; a Rule requires it there"


def _unset_in_default_mode(resource: Any, name: str) -> Any:
    skip_cfn_lint(resource, "W1030", EMPTY_UNTIL_USED.format(name=name))
    return resource


@dataclass(frozen=True)
class Network:
    """Handles for the compute module: where to launch, and with which security group."""

    subnet_ids: Any
    worker_security_group: SecurityGroup


def add_network(template: Template, p: Params, worker_role: Role, worker_statements: Sequence[Statement]) -> Network:
    """The VPC (isolated mode), the security groups and the endpoints."""
    vpc, subnets, route_table = _add_isolated_vpc(template, p)
    vpc_id = If(p.cond("IsolatedVpc"), Ref(vpc), p["VpcId"])
    subnet_ids = If(p.cond("IsolatedVpc"), subnets, p["SubnetIds"])
    workers = _add_security_groups(template, p, vpc_id)
    _add_endpoints(template, p, subnet_ids, route_table, workers, worker_role, worker_statements)
    return Network(subnet_ids=subnet_ids, worker_security_group=workers)


def _add_isolated_vpc(template: Template, p: Params) -> tuple[VPC, list[Any], RouteTable]:
    isolated = p.cond("IsolatedVpc")
    lid = p.config.logical_id
    vpc = template.add_resource(
        VPC(
            lid("Vpc"),
            CidrBlock=p["VpcCidr"],
            EnableDnsSupport=True,
            EnableDnsHostnames=True,
            Tags=Tags(Name=Sub("${AWS::StackName}-windows-workers")),
            Condition=isolated,
        )
    )
    # One route table with only the local route (and, below, the S3 gateway endpoint).
    route_table = template.add_resource(RouteTable(lid("RouteTable"), VpcId=Ref(vpc), Condition=isolated))
    # /24 subnets (8 host bits): room for 250 workers and the endpoints' interfaces per AZ.
    bits = 8
    subnet_refs: list[Any] = []
    for index, letter in enumerate("ABC"):
        condition = p.cond("ThreeAzs") if letter == "C" else isolated
        subnet = template.add_resource(
            Subnet(
                lid(f"Subnet{letter}"),
                VpcId=Ref(vpc),
                CidrBlock=Select(index, Cidr(p["VpcCidr"], 4, bits)),
                AvailabilityZone=Select(index, GetAZs("")),
                MapPublicIpOnLaunch=False,
                Condition=condition,
            )
        )
        template.add_resource(
            SubnetRouteTableAssociation(
                lid(f"Subnet{letter}Routes"), SubnetId=Ref(subnet), RouteTableId=Ref(route_table), Condition=condition
            )
        )
        subnet_refs.append(If(condition, Ref(subnet), NoValue) if letter == "C" else Ref(subnet))
    _add_flow_logs(template, p, vpc)
    return vpc, subnet_refs, route_table


def _add_flow_logs(template: Template, p: Params, vpc: VPC) -> None:
    isolated = p.cond("IsolatedVpc")
    group = add_log_group(template, p, "FlowLogs")
    group.Condition = isolated
    role = iam.add_role(template, p, "FlowLogsRole", "vpc-flow-logs.amazonaws.com", [grant_write((group,))])
    role.Condition = isolated
    template.add_resource(
        FlowLog(
            p.config.logical_id("FlowLog"),
            ResourceId=Ref(vpc),
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=Ref(group),
            DeliverLogsPermissionArn=GetAtt(role, "Arn"),
            Condition=isolated,
        )
    )


def _add_security_groups(template: Template, p: Params, vpc_id: Any) -> SecurityGroup:
    lid = p.config.logical_id
    workers = template.add_resource(
        _unset_in_default_mode(
            SecurityGroup(
                lid("WorkerSecurityGroup"),
                GroupDescription="Windows workers: no inbound at all; HTTPS out to the endpoints only",
                VpcId=vpc_id,
                # An inline egress rule is what removes EC2's default allow-all egress;
                # standalone SecurityGroupEgress resources do not (AWS::EC2::SecurityGroup docs).
                SecurityGroupEgress=[
                    SecurityGroupRule(
                        IpProtocol="tcp",
                        FromPort=HTTPS,
                        ToPort=HTTPS,
                        DestinationPrefixListId=p["S3PrefixListId"],
                        Description="S3 through the gateway endpoint",
                    ),
                ],
            ),
            "VpcId",
        )
    )
    endpoints = template.add_resource(
        SecurityGroup(
            lid("EndpointSecurityGroup"),
            GroupDescription="VPC endpoints: HTTPS from the Windows workers only",
            VpcId=GetAtt(workers, "VpcId"),
            SecurityGroupEgress=[
                # Endpoints answer, they never initiate; this rule matches no real traffic
                # and replaces the default allow-all egress.
                SecurityGroupRule(
                    IpProtocol="icmp", FromPort=-1, ToPort=-1, CidrIp="127.0.0.1/32", Description="No egress"
                ),
            ],
            Condition=p.cond("CreateEndpoints"),
        )
    )
    template.add_resource(
        SecurityGroupIngress(
            lid("EndpointIngressFromWorkers"),
            GroupId=Ref(endpoints),
            **_HTTPS,
            SourceSecurityGroupId=Ref(workers),
            Description="HTTPS from the Windows workers",
            Condition=p.cond("CreateEndpoints"),
        )
    )
    template.add_resource(
        SecurityGroupEgress(
            lid("WorkerEgressToEndpoints"),
            GroupId=Ref(workers),
            **_HTTPS,
            DestinationSecurityGroupId=Ref(endpoints),
            Description="HTTPS to the VPC endpoints",
            Condition=p.cond("CreateEndpoints"),
        )
    )
    template.add_resource(
        _unset_in_default_mode(
            SecurityGroupEgress(
                lid("WorkerEgressToNetworkEndpoints"),
                GroupId=Ref(workers),
                **_HTTPS,
                CidrIp=p["EndpointsCidr"],
                Description="HTTPS to the network's own VPC endpoints",
                Condition=p.cond("UseExistingEndpoints"),
            ),
            "EndpointsCidr",
        )
    )
    return workers


def endpoint_policy(prefix: str, role: Role, worker_statements: Sequence[Statement]) -> PolicyDocument:
    """The workers' statements for one service, granted to the workers' role only."""
    principal = AWSPrincipal(GetAtt(role, "Arn"))
    statements = [
        Statement(
            Effect=Allow,
            Principal=principal,
            Action=s.Action,
            Resource=s.Resource,
            **({"Condition": s.Condition} if "Condition" in s.properties else {}),
        )
        for s in worker_statements
        if all(action.prefix == prefix for action in s.Action)
    ]
    if prefix == "s3":
        # The bootstrap downloads the agent MSI anonymously from the regional,
        # AWS-owned bucket; only that bucket's Windows packages are readable.
        statements.append(
            Statement(
                Effect=Allow,
                Principal=Principal("*"),
                Action=[s3.GetObject],
                Resource=[Sub("arn:${AWS::Partition}:s3:::amazoncloudwatch-agent-${AWS::Region}/windows/*")],
            )
        )
    if prefix == "cloudformation":
        # cfn-signal may sign with the instance role or not at all; either way only
        # this stack can be read or signalled through the endpoint.
        for statement in statements:
            statement.Principal = Principal("*")
    if not statements:
        raise ValueError(f"no worker statement uses {prefix}; its endpoint would allow nothing")
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def _add_endpoints(
    template: Template,
    p: Params,
    subnet_ids: Any,
    route_table: RouteTable,
    workers: SecurityGroup,
    role: Role,
    worker_statements: Sequence[Statement],
) -> None:
    create = p.cond("CreateEndpoints")
    endpoint_sg = p.config.logical_id("EndpointSecurityGroup")
    for service, kind, prefix in ENDPOINTS:
        props: dict[str, Any] = {
            "ServiceName": Sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
            "VpcEndpointType": kind,
            # The workers' VPC, whichever mode chose it (and no empty default for cfn-lint to trip on).
            "VpcId": GetAtt(workers, "VpcId"),
            "PolicyDocument": endpoint_policy(prefix, role, worker_statements),
        }
        if kind == "Gateway":
            props["RouteTableIds"] = If(p.cond("IsolatedVpc"), [Ref(route_table)], p["RouteTableIds"])
        else:
            props.update(PrivateDnsEnabled=True, SubnetIds=subnet_ids, SecurityGroupIds=[Ref(endpoint_sg)])
        name = "".join(part.capitalize() for part in service.split("-"))
        template.add_resource(VPCEndpoint(p.config.logical_id(f"{name}Endpoint"), Condition=create, **props))
