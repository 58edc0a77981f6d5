"""issue 21 (and 17's deploy bullets): nothing changes that the operator did not ask for.

CloudFormation here is the emulator (moto's server, winworkers.emulator). The
instance refresh APIs are not in moto 5.2.5: a scripted fake answers
DescribeInstanceRefreshes in these tests, and Stubber pins the exact calls
where the order matters.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from conftest import BUCKET_FLAG, ROOT, TEMPLATE_BUCKET
from winworkers import WorkersConfig, build_template
from winworkers.cli import main
from winworkers.deploy import Clients, DeployError, deploy, follow
from winworkers.deploy import base as deploy_base
from winworkers.deploy.changes import from_change_set, resources_holding
from winworkers.emulator import ENVIRONMENT
from winworkers.parameters import SWITCH
from winworkers.renderings import enabled_parameters

STANDING_TYPE = "AWS::CloudFormation::WaitConditionHandle"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
NOW = datetime.now(UTC)


class Refreshes:
    """DescribeInstanceRefreshes, scripted: each call takes the next answer (the last repeats)."""

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def describe_instance_refreshes(self, AutoScalingGroupName: str, MaxRecords: int) -> dict[str, Any]:
        self.calls.append(AutoScalingGroupName)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return {"InstanceRefreshes": [{"AutoScalingGroupName": AutoScalingGroupName, **r} for r in answer]}


IN_PROGRESS = {
    "InstanceRefreshId": "0a1b2c3d-refresh",
    "Status": "InProgress",
    "PercentageComplete": 50,
    "InstancesToUpdate": 2,
    "StatusReason": "Waiting for the checkpoint delay to elapse (checkpoint 50%).",
    "Preferences": {"CheckpointPercentages": [50, 100]},
}
DONE = {**IN_PROGRESS, "Status": "Successful", "PercentageComplete": 100, "InstancesToUpdate": 0, "StatusReason": ""}


def _with(aws: Clients, autoscaling: Any) -> Clients:
    return Clients(aws.cloudformation, aws.ec2, aws.s3, REGION, autoscaling)


def _run(aws: Clients, stack: str, values: dict[str, str], **kwargs: Any) -> tuple[Any, list[str]]:
    out: list[str] = []
    kwargs.setdefault("template_bucket", TEMPLATE_BUCKET)
    result = deploy(aws, stack, kwargs.pop("template", FEATURE), values, poll_seconds=0.01, echo=out.append, **kwargs)
    return result, out


def _parameters(aws: Clients, stack: str) -> dict[str, str]:
    described = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def _pending(aws: Clients, stack: str) -> list[dict[str, Any]]:
    """The stack's unexecuted change sets (moto 5.2.5 lists every stack's, executed or not)."""
    summaries = aws.cloudformation.list_change_sets(StackName=stack)["Summaries"]
    return [s for s in summaries if s["StackName"] == stack and s["ExecutionStatus"] == "AVAILABLE"]


def _logical_ids(aws: Clients, stack: str) -> set[str]:
    summaries = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {s["LogicalResourceId"] for s in summaries if s["LogicalResourceId"]}


# Confirmation ---------------------------------------------------------------------------------------------------


def test_turning_the_feature_off_needs_yes_and_says_what_goes(aws: Clients) -> None:
    _run(aws, "ww-off-yes", enabled_parameters())
    before = _logical_ids(aws, "ww-off-yes")
    with pytest.raises(DeployError) as refused:
        _run(aws, "ww-off-yes", {SWITCH: "false"}, ask=lambda question: True)  # even a yes in a terminal
    message = str(refused.value)
    assert message.startswith(f"{SWITCH}=false turns the feature off: it deletes ")
    assert "WinGroup" in message
    assert "these stay (DeletionPolicy Retain): WinDnsQueryLogs, WinFlowLogs, WinHostLogs" in message
    assert message.endswith("nothing was changed: run again with --yes to do it")
    assert _logical_ids(aws, "ww-off-yes") == before and _parameters(aws, "ww-off-yes")[SWITCH] == "true"
    assert _pending(aws, "ww-off-yes") == []  # none left behind
    result, _ = _run(aws, "ww-off-yes", {SWITCH: "false"}, yes=True)
    assert result.status == "UPDATE_COMPLETE" and "WinGroup" not in _logical_ids(aws, "ww-off-yes")


def test_a_removal_without_a_terminal_is_refused_and_changes_nothing(aws: Clients) -> None:
    _run(aws, "ww-remove", enabled_parameters())
    subnets = ",".join(
        s["SubnetId"] for s in aws.ec2.describe_subnets()["Subnets"] if s["VpcId"] != "" and s["DefaultForAz"]
    )
    vpc = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    existing = {"WinNetworkMode": "existing-subnets", "WinVpcId": vpc, "WinSubnetIds": subnets}
    existing["WinEndpointsCidr"] = "172.31.0.0/16"
    before = _logical_ids(aws, "ww-remove")
    with pytest.raises(DeployError) as refused:
        _run(aws, "ww-remove", existing)  # no ask: no terminal
    assert str(refused.value).startswith("the change set for ww-remove would ")
    assert "to remove" in str(refused.value) and "without a terminal that needs --yes; nothing was changed" in str(
        refused.value
    )
    assert _logical_ids(aws, "ww-remove") == before and "WinVpc" in before
    assert _pending(aws, "ww-remove") == []  # the refused change set is deleted, not left behind
    # Interactively: asked, and "no" changes nothing either.
    asked: list[str] = []
    with pytest.raises(DeployError, match=r"^not executed: nothing was changed"):
        _run(aws, "ww-remove", existing, ask=lambda question: asked.append(question) or False)
    assert asked and asked[0].startswith("Execute this change set (") and "to remove" in asked[0]
    assert _logical_ids(aws, "ww-remove") == before and _pending(aws, "ww-remove") == []
    result, out = _run(aws, "ww-remove", existing, ask=lambda question: True)
    assert result.status == "UPDATE_COMPLETE" and "WinVpc" not in _logical_ids(aws, "ww-remove")
    assert "  remove   WinVpc (AWS::EC2::VPC) (from the templates)" in out


def test_dry_run_prints_the_change_set_and_leaves_it(aws: Clients) -> None:
    _run(aws, "ww-dry", enabled_parameters())
    result, out = _run(aws, "ww-dry", {SWITCH: "false"}, dry_run=True)
    assert result.changed is False and result.change_set_id
    (summary,) = _pending(aws, "ww-dry")
    assert summary["ChangeSetId"] == result.change_set_id and summary["ExecutionStatus"] == "AVAILABLE"
    assert out[0].startswith(f"change set {result.change_set_id} for stack ww-dry: ") and " to remove" in out[0]
    assert f"  parameter {SWITCH}: 'true' -> 'false'" in out
    assert "  remove   WinGroup (AWS::AutoScaling::AutoScalingGroup) (from the templates)" in out
    assert out[-1].startswith("dry run: the change set is left for review, not executed")
    assert _parameters(aws, "ww-dry")[SWITCH] == "true" and "WinGroup" in _logical_ids(aws, "ww-dry")


def test_a_change_that_refreshes_the_workers_asks_first(aws: Clients) -> None:
    _run(aws, "ww-refresh-ask", enabled_parameters())
    with pytest.raises(DeployError) as refused:
        _run(aws, "ww-refresh-ask", {"WinInstanceType": "c7i.xlarge"})
    assert "starts an instance refresh" in str(refused.value)
    assert _parameters(aws, "ww-refresh-ask")["WinInstanceType"] == "m6i.large"
    assert _pending(aws, "ww-refresh-ask") == []  # docs/deploy.md: refused and deleted unless --yes


def test_the_plan_groups_replacements_with_their_cause() -> None:
    """The ResourceChange shape of DescribeChangeSet (API reference), as CloudFormation returns it."""
    template = json.loads(FEATURE.read_text())
    values = {n: str(p.get("Default", "")) for n, p in template["Parameters"].items()}
    described = [
        {
            "Action": "Modify",
            "LogicalResourceId": "WinWorkerSecurityGroup",
            "ResourceType": "AWS::EC2::SecurityGroup",
            "Replacement": "True",
            "Details": [
                {
                    "Target": {"Attribute": "Properties", "Name": "VpcId", "RequiresRecreation": "Always"},
                    "Evaluation": "Static",
                    "ChangeSource": "ParameterReference",
                    "CausingEntity": "WinVpcId",
                }
            ],
        },
        {"Action": "Remove", "LogicalResourceId": "WinVpc", "ResourceType": "AWS::EC2::VPC"},
        {
            "Action": "Modify",
            "LogicalResourceId": "WinLaunchTemplate",
            "ResourceType": "AWS::EC2::LaunchTemplate",
            "Replacement": "False",
            "Details": [
                {
                    "Target": {"Attribute": "Properties", "Name": "LaunchTemplateData", "RequiresRecreation": "Never"},
                    "ChangeSource": "ParameterReference",
                    "CausingEntity": "WinInstanceType",
                }
            ],
        },
    ]
    current = {"WinWorkerSecurityGroup": "AWS::EC2::SecurityGroup", "WinVpc": "AWS::EC2::VPC"}
    current["WinLaunchTemplate"] = "AWS::EC2::LaunchTemplate"
    current["WinStanding"] = "AWS::CloudFormation::WaitConditionHandle"
    plan = from_change_set(described, template, template, values, values, current)
    lines = plan.lines()
    assert (
        "  replace  WinWorkerSecurityGroup (AWS::EC2::SecurityGroup): VpcId (ParameterReference WinVpcId, "
        "replaces: Always)"
    ) in lines
    assert "  remove   WinVpc (AWS::EC2::VPC)" in lines
    assert plan.refresh == ["WinLaunchTemplate changes: a new launch template version replaces the running workers"]
    assert plan.risky and plan.summary() == "1 to remove, 1 to replace, 1 to modify; starts an instance refresh"


def test_an_update_from_a_stack_without_the_standing_resource_only_adds_it() -> None:
    # A stack deployed before the standing resource (0.3.0), switch on or off: the update adds
    # it, as the change set says (ResourceChange, API reference), and replaces nothing.
    template = json.loads(FEATURE.read_text())
    for switch in ("true", "false"):
        values = {**enabled_parameters(), SWITCH: switch}
        holding = resources_holding(template, values) - {"WinStanding"}
        current = {n: template["Resources"][n]["Type"] for n in holding}
        added = {"Action": "Add", "LogicalResourceId": "WinStanding", "ResourceType": STANDING_TYPE}
        plan = from_change_set([added], template, template, values, values, current)
        assert [line.split()[:2] for line in plan.lines()] == [["add", "WinStanding"]], switch
        assert not plan.risky and plan.summary() == "1 to add", switch


# Instance refreshes (issue 17, item 3) -------------------------------------------------------------------------


def test_an_active_refresh_is_named_and_refused_before_anything_changes(aws: Clients) -> None:
    _run(aws, "ww-busy", enabled_parameters())
    refreshes = Refreshes([IN_PROGRESS])
    with pytest.raises(DeployError) as refused:
        _run(_with(aws, refreshes), "ww-busy", {"WinMaxSize": "6"})
    assert str(refused.value) == (
        "instance refresh 0a1b2c3d-refresh of ww-busy-WinWorkers is InProgress (50% complete): nothing was changed; "
        "run again with --wait-for-refresh to wait for it, or when it has ended"
    )
    assert refreshes.calls == ["ww-busy-WinWorkers"]
    assert _parameters(aws, "ww-busy")["WinMaxSize"] == "4"
    assert _pending(aws, "ww-busy") == []


def test_wait_for_refresh_waits_then_deploys_and_shows_the_progress(aws: Clients) -> None:
    _run(aws, "ww-wait", enabled_parameters())
    refreshes = Refreshes([IN_PROGRESS], [DONE], [IN_PROGRESS], [DONE])
    result, out = _run(
        _with(aws, refreshes), "ww-wait", {"WinInstanceType": "c7i.xlarge"}, wait_for_refresh=True, yes=True
    )
    assert result.status == "UPDATE_COMPLETE"
    progress = [line for line in out if line.startswith("instance refresh 0a1b2c3d-refresh of ww-wait-WinWorkers")]
    assert progress[0] == (
        "instance refresh 0a1b2c3d-refresh of ww-wait-WinWorkers: InProgress [##########..........] 50% 2 to update "
        "checkpoints 50/100% (Waiting for the checkpoint delay to elapse (checkpoint 50%).)"
    )
    assert "waiting for instance refresh 0a1b2c3d-refresh to end before changing stack ww-wait" in out
    # ... and during the update, the refresh it started, to its end.
    assert progress[-1].startswith("instance refresh 0a1b2c3d-refresh of ww-wait-WinWorkers: Successful")
    assert out.index("  refresh  WinLaunchTemplate changes: a new launch template version replaces the running workers")


def test_status_attaches_to_an_operation_under_way() -> None:
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    stack_id = "arn:aws:cloudformation:us-east-1:1:stack/ww-live/1"
    stack = {"StackName": "ww-live", "StackId": stack_id, "CreationTime": NOW}

    def event(n: int, logical: str, status: str, kind: str = "AWS::AutoScaling::AutoScalingGroup") -> dict[str, Any]:
        physical = stack_id if logical == "ww-live" else "ww-live-WinWorkers"
        return {
            "StackId": stack_id,
            "StackName": "ww-live",
            "EventId": str(n),
            "LogicalResourceId": logical,
            "PhysicalResourceId": physical,
            "ResourceType": kind if logical != "ww-live" else "AWS::CloudFormation::Stack",
            "ResourceStatus": status,
            "Timestamp": NOW,
        }

    older = event(1, "ww-live", "CREATE_COMPLETE")
    started = event(2, "ww-live", "UPDATE_IN_PROGRESS")
    group = event(3, "WinGroup", "UPDATE_IN_PROGRESS")
    done = event(4, "ww-live", "UPDATE_COMPLETE")
    resource = {
        "LogicalResourceId": "WinGroup",
        "PhysicalResourceId": "ww-live-WinWorkers",
        "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
        "ResourceStatus": "UPDATE_IN_PROGRESS",
        "LastUpdatedTimestamp": NOW,
    }
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "UPDATE_IN_PROGRESS"}]})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": [resource]})
        # The replay reads the operation once (review 30), then each poll reads the newest page.
        stub.add_response("describe_stack_events", {"StackEvents": [group, started, older]})
        stub.add_response("describe_stack_events", {"StackEvents": [done, group, started, older]})
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "UPDATE_COMPLETE"}]})
        stub.add_response("describe_stack_events", {"StackEvents": [done, group, started, older]})
        out: list[str] = []
        clients = Clients(client, None, None, REGION, Refreshes([IN_PROGRESS], [DONE]))
        assert follow(clients, "ww-live", poll_seconds=0, echo=out.append) == "UPDATE_COMPLETE"
        stub.assert_no_pending_responses()
    assert out[0] == "stack ww-live: UPDATE_IN_PROGRESS"
    shown = [line.split()[1:3] for line in out if line.startswith("20")]
    assert shown == [
        ["ww-live", "UPDATE_IN_PROGRESS"],
        ["WinGroup", "UPDATE_IN_PROGRESS"],
        ["ww-live", "UPDATE_COMPLETE"],
    ]
    assert (
        [line for line in out if line.startswith("instance refresh 0a1b2c3d-refresh")][-1]
        .split(": ")[1]
        .startswith("Successful")
    )
    assert out[-1] == "stack ww-live: UPDATE_COMPLETE"


def test_status_of_a_finished_stack_and_of_a_rollback(
    aws: Clients, endpoint: str, capsys: Any, monkeypatch: Any
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    _run(aws, "ww-status", {})
    assert main(["status", "--stack-name", "ww-status", "--endpoint-url", endpoint]) == 0
    assert capsys.readouterr().out == "stack ww-status: CREATE_COMPLETE\n"
    assert main(["watch", "--stack-name", "ww-none", "--endpoint-url", endpoint]) == 1
    assert capsys.readouterr().err == "winworkers watch: stack ww-none does not exist\n"


# Pass-through: capabilities, role, rollback, nested change sets ------------------------------------------------


def test_role_capabilities_and_rollback_pass_through(tmp_path: Path) -> None:
    template = tmp_path / "sam.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n  Name: {Type: String, Default: q}\n"
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub '${Name}-work'\n"
        "Outputs:\n  Arn:\n    Value: !GetAtt Queue.Arn\n"
    )
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    stack_id = "arn:aws:cloudformation:us-east-1:1:stack/ww-sam/1"
    role = "arn:aws:iam::123456789012:role/deployer"
    with Stubber(client) as stub:
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id ww-sam does not exist")
        stub.add_response(
            "create_change_set",
            {"Id": "arn:cs", "StackId": stack_id},
            {
                "StackName": "ww-sam",
                "ChangeSetName": ANY,
                "ChangeSetType": "CREATE",
                "Parameters": [],
                "Capabilities": ["CAPABILITY_AUTO_EXPAND", "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                "Tags": [],
                "RoleARN": role,
                "TemplateBody": template.read_text(),
            },
        )
        stub.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "ChangeSetId": "arn:cs", "Changes": []})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("execute_change_set", {}, {"ChangeSetName": "arn:cs", "DisableRollback": True})
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {"StackName": "ww-sam", "StackId": stack_id, "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE"}
                ]
            },
        )
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        result = deploy(
            Clients(client, None, None, REGION),
            "ww-sam",
            template,
            {},
            role_arn=role,
            disable_rollback=True,
            poll_seconds=0,
            echo=[].append,
        )
        stub.assert_no_pending_responses()
    assert result.status == "CREATE_COMPLETE"


def test_a_yaml_template_with_short_forms_deploys(aws: Clients, tmp_path: Path) -> None:
    template = tmp_path / "queue.yaml"
    template.write_text(
        "AWSTemplateFormatVersion: 2010-09-09\n"
        "Parameters:\n  Name: {Type: String, Default: ww-yaml}\n  Wanted: {Type: String, Default: 'true'}\n"
        "Conditions:\n  Make: !Equals [!Ref Wanted, 'true']\n"
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Condition: Make\n"
        "    Properties:\n      QueueName: !Sub '${Name}-work'\n"
    )
    result, out = _run(aws, "ww-yaml", {}, template=template)
    assert result.status == "CREATE_COMPLETE" and _logical_ids(aws, "ww-yaml") == {"Queue"}
    assert "  add      Queue (AWS::SQS::Queue)" in out
    assert aws.cloudformation.get_template(StackName="ww-yaml")["TemplateBody"] == template.read_text()


def test_the_nested_child_must_be_the_one_the_parent_was_built_for(aws: Clients) -> None:
    parent = ROOT / "templates" / "parent-nested.json"
    declared = json.loads(parent.read_text())["Parameters"]
    values = {k: v for k, v in enabled_parameters().items() if k in declared}
    aws.s3.create_bucket(Bucket="ww-children")
    other = build_template(WorkersConfig(max_fleet_size=10)).to_json()
    aws.s3.put_object(Bucket="ww-children", Key="other.json", Body=other.encode())
    values["WinTemplateUrl"] = f"https://ww-children.s3.{REGION}.amazonaws.com/other.json"
    with pytest.raises(DeployError) as refused:
        _run(aws, "ww-pair", values, template=parent)
    assert str(refused.value).startswith(
        f"the child at {values['WinTemplateUrl']} is not the one WinStack was built for: the parent's WinStack "
        "expects the child with fingerprint "
    )
    assert "ww-pair" not in {s["StackName"] for s in aws.cloudformation.list_stacks()["StackSummaries"]}


# Bad input, refused before any call (issue 21, section 3) ------------------------------------------------------

BAD_INPUT = [
    (["--parameter", "WinMinSize=3.5"], "WinMinSize='3.5' is not allowed: a whole number such as 4"),
    (["--parameter", "WinMaxSize=1e1"], "WinMaxSize='1e1' is not allowed: a whole number such as 4"),
    (["--parameter", "WinMaxSize=+4"], "WinMaxSize='+4' is not allowed: a whole number such as 4"),
    (["--parameter", "WinDesiredCapacity=2.0"], "WinDesiredCapacity='2.0' is not allowed: empty or a whole number"),
    (
        ["--parameter", "WinRefreshSchedule=rate(1 minutes)"],
        "WinRefreshSchedule='rate(1 minutes)' is not allowed: rate(1 minute) (1 takes a singular unit, more a plural",
    ),
    (["--parameter", "WinRefreshSchedule=cron(bad)"], "WinRefreshSchedule='cron(bad)' is not allowed: cron takes 6"),
    (
        ["--parameter", "WinRefreshSchedule=cron(0 3 * * SUN *)"],
        "WinRefreshSchedule='cron(0 3 * * SUN *)' is not allowed: cron needs ? in exactly one of day-of-month",
    ),
    (["--parameter", "MaxSize=6"], "MaxSize is not a parameter of this template: did you mean WinMaxSize?"),
    (["--parameter", "WinMaxSzie=6"], "WinMaxSzie is not a parameter of this template: did you mean WinMaxSize?"),
    (["--stack-name", "bad_name!"], "--stack-name 'bad_name!' is not allowed: a letter, then letters, digits and"),
    (["--template-bucket", "Bad_Bucket"], "--template-bucket 'Bad_Bucket' is not an S3 bucket name: 3 to 63"),
    (["--template-bucket", "a..b"], "--template-bucket 'a..b' is not an S3 bucket name: no two dots in a row"),
    (["--template-bucket", "192.168.5.4"], "--template-bucket '192.168.5.4' is not an S3 bucket name: not an IP"),
    (["--timeout", "-5"], "--timeout -5 is not allowed: minutes, 0 or more"),
]


@pytest.fixture()
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(*args: Any, **kwargs: Any) -> Clients:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(deploy_base.Clients, "connect", classmethod(connect))


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_before_any_call(
    no_aws: None, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = ["deploy", "--stack-name", "ww-bad", "--template", str(FEATURE), *BUCKET_FLAG]
    if "--stack-name" in argv:
        base = ["deploy", "--template", str(FEATURE), *BUCKET_FLAG]
    assert main([*base, *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"winworkers deploy: {message}") and err.count("\n") == 1, err


def test_upload_and_delete_refuse_bad_names_before_any_call(no_aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upload", str(FEATURE), "--bucket", "UPPER"]) == 1
    assert capsys.readouterr().err.startswith("winworkers upload: --bucket 'UPPER' is not an S3 bucket name")
    assert main(["delete", "--stack-name", "x_y"]) == 1
    assert capsys.readouterr().err.startswith("winworkers delete: --stack-name 'x_y' is not allowed")


def test_a_parameters_file_with_a_byte_order_mark_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows PowerShell 5's Out-File and Set-Content -Encoding UTF8 write a BOM."""
    path = tmp_path / "params.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"WinMaxSize": "6"}).encode())

    def connect(*args: Any, **kwargs: Any) -> Clients:
        raise DeployError("reached AWS with the file read")

    monkeypatch.setattr(deploy_base.Clients, "connect", classmethod(connect))
    assert (
        main(["deploy", "--stack-name", "x", "--template", str(FEATURE), "--parameters-file", str(path), *BUCKET_FLAG])
        == 1
    )
    assert capsys.readouterr().err == "winworkers deploy: reached AWS with the file read\n"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"WinMaxSize": "6.5"}).encode())
    assert (
        main(["deploy", "--stack-name", "x", "--template", str(FEATURE), "--parameters-file", str(path), *BUCKET_FLAG])
        == 1
    )
    assert capsys.readouterr().err.startswith("winworkers deploy: WinMaxSize='6.5' is not allowed: a whole number")


def test_deploy_without_a_template_builds_it_from_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """issue 19: an installed wheel has no templates/ folder."""
    seen: list[Any] = []

    def fake(clients: Any, stack: str, template: Any, values: Any, **kwargs: Any) -> None:
        seen.append(template)

    monkeypatch.setattr("winworkers.deploy.commands.deploy", fake)
    monkeypatch.setattr(deploy_base.Clients, "connect", classmethod(lambda *a, **k: None))
    monkeypatch.chdir(tmp_path)  # no templates/ here
    config = tmp_path / "workers.toml"
    config.write_text("max_fleet_size = 10\n")
    assert main(["deploy", "--stack-name", "x", "--config", str(config), *BUCKET_FLAG]) == 0
    (given,) = seen  # deploy.inputs.Given: the template read and the values given, checked once
    assert given.template.data == build_template(WorkersConfig(max_fleet_size=10)).to_dict()
    assert (
        main(["deploy", "--stack-name", "x", "--config", str(config), "--parameter", "WinMaxSize=11", *BUCKET_FLAG])
        == 1
    )
    assert "WinMaxSize='11' is not allowed: a number from 0 to 10" in capsys.readouterr().err


def test_emulator_port_out_of_range_and_a_second_interrupt_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["emulator", "--port", "99999"]) == 1
    assert capsys.readouterr().err == "winworkers emulator: --port 99999 is not allowed: 0 (any free port) to 65535\n"

    @contextlib.contextmanager
    def interrupted_on_exit(**kwargs: Any) -> Iterator[str]:
        yield "http://127.0.0.1:1"
        raise KeyboardInterrupt  # the second Ctrl-C, while it shuts down

    monkeypatch.setattr("winworkers.emulator.server.local_aws", interrupted_on_exit)
    monkeypatch.setattr("threading.Event.wait", lambda self, timeout=None: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["emulator", "--port", "0"]) == 130
    err = capsys.readouterr().err
    assert err == "winworkers: interrupted\n" and "Traceback" not in err


def test_a_nested_parent_previews_the_childs_changes(aws: Clients) -> None:
    """Without nested change sets (the emulator), the child's changes come from its templates."""
    parent = ROOT / "templates" / "parent-nested.json"
    declared = json.loads(parent.read_text())["Parameters"]
    values = {k: v for k, v in enabled_parameters().items() if k in declared}
    aws.s3.create_bucket(Bucket="ww-nested-children")
    aws.s3.put_object(Bucket="ww-nested-children", Key="winworkers.json", Body=FEATURE.read_bytes())
    values["WinTemplateUrl"] = f"https://ww-nested-children.s3.{REGION}.amazonaws.com/winworkers.json"
    _, out = _run(aws, "ww-nested-plan", values, template=parent)
    assert any(line.startswith("WinStack: the child at https://ww-nested-children") for line in out)
    # One value: the child's group is modified, nothing asked, nothing else kept back.
    result, out = _run(aws, "ww-nested-plan", {"WinMaxSize": "6"}, template=parent)
    assert result.status == "UPDATE_COMPLETE"
    assert "  modify   WinStack/WinGroup (AWS::AutoScaling::AutoScalingGroup): WinMaxSize (from the templates)" in out
    # A value that makes a new launch template version inside the child: asked first.
    with pytest.raises(DeployError, match="starts an instance refresh"):
        _run(aws, "ww-nested-plan", {"WinWindowsVersion": "2022"}, template=parent)


def test_a_nested_change_set_is_read_when_cloudformation_lists_one() -> None:
    """IncludeNestedStacks: the nested stack's change carries the ChangeSetId of its own change set."""
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    from winworkers.deploy.execute import _stack_plan

    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    child = json.loads(FEATURE.read_text())
    values = {k: str(v.get("Default", "")) for k, v in parent["Parameters"].items()}
    nested_change = {
        "Action": "Modify",
        "LogicalResourceId": "WinStack",
        "ResourceType": "AWS::CloudFormation::Stack",
        "Replacement": "False",
        "ChangeSetId": "arn:nested-cs",
    }
    removal = {"Action": "Remove", "LogicalResourceId": "WinVpc", "ResourceType": "AWS::EC2::VPC"}
    with Stubber(client) as stub:
        stub.add_response("describe_change_set", {"Changes": [{"Type": "Resource", "ResourceChange": removal}]})
        plan = _stack_plan(
            Clients(client, None, None, REGION), None, parent, [nested_change], values, {}, {"WinStack": child}
        )
        stub.assert_no_pending_responses()
    assert "  remove   WinStack/WinVpc (AWS::EC2::VPC)" in plan.lines() and plan.risky


def _event(stack_id: str, n: int, logical: str, status: str, kind: str, physical: str) -> dict[str, Any]:
    return {
        "StackId": stack_id,
        "StackName": stack_id.split("/")[1],
        "EventId": f"{stack_id}-{n}",
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "Timestamp": NOW,
    }


def test_the_nested_stacks_events_are_followed_with_its_name() -> None:
    from winworkers.deploy.watch import Watcher

    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    parent = "arn:aws:cloudformation:us-east-1:1:stack/platform/1"
    child = "arn:aws:cloudformation:us-east-1:1:stack/platform-WinStack-X/2"
    stack_event = _event(parent, 1, "WinStack", "UPDATE_IN_PROGRESS", "AWS::CloudFormation::Stack", child)
    group_event = _event(child, 1, "WinGroup", "UPDATE_IN_PROGRESS", "AWS::AutoScaling::AutoScalingGroup", "g")
    out: list[str] = []
    with Stubber(client) as stub:
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("describe_stack_events", {"StackEvents": [stack_event]})
        stub.add_response("describe_stack_events", {"StackEvents": [group_event]})
        stub.add_response("describe_stack_events", {"StackEvents": [stack_event]})
        stub.add_response("describe_stack_events", {"StackEvents": [group_event]})
        watcher = Watcher(client, Refreshes([DONE]), parent, out.append)
        watcher.prime()
        # The parent's event names the nested stack: read in the same poll (from the parent's operation's
        # start), then followed.
        watcher.poll()
        watcher.poll()
        stub.assert_no_pending_responses()
    assert [line.split()[1] for line in out if line.startswith("20")] == ["WinStack", "WinStack/WinGroup"]
    assert watcher.refreshes.groups == {"g"}


def test_status_of_a_rolled_back_stack_exits_non_zero_with_what_to_do() -> None:
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    stack_id = "arn:aws:cloudformation:us-east-1:1:stack/ww-back/1"
    failed = _event(stack_id, 1, "WinGroup", "UPDATE_FAILED", "AWS::AutoScaling::AutoScalingGroup", "g")
    failed["ResourceStatusReason"] = "Group did not stabilize"
    with Stubber(client) as stub:
        stack = {"StackName": "ww-back", "StackId": stack_id, "CreationTime": NOW}
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}]})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("describe_stack_events", {"StackEvents": [failed]})
        started = _event(stack_id, 0, "ww-back", "UPDATE_IN_PROGRESS", "AWS::CloudFormation::Stack", stack_id)
        older = _event(stack_id, 9, "WinGroup", "CREATE_FAILED", "AWS::AutoScaling::AutoScalingGroup", "g")
        stub.add_response("describe_stack_events", {"StackEvents": [failed, started, older]})
        with pytest.raises(DeployError) as ended:
            follow(Clients(client, None, None, REGION), "ww-back", poll_seconds=0, echo=[].append)
    assert str(ended.value) == (
        "stack ww-back ended UPDATE_ROLLBACK_COMPLETE: WinGroup UPDATE_FAILED: Group did not stabilize; "
        "the stack is back as it was; fix the cause and run again"
    )


def test_removing_the_group_otherwise_needs_yes_too(aws: Clients, tmp_path: Path) -> None:
    """A template without the group (e.g. an edit, another prefix) removes the fleet: --yes, even in a terminal."""
    _run(aws, "ww-no-group", enabled_parameters())
    edited = json.loads(FEATURE.read_text())
    for name in [n for n, r in edited["Resources"].items() if r["Type"].startswith("AWS::AutoScaling::")]:
        del edited["Resources"][name]
    edited["Resources"] = {
        n: r for n, r in edited["Resources"].items() if "WinGroup" not in json.dumps(r) and "WinBacklog" not in n
    }
    edited["Outputs"] = {}
    template = tmp_path / "no-group.json"
    template.write_text(json.dumps(edited))
    with pytest.raises(DeployError) as refused:
        _run(aws, "ww-no-group", {}, template=template, ask=lambda question: True)
    assert str(refused.value).startswith("it removes the fleet (WinGroup): it deletes ")
    assert "WinGroup" in _logical_ids(aws, "ww-no-group")


def test_ctrl_c_during_a_deploy_says_how_to_attach(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("winworkers.deploy.commands.deploy", interrupted)
    monkeypatch.setattr(deploy_base.Clients, "connect", classmethod(lambda *a, **k: None))
    assert main(["deploy", "--stack-name", "ww-int", "--template", str(FEATURE), *BUCKET_FLAG]) == 130
    assert capsys.readouterr().err == (
        "winworkers deploy: interrupted (a stack operation already started goes on: "
        "follow it with winworkers status --stack-name ww-int)\n"
    )


def test_api_calls_of_a_create_an_update_and_a_no_op(endpoint: str) -> None:
    """A budget: the calls deploy makes (the emulator completes each operation at once, so each wait polls once)."""
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name=REGION)
    calls: list[str] = []

    def counted(name: str) -> Any:
        client = session.client(name, endpoint_url=endpoint)
        client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        return client

    clients = [counted(n) for n in ("cloudformation", "ec2", "s3")]
    refreshes = Refreshes([])
    aws = Clients(*clients, REGION, refreshes, counted)
    with contextlib.suppress(ClientError):  # the module's fixture may have made it
        clients[2].create_bucket(Bucket=TEMPLATE_BUCKET)
    budget = {}
    for step, values in (
        ("create", enabled_parameters()),
        ("update", {"WinMaxSize": "6"}),
        ("same", {"WinMaxSize": "6"}),
    ):
        calls.clear()
        refreshes.calls.clear()
        deploy(aws, "ww-budget", FEATURE, values, poll_seconds=0, echo=[].append, template_bucket=TEMPLATE_BUCKET)
        budget[step] = (len(calls), len(refreshes.calls))
    # (CloudFormation, EC2 and S3 calls; DescribeInstanceRefreshes calls: the pre-check on an update, the
    # baseline before executing (a newer refresh is the update's, followed to its end), one per poll).
    # Each deploy checks the template bucket and uploads the template to it: 2 S3 calls. The preflight:
    # HeadBucket of both buckets, HeadObject of the artifact, GetQueueUrl: 4 calls. The create's events are
    # more than a page (EVENTS_PAGE, 100 as AWS answers: register row 283): its poll reads two pages.
    assert budget == {"create": (17, 2), "update": (19, 4), "same": (10, 1)}
