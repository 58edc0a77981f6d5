"""Review 3: what `winworkers deployer-policy --stack-name NAME` really allows.

docs/deploy.md ("--stack-name NAME narrows these to NAME and its nested stacks") and the module's docstring
promise the deployer's writes reach the stack's own resources. A tiny IAM evaluator (Allow statements
only: action and resource wildcards, StringEquals/StringLike on the request context) checks that
against resources of *another* stack of the same account.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from winworkers.deployer_policy import policy_document

ACCOUNT = "111122223333"


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, values in pairs.items():
            if key not in context:
                return False
            got = context[key]
            if operator == "StringEquals" and got not in _listed(values):
                return False
            if operator == "StringLike" and not any(fnmatch.fnmatchcase(got, v) for v in _listed(values)):
                return False
            if operator not in ("StringEquals", "StringLike"):
                return False
    return True


def allowed(document: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] = {}) -> bool:
    """Whether an Allow statement of document grants action on resource in context (no Deny in these)."""
    for s in document["Statement"]:
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(s["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _listed(s["Resource"])):
            continue
        if _condition_holds(s.get("Condition", {}), context):
            return True
    return False


def test_evaluator_grants_the_stacks_own_resources() -> None:
    """The evaluator's control: the stack 'ci' itself is granted its own resources."""
    d = policy_document(stack_name="ci")
    group = f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:0f0e:autoScalingGroupName/ci-WinWorkers"
    assert allowed(d, "autoscaling:DeleteAutoScalingGroup", group)
    assert allowed(
        d,
        "lambda:UpdateFunctionCode",
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:ci-WinRefreshFunction-AB12CD34EF56",
    )
    tag = {"aws:ResourceTag/aws:cloudformation:stack-name": "ci"}
    assert allowed(d, "ec2:DeleteVpc", f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-0123456789abcdef0", tag)
    assert allowed(d, "iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/ci-WinRefreshRole-AB12CD34EF56")


def test_stack_name_scope_excludes_a_sibling_stack_sharing_the_name_as_prefix() -> None:
    """The policy for stack 'ci' (not nested) reaches the separate stack 'ci-prod': every name pattern is
    '<stack>-*' and the EC2 tag condition 'ci' or 'ci-*', so 'ci-prod-WinWorkers', 'ci-prod-WinRefreshFunction-...',
    the VPC tagged 'ci-prod' and the stack ci-prod itself all match. Without --nested the names are known
    exactly ('<stack>-<logical id>-*', the group '<stack>-WinWorkers', the tag StringEquals '<stack>')."""
    d = policy_document(stack_name="ci")
    other = "ci-prod"
    group = f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:0f0e:autoScalingGroupName/{other}-WinWorkers"
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{other}-WinRefreshFunction-AB12CD34EF56"
    vpc = f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-0123456789abcdef0"
    stack = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/{other}/1c2f5f40-0000-11ee-8000-0a1b2c3d4e5f"
    reach = {
        "autoscaling:DeleteAutoScalingGroup " + group: allowed(d, "autoscaling:DeleteAutoScalingGroup", group),
        "lambda:UpdateFunctionCode " + function: allowed(d, "lambda:UpdateFunctionCode", function),
        "ec2:DeleteVpc (tagged ci-prod)": allowed(
            d, "ec2:DeleteVpc", vpc, {"aws:ResourceTag/aws:cloudformation:stack-name": other}
        ),
        "cloudformation:DeleteStack " + stack: allowed(d, "cloudformation:DeleteStack", stack),
    }
    assert not any(reach.values()), f"the policy for stack 'ci' reaches stack '{other}': {reach}"


def test_stack_name_scope_narrows_role_writes_and_passrole() -> None:
    """With --stack-name, the IAM statements still name every stack's roles ('*-WinRefreshRole-*'): the CI
    role for stack 'ci' may put an inline policy on (or attach a managed policy to) stack 'prod''s roles,
    and pass prod's instance role to EC2 (ec2:RunInstances is on '*'). The role names are generated
    '<stack>-<logical id>-<random>' (no RoleName in the template), so a short stack name is a prefix."""
    d = policy_document(stack_name="ci")
    role = f"arn:aws:iam::{ACCOUNT}:role/prod-WinRefreshRole-AB12CD34EF56"
    instance_role = f"arn:aws:iam::{ACCOUNT}:role/prod-WinInstanceRole-AB12CD34EF56"
    reach = {
        "iam:PutRolePolicy": allowed(d, "iam:PutRolePolicy", role),
        "iam:AttachRolePolicy": allowed(d, "iam:AttachRolePolicy", role),
        "iam:PassRole to ec2": allowed(d, "iam:PassRole", instance_role, {"iam:PassedToService": "ec2.amazonaws.com"}),
    }
    assert not any(reach.values()), f"the policy for stack 'ci' writes stack 'prod''s roles: {reach}"
