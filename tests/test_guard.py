"""The AWS Guard Rules Registry's rules (tests/guard-rules/, vendored at the commit its manifest names),
run by cfn-guard's own Rust core (cfn-guard-rs, which embeds cfn-guard 3.0.1) over every committed
template as written and over the feature rendered in ImageSource=baked in every network mode.

Which forms, and why: the committed templates as written are what a platform's pipeline hands to
`cfn-guard validate`; Guard evaluates no Condition and no intrinsic, so it also sees the feature
rendered (tests/conftest.py render: Conditions evaluated, resources they remove gone, parameters
substituted), with every option on, as CloudFormation would create it in each mode.

How: each rule file holds one rule whose every selector is ``Resources.*[ Type == ... ]`` (held below),
so a rule passes on a template exactly when it passes on each of its resources alone; each rule runs on
one resource at a time. The engine returns only the last 8 KiB of a longer report (measured on 0.3.3: a
report of 9.8 KB comes back as its last 1.6 KB), and a passing or skipped single-resource report is
under 200 bytes, so an unreadable report is a failure, never a pass. A finding is suppressed only by the
SUPPRESSED table, applied as the registry's own ``Metadata.guard.SuppressedRules`` (every vendored rule
honours it, held below)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import pytest
from cfn_guard_rs.cfn_guard_rs import run_checks_rs

from conftest import ROOT, render
from winworkers.parameters import LOG_RETENTION_DAYS
from winworkers.renderings import MODES, enabled_parameters

RULES = ROOT / "tests" / "guard-rules"
MANIFEST = json.loads((RULES / "manifest.json").read_text())
# Read once per module: the engine has no compiled form, it parses a rule's text at each call.
TEXTS = {str(p.relative_to(RULES)): p.read_text() for p in sorted(RULES.rglob("*.guard"))}
NAMES = {path: re.findall(r"^rule\s+(\w+)", text, re.MULTILINE) for path, text in TEXTS.items()}
RUN = {path: text for path, text in TEXTS.items() if path not in MANIFEST["not_run"]}
TYPES = {path: set(re.findall(r"Type == '([\w:]+)'", text)) for path, text in TEXTS.items()}

# Everything optional on, as tests/test_scanners.py scans: every resource is judged.
OPTIONS = {
    "SubscribeToAmiReleases": "true",
    "WarmPool": "stopped",
    "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:operators",
    "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab",
}

ROLES = ("WinBuildRole", "WinEvidenceRole", "WinFlowLogsRole", "WinImageExecutionRole", "WinInstanceRole")
ROLES += ("WinRefreshRole", "WinWakeRole")
FUNCTIONS = ("WinEvidenceFunction", "WinRefreshFunction", "WinWakeFunction")
LOG_GROUPS = ("WinDnsQueryLogs", "WinFlowLogs", "WinHostLogs", "WinRefreshLogs", "WinWorkerLogs")
SSE_SQS = (
    "Encrypted at rest by SqsManagedSseEnabled (SSE-SQS, SQS-owned keys); the rule (cfn_nag W48) predates "
    "SSE-SQS and only knows KmsMasterKeyId (checkov's CKV_AWS_27 is skipped for the same reason)"
)
EXAMPLE_BUCKET = "The example parents' stand-in for the platform's own bucket (examples/): {}"

SUPPRESSED: dict[tuple[str, str], str] = {
    ("SQS_QUEUE_KMS_MASTER_KEY_ID_RULE", "WinRefreshDeadLetters"): SSE_SQS,
    ("SQS_QUEUE_KMS_MASTER_KEY_ID_RULE", "WorkQueue"): SSE_SQS,
    **{
        ("CW_LOGGROUP_RETENTION_PERIOD_CHECK", name): (
            "RetentionInDays is Ref WinLogRetentionDays, a Number parameter whose AllowedValues are CloudWatch "
            "Logs' accepted values (winworkers.parameters.LOG_RETENTION_DAYS, held below): Guard sees the Ref "
            "as written and a string once rendered; the registry's list also lacks 1096, 2192, ..., 3288"
        )
        for name in LOG_GROUPS
    },
    **{
        ("IAM_NO_INLINE_POLICY_CHECK", name): (
            "Each role's policies are inline on purpose: they belong to that one role and are deleted with it "
            "(a strict one-to-one relationship, the case IAM's guide gives for inline policies); parliament and "
            "tests/test_scanners.py judge their statements"
        )
        for name in ROLES
    },
    **{
        ("IAM_POLICYDOCUMENT_NO_WILDCARD_RESOURCE", name): (
            'Resource "*" only on actions that support no resource ARN (tests/test_scanners.py '
            "test_no_star_action_and_star_resource_only_where_aws_allows_nothing_else holds it per action)"
        )
        for name in ROLES
        if name != "WinBuildRole"
    },
    **{
        ("LAMBDA_CONCURRENCY_CHECK", name): (
            "Reserved concurrency is taken from the account's unreserved pool, which the platform's own "
            "functions share; these run a few times an hour (EventBridge, the custom resource) and need none"
        )
        for name in FUNCTIONS
    },
    **{
        ("LAMBDA_INSIDE_VPC", name): (
            "The functions call only AWS service APIs and nothing in the VPC (the README's security model: the "
            "evidence function runs outside the VPC); attached, they would need more interface endpoints and ENIs"
        )
        for name in FUNCTIONS
    },
    ("LAMBDA_DLQ_CHECK", "WinWakeFunction"): (
        "A failed wake is discarded on purpose (WinWakeRetries, MaximumRetryAttempts 0; winworkers/wake.py): "
        "the rate(1 minute) schedule calls again and WakeErrorsAlarm pages (register row 240; checkov's "
        "CKV_AWS_116 is skipped for the same reason)"
    ),
    ("S3_BUCKET_DEFAULT_LOCK_ENABLED", "DataBucket"): EXAMPLE_BUCKET.format("Object Lock is the platform's choice"),
    ("S3_BUCKET_LOGGING_ENABLED", "DataBucket"): EXAMPLE_BUCKET.format("access logging is the platform's (CKV_AWS_18)"),
    ("S3_BUCKET_REPLICATION_ENABLED", "DataBucket"): EXAMPLE_BUCKET.format("replication is the platform's choice"),
    ("S3_BUCKET_NO_PUBLIC_RW_ACL", "DataBucket"): EXAMPLE_BUCKET.format(
        "it sets no AccessControl (no ACL) and blocks public ACLs; the rule fails a missing AccessControl"
    ),
}


def guard(resource: dict[str, Any], name: str, path: str) -> str:
    """PASS, SKIP or FAIL of the rule file at path on the one resource."""
    report = run_checks_rs(json.dumps({"Resources": {name: resource}}), RUN[path], False)
    try:
        status: str = json.loads(report)["status"]
    except ValueError:  # only the last 8 KiB of a report over 8 KiB: a non-compliant one
        return "FAIL"
    assert len(report) < 8192, "a whole report over 8 KiB: the engine no longer truncates; read it"
    return status


def failures(template: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(rule, resource, rule file) of every failure, nothing suppressed."""
    found = set()
    for name, resource in template["Resources"].items():
        for path in RUN:
            if TYPES[path] and resource["Type"] not in TYPES[path]:
                continue  # the rule selects other types: it skips this one (held below)
            if guard(resource, name, path) == "FAIL":
                found |= {(rule, name, path) for rule in NAMES[path]}
    return found


def findings(template: dict[str, Any], found: set[tuple[str, str, str]] | None = None) -> set[tuple[str, str]]:
    """(rule, resource) of every failure (of found, if given) that stays when the resource carries its
    SUPPRESSED rules as Metadata.guard.SuppressedRules: each suppressed failure is run again so."""
    left = set()
    for rule, name, path in failures(template) if found is None else found:
        rules = [r for r, where in SUPPRESSED if where == name]
        if rules:  # an empty list would hide the resource from every rule's selector: never set one
            judged = copy.deepcopy(template["Resources"][name])
            judged.setdefault("Metadata", {}).setdefault("guard", {})["SuppressedRules"] = rules
            if guard(judged, name, path) != "FAIL":
                continue
        left.add((rule, name))
    return left


def _targets() -> dict[str, dict[str, Any]]:
    targets = {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "templates").glob("*.json"))}
    feature = targets["winworkers.json"]
    for mode in MODES:
        extra = {"BuildEndpointsCidr": "10.1.0.0/24"} if mode == "existing-subnets" else {}
        values = enabled_parameters(mode=mode, ImageSource="baked", **extra, **OPTIONS)
        targets[f"baked {mode}"] = render(feature, values)
    return targets


@pytest.fixture(scope="module")
def targets() -> dict[str, dict[str, Any]]:
    return _targets()


@pytest.fixture(scope="module")
def unsuppressed(targets: dict[str, dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    return {name: failures(template) for name, template in targets.items()}


def test_the_vendored_rules_are_the_manifests() -> None:
    assert MANIFEST["commit"] == "7f7340c26ae5d5e8874651dbffeb12e0e9f505b6"
    on_disk = {path: hashlib.sha256(text.encode()).hexdigest() for path, text in TEXTS.items()}
    assert on_disk == MANIFEST["files"]
    assert (RULES / "LICENSE").read_text().startswith("\n                                 Apache License")
    assert "Amazon.com" in (RULES / "NOTICE").read_text()
    assert len(TEXTS) == 52


def test_the_rules_that_do_not_parse_are_exactly_the_manifests() -> None:
    failed = {}
    for path, text in TEXTS.items():
        try:
            run_checks_rs(json.dumps({"Resources": {}}), text, False)
        except Exception as error:
            failed[path] = f"{type(error).__name__}: {error}"
    assert failed == MANIFEST["not_run"]
    assert len(RUN) == len(TEXTS) - len(MANIFEST["not_run"])


def test_each_rule_file_is_one_rule_over_each_resource_alone_and_honours_the_suppression() -> None:
    for path, text in TEXTS.items():
        (rule,) = NAMES[path]
        selectors = re.findall(r"^let \w+ = (.*)$", text, re.MULTILINE)
        assert selectors, path
        # Resources.* filters, a literal list of types, or (cfn_authentication_rule) the Metadata of
        # Resources: never a join of two resources.
        assert all(s.startswith(("Resources.*[", "Resources.Metadata", "%", "[")) for s in selectors), path
        assert f'Metadata.guard.SuppressedRules.* != "{rule}"' in text, path


def test_the_type_filter_skips_only_what_the_rule_skips(targets: dict[str, dict[str, Any]]) -> None:
    # One resource of each type the feature holds (the rules select by type alone).
    resources = {r["Type"]: (n, r) for n, r in targets["winworkers.json"]["Resources"].items()}
    resources = dict(resources.values())
    for path in RUN:
        for name, resource in resources.items():
            if TYPES[path] and resource["Type"] not in TYPES[path]:
                assert guard(resource, name, path) == "SKIP", (path, name)


def test_the_gate_can_fail() -> None:
    planted = {
        "OpenSsh": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "planted",
                "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}],
            },
        },
        "Plain": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
    }
    found = findings({"Resources": planted})
    assert {("INCOMING_SSH_DISABLED", "OpenSsh"), ("S3_BUCKET_SERVER_SIDE_ENCRYPTION_ENABLED", "Plain")} <= found
    assert ("SQS_QUEUE_KMS_MASTER_KEY_ID_RULE", "Queue") in found
    # Why findings() never sets an empty SuppressedRules: the registry's selectors then drop the resource.
    hidden = {**planted["OpenSsh"], "Metadata": {"guard": {"SuppressedRules": []}}}
    assert guard(hidden, "OpenSsh", "amazon_ec2/restricted_ssh.guard") == "SKIP"
    # A long non-compliant report (over 8 KiB, truncated by the engine) is a failure too.
    big = {"Type": "AWS::Lambda::Function", "Properties": {"Code": {"ZipFile": "x" * 20000}, "Runtime": "python3.13"}}
    assert ("LAMBDA_INSIDE_VPC", "Big") in findings({"Resources": {"Big": big}})


@pytest.mark.parametrize("target", ["parent-inline.json", "parent-nested.json", "winworkers.json", *MODES])
def test_every_rule_passes_but_the_suppressed(
    targets: dict[str, dict[str, Any]], unsuppressed: dict[str, set[tuple[str, str, str]]], target: str
) -> None:
    name = target if target.endswith(".json") else f"baked {target}"
    assert findings(targets[name], unsuppressed[name]) == set()


def test_every_suppression_is_still_needed_and_has_a_reason(
    unsuppressed: dict[str, set[tuple[str, str, str]]],
) -> None:
    found = {(rule, name) for failed in unsuppressed.values() for rule, name, _ in failed}
    print(f"\nguard: {len(RUN)} rule files; suppressed findings {sorted(found)}")
    assert set(SUPPRESSED) == found
    assert all(len(reason) > 40 for reason in SUPPRESSED.values())
    # The rendered baked feature is judged too: the fleet's and the build's resources.
    baked = {(rule, name) for rule, name, _ in unsuppressed["baked existing-subnets"]}
    assert ("IAM_NO_INLINE_POLICY_CHECK", "WinBuildRole") in baked


def test_the_log_retention_suppression_holds(targets: dict[str, dict[str, Any]]) -> None:
    template = targets["winworkers.json"]
    # The library's list of what CloudWatch Logs accepts (winworkers.parameters, PutRetentionPolicy).
    allowed = template["Parameters"]["WinLogRetentionDays"]["AllowedValues"]
    assert [int(v) for v in allowed] == list(LOG_RETENTION_DAYS)
    for name in LOG_GROUPS:
        assert template["Resources"][name]["Properties"]["RetentionInDays"] == {"Ref": "WinLogRetentionDays"}
