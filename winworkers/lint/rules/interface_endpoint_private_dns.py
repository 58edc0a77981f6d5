"""W9104 (opt-in): private DNS on an interface endpoint in a VPC the template does not create."""

from __future__ import annotations

import json
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Path,
    branches,
    created_when,
    properties,
    reachable,
    resources,
    scenario_text,
    unique,
    vpcs,
)

_TRUE = (True, "true", "True")
#: The rule's switch, cfn-lint's rule configuration: ``--configure-rule=W9104:enabled=true``.
SWITCH = "enabled"


class InterfaceEndpointPrivateDns(CloudFormationLintRule):
    """``PrivateDnsEnabled`` associates a private hosted zone for the service's
    *public* name (``sqs.<region>.amazonaws.com``) with the whole VPC: every
    workload in it, not only this stack's, then reaches the service through this
    endpoint, its security group and its policy. And a VPC can hold one such zone
    per service: if the VPC already has a private-DNS endpoint for the service,
    creating this one fails ("private-dns-enabled cannot be set because there is
    already a conflicting DNS domain"). cfn-lint's E3064 only sees two such
    endpoints in one template.

    **When it applies: opt-in.** This is a design rule for a stack that must not
    change a VPC it shares with others, such as a feature embedded in a platform's
    VPC (winworkers' ``existing-subnets`` mode). A network stack that adds a VPC's
    endpoints on purpose (the usual way, as in AWS's Systems Manager set-up guides)
    is correct, so the rule is off unless enabled with cfn-lint's rule
    configuration: ``--configure-rule=W9104:enabled=true`` (or ``configure_rules:
    {W9104: {enabled: true}}`` in ``.cfnlintrc``). A warning, not an error: the
    template cannot know whether the VPC already has such an endpoint.

    **What it sees.** A branch's ``VpcId`` counts as created here when it is a
    ``Ref`` to (or ``Fn::GetAtt [X, VpcId]`` of) an ``AWS::EC2::VPC`` of the
    template, or ``Fn::GetAtt [X, VpcId]`` of a template resource whose own
    ``VpcId`` is created here on that branch. Anything else (a parameter, an
    import, a literal) counts as not created here. Type, private DNS and VPC are
    resolved together, one consistent set of ``Fn::If`` conditions at a time, so
    ``PrivateDnsEnabled: Fn::If [OwnVpc, true, false]`` passes. **It does not
    flag** gateway endpoints, interface endpoints without private DNS, or any
    endpoint when the rule is not enabled.
    """

    id = "W9104"
    shortdesc = "Interface endpoint private DNS in a VPC the template does not create (opt-in)"
    description = (
        "Opt-in (--configure-rule=W9104:enabled=true), for stacks that must not change a VPC they share: "
        "PrivateDnsEnabled applies to the whole VPC and fails if the VPC already has a private-DNS endpoint "
        "for the service, so enable it only in a VPC the template creates."
    )
    source_url = "https://docs.aws.amazon.com/vpc/latest/privatelink/manage-dns-names.html"
    tags = ["resources", "ec2", "vpc", "dns", "winworkers"]

    def __init__(self) -> None:
        super().__init__()
        self.config_definition = {SWITCH: {"default": False, "type": "boolean"}}
        self.config[SWITCH] = False  # cfn-lint sets it from --configure-rule (configure())

    def match(self, cfn: Template) -> list[RuleMatch]:
        if not self.config.get(SWITCH):
            return []
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
                        for created, leaf, scenario in vpcs(declared, vpc, with_vpc, frozenset({name})):
                            if created is not None or not reachable(cfn, scenario):
                                continue
                            matches.append(
                                RuleMatch(
                                    vpc_at,
                                    f"Interface endpoint {name!r} enables private DNS in a VPC this template does "
                                    f"not create ({_shown(leaf)}){scenario_text(scenario, resource)}: "
                                    "it takes the service's public name over for every workload in that VPC and "
                                    "fails if the VPC already has a private-DNS endpoint for the service",
                                )
                            )
        return unique(matches)


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)
