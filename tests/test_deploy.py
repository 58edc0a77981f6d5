"""Deploy the committed templates on moto's server, through scripts/deploy.py's change sets.

moto ignores Conditions (FIELD-NOTES), so only enabled renderings are deployed
here; the disabled case is judged by evaluating Conditions (test_build.py).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.cloudformation import parsing
from moto.ec2.models.security_groups import SecurityGroup
from moto.server import ThreadedMotoServer

from conftest import ROOT
from winworkers.network import ENDPOINTS
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters

sys.path.insert(0, str(ROOT / "scripts"))
from deploy import DeployError, deploy, main

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
PARENT = ROOT / "templates" / "parent-example.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _with_fn_cidr(clean_json: Any) -> Any:
    """Two moto 5.2.5 CloudFormation gaps, filled as CloudFormation behaves:
    Fn::Cidr is not evaluated (the Fn::Select around it fails), and an
    AWS::NoValue inside a list stays in it as None instead of vanishing."""

    def clean(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            block, count, bits = (clean(arg, resources_map) for arg in resource_json["Fn::Cidr"])
            subnets = ipaddress.ip_network(block).subnets(new_prefix=32 - int(bits))
            return [str(subnet) for _, subnet in zip(range(int(count)), subnets, strict=False)]
        cleaned = clean_json(resource_json, resources_map)
        return [item for item in cleaned if item is not None] if isinstance(resource_json, list) else cleaned

    return clean


def _with_vpc_id(get_cfn_attribute: Any) -> Any:
    """moto 5.2.5 knows only GroupId of a security group's attributes; CloudFormation
    (and cfn-lint's spec) also return VpcId."""

    def get(group: Any, attribute: str) -> Any:
        return group.vpc_id if attribute == "VpcId" else get_cfn_attribute(group, attribute)

    return get


@pytest.fixture(scope="module")
def aws() -> Iterator[dict[str, Any]]:
    patch = pytest.MonkeyPatch()
    patch.setattr(parsing, "clean_json", _with_fn_cidr(parsing.clean_json))
    patch.setattr(SecurityGroup, "get_cfn_attribute", _with_vpc_id(SecurityGroup.get_cfn_attribute))
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    clients = {
        n: session.client(n, endpoint_url=f"http://127.0.0.1:{port}")
        for n in ("cloudformation", "ec2", "s3", "autoscaling")
    }
    try:
        yield clients
    finally:
        server.stop()
        patch.undo()


def _deploy(aws: dict[str, Any], name: str, template: Path, parameters: dict[str, str], **kwargs: Any) -> Any:
    return deploy(aws["cloudformation"], aws["ec2"], name, template, parameters, region=REGION, s3=aws["s3"],
                  poll_seconds=0.2, wait_seconds=120, **kwargs)  # fmt: skip


def _network(aws: dict[str, Any], mode: str) -> dict[str, str]:
    if not mode.startswith("existing"):
        return {}
    ec2 = aws["ec2"]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    return {"VpcId": vpc, "SubnetIds": ",".join(subnets), "RouteTableIds": table}


def _all_complete(aws: dict[str, Any], stack: str) -> None:
    summaries = aws["cloudformation"].list_stack_resources(StackName=stack)["StackResourceSummaries"]
    assert summaries and {r["ResourceStatus"] for r in summaries} <= {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


def _group(aws: dict[str, Any], stack: str) -> dict[str, Any]:
    summaries = aws["cloudformation"].list_stack_resources(StackName=stack)["StackResourceSummaries"]
    name = next(r["PhysicalResourceId"] for r in summaries if r["LogicalResourceId"] == "WinGroup")
    group: dict[str, Any] = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ][0]
    return group


@pytest.mark.parametrize("mode", sorted(MODES))
def test_feature_deploys_and_updates_in_every_mode(aws: dict[str, Any], mode: str) -> None:
    stack = f"ww-{mode}"
    parameters = enabled_parameters(mode=mode, S3PrefixListId="", **_network(aws, mode))
    created = _deploy(aws, stack, FEATURE, parameters)
    assert (created.status, created.changed) == ("CREATE_COMPLETE", True)
    _all_complete(aws, stack)
    assert parameters["WinS3PrefixListId"] == ""  # filled in by the deploy tool from the region's list

    group = _group(aws, stack)
    assert (group["MinSize"], group["MaxSize"]) == (0, 4)
    template_id = group["LaunchTemplate"]["LaunchTemplateId"]
    data = aws["ec2"].describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"][0][
        "LaunchTemplateData"
    ]
    assert data["MetadataOptions"]["HttpTokens"] == "required" and "KeyName" not in data
    resources = aws["cloudformation"].list_stack_resources(StackName=stack)["StackResourceSummaries"]
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    vpc = physical["WinVpc"] if mode.startswith("isolated") else parameters["WinVpcId"]
    endpoints = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::EC2::VPCEndpoint"]
    assert len(endpoints) == (0 if mode == "existing-without-endpoints" else len(ENDPOINTS))
    if endpoints:  # in the workers' VPC, whichever mode chose it
        described = aws["ec2"].describe_vpc_endpoints(VpcEndpointIds=endpoints)["VpcEndpoints"]
        assert {e["VpcId"] for e in described} == {vpc}
    if mode.startswith("isolated"):
        gateways = aws["ec2"].describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
        assert gateways["InternetGateways"] == []
        tables = aws["ec2"].describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
        routes = [r.get("DestinationCidrBlock") for t in tables for r in t["Routes"]]
        assert "0.0.0.0/0" not in routes

    updated = _deploy(aws, stack, FEATURE, {**parameters, "WinMinSize": "1", "WinMaxSize": "6"})
    assert updated.status == "UPDATE_COMPLETE"
    assert (_group(aws, stack)["MinSize"], _group(aws, stack)["MaxSize"]) == (1, 6)


def test_redeploying_the_same_inputs_changes_nothing(aws: dict[str, Any]) -> None:
    parameters = enabled_parameters(mode="isolated-2az")
    _deploy(aws, "ww-idempotent", FEATURE, parameters)
    again = _deploy(aws, "ww-idempotent", FEATURE, parameters)
    assert (again.changed, again.status) == (False, "CREATE_COMPLETE")


def test_parent_example_deploys_with_the_nested_stack(aws: dict[str, Any]) -> None:
    aws["s3"].create_bucket(Bucket="templates")
    aws["s3"].put_object(Bucket="templates", Key="winworkers.json", Body=FEATURE.read_bytes())
    url = f"https://templates.s3.{REGION}.amazonaws.com/winworkers.json"
    declared = json.loads(PARENT.read_text())["Parameters"]
    parameters = {k: v for k, v in enabled_parameters().items() if k in declared}
    parameters["WinTemplateUrl"] = url
    # Over the inline limit (it embeds the feature, and a nested stack needs S3 anyway).
    result = _deploy(aws, "platform", PARENT, parameters, template_bucket="templates")
    assert result.status == "CREATE_COMPLETE"
    _all_complete(aws, "platform")


def test_rules_refuse_bad_input_before_any_call(aws: dict[str, Any]) -> None:
    with pytest.raises(DeployError, match="WinMinSize <= WinDesiredCapacity <= WinMaxSize"):
        _deploy(aws, "ww-bad", FEATURE, enabled_parameters(MinSize="5", MaxSize="2"))
    stacks = aws["cloudformation"].list_stacks()["StackSummaries"]
    assert "ww-bad" not in {s["StackName"] for s in stacks}


def test_cli_reports_bad_input_without_a_traceback(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    endpoint = aws["cloudformation"].meta.endpoint_url
    common = ["--stack-name", "ww-cli", "--template", str(FEATURE), "--region", REGION, "--endpoint-url", endpoint]
    assert main([*common, "--parameter", "WinNoSuchThing=1"]) == 1
    assert "unknown parameters ['WinNoSuchThing']" in capsys.readouterr().err
    assert (
        main([*common, "--parameter", f"{SWITCH}=true", "--parameter", "WinMinSize=3", "--parameter", "WinMaxSize=2"])
        == 1
    )
    assert "WinMinSize <= WinDesiredCapacity <= WinMaxSize" in capsys.readouterr().err
    assert "ww-cli" not in {s["StackName"] for s in aws["cloudformation"].list_stacks()["StackSummaries"]}


def test_cli_reports_missing_credentials_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    args = [
        "--stack-name",
        "ww",
        "--template",
        str(FEATURE),
        "--region",
        REGION,
        "--endpoint-url",
        "http://127.0.0.1:9",
    ]
    assert main([*args, "--parameter", f"{SWITCH}=true"]) == 1
    assert "deploy failed: Unable to locate credentials" in capsys.readouterr().err
