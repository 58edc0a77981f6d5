"""Parents that only inline or only nest the feature, and the examples' parents, lint clean as deployed
with the switch on and off in every network mode (test_lint.lint_deployed): tests/test_embedding.py's parents, in a
module of its own (most of that module's CPU is this cfn-lint, and pytest-xdist gives a worker a module
at a time)."""

from __future__ import annotations

import pytest
from test_embedding import PARENTS, _values
from test_lint import lint_deployed

from conftest import as_dict
from winworkers.renderings import MODES


@pytest.mark.parametrize("kind", sorted(PARENTS))
def test_parents_lint_clean_with_the_switch_on_and_off_in_every_mode(kind: str) -> None:
    template = as_dict(PARENTS[kind]())
    deployments = [_values(template, mode, switch) for mode in MODES for switch in ("true", "false")]
    assert lint_deployed(template, deployments) == []
