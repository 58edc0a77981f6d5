"""E9102: a nested stack's parameter values must be strings, not lists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
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

# Intrinsics that return a list, and the one pseudo parameter that is a list.
_LIST_FUNCTIONS = ("Fn::Split", "Fn::GetAZs", "Fn::Cidr")
_LIST_PSEUDO_PARAMETERS = ("AWS::NotificationARNs",)


#: A nested stack and SAM's nested application (deployed as one).
STACK_TYPES = ("AWS::CloudFormation::Stack", "AWS::Serverless::Application")


class NestedStackListParameter(CloudFormationLintRule):
    """``AWS::CloudFormation::Stack`` ``Parameters`` is a map of strings: a nested
    stack cannot be given a list, even for a ``CommaDelimitedList`` parameter of
    the child. A ``Ref`` to a ``CommaDelimitedList`` or ``List<...>`` parameter (or
    an SSM parameter of a list type), a list-returning intrinsic or a literal list
    fails the parent's deployment; ``Fn::Join [",", {"Ref": X}]`` passes the same
    values as the one string CloudFormation splits again in the child. Each
    ``Fn::If`` branch of each value is checked.

    **What it sees.** ``Parameters`` of ``AWS::CloudFormation::Stack`` and of SAM's
    ``AWS::Serverless::Application``, which SAM deploys as a nested stack with the
    same parameters (cfn-lint 1.58 lints the SAM resource as written; a cfn-lint
    that translates SAM first shows the rule the generated stack). A list is a
    literal list, a ``Ref`` to a list-typed parameter or to
    ``AWS::NotificationARNs``, or ``Fn::Split``, ``Fn::GetAZs`` or ``Fn::Cidr``.
    **It does not flag** what it cannot type without looking further:
    ``Fn::GetAtt`` (a list-valued attribute is not looked up), ``Fn::FindInMap`` (a
    mapping may hold a list), or a branch no deployment reaches.
    ``Fn::ImportValue``, ``Fn::Join``, ``Fn::Select`` and ``Fn::Sub`` return strings.
    """

    id = "E9102"
    shortdesc = "Nested stack parameter given a list"
    description = (
        "AWS::CloudFormation::Stack Parameters values must be strings; pass a list "
        'parameter as {"Fn::Join": [",", {"Ref": X}]}.'
    )
    source_url = "https://repost.aws/knowledge-center/cloudformation-parameters-nested-stacks"
    tags = ["resources", "cloudformation", "parameters", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        declared = cfn.template.get("Parameters", {})
        list_parameters = {
            str(name)
            for name, parameter in (declared.items() if isinstance(declared, Mapping) else [])
            if isinstance(parameter, Mapping) and _is_list_type(parameter.get("Type"))
        }
        matches: list[RuleMatch] = []
        for name, resource in resources(cfn, *STACK_TYPES):
            at: Path = ["Resources", name, "Properties", "Parameters"]
            for parameters, where, assumed in branches(
                properties(resource).get("Parameters"), at, created_when(resource)
            ):
                if not isinstance(parameters, Mapping):
                    continue
                for key, value in parameters.items():
                    for passed, passed_at, scenario in branches(value, [*where, key], assumed):
                        why = _list_value(passed, list_parameters)
                        if why and reachable(cfn, scenario):
                            matches.append(
                                RuleMatch(
                                    passed_at,
                                    f"{_kind(resource)} {name!r} parameter {key!r} is given {why}"
                                    f"{scenario_text(scenario, resource)}; nested stack parameters must be "
                                    'strings: pass {"Fn::Join": [",", <the list>]}',
                                )
                            )
        return unique(matches)


def _kind(resource: Mapping[str, Any]) -> str:
    return "Nested application" if resource.get("Type") == "AWS::Serverless::Application" else "Nested stack"


def _is_list_type(kind: Any) -> bool:
    """``CommaDelimitedList``, ``List<...>`` and the SSM parameter types holding either."""
    return isinstance(kind, str) and ("CommaDelimitedList" in kind or "List<" in kind)


def _list_value(value: Any, list_parameters: set[str]) -> str | None:
    """Why ``value`` is a list, or None when it is not (as far as the template shows)."""
    if isinstance(value, list):
        return "a literal list"
    call = function(value)
    if call is None:
        return None
    name, argument = call
    if name == "Ref" and (argument in list_parameters or argument in _LIST_PSEUDO_PARAMETERS):
        return f"the list parameter {argument!r}"
    if name in _LIST_FUNCTIONS:
        return f"a list ({name})"
    return None
