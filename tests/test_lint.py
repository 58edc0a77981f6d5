"""The cfn-lint gate, with winworkers' own rules: zero errors, warnings and informational findings, on the
committed templates and on renderings of non-default configs (the feature's
template and the examples' parents built with them)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import inline_parent
import nested_parent
from cfnlint.api import ManualArgs, lint
from hypothesis import HealthCheck, Phase, given, settings
from troposphere import Template

from conftest import ROOT, valid_configs
from winworkers import WorkersConfig, cli
from winworkers.lint import DESIGN_RULE_CONFIG, DESIGN_RULES, RULES_MODULE
from winworkers.templates import all_templates, render

LINTED: dict[tuple[str, ...], tuple[int, list[dict[str, Any]]]] = {}
"""linted's answers by its arguments and the templates' bytes, for this run: a template that several
tests lint with the same options is linted once (cfn-lint takes about 2 s of CPU per template)."""


def linted(paths: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    """`winworkers lint` with our templates' options, as (exit code, findings): the console
    script's main in process (tests/test_lint_rules.py runs the script itself)."""
    argv = [
        "lint",
        "--include-checks",
        "I",
        # Our templates are held to the opt-in design rules too (W9104).
        *DESIGN_RULES,
        "--format",
        "json",
        "--",
        *map(str, paths),
    ]
    key = (*argv, *(hashlib.sha256(path.read_bytes()).hexdigest() for path in paths))
    if key not in LINTED:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(argv)
        LINTED[key] = (code, json.loads(out.getvalue() or "[]"))
    code, findings = LINTED[key]
    return code, copy.deepcopy(findings)


def cfn_lint(paths: list[Path]) -> list[str]:
    """linted's findings as "file: id message"."""
    code, findings = linted(paths)
    assert code in (0, 2, 4, 6, 8, 10, 12, 14) or findings, code
    return [f"{f['Filename']}: {f['Rule']['Id']} {f['Message']}" for f in findings]


def test_committed_templates_lint_clean() -> None:
    assert cfn_lint(sorted((ROOT / "templates").glob("*.json"))) == []


def test_committed_templates_pass_our_rules() -> None:
    templates = sorted(str(p) for p in (ROOT / "templates").glob("*.json"))
    assert len(templates) == 3
    # tests/test_lint_rules.py's gate, here: the same run as test_committed_templates_lint_clean's, linted
    # once per run (pytest-xdist gives each module to one worker, a process of its own, with its own LINTED).
    code, findings = linted([Path(t) for t in templates])
    assert [(f["Filename"], f["Rule"]["Id"], f["Message"]) for f in findings] == []
    assert code == 0


def _with_parents(config: WorkersConfig) -> dict[str, Template]:
    """The feature's template for config, and the examples' parents built with it."""
    return {
        **all_templates(config),
        "parent-inline.json": inline_parent.inline_parent(config),
        "parent-nested.json": nested_parent.nested_parent(config)[0],
    }


def test_other_configs_lint_clean(tmp_path: Path) -> None:
    paths = []
    for n, config in enumerate(
        [
            WorkersConfig(prefix="Masslynx", max_fleet_size=1000, include_alarms=False),
            WorkersConfig(
                max_fleet_size=1, worker_log_paths=("D:\\a\\*.log", "E:\\b.txt"), metrics_interval_seconds=10
            ),
        ]
    ):
        for name, template in _with_parents(config).items():
            paths.append(tmp_path / f"{n}-{name}")
            paths[-1].write_text(render(template), encoding="utf-8")
    assert cfn_lint(paths) == []


# Each example runs cfn-lint three times (~3 s); few examples, no shrinking marathon on failure.
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=[Phase.generate])
@given(config=valid_configs())
def test_any_valid_config_lints_clean(config: WorkersConfig) -> None:
    for name, template in _with_parents(config).items():
        args = ManualArgs(
            include_checks=["I"], regions=["us-east-1"], append_rules=[RULES_MODULE], configure_rules=DESIGN_RULE_CONFIG
        )
        matches = lint(render(template), config=args)
        assert [f"{m.rule.id} {m.message}" for m in matches] == [], (name, config)
