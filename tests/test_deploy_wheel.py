"""issue 19, item 4: from an installed wheel, outside the repository, `winworkers deploy` without
--template builds the template in-process, and `deployer-policy` works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from conftest import ROOT
from winworkers.emulator import ENVIRONMENT, local_aws


@pytest.fixture(scope="module")
def installed(installed_wheel: Path) -> dict[str, str]:
    """The environment to run the installed wheel (conftest.installed_wheel) in."""
    # -S drops the venv's editable install of winworkers; its dependencies come by PYTHONPATH.
    dependencies = next(p for p in sys.path if p.endswith("site-packages"))
    return {**os.environ, **ENVIRONMENT, "PYTHONPATH": os.pathsep.join([str(installed_wheel), dependencies])}


def _winworkers(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-S", "-m", "winworkers", *argv], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_deploy_dry_run_and_deployer_policy_from_the_wheel(installed: dict[str, str], tmp_path: Path) -> None:
    code = "import winworkers; print(winworkers.__file__)"
    where = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=tmp_path, env=installed, capture_output=True, text=True
    )
    assert "wheel-install" in where.stdout and str(ROOT) not in where.stdout, where
    policy = _winworkers(installed, tmp_path, "deployer-policy")
    assert policy.returncode == 0, policy.stderr
    documents = json.loads(policy.stdout).values()
    assert "iam:PassRole" in {a for d in documents for s in d["Statement"] for a in s["Action"]}
    assert not (tmp_path / "templates").exists()
    with local_aws() as url:
        # The feature's template is over the inline limit: deployed from a bucket, as the README says.
        s3 = boto3.client(
            "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        s3.create_bucket(Bucket="ww-wheel-templates")
        run = _winworkers(
            installed, tmp_path, "deploy", "--stack-name", "ww-wheel", "--endpoint-url", url, "--dry-run",
            "--parameter", "WinMaxSize=6", "--poll-seconds", "0.05", "--template-bucket", "ww-wheel-templates",
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("change set arn:aws:cloudformation:") and lines[-1].startswith("dry run:")
