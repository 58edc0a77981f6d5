"""The wake (winworkers.wake, winworkers.wake_handler): its own code against moto's SQS and
Auto Scaling in-process, then its resources as CloudFormation would create them.

Every case counts the calls the function made (a botocore hook on its clients): an empty
queue costs one SQS call and no Auto Scaling call; a capacity already there costs no
SetDesiredCapacity.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from troposphere import Template

from conftest import Rendered, props, render, resources_of
from winworkers import WorkersConfig, build_template, nested_stack
from winworkers.renderings import enabled_parameters
from winworkers.wake import OUTPUT, SCHEDULE
from winworkers.wake_handler import RETRIES, WakeError, run

GROUP = "stack-WinWorkers"
QUEUE = "work"


@dataclass
class World:
    clients: dict[str, Any]
    url: str
    calls: list[str] = field(default_factory=list)

    def group(self, desired: int = 0, maximum: int = 4) -> None:
        self.clients["autoscaling"].update_auto_scaling_group(
            AutoScalingGroupName=GROUP, MinSize=0, MaxSize=maximum, DesiredCapacity=desired
        )

    def desired(self) -> int:
        found = self.clients["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
        return int(found["AutoScalingGroups"][0]["DesiredCapacity"])

    def send(self, count: int, in_flight: int = 0) -> None:
        sqs = self.clients["sqs"]
        for n in range(count + in_flight):
            sqs.send_message(QueueUrl=self.url, MessageBody=f"file-{n}")
        if in_flight:  # received and not deleted: in flight for an hour
            sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=in_flight, VisibilityTimeout=3600)

    def wake(self, per_worker: int = 1, group: str = GROUP) -> dict[str, Any]:
        self.calls.clear()
        env = {"QUEUE_URL": self.url, "GROUP_NAME": group, "BACKLOG_PER_WORKER": str(per_worker)}
        return run(env, {"sqs": self.clients["wake-sqs"], "autoscaling": self.clients["wake-autoscaling"]})


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        clients = {n: boto3.client(n) for n in ("sqs", "autoscaling", "ec2")}
        subnet = clients["ec2"].describe_subnets()["Subnets"][0]["SubnetId"]
        template = clients["ec2"].create_launch_template(
            LaunchTemplateName="workers", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        clients["autoscaling"].create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnet,
        )
        url = clients["sqs"].create_queue(QueueName=QUEUE)["QueueUrl"]
        w = World(clients=clients, url=url)
        for service in ("sqs", "autoscaling"):
            client = boto3.client(service, config=RETRIES)
            client.meta.events.register("before-call.*.*", lambda model, **_: w.calls.append(model.name))
            clients["wake-" + service] = client
        yield w


def test_an_empty_queue_costs_one_sqs_call_and_changes_nothing(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.group(desired=0)
    out = world.wake()
    assert out["result"] == "nothing-waiting" and world.calls == ["GetQueueAttributes"]
    assert world.desired() == 0
    assert json.loads(capsys.readouterr().out) == out  # one JSON line for the log


def test_in_flight_work_alone_wakes_nobody(world: World) -> None:
    # A job in progress has its worker: nothing waits, so no Auto Scaling call.
    world.send(0, in_flight=2)
    out = world.wake()
    assert (out["result"], out["in_flight"], world.calls) == ("nothing-waiting", 2, ["GetQueueAttributes"])
    assert world.desired() == 0


def test_a_backlog_raises_the_capacity_to_what_it_needs(world: World) -> None:
    world.send(5)
    out = world.wake(per_worker=2)
    assert (out["result"], out["needed"], out["raised_to"]) == ("raised", 3, 3)  # ceil(5 / 2)
    # The group is read again right before the set (register row 217): SetDesiredCapacity has no condition.
    assert world.calls == [
        "GetQueueAttributes",
        "DescribeAutoScalingGroups",
        "DescribeAutoScalingGroups",
        "SetDesiredCapacity",
    ]
    assert world.desired() == 3


def test_a_raise_seen_by_the_second_read_is_left_alone(world: World) -> None:
    # Another actor raises the capacity after the wake's first read: the read right before the
    # set sees it, and the wake sends no SetDesiredCapacity that would lower it.
    world.send(2)
    reads: list[int] = []

    def another_actor_raises(**_: Any) -> None:
        reads.append(1)
        if len(reads) == 1:
            world.clients["autoscaling"].set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=4)

    world.clients["wake-autoscaling"].meta.events.register(
        "after-call.*.DescribeAutoScalingGroups", another_actor_raises
    )
    out = world.wake()
    assert (out["result"], out["desired"], len(reads)) == ("enough", 4, 2)
    assert "SetDesiredCapacity" not in world.calls and world.desired() == 4


def test_in_flight_messages_count_as_the_target_tracking_backlog_does(world: World) -> None:
    world.group(desired=1)
    world.send(1, in_flight=2)
    out = world.wake()
    assert (out["visible"], out["in_flight"], out["needed"]) == (1, 2, 3)
    assert world.desired() == 3


def test_never_above_max_size(world: World) -> None:
    world.group(desired=1, maximum=4)
    world.send(9)
    out = world.wake()
    assert (out["needed"], out["raised_to"], out["max_size"]) == (9, 4, 4)
    assert world.desired() == 4


def test_never_lowers_the_capacity(world: World) -> None:
    world.group(desired=3)
    world.send(1)
    out = world.wake()
    assert out["result"] == "enough" and "SetDesiredCapacity" not in world.calls
    assert world.desired() == 3


def test_called_twice_it_does_the_same_once(world: World) -> None:
    world.send(2)
    first = world.wake()
    second = world.wake()
    assert (first["result"], second["result"]) == ("raised", "enough")
    assert world.calls == ["GetQueueAttributes", "DescribeAutoScalingGroups"]  # the second: no change
    assert world.desired() == 2


def test_a_missing_group_is_an_error_not_a_silent_success(world: World) -> None:
    world.send(1)
    with pytest.raises(WakeError, match="no Auto Scaling group other"):
        world.wake(group="other")
    with pytest.raises(WakeError, match="GROUP_NAME and QUEUE_URL"):
        run({"QUEUE_URL": world.url}, {})


# --- the template


@pytest.fixture(scope="module")
def feature_template() -> dict[str, Any]:
    return json.loads(build_template().to_json())


@pytest.mark.parametrize("mode", ["isolated-2az", "existing-subnets"])
def test_the_function_runs_outside_the_vpc_with_its_env_in_every_mode(
    feature_template: dict[str, Any], mode: str
) -> None:
    rendered = render(feature_template, enabled_parameters(mode=mode))
    function = props(rendered, "WinWakeFunction")
    assert "VpcConfig" not in function
    env = function["Environment"]["Variables"]
    assert env["QUEUE_URL"] == "https://sqs.us-east-1.amazonaws.com/123456789012/example-platform-work"
    assert env["GROUP_NAME"].endswith("-WinWorkers") and env["BACKLOG_PER_WORKER"] == "1"
    assert function["Code"]["ZipFile"].startswith('"""Wake the fleet')


def _statements(rendered: Rendered) -> list[dict[str, Any]]:
    role = props(rendered, "WinWakeRole")
    (policy,) = role["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


def test_the_role_may_read_this_queue_and_set_this_group_only(enabled: Rendered) -> None:
    by_action = {a: s for s in _statements(enabled) for a in s["Action"]}
    assert by_action["sqs:GetQueueAttributes"]["Resource"] == [
        "arn:aws:sqs:us-east-1:123456789012:example-platform-work"
    ]
    (group_arn,) = by_action["autoscaling:SetDesiredCapacity"]["Resource"]
    assert group_arn.endswith(
        ":autoScalingGroupName/" + props(enabled, "WinWakeFunction")["Environment"]["Variables"]["GROUP_NAME"]
    )
    # Nothing that could lower capacity or touch another queue or group.
    assert set(by_action) == {
        "sqs:GetQueueAttributes",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:SetDesiredCapacity",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
    }


def test_a_failed_call_is_neither_retried_nor_dead_lettered_and_pages(enabled: Rendered) -> None:
    # A failing wake (every minute with the schedule) would put up to 1,440 events a day into the
    # refresh's dead-letter queue: Lambda does not retry it (the schedule calls again), keeps no
    # dead letter, and the errors alarm pages instead (register row 240).
    assert "DeadLetterConfig" not in props(enabled, "WinWakeFunction")
    (config,) = resources_of(enabled, "AWS::Lambda::EventInvokeConfig").values()
    assert config["Properties"]["FunctionName"] == "WinWakeFunction"  # its Ref, as rendered
    assert (config["Properties"]["Qualifier"], config["Properties"]["MaximumRetryAttempts"]) == ("$LATEST", 0)
    assert "DestinationConfig" not in config["Properties"]
    alarm = props(enabled, "WinWakeErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (0, "GreaterThanThreshold", 300)
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "WinWakeFunction"}]


def test_the_schedule_runs_every_minute_and_goes_with_its_switch(feature_template: dict[str, Any]) -> None:
    on = render(feature_template, enabled_parameters())
    (rule,) = [r["Properties"] for n, r in resources_of(on, "AWS::Events::Rule").items() if n == "WinWakeSchedule"]
    assert rule["ScheduleExpression"] == SCHEDULE == "rate(1 minute)"
    assert [t["Arn"] for t in rule["Targets"]] == ["WinWakeFunction.Arn"]  # cloud-radar's GetAtt
    assert "WinWakeInvoke" in on["Resources"]
    off = render(feature_template, enabled_parameters(WakeEveryMinute="false"))
    assert "WinWakeSchedule" not in off["Resources"] and "WinWakeInvoke" not in off["Resources"]
    assert "WinWakeFunction" in off["Resources"]  # the platform can still call it
    assert "WinWakeFunctionArn" in off["Outputs"]


def test_the_platform_gets_the_function_from_add_to_and_nested_stack() -> None:
    from winworkers import add_to

    parent = Template()
    feature = add_to(parent)
    assert feature.wake_function.title == "WinWakeFunction"
    assert OUTPUT == "WakeFunctionArn" and "WinWakeFunctionArn" in parent.outputs
    nested = nested_stack(Template(), "https://bucket.s3.us-east-1.amazonaws.com/winworkers.json", WorkersConfig())
    assert nested.output(OUTPUT).to_dict() == {"Fn::GetAtt": ["WinStack", "Outputs.WinWakeFunctionArn"]}


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WakeEveryMinute", "yes", "WinWakeEveryMinute"),
        ("QueueWaitAlarmSeconds", "5", "WinQueueWaitAlarmSeconds"),
        ("QueueWaitAlarmSeconds", "50000", "WinQueueWaitAlarmSeconds"),
    ],
)
def test_the_precheck_refuses_a_bad_new_input_naming_it(
    feature_template: dict[str, Any], name: str, value: str, expected: str
) -> None:
    from winworkers.constraints import check_inputs

    assert check_inputs(feature_template, enabled_parameters(**{name: value}))[0].startswith(expected)
    assert check_inputs(feature_template, enabled_parameters(WakeEveryMinute="false", QueueWaitAlarmSeconds="30")) == []
