"""checkov, the same report for less CPU: the installed checkov console script, run with the parse
tables of bc_jsonpath_ng's JSONPath grammars built once per process instead of once per JSONPath
(tests/test_scanners.py runs it: `python tests/checkov_speed.py <checkov's arguments>`), and StrNode
unpickled without a missing-attribute exception per node (str_node_setstate).

Measured (py-spy, checkov 3.3.30, bc-jsonpath-ng 1.6.1, ply 3.11, the 15 renderings test_scanners scans):
a quarter to a third of checkov's CPU went to ``ply.yacc.yacc`` building the LALR tables of the same
grammar again for every JSONPath parsed (``bc_jsonpath_ng.parser.JsonPathParser.parse_token_stream``
passes ``write_tables=0``: "we regenerate the parse table every time"), about 1,900 of 7,100 samples,
from CloudformationVariableRenderer updating vertex attributes by JSONPath key.

PLY's own cache takes them: before it builds, ``yacc`` imports its table module (for these parsers
``bc_jsonpath_ng[.ext].parser_jsonpath_parsetab``, which the package does not ship) and uses it when the
module's signature (start symbol, precedence, tokens, every rule's docstring) is the grammar's; else it
builds as before. So here each grammar's tables are built once, by the same ``yacc`` call in this
process, written by PLY to a temporary folder and imported under that name before checkov starts.
tests/test_checkov_speed.py holds that PLY takes them (nothing is built again) and that they are,
entry for entry, the tables bc_jsonpath_ng builds on every parse; and the report was checked once
against the plain console script's (see test_scanners.checkov_report).
"""

from __future__ import annotations

import importlib.util
import logging
import runpy
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import bc_jsonpath_ng.parser
import ply.yacc
from bc_jsonpath_ng.ext.parser import ExtentedJsonPathParser
from bc_jsonpath_ng.parser import JsonPathParser
from checkov.common.parsers.node import StrNode

GRAMMARS = (JsonPathParser, ExtentedJsonPathParser)
START = "jsonpath"
# The table module's name as parse_token_stream derives it (from parser.py's file name) ...
TABLES = f"{Path(bc_jsonpath_ng.parser.__file__).stem}_{START}_parsetab"


def table_module_name(grammar: type[JsonPathParser]) -> str:
    """... and as yacc looks it up: in the package of the module that defines the grammar."""
    return f"{sys.modules[grammar.__module__].__package__}.{TABLES}"


def build_tables(grammar: type[JsonPathParser], folder: Path) -> types.ModuleType:
    """The grammar's table module: yacc's arguments as in parse_token_stream, but writing the tables
    (to folder), then that file imported (not installed in sys.modules: the caller does it)."""
    ply.yacc.yacc(
        module=grammar(),
        debug=False,
        tabmodule=TABLES,
        outputdir=str(folder),
        write_tables=True,
        start=START,
        errorlog=logging.getLogger(bc_jsonpath_ng.parser.__name__),
    )
    spec = importlib.util.spec_from_file_location(table_module_name(grammar), folder / f"{TABLES}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_modules() -> dict[str, types.ModuleType]:
    """Every grammar's table module, by the name yacc imports it as."""
    modules = {}
    for grammar in GRAMMARS:
        with tempfile.TemporaryDirectory() as folder:
            modules[table_module_name(grammar)] = build_tables(grammar, Path(folder))
    return modules


def str_node_setstate(node: StrNode, state: dict[str, Any]) -> None:
    """StrNode's state as pickle's default BUILD sets a dict state (``__dict__`` updated), without its
    ``getattr(node, "__setstate__")`` first: StrNode answers every missing attribute by raising a new
    TemplateAttributeError (its ``__getattr__``), once for each node checkov's pickle_deepcopy unpickles,
    about 7% of the run's CPU (1.2 s on the 15 files, report byte-identical; measured with checkov 3.3.30)."""
    node.__dict__.update(state)


def main(argv: list[str]) -> None:
    """checkov's console script (next to this Python, as `checkov` runs it) with argv, the tables installed
    and StrNode's __setstate__ given."""
    StrNode.__setstate__ = str_node_setstate  # type: ignore[attr-defined]
    sys.modules.update(table_modules())
    script = str(Path(sys.executable).with_name("checkov"))
    sys.argv = [script, *argv]
    sys.path[0] = str(Path(script).parent)  # as when it runs itself: not tests/ (conftest, test modules)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
