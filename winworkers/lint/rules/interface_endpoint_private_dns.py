"""E9104: private DNS on an interface endpoint in a VPC the template does not create."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Assumed,
    Path,
    branches,
    created_when,
    function,
    properties,
    reachable,
    resources,
    scenario_text,
    unique,
)

_TRUE = (True, "true", "True")


class InterfaceEndpointPrivateDns(CloudFormationLintRule):
    """``PrivateDnsEnabled`` associates a private hosted zone for the service's
    *public* name (``sqs.<region>.amazonaws.com``) with the whole VPC: every
    workload in it, not only this stack's, then reaches the service through this
    endpoint, its security group and its policy. And a VPC can hold one such zone
    per service: if the platform's VPC already has a private-DNS endpoint for the
    service, creating this one fails ("private-dns-enabled cannot be set because
    there is already a conflicting DNS domain"). cfn-lint's E3064 only sees two
    such endpoints in one template; this rule flags any in a VPC the template does
    not create, where neither can be known.

    A branch's ``VpcId`` counts as created here when it is a ``Ref`` to an
    ``AWS::EC2::VPC`` of the template, or ``Fn::GetAtt [X, VpcId]`` of a template
    resource whose own ``VpcId`` is created here on that branch. Anything else (a
    parameter, an import, a literal) counts as not created here. Type, private DNS
    and VPC are resolved together, one consistent set of ``Fn::If`` conditions at a
    time, so ``PrivateDnsEnabled: Fn::If [OwnVpc, true, false]`` passes.
    """

    id = "E9104"
    shortdesc = "Interface endpoint private DNS in a VPC the template does not create"
    description = (
        "PrivateDnsEnabled applies to the whole VPC and fails if the VPC already has a private-DNS endpoint "
        "for the service; enable it only in a VPC the template creates."
    )
    source_url = "https://docs.aws.amazon.com/vpc/latest/privatelink/manage-dns-names.html"
    tags = ["resources", "ec2", "vpc", "dns", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        declared = dict(resources(cfn))
        for name, resource in resources(cfn, "AWS::EC2::VPCEndpoint"):
            props = properties(resource)
            at: Path = ["Resources", name, "Properties"]
            for kind, _, typed in branches(props.get("VpcEndpointType", "Gateway"), at, created_when(resource)):
                if kind != "Interface":
                    continue
                for dns, _, with_dns in branches(props.get("PrivateDnsEnabled", False), at, typed):
                    if dns not in _TRUE:
                        continue
                    for vpc, vpc_at, with_vpc in branches(props.get("VpcId"), [*at, "VpcId"], with_dns):
                        for created, leaf, scenario in _created_here(declared, vpc, with_vpc, frozenset({name})):
                            if created or not reachable(cfn, scenario):
                                continue
                            matches.append(
                                RuleMatch(
                                    vpc_at,
                                    f"Interface endpoint {name!r} enables private DNS in a VPC this template does "
                                    f"not create ({json.dumps(leaf, default=str)}){scenario_text(scenario, resource)}: "
                                    "it takes the service's public name over for every workload in that VPC and "
                                    "fails if the VPC already has a private-DNS endpoint for the service",
                                )
                            )
        return unique(matches)


def _created_here(
    declared: Mapping[str, Mapping[str, Any]], vpc: object, assumed: Assumed, seen: frozenset[str]
) -> Iterator[tuple[bool, object, Assumed]]:
    """``(created here, the VPC value it comes down to, conditions)`` for ``vpc``
    (one branch of a VpcId), following ``Fn::GetAtt [X, VpcId]`` through every
    branch of X's own VpcId."""
    call = function(vpc)
    if call and call[0] == "Ref" and isinstance(call[1], str):
        target = declared.get(call[1])
        yield target is not None and target.get("Type") == "AWS::EC2::VPC", vpc, assumed
        return
    if call and call[0] == "Fn::GetAtt":
        argument = call[1]
        parts = argument.split(".", 1) if isinstance(argument, str) else argument
        if isinstance(parts, list) and len(parts) == 2 and parts[1] == "VpcId" and isinstance(parts[0], str):
            owner = declared.get(parts[0])
            if owner is not None and parts[0] not in seen:
                for owner_vpc, _, conditions in branches(properties(owner).get("VpcId"), [], assumed):
                    yield from _created_here(declared, owner_vpc, conditions, seen | {parts[0]})
                return
    yield False, vpc, assumed
