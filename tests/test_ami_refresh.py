"""The AMI refresh handler against moto's SSM, EC2 and Auto Scaling.

moto implements neither StartInstanceRefresh nor DescribeInstanceRefreshes, so
those two (and, where noted, DescribeWarmPool's instances) are answered by
botocore event hooks; every other call is real moto. Every case asserts the
result and the exact AWS calls made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from winworkers import ami_refresh
from winworkers.ami_refresh import RETRIES, RefreshError, run

PARAMETER = "/test/windows-ami"  # moto refuses names under /aws/
GROUP = "workers"


class _Http:
    status_code = 200


@dataclass
class World:
    clients: dict[str, Any]
    old: str
    new: str
    calls: list[str] = field(default_factory=list)
    refreshes: list[dict[str, Any]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)
    warm_pool_instances: list[str] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {"ASG_NAME": GROUP, "AMI_PARAMETER": PARAMETER, **extra}

    def run(self, event: dict[str, Any] | None = None, **env: str) -> dict[str, Any]:
        """The handler's decision, counting only the calls it makes."""
        self.calls.clear()
        return run(event or {}, self.env(**env), self.clients)

    def group(self, desired: int, image: str | None = None, name: str = GROUP, warm_pool: bool = False) -> list[str]:
        ec2, scaling = self.clients["ec2"], self.clients["autoscaling"]
        template = f"{name}-template"
        ec2.create_launch_template(
            LaunchTemplateName=template, LaunchTemplateData={"ImageId": image or self.old, "InstanceType": "m6i.large"}
        )
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        scaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=desired,
            VPCZoneIdentifier=subnet,
        )
        if warm_pool:
            scaling.put_warm_pool(AutoScalingGroupName=name, MinSize=1, PoolState="Stopped")
        group = scaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    def latest(self, image: str) -> None:
        self.clients["ssm"].put_parameter(Name=PARAMETER, Value=image, Type="String", Overwrite=True)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with moto_world(monkeypatch) as w:
        yield w


@contextmanager
def moto_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """moto's SSM, EC2 and Auto Scaling, with call counting and the two missing calls answered
    (also used by scripts/bench.py)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)  # retry backoff
    with mock_aws():
        clients = {n: boto3.client(n, region_name="us-east-1", config=RETRIES) for n in ("ssm", "autoscaling", "ec2")}
        images = clients["ec2"].describe_images(
            Owners=["amazon"], Filters=[{"Name": "platform", "Values": ["windows"]}]
        )["Images"]
        w = World(clients=clients, old=images[0]["ImageId"], new=images[1]["ImageId"])
        for client in clients.values():
            client.meta.events.register("before-call.*.*", lambda model, **_: w.calls.append(model.name))
        scaling = clients["autoscaling"].meta.events
        scaling.register(
            "before-call.auto-scaling.DescribeInstanceRefreshes",
            lambda **_: (_Http(), {"InstanceRefreshes": w.refreshes}),
        )

        scaling.register(
            "before-parameter-build.auto-scaling.StartInstanceRefresh", lambda params, **_: w.started.append(params)
        )
        scaling.register(
            "before-call.auto-scaling.StartInstanceRefresh", lambda **_: (_Http(), {"InstanceRefreshId": "refresh-1"})
        )
        yield w


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_newer_ami_starts_one_launch_before_terminate_refresh(world: World, capsys: Any) -> None:
    instances = world.group(desired=2)
    world.latest(world.new)
    result = world.run(INSTANCE_WARMUP="900")
    assert result["action"] == "refresh-started"
    assert result["latest_image_id"] == world.new
    assert result["outdated_instances"] == sorted(instances)
    assert result["instance_refresh_id"] == "refresh-1"
    assert world.calls == [
        "GetParameter",
        "DescribeAutoScalingGroups",
        "DescribeInstances",
        "DescribeInstanceRefreshes",
        "StartInstanceRefresh",
    ]
    (started,) = world.started
    preferences = started["Preferences"]
    assert started["AutoScalingGroupName"] == GROUP and started["Strategy"] == "Rolling"
    assert preferences["MinHealthyPercentage"] == 100 and preferences["MaxHealthyPercentage"] > 100
    assert preferences["InstanceWarmup"] == 900
    assert "SkipMatching" not in preferences  # not allowed with a resolve:ssm ImageId
    (line,) = _lines(capsys)
    assert line["decision"] == "refresh-started" and line["asg_name"] == GROUP


def test_same_ami_is_up_to_date_within_four_calls(world: World, capsys: Any) -> None:
    world.group(desired=2)
    world.latest(world.old)
    result = world.run()
    assert (result["action"], result["outdated_instances"], result["instances"]) == ("up-to-date", [], 2)
    assert world.calls == ["GetParameter", "DescribeAutoScalingGroups", "DescribeInstances"]
    assert len(world.calls) <= 4
    assert [line["decision"] for line in _lines(capsys)] == ["up-to-date"]


def test_up_to_date_with_a_warm_pool_stays_within_four_calls(world: World) -> None:
    world.group(desired=1, warm_pool=True)
    world.latest(world.old)
    assert world.run()["action"] == "up-to-date"
    assert world.calls == ["GetParameter", "DescribeAutoScalingGroups", "DescribeWarmPool", "DescribeInstances"]


def test_outdated_warm_pool_instance_is_refreshed(world: World) -> None:
    # moto keeps no instances in a warm pool: list one stopped, outdated instance
    # (a real moto instance) the way DescribeWarmPool would.
    world.group(desired=1, warm_pool=True, image=world.new)
    reservation = world.clients["ec2"].run_instances(ImageId=world.old, MinCount=1, MaxCount=1)
    pooled = reservation["Instances"][0]["InstanceId"]
    world.clients["autoscaling"].meta.events.register(
        "before-call.auto-scaling.DescribeWarmPool",
        lambda **_: (_Http(), {"Instances": [{"InstanceId": pooled, "LifecycleState": "Warmed:Stopped"}]}),
    )
    world.latest(world.new)
    result = world.run()
    assert (result["action"], result["outdated_instances"]) == ("refresh-started", [pooled])


def test_refresh_in_progress_starts_nothing(world: World) -> None:
    world.group(desired=2)
    world.latest(world.new)
    world.refreshes.append({"InstanceRefreshId": "running-1", "Status": "InProgress"})
    result = world.run()
    assert (result["action"], result["instance_refresh_id"]) == ("refresh-in-progress", "running-1")
    assert "StartInstanceRefresh" not in world.calls and world.started == []


def test_finished_refreshes_do_not_block_a_new_one(world: World) -> None:
    world.group(desired=1)
    world.latest(world.new)
    world.refreshes.extend([{"InstanceRefreshId": "old", "Status": s} for s in ("Successful", "Failed", "Cancelled")])
    assert world.run()["action"] == "refresh-started"


def test_dry_run_reports_and_changes_nothing(world: World, capsys: Any) -> None:
    world.group(desired=2)
    world.latest(world.new)
    result = world.run({"dryRun": True})
    assert (result["action"], result["would"]) == ("dry-run", "refresh-started")
    assert "StartInstanceRefresh" not in world.calls and world.started == []
    world.calls.clear()
    world.latest(world.old)
    assert world.run({"dryRun": True})["would"] == "up-to-date"
    assert [line["decision"] for line in _lines(capsys)] == ["dry-run", "dry-run"]


def test_group_with_no_instances_is_up_to_date_in_two_calls(world: World) -> None:
    world.group(desired=0)
    world.latest(world.new)
    result = world.run()
    assert (result["action"], result["instances"]) == ("up-to-date", 0)
    assert world.calls == ["GetParameter", "DescribeAutoScalingGroups"]


def test_missing_parameter_fails_visibly(world: World, capsys: Any) -> None:
    world.group(desired=1)
    with pytest.raises(RefreshError, match=f"SSM parameter {PARAMETER}.*ParameterNotFound"):
        world.run()
    assert world.calls == ["GetParameter"]
    (line,) = _lines(capsys)
    assert line["decision"] == "error" and "ParameterNotFound" in line["error"]


def test_missing_group_fails_visibly(world: World) -> None:
    world.latest(world.new)
    with pytest.raises(RefreshError, match=f"Auto Scaling group {GROUP} not found"):
        world.run()
    assert world.calls == ["GetParameter", "DescribeAutoScalingGroups"] and world.started == []


def _fail_first(world: World, operation: str, times: int, code: str, status: int = 400) -> list[int]:
    """Answer the first ``times`` sends of ``operation`` with an AWS error, before moto sees them."""
    attempts = [0]

    def send(request: Any, **_: Any) -> AWSResponse | None:
        attempts[0] += 1
        if attempts[0] > times:
            return None
        body = json.dumps({"__type": code, "message": code}).encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body))

    world.clients["ssm"].meta.events.register_first(f"before-send.ssm.{operation}", send)
    return attempts


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_throttling_followed_by_success(world: World) -> None:
    world.group(desired=1)
    world.latest(world.old)
    attempts = _fail_first(world, "GetParameter", times=2, code="ThrottlingException")
    assert world.run()["action"] == "up-to-date"
    assert attempts == [3]


def test_throttling_beyond_retries_fails_visibly(world: World) -> None:
    world.group(desired=1)
    world.latest(world.new)
    attempts = _fail_first(world, "GetParameter", times=99, code="ThrottlingException")
    with pytest.raises(RefreshError, match="ThrottlingException"):
        world.run()
    assert attempts == [5]  # total_max_attempts
    assert world.started == []


def test_access_denied_fails_without_retry(world: World) -> None:
    world.group(desired=1)
    attempts = _fail_first(world, "GetParameter", times=99, code="AccessDeniedException")
    with pytest.raises(RefreshError, match="AccessDenied"):
        world.run()
    assert attempts == [1] and world.started == []


def test_failed_refresh_event_is_reported_as_an_error(world: World) -> None:
    event = {
        "detail-type": "EC2 Auto Scaling Instance Refresh Failed",
        "detail": {"InstanceRefreshId": "r-9", "Cause": "instances failed health checks"},
    }
    with pytest.raises(RefreshError, match="r-9 failed: instances failed health checks"):
        world.run(event)
    assert world.calls == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ASG_NAME": ""}, "ASG_NAME is not set"),
        ({"INSTANCE_WARMUP": "soon"}, "INSTANCE_WARMUP='soon'"),
        ({"MAX_HEALTHY_PERCENTAGE": "100"}, "MAX_HEALTHY_PERCENTAGE='100'"),
        ({"MAX_HEALTHY_PERCENTAGE": "250"}, "from 101 to 200"),
    ],
)
def test_bad_configuration_names_the_variable(world: World, env: dict[str, str], message: str) -> None:
    with pytest.raises(RefreshError, match=message):
        world.run(**env)
    assert world.calls == []


def test_handler_reads_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.group(desired=1)
    world.latest(world.old)
    for name, value in world.env().items():
        monkeypatch.setenv(name, value)
    created: list[str] = []
    real: Callable[..., Any] = boto3.client

    def client(name: str, **kwargs: Any) -> Any:
        created.append(name)
        assert kwargs["config"] is RETRIES
        return real(name, **kwargs)

    monkeypatch.setattr(ami_refresh.boto3, "client", client)
    assert ami_refresh.handler({}, None)["action"] == "up-to-date"
    assert sorted(created) == ["autoscaling", "ec2", "ssm"]
