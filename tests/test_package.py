"""The library ships as a typed wheel that carries the Lambda's source."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT


def test_wheel_contains_the_package_the_lambda_source_and_py_typed(tmp_path: Path) -> None:
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
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"winworkers/__init__.py", "winworkers/py.typed", "winworkers/ami_refresh.py"} <= names
    # The lint subpackages ship too (setuptools only ships the packages pyproject lists).
    assert {"winworkers/lint/__init__.py", "winworkers/lint/rules/__init__.py"} <= names
    assert len([n for n in names if n.startswith("winworkers/lint/rules/") and n.endswith(".py")]) == 7
    assert {"winworkers/deploy.py", "winworkers/emulator.py", "winworkers/constraints.py"} <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    # boto3 and moto are optional: `pip install 'winworkers[deploy]'` / `'winworkers[emulator]'`.
    assert "Provides-Extra: deploy" in metadata and "Provides-Extra: emulator" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    optional = [r for r in requires if "boto3" in r or "moto" in r]
    assert optional and all("extra ==" in r for r in optional)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "winworkers = winworkers.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
