"""The library ships as a typed wheel that carries the Lambda's source."""

from __future__ import annotations

import os
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
    assert {"winworkers/deploy/__init__.py", "winworkers/emulator.py", "winworkers/constraints.py"} <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    # boto3 and moto are optional: `pip install 'winworkers[deploy]'` / `'winworkers[emulator]'`.
    assert "Provides-Extra: deploy" in metadata and "Provides-Extra: emulator" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    optional = [r for r in requires if "boto3" in r or "moto" in r]
    assert optional and all("extra ==" in r for r in optional)
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
