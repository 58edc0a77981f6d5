"""E9101: a gateway VPC endpoint's policy must not name a principal."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Assumed,
    Branch,
    Path,
    branches,
    created_when,
    elements,
    is_no_value,
    properties,
    reachable,
    resources,
    scenario_text,
    unique,
)


class GatewayEndpointPrincipal(CloudFormationLintRule):
    """A gateway endpoint (S3, DynamoDB) does not match callers against a named
    principal the way an interface endpoint does: a statement whose ``Principal``
    names an account, role or user matches at most the account's root user, so it
    silently allows nothing and the workers get AccessDenied on real AWS (moto does
    not evaluate endpoint policies at all). AWS's documented form is
    ``"Principal": "*"`` with a ``Condition`` on ``aws:PrincipalArn``.

    **What it sees.** ``AWS::EC2::VPCEndpoint`` resources whose
    ``VpcEndpointType`` is ``Gateway`` (the default) on some branch: every ``Fn::If``
    branch of the type, the policy, its statements and their principals is checked;
    a ``PolicyDocument`` given as a JSON string is parsed. A statement without a
    ``Principal`` (or with ``NotPrincipal``) is reported too. **It does not flag**
    interface endpoints (they do match named principals), a policy the template does
    not spell out (a parameter, an import, a string that is not JSON), or what a
    statement's ``Condition`` allows.
    """

    id = "E9101"
    shortdesc = "Gateway VPC endpoint policy names a principal"
    description = (
        'Gateway endpoint policies only honour Principal "*" (or {"AWS": "*"}); '
        "restrict callers with a Condition on aws:PrincipalArn instead."
    )
    source_url = (
        "https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html#vpc-endpoint-policies-gateway"
    )
    tags = ["resources", "ec2", "vpc", "iam", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        for name, resource in resources(cfn, "AWS::EC2::VPCEndpoint"):
            props = properties(resource)
            at: Path = ["Resources", name, "Properties"]
            for kind, _, assumed in branches(props.get("VpcEndpointType", "Gateway"), at, created_when(resource)):
                if kind != "Gateway" and not is_no_value(kind):
                    continue
                for statement, where, conditions in _statements(props.get("PolicyDocument"), at, assumed):
                    for principal, principal_at, scenario in _principals(statement, where, conditions):
                        if _anyone(principal) or not reachable(cfn, scenario):
                            continue
                        shown = "no Principal" if principal is None else json.dumps(principal, default=str)
                        matches.append(
                            RuleMatch(
                                principal_at,
                                f"Gateway endpoint {name!r}: statement names {shown}"
                                f"{scenario_text(scenario, resource)}; a gateway endpoint only honours "
                                'Principal "*": restrict callers with a Condition on aws:PrincipalArn',
                            )
                        )
        return unique(matches)


def _statements(document: Any, at: Path, assumed: Assumed) -> Iterator[tuple[Mapping[str, Any], Path, Assumed]]:
    for policy, where, conditions in branches(document, [*at, "PolicyDocument"], assumed):
        if isinstance(policy, str):
            try:
                policy = json.loads(policy)
            except ValueError:
                continue
        if isinstance(policy, Mapping) and "Statement" in policy:
            for statement, statement_at, scenario in elements(policy["Statement"], [*where, "Statement"], conditions):
                if isinstance(statement, Mapping):
                    yield statement, statement_at, scenario


def _principals(statement: Mapping[str, Any], at: Path, assumed: Assumed) -> Iterator[Branch]:
    """Each principal the statement can have; ``None`` when it has none (a NotPrincipal is not one)."""
    if "Principal" not in statement:
        yield None, [*at, "NotPrincipal"] if "NotPrincipal" in statement else at, assumed
        return
    yield from branches(statement["Principal"], [*at, "Principal"], assumed)


def _anyone(principal: Any) -> bool:
    """``"*"``, ``{"AWS": "*"}`` or ``{"AWS": ["*"]}``: the principals a gateway endpoint honours."""
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and set(principal) == {"AWS"} and principal["AWS"] in ("*", ["*"])
