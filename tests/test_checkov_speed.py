"""tests/checkov_speed.py (which runs checkov for tests/test_scanners.py) gives bc_jsonpath_ng the
parse tables it would build itself: PLY takes them (builds nothing again), they are the tables the
grammar's own yacc call builds, entry for entry, and the JSONPaths checkov writes parse the same."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import checkov_speed
import ply.yacc
import pytest
from checkov.common.graph.graph_builder.graph_components.blocks import Block

# Attribute keys of the shapes checkov's CloudFormation renderer updates by JSONPath (breadcrumbs of
# the feature's renderings: indexes, Fn:: keys, nested Fn::If), and an evaluated key's search form.
KEYS = [
    "Policies.0.PolicyDocument.Statement.2.Resource.0.Fn::Sub.1.Bucket",
    "LaunchTemplateData.UserData.Fn::If.1.Fn::If.2.Fn::Base64",
    "Environment.Variables",
    "Tags.0.Value",
]
PATHS = [*(Block._get_jsonpath_key(k) for k in KEYS), "$..Properties.Cors.AllowMethods", "$.a[*].b"]


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The LR parser of every yacc call, as built or loaded."""
    parsers: list[Any] = []
    fresh = ply.yacc.yacc

    def recording(*args: Any, **kwargs: Any) -> Any:
        parsers.append(fresh(*args, **kwargs))
        return parsers[-1]

    monkeypatch.setattr(ply.yacc, "yacc", recording)
    yield parsers


def _install(monkeypatch: pytest.MonkeyPatch) -> dict[str, types.ModuleType]:
    modules = checkov_speed.table_modules()
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules


def _parse_all(grammar: type[Any]) -> list[tuple[Any, str]]:
    return [(tree, repr(tree)) for tree in (grammar().parse(p) for p in PATHS)]


def _tables(parser: Any) -> tuple[Any, ...]:
    """A parser's tables: the action and goto tables (goto without the states that have no goto,
    which a built table lists as {} and PLY's table file leaves out: the parser reads goto[state][rule]
    only for entries the table has),
    and each rule with the grammar method it calls."""
    goto = {state: targets for state, targets in parser.goto.items() if targets}
    productions = [(str(p), p.name, p.len, p.func, getattr(p.callable, "__func__", None)) for p in parser.productions]
    return parser.action, goto, productions


@pytest.mark.parametrize("grammar", checkov_speed.GRAMMARS, ids=lambda g: g.__module__)
def test_ply_loads_the_tables_and_they_are_the_grammars(
    grammar: type[Any], built: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not any(name in sys.modules for name in map(checkov_speed.table_module_name, checkov_speed.GRAMMARS))
    as_shipped = _parse_all(grammar)
    fresh = built[-1]
    assert len(built) == len(PATHS), "bc_jsonpath_ng builds the tables for every parse"

    modules = _install(monkeypatch)
    assert set(modules) == {f"{checkov_speed.table_module_name(g)}" for g in checkov_speed.GRAMMARS}

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("yacc built the tables again: it did not take the installed ones")

    monkeypatch.setattr(ply.yacc, "LRGeneratedTable", never)
    assert _parse_all(grammar) == as_shipped
    assert _tables(built[-1]) == _tables(fresh)
    assert built[-1].action is modules[checkov_speed.table_module_name(grammar)]._lr_action


def test_the_table_module_is_where_yacc_looks() -> None:
    # bc_jsonpath_ng.ext's grammar is the one checkov's CloudFormation graph parses with.
    assert checkov_speed.table_module_name(checkov_speed.GRAMMARS[1]) == "bc_jsonpath_ng.ext.parser_jsonpath_parsetab"
    assert checkov_speed.table_module_name(checkov_speed.GRAMMARS[0]) == "bc_jsonpath_ng.parser_jsonpath_parsetab"


def test_a_str_node_unpickles_as_without_the_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """pickle_deepcopy (checkov's copy of every attribute it reads) gives the same StrNode with
    str_node_setstate as pickle's own BUILD does: the text, the class, and every attribute; and
    StrNode's __getattr__ is no longer asked for __setstate__."""
    import pickle

    from checkov.common.parsers.node import StrNode
    from checkov.common.util.data_structures_utils import pickle_deepcopy
    from yaml.error import Mark

    node = StrNode("WinGroup", Mark("t.json", 1, 2, 3, None, None), Mark("t.json", 4, 5, 6, None, None))
    value = {"Ref": node, "List": [node, StrNode("x", None, None)]}

    def shape(copied: Any) -> Any:
        if isinstance(copied, dict):
            return {k: shape(v) for k, v in copied.items()}
        if isinstance(copied, list):
            return [shape(v) for v in copied]
        return type(copied), str(copied), {k: vars(v) if hasattr(v, "__dict__") else v for k, v in vars(copied).items()}

    plain = pickle_deepcopy(value)
    asked: list[str] = []
    fresh_getattr = StrNode.__getattr__

    def counting(self: Any, name: str) -> Any:
        asked.append(name)
        return fresh_getattr(self, name)

    monkeypatch.setattr(StrNode, "__getattr__", counting)
    monkeypatch.setattr(StrNode, "__setstate__", checkov_speed.str_node_setstate, raising=False)
    with_stand_in = pickle_deepcopy(value)
    assert shape(with_stand_in) == shape(plain)
    assert with_stand_in["Ref"].start_mark.line == 2 and with_stand_in["Ref"].end_mark.column == 6
    assert "__setstate__" not in asked
    assert pickle.loads(pickle.dumps(node)).end_mark.index == 4
