"""The AMI refresh Lambda as deployed: its code, triggers and permissions."""

from __future__ import annotations

from typing import Any

from conftest import ROOT, props, render, resources_of
from winworkers.refresh import AMI_RELEASES_TOPIC
from winworkers.renderings import enabled_parameters


def test_the_deployed_code_is_the_module_itself(feature: dict[str, Any]) -> None:
    code = feature["Resources"]["WinRefreshFunction"]["Properties"]["Code"]["ZipFile"]
    assert code == (ROOT / "winworkers" / "ami_refresh.py").read_text(encoding="utf-8")


def test_function_settings(enabled: dict[str, Any]) -> None:
    function = props(enabled, "WinRefreshFunction")
    assert function["Runtime"] >= "python3.12" and function["Architectures"] == ["arm64"]
    assert function["Handler"] == "index.handler"
    # No reservation: Lambda refuses one that leaves less than the account's minimum unreserved
    # concurrency (new accounts); the handler is safe against concurrent runs.
    assert "ReservedConcurrentExecutions" not in function
    skips = {s["id"]: s["comment"] for s in enabled["Resources"]["WinRefreshFunction"]["Metadata"]["checkov"]["skip"]}
    assert "low-quota accounts" in skips["CKV_AWS_115"]
    # Failed asynchronous invocations go to the queue with the function's own role: it needs SendMessage there.
    assert function["DeadLetterConfig"]["TargetArn"] == "WinRefreshDeadLetters.Arn"
    statements = [s for p in props(enabled, "WinRefreshRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert {"Action": ["sqs:SendMessage"], "Effect": "Allow", "Resource": ["WinRefreshDeadLetters.Arn"]} in statements
    assert props(enabled, "WinRefreshDeadLetters")["MessageRetentionPeriod"] == 1209600  # SQS's maximum
    pattern = props(enabled, "WinRefreshFailedRule")["EventPattern"]
    assert pattern["detail-type"] == ["EC2 Auto Scaling Instance Refresh Failed"]
    assert function["LoggingConfig"]["LogGroup"] == "WinRefreshLogs"
    assert function["Environment"]["Variables"]["ASG_NAME"] == "WinGroup"  # its Ref, the group name
    assert props(enabled, "WinRefreshLogs")["RetentionInDays"] == "90"


def test_weekly_schedule_by_default_and_configurable(feature: dict[str, Any], enabled: dict[str, Any]) -> None:
    assert props(enabled, "WinRefreshScheduleRule")["ScheduleExpression"] == "rate(7 days)"
    daily = render(feature, enabled_parameters(RefreshSchedule="cron(0 3 * * ? *)"))
    assert props(daily, "WinRefreshScheduleRule")["ScheduleExpression"] == "cron(0 3 * * ? *)"
    permissions = [p["Properties"] for p in resources_of(enabled, "AWS::Lambda::Permission").values()]
    assert {(p["Principal"], p["FunctionName"]) for p in permissions} == {
        ("events.amazonaws.com", "WinRefreshFunction"),
        ("events.amazonaws.com", "WinEvidenceFunction"),  # winworkers.diagnostics
    }


def test_ami_release_subscription_is_optional(feature: dict[str, Any], enabled: dict[str, Any]) -> None:
    assert not resources_of(enabled, "AWS::SNS::Subscription")
    subscribed = render(feature, enabled_parameters(SubscribeToAmiReleases="true"))
    (subscription,) = resources_of(subscribed, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["TopicArn"] == AMI_RELEASES_TOPIC
    assert subscription["Properties"]["Region"] == "us-east-1"
    assert any(
        p["Properties"]["Principal"] == "sns.amazonaws.com"
        for p in resources_of(subscribed, "AWS::Lambda::Permission").values()
    )


def test_refresh_role_is_least_privilege(enabled: dict[str, Any]) -> None:
    statements = [s for p in props(enabled, "WinRefreshRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    by_action = {a: s["Resource"] for s in statements for a in s["Action"]}
    assert not [a for a in by_action if a.endswith("*")]
    # This group only: the same ARN the workers' role completes lifecycle actions on (bootstrap.group_arn).
    group = props(enabled, "WinGroup")["AutoScalingGroupName"]
    (arn,) = by_action["autoscaling:StartInstanceRefresh"]
    assert arn.endswith(f":autoScalingGroup:*:autoScalingGroupName/{group}"), arn
    workers = [s for p in props(enabled, "WinInstanceRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [arn] in [s["Resource"] for s in workers if s["Action"] == ["autoscaling:CompleteLifecycleAction"]]
    assert by_action["ssm:GetParameter"] == [
        "arn:aws:ssm:us-east-1:*:parameter/aws/service/ami-windows-latest/Windows_Server-2019-English-Full-Base"
    ]
    star = sorted(a for a, r in by_action.items() if r == ["*"])
    assert star == [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeInstanceRefreshes",
        "autoscaling:DescribeWarmPool",
        "ec2:DescribeInstances",
    ]
