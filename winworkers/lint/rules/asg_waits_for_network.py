"""E9105: an Auto Scaling group must wait for the network its instances need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import consistent, created_when, reachable, references, resources

#: What an instance needs before it boots: its endpoints, its security group
#: rules and its subnets' routes (the S3 gateway endpoint is a route).
NETWORK_TYPES = (
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::EC2::SubnetRouteTableAssociation",
)


class AsgWaitsForNetwork(CloudFormationLintRule):
    """CloudFormation creates resources in parallel unless one depends on another.
    An Auto Scaling group that does not depend on the VPC endpoints, the separate
    security group rules and the subnet route table associations launches
    instances while they are still being created: cfn-init cannot reach
    CloudFormation or S3 yet, the bootstrap fails, the creation policy times out
    and the stack rolls back (intermittently, which is worse). moto creates
    resources one by one and never shows it.

    Dependencies are ``DependsOn`` plus the implicit ones: ``Ref``,
    ``Fn::GetAtt`` and ``Fn::Sub`` (``${X}``, ``${X.Attr}``) anywhere in a resource,
    including its ``Metadata`` and both sides of every ``Fn::If``, followed
    transitively. ``DependsOn`` cannot name a resource whose ``Condition`` is
    false (if that resource is not created, neither is anything that depends on
    it), so for a conditional resource the dependency is carried by
    ``{"Fn::If": [<its condition>, {"Ref": X}, {"Ref": "AWS::NoValue"}]}`` in the
    group's ``Metadata``, which this rule accepts. A network resource that can
    never exist together with the group (contradictory conditions) is not
    required.
    """

    id = "E9105"
    shortdesc = "Auto Scaling group does not wait for the network"
    description = (
        "Every AWS::AutoScaling::AutoScalingGroup must depend (DependsOn, Ref, GetAtt, Sub, transitively) on "
        "every VPC endpoint, SecurityGroupIngress/Egress and SubnetRouteTableAssociation of the template."
    )
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html"
    tags = ["resources", "autoscaling", "dependson", "vpc", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        declared = dict(resources(cfn))
        graph = {name: _dependencies(resource, declared) for name, resource in declared.items()}
        network = [(name, resource) for name, resource in declared.items() if resource.get("Type") in NETWORK_TYPES]
        matches: list[RuleMatch] = []
        for group, resource in resources(cfn, "AWS::AutoScaling::AutoScalingGroup"):
            waits_for = _closure(group, graph)
            for needed, needed_resource in network:
                both = consistent(created_when(resource), created_when(needed_resource))
                if needed in waits_for or both is None or not reachable(cfn, both):
                    continue
                matches.append(
                    RuleMatch(
                        ["Resources", group],
                        f"Auto Scaling group {group!r} does not wait for {needed_resource.get('Type')} {needed!r}: "
                        f"instances can boot before it exists; add {_fix(cfn, resource, needed, needed_resource)}",
                    )
                )
        return matches


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
