"""Installable as the README says: the wheel `make wheel` builds has the name the README
installs, the README's extras are the package's, and the installed wheel, run outside the
repository, builds and lints the feature's template."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import winworkers
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _install_section() -> str:
    return README.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_installs_the_wheel_make_wheel_builds() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "wheel: $(STAMP)\n\t$(BIN)/python -m pip wheel --no-deps --no-build-isolation -w dist .\n" in makefile
    name = f"winworkers-{winworkers.__version__}-py3-none-any.whl"
    section = _install_section()
    assert f"pip install './dist/{name}[deploy,lint]'" in section
    # A VCS install, its host a placeholder the reader must replace.
    assert re.search(r"pip install 'winworkers\[deploy,lint\] @ git\+https://GIT-HOST/ORG/winworkers\.git'", section)
    assert "GIT-HOST/ORG is a placeholder" in section


def test_the_readme_lists_every_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    listed = re.findall(r"^\| `(\w+)` \|", _install_section(), re.M)
    assert sorted(listed) == sorted(extras)


@pytest.fixture(scope="module")
def installed(built_wheel: Path, installed_wheel: Path) -> Path:
    """The wheel (conftest.built_wheel), installed into a folder of its own (conftest.installed_wheel)."""
    assert built_wheel.name == f"winworkers-{winworkers.__version__}-py3-none-any.whl"
    return installed_wheel


def test_the_installed_wheel_builds_and_lints_outside_the_repository(installed: Path, tmp_path: Path) -> None:
    dependencies = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), dependencies])}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # -S: not the venv's editable install of winworkers; cwd: nothing of the repository.
        command = [sys.executable, "-S", "-m", "winworkers", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)

    where = subprocess.run(
        [sys.executable, "-S", "-c", "import winworkers; print(winworkers.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed)), where
    assert cli("--version").stdout == f"winworkers {winworkers.__version__}\n"
    run = cli("build", "--out", "out")
    assert run.returncode == 0, run.stderr
    built = (tmp_path / "out" / "winworkers.json").read_text(encoding="utf-8")
    assert built == (ROOT / "templates" / "winworkers.json").read_text(encoding="utf-8")
    run = cli("lint", "--", "out/winworkers.json")
    assert (run.returncode, run.stdout) == (0, ""), run.stdout + run.stderr
