"""winworkers deployer-policy: derived from the resource types the template holds (issue 21, section 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import render
from winworkers import WorkersConfig, build_template
from winworkers.cli import main
from winworkers.deployer_policy import (
    DEPLOY_ACTIONS,
    RESOURCE_ACTIONS,
    actions,
    policy_document,
    resource_types,
    statements,
)
from winworkers.renderings import MODES, enabled_parameters

CONFIGS = [WorkersConfig(), WorkersConfig(include_alarms=False), WorkersConfig(prefix="Batch", max_fleet_size=50)]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "no-alarms", "prefixed"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_resource_type_of_every_mode_is_covered(config: WorkersConfig, mode: str) -> None:
    template = json.loads(build_template(config).to_json())
    rendered = render(template, enabled_parameters(config, mode=mode))
    document = policy_document(config)
    allowed = actions(document)
    kinds = {r["Type"] for r in rendered["Resources"].values()}
    assert kinds, "the mode renders resources"
    for kind in kinds:
        known = "AWS::CloudFormation::CustomResource" if kind.startswith("Custom::") else kind
        assert {str(a.JSONrepr()) for a in RESOURCE_ACTIONS[known]} <= allowed, kind
    assert {str(a.JSONrepr()) for a in DEPLOY_ACTIONS} <= allowed


def _without(kind: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(build_template().to_json())
    template["Resources"] = {n: r for n, r in template["Resources"].items() if r["Type"] != kind}
    return template


def _document(template: dict[str, Any]) -> dict[str, Any]:
    return {"Statement": [json.loads(s.to_json()) for s in statements(template)]}


def test_a_removed_type_drops_its_actions() -> None:
    full = _document(json.loads(build_template().to_json()))
    without = _document(_without("AWS::CloudWatch::Alarm"))
    assert "CloudWatchAlarm" in {s["Sid"] for s in full["Statement"]}
    assert "CloudWatchAlarm" not in {s["Sid"] for s in without["Statement"]}
    # Alarm-only actions go; those the scaling policies also need (target tracking's alarms) stay.
    assert "cloudwatch:TagResource" in actions(full) and "cloudwatch:TagResource" not in actions(without)
    assert "cloudwatch:PutMetricAlarm" in actions(without)
    no_queue = _without("AWS::SQS::Queue")
    assert "AWS::SQS::Queue" not in resource_types(no_queue)
    assert not [a for a in actions(_document(no_queue)) if a.startswith("sqs:")]
    no_group = _document(_without("AWS::AutoScaling::AutoScalingGroup"))
    assert "AutoScalingServiceLinkedRole" not in {s["Sid"] for s in no_group["Statement"]}
    assert "ec2:RunInstances" not in actions(no_group)


def test_an_unknown_type_is_refused_not_skipped() -> None:
    template: dict[str, Any] = {"Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}}}
    with pytest.raises(ValueError, match=r"^no deployer actions known for AWS::S3::Bucket: add them"):
        statements(template)


def test_pass_role_is_scoped_to_each_role_and_its_service() -> None:
    document = policy_document()
    passes = {s["Sid"]: s for s in document["Statement"] if s["Action"] == ["iam:PassRole"]}
    assert set(passes) == {
        "PassRoleWinInstanceRole",
        "PassRoleWinRefreshRole",
        "PassRoleWinFlowLogsRole",
        "PassRoleWinEvidenceRole",
    }
    assert passes["PassRoleWinInstanceRole"]["Resource"] == ["arn:aws:iam::*:role/*-WinInstanceRole-*"]
    assert passes["PassRoleWinInstanceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}
    }
    assert passes["PassRoleWinRefreshRole"]["Condition"]["StringEquals"]["iam:PassedToService"] == [
        "lambda.amazonaws.com"
    ]
    ami = next(s for s in document["Statement"] if s["Sid"] == "WindowsAmiParameters")
    assert (ami["Action"], ami["Resource"]) == (
        ["ssm:GetParameters"],
        ["arn:aws:ssm:*:*:parameter/aws/service/ami-windows-latest/*"],
    )
    assert not [s for s in document["Statement"] if "iam:" in json.dumps(s["Action"]) and s["Resource"] == ["*"]]


def test_the_command_prints_the_policy(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    config = tmp_path / "workers.toml"
    config.write_text('prefix = "Batch"\n')
    argv = ["deployer-policy", "--config", str(config), "--template-bucket", "ci-templates", "--nested"]
    assert main([*argv, "--stack-name", "platform"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["Version"] == "2012-10-17"
    sids = {s["Sid"]: s for s in document["Statement"]}
    assert sids["TemplateObjects"]["Resource"] == ["arn:aws:s3:::ci-templates/*"]
    assert "cloudformation:CreateStack" in sids["CloudFormationStack"]["Action"]
    stacks = ["arn:aws:cloudformation:*:*:stack/platform/*", "arn:aws:cloudformation:*:*:stack/platform-*/*"]
    assert sids["CloudFormationStack"]["Resource"] == stacks and sids["WinworkersDeploy"]["Resource"] == stacks
    assert "PassRoleBatchInstanceRole" in sids


def test_parliament_finds_nothing_medium_or_worse_in_the_deployer_policy() -> None:
    """parliament (a dev tool) knows each action's resource formats: every action is real and its ARN fits."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        from parliament import analyze_policy_string, enhance_finding

    for nested in (False, True):
        document = policy_document(nested=nested, template_bucket="ci-templates", stack_name="platform")
        analysis = analyze_policy_string(
            json.dumps(document), include_community_auditors=False, ignore_private_auditors=True
        )
        findings = [(f.issue, f.severity) for f in map(enhance_finding, analysis.findings)]
        assert {issue for issue, _ in findings} <= {"RESOURCE_STAR"}, findings


def test_the_warm_pool_actions_are_its_schema_handlers() -> None:
    # CloudFormation's handlers call what the resource schema lists (cfn-lint's bundled schema).
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", "AWS::AutoScaling::WarmPool").schema
    needed = {p for h in ("create", "update", "delete", "read") for p in schema["handlers"][h]["permissions"]}
    given = {str(a.JSONrepr()) for a in RESOURCE_ACTIONS["AWS::AutoScaling::WarmPool"]}
    assert needed <= given
    template = json.loads(build_template().to_json())
    assert needed <= actions(policy_document(WorkersConfig())), "the policy of a default build grants them"
    assert "AWS::AutoScaling::WarmPool" in resource_types(template)


def test_the_standing_resource_needs_no_statement_and_its_schema_names_no_permission() -> None:
    # CloudFormation keeps a WaitConditionHandle itself: the type is known (not refused) and
    # adds no statement, and cfn-lint's shipped schema for it declares no handler permissions.
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    kind = "AWS::CloudFormation::WaitConditionHandle"
    assert kind in resource_types(json.loads(build_template().to_json()))
    assert RESOURCE_ACTIONS[kind] == []
    sids = {s["Sid"] for s in _document(build_template().to_dict())["Statement"]}
    assert "CloudFormationWaitConditionHandle" not in sids
    assert "handlers" not in PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
