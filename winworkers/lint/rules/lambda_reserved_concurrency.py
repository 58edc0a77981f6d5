"""W9103: a Lambda function reserving concurrency fails in accounts with a low quota."""

from __future__ import annotations

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Path,
    branches,
    created_when,
    is_no_value,
    properties,
    reachable,
    resources,
    scenario_text,
    unique,
)

#: The function and SAM's form of it (the SAM transform copies the property over).
FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


class LambdaReservedConcurrency(CloudFormationLintRule):
    """Lambda refuses ``ReservedConcurrentExecutions`` that would leave the account
    less than its minimum unreserved concurrency (100 at the default quota of
    1,000). New accounts start with a much lower concurrency quota (10 is common),
    so there *any* reservation fails and the stack rolls back; moto and cfn-lint
    accept it. A warning, not an error: the template cannot know the account's
    quota, and in an account at the default quota a small reservation deploys. A
    template meant for every account should not reserve; cap a function's
    parallelism with its event source (EventBridge, SQS ``MaximumConcurrency``)
    instead. A reservation of 0 (throttle everything) reserves nothing and passes.

    **What it sees.** ``ReservedConcurrentExecutions`` of ``AWS::Lambda::Function``
    and of SAM's ``AWS::Serverless::Function`` (SAM passes it on to the function it
    generates), on every ``Fn::If`` branch. cfn-lint 1.58 does not run the SAM
    translator: it merges the SAM ``Globals`` into each resource and lints the SAM
    resources as written, so a reservation in ``Globals.Function`` is reported on
    every function that inherits it (a cfn-lint that translates SAM first shows the
    rule the generated ``AWS::Lambda::Function``, which is checked the same way).
    **It does not flag** provisioned concurrency, a reservation of 0, or a value
    that is ``AWS::NoValue``.
    """

    id = "W9103"
    shortdesc = "Lambda function reserves concurrency"
    description = (
        "ReservedConcurrentExecutions is refused in accounts whose concurrency quota leaves less than "
        "the minimum unreserved concurrency (new accounts, quota 10, refuse any reservation)."
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html"
    tags = ["resources", "lambda", "quotas", "winworkers"]

    def match(self, cfn: Template) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        for name, resource in resources(cfn, *FUNCTION_TYPES):
            props = properties(resource)
            if "ReservedConcurrentExecutions" not in props:
                continue
            at: Path = ["Resources", name, "Properties", "ReservedConcurrentExecutions"]
            for value, where, scenario in branches(props["ReservedConcurrentExecutions"], at, created_when(resource)):
                if is_no_value(value) or value in (0, "0") or not reachable(cfn, scenario):
                    continue
                matches.append(
                    RuleMatch(
                        where,
                        f"Function {name!r} reserves concurrency ({value}){scenario_text(scenario, resource)}: "
                        "accounts with a low concurrency quota (new accounts: 10) refuse any reservation",
                    )
                )
        return unique(matches)
