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
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("winworkers-*.whl")
    return wheel


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
def test_examples_build_against_the_installed_wheel(wheel: Path, tmp_path: Path, example: str) -> None:
    """A platform's own parent, built against a non-editable install: the examples, run from
    a copy outside the repository with only the installed wheel importable as winworkers."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
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
