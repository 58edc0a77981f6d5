"""Review of issue 29's refactor (tables, one-pass pre-check, house), against 8b4241f (the last commit
before it). Each test here fails on the code as merged: it pins behaviour the refactor changed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import ROOT, TEMPLATE_BUCKET
from winworkers.cli import main
from winworkers.constraints import check_inputs
from winworkers.deploy import Clients, DeployError, deploy
from winworkers.deploy import commands as deploy_commands
from winworkers.renderings import enabled_parameters

FEATURE = ROOT / "templates" / "winworkers.json"
NESTED_PARENT = ROOT / "templates" / "parent-nested.json"
REGION = "us-east-1"
# WinCapacityMode reads these four parameters and no other: given all four, the Rule judges the same
# whatever the stack holds (the RuleCondition holds, the first assertion fails).
WARM_WITH_SPOT = enabled_parameters(WarmPool="stopped", OnDemandPercentage="30", InstanceTypes="")
RULES_REFUSE = "the template's Rules refuse these values: WinCapacityMode: WinWarmPool=stopped cannot be used with Spot"


class NoAws:
    """A client that fails the test if anything is called on it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"AWS was called: {name}")


def _no_aws() -> Clients:
    return Clients(NoAws(), NoAws(), NoAws(), REGION, NoAws())


def test_a_rule_decided_by_the_given_values_is_judged_before_any_aws_call() -> None:
    # Before issue 29 (inputs.check_given): "A Rule whose every parameter is given judges the same whatever
    # the stack holds: judge it now", before DescribeStacks. docs/deploy.md still says so ("The template's
    # Rules too, when every parameter a Rule reads is given; the others once the stack's values are read").
    # Since the one-pass pre-check (inputs.read_given) the Rules run only in inputs.validate, after
    # DescribeStacks and after _refuse_or_wait_for_refresh: with --wait-for-refresh a deploy waits out an
    # instance refresh (hours) before it refuses a value it could have refused at once.
    rule = json.loads(FEATURE.read_text())["Rules"]["WinCapacityMode"]
    read = {n for n in json.dumps(rule).split('"Ref": "')[1:] for n in [n.split('"')[0]]}
    assert read <= set(WARM_WITH_SPOT), read
    with pytest.raises(DeployError) as refused:
        deploy(_no_aws(), "ww-review29", FEATURE, WARM_WITH_SPOT, template_bucket=TEMPLATE_BUCKET)
    assert str(refused.value).startswith(RULES_REFUSE)


def test_the_cli_refuses_the_given_values_rules_without_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # deploy/commands.run_deploy: "Everything the operator typed is checked before connecting: a bad value
    # needs no credentials." At 8b4241f this printed the Rules' line with no AWS reachable; now it is
    # whatever the first AWS call says (with a real endpoint down: 'Could not connect to the endpoint URL').
    monkeypatch.setattr(deploy_commands, "_connect", lambda args: _no_aws())
    flags = [f for k, v in WARM_WITH_SPOT.items() for f in ("--parameter", f"{k}={v}")]
    argv = ["deploy", "--stack-name", "ww-review29", "--template", str(FEATURE), "--template-bucket", TEMPLATE_BUCKET]
    assert main([*argv, *flags]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"winworkers deploy: {RULES_REFUSE}"), err
    assert out == ""


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("WinMaxSize", "3.5", "WinMaxSize='3.5' is not allowed: a whole number such as 4"),
        ("WinRefreshSchedule", "rate(1 fortnight)", "WinRefreshSchedule='rate(1 fortnight)' is not allowed: rate("),
    ],
)
def test_check_inputs_still_judges_what_a_nested_child_needs(name: str, value: str, problem: str) -> None:
    # docs/deploy.md: "The same checks are a library call, winworkers.constraints.check_inputs(template,
    # values, filled=...)". At 8b4241f check_inputs on a nested parent judged each value by what the
    # child's resources need (usage.parameter_kinds rebuilt the child from its Metadata); now it does so
    # only when the caller passes children= (default None), so the library call passes a value that
    # `winworkers deploy` of the same parent refuses (deploy builds the children: inputs.built_children).
    parent = json.loads(NESTED_PARENT.read_text())
    values = {"WinTemplateUrl": "https://ww-templates.s3.us-east-1.amazonaws.com/winworkers.json", name: value}
    with pytest.raises(DeployError) as refused:
        deploy(_no_aws(), "ww-review29", NESTED_PARENT, values, template_bucket=TEMPLATE_BUCKET)
    assert str(refused.value).startswith(problem)  # what deploy says: holds today
    assert [p for p in check_inputs(parent, values) if p.startswith(problem)], check_inputs(parent, values)
