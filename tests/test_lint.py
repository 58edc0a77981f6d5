"""The cfn-lint gate: zero errors, warnings and informational findings, on the
committed templates and on renderings of non-default configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from winworkers import WorkersConfig
from winworkers.templates import write_templates


def cfn_lint(paths: list[Path]) -> list[str]:
    run = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--include-checks", "I", "--format", "json", "--",
         *map(str, paths)],
        capture_output=True, text=True,
    )  # fmt: skip
    findings = json.loads(run.stdout or "[]")
    assert run.returncode in (0, 2, 4, 6, 8, 10, 12, 14) or findings, run.stderr
    return [f"{f['Filename']}: {f['Rule']['Id']} {f['Message']}" for f in findings]


def test_committed_templates_lint_clean() -> None:
    assert cfn_lint(sorted((ROOT / "templates").glob("*.json"))) == []


def test_other_configs_lint_clean(tmp_path: Path) -> None:
    paths = []
    for n, config in enumerate([
        WorkersConfig(prefix="Masslynx", max_fleet_size=50, include_alarms=False),
        WorkersConfig(max_fleet_size=1, worker_log_paths=("D:\\a\\*.log", "E:\\b.txt"), metrics_interval_seconds=10),
    ]):  # fmt: skip
        paths += write_templates(tmp_path / str(n), config)
    assert cfn_lint(paths) == []
