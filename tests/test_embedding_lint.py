"""Parents that only inline or only nest the feature, and the examples' parents, lint clean with the
switch on and off in every network mode: tests/test_embedding.py's parents, in a module of its own
(most of that module's CPU is this cfn-lint, and pytest-xdist gives a worker a module at a time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_embedding import PARENTS, _values
from test_lint import cfn_lint

from conftest import as_dict
from winworkers.renderings import MODES, with_defaults


@pytest.mark.parametrize("kind", sorted(PARENTS))
def test_parents_lint_clean_with_the_switch_on_and_off_in_every_mode(kind: str, tmp_path: Path) -> None:
    paths = []
    template = as_dict(PARENTS[kind]())
    for mode in MODES:
        for switch in ("true", "false"):
            path = tmp_path / f"{kind}.{mode}.{switch}.json"
            path.write_text(json.dumps(with_defaults(template, _values(template, mode, switch))))
            paths.append(path)
    assert cfn_lint(paths) == []
