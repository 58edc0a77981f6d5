"""REVIEW 29 FINDINGS (reviewer's branch review29): each test fails on the code under review (e85073e..ce7b5c0)
and names the behaviour it expects. Not part of the suite to merge as is: the fixes are the lead's call."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cfnlint.rules.jsonschema.CfnLint as cfn_lint_module
import lint_speed
from cfnlint.rules import CloudFormationLintRule

from winworkers import functions
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
    """FINDING 3 (minor): functions.statements is public and returns the lru_cache's own AST nodes; a
    caller that edits them (ast.NodeTransformer, ast.increment_lineno, renaming) changes what every later
    _definition / refresh.source_constant reads for the same text, in the whole process. Fix: make it
    private (_statements) and cache plain facts, e.g. ``((type, name, lineno, end_lineno), ...)``, or
    return copies; at least not AST nodes a caller may take as its own."""
    module = tmp_path / "m.py"
    module.write_text("def handler(event):\n    return event\n", encoding="utf-8")
    text = module.read_text(encoding="utf-8")
    (node,) = functions.statements(text)
    assert isinstance(node, ast.FunctionDef)
    ast.increment_lineno(node, 1)  # a caller's own edit of the tree it was given
    assert functions._definition(module, "handler") == text.rstrip("\n")
