"""E9105: an Auto Scaling group must wait for the network its instances need to boot."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Assumed,
    branches,
    consistent,
    created_when,
    elements,
    properties,
    reachable,
    references,
    resources,
    scenario_text,
    targets,
    vpcs,
)

Declared = Mapping[str, Mapping[str, Any]]
#: ``(logical ID of a resource the instances need, why, conditions)``.
Need = tuple[str, str, Assumed]

_GROUP = "AWS::AutoScaling::AutoScalingGroup"
_SECURITY_GROUP = "AWS::EC2::SecurityGroup"
_SUBNET = "AWS::EC2::Subnet"
_ROUTE_TABLE = "AWS::EC2::RouteTable"
_ENDPOINT = "AWS::EC2::VPCEndpoint"
_LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
_LAUNCH_CONFIGURATION = "AWS::AutoScaling::LaunchConfiguration"
_TRUE = (True, "true", "True")
# Destinations that are a way out of the VPC (to the internet, a NAT, a transit
# gateway, a firewall...). A destination the template does not spell out as a
# literal (a parameter, a prefix list) may be one too.
_DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")


class AsgWaitsForNetwork(CloudFormationLintRule):
    """CloudFormation creates resources in parallel unless one depends on another.
    An Auto Scaling group whose instances reach AWS only through the template's VPC
    endpoints launches them while the endpoints (minutes to become available) are
    still being created: cfn-init cannot reach CloudFormation or S3 yet, the
    bootstrap fails, the creation policy times out and the stack rolls back
    (intermittently, which is worse). moto creates resources one by one and never
    shows it.

    **What the rule sees.** Only what the group's instances need in order to boot,
    as far as the template can say:

    - egress rules (``AWS::EC2::SecurityGroupEgress``) of the group's own security
      groups (those of its launch template or launch configuration, also through a
      mixed instances policy), when that security group declares inline egress
      rules: only then has AWS removed the default allow-all egress rule, so the
      instances cannot get out before the separate rule exists;
    - for each of the group's subnets that the template creates and associates with
      a route table that has no route out of the VPC (``0.0.0.0/0``, ``::/0``, or a
      destination the template does not spell out; a conditional route counts
      only where its condition holds): that association, the gateway
      endpoints on that route table, the interface endpoints with private DNS in
      the subnet's VPC, and the ingress rules that let the group's security groups
      into those endpoints' security groups.

    **What it deliberately does not flag.** Ingress rules of the group's own
    security groups (nothing inbound is needed to boot); rules, associations and
    endpoints of other security groups, subnets and VPCs; anything of a group whose
    subnets come from parameters or imports, or have a route out of the VPC (the
    instances can boot over it: AWS's own ECS samples do not wait for their
    internet route, and the rule does not check internet routing); subnets the
    template associates with no route table (they use the VPC's main route table,
    which the template cannot see); security groups and launch templates the
    template does not create; interface endpoints without private DNS; network ACLs.

    Dependencies are ``DependsOn`` plus the implicit ones: ``Ref``,
    ``Fn::GetAtt`` and ``Fn::Sub`` (``${X}``, ``${X.Attr}``) anywhere in a resource,
    including its ``Metadata`` and both sides of every ``Fn::If``, followed
    transitively. ``DependsOn`` cannot name a resource whose ``Condition`` is
    false (if that resource is not created, neither is anything that depends on
    it), so for a conditional resource the dependency is carried by
    ``{"Fn::If": [<its condition>, {"Ref": X}, {"Ref": "AWS::NoValue"}]}`` in the
    group's ``Metadata``, which this rule accepts. Each ``Fn::If`` branch is
    followed with the conditions it assumes; what no deployment can reach together
    with the group (contradictory conditions) is not required.
    """

    id = "E9105"
    shortdesc = "Auto Scaling group does not wait for the network"
    description = (
        "An AWS::AutoScaling::AutoScalingGroup must depend (DependsOn, Ref, GetAtt, Sub, transitively) on what "
        "its instances need to boot: the egress rules of its own security groups (when they replace the default "
        "egress) and, for its subnets without a route out of the VPC, their route table associations, the "
        "endpoints they reach AWS through and the ingress rules into those endpoints."
    )
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html"
    tags = ["resources", "autoscaling", "dependson", "vpc", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        declared = dict(resources(cfn))
        graph = {name: _dependencies(resource, declared) for name, resource in declared.items()}
        matches: list[RuleMatch] = []
        for group, resource in resources(cfn, _GROUP):
            waits_for = _closure(group, graph)
            reported: set[str] = set()
            for needed, why, assumed in _needs(declared, resource):
                needed_resource = declared[needed]
                both = consistent(assumed, created_when(needed_resource))
                if needed in waits_for or needed in reported or both is None or not reachable(cfn, both):
                    continue
                reported.add(needed)
                matches.append(
                    RuleMatch(
                        ["Resources", group],
                        f"Auto Scaling group {group!r} does not wait for {needed_resource.get('Type')} {needed!r} "
                        f"({why}){scenario_text(both, resource)}: instances can boot before it exists; "
                        f"add {_fix(cfn, resource, needed, needed_resource)}",
                    )
                )
        return matches


def _needs(declared: Declared, group: Mapping[str, Any]) -> Iterator[Need]:
    """What the group's instances need to boot, each with the conditions under which."""
    own = list(_security_groups(declared, group))
    yield from _egress_rules(declared, own)
    props = properties(group)
    for subnet, with_subnet in targets(declared, props.get("VPCZoneIdentifier"), [], created_when(group), _SUBNET):
        for association, table, isolated in _isolated_routes(declared, subnet, with_subnet):
            yield association, f"the route table association of its subnet {subnet!r}", isolated
            yield from _endpoints(declared, own, subnet, table, isolated)


def _security_groups(declared: Declared, group: Mapping[str, Any]) -> Iterator[tuple[str, Assumed]]:
    """The group's own security groups (created by the template), from its launch
    template(s) or launch configuration."""
    props = properties(group)
    launch = {key: props[key] for key in ("LaunchTemplate", "MixedInstancesPolicy") if key in props}
    for name in set(references(launch)):
        spec = declared.get(name)
        if spec is None or spec.get("Type") != _LAUNCH_TEMPLATE:
            continue
        assumed = consistent(created_when(group), created_when(spec))
        if assumed is None:
            continue
        for data, _, with_data in branches(properties(spec).get("LaunchTemplateData"), [], assumed):
            if not isinstance(data, Mapping):
                continue
            for key in ("SecurityGroupIds", "SecurityGroups"):
                yield from targets(declared, data.get(key), [], with_data, _SECURITY_GROUP)
            for interface, _, with_interface in elements(data.get("NetworkInterfaces"), [], with_data):
                if isinstance(interface, Mapping):
                    yield from targets(declared, interface.get("Groups"), [], with_interface, _SECURITY_GROUP)
    for name in set(references(props.get("LaunchConfigurationName"))):
        spec = declared.get(name)
        if spec is None or spec.get("Type") != _LAUNCH_CONFIGURATION:
            continue
        assumed = consistent(created_when(group), created_when(spec))
        if assumed is not None:
            yield from targets(declared, properties(spec).get("SecurityGroups"), [], assumed, _SECURITY_GROUP)


def _egress_rules(declared: Declared, own: list[tuple[str, Assumed]]) -> Iterator[Need]:
    """Separate egress rules of the group's security groups, where the group's inline
    egress rules replaced AWS's default allow-all rule."""
    for group_sg, assumed in own:
        for inline, _, replaced in branches(properties(declared[group_sg]).get("SecurityGroupEgress"), [], assumed):
            listed = [rule for rule, _, _ in elements(inline, [], replaced)]
            if not isinstance(inline, list) or not listed or any(_allows_everything(rule) for rule in listed):
                continue
            for rule, rule_resource in declared.items():
                if rule_resource.get("Type") != "AWS::EC2::SecurityGroupEgress":
                    continue
                with_rule = consistent(replaced, created_when(rule_resource))
                if with_rule is None:
                    continue
                for named, both in targets(declared, properties(rule_resource).get("GroupId"), [], with_rule):
                    if named == group_sg:
                        yield rule, f"an egress rule of its security group {group_sg!r}", both


def _allows_everything(rule: Any) -> bool:
    """The IPv4 rule AWS adds by default (all protocols to anywhere): with it inline,
    a separate egress rule adds nothing the instances need."""
    return isinstance(rule, Mapping) and str(rule.get("IpProtocol")) == "-1" and rule.get("CidrIp") == "0.0.0.0/0"


def _isolated_routes(declared: Declared, subnet: str, assumed: Assumed) -> Iterator[tuple[str, str, Assumed]]:
    """``(association, route table, conditions)`` for the subnet's associations with a
    template route table, under the conditions where that table has no route out of
    the VPC."""
    for association, resource in declared.items():
        if resource.get("Type") != "AWS::EC2::SubnetRouteTableAssociation":
            continue
        props = properties(resource)
        with_association = consistent(assumed, created_when(resource))
        if with_association is None:
            continue
        for named, with_subnet in targets(declared, props.get("SubnetId"), [], with_association, _SUBNET):
            if named != subnet:
                continue
            for table, with_table in targets(declared, props.get("RouteTableId"), [], with_subnet, _ROUTE_TABLE):
                without = _without_way_out(declared, table)
                isolated = None if without is None else consistent(with_table, without)
                if isolated is not None:
                    yield association, table, isolated


def _without_way_out(declared: Declared, table: str) -> Assumed | None:
    """The conditions under which none of the template's routes on ``table`` may
    lead out of the VPC: every such route's own ``Condition`` false (None when one
    of them has no condition, or two contradict)."""
    without: Assumed = {}
    for resource in declared.values():
        if resource.get("Type") != "AWS::EC2::Route":
            continue
        props = properties(resource)
        if table not in {name for name, _ in targets(declared, props.get("RouteTableId"), [], {})}:
            continue
        if not _may_leave(props):
            continue
        condition = resource.get("Condition")
        if not isinstance(condition, str) or without.get(condition, False) is not False:
            return None
        without[condition] = False
    return without


def _may_leave(route: Mapping[str, Any]) -> bool:
    """Whether a route's destination may be outside the VPC: a default route, or one
    the template does not spell out (a parameter, a prefix list)."""
    if "DestinationPrefixListId" in route:
        return True
    for key in ("DestinationCidrBlock", "DestinationIpv6CidrBlock"):
        if key in route:
            for destination, _, _ in branches(route[key], [], {}):
                if not isinstance(destination, str) or destination in _DEFAULT_ROUTES:
                    return True
    return False


def _endpoints(
    declared: Declared, own: list[tuple[str, Assumed]], subnet: str, table: str, assumed: Assumed
) -> Iterator[Need]:
    """The endpoints an isolated subnet reaches AWS through, and the ingress rules that
    let the group's security groups into them."""
    subnet_vpcs = [
        (vpc, conditions)
        for vpc, _, conditions in vpcs(declared, properties(declared[subnet]).get("VpcId"), assumed)
        if vpc is not None
    ]
    for endpoint, resource in declared.items():
        if resource.get("Type") != _ENDPOINT:
            continue
        props = properties(resource)
        with_endpoint = consistent(assumed, created_when(resource))
        if with_endpoint is None:
            continue
        for kind, _, typed in branches(props.get("VpcEndpointType", "Gateway"), [], with_endpoint):
            if kind == "Gateway":
                for named, on_table in targets(declared, props.get("RouteTableIds"), [], typed, _ROUTE_TABLE):
                    if named == table:
                        yield endpoint, f"a gateway endpoint on the route table of its subnet {subnet!r}", on_table
            elif kind == "Interface":
                for dns, _, with_dns in branches(props.get("PrivateDnsEnabled", False), [], typed):
                    if dns not in _TRUE:
                        continue
                    for vpc, _, in_vpc in vpcs(declared, props.get("VpcId"), with_dns):
                        same = [consistent(in_vpc, c) for v, c in subnet_vpcs if v == vpc and vpc is not None]
                        why = f"a private-DNS interface endpoint in the VPC of its subnet {subnet!r}"
                        for both in (s for s in same if s is not None):
                            yield endpoint, why, both
                            yield from _ingress_rules(declared, own, props.get("SecurityGroupIds"), endpoint, both)


def _ingress_rules(
    declared: Declared, own: list[tuple[str, Assumed]], endpoint_groups: Any, endpoint: str, assumed: Assumed
) -> Iterator[Need]:
    """Ingress rules into an endpoint's security groups from the group's own."""
    protected = list(targets(declared, endpoint_groups, [], assumed, _SECURITY_GROUP))
    for rule, resource in declared.items():
        if resource.get("Type") != "AWS::EC2::SecurityGroupIngress":
            continue
        props = properties(resource)
        for into, with_into in protected:
            with_rule = consistent(with_into, created_when(resource))
            if with_rule is None:
                continue
            for named, with_named in targets(declared, props.get("GroupId"), [], with_rule):
                if named != into:
                    continue
                for source, with_source in targets(declared, props.get("SourceSecurityGroupId"), [], with_named):
                    for group_sg, with_group_sg in own:
                        both = consistent(with_source, with_group_sg)
                        if source == group_sg and both is not None:
                            yield rule, f"the ingress rule into the security group of endpoint {endpoint!r}", both


def _fix(cfn: Template, group: Mapping[str, Any], needed: str, needed_resource: Mapping[str, Any]) -> str:
    """DependsOn when the needed resource exists whenever the group does; else the Fn::If form."""
    condition = needed_resource.get("Condition")
    own = group.get("Condition")
    if not isinstance(condition, str) or (
        isinstance(own, str) and cfn.conditions.check_implies({own: True}, condition)
    ):
        return f"DependsOn {needed!r}"
    return f'{{"Fn::If": ["{condition}", {{"Ref": "{needed}"}}, {{"Ref": "AWS::NoValue"}}]}} to its Metadata'


def _dependencies(resource: Mapping[str, Any], declared: Mapping[str, Any]) -> set[str]:
    explicit = resource.get("DependsOn", [])
    named = {explicit} if isinstance(explicit, str) else {d for d in explicit if isinstance(d, str)}
    implicit = references({key: value for key, value in resource.items() if key != "DependsOn"})
    return {name for name in (*named, *implicit) if name in declared}


def _closure(start: str, graph: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dependency in graph.get(todo.pop(), set()):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen
