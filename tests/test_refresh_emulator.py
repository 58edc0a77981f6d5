"""A stack update's refresh, end to end on the emulator (winworkers.emulator, patches 8 to 10):
the feature's custom resource is served by the embedded Lambda code, which calls the
emulator's instance refresh APIs. What moto cannot do (replace instances) is said there.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROOT
from winworkers import ami_refresh
from winworkers.deploy import Clients, DeployError, DeployResult, deploy
from winworkers.renderings import enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
BUCKET = "templates"  # the feature is over the inline limit once its Lambda owns refreshes
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


@pytest.fixture(scope="module")
def client(endpoint: str) -> Any:
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return lambda name: session.client(name, endpoint_url=endpoint)


@pytest.fixture(scope="module")
def aws(client: Any) -> Clients:
    client("s3").create_bucket(Bucket=BUCKET)
    return Clients(client("cloudformation"), client("ec2"), client("s3"), REGION)


def _deploy(aws: Clients, stack: str, parameters: dict[str, str], lines: list[str] | None = None) -> DeployResult:
    echo = lines.append if lines is not None else lambda line: None
    with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON lines
        # yes: these changes start refreshes or remove the feature, which deploy asks about first.
        return deploy(aws, stack, FEATURE, parameters, poll_seconds=0.05, echo=echo, template_bucket=BUCKET, yes=True)


def _group(client: Any, stack: str) -> dict[str, Any]:
    resources = client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    name = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "WinGroup")
    group: dict[str, Any] = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return group


def _refreshes(client: Any, group: dict[str, Any]) -> list[dict[str, Any]]:
    name = group["AutoScalingGroupName"]
    found: list[dict[str, Any]] = client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=name)[
        "InstanceRefreshes"
    ]
    return found


def _scheduled_run(client: Any) -> dict[str, Any]:
    """The weekly run, as the deployed function would make it: its environment, but a test
    AMI parameter (moto refuses names under /aws/), whose image no instance runs."""
    function = next(f for f in client("lambda").list_functions()["Functions"] if "RefreshFunction" in f["FunctionName"])
    # Lambda hands a function its environment as strings (moto may keep a parsed Number).
    variables = {k: str(v) for k, v in function["Environment"]["Variables"].items()}
    env = {**variables, "AMI_PARAMETER": "/test/windows-ami"}
    client("ssm").put_parameter(Name="/test/windows-ami", Value="ami-0123456789abcdef0", Type="String", Overwrite=True)
    clients = {n: client(n) for n in ("ssm", "autoscaling", "ec2", "cloudformation")}
    with contextlib.redirect_stdout(io.StringIO()):
        return ami_refresh.run(SCHEDULED, env, clients)


def test_a_stack_update_starts_one_refresh_and_nothing_collides_with_it(aws: Clients, client: Any) -> None:
    stack = "ww-refresh"
    parameters = enabled_parameters(S3PrefixListId="", MinSize="1")
    assert _deploy(aws, stack, parameters).status == "CREATE_COMPLETE"
    group = _group(client, stack)
    assert _refreshes(client, group) == []  # a new group's instances are current
    assert group["LaunchTemplate"]["Version"] == "1"

    # Something the workers run with changes, here a new build of the worker (only cfn-init's
    # Metadata reads it, and the UserData's configuration line carries it into the launch
    # template data): a new launch template version, one refresh.
    lines: list[str] = []
    parameters = {**parameters, "WinArtifactKey": "windows/worker-service-2.zip"}
    aws.s3.put_object(Bucket="example-platform-artifacts", Key="windows/worker-service-2.zip", Body=b"PK")  # preflight
    assert _deploy(aws, stack, parameters, lines).status == "UPDATE_COMPLETE"
    group = _group(client, stack)
    assert group["LaunchTemplate"]["Version"] == "2"
    (refresh,) = _refreshes(client, group)
    assert refresh["Status"] == "InProgress" and "DesiredConfiguration" not in refresh
    assert "SkipMatching" not in refresh["Preferences"] and refresh["Preferences"]["MaxHealthyPercentage"] == 200
    updated = [line.split()[1] for line in lines if line.split()[2:3] == ["UPDATE_COMPLETE"]]
    assert updated.index("WinGroup") < updated.index("WinFleetRefresh")  # after the group

    # The second trigger while it runs: the weekly run starts none.
    result = _scheduled_run(client)
    assert (result["action"], result["instance_refresh_id"]) == ("refresh-in-progress", refresh["InstanceRefreshId"])
    assert result["outdated_instances"]  # it would have started one otherwise

    # winworkers deploy names the active refresh before it changes anything, and refuses.
    watched = Clients(aws.cloudformation, aws.ec2, aws.s3, REGION, client("autoscaling"))
    template_before = client("cloudformation").get_template(StackName=stack)["TemplateBody"]
    with pytest.raises(DeployError) as named:
        deploy(watched, stack, FEATURE, {"WinMaxSize": "6"}, poll_seconds=0.05, echo=[].append, template_bucket=BUCKET)
    assert str(named.value).startswith(
        f"instance refresh {refresh['InstanceRefreshId']} of {group['AutoScalingGroupName']} is InProgress"
    )
    assert client("cloudformation").get_template(StackName=stack)["TemplateBody"] == template_before
    assert _group(client, stack)["MaxSize"] == 4  # nothing changed

    # Without that pre-check (another tool, or the console), an update that changes nothing the
    # workers run with is not blocked by the refresh.
    assert _deploy(aws, stack, {**parameters, "WinMaxSize": "6"}).status == "UPDATE_COMPLETE"
    # One that does fails, names the active refresh, and rolls back without failing again.
    lines.clear()
    with pytest.raises(DeployError) as failed:
        _deploy(aws, stack, {**parameters, "WinInstanceType": "m6i.2xlarge"}, lines)
    assert str(failed.value) == (
        f"stack {stack} ended UPDATE_ROLLBACK_COMPLETE: WinFleetRefresh UPDATE_FAILED: instance refresh "
        f"{refresh['InstanceRefreshId']} of {group['AutoScalingGroupName']} is InProgress (0% done): "
        "wait for it or cancel it, then retry; the stack is back as it was; fix the cause and run again"
    )
    rollback = lines[next(i for i, line in enumerate(lines) if "UPDATE_ROLLBACK_IN_PROGRESS" in line) :]
    assert any(line.split()[1:3] == ["WinFleetRefresh", "UPDATE_COMPLETE"] for line in rollback)
    assert [r["InstanceRefreshId"] for r in _refreshes(client, group)] == [refresh["InstanceRefreshId"]]

    # Once it is cancelled, the same update goes through with a refresh of its own.
    client("autoscaling").cancel_instance_refresh(AutoScalingGroupName=group["AutoScalingGroupName"])
    assert _deploy(aws, stack, {**parameters, "WinInstanceType": "m6i.2xlarge"}).status == "UPDATE_COMPLETE"
    assert [r["Status"] for r in _refreshes(client, group)] == ["InProgress", "Cancelled"]

    # While the stack works, the weekly run waits; deleting it asks the function nothing it fails.
    cloudformation = client("cloudformation")
    assert _scheduled_run(client)["action"] == "refresh-in-progress"
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends["123456789012"][REGION]
    backend.get_stack(stack).status = "UPDATE_IN_PROGRESS"
    assert _scheduled_run(client)["action"] == "stack-busy"
    backend.get_stack(stack).status = "UPDATE_COMPLETE"
    cloudformation.delete_stack(StackName=stack)
    statuses = {s["StackName"]: s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"]}
    assert statuses[stack] == "DELETE_COMPLETE"


def test_the_refresh_api_keeps_one_active_refresh_per_group(client: Any) -> None:
    ec2, scaling = client("ec2"), client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    for name, image in (("concrete", "ami-12c6146b"), ("parameter", "resolve:ssm:/aws/service/x")):
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": image})
        template = {"LaunchTemplateName": name, "Version": "1"}
        scaling.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate=template, MinSize=0, MaxSize=1, VPCZoneIdentifier=subnet
        )
    first = scaling.start_instance_refresh(AutoScalingGroupName="concrete")["InstanceRefreshId"]
    with pytest.raises(ClientError, match="InstanceRefreshInProgress"):
        scaling.start_instance_refresh(AutoScalingGroupName="concrete")
    assert scaling.start_instance_refresh(AutoScalingGroupName="parameter")["InstanceRefreshId"] != first
    assert scaling.cancel_instance_refresh(AutoScalingGroupName="concrete")["InstanceRefreshId"] == first
    with pytest.raises(ClientError, match="ActiveInstanceRefreshNotFound"):
        scaling.cancel_instance_refresh(AutoScalingGroupName="concrete")
    desired = {"LaunchTemplate": {"LaunchTemplateName": "concrete", "Version": "1"}}
    second = scaling.start_instance_refresh(
        AutoScalingGroupName="concrete", DesiredConfiguration=desired, Preferences={"SkipMatching": True}
    )["InstanceRefreshId"]
    listed = scaling.describe_instance_refreshes(AutoScalingGroupName="concrete")["InstanceRefreshes"]
    assert [r["InstanceRefreshId"] for r in listed] == [second, first]  # newest first
    assert listed[0]["Preferences"]["SkipMatching"] is True and listed[0]["DesiredConfiguration"] == desired
    # AWS refuses both while the image is a Systems Manager parameter (Auto Scaling user guide).
    scaling.cancel_instance_refresh(AutoScalingGroupName="parameter")
    for asked in ({"Preferences": {"SkipMatching": True}}, {"DesiredConfiguration": desired}):
        with pytest.raises(ClientError, match="ValidationError"):
            scaling.start_instance_refresh(AutoScalingGroupName="parameter", **asked)


def test_switching_the_feature_off_deletes_the_custom_resource_with_it(aws: Clients, client: Any) -> None:
    # moto may delete the function before the custom resource (CloudFormation would not): its
    # Delete still runs the function's code, and succeeds; so does deleting the stack afterwards.
    stack = "ww-switch"
    parameters = enabled_parameters(S3PrefixListId="")
    assert _deploy(aws, stack, parameters).status == "CREATE_COMPLETE"
    lines: list[str] = []
    assert _deploy(aws, stack, {**parameters, "EnableWinTaskScriptService": "false"}, lines).status == "UPDATE_COMPLETE"
    assert any(line.split()[1:3] == ["WinFleetRefresh", "DELETE_COMPLETE"] for line in lines)
    cloudformation = client("cloudformation")
    cloudformation.delete_stack(StackName=stack)
    statuses = {s["StackName"]: s["StackStatus"] for s in cloudformation.list_stacks()["StackSummaries"]}
    assert statuses[stack] == "DELETE_COMPLETE"


def test_a_windows_version_change_refreshes_once_though_it_updates_the_function_too(aws: Clients, client: Any) -> None:
    # The new AMI parameter reaches the launch template and the refresh function's environment in
    # the same update; the custom resource must still be served (moto keeps an updated function's
    # inline code as text, not as a zip).
    stack = "ww-version"
    parameters = enabled_parameters(S3PrefixListId="", MinSize="1")
    assert _deploy(aws, stack, parameters).status == "CREATE_COMPLETE"
    assert _deploy(aws, stack, {**parameters, "WinWindowsVersion": "2022"}).status == "UPDATE_COMPLETE"
    (refresh,) = _refreshes(client, _group(client, stack))
    assert refresh["Status"] == "InProgress"


def test_a_start_whose_answer_was_lost_is_the_update_s_refresh(client: Any) -> None:
    # Auto Scaling (the emulator) starts the refresh but its answer is lost (a read timeout);
    # botocore's standard retry sends the start again and gets InstanceRefreshInProgress, for
    # the refresh this same request started: the update succeeds naming it, and a second
    # delivery of the request answers the same (docs/aws-behaviours.md, row 197).
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    from winworkers import emulator

    ec2, scaling = client("ec2"), client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="lost", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    template = {"LaunchTemplateName": "lost", "Version": "1"}
    scaling.create_auto_scaling_group(
        AutoScalingGroupName="lost", LaunchTemplate=template, MinSize=0, MaxSize=1, VPCZoneIdentifier=subnet
    )
    body = '{"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}'
    stack = client("cloudformation").create_stack(StackName="ww-lost", TemplateBody=body)["StackId"]
    from moto.cloudformation.models import cloudformation_backends

    # As CloudFormation's stack is while it sends a resource its Update (row 211).
    cloudformation_backends["123456789012"][REGION].get_stack(stack).status = "UPDATE_IN_PROGRESS"
    clients = {n: client(n) for n in ("autoscaling", "cloudformation")}
    sent: list[int] = []

    def answer_lost(request: Any, **_: Any) -> None:
        sent.append(URLLib3Session().send(request).status_code)  # it reaches Auto Scaling...
        if len(sent) == 1:
            raise ReadTimeoutError(endpoint_url=request.url)  # ...but its first answer never comes back

    clients["autoscaling"].meta.events.register("before-send.auto-scaling.StartInstanceRefresh", answer_lost)
    endpoint = client("cloudformation").meta.endpoint_url
    old = {"GroupName": "lost", "LaunchTemplateId": "lt-1", "LaunchTemplateVersion": "1", "Subnets": [subnet]}
    event = {
        "RequestType": "Update",
        "ResponseURL": f"{endpoint}/cloudformation_{REGION}/cfnresponse?stack=ww-lost",
        "StackId": stack,
        "RequestId": "lost-request",
        "LogicalResourceId": "WinFleetRefresh",
        "PhysicalResourceId": "lost-refresh",
        "ResourceProperties": {**old, "LaunchTemplateVersion": "2"},
        "OldResourceProperties": old,
    }
    for _delivery in (1, 2):
        with contextlib.redirect_stdout(io.StringIO()):
            ami_refresh.on_stack_event(event, {"ASG_NAME": "lost"}, clients)
        answer = emulator._responses.pop("lost-request")
        (refresh,) = client("autoscaling").describe_instance_refreshes(AutoScalingGroupName="lost")["InstanceRefreshes"]
        assert (answer["Status"], answer["Data"]) == ("SUCCESS", {"InstanceRefreshId": refresh["InstanceRefreshId"]})
    assert sent == [200, 400]  # started, then refused as in progress; the second delivery starts nothing
