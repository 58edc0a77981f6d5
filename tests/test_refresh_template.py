"""The refresh Lambda as deployed: its code, triggers (schedule, AMI releases, the stack's
custom resource) and permissions; and that nothing else in any template starts a refresh."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import ROOT, props, render, resources_of
from winworkers.refresh import AMI_RELEASES_TOPIC, SERVICE_TIMEOUT
from winworkers.renderings import MODES, enabled_parameters

TEMPLATES = sorted((ROOT / "templates").glob("*.json"))


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
    assert by_action["autoscaling:CompleteLifecycleAction"] == [arn]  # pool exits (the test below)
    assert arn.endswith(f":autoScalingGroup:*:autoScalingGroupName/{group}"), arn
    workers = [s for p in props(enabled, "WinInstanceRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [arn] in [s["Resource"] for s in workers if s["Action"] == ["autoscaling:CompleteLifecycleAction"]]
    assert by_action["ssm:GetParameter"] == [
        "arn:aws:ssm:us-east-1:*:parameter/aws/service/ami-windows-latest/Windows_Server-2019-English-Full-Base"
    ]
    # Its stack, and a nested stack's root, which can only be in the same account and Region.
    assert by_action["cloudformation:DescribeStacks"] == ["arn:aws:cloudformation:us-east-1:555555555555:stack/*"]
    assert "autoscaling:CancelInstanceRefresh" not in by_action  # it never cancels a refresh
    star = sorted(a for a, r in by_action.items() if r == ["*"])
    assert star == [
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeInstanceRefreshes",
        "autoscaling:DescribeWarmPool",
        "ec2:DescribeInstances",
    ]


def test_a_stopped_pooled_worker_s_exit_reaches_the_function_with_the_warm_pool_only(
    feature: dict[str, Any], enabled: dict[str, Any]
) -> None:
    # WarmPool=stopped: Auto Scaling's terminate lifecycle action for an instance leaving the pool
    # (Origin WarmPool), for this group, invokes the refresh function, which completes its drain
    # hook (tests/test_ami_refresh.py). Without a warm pool there is neither rule nor permission.
    assert not {"WinPoolExitRule", "WinPoolExitInvoke"} & set(enabled["Resources"])
    warm = render(feature, enabled_parameters(WarmPool="stopped"))
    rule = props(warm, "WinPoolExitRule")
    assert rule["EventPattern"] == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
        "detail": {"AutoScalingGroupName": ["WinGroup"], "Origin": ["WarmPool"]},
    }
    assert rule["Targets"] == [{"Arn": "WinRefreshFunction.Arn", "Id": "refresh"}]  # cloud-radar's GetAtt
    assert props(warm, "WinPoolExitInvoke") == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": "WinRefreshFunction",
        "Principal": "events.amazonaws.com",
        "SourceArn": "WinPoolExitRule.Arn",
    }


# One owner of refreshes: the Lambda, started by the stack's custom resource on an update


@pytest.mark.parametrize("mode", sorted(MODES))
def test_no_refresh_can_ask_for_skip_matching_or_a_desired_configuration(feature: dict[str, Any], mode: str) -> None:
    # With a resolve:ssm: ImageId AWS refuses a refresh with either (Auto Scaling user guide), and
    # the AutoScalingInstanceRefresh update policy's SkipMatching defaults to true: no group has
    # the policy; the Lambda, the only other starter, never asks (test_refresh_custom_resource.py
    # checks its source and every call it makes).
    rendered = render(feature, enabled_parameters(mode=mode))
    (template_data,) = [
        r["Properties"]["LaunchTemplateData"] for r in resources_of(rendered, "AWS::EC2::LaunchTemplate").values()
    ]
    assert template_data["ImageId"].startswith("resolve:ssm:")
    for group in resources_of(rendered, "AWS::AutoScaling::AutoScalingGroup").values():
        assert "AutoScalingInstanceRefresh" not in group.get("UpdatePolicy", {})
        assert "AutoScalingRollingUpdate" not in group.get("UpdatePolicy", {})
    code = props(rendered, "WinRefreshFunction")["Code"]["ZipFile"]
    assert code == (ROOT / "winworkers" / "ami_refresh.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_no_committed_template_has_an_instance_refresh_policy(path: Any) -> None:
    template = json.loads(path.read_text(encoding="utf-8"))
    for resource in template["Resources"].values():  # the Lambda's code is checked as code
        resource.get("Properties", {}).get("Code", {}).pop("ZipFile", None)
    text = json.dumps(template)
    assert "AutoScalingInstanceRefresh" not in text and "SkipMatching" not in text


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_stack_update_reaches_the_lambda_through_the_custom_resource(feature: dict[str, Any], mode: str) -> None:
    rendered = render(feature, enabled_parameters(mode=mode))
    (name,) = resources_of(rendered, "Custom::WorkersRefresh")
    resource = props(rendered, name)
    group = props(rendered, "WinGroup")
    # What the workers run with: a change of any makes CloudFormation send the Lambda an Update.
    assert resource["GroupName"] == "WinGroup"  # cloud-radar renders a Ref to a resource as its name
    assert resource["LaunchTemplateId"] == "WinLaunchTemplate"
    assert (
        resource["LaunchTemplateVersion"]
        == group["LaunchTemplate"]["Version"]
        == "WinLaunchTemplate.LatestVersionNumber"
    )
    assert resource["Subnets"] == group["VPCZoneIdentifier"]  # a subnet change leaves the launch template alone
    assert resource["ServiceToken"] == "WinRefreshFunction.Arn"
    # Ref WinGroup orders it after the group: the group already launches from the new version.
    assert "WinGroup" in json.dumps(feature["Resources"][name]["Properties"]["GroupName"])
    # CloudFormation waits at most this long for the answer (1 to 3,600 s): the function's timeout
    # and Lambda's two asynchronous retries fit in it.
    timeout = int(props(rendered, "WinRefreshFunction")["Timeout"])
    assert 3 * timeout < resource["ServiceTimeout"] == SERVICE_TIMEOUT <= 3600
    stack = props(rendered, "WinRefreshFunction")["Environment"]["Variables"]["STACK_ID"]  # AWS::StackId
    assert stack.startswith("arn:aws:cloudformation:us-east-1:555555555555:stack/my-cloud-radar-stack/")
