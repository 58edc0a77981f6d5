"""Security gates run by tools nobody here wrote: checkov over enabled renderings
of every template and network mode, and parliament over every IAM policy."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, render
from winworkers.renderings import MODES, enabled_parameters, with_defaults

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
    from parliament import analyze_policy_string, enhance_finding
    from parliament.statement import get_privilege_info

# Everything optional switched on, so every resource is scanned.
OPTIONS = {
    "SubscribeToAmiReleases": "true",
    # The warm pool, and the UserData that runs at every boot (the cold one is a subset of it).
    "WarmPool": "stopped",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:operators",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab",
    # The platform's own keys: their policies are scanned too.
    "QueueKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ac",
    "DataKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ad",
    "ArtifactKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ae",
}


SPOT = {"InstanceTypes": "c6i.large,m6a.large,r7i.large", "OnDemandPercentage": "30"}


def _committed() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "templates").glob("*.json"))}


def _renderings(template: dict[str, Any], mode: str) -> dict[str, str]:
    return {k: v for k, v in enabled_parameters(mode=mode, **OPTIONS).items() if k in template["Parameters"]}


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # checkov evaluates Conditions with the parameters' defaults, and the switch
    # defaults to off: scan copies whose defaults turn everything on (measured with checkov 3.3.30).
    folder = tmp_path_factory.mktemp("checkov")
    for name, template in _committed().items():
        for mode in MODES:
            (folder / f"{name}.{mode}.json").write_text(
                json.dumps(with_defaults(template, _renderings(template, mode)))
            )
        # spot: the Spot mode's group (a MixedInstancesPolicy instead of the LaunchTemplate).
        spot = {k: v for k, v in enabled_parameters(**OPTIONS, **SPOT).items() if k in template["Parameters"]}
        (folder / f"{name}.spot.json").write_text(json.dumps(with_defaults(template, spot)))
    # checkov's console script, run by tests/checkov_speed.py with bc_jsonpath_ng's JSONPath parse tables
    # built once instead of once per JSONPath (the same tables: tests/test_checkov_speed.py). Measured with
    # checkov 3.3.30 on this run's 15 files, user+sys of the subprocess, three paired runs on 2 busy cores:
    # 31.8-38.3 s -> 21.3-25.1 s (the tables were ~1,900 of 7,100 py-spy samples).
    # Its report was checked once (by hand, not every run: that would cost the CPU saved) against the
    # plain script's on the same files: byte-identical JSON with PYTHONHASHSEED=0 and
    # CHECKOV_PARALLELIZATION_TYPE=none (1148 passed, 0 failed, 130 skipped, 1010 resources, 0 parsing
    # errors); with neither pinned, as here, the same checks and results per resource and file (only the
    # order of files and evaluated_keys, breadcrumbs and graph checks' entity dumps differ, as between two
    # plain runs).
    run = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("checkov_speed.py")),
            "--framework",
            "cloudformation",
            "--directory",
            str(folder),
            "--skip-download",
            "--output",
            "json",
            # Each check without the template lines it read (code_block, which nothing here reads):
            # a third of checkov's CPU went to printing them (measured with checkov 3.3.30).
            "--compact",
        ],
        capture_output=True,
        text=True,
    )
    assert run.stdout.strip(), run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert not isinstance(report, list), "expected one cloudformation report"
    return report  # type: ignore[no-any-return]


def test_checkov_finds_nothing(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        (c["check_id"], c["resource"], Path(c["file_path"]).name) for c in checkov_report["results"]["failed_checks"]
    ]
    skipped = checkov_report["results"]["skipped_checks"]
    print(
        f"\ncheckov: {summary['passed']} passed, {summary['failed']} failed, {len(skipped)} skipped "
        f"({sorted({(c['check_id'], c['resource']) for c in skipped})})"
    )
    assert summary["parsing_errors"] == 0
    assert failed == []
    # It really scanned the feature: the fleet, the network and the Lambda in every rendering.
    scanned = {c["resource"] for c in checkov_report["results"]["passed_checks"]}
    assert {
        "AWS::EC2::LaunchTemplate.WinLaunchTemplate",
        "AWS::EC2::SecurityGroup.WinWorkerSecurityGroup",
        "AWS::Lambda::Function.WinRefreshFunction",
        "AWS::Logs::LogGroup.WinWorkerLogs",
    } <= scanned
    assert summary["passed"] > 100
    spot = {Path(c["file_path"]).name for c in checkov_report["results"]["passed_checks"]}
    assert "winworkers.spot.json" in spot, "the Spot rendering was scanned"


def test_every_checkov_skip_has_a_reason(checkov_report: dict[str, Any]) -> None:
    for check in checkov_report["results"]["skipped_checks"]:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]


# Real-shaped ARNs for the resources cloud-radar renders as "Name.Arn".
ARNS = {
    "AWS::Logs::LogGroup": "arn:aws:logs:us-east-1:123456789012:log-group:{}:*",
    "AWS::SQS::Queue": "arn:aws:sqs:us-east-1:123456789012:{}",
    "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{}",
}


def _policies(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, kind, document) for every IAM and endpoint policy, rendered enabled."""
    found = []
    for mode in MODES:
        rendered = render(template, _renderings(template, mode))
        text = json.dumps(rendered["Resources"])
        for name, resource in rendered["Resources"].items():
            if resource["Type"] in ARNS:
                text = text.replace(f'"{name}.Arn"', json.dumps(ARNS[resource["Type"]].format(name)))
        resources = json.loads(text)
        for name, resource in resources.items():
            # An Fn::If with AWS::NoValue renders as "" in a list; CloudFormation removes it.
            for policy in (p for p in resource["Properties"].get("Policies", []) if p != ""):
                found.append((name, "identity", policy["PolicyDocument"]))
            if "PolicyDocument" in resource["Properties"]:
                found.append((name, "resource", resource["Properties"]["PolicyDocument"]))
    return found


@pytest.fixture(scope="module")
def policies() -> list[tuple[str, str, dict[str, Any]]]:
    # The feature's template holds every policy the library writes; the inline
    # parent (parent-inline.json) repeats them with its own ARNs wired in, which
    # cloud-radar renders as "Name.Arn" placeholders that no ARN parser accepts.
    return _policies(_committed()["winworkers"])


SERIOUS = ("MEDIUM", "HIGH", "CRITICAL")


def parliament_findings(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(issue, severity) of every finding; severity comes from parliament's own config."""
    analysis = analyze_policy_string(
        json.dumps(document), include_community_auditors=False, ignore_private_auditors=True
    )
    return [(f.issue, f.severity) for f in map(enhance_finding, analysis.findings)]


def test_parliament_gate_can_fail() -> None:
    mismatch = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:sqs:us-east-1:123456789012:q"]}
        ],
    }
    assert ("RESOURCE_MISMATCH", "MEDIUM") in parliament_findings(mismatch)


def test_parliament_finds_nothing_medium_or_worse(policies: list[tuple[str, str, dict[str, Any]]]) -> None:
    assert len({name for name, _, _ in policies}) >= 8
    findings = [
        (name, issue, severity) for name, _, document in policies for issue, severity in parliament_findings(document)
    ]
    print(f"\nparliament: {len(policies)} policies, findings {sorted(set(findings))}")
    assert [f for f in findings if f[2] in SERIOUS] == []


def test_no_star_action_and_star_resource_only_where_aws_allows_nothing_else(
    policies: list[tuple[str, str, dict[str, Any]]],
) -> None:
    for name, _, document in policies:
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a], name
            if "*" in statement["Resource"]:
                for action in actions:
                    service, verb = action.split(":")
                    types = [r["resource_type"] for r in get_privilege_info(service, verb)["resource_types"]]
                    assert types == [""], f"{name}: {action} supports resource ARNs {types}, so not '*'"
