"""The library ships as a typed wheel that carries the Lambda's source."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def wheel(built_wheel: Path) -> Path:
    return built_wheel


def test_wheel_contains_the_package_the_lambda_source_and_py_typed(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"winworkers/__init__.py", "winworkers/py.typed", "winworkers/ami_refresh.py"} <= names
    # The lint subpackages ship too (setuptools only ships the packages pyproject lists).
    assert {"winworkers/lint/__init__.py", "winworkers/lint/rules/__init__.py"} <= names
    assert len([n for n in names if n.startswith("winworkers/lint/rules/") and n.endswith(".py")]) == 7
    assert {"winworkers/deploy/__init__.py", "winworkers/emulator/__init__.py", "winworkers/constraints.py"} <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    # boto3 and moto are optional: `pip install 'winworkers[deploy]'` / `'winworkers[emulator]'`.
    assert "Provides-Extra: deploy" in metadata and "Provides-Extra: emulator" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    optional = [r for r in requires if "boto3" in r or "moto" in r]
    assert optional and all("extra ==" in r for r in optional)
    # The emulator judges replacements by cfn-lint's registry schemas: without it that judgement was off.
    assert any(r.startswith("Requires-Dist: cfn-lint") and 'extra == "emulator"' in r for r in requires), requires
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "winworkers = winworkers.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


EXAMPLES = {"inline_parent.py": ["parent-inline.json"], "nested_parent.py": ["parent-nested.json", "winworkers.json"]}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_examples_build_against_the_installed_wheel(installed_wheel: Path, tmp_path: Path, example: str) -> None:
    """A platform's own parent, built against a non-editable install: the examples, run from
    a copy outside the repository with only the installed wheel (conftest) importable as winworkers."""
    site = installed_wheel
    copy = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", copy)
    out = tmp_path / "out"
    # -S drops the venv's editable install of winworkers; its dependencies come by PYTHONPATH.
    dependencies = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(copy), dependencies])}
    where = subprocess.run(
        [sys.executable, "-S", "-c", "import winworkers; print(winworkers.__file__)"],
        cwd=tmp_path, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(site)), where
    subprocess.run([sys.executable, "-S", str(copy / example), str(out)], cwd=tmp_path, env=env, check=True)
    for name in EXAMPLES[example]:
        assert (out / name).read_text(encoding="utf-8") == (ROOT / "templates" / name).read_text(encoding="utf-8")


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The package's modules a module imports, at its top or inside a function (a deferred import still
    ties the two modules: it only hides a circle from Python's import machinery)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "winworkers":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "winworkers"}
    return (found & modules) - {module}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


def test_no_module_of_the_library_imports_itself_back() -> None:
    # Issue 29, "No circle": build -> constraints -> usage -> build was one; the 50-tag check once made
    # config (the lowest floor) import compute and refresh. Deferred imports count.
    package = ROOT / "winworkers"
    paths = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in package.rglob("*.py")
    }
    graph = {m: _imports(p, m, set(paths)) for m, p in paths.items()}
    assert _circles(graph) == []
    # The check sees one: a planted deferred import back from the lowest floor.
    planted = {**graph, "winworkers.config": graph["winworkers.config"] | {"winworkers.compute"}}
    assert ["winworkers.compute", "winworkers.config"] in [
        sorted(set(c) & {"winworkers.compute", "winworkers.config"}) for c in _circles(planted)
    ]


# The house (issue 29): no library function over about 60 lines, no block of lines said twice.
PACKAGE = ROOT / "winworkers"
LONGEST = 60


def _long_functions(source: str, module: str) -> dict[str, int]:
    """Every function or method of source over LONGEST lines (decorators aside), by module:name."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > LONGEST:
                found[f"{module}:{node.name}"] = length
    return found


def test_no_library_function_is_over_sixty_lines() -> None:
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found |= _long_functions(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).as_posix())
    assert found == {}


def test_the_length_check_sees_a_long_method() -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(LONGEST - 1))
    planted = f"class A:\n    def long(self) -> None:\n{body}\n\n    def short(self) -> None:\n        pass\n"
    assert _long_functions(planted, "a.py") == {}
    assert _long_functions(planted.replace("        x0 = 0", "        x0 = 0\n        y = 1"), "a.py") == {
        "a.py:long": LONGEST + 1
    }


REPEATED = 6
# Lines that say nothing of their own: brackets alone, docstring quotes, bare keywords; every
# line of an import statement (a rule imports the helpers it uses, as its neighbour does); and
# every line of a function's signature (deploy, delete and follow take the same options by design:
# a signature states an interface, it holds no logic). handler_permissions.py is data generated
# from cfn-lint's schemas (scripts/handler_permissions.py), not code: an action the schemas list
# may also stand in a hand-kept exclusion.
GENERATED = {"handler_permissions.py"}
BOILERPLATE = re.compile(r'^([\])},:;(\[{]*|"""|else:|try:|return|pass|continue|break)$')


def _significant(source: str) -> list[tuple[int, str]]:
    """The lines that count, whitespace-normalised, with their line numbers."""
    tree = ast.parse(source)
    imports = {
        number
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for number in range(node.lineno, (node.end_lineno or node.lineno) + 1)
    } | {
        number
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for number in range(node.lineno, node.body[0].lineno)
    }
    lines = ((number, " ".join(line.split())) for number, line in enumerate(source.splitlines(), 1))
    return [(n, line) for n, line in lines if line and n not in imports and not BOILERPLATE.match(line)]


def _repeated_blocks(sources: dict[str, str]) -> list[str]:
    """Each run of REPEATED significant lines that stands in two places (of one or two files)."""
    first: dict[tuple[str, ...], str] = {}
    repeated = []
    for name, source in sources.items():
        lines = _significant(source)
        for start in range(len(lines) - REPEATED + 1):
            window = lines[start : start + REPEATED]
            block = tuple(line for _, line in window)
            where = f"{name}:{window[0][0]}-{window[-1][0]}"
            if block not in first:
                first[block] = where
            elif not _overlaps(first[block], where):
                repeated.append(f"{where} repeats {first[block]}")
    return repeated


def _overlaps(one: str, other: str) -> bool:
    """Whether two places name overlapping lines of one file (a run of the same line, repeated)."""
    (a, a_lines), (b, b_lines) = (place.rsplit(":", 1) for place in (one, other))
    a_start, a_end = map(int, a_lines.split("-"))
    b_start, b_end = map(int, b_lines.split("-"))
    return a == b and a_start <= b_end and b_start <= a_end


def test_no_block_of_six_lines_is_repeated_in_the_library() -> None:
    sources = {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in GENERATED
    }
    assert _repeated_blocks(sources) == []


def test_the_repetition_check_sees_a_copied_block_and_not_boilerplate() -> None:
    block = "\n".join(f"    total += values[{i}] * {i}" for i in range(REPEATED))
    one = f"def a(values):\n    total = 0\n{block}\n    return total\n"
    indented = block.replace("    ", "        ")
    other = f"def b(values):\n    total = 1\n    if values:\n{indented}\n    return -total\n"
    assert _repeated_blocks({"one.py": one, "other.py": other}) == ["other.py:4-9 repeats one.py:3-8"]
    # Cut by one line, or only brackets and imports alike: nothing.
    assert _repeated_blocks({"one.py": one, "other.py": other.replace("values[2]", "values[-2]")}) == []
    brackets = "from os import (\n    path,\n    sep,\n)\nimport sys\n" + "x = [\n    (\n        {}\n    )\n]\n" * 3
    assert _repeated_blocks({"one.py": brackets, "other.py": brackets}) == []
