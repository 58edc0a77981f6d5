"""`winworkers deploy` and `winworkers delete` against the local AWS emulator
(`winworkers.emulator`: moto's server with the gaps the templates fall into filled).

The emulator drops resources whose Condition is false, on create and update, as
CloudFormation does; the disabled case is also judged by evaluating Conditions
(test_build.py).
"""

from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from conftest import BUCKET_FLAG, ROOT, TEMPLATE_BUCKET
from winworkers import WorkersConfig, build_template
from winworkers.cli import main
from winworkers.config import WINDOWS_VERSIONS
from winworkers.constraints import check_inputs
from winworkers.deploy import (
    Clients,
    DeployError,
    DeployResult,
    check,
    delete,
    deploy,
    load_template,
    prefix_lists_to_fill,
)
from winworkers.emulator import ENVIRONMENT, EmulatorError, local_aws
from winworkers.network import ENDPOINTS
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters
from winworkers.templates import FEATURE_BUDGET, render

# moto warns about each resource type its CloudFormation does not model (alarms, scaling policies).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
NOW = datetime.now(UTC)
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  (\S+) +([A-Z_]+) *(.*)$")


class Output(list[str]):
    """What deploy echoes, line by line."""

    def events(self) -> list[tuple[str, str, str]]:
        return [m.groups() for line in self if (m := EVENT_LINE.match(line))]  # type: ignore[misc]


def _deploy(aws: Clients, name: str, template: Path, parameters: dict[str, str], **kwargs: Any) -> DeployResult:
    kwargs.setdefault("echo", Output().append)
    kwargs.setdefault("template_bucket", TEMPLATE_BUCKET)
    return deploy(aws, name, template, parameters, poll_seconds=0.05, **kwargs)


def _stacks(aws: Clients) -> set[str]:
    summaries = aws.cloudformation.list_stacks()["StackSummaries"]
    return {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"}


def _network(aws: Clients, mode: str) -> dict[str, str]:
    if not mode.startswith("existing"):
        return {}
    ec2 = aws.ec2
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    return {"VpcId": vpc, "SubnetIds": ",".join(subnets)}


def _resources(aws: Clients, stack: str) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return summaries


def _group(aws: Clients, endpoint: str, stack: str) -> dict[str, Any]:
    name = next(r["PhysicalResourceId"] for r in _resources(aws, stack) if r["LogicalResourceId"] == "WinGroup")
    autoscaling = boto3.client(
        "autoscaling", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    group: dict[str, Any] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][
        0
    ]
    return group


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Deploys and updates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_feature_deploys_updates_and_deletes_in_every_mode(aws: Clients, endpoint: str, mode: str) -> None:
    stack = f"ww-{mode}"
    parameters = enabled_parameters(mode=mode, S3PrefixListId="", **_network(aws, mode))
    output = Output()
    created = _deploy(aws, stack, FEATURE, parameters, echo=output.append)
    assert (created.status, created.changed) == ("CREATE_COMPLETE", True)
    assert set(created.resources) == {"CREATE_COMPLETE"}
    # The region's prefix list was looked up and passed.
    (listed,) = aws.ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{REGION}.s3"]}]
    )["PrefixLists"]
    described = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert passed["WinS3PrefixListId"] == listed["PrefixListId"]
    # Events streamed, one line each, oldest first.
    events = output.events()
    assert ("WinGroup", "CREATE_COMPLETE", "") in events and ("WinLaunchTemplate", "CREATE_COMPLETE", "") in events
    assert events[-1][:2] == (stack, "CREATE_COMPLETE")  # its reason lists what the emulator could not create
    assert events.index(("WinInstanceRole", "CREATE_COMPLETE", "")) < events.index(("WinGroup", "CREATE_COMPLETE", ""))

    group = _group(aws, endpoint, stack)
    assert (group["MinSize"], group["MaxSize"]) == (0, 4)
    template_id = group["LaunchTemplate"]["LaunchTemplateId"]
    data = aws.ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"][0][
        "LaunchTemplateData"
    ]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and "KeyName" not in data
    resources = _resources(aws, stack)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    vpc = physical["WinVpc"] if mode.startswith("isolated") else parameters["WinVpcId"]
    endpoints = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::EC2::VPCEndpoint"]
    # existing-subnets: the platform's VPC provides the endpoints (winworkers/network.py).
    always = [row for row in ENDPOINTS if not row.condition]  # an optional row is counted under its condition
    assert len(endpoints) == (0 if mode.startswith("existing") else len(always))
    if endpoints:  # in the workers' VPC, whichever mode chose it
        found = aws.ec2.describe_vpc_endpoints(VpcEndpointIds=endpoints)["VpcEndpoints"]
        assert {e["VpcId"] for e in found} == {vpc}
    if mode.startswith("isolated"):
        gateways = aws.ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
        assert gateways["InternetGateways"] == []
        tables = aws.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
        routes = [r.get("DestinationCidrBlock") for t in tables for r in t["Routes"]]
        assert "0.0.0.0/0" not in routes

    output.clear()
    updated = _deploy(aws, stack, FEATURE, {**parameters, "WinMinSize": "1", "WinMaxSize": "6"}, echo=output.append)
    assert updated.status == "UPDATE_COMPLETE"
    assert (_group(aws, endpoint, stack)["MinSize"], _group(aws, endpoint, stack)["MaxSize"]) == (1, 6)
    assert ("WinGroup", "UPDATE_COMPLETE", "") in output.events()

    output.clear()
    assert delete(aws, stack, poll_seconds=0.05, echo=output.append, yes=True)
    assert stack not in _stacks(aws)
    assert output[-1] == f"stack {stack}: DELETE_COMPLETE"
    assert ("WinGroup", "DELETE_COMPLETE", "") in output.events()
    if mode.startswith("isolated"):  # the whole VPC went with it
        assert not aws.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"]


def test_redeploying_the_same_inputs_changes_nothing(aws: Clients) -> None:
    parameters = enabled_parameters(mode="isolated-2az")
    _deploy(aws, "ww-idempotent", FEATURE, parameters)
    output = Output()
    again = _deploy(aws, "ww-idempotent", FEATURE, parameters, echo=output.append)
    assert (again.changed, again.status) == (False, "CREATE_COMPLETE")
    assert output == [
        "preflight: WinWorkQueueArn, WinDataBucket, WinArtifactBucket, WinArtifactKey: there, in us-east-1",
        "no changes: stack ww-idempotent is already as asked (CREATE_COMPLETE)",
    ]
    assert not output.events()


def test_a_parameter_left_out_keeps_its_previous_value(aws: Clients, endpoint: str) -> None:
    """issue 21: `deploy --parameter WinMaxSize=6` changes WinMaxSize, and nothing else."""
    parameters = enabled_parameters(mode="isolated-2az", InstanceType="c7i.xlarge")
    _deploy(aws, "ww-kept", FEATURE, parameters)
    output = Output()
    updated = _deploy(aws, "ww-kept", FEATURE, {"WinMaxSize": "6"}, echo=output.append)
    assert updated.status == "UPDATE_COMPLETE"
    described = aws.cloudformation.describe_stacks(StackName="ww-kept")["Stacks"][0]
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert (passed[SWITCH], passed["WinInstanceType"], passed["WinMaxSize"]) == ("true", "c7i.xlarge", "6")
    group = _group(aws, endpoint, "ww-kept")
    assert group["MaxSize"] == 6
    data = aws.ec2.describe_launch_template_versions(LaunchTemplateId=group["LaunchTemplate"]["LaunchTemplateId"])
    assert data["LaunchTemplateVersions"][0]["LaunchTemplateData"]["InstanceType"] == "c7i.xlarge"
    # The preview names the one parameter that changes, and the group it modifies; nothing is removed.
    assert "  parameter WinMaxSize: '4' -> '6'" in output
    assert [line for line in output if line.startswith("  modify   WinGroup ")]
    assert not [line for line in output if line.startswith(("  remove", "  replace", "  parameter WinInstance"))]


def test_reset_to_defaults_names_each_value_it_changes(aws: Clients) -> None:
    parameters = enabled_parameters(mode="isolated-2az", MaxSize="6")
    _deploy(aws, "ww-reverted", FEATURE, parameters)
    output = Output()
    kept = {k: v for k, v in parameters.items() if k != "WinMaxSize"}
    _deploy(aws, "ww-reverted", FEATURE, kept, echo=output.append, reset_to_defaults=True)
    assert "WinMaxSize: back to its default '4' (was '6')" in output
    described = aws.cloudformation.describe_stacks(StackName="ww-reverted")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}["WinMaxSize"] == "4"


def _example_parameters(aws: Clients, template: Path, switch: str) -> dict[str, str]:
    """Enabled example values for the parameters ``template`` declares, the nested child uploaded."""
    declared = json.loads(template.read_text())["Parameters"]
    parameters = {k: v for k, v in enabled_parameters().items() if k in declared}
    if "WinTemplateUrl" in declared:
        aws.s3.create_bucket(Bucket="templates")
        aws.s3.put_object(Bucket="templates", Key="winworkers.json", Body=FEATURE.read_bytes())
        parameters["WinTemplateUrl"] = f"https://templates.s3.{REGION}.amazonaws.com/winworkers.json"
    return {**parameters, SWITCH: switch}


def _feature_resources(aws: Clients, stack: str) -> list[str]:
    """The feature's resources in ``stack``, its nested stack's included."""
    found = []
    for resource in _resources(aws, stack):
        if resource["ResourceType"] == "AWS::CloudFormation::Stack":
            found += [
                f"{resource['LogicalResourceId']}/{r}" for r in _feature_resources(aws, resource["PhysicalResourceId"])
            ]
        elif resource["LogicalResourceId"].startswith("Win"):
            found.append(resource["LogicalResourceId"])
    return found


def test_the_feature_deployed_disabled_creates_only_the_standing_resource(aws: Clients) -> None:
    # The switch off: a stack with one resource that costs nothing (register row 203), created.
    created = _deploy(aws, "ww-off", FEATURE, {})
    assert (created.status, set(created.resources)) == ("CREATE_COMPLETE", {"CREATE_COMPLETE"})
    (standing,) = _resources(aws, "ww-off")
    assert (standing["LogicalResourceId"], standing["ResourceType"]) == (
        "WinStanding",
        "AWS::CloudFormation::WaitConditionHandle",
    )
    assert standing["PhysicalResourceId"].startswith("https://")


@pytest.mark.parametrize("example", ["parent-inline.json", "parent-nested.json"])
def test_each_example_parent_deploys_and_the_switch_removes_the_feature(aws: Clients, example: str) -> None:
    template = ROOT / "templates" / example
    stack = example.removesuffix(".json")
    created = _deploy(aws, stack, template, _example_parameters(aws, template, "true"))
    assert (created.status, set(created.resources)) == ("CREATE_COMPLETE", {"CREATE_COMPLETE"})
    names = _feature_resources(aws, stack)
    assert any(name.endswith("WinGroup") for name in names), names
    # The same example with the switch off on an update: the feature goes, the platform stays.
    updated = _deploy(aws, stack, template, _example_parameters(aws, template, "false"), yes=True)
    assert updated.status == "UPDATE_COMPLETE"
    assert _feature_resources(aws, stack) == []
    assert {r["LogicalResourceId"] for r in _resources(aws, stack)} == {"WorkQueue", "DataBucket"}


# Refused before any call -----------------------------------------------------------------------------------------


class NoAws:
    """A client that fails the test if anything is called on it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"AWS was called: {name}")


REFUSED = [
    (
        "WinWindowsVersion=2016",
        f"WinWindowsVersion='2016' is not allowed: one of {', '.join(row.version for row in WINDOWS_VERSIONS)}",
    ),
    ("WinMaxSize=101", "WinMaxSize='101' is not allowed: a number from 0 to 100"),
    (f"{SWITCH}=TRUE", f"{SWITCH}='TRUE' is not allowed: one of true, false (case-sensitive)"),
    ("WinLogRetentionDays=10", "WinLogRetentionDays='10' is not allowed: one of 1, 3, 5, 7, 14, 30, 60, 90, 120,"),
    ("WinDataBucket=Acme_Data", "WinDataBucket='Acme_Data' is not allowed: an S3 bucket name (pattern ^([a-z0-9]"),
    ("WinMinSize=two", "WinMinSize='two' is not a number"),
    ("WinVpcCidr=10.0.0.1/16", "WinVpcCidr='10.0.0.1/16' is not a network address: host bits are set"),
    ("WinVpcCidr=999.1.1.1/16", "WinVpcCidr='999.1.1.1/16' is not a CIDR block: 999.1.1.1 is not an IP address"),
    ("WinSubnetIds=subnet-0a1b2c3d4e5f67890,sub", "WinSubnetIds item 'sub' is not allowed: subnet ids (pattern"),
    ("WinNoSuchThing=1", "WinNoSuchThing is not a parameter of this template"),
    ("WinMinSize=5", "the template's Rules refuse these values: WinCapacityOrder: WinMinSize <= WinDesiredCapacity"),
]


@pytest.mark.parametrize(("assignment", "message"), REFUSED, ids=[a for a, _ in REFUSED])
def test_bad_values_are_refused_in_one_line_before_any_call(
    aws: Clients, endpoint: str, cli_env: None, capsys: pytest.CaptureFixture[str], assignment: str, message: str
) -> None:
    key, _, value = assignment.partition("=")
    values = {**enabled_parameters(), key: value}
    if message.startswith("the template's Rules"):
        # The Rules need the stack's values for the parameters not given: one read, nothing more.
        client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        with Stubber(client) as stub, pytest.raises(DeployError) as refused:
            stub.add_client_error("describe_stacks", "ValidationError", "Stack with id ww-bad does not exist")
            clients = Clients(client, NoAws(), NoAws(), REGION, NoAws())
            deploy(clients, "ww-bad", FEATURE, values, template_bucket=TEMPLATE_BUCKET)
        stub.assert_no_pending_responses()
    else:
        with pytest.raises(DeployError) as refused:
            clients = Clients(NoAws(), NoAws(), NoAws(), REGION, NoAws())
            deploy(clients, "ww-bad", FEATURE, values, template_bucket=TEMPLATE_BUCKET)
    assert str(refused.value).startswith(message)

    flags = [f for k, v in values.items() for f in ("--parameter", f"{k}={v}")]
    argv = [
        "deploy",
        "--stack-name",
        "ww-bad",
        "--endpoint-url",
        endpoint,
        "--template",
        str(FEATURE),
        *BUCKET_FLAG,
        *flags,
    ]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"winworkers deploy: {message}") and err.count("\n") == 1
    assert out == ""
    assert "ww-bad" not in _stacks(aws)


# The warm pool with Spot, or with more instance types: the CapacityMode Rule, as CloudFormation
# would refuse it, and the pre-check before any call, one line naming both inputs.
WARM_WITH_SPOT = [
    ({"WinOnDemandPercentage": "30"}, "WinWarmPool=stopped cannot be used with Spot: set WinOnDemandPercentage to 100"),
    ({"WinInstanceTypes": "m6a.large,c6i.xlarge"}, "WinWarmPool=stopped cannot be used with mixed instance types"),
]


@pytest.mark.parametrize(("spot", "message"), WARM_WITH_SPOT, ids=["spot", "mixed-types"])
def test_a_warm_pool_with_spot_is_refused_naming_both(
    aws: Clients, endpoint: str, cli_env: None, capsys: pytest.CaptureFixture[str], spot: dict[str, str], message: str
) -> None:
    values = {**enabled_parameters(WarmPool="stopped"), **spot}
    feature = json.loads(FEATURE.read_text())
    (failure,) = check_inputs(feature, values)
    assert failure.startswith(f"WinCapacityMode: {message}") and "WinWarmPool" in failure, failure
    assert set(spot) <= {name for name in feature["Parameters"] if name in failure}
    # Either side alone is allowed, and so is both with the feature off (the Rule's condition).
    assert check_inputs(feature, enabled_parameters(WarmPool="stopped")) == []
    assert check_inputs(feature, {**enabled_parameters(), **spot}) == []
    assert check_inputs(feature, {**values, SWITCH: "false"}) == []
    flags = [f for k, v in values.items() for f in ("--parameter", f"{k}={v}")]
    argv = ["deploy", "--stack-name", "ww-warm-spot", "--endpoint-url", endpoint, "--template", str(FEATURE)]
    assert main([*argv, *BUCKET_FLAG, *flags]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("winworkers deploy: the template's Rules refuse these values: WinCapacityMode: ")
    assert message in err and err.count("\n") == 1 and out == ""
    assert "ww-warm-spot" not in _stacks(aws)


def test_a_warm_pool_with_spot_and_more_types_names_each_conflict(feature: dict[str, Any]) -> None:
    values = enabled_parameters(WarmPool="stopped", OnDemandPercentage="0", InstanceTypes="m5.large")
    failures = check_inputs(feature, values)
    assert [f.split(":")[0] for f in failures] == ["WinCapacityMode", "WinCapacityMode"], failures
    assert "WinOnDemandPercentage" in failures[0] and "WinInstanceTypes" in failures[1]


AGREE = [
    *[enabled_parameters(mode=mode) for mode in MODES],
    *[enabled_parameters(**{key.removeprefix("Win"): value}) for key, value in (a.split("=") for a, _ in REFUSED)],
    enabled_parameters(S3PrefixListId=""),
    enabled_parameters(S3PrefixListId="", DataBucket=""),
    enabled_parameters(S3PrefixListId="", MinSize="3", MaxSize="2"),
    {SWITCH: "true"},
    {SWITCH: "false", "WinS3PrefixListId": ""},
]


@pytest.mark.parametrize("values", AGREE, ids=range(len(AGREE)))
def test_deploy_refuses_exactly_what_check_inputs_reports(feature: dict[str, Any], values: dict[str, str]) -> None:
    """docs/deploy.md's promise: deploy's checks are the library call check_inputs, given the
    prefix lists deploy looks up as filled."""
    problems = check_inputs(feature, values, filled=prefix_lists_to_fill(feature, values))
    if not problems:
        check(feature, values)
        return
    with pytest.raises(DeployError) as refused:
        check(feature, values)
    assert str(refused.value).removeprefix("the template's Rules refuse these values: ") == "; ".join(problems)


def test_a_bad_value_is_refused_without_boto3(tmp_path: Path) -> None:
    """The checks are the library's: nothing of boto3 or moto is needed to refuse."""
    code = (
        "import sys; sys.modules.update(boto3=None, botocore=None, moto=None)\n"
        "from winworkers.cli import main\n"
        "sys.exit(main(['deploy', '--stack-name', 'x', '--parameter', 'WinMinSize=two']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (run.returncode, run.stderr) == (1, "winworkers deploy: WinMinSize='two' is not a number\n")


def test_deploy_without_boto3_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules.update(boto3=None, botocore=None, moto=None)\n"
        "from winworkers.cli import main\n"
        f"sys.exit(main(['deploy', '--stack-name', 'x', '--template-bucket', '{TEMPLATE_BUCKET}']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (run.returncode, run.stderr) == (
        1,
        "winworkers deploy: deploying needs boto3: pip install 'winworkers[deploy]'\n",
    )


def test_a_template_over_the_inline_limit_needs_a_bucket(
    aws: Clients, endpoint: str, cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.json"
    data = {"Metadata": {"Pad": "x" * 52_000}, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}
    big.write_text(json.dumps(data, indent=2))
    size = len(json.dumps(data, separators=(",", ":")))  # what CloudFormation gets: minified
    assert size > 51_200
    assert main(["deploy", "--stack-name", "ww-big", "--template", str(big), "--endpoint-url", endpoint]) == 1
    assert capsys.readouterr().err == (
        f"winworkers deploy: the template is {size:,} bytes, over the 51,200-byte inline limit: "
        "pass --template-bucket BUCKET to deploy it from S3\n"
    )
    assert "ww-big" not in _stacks(aws)
    # With a bucket it goes through S3.
    aws.s3.create_bucket(Bucket="big-templates")
    result = _deploy(aws, "ww-big", big, {}, template_bucket="big-templates")
    assert result.status == "CREATE_COMPLETE"
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket="big-templates")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("winworkers/ww-big-")


# Parameters files ------------------------------------------------------------------------------------------------


def test_parameters_file_in_both_formats_and_flags_override_it(
    aws: Clients, endpoint: str, cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = enabled_parameters(mode="isolated-2az", MaxSize="5")
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]))
    common = ["--endpoint-url", endpoint, "--template", str(FEATURE), "--poll-seconds", "0.05", *BUCKET_FLAG]
    argv = ["deploy", "--stack-name", "ww-file", "--parameters-file", str(listed), "--parameter", "WinMaxSize=3"]
    assert main([*argv, *common]) == 0
    assert "stack ww-file: CREATE_COMPLETE" in capsys.readouterr().out
    assert _group(aws, endpoint, "ww-file")["MaxSize"] == 3

    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({**values, "WinMinSize": 1, "WinMaxSize": 2, "WinSubscribeToAmiReleases": False}))
    assert main(["deploy", "--stack-name", "ww-file", "--parameters-file", str(plain), *common]) == 0
    assert "stack ww-file: UPDATE_COMPLETE" in capsys.readouterr().out
    assert (_group(aws, endpoint, "ww-file")["MinSize"], _group(aws, endpoint, "ww-file")["MaxSize"]) == (1, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes"),
        ('["WinMinSize=1"]', "must be an object of values or a list of"),
        ('{"WinMinSize": {"a": 1}}', "WinMinSize must be a string, a number, a boolean or a list of strings"),
        (
            '[{"ParameterKey": "WinMinSize", "UsePreviousValue": true}]',
            "UsePreviousValue is what winworkers deploy does for every parameter left out",
        ),
    ],
)
def test_a_bad_parameters_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "params.json"
    path.write_text(content)
    assert main(["deploy", "--stack-name", "x", "--parameters-file", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("winworkers deploy: ") and message in err and err.count("\n") == 1


# Failed creations, failed change sets, timeouts ------------------------------------------------------------------

VPC_TEMPLATE = {
    "Parameters": {"Cidr": {"Type": "String"}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": {"Ref": "Cidr"}}, "DependsOn": "Queue"},
    },
}


def test_a_stack_whose_creation_failed_is_deleted_and_created_again(aws: Clients, tmp_path: Path) -> None:
    template = tmp_path / "vpc.json"
    template.write_text(json.dumps(VPC_TEMPLATE))
    output = Output()
    # EC2 refuses a VPC larger than /16; the creation rolls back.
    with pytest.raises(DeployError) as failed:
        _deploy(aws, "ww-rollback", template, {"Cidr": "10.0.0.0/8"}, echo=output.append)
    assert str(failed.value) == (
        "stack ww-rollback ended ROLLBACK_COMPLETE: "
        "Vpc CREATE_FAILED: InvalidVpc.Range: The CIDR '10.0.0.0/8' is invalid.; "
        "nothing was kept; fix the cause and run again (the failed stack is deleted first, asked or with --yes)"
    )
    assert ("Vpc", "CREATE_FAILED", "InvalidVpc.Range: The CIDR '10.0.0.0/8' is invalid.") in output.events()
    assert ("Queue", "DELETE_COMPLETE", "") in output.events()
    first = aws.cloudformation.describe_stacks(StackName="ww-rollback")["Stacks"][0]
    assert first["StackStatus"] == "ROLLBACK_COMPLETE"

    output.clear()
    result = _deploy(aws, "ww-rollback", template, {"Cidr": "10.0.0.0/16"}, echo=output.append, yes=True)
    assert result.status == "CREATE_COMPLETE"
    assert output[0] == (
        "stack ww-rollback is ROLLBACK_COMPLETE (its creation failed; CloudFormation cannot update it): "
        "deleting it to create it again"
    )
    assert output.events().index(("ww-rollback", "DELETE_COMPLETE", "")) < output.events().index(
        ("Vpc", "CREATE_COMPLETE", "")
    )
    second = aws.cloudformation.describe_stacks(StackName="ww-rollback")["Stacks"][0]
    assert second["StackId"] != first["StackId"]


def test_a_failed_change_set_is_one_line_with_its_reason(aws: Clients, tmp_path: Path) -> None:
    template = tmp_path / "q.json"
    template.write_text(json.dumps({"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}))
    _deploy(aws, "ww-cs", template, {})
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    stubbed = Clients(client, NoAws(), NoAws(), REGION)
    summary = aws.cloudformation.describe_stacks(StackName="ww-cs")["Stacks"][0]
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [summary]})
        stub.add_response("create_change_set", {"Id": "arn:cs", "StackId": summary["StackId"]})
        stub.add_response(
            "describe_change_set",
            {"Status": "FAILED", "StatusReason": "Requires capabilities : [CAPABILITY_AUTO_EXPAND]", "Changes": []},
        )
        with pytest.raises(DeployError, match=r"^the change set for ww-cs failed: Requires capabilities : \["):
            _deploy(stubbed, "ww-cs", template, {})
        stub.assert_no_pending_responses()


def test_waiting_stops_at_the_timeout_without_cancelling(aws: Clients) -> None:
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    stack = {"StackName": "slow", "StackId": "arn:aws:cloudformation:us-east-1:1:stack/slow/1", "CreationTime": NOW}
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "CREATE_COMPLETE"}]})
        stub.add_response("get_template", {"TemplateBody": json.dumps({"Resources": {}})})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("delete_stack", {})
        stub.add_response("describe_stack_events", {"StackEvents": []})
        stub.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "DELETE_IN_PROGRESS"}]})
        with pytest.raises(DeployError) as late:
            delete(Clients(client, NoAws(), NoAws(), REGION), "slow", timeout_minutes=0, echo=Output().append, yes=True)
        stub.assert_no_pending_responses()  # and nothing more: no cancel, no further wait
    assert str(late.value) == (
        "stack slow is still DELETE_IN_PROGRESS after 0 minutes; it was not cancelled: CloudFormation carries on. "
        "Follow it with: winworkers status --stack-name slow"
    )


# One-line errors through the command line -----------------------------------------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], command: str = "deploy") -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"winworkers {command}: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err.removeprefix(f"winworkers {command}: ").strip()


def test_cli_errors_are_one_line(
    tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "missing.json")
    assert _one_line_error(capsys, ["deploy", "--stack-name", "x", "--template", missing]) == (
        f"cannot read the template {missing}: No such file or directory"
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"Resources": ')
    assert _one_line_error(capsys, ["deploy", "--stack-name", "x", "--template", str(broken)]).startswith(
        f"the template {broken} is not JSON: Expecting value: line 1 column 15"
    )
    assert _one_line_error(capsys, ["deploy", "--stack-name", "x", "--parameter", "WinMinSize"]) == (
        "--parameter 'WinMinSize': expected Key=Value"
    )
    # Nothing listens on the port; no retries, so it fails at once.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    closed = f"http://127.0.0.1:{_free_port()}"
    for argv, command in (
        (["deploy", "--stack-name", "x", *BUCKET_FLAG], "deploy"),
        (["delete", "--stack-name", "x"], "delete"),
    ):
        assert _one_line_error(capsys, [*argv, "--endpoint-url", closed], command).startswith(
            f'Could not connect to the endpoint URL: "{closed}/"'
        )
    assert _one_line_error(capsys, ["deploy", "--stack-name", "x", "--profile", "nobody", *BUCKET_FLAG]) == (
        "The config profile (nobody) could not be found"
    )
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert _one_line_error(capsys, ["delete", "--stack-name", "x"], "delete") == (
        "no region: pass --region, or set AWS_REGION, AWS_DEFAULT_REGION or a profile's region"
    )


def test_an_aws_error_is_one_line(
    aws: Clients, endpoint: str, cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"Metadata": {"Pad": "x" * 52_000}, "Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}))
    argv = ["deploy", "--stack-name", "ww-nobucket", "--template", str(big), "--endpoint-url", endpoint]
    assert _one_line_error(capsys, [*argv, "--template-bucket", "no-such-bucket"]) == (
        "--template-bucket no-such-bucket: there is no such bucket in this account's reach: create it first "
        "(e.g. winworkers upload --create-bucket), or name another"
    )
    assert "ww-nobucket" not in _stacks(aws)


def test_cli_without_credentials_is_one_line(
    endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    argv = ["deploy", "--stack-name", "x", "--region", REGION, "--endpoint-url", endpoint, *BUCKET_FLAG]
    assert _one_line_error(capsys, argv) == "Unable to locate credentials"


def test_delete_command(aws: Clients, endpoint: str, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    _deploy(aws, "ww-delete", FEATURE, enabled_parameters(mode="isolated-3az"))
    capsys.readouterr()
    argv = ["delete", "--stack-name", "ww-delete", "--endpoint-url", endpoint, "--poll-seconds", "0.05"]
    # Without a terminal (pytest's stdin) and without --yes: refused, nothing deleted.
    assert _one_line_error(capsys, argv, "delete") == (
        "deleting stack ww-delete needs --yes without a terminal: nothing was deleted"
    )
    assert "ww-delete" in _stacks(aws)
    argv.append("--yes")
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "stack ww-delete: DELETE_COMPLETE"
    assert [e for line in out if (e := EVENT_LINE.match(line)) and e.groups()[:2] == ("WinVpc", "DELETE_COMPLETE")]
    assert "ww-delete" not in _stacks(aws)
    # Deleting what is not there is an error (a typo of the name, or another account or region).
    assert _one_line_error(capsys, argv, "delete") == "stack ww-delete does not exist: nothing to delete"


# The emulator ---------------------------------------------------------------------------------------------------


def test_emulator_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = pytest.raises(EmulatorError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use")
        with refused, local_aws(port=port):
            pass  # pragma: no cover
        assert _one_line_error(capsys, ["emulator", "--port", str(port)], "emulator") == (
            f"cannot listen on 127.0.0.1:{port}: Address already in use"
        )


def test_emulator_without_moto_says_what_to_install() -> None:
    code = "import sys; sys.modules.update(moto=None)\nfrom winworkers.cli import main\nsys.exit(main(['emulator']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 1
    assert run.stderr.startswith("winworkers emulator: the emulator needs moto (") and run.stderr.endswith(
        "): pip install 'winworkers[emulator]'\n"
    )


def _readme_demo() -> list[list[str]]:
    """The commands of the emulator walk-through (docs/emulator.md), as argv lists."""
    page = (ROOT / "docs" / "emulator.md").read_text(encoding="utf-8")
    demo = page.split("<!-- emulator-demo:begin -->")[1].split("<!-- emulator-demo:end -->")[0]
    blocks = re.findall(r"```sh\n(.*?)```", demo, flags=re.S)
    return [shlex.split(command) for block in blocks for command in block.replace("\\\n", " ").splitlines()]


def test_the_readme_emulator_walkthrough_works_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _readme_demo()
    assert [c[:2] for c in commands] == [
        ["winworkers", "emulator"],
        ["export", f"AWS_ACCESS_KEY_ID={ENVIRONMENT['AWS_ACCESS_KEY_ID']}"],
        ["winworkers", "upload"],
        *[["winworkers", "deploy"]] * 3,
        *[["winworkers", "delete"]] * 2,
    ]
    # The page's port may be taken on this machine: the same commands on a free one.
    readme_port = commands[0][commands[0].index("--port") + 1]
    port = str(_free_port())
    commands = [[arg.replace(f":{readme_port}", f":{port}") for arg in c] for c in commands]
    commands[0][commands[0].index("--port") + 1] = port
    monkeypatch.chdir(ROOT)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)

    emulator = subprocess.Popen(
        [sys.executable, "-m", "winworkers", *commands[0][1:]], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert emulator.stdout is not None
        first = emulator.stdout.readline()
        assert first == f"Local AWS emulator at http://127.0.0.1:{port}\n"
        printed = [emulator.stdout.readline() for _ in range(3)]
        assert printed[1].strip() == " ".join(commands[1])  # it prints the page's export line
        threading.Thread(target=emulator.stdout.read, daemon=True).start()  # keep its pipe from filling up
        for assignment in commands[1][1:]:
            name, _, value = assignment.partition("=")
            monkeypatch.setenv(name, value)
        session = boto3.session.Session(region_name=REGION)
        url = f"http://127.0.0.1:{port}"
        aws = Clients(*(session.client(n, endpoint_url=url) for n in ("cloudformation", "ec2", "s3")), REGION)

        steps = iter(commands[2:])
        assert main(next(steps)[1:]) == 0  # the child's upload prints the URL the nested step passes
        url = capsys.readouterr().out.strip()
        assert main(next(steps)[1:]) == 0
        assert "stack platform-inline: CREATE_COMPLETE" in capsys.readouterr().out
        assert any(name.endswith("WinGroup") for name in _feature_resources(aws, "platform-inline"))
        assert main(next(steps)[1:]) == 0  # the switch off
        assert "stack platform-inline: UPDATE_COMPLETE" in capsys.readouterr().out
        assert _feature_resources(aws, "platform-inline") == []
        nested = next(steps)
        assert f"WinTemplateUrl={url}" in nested
        assert main(nested[1:]) == 0
        assert "stack platform-nested: CREATE_COMPLETE" in capsys.readouterr().out
        assert [n for n in _feature_resources(aws, "platform-nested") if n.endswith("/WinGroup")]
        for stack in ("platform-inline", "platform-nested"):
            assert main(next(steps)[1:]) == 0
            assert capsys.readouterr().out.splitlines()[-1] == f"stack {stack}: DELETE_COMPLETE"
        # Nothing left behind (issue 26): no live stack, group or queue of theirs, even after a DescribeStacks.
        for summary in aws.cloudformation.list_stacks()["StackSummaries"]:
            aws.cloudformation.describe_stacks(StackName=summary["StackId"])
        summaries = aws.cloudformation.list_stacks()["StackSummaries"]
        assert {s["StackName"] for s in summaries if s["StackStatus"] != "DELETE_COMPLETE"} == set()
        groups = session.client("autoscaling", endpoint_url=f"http://127.0.0.1:{port}").describe_auto_scaling_groups()[
            "AutoScalingGroups"
        ]
        queues = session.client("sqs", endpoint_url=f"http://127.0.0.1:{port}").list_queues().get("QueueUrls", [])
        assert (groups, [q for q in queues if q.rsplit("/", 1)[1].startswith("platform-")]) == ([], [])
    finally:
        emulator.terminate()
        emulator.wait()


def test_the_region_comes_from_aws_region_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    clients = Clients.connect()
    assert (clients.region, clients.cloudformation.meta.region_name) == ("eu-west-1", "eu-west-1")
    assert Clients.connect(region="ap-south-1").ec2.meta.region_name == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert Clients.connect().s3.meta.region_name == "us-east-1"


def test_upload_prints_the_url_and_fails_in_one_line(
    endpoint: str, cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    common = ["--endpoint-url", endpoint, "--bucket", "ww-upload-test"]
    assert main(["upload", str(FEATURE), *common]) == 1  # no such bucket, and none created unasked
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["upload", str(FEATURE), *common, "--create-bucket", "--key", "a/child.json"]) == 0
    assert capsys.readouterr().out == f"https://ww-upload-test.s3.{REGION}.amazonaws.com/a/child.json\n"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    assert (
        s3.get_object(Bucket="ww-upload-test", Key="a/child.json")["Body"].read()
        == json.dumps(json.loads(FEATURE.read_text()), separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert main(["upload", str(tmp_path / "missing.json"), *common]) == 1
    assert "cannot read the template" in capsys.readouterr().err


def test_a_thousand_worker_fleet_deploys(aws: Clients, endpoint: str, tmp_path: Path) -> None:
    template = tmp_path / "winworkers-1000.json"
    template.write_text(render(build_template(WorkersConfig(max_fleet_size=1000))), encoding="utf-8")
    assert len(load_template(template)[1].encode()) <= FEATURE_BUDGET  # through S3, within the budget
    created = _deploy(aws, "ww-1000", template, enabled_parameters(MaxSize="1000", DesiredCapacity="0"))
    assert created.status == "CREATE_COMPLETE"
    assert (_group(aws, endpoint, "ww-1000")["MaxSize"], _group(aws, endpoint, "ww-1000")["DesiredCapacity"]) == (
        1000,
        0,
    )


def test_a_parent_s_own_switch_decides_the_prefix_list_lookup() -> None:
    """A parent that embeds the feature under its own switch (add_to switch=) needs the S3
    prefix list looked up while that switch is on: the Rule requires WinS3PrefixListId then."""
    from troposphere import Parameter, Template

    from winworkers.build import add_to

    parent = Template()
    parent.add_parameter(
        Parameter("EnableWindowsFleet", Type="String", Default="false", AllowedValues=["true", "false"])
    )
    add_to(parent, switch="EnableWindowsFleet")
    template = json.loads(parent.to_json())
    assert prefix_lists_to_fill(template, {"EnableWindowsFleet": "true"}) == ["WinS3PrefixListId"]
    assert prefix_lists_to_fill(template, {"EnableWindowsFleet": "false"}) == []
    assert prefix_lists_to_fill(template, {"EnableWindowsFleet": "true", "WinS3PrefixListId": "pl-63a5400a"}) == []


def test_endpoint_azs_one_then_all_updates_the_endpoints_in_place(aws: Clients) -> None:
    """EndpointAzs: the interface endpoints in the first AZ, then in all three, on one stack;
    the endpoints keep their ids (SubnetIds is not create-only) and so do the group and subnets."""
    stack = "ww-endpoint-azs"
    parameters = enabled_parameters(mode="isolated-3az-endpoints-1az", S3PrefixListId="")
    _deploy(aws, stack, FEATURE, parameters)

    def state() -> tuple[dict[str, str], dict[str, set[str]]]:
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in _resources(aws, stack)}
        endpoints = [physical[f"Win{n}Endpoint"] for n in ("Sqs", "Logs", "Autoscaling")]
        found = aws.ec2.describe_vpc_endpoints(VpcEndpointIds=endpoints)["VpcEndpoints"]
        return physical, {e["VpcEndpointId"]: set(e["SubnetIds"]) for e in found}

    before, one = state()
    first = before["WinSubnetA"]
    assert one and all(s == {first} for s in one.values()), one
    updated = _deploy(aws, stack, FEATURE, {**parameters, "WinEndpointAzs": "all"})
    assert updated.status == "UPDATE_COMPLETE"
    after, every = state()
    subnets = {after[f"WinSubnet{x}"] for x in "ABC"}
    assert all(s == subnets for s in every.values()), every
    kept = [f"Win{n}Endpoint" for n in ("Sqs", "Logs", "Autoscaling")] + ["WinGroup", "WinSubnetA", "WinVpc"]
    assert {n: after[n] for n in kept} == {n: before[n] for n in kept}


def test_the_warm_pool_mode_deploys_resizes_and_goes_with_its_switch(aws: Clients, endpoint: str) -> None:
    # WarmPool=stopped creates the pool (through moto's backend, emulator patch 11), a size change
    # updates it in place, and WarmPool=off deletes it; the group stays throughout.
    stack = "ww-warm-pool"
    parameters = enabled_parameters(mode="isolated-2az", S3PrefixListId="", WarmPool="stopped")
    created = _deploy(aws, stack, FEATURE, parameters)
    assert (created.status, set(created.resources)) == ("CREATE_COMPLETE", {"CREATE_COMPLETE"})
    autoscaling = boto3.client(
        "autoscaling", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    group = _group(aws, endpoint, stack)["AutoScalingGroupName"]
    pool = autoscaling.describe_warm_pool(AutoScalingGroupName=group)["WarmPoolConfiguration"]
    assert pool == {
        "MaxGroupPreparedCapacity": -1,
        "MinSize": 1,
        "PoolState": "Stopped",
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    }
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in _resources(aws, stack)}
    assert physical["WinGroupWarmPool"] == group

    resized = _deploy(aws, stack, FEATURE, {**parameters, "WinWarmPoolMinSize": "2", "WinWarmPoolMaxPrepared": "3"})
    assert resized.status == "UPDATE_COMPLETE"
    pool = autoscaling.describe_warm_pool(AutoScalingGroupName=group)["WarmPoolConfiguration"]
    assert (pool["MinSize"], pool["MaxGroupPreparedCapacity"]) == (2, 3)

    # Removing the pool (its stopped instances terminated) and the UserData's switch back to the
    # cold script (a new launch template version, so a refresh) are what deploy asks to confirm.
    off = _deploy(aws, stack, FEATURE, {**parameters, "WinWarmPool": "off"}, yes=True)
    assert off.status == "UPDATE_COMPLETE"
    assert "WinGroupWarmPool" not in {r["LogicalResourceId"] for r in _resources(aws, stack)}
    assert "WarmPoolConfiguration" not in autoscaling.describe_warm_pool(AutoScalingGroupName=group)
    assert _group(aws, endpoint, stack)["AutoScalingGroupName"] == group
    assert delete(aws, stack, poll_seconds=0.05, echo=Output().append, yes=True)


def test_turning_the_warm_pool_on_in_an_update_creates_it_and_refreshes_the_workers(
    aws: Clients, endpoint: str
) -> None:
    # A 0.2.0-like stack (WarmPool off) updated to stopped: the pool is created, and the UserData
    # that runs at every boot is a new launch template version, so WinFleetRefresh starts a refresh.
    stack = "ww-warm-pool-on"
    parameters = enabled_parameters(mode="isolated-2az", S3PrefixListId="")
    assert _deploy(aws, stack, FEATURE, parameters).status == "CREATE_COMPLETE"
    autoscaling = boto3.client(
        "autoscaling", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
    )
    group = _group(aws, endpoint, stack)
    name, before = group["AutoScalingGroupName"], group["LaunchTemplate"]["Version"]
    assert "WarmPoolConfiguration" not in autoscaling.describe_warm_pool(AutoScalingGroupName=name)
    assert autoscaling.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"] == []

    on = _deploy(aws, stack, FEATURE, {**parameters, "WinWarmPool": "stopped"}, yes=True)
    assert on.status == "UPDATE_COMPLETE"
    assert autoscaling.describe_warm_pool(AutoScalingGroupName=name)["WarmPoolConfiguration"]["PoolState"] == "Stopped"
    after = _group(aws, endpoint, stack)["LaunchTemplate"]["Version"]
    assert int(after) == int(before) + 1
    (refresh,) = autoscaling.describe_instance_refreshes(AutoScalingGroupName=name)["InstanceRefreshes"]
    assert refresh["Status"] == "InProgress"
    autoscaling.cancel_instance_refresh(AutoScalingGroupName=name)
    assert delete(aws, stack, poll_seconds=0.05, echo=Output().append, yes=True)
