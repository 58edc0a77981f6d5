"""A failed boot, diagnosed without a login (winworkers/diagnostics.py): the console
capture function as deployed, its trigger and permissions, and the retention option."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ROOT, props, render
from winworkers import boot_evidence
from winworkers.bootstrap import DRAIN_HOOK
from winworkers.diagnostics import GROUP_TAG, TERMINATING
from winworkers.renderings import enabled_parameters


def _statements(rendered: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for p in props(rendered, role)["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_the_deployed_code_is_the_module_itself(feature: dict[str, Any]) -> None:
    code = feature["Resources"]["WinEvidenceFunction"]["Properties"]["Code"]["ZipFile"]
    assert code == (ROOT / "winworkers" / "boot_evidence.py").read_text(encoding="utf-8")


def test_function_settings(enabled: dict[str, Any]) -> None:
    function = props(enabled, "WinEvidenceFunction")
    assert (function["Runtime"], function["Architectures"], function["Handler"]) == (
        "python3.13",
        ["arm64"],
        "index.handler",
    )
    # The evidence, and the function's own one-line results, go to the host log group.
    assert function["Environment"]["Variables"] == {"LOG_GROUP": "WinHostLogs"}
    assert function["LoggingConfig"]["LogGroup"] == "WinHostLogs"
    # Failed events are dead-lettered with the refresh function's (one queue, 14 days).
    assert function["DeadLetterConfig"]["TargetArn"] == "WinRefreshDeadLetters.Arn"
    # Not in the VPC (EC2 and Logs are not reachable from it), no reservation (low-quota accounts).
    assert "VpcConfig" not in function and "ReservedConcurrentExecutions" not in function
    skips = {s["id"] for s in enabled["Resources"]["WinEvidenceFunction"]["Metadata"]["checkov"]["skip"]}
    assert skips == {"CKV_AWS_117", "CKV_AWS_115", "CKV_AWS_173"}


def test_the_rule_sends_this_groups_drain_hook_events(enabled: dict[str, Any]) -> None:
    pattern = props(enabled, "WinEvidenceRule")["EventPattern"]
    assert TERMINATING == boot_evidence.TERMINATING  # the handler ignores every other event
    group = props(enabled, "WinGroup")
    drain = [h for h in group["LifecycleHookSpecificationList"] if h["LifecycleHookName"] == DRAIN_HOOK]
    assert drain and drain[0]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert pattern == {
        "source": ["aws.autoscaling"],
        "detail-type": [TERMINATING],
        "detail": {"AutoScalingGroupName": [group["AutoScalingGroupName"]], "LifecycleHookName": [DRAIN_HOOK]},
    }
    (target,) = props(enabled, "WinEvidenceRule")["Targets"]
    assert target["Arn"] == "WinEvidenceFunction.Arn"
    invoke = props(enabled, "WinEvidenceInvoke")
    assert (invoke["Principal"], invoke["SourceArn"]) == ("events.amazonaws.com", "WinEvidenceRule.Arn")


def test_the_first_workers_boot_after_the_trigger_exists(feature: dict[str, Any]) -> None:
    # A failed first boot fails the stack's creation: its evidence matters most.
    depends = feature["Resources"]["WinGroup"]["DependsOn"]
    assert {"WinEvidenceRule", "WinEvidenceInvoke"} <= set(depends)
    conditions = {feature["Resources"][name]["Condition"] for name in [*depends, "WinGroup"]}
    assert conditions == {"WinEnabled"}  # DependsOn never names a resource that may be absent


def test_the_function_reads_the_console_of_this_groups_instances_only(enabled: dict[str, Any]) -> None:
    statements = _statements(enabled, "WinEvidenceRole")
    by_action = {a: s for s in statements for a in s["Action"]}
    assert set(by_action) == {
        "ec2:GetConsoleOutput",
        "ec2:GetConsoleScreenshot",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "sqs:SendMessage",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeScalingActivities",
        "autoscaling:CompleteLifecycleAction",
    }
    console = by_action["ec2:GetConsoleOutput"]
    assert console is by_action["ec2:GetConsoleScreenshot"]
    assert console["Resource"] == ["arn:aws:ec2:us-east-1:555555555555:instance/*"]  # cloud-radar's account
    group = props(enabled, "WinGroup")["AutoScalingGroupName"]
    assert console["Condition"] == {"StringEquals": {GROUP_TAG: group}}
    assert GROUP_TAG == "aws:ResourceTag/aws:autoscaling:groupName"
    assert by_action["logs:PutLogEvents"]["Resource"] == ["WinHostLogs.Arn"]
    assert by_action["sqs:SendMessage"]["Resource"] == ["WinRefreshDeadLetters.Arn"]


def test_the_function_releases_this_groups_failed_boots_only(enabled: dict[str, Any]) -> None:
    # It completes a failed boot's drain hook (register row 200): on this group, nothing else.
    by_action = {a: s for s in _statements(enabled, "WinEvidenceRole") for a in s["Action"]}
    group = props(enabled, "WinGroup")["AutoScalingGroupName"]
    (arn,) = by_action["autoscaling:CompleteLifecycleAction"]["Resource"]
    assert arn.endswith(f":autoScalingGroupName/{group}") and arn.startswith("arn:aws:autoscaling:us-east-1:")
    # Describe calls take no resource-level permission (Service Authorization Reference).
    for action in ("autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeScalingActivities"):
        assert by_action[action]["Resource"] == ["*"]


def test_nothing_is_retained_unless_asked(feature: dict[str, Any], enabled: dict[str, Any]) -> None:
    assert "InstanceLifecyclePolicy" not in props(enabled, "WinGroup")
    retained = render(feature, enabled_parameters(RetainFailedBoots="true"))
    assert props(retained, "WinGroup")["InstanceLifecyclePolicy"] == {
        "RetentionTriggers": {"TerminateHookAbandon": "retain"}
    }
    assert feature["Parameters"]["WinRetainFailedBoots"]["Default"] == "false"


@pytest.mark.parametrize("value", ["true", "false"])
def test_turning_retention_on_or_off_touches_only_the_group(feature: dict[str, Any], value: str) -> None:
    # InstanceLifecyclePolicy updates with no interruption (CloudFormation template reference), and
    # the launch template is untouched: no instance refresh, no worker replaced.
    def changed(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
        return {n for n in {*a["Resources"], *b["Resources"]} if a["Resources"].get(n) != b["Resources"].get(n)}

    before = render(feature, enabled_parameters(RetainFailedBoots=before_value(value)))
    after = render(feature, enabled_parameters(RetainFailedBoots=value))
    # Each rendering is a new stack (its own StackId): what differs between two of the same inputs is not a change.
    noise = changed(before, render(feature, enabled_parameters(RetainFailedBoots=before_value(value))))
    assert "WinGroup" not in noise and "WinLaunchTemplate" not in noise
    assert changed(before, after) - noise == {"WinGroup"}


def before_value(value: str) -> str:
    return "false" if value == "true" else "true"


def test_an_evidence_write_that_fails_is_retried_twice_then_dead_lettered(
    feature: dict[str, Any], enabled: dict[str, Any]
) -> None:
    # docs/operations.md "Troubleshooting a failed boot": retried twice by Lambda, then dead-lettered. Twice is
    # Lambda's asynchronous default (register row 98), so nothing in the template may change it.
    # (The wake's EventInvokeConfig, WinWakeRetries, names the wake function alone.)
    configs = [r for r in feature["Resources"].values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert all(c["Properties"]["FunctionName"] == {"Ref": "WinWakeFunction"} for c in configs)
    assert props(enabled, "WinEvidenceFunction")["DeadLetterConfig"]["TargetArn"] == "WinRefreshDeadLetters.Arn"
