"""Where the workers run: an isolated VPC, or subnets the platform gives.

``isolated-vpc``: a VPC of the feature's own, with no internet gateway, NAT,
Elastic IP or peering; its only routes are the local one and the S3 gateway
endpoint's. The workers reach S3, SQS, CloudFormation, CloudWatch monitoring,
Logs and Auto Scaling (their own lifecycle hooks) through VPC endpoints this
stack creates, and each endpoint's policy is derived from the workers' own IAM
statements, so the endpoint allows exactly what the role does (plus the public
CloudWatch agent bucket, read anonymously by the bootstrap). Its DNS is filtered:
a Route 53 Resolver DNS Firewall rule group answers only the names the workers
use and blocks, logs and counts every other (_add_dns_firewall).

``existing-subnets``: the feature creates no endpoint and changes no route
table, because the VPC is the platform's and both would change it for every
other workload in it:

- An interface endpoint with private DNS answers the service's regional name
  for the whole VPC (PrivateLink guide, "DNS hostnames": the private hosted
  zone is associated with the VPC). Its security group would admit only the
  workers, so every other workload in the VPC would lose SQS, Logs, Monitoring
  and CloudFormation; and a VPC that already has such an endpoint refuses a
  second one for the same service ("conflicting DNS domain").
- A gateway endpoint adds the S3 prefix-list route to each route table it
  names (PrivateLink guide, "Gateway endpoints for Amazon S3"): every subnet
  on those tables would send its S3 traffic through the workers-only policy,
  or the route would collide with the one an existing S3 endpoint has there.

The config's ``extra_endpoints`` (the platform's software's: an AWS service, or a PrivateLink
service on its own port) are rows of the same table (endpoints_of), and ImageSource=baked adds the
image build's (``for_build``: Systems Manager and Image Builder, which no worker reaches).

So in that mode the platform's VPC provides the endpoints (docs/network.md, "What an
existing network must provide"): interface endpoints with private DNS for sqs,
cloudformation, monitoring, logs (and autoscaling for the lifecycle hooks),
reachable on 443 from ``EndpointsCidr``, and an S3 gateway endpoint on the
workers' subnets' route tables. The workers' security group sends 443 to
``EndpointsCidr`` and to the S3 prefix list, nothing else, so the VPC must
resolve through AmazonProvidedDNS (vpc_dns_problems checks it); the same DNS
Firewall rule group is offered, unassociated, with CreateDnsFirewall.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any

from awacs import logs, s3
from awacs.aws import Action as AwacsAction
from awacs.aws import Allow, ArnEquals, AWSPrincipal, Condition, PolicyDocument, Principal, Statement
from troposphere import Cidr, GetAtt, GetAZs, If, NoValue, Output, Ref, Select, Sub, Tags, Template, encode_to_dict
from troposphere.cloudwatch import Alarm
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
from troposphere.logs import MetricFilter, MetricTransformation
from troposphere.route53resolver import (
    FirewallDomainList,
    FirewallRule,
    FirewallRuleGroup,
    FirewallRuleGroupAssociation,
    ResolverQueryLoggingConfig,
    ResolverQueryLoggingConfigAssociation,
)

from winworkers import iam
from winworkers.config import ConfigError, WorkersConfig, extra_endpoint
from winworkers.dns_quiet import QUIET_NAMES
from winworkers.observability import add_log_group, grant_write
from winworkers.parameters import Params
from winworkers.suppress import skip_cfn_lint

HTTPS = 443
_HTTPS: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": HTTPS, "ToPort": HTTPS}
GATEWAY, INTERFACE = "Gateway", "Interface"
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_REGIONAL = "${AWS::Region}.${AWS::URLSuffix}"
AGENT_BUCKET_OBJECTS = "arn:${AWS::Partition}:s3:::amazoncloudwatch-agent-${AWS::Region}/windows/*"
IMAGE_BUILDER_BUCKETS = (
    "ec2imagebuilder-toe-${AWS::Region}-prod",
    "ec2imagebuilder-managed-resources-${AWS::Region}-prod",
)
"""Image Builder's own buckets, which a build reads through the S3 gateway endpoint: AWSTOE, the
component manager, and the managed resources (Image Builder user guide, "Custom policies for S3
bucket access": ``ec2imagebuilder-toe-region-environment``, ``ec2imagebuilder-managed-resources-
region-environment/components``, environment ``prod``; docs/aws-behaviours.md, 249)."""
IMAGE_BUILDER_OBJECTS = (
    f"arn:${{AWS::Partition}}:s3:::{IMAGE_BUILDER_BUCKETS[0]}/*",
    f"arn:${{AWS::Partition}}:s3:::{IMAGE_BUILDER_BUCKETS[1]}/components/*",
)
"""What a build reads there: AWS's public objects, read without signing (AWSTOE's bootstrap), so the
S3 gateway's statement for them names no principal, as the agent MSI's (249)."""


@dataclass(frozen=True)
class DnsName:
    """A name the workers resolve through an endpoint, beyond its service's regional name: an
    ``Fn::Sub`` text in which ``${Bucket}`` is the value of the parameter ``bucket``."""

    name: str
    bucket: str = ""
    only_in_us_east_1: bool = False
    condition: str = ""
    """Allowed only under this template condition (Image Builder's buckets: BakedImage)."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("DnsName.name is empty: a DNS Firewall domain specification")
        if ("${Bucket}" in self.name) != bool(self.bucket):
            raise ValueError(f"DnsName.bucket={self.bucket!r}: names the parameter of ${{Bucket}} in {self.name!r}")


SSM_AGENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "ssm": (
        "DescribeAssociation",
        "GetDeployablePatchSnapshotForInstance",
        "GetDocument",
        "DescribeDocument",
        "GetManifest",
        "GetParameter",
        "GetParameters",
        "ListAssociations",
        "ListInstanceAssociations",
        "PutInventory",
        "PutComplianceItems",
        "PutConfigurePackageResult",
        "UpdateAssociationStatus",
        "UpdateInstanceAssociationStatus",
        "UpdateInstanceInformation",
    ),
    "ssmmessages": ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel"),
    "ec2messages": ("AcknowledgeMessage", "DeleteMessage", "FailMessage", "GetEndpoint", "GetMessages", "SendReply"),
}
"""The actions of AmazonSSMManagedInstanceCore (AWS managed policy reference, v2), per endpoint: what the
build's SSM Agent calls, and all its endpoints allow (250)."""
BUILD_COMPONENTS = (
    "arn:${AWS::Partition}:imagebuilder:${AWS::Region}:${AWS::AccountId}:component/*",
    "arn:${AWS::Partition}:imagebuilder:${AWS::Region}:aws:component/*",
)
"""The components AWSTOE reads through the Image Builder endpoint: the stack's own, and AWS's managed
library, which the user guide says the endpoint must allow when a recipe uses one (251)."""


@dataclass(frozen=True)
class EndpointService:
    """One AWS service the workers reach through a VPC endpoint of the isolated VPC (one row of
    ENDPOINTS). Everything the template and the docs say of an endpoint is read from its row: the
    endpoint (``<Service>Endpoint``), its policy (the workers' statements of ``action_prefix``), its
    names in the DNS Firewall allow list, the workers' wait for it, docs/network.md's table."""

    service: str
    """The endpoint's service name, com.amazonaws.<Region>.<service>; <service>.<Region>.<URL suffix>
    is the regional name its private DNS answers (a gateway endpoint's: the public name it serves)."""
    purpose: str
    """What the workers use it for (docs/network.md)."""
    action_prefix: str
    """The IAM prefix of the workers' statements that form its policy (e.g. cloudwatch for monitoring)."""
    kind: str = INTERFACE
    prefix_list: str = ""
    """A gateway endpoint's: the parameter holding its managed prefix list, the workers' egress to it."""
    dns_names: tuple[DnsName, ...] = ()
    """Names beyond the regional one that resolve to it (S3's buckets, virtual-hosted)."""
    public_objects: tuple[str, ...] = ()
    """S3 object ARNs (``Fn::Sub``) anyone may read through it: the public CloudWatch agent bucket."""
    any_principal: bool = False
    """Its statements name no principal: cfn-signal may sign with the instance role or not at all."""
    condition: str = ""
    """An optional endpoint's: the template condition (one that implies IsolatedVpc) it exists under."""
    for_build: bool = False
    """The image build's, never the workers' (ImageSource=baked, winworkers.image): its policy names
    the build role only, its security group admits the build's only, and no worker waits for it or
    has egress to it."""
    actions: tuple[str, ...] = ()
    """A build endpoint's: the actions (of action_prefix) its policy allows the build role."""
    for_platform: bool = False
    """The platform's software's (WorkersConfig.extra_endpoints): its policy allows the workers' role
    every action of action_prefix (the role's own policies bound them); no policy for PrivateLink."""
    private_link: str = ""
    """A PrivateLink endpoint service's whole name (com.amazonaws.vpce.REGION.vpce-svc-...): another
    account's service, which takes no endpoint policy (252); its names are its dns_names."""
    port: int = HTTPS
    """The TCP port the workers reach it on (a PrivateLink licence server's own port, say)."""
    resources: tuple[str, ...] = ("*",)
    """A build endpoint's: the resources (``Fn::Sub`` texts, or ``*``) of those actions."""
    host: str = ""
    """Its regional name's part before .<Region>.<URL suffix> when not ``service`` (an extra's:
    ecr.api's api.ecr, config.sdk_name)."""
    narrowed: tuple[str, ...] = ()
    """A build endpoint's: those of its actions allowed on ``narrowed_to`` only (the ssm endpoint's
    parameter reads: the stack's own parameters)."""
    narrowed_to: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("service", "purpose", "action_prefix"):
            if not getattr(self, name):
                raise ValueError(f"EndpointService.{name} is empty: every endpoint row needs one")
        if not _SERVICE_NAME.fullmatch(self.service):
            raise ValueError(f"EndpointService.service={self.service!r}: the service part of com.amazonaws.REGION.*")
        if self.kind not in (GATEWAY, INTERFACE):
            raise ValueError(f"EndpointService.kind={self.kind!r} is not allowed: one of {GATEWAY}, {INTERFACE}")
        if (self.kind == GATEWAY) != bool(self.prefix_list):
            raise ValueError(f"EndpointService.prefix_list={self.prefix_list!r}: a gateway endpoint's only, and needed")
        if self.public_objects and self.kind != GATEWAY:
            raise ValueError("EndpointService.public_objects: an S3 gateway endpoint's only")
        if self.for_build and (self.kind != INTERFACE or not self.condition or not self.actions):
            raise ValueError(
                f"EndpointService.for_build ({self.service}): an interface endpoint with a condition and actions"
            )
        if not set(self.narrowed) <= set(self.actions) or bool(self.narrowed) != bool(self.narrowed_to):
            raise ValueError(f"EndpointService.narrowed={self.narrowed!r}: some of its actions, with narrowed_to")
        if any(not action or "*" in action or ":" in action for action in self.actions):
            raise ValueError(f"EndpointService.actions={self.actions!r}: action names, without prefix or wildcard")

    @property
    def logical_name(self) -> str:
        """The endpoint's logical id, before the config's prefix: SqsEndpoint, CloudformationEndpoint."""
        return "".join(part.capitalize() for part in self.service.replace(".", "-").split("-")) + "Endpoint"

    @property
    def names_condition(self) -> str:
        """The condition its names are allowed under in the DNS Firewall: a build endpoint's while the
        stack bakes, in either network mode (the rule group offered in existing-subnets serves the
        platform's endpoints); another's, its own condition."""
        return "BakedImage" if self.for_build else self.condition

    @property
    def regional_name(self) -> str:
        return f"{self.host or self.service}.{_REGIONAL}"


def _for_build(service: str, actions: tuple[str, ...], resources: tuple[str, ...] = ("*",)) -> EndpointService:
    """A build endpoint's row (ImageSource=baked, in the isolated VPC): its policy allows the build role
    these actions on these resources; the ssm endpoint's parameter reads, the stack's parameters only."""
    reads = tuple(a for a in actions if a in PARAMETER_READS) if service == "ssm" else ()
    return EndpointService(
        service,
        "the image build (baked)",
        service,
        condition="BuildEndpoints",
        for_build=True,
        actions=actions,
        resources=resources,
        narrowed=reads,
        narrowed_to=(STACK_PARAMETERS,) if reads else (),
    )


PARAMETER_READS = ("GetParameter", "GetParameters")
STACK_PARAMETERS = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/winworkers/${AWS::StackName}/*"
"""What the build reads of Parameter Store through the ssm endpoint (270): the stack's own parameters
(BuildSettings, which the component's Get-SSMParameterValue reads; compute.IMAGE_PARAMETER's path). The
build role's AmazonSSMManagedInstanceCore allows both on "*"; in the isolated VPC this endpoint policy is
the limit (an endpoint policy "does not override or replace identity-based policies", register 260)."""


ENDPOINTS: tuple[EndpointService, ...] = (
    EndpointService(
        "s3",
        "data, service zip, agent MSI",
        "s3",
        kind=GATEWAY,
        prefix_list="S3PrefixListId",
        # In us-east-1 the AWS SDKs' S3 clients default to the legacy global endpoint
        # (s3.amazonaws.com, BUCKET.s3.amazonaws.com), the AWS Tools for PowerShell on the
        # Windows AMIs (the SDK for .NET v3) included, so a worker's Read-S3Object resolves
        # that name (SDK for .NET, S3UsEast1RegionalEndpointValue: Legacy); the gateway
        # endpoint serves it there, as the name resolves to the Region's S3 addresses.
        # Then the buckets, virtual-hosted as the bootstrap reads them (bootstrap.init_metadata).
        dns_names=(
            DnsName("s3.${AWS::URLSuffix}", only_in_us_east_1=True),
            DnsName("${Bucket}.s3.${AWS::URLSuffix}", "DataBucket", only_in_us_east_1=True),
            DnsName("${Bucket}.s3.${AWS::URLSuffix}", "ArtifactBucket", only_in_us_east_1=True),
            DnsName(f"${{Bucket}}.s3.{_REGIONAL}", "DataBucket"),
            DnsName(f"${{Bucket}}.s3.{_REGIONAL}", "ArtifactBucket"),
            DnsName(f"amazoncloudwatch-agent-${{AWS::Region}}.s3.{_REGIONAL}"),
            # ImageSource=baked: the build's reads of Image Builder's buckets, virtual-hosted (249).
            *(DnsName(f"{bucket}.s3.{_REGIONAL}", condition="BakedImage") for bucket in IMAGE_BUILDER_BUCKETS),
            *(
                DnsName(f"{bucket}.s3.${{AWS::URLSuffix}}", only_in_us_east_1=True, condition="BakedImage")
                for bucket in IMAGE_BUILDER_BUCKETS
            ),
        ),
        # The bootstrap downloads the agent MSI anonymously from the regional,
        # AWS-owned bucket; only that bucket's Windows packages are readable.
        public_objects=(AGENT_BUCKET_OBJECTS,),
    ),
    EndpointService("sqs", "work queue", "sqs"),
    EndpointService("cloudformation", "cfn-init and cfn-signal", "cloudformation", any_principal=True),
    EndpointService("monitoring", "agent metrics", "cloudwatch"),
    EndpointService("logs", "agent logs", "logs"),
    # The UserData and the worker complete the group's lifecycle hooks.
    EndpointService("autoscaling", "the lifecycle hooks", "autoscaling"),
    # ImageSource=baked: the image build's and test's instances are driven through Systems Manager,
    # and AWSTOE calls Image Builder (Image Builder user guide, "Image Builder and AWS PrivateLink
    # interface VPC endpoints"; row 233). The workers reach none of them. Each policy allows the build
    # role what AWS's managed policies of its profile grant for that service (250, 251).
    *(_for_build(service, actions) for service, actions in SSM_AGENT_ACTIONS.items()),
    _for_build("imagebuilder", ("GetComponent",), BUILD_COMPONENTS),
)
"""The endpoints of the isolated VPC, one row each; in existing-subnets mode, what the platform's VPC
must provide (docs/network.md, generated from this table: endpoint_table)."""


NEVER_FOR_WORKERS = ("ssm", "ssmmessages", "ec2messages", "imagebuilder")
"""Services no worker may reach (Systems Manager, and Image Builder's build endpoint): refused as extras."""
UNSUPPORTED_EXTRAS = {
    "ecr.dkr": "a Docker pull reads its image layers from Amazon ECR's own S3 bucket, which the S3 gateway "
    "endpoint's policy does not allow (register 280): not supported",
}
"""Extras refused because the endpoint alone would not work (docs/network.md, "Extra endpoints")."""


def endpoints_of(config: WorkersConfig) -> tuple[EndpointService, ...]:
    """ENDPOINTS, then one row for each of config.extra_endpoints (docs/network.md, "Extra endpoints").
    ConfigError (a ValueError) naming the field for a service the stack has already, or one no worker
    may reach."""
    rows = list(ENDPOINTS)
    for text in config.extra_endpoints:
        extra = extra_endpoint(text)
        if extra.service in UNSUPPORTED_EXTRAS:
            raise ConfigError("extra_endpoints", text, UNSUPPORTED_EXTRAS[extra.service])
        if extra.service in NEVER_FOR_WORKERS or extra.service in {row.service for row in rows}:
            why = (
                "the workers never reach Systems Manager or Image Builder" if extra.service in NEVER_FOR_WORKERS else ""
            )
            raise ConfigError("extra_endpoints", text, why or "a service the stack has no endpoint for already")
        rows.append(
            EndpointService(
                extra.service,
                "the platform's software (extra_endpoints)",
                extra.prefix or "privatelink",
                for_platform=True,
                private_link=extra.private_link,
                port=extra.port,
                dns_names=tuple(DnsName(n) for n in [extra.dns_name] if n)
                + tuple(DnsName(f"{n}.{_REGIONAL}") for n in extra.names[1:]),
                host=extra.names[0] if extra.names else "",
            )
        )
    return tuple(rows)


# cfn-lint resolves Refs with the parameters' defaults, on every branch of an Fn::If.
EMPTY_UNTIL_USED = "{name}: read only in existing-subnets mode; a Rule requires it there"


def _unset_in_default_mode(resource: Any, name: str) -> Any:
    skip_cfn_lint(resource, "W1030", EMPTY_UNTIL_USED.format(name=name))
    return resource


@dataclass(frozen=True)
class Network:
    """Handles for the compute module: where to launch, with which security group,
    and what must exist before a worker boots."""

    subnet_ids: Any
    worker_security_group: SecurityGroup
    ready: Any
    """References to every endpoint, security group rule and route association the
    workers need, per mode (``Fn::If``): the group's Metadata carries them, so
    CloudFormation creates them before it creates the group."""
    first_subnet_id: Any
    """Where the image build runs, and its endpoints are: the first of subnet_ids."""
    build_security_group: SecurityGroup
    """The image build's (BakedImage): the build endpoints admit it alone."""
    build_ready: Any
    """What the image build needs before its instance starts (BakedImage), per mode (``Fn::If``): in
    isolated-vpc all the workers wait for (the DNS Firewall's lists among them) and the build's own
    endpoints and security group rules; in existing-subnets the build's egress to BuildEndpointsCidr.
    winworkers.image carries them in the build infrastructure's Metadata, as compute does the group's."""


@dataclass(frozen=True)
class _SecurityGroups:
    """What _add_security_groups created, for the endpoints and Network.ready."""

    workers: SecurityGroup
    endpoints: SecurityGroup
    """Isolated mode only: the VPC endpoints' group."""
    isolated_rules: tuple[Any, ...]
    """Isolated mode: endpoints from the workers, workers to the endpoints."""
    existing_rules: tuple[Any, ...]
    """existing-subnets mode: workers to the network's own endpoints."""


def add_network(
    template: Template, p: Params, worker_role: Role, worker_statements: Sequence[Statement], build: BuildAccess
) -> Network:
    """The VPC, endpoints and endpoint security group (isolated mode); the workers' security group (both);
    the image build's security group and endpoints (ImageSource=baked: winworkers.image)."""
    vpc, subnets, route_table, routes = _add_isolated_vpc(template, p)
    isolated = p.cond("IsolatedVpc")
    groups = _add_security_groups(template, p, vpc)
    build_groups, build_rules, build_egress = _add_build_groups(template, p, vpc)
    endpoints = _add_endpoints(
        template, p, vpc, subnets, route_table, groups.endpoints, worker_role, worker_statements, build, build_groups
    )
    dns = _add_dns_firewall(template, p, vpc)
    needed = [groups.endpoints, *groups.isolated_rules, *dns]
    waits = [*endpoints, *(Ref(r) for r in needed), *routes]
    ready = If(isolated, waits, [Ref(r) for r in groups.existing_rules])
    subnet_ids = If(isolated, subnets, p["SubnetIds"])
    return Network(
        subnet_ids=subnet_ids,
        first_subnet_id=If(isolated, subnets[0], Select(0, p["SubnetIds"])),
        worker_security_group=groups.workers,
        ready=ready,
        build_security_group=build_groups[0],
        build_ready=If(isolated, [*waits, *(Ref(r) for r in build_rules)], [Ref(build_egress)]),
    )


@dataclass(frozen=True)
class BuildAccess:
    """What the image build (ImageSource=baked) may reach through the isolated VPC's endpoints: its
    role, which the build endpoints' policies name alone, and the S3 objects it reads through the
    gateway endpoint (the artifact; Image Builder's own buckets)."""

    role: Role
    s3_objects: tuple[Any, ...]


def _add_build_groups(template: Template, p: Params, vpc: VPC) -> tuple[tuple[Any, Any], list[Any], Any]:
    """The build's security group (BakedImage: no ingress; HTTPS to S3's prefix list, to the build
    endpoints' group in isolated-vpc, to EndpointsCidr in existing-subnets) and, in isolated-vpc, the
    build endpoints' group, which admits the build's group only; then the isolated-vpc rules between
    them, and the existing-subnets egress (for Network.build_ready)."""
    lid = p.config.logical_id
    baked, endpoints_on = p.cond("BakedImage"), p.cond("BuildEndpoints")
    build = template.add_resource(
        _unset_in_default_mode(
            SecurityGroup(
                lid("BuildSecurityGroup"),
                GroupDescription="Image builds (baked): no inbound; HTTPS out to S3 and the build endpoints only",
                VpcId=If(p.cond("IsolatedVpc"), Ref(vpc), p["VpcId"]),
                SecurityGroupEgress=[
                    SecurityGroupRule(
                        **_HTTPS, DestinationPrefixListId=p[row.prefix_list], Description="S3 through the gateway"
                    )
                    for row in ENDPOINTS
                    if row.kind == GATEWAY
                ],
                Condition=baked,
            ),
            "VpcId",
        )
    )
    group = template.add_resource(
        SecurityGroup(
            lid("BuildEndpointSecurityGroup"),
            GroupDescription="Build endpoints (SSM, Image Builder): HTTPS from the image build only",
            VpcId=Ref(vpc),
            SecurityGroupEgress=[
                SecurityGroupRule(
                    IpProtocol="icmp", FromPort=-1, ToPort=-1, CidrIp="127.0.0.1/32", Description="No egress"
                ),
            ],
            Condition=endpoints_on,
        )
    )
    rules = []
    for name, kind, props in (
        ("BuildEndpointIngress", SecurityGroupIngress, {"GroupId": Ref(group), "SourceSecurityGroupId": Ref(build)}),
        (
            "BuildEgressToEndpoints",
            SecurityGroupEgress,
            {"GroupId": Ref(build), "DestinationSecurityGroupId": Ref(group)},
        ),
    ):
        rules.append(
            template.add_resource(
                kind(lid(name), **_HTTPS, **props, Description="HTTPS, build only", Condition=endpoints_on)
            )
        )
    return (build, group), rules, _add_build_network_egress(template, p, build)


def _add_build_network_egress(template: Template, p: Params, build: SecurityGroup) -> Any:
    """existing-subnets: the platform's network provides the build's endpoints too, in a block of their
    own (BuildEndpointsCidr), apart from the workers' EndpointsCidr (docs/baked-image.md)."""
    return _add_egress_to_block(
        template,
        p,
        "BuildEgressToNetworkEndpoints",
        build,
        ("BuildEndpointsCidr", "BakedInExistingNetwork"),
        **_HTTPS,
        Description="HTTPS to the network's build endpoints",
    )


def _add_egress_to_block(
    template: Template, p: Params, name: str, group: SecurityGroup, block: tuple[str, str], **rule: Any
) -> SecurityGroupEgress:
    """existing-subnets: group's egress (rule: protocol, ports, description) to the CIDR block the
    parameter block[0] names, under the condition block[1]; the parameter is empty in the other modes."""
    cidr, condition = block
    egress = SecurityGroupEgress(
        p.config.logical_id(name), GroupId=Ref(group), CidrIp=p[cidr], Condition=p.cond(condition), **rule
    )
    return template.add_resource(_unset_in_default_mode(egress, cidr))


def _add_isolated_vpc(template: Template, p: Params) -> tuple[VPC, list[Any], RouteTable, list[Any]]:
    isolated = p.cond("IsolatedVpc")
    lid = p.config.logical_id
    vpc = template.add_resource(
        VPC(
            lid("Vpc"),
            CidrBlock=p["VpcCidr"],
            # Private DNS of interface endpoints needs both (PrivateLink guide).
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
    routes: list[Any] = []
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
        association = template.add_resource(
            SubnetRouteTableAssociation(
                lid(f"Subnet{letter}Routes"), SubnetId=Ref(subnet), RouteTableId=Ref(route_table), Condition=condition
            )
        )
        optional = letter == "C"
        subnet_refs.append(If(condition, Ref(subnet), NoValue) if optional else Ref(subnet))
        routes.append(If(condition, Ref(association), NoValue) if optional else Ref(association))
    _add_flow_logs(template, p, vpc)
    return vpc, subnet_refs, route_table, routes


def _add_flow_logs(template: Template, p: Params, vpc: VPC) -> None:
    isolated = p.cond("IsolatedVpc")
    group = add_log_group(template, p, "FlowLogs")
    group.Condition = isolated
    # The VPC guide's flow-log role also lists DescribeLogGroups, which has no resource type.
    describe = Statement(Effect=Allow, Action=[logs.DescribeLogGroups], Resource=["*"])
    role = iam.add_role(template, p, "FlowLogsRole", "vpc-flow-logs.amazonaws.com", [grant_write((group,)), describe])
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


def _add_security_groups(template: Template, p: Params, vpc: VPC) -> _SecurityGroups:
    workers = _add_worker_group(template, p, vpc)
    endpoints = _add_endpoint_group(template, p, vpc)
    isolated_rules, existing_rules = _add_https_rules(template, p, workers, endpoints)
    return _SecurityGroups(
        workers=workers, endpoints=endpoints, isolated_rules=isolated_rules, existing_rules=existing_rules
    )


def _add_worker_group(template: Template, p: Params, vpc: VPC) -> SecurityGroup:
    """The workers' group: no ingress; HTTPS to each gateway endpoint's prefix list inline (the
    rest of its egress are the rules of _add_https_rules)."""
    return template.add_resource(
        _unset_in_default_mode(
            SecurityGroup(
                p.config.logical_id("WorkerSecurityGroup"),
                GroupDescription="Windows workers: no inbound at all; HTTPS out to the endpoints only",
                VpcId=If(p.cond("IsolatedVpc"), Ref(vpc), p["VpcId"]),
                # An inline egress rule is what removes EC2's default allow-all egress;
                # standalone SecurityGroupEgress resources do not (AWS::EC2::SecurityGroup docs).
                SecurityGroupEgress=[
                    SecurityGroupRule(
                        **_HTTPS,
                        DestinationPrefixListId=p[row.prefix_list],
                        Description=f"{row.service.upper()} through the gateway endpoint",
                    )
                    for row in ENDPOINTS
                    if row.kind == GATEWAY
                ],
            ),
            "VpcId",
        )
    )


def _add_endpoint_group(template: Template, p: Params, vpc: VPC) -> SecurityGroup:
    return template.add_resource(
        SecurityGroup(
            p.config.logical_id("EndpointSecurityGroup"),
            GroupDescription="VPC endpoints: HTTPS from the Windows workers only",
            VpcId=Ref(vpc),
            SecurityGroupEgress=[
                # Endpoints answer, they never initiate; this rule matches no real traffic
                # and replaces the default allow-all egress.
                SecurityGroupRule(
                    IpProtocol="icmp", FromPort=-1, ToPort=-1, CidrIp="127.0.0.1/32", Description="No egress"
                ),
            ],
            Condition=p.cond("IsolatedVpc"),
        )
    )


def _add_https_rules(
    template: Template, p: Params, workers: SecurityGroup, endpoints: SecurityGroup
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """HTTPS from the workers to the endpoints: isolated, the endpoints' group both ways; in
    existing-subnets, to the network's own endpoints (EndpointsCidr)."""
    lid = p.config.logical_id
    isolated = p.cond("IsolatedVpc")
    ingress = template.add_resource(
        SecurityGroupIngress(
            lid("EndpointIngressFromWorkers"),
            GroupId=Ref(endpoints),
            **_HTTPS,
            SourceSecurityGroupId=Ref(workers),
            Description="HTTPS from the Windows workers",
            Condition=isolated,
        )
    )
    egress = template.add_resource(
        SecurityGroupEgress(
            lid("WorkerEgressToEndpoints"),
            GroupId=Ref(workers),
            **_HTTPS,
            DestinationSecurityGroupId=Ref(endpoints),
            Description="HTTPS to the VPC endpoints",
            Condition=isolated,
        )
    )
    network_egress = _add_egress_to_block(
        template,
        p,
        "WorkerEgressToNetworkEndpoints",
        workers,
        ("EndpointsCidr", "UseExistingEndpoints"),
        **_HTTPS,
        Description="HTTPS to the network's own VPC endpoints",
    )
    extra_isolated, extra_existing = _add_port_rules(template, p, workers, endpoints)
    return (ingress, egress, *extra_isolated), (network_egress, *extra_existing)


def _add_port_rules(
    template: Template, p: Params, workers: SecurityGroup, endpoints: SecurityGroup
) -> tuple[list[Any], list[Any]]:
    """The extra endpoints' ports other than HTTPS (WorkersConfig.extra_endpoints: a licence server's):
    the workers to the endpoints' group on each, both ways (isolated); to EndpointsCidr (existing)."""
    lid = p.config.logical_id
    isolated: list[Any] = []
    existing: list[Any] = []
    for port in sorted({row.port for row in endpoints_of(p.config)} - {HTTPS}):
        tcp = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "Description": f"TCP {port}, extra endpoints"}
        isolated += [
            template.add_resource(kind(lid(name + str(port)), Condition=p.cond("IsolatedVpc"), **tcp, **sides))
            for kind, name, sides in (
                (
                    SecurityGroupIngress,
                    "EndpointIngressFromWorkers",
                    {"GroupId": Ref(endpoints), "SourceSecurityGroupId": Ref(workers)},
                ),
                (
                    SecurityGroupEgress,
                    "WorkerEgressToEndpoints",
                    {"GroupId": Ref(workers), "DestinationSecurityGroupId": Ref(endpoints)},
                ),
            )
        ]
        block = ("EndpointsCidr", "UseExistingEndpoints")
        existing.append(
            _add_egress_to_block(template, p, f"WorkerEgressToNetworkEndpoints{port}", workers, block, **tcp)
        )
    return isolated, existing


def endpoint_policy(prefix: str, role: Role, worker_statements: Sequence[Statement]) -> PolicyDocument:
    """The policy of the endpoint whose row (ENDPOINTS) has action_prefix ``prefix``."""
    rows = {row.action_prefix: row for row in ENDPOINTS}
    if prefix not in rows:
        raise ValueError(f"prefix={prefix!r} is not allowed: one of {sorted(rows)}")
    return _policy(rows[prefix], role, worker_statements)


def _policy(row: EndpointService, role: Role, worker_statements: Sequence[Statement]) -> PolicyDocument:
    """The workers' statements for one service, granted to the workers' role only.

    An interface endpoint's policy names the role as its principal. A gateway
    endpoint's cannot: its Principal must be ``*``, narrowed to the role by the
    ``aws:PrincipalArn`` condition key (PrivateLink guide, "Control access to VPC
    endpoints using endpoint policies", principals for gateway endpoints).
    """
    gateway = row.kind == GATEWAY
    role_arn = GetAtt(role, "Arn")
    statements = []
    for s in worker_statements:
        if not all(action.prefix == row.action_prefix for action in s.Action):
            continue
        conditions = list(s.Condition.conditions) if "Condition" in s.properties else []
        if gateway:
            conditions.append(ArnEquals({"aws:PrincipalArn": role_arn}))
        statements.append(
            Statement(
                Effect=Allow,
                Principal=Principal("*") if gateway else AWSPrincipal(role_arn),
                Action=s.Action,
                Resource=s.Resource,
                **({"Condition": Condition(conditions)} if conditions else {}),
            )
        )
    statements += [
        Statement(Effect=Allow, Principal=Principal("*"), Action=[s3.GetObject], Resource=[Sub(arn)])
        for arn in row.public_objects
    ]
    if row.any_principal:
        # e.g. cfn-signal may sign with the instance role or not at all; either way only
        # this stack can be read or signalled through the endpoint.
        for statement in statements:
            statement.Principal = Principal("*")
    if not statements:
        raise ValueError(f"no worker statement uses {row.action_prefix}; its endpoint would allow nothing")
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def _add_endpoints(
    template: Template,
    p: Params,
    vpc: VPC,
    subnet_ids: list[Any],
    route_table: RouteTable,
    security_group: SecurityGroup,
    role: Role,
    worker_statements: Sequence[Statement],
    build: BuildAccess,
    build_groups: tuple[Any, Any],
) -> list[Any]:
    """Only in the isolated VPC: in the platform's VPC, private DNS and routes would change
    every other workload's access to these services (module docstring). One per row of
    ENDPOINTS; returns a reference to each, for the workers to wait for.

    Each interface endpoint bills per AZ-hour whether traffic flows or not (PrivateLink
    pricing), so ``EndpointAzs`` ``one`` puts them in the first subnet only while the
    workers keep every AZ. Private DNS answers for the whole VPC, so workers in the other
    AZs reach the one endpoint network interface (cross-AZ data transfer, billed per GB);
    while that AZ is down no worker reaches SQS, CloudFormation, Logs, Monitoring or Auto
    Scaling. The S3 gateway endpoint is a route, in no AZ, and keeps working. SubnetIds
    is not create-only (AWS::EC2::VPCEndpoint's schema): a change of ``EndpointAzs`` on a
    running stack adds or removes endpoint network interfaces in place (ModifyVpcEndpoint).
    docs/aws-behaviours.md, "Idle cost and the scaling model's modes (cost)", has the sources."""
    where = If(p.cond("EndpointsInOneAz"), subnet_ids[:1], subnet_ids)
    created = []
    for row in endpoints_of(p.config):
        props: dict[str, Any] = {
            "ServiceName": row.private_link or Sub(f"com.amazonaws.${{AWS::Region}}.{row.service}"),
            "VpcEndpointType": row.kind,
            "VpcId": Ref(vpc),
        }
        if not row.private_link:
            props["PolicyDocument"] = _endpoint_policy(row, role, worker_statements, build)
        if row.kind == GATEWAY:
            props["RouteTableIds"] = [Ref(route_table)]
            props["PolicyDocument"] = _with_build_objects(p, props["PolicyDocument"], build)
        else:
            # The build's endpoints sit where the build runs: the first subnet (winworkers.image).
            group = build_groups[1] if row.for_build else security_group
            subnets = subnet_ids[:1] if row.for_build else where
            props.update(PrivateDnsEnabled=True, SubnetIds=subnets, SecurityGroupIds=[Ref(group)])
        condition = _endpoint_condition(template, p, row)
        endpoint = template.add_resource(
            VPCEndpoint(p.config.logical_id(row.logical_name), Condition=condition, **props)
        )
        # The group waits for the build's endpoints too (no worker reaches them): a private-DNS name
        # answers differently once its endpoint exists, and the group boots in the same VPC.
        created.append(Ref(endpoint) if not row.condition else If(condition, Ref(endpoint), NoValue))
    return created


def _endpoint_policy(
    row: EndpointService, role: Role, worker_statements: Sequence[Statement], build: BuildAccess
) -> PolicyDocument:
    """An AWS service's endpoint policy: the build's, the platform's software's, or the workers' own."""
    if row.for_build:
        return _build_policy(row, build)
    if row.for_platform:
        # The workers' role, every action of the service: the role's own policies (the platform's) bound it.
        principal = AWSPrincipal(GetAtt(role, "Arn"))
        every = Statement(
            Effect=Allow, Principal=principal, Action=[AwacsAction(row.action_prefix, "*")], Resource=["*"]
        )
        return PolicyDocument(Version="2012-10-17", Statement=[every])
    return _policy(row, role, worker_statements)


def _build_policy(row: EndpointService, build: BuildAccess) -> PolicyDocument:
    """A build endpoint's policy: the build role alone, the actions its row lists (what AWS's managed
    policies of the build's profile grant for that service: 250, 251), on its row's resources.
    The worker role is not named."""
    groups = [([a for a in row.actions if a not in row.narrowed], row.resources), (row.narrowed, row.narrowed_to)]
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=AWSPrincipal(GetAtt(build.role, "Arn")),
                Action=[AwacsAction(row.action_prefix, action) for action in actions],
                Resource=[text if text == "*" else Sub(text) for text in resources],
            )
            for actions, resources in groups
            if actions
        ],
    )


def _with_build_objects(p: Params, policy: PolicyDocument, build: BuildAccess) -> If:
    """The S3 gateway policy, and in baked mode the build role's reads: Fn::If of two whole
    documents, so that without the image the policy is the workers' as before."""
    document: dict[str, Any] = encode_to_dict(policy)
    document = {**document, "Statement": list(document["Statement"])}
    read = Statement(
        Effect=Allow,
        Principal=Principal("*"),
        Action=[s3.GetObject],
        Resource=list(build.s3_objects),
        Condition=Condition(ArnEquals({"aws:PrincipalArn": GetAtt(build.role, "Arn")})),
    )
    # AWSTOE's bootstrap reads Image Builder's buckets without signing (249): a principal condition
    # would deny it. AWS's public objects, readable by anyone through the endpoint, as the agent MSI's.
    public = Statement(
        Effect=Allow, Principal=Principal("*"), Action=[s3.GetObject], Resource=[Sub(a) for a in IMAGE_BUILDER_OBJECTS]
    )
    document["Statement"] += [read, public]
    return If(p.cond("BakedImage"), document, policy)


def _endpoint_condition(template: Template, p: Params, row: EndpointService) -> str:
    """IsolatedVpc, or an optional endpoint's own condition, which must imply it: an Fn::And of it and
    more (ValueError)."""
    isolated = p.cond("IsolatedVpc")
    if not row.condition:
        return isolated
    name = p.cond(row.condition)
    if name not in template.conditions:
        raise ValueError(f"EndpointService.condition={row.condition!r} ({row.service}): no such condition")
    definition = json.loads(json.dumps(template.conditions[name].to_dict()))
    if {"Condition": isolated} not in definition.get("Fn::And", []):
        raise ValueError(f"EndpointService.condition={row.condition!r} ({row.service}): must imply IsolatedVpc")
    return name


def endpoint_table() -> str:
    """ENDPOINTS as docs/network.md's table: the endpoints an existing network must provide."""
    rows = ["| Service | Endpoint | Why |", "| --- | --- | --- |"]
    for row in ENDPOINTS:
        kind = "gateway, on the route tables of the workers' subnets" if row.kind == GATEWAY else "interface"
        kind += ", private DNS" if row.kind == INTERFACE else ""
        when = " (`ImageSource` baked; in `BuildEndpointsCidr`)" if row.for_build else ""
        when = when or (f" (when {row.condition})" if row.condition else "")
        rows.append(f"| `com.amazonaws.<region>.{row.service}` | {kind}{when} | {row.purpose} |")
    return "\n".join(rows) + "\n"


def build_cidr_problems(template: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """The deploy's pre-check: in existing-subnets with ImageSource=baked, BuildEndpointsCidr must not
    overlap EndpointsCidr, or the workers' group (HTTPS to EndpointsCidr) would reach the build's
    Systems Manager endpoints. One line each; empty when nothing (or not that mode, or a block unset)."""
    declared = template.get("Parameters", {})
    # The shortest name ending in each (EndpointsCidr is a suffix of BuildEndpointsCidr too).
    names = {key: min((n for n in declared if n.endswith(key)), key=len, default="") for key in _CIDR_KEYS}
    if not all(names.values()):
        return []
    mode, source, workers, build = (values.get(names[key], "") for key in _CIDR_KEYS)
    if mode != "existing-subnets" or source != "baked" or not workers or not build:
        return []
    try:
        overlap = ip_network(workers, strict=False).overlaps(ip_network(build, strict=False))
    except ValueError:
        return []  # not a block: the parameter's pattern refuses it
    if not overlap:
        return []
    return [
        f"{names['BuildEndpointsCidr']}={build} overlaps {names['EndpointsCidr']}={workers}: the workers would reach "
        "the image build's Systems Manager endpoints; give the build's endpoints a block of their own"
    ]


_CIDR_KEYS = ("NetworkMode", "ImageSource", "EndpointsCidr", "BuildEndpointsCidr")


# --- DNS Firewall ---------------------------------------------------------------------------
# The isolated VPC has DNS support on (private DNS of the endpoints needs it), and neither
# security groups nor network ACLs filter queries to the Amazon-provided resolver (VPC user
# guide, "Network ACL basics"): without a filter, code on a worker could tunnel what it reads
# out in queries for a domain it controls. Route 53 Resolver DNS Firewall filters exactly those
# queries, including the endpoints' private names and instance names (Route 53 developer guide,
# "Using DNS Firewall to filter outbound DNS traffic"), so it allows only these names.


def _instance_suffix(p: Params) -> Any:
    """The DNS suffix of the instances' own names: ec2.internal in us-east-1, else
    <region>.compute.internal (EC2 user guide, "EC2 instance hostnames")."""
    return If(p.cond("InUsEast1"), "ec2.internal", Sub("${AWS::Region}.compute.internal"))


def allowed_domains(p: Params) -> list[Any]:
    """Exactly the names the workers resolve, as DNS Firewall domain specifications.

    - Each endpoint's regional service name (ENDPOINTS), which private DNS answers with the
      endpoint (S3's gateway endpoint serves the public name); the S3 name is also what an SDK
      uses path-style.
    - The other names of each endpoint (its row's dns_names): the buckets, virtual-hosted as the
      bootstrap reads them (bootstrap.init_metadata): the platform's data bucket, the artifact
      bucket, AWS's CloudWatch agent bucket; in us-east-1 also S3's legacy global names.
    - The instances' own names (the suffix, and ``*.`` + the suffix), which the Resolver
      answers itself from the VPC; Windows registers and looks up its own name there.

    An optional endpoint's names are allowed under its condition only.

    Windows needs no name for time or activation: the Amazon Time Sync Service is
    169.254.169.123, which the Windows AMIs use by default (EC2 user guide, "Set the time
    reference ... to use the local Amazon Time Sync Service"), and AWS's KMS activation
    servers are link-local addresses too (the same page's link-local limit lists the "Windows
    Licensing Service"). Instance metadata is 169.254.169.254.
    """
    east = p.cond("InUsEast1")

    def under(row: EndpointService, name: Any) -> Any:
        return If(p.cond(row.names_condition), name, NoValue) if row.names_condition else name

    def named(dns: DnsName) -> Any:
        name = Sub(dns.name, **({"Bucket": p[dns.bucket]} if dns.bucket else {}))
        name = If(east, name, NoValue) if dns.only_in_us_east_1 else name
        return If(p.cond(dns.condition), name, NoValue) if dns.condition else name

    rows = endpoints_of(p.config)
    services = [under(row, Sub(row.regional_name)) for row in rows if not row.private_link]
    others = [under(row, named(dns)) for row in rows for dns in row.dns_names]
    # The suffix itself too: whether "*." also matches the name it prefixes is not documented.
    return [*services, *others, _instance_suffix(p), Sub("*.${Suffix}", Suffix=_instance_suffix(p))]


def expected_noise(p: Params) -> list[Any]:
    """The quiet list (dns_quiet.QUIET_NAMES, each with its source) as DNS Firewall domains:
    names Windows looks up on its own that the workers do not need, blocked like every other
    name, but by their own rule, so that the alarm counts only the unexpected ones. WPAD and
    ISATAP under the instances' own suffix would otherwise be let through by the allow rule
    (this rule comes first). A name an endpoint's row allows (its service's regional name, say
    ssm's) is not quiet: the workers need it, and this rule would block it first."""
    suffix = _instance_suffix(p)
    rows = [row for row in endpoints_of(p.config) if not row.condition]
    allowed = {row.regional_name for row in rows} | {d.name for row in rows for d in row.dns_names if not d.condition}
    # An optional endpoint's name is quiet while its condition is false, allowed while it is true.
    optional = {row.regional_name: p.cond(row.names_condition) for row in ENDPOINTS if row.names_condition}

    def domain(q: Any) -> Any:
        text = q.domain
        name = Sub(text, Suffix=suffix) if "${Suffix}" in text else Sub(text) if "${" in text else text
        return If(optional[q.domain], NoValue, name) if q.domain in optional else name

    return [domain(q) for q in QUIET_NAMES if q.domain not in allowed]


BLOCKED_METRIC = "DnsQueriesBlocked"
# Evaluated in ascending Priority; a query no rule matches would be allowed (Route 53
# developer guide, "Rule settings in DNS Firewall"), so the last rule blocks "*".
NOISE_PRIORITY, ALLOW_PRIORITY, BLOCK_PRIORITY = 100, 200, 300


def _add_dns_firewall(template: Template, p: Params, vpc: VPC) -> list[Any]:
    """The domain lists and the rule group (HasDnsFirewall: isolated-vpc, or offered in
    existing-subnets); in isolated-vpc also their association with the VPC, fail-closed,
    and the query log with its alarm. Returns what the workers must wait for."""
    lid = p.config.logical_id
    offered = p.cond("HasDnsFirewall")
    isolated = p.cond("IsolatedVpc")

    def domains(name: str, names: list[Any]) -> FirewallDomainList:
        return template.add_resource(FirewallDomainList(lid(name), Domains=names, Condition=offered))

    noise = domains("DnsNoiseList", expected_noise(p))
    allowed = domains("DnsAllowList", allowed_domains(p))
    everything = domains("DnsBlockList", ["*"])
    block = {"Action": "BLOCK", "BlockResponse": "NXDOMAIN"}
    rules = template.add_resource(
        FirewallRuleGroup(
            lid("DnsFirewall"),
            FirewallRules=[
                FirewallRule(Priority=NOISE_PRIORITY, FirewallDomainListId=Ref(noise), **block),
                # AWS's own names answer through CNAMEs (an S3 bucket's regional name, for one):
                # trust the chain of an allowed name rather than list each hop (FirewallRule,
                # FirewallDomainRedirectionAction; the default inspects every hop).
                FirewallRule(
                    Priority=ALLOW_PRIORITY,
                    Action="ALLOW",
                    FirewallDomainListId=Ref(allowed),
                    FirewallDomainRedirectionAction="TRUST_REDIRECTION_DOMAIN",
                ),
                FirewallRule(Priority=BLOCK_PRIORITY, FirewallDomainListId=Ref(everything), **block),
            ],
            Condition=offered,
        )
    )
    # Ref gives a registry type's primaryIdentifier, Id for both (their resource schemas); moto's
    # nested stacks refuse a GetAtt output of a type moto does not model.
    for name, value, description in (
        ("DnsFirewallRuleGroupId", Ref(rules), "DNS Firewall rule group"),
        ("DnsAllowListId", Ref(allowed), "DNS names the workers need"),
    ):
        template.add_output(Output(lid(name), Value=value, Description=description, Condition=offered))
    association = template.add_resource(
        FirewallRuleGroupAssociation(
            lid("DnsFirewallAssociation"),
            FirewallRuleGroupId=GetAtt(rules, "Id"),
            VpcId=Ref(vpc),
            # 100 to 9900, evaluated from the lowest (AssociateFirewallRuleGroup API): room for the
            # platform's own rule groups on either side.
            Priority=1000,
            Condition=isolated,
        )
    )
    # Fail closed, the default: when DNS Firewall cannot answer, the Resolver answers SERVFAIL
    # rather than let the query through (Route 53 developer guide, "DNS Firewall VPC
    # configuration"). A worker then fails its job or its boot; an open filter would be a way
    # out exactly when nobody watches it. The default is kept, not stated: cfn-lint 1.58 does
    # not know AWS::Route53Resolver::FirewallConfig (E3006), though CloudFormation documents it.
    logged = _add_dns_query_log(template, p, vpc, everything)
    return [association, *logged]


def _add_dns_query_log(template: Template, p: Params, vpc: VPC, everything: FirewallDomainList) -> list[Any]:
    """Every query of the VPC, with DNS Firewall's action, in a log group of the feature, and
    the unexpected blocks (those of the block-everything list) counted by a metric and an alarm.

    Resolver query logs reach CloudWatch Logs as vended logs: AWS adds the log group's resource
    policy itself when the deploying principal may logs:PutResourcePolicy,
    logs:DescribeResourcePolicies and logs:DescribeLogGroups (CloudWatch Logs user guide,
    "Logs sent to CloudWatch Logs"); the template adds none, as an account holds at most 10.
    """
    isolated = p.cond("IsolatedVpc")
    lid = p.config.logical_id
    group = add_log_group(template, p, "DnsQueryLogs")
    group.Condition = isolated
    template.add_output(
        Output(lid("DnsQueryLogGroup"), Value=Ref(group), Description="DNS query log group", Condition=isolated)
    )
    logging = template.add_resource(
        ResolverQueryLoggingConfig(lid("DnsQueryLogging"), DestinationArn=GetAtt(group, "Arn"), Condition=isolated)
    )
    association = template.add_resource(
        ResolverQueryLoggingConfigAssociation(
            lid("DnsQueryLoggingAssociation"),
            ResolverQueryLogConfigId=GetAtt(logging, "Id"),
            ResourceId=Ref(vpc),
            Condition=isolated,
        )
    )
    # The log's firewall_rule_action and firewall_domain_list_id fields (Route 53 developer
    # guide, "Values that appear in VPC Resolver query logs").
    template.add_resource(
        MetricFilter(
            lid("DnsBlockedFilter"),
            LogGroupName=Ref(group),
            FilterPattern=Sub(
                '{ $.firewall_rule_action = "BLOCK" && $.firewall_domain_list_id = "${List}" }',
                List=GetAtt(everything, "Id"),
            ),
            MetricTransformations=[
                MetricTransformation(
                    MetricName=BLOCKED_METRIC, MetricNamespace=p.config.metrics_namespace, MetricValue="1"
                )
            ],
            Condition=isolated,
        )
    )
    if p.config.include_alarms:
        _add_dns_blocked_alarm(template, p)
    return [association]


def _add_dns_blocked_alarm(template: Template, p: Params) -> None:
    """Pages on any block of the block-everything list (BLOCKED_METRIC): a name neither allowed nor quiet."""
    lid = p.config.logical_id
    isolated = p.cond("IsolatedVpc")
    template.add_resource(
        Alarm(
            lid("DnsBlockedAlarm"),
            AlarmDescription=(
                "Something unexpected asked: a worker looked up a name neither allowed nor one of Windows' "
                "own lookups (those are blocked without paging); see the DNS query log"
            ),
            AlarmActions=If(p.cond("HasAlarmTopic"), [p["AlarmTopicArn"]], NoValue),
            Namespace=p.config.metrics_namespace,
            MetricName=BLOCKED_METRIC,
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            Condition=isolated,
        )
    )


# --- What an existing network's DNS must be ------------------------------------------------
# The worker security group sends TCP 443 only; the Amazon-provided resolver is the one DNS
# server that no security group filters (VPC user guide, "Network ACL basics"; "Amazon DNS
# server"). With DHCP options naming other servers (domain controllers, say) every query is
# dropped and every bootstrap fails; port-53 egress to them would be a DNS channel out that
# no DNS Firewall sees. So the network must resolve through AmazonProvidedDNS (docs/network.md, "What
# an existing network must provide"), and the private names of its endpoints need DNS
# support and hostnames on (PrivateLink guide, "DNS hostnames").

AMAZON_DNS = "AmazonProvidedDNS"


def vpc_dns_problems(ec2: Any, vpc_id: str) -> list[str]:
    """What keeps vpc_id from resolving the workers' names, one line each; empty when nothing.

    ec2 is a boto3 EC2 client; the calls are DescribeVpcAttribute (twice), DescribeVpcs and,
    when the VPC has DHCP options, DescribeDhcpOptions. For a pre-deploy check of an
    existing-subnets network: no template can read a VPC's DHCP options.
    """
    problems = []
    for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
        value = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[key]["Value"]
        if not value:
            problems.append(f"{vpc_id} has {attribute} off: the endpoints' private DNS names need it on")
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    options_id = vpc.get("DhcpOptionsId", "default")
    if options_id != "default":
        (options,) = ec2.describe_dhcp_options(DhcpOptionsIds=[options_id])["DhcpOptions"]
        servers = [
            value["Value"]
            for entry in options["DhcpConfigurations"]
            if entry["Key"] == "domain-name-servers"
            for value in entry["Values"]
        ]
        if servers and AMAZON_DNS not in servers:
            problems.append(
                f"{vpc_id}'s DHCP options {options_id} name DNS servers {', '.join(servers)}, not {AMAZON_DNS}: "
                "the workers may send only HTTPS, so they would resolve nothing"
            )
    return problems
