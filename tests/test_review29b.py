"""The independent review of issue 29's test-loop change (e85073e..ce7b5c0): each finding as a test that
failed on the code reviewed, each fixed since (lint_speed.cfn_lint compares child rules by identity;
custom_resources._handler_clients hands each request its own mapping; the template build keeps plain,
read-only facts of each source, not AST nodes a caller could edit)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cfnlint.rules.jsonschema.CfnLint as cfn_lint_module
import lint_speed
import pytest
from cfnlint.rules import CloudFormationLintRule

from winworkers import functions, refresh
from winworkers.emulator import custom_resources


class _Child(CloudFormationLintRule):
    """A child rule of E1101 that answers with its own tag (cfn-lint's rules compare equal by id)."""

    id = "E9999"
    shortdesc = description = "review29 child rule"

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.keywords = ["review29"]
        self.tag = tag

    def validate(self, validator: Any, keyword: Any, instance: Any, schema: Any) -> Any:
        yield SimpleNamespace(rule=self.tag, validator=None)


class _Validator:
    function_filter = SimpleNamespace(evolve=lambda **kwargs: None)

    def evolve(self, **kwargs: Any) -> _Validator:
        return self


def _shipped() -> Any:
    cls = cfn_lint_module.CfnLint
    return lint_speed._CFN_LINT_CLASSES.get(cls, vars(cls)["cfnLint"])


def test_review29_cfn_lint_stand_in_follows_a_replaced_child_rule() -> None:
    """FINDING 1: lint_speed.cfn_lint keeps its keyword index while ``kept[0] != rules`` is False, and
    CloudFormationLintRule.__eq__ compares rule ids only: when E1101's child_rules get another rule object
    with the same id (a new Rules collection wiring other instances: cfnlint.rules._rules sets
    ``rule.child_rules[key] = self.rules.get(key)`` every time), the stand-in still runs the old object,
    cfn-lint runs the new one. Fix: compare by identity, e.g. ``len(kept[0]) != len(rules) or
    any(a is not b for a, b in zip(kept[0], rules))`` (or key the index by tuple(map(id, rules)))."""
    parent = SimpleNamespace(child_rules={"E9999": _Child("old")})
    args = (_Validator(), ["review29"], {}, {})
    assert [e.rule for e in lint_speed.cfn_lint(parent, *args)] == ["old"]
    parent.child_rules["E9999"] = _Child("new")
    shipped = [e.rule for e in _shipped()(parent, *args)]
    assert shipped == ["new"]
    assert [e.rule for e in lint_speed.cfn_lint(parent, *args)] == shipped


def test_review29_handler_clients_are_not_shared_mutable_state() -> None:
    """FINDING 2 (minor): custom_resources._handler_clients hands every request, and every custom
    resource function on that emulator and Region, the same dict: a handler that rebinds or drops a
    client in it (its own business in Lambda, where each function has its own environment) changes what
    the next request and the other functions get. Fix: ``return dict(_clients[key])`` (the clients stay
    kept; the mapping is the handler's own)."""
    endpoint = "http://127.0.0.1:9"  # never called: clients are only made
    try:
        first = custom_resources._handler_clients(endpoint, "us-east-1")
        first.pop("ec2")
        second = custom_resources._handler_clients(endpoint, "us-east-1")
        assert set(second) == {"autoscaling", "cloudformation", "ec2", "ssm"}
    finally:
        custom_resources.forget_clients(endpoint)


def test_review29_statements_cache_is_not_mutated_by_its_callers(tmp_path: Path) -> None:
    """FINDING 3 (minor): functions.statements was public and returned the lru_cache's own AST nodes; a
    caller that edited them changed what every later _definition / refresh.source_constant read for the
    same text. Now the kept facts are line spans and constants' strings, in read-only mappings."""
    module = tmp_path / "m.py"
    module.write_text("X = 'a'\ndef handler(event):\n    return event\n", encoding="utf-8")
    text = module.read_text(encoding="utf-8")
    assert not hasattr(functions, "statements")
    spans = functions._spans(text)
    with pytest.raises(TypeError):
        spans["handler"] = (1, 1)  # type: ignore[index]
    assert functions._definition(module, "handler") == "def handler(event):\n    return event"
    constants = refresh._constants(text)
    with pytest.raises(TypeError):
        constants["X"] = "b"  # type: ignore[index]
    assert constants["X"] == "a"
    assert refresh.source_constant("CLAIM") == refresh._constants(refresh.function_source())["CLAIM"]
