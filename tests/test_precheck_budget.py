"""The deploy's pre-check is one pass (issue 29): read, validate once, fill, check against the account,
then one checked template to the change set. Counted, not timed: how often each check runs per deploy,
and on which values, through `winworkers deploy` on the emulator."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import BUCKET_FLAG, ROOT
from winworkers import constraints, rules, usage
from winworkers.cli import main
from winworkers.deploy import execute, inputs, preflight
from winworkers.renderings import enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")
FEATURE = ROOT / "templates" / "winworkers.json"
# Each check, and where the deploy's steps reach it. Counted wherever a module holds it (an import
# binds the function to the importer's name), so a new caller anywhere is counted too.
CHECKS: dict[str, Callable[..., Any]] = {
    "check_parameters": constraints.check_parameters,
    "check_inputs": constraints.check_inputs,
    "value_problems": constraints.value_problems,
    "missing_problems": constraints.missing_problems,
    "usage_problems": usage.usage_problems,
    "parameter_kinds": usage.parameter_kinds,
    "failed_assertions": rules.failed_assertions,
    "prefix_lists_to_fill": inputs.prefix_lists_to_fill,
    "preflight": preflight.run,
    "nested_child": execute._check_nested_child,
}


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Each check's calls (their arguments), from every winworkers module that holds it."""
    recorded: dict[str, list[tuple[Any, ...]]] = {name: [] for name in CHECKS}

    def counting(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            recorded[name].append(args)
            return function(*args, **kwargs)

        return counted

    for name, function in CHECKS.items():
        wrapper = counting(name, function)
        for module in [m for n, m in sys.modules.items() if n.startswith("winworkers") and m is not None]:
            for attribute, value in list(vars(module).items()):
                if value is function:
                    monkeypatch.setattr(module, attribute, wrapper)
    yield recorded


def _deploy(endpoint: str, stack: str, values: dict[str, str], *flags: str) -> int:
    argv = ["deploy", "--stack-name", stack, "--endpoint-url", endpoint, "--template", str(FEATURE), *BUCKET_FLAG]
    return main([*argv, *(f for k, v in values.items() for f in ("--parameter", f"{k}={v}")), *flags])


def _checked_values(recorded: list[tuple[Any, ...]]) -> list[str]:
    """The parameter names each call judged (its values argument), all calls together."""
    return [name for args in recorded for name in args[1]]


def _judged_rules(recorded: list[tuple[Any, ...]]) -> list[list[str]]:
    """The Rules each failed_assertions call judged (those of the template it was given), call by call."""
    return [list(args[0].get("Rules", {})) for args in recorded]


RULES = list(json.loads(FEATURE.read_text())["Rules"])


def test_a_new_stack_is_checked_once(aws: Any, endpoint: str, cli_env: None, calls: Any) -> None:
    given = enabled_parameters()
    assert _deploy(endpoint, "ww-budget-new", given, "--dry-run") == 0
    counts = {name: len(recorded) for name, recorded in calls.items()}
    assert counts == {
        "check_parameters": 0,
        "check_inputs": 0,
        "value_problems": 1,  # the given values, before any AWS call
        "missing_problems": 1,
        "usage_problems": 1,
        "parameter_kinds": 1,  # the template read once
        "failed_assertions": 2,  # the Rules the given values decide before any AWS call, then the rest
        "prefix_lists_to_fill": 1,
        "preflight": 1,
        "nested_child": 1,
    }, counts
    assert sorted(_checked_values(calls["value_problems"])) == sorted(given)
    # Each Rule judged once: PlatformInputs reads only values given (WinS3PrefixListId given, not to be
    # filled), so it is judged on reading them; the others read a default, judged once every value is known.
    assert _judged_rules(calls["failed_assertions"]) == [
        ["WinPlatformInputs"],
        [r for r in RULES if r != "WinPlatformInputs"],
    ]


def test_an_update_checks_each_value_once(aws: Any, endpoint: str, cli_env: None, calls: Any) -> None:
    given = enabled_parameters()
    assert _deploy(endpoint, "ww-budget-update", given, "--yes") == 0
    for recorded in calls.values():
        recorded.clear()
    # The update gives one value; the stack keeps the others (UsePreviousValue): those are judged
    # against this template's constraints once they are read, the given one before any call.
    assert _deploy(endpoint, "ww-budget-update", {"WinMaxSize": "6"}, "--dry-run") == 0
    counts = {name: len(recorded) for name, recorded in calls.items()}
    assert counts == {
        "check_parameters": 0,
        "check_inputs": 0,
        "value_problems": 2,  # the given value, then the values the stack keeps: never one twice
        "missing_problems": 1,
        "usage_problems": 2,  # the same two sets of values
        "parameter_kinds": 1,
        "failed_assertions": 1,  # no Rule reads WinMaxSize alone: every Rule once, with the kept values
        "prefix_lists_to_fill": 1,
        "preflight": 1,
        "nested_child": 1,
    }, counts
    assert _judged_rules(calls["failed_assertions"]) == [RULES]
    judged = _checked_values(calls["value_problems"])
    assert len(judged) == len(set(judged)), judged
    (stack,) = aws.cloudformation.describe_stacks(StackName="ww-budget-update")["Stacks"]
    assert set(judged) == {p["ParameterKey"] for p in stack["Parameters"]} >= set(given)
    assert sorted(_checked_values(calls["usage_problems"])) == sorted(judged)
