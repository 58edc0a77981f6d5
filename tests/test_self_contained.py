"""The repository stands alone: nothing in it reads, or points readers at, a path outside it.

A user's clone, an sdist and anyone else's CI have nothing beside the repository;
`.ci/run` also runs `make test` in a fresh clone in an empty temporary folder.
"""

from __future__ import annotations

import subprocess

from conftest import ROOT

# Spelled in parts so that this file does not match itself.
OUTSIDE = ("../" + "shared", "FIELD" + "-NOTES", "ROOT" + ".parent", "parent" + ".parent / ")


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [name for name in listed.splitlines() if (ROOT / name).is_file()]


def test_no_file_refers_outside_the_repository() -> None:
    found = []
    for name in _tracked_files():
        text = (ROOT / name).read_bytes().decode("utf-8", errors="replace")
        found += [f"{name}: {needle}" for needle in OUTSIDE if needle in text]
    assert found == []


def test_the_check_sees_every_kind_of_file() -> None:
    names = _tracked_files()
    for expected in ("Makefile", ".ci/run", "README.md", "tests/conftest.py", "winworkers/config.py"):
        assert expected in names


def test_agent_reference_data_is_in_the_repository() -> None:
    folder = ROOT / "tests" / "data" / "cloudwatch-agent"
    for name in ("schema.json", "basic_config_windows.json", "advanced_config_windows.json", "LICENSE", "README.md"):
        assert (folder / name).stat().st_size > 0, name
