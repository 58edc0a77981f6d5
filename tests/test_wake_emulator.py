"""The wake on the emulator (winworkers.emulator, public API only): the feature deployed, a
message on the platform's queue, one call of the wake entry point, and the group wants a
worker. No CloudWatch alarm is involved: the emulator evaluates none (moto keeps alarms
as data), and the call is the deployed function's own code with its deployed environment,
its clients pointed at the emulator.
"""

from __future__ import annotations

import contextlib
import io
import types
from typing import Any

import pytest

from conftest import ROOT, TEMPLATE_BUCKET
from winworkers.deploy import Clients, DeployResult, deploy
from winworkers.renderings import EXAMPLE_INPUTS, enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

FEATURE = ROOT / "templates" / "winworkers.json"


@pytest.fixture(scope="module")
def client(aws: Clients) -> Any:
    """Any client of the emulator's session (conftest.emulator_clients, which made the template bucket)."""
    return aws.client


def _deploy(aws: Clients, stack: str, parameters: dict[str, str]) -> DeployResult:
    return deploy(
        aws, stack, FEATURE, parameters, poll_seconds=0.05, echo=lambda line: None, template_bucket=TEMPLATE_BUCKET
    )


def _physical(client: Any, stack: str) -> dict[str, str]:
    resources = client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}


def _wake(client: Any, stack: str) -> dict[str, Any]:
    """One call of the entry point: the deployed function's source and environment."""
    described = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    arn = next(o["OutputValue"] for o in described["Outputs"] if o["OutputKey"] == "WinWakeFunctionArn")
    function = client("lambda").get_function(FunctionName=arn)["Configuration"]
    source = client("cloudformation").get_template(StackName=stack)["TemplateBody"]["Resources"]["WinWakeFunction"]
    module = types.ModuleType("index")
    exec(compile(source["Properties"]["Code"]["ZipFile"], "index.py", "exec"), module.__dict__)
    env = {k: str(v) for k, v in function["Environment"]["Variables"].items()}
    with contextlib.redirect_stdout(io.StringIO()):
        result: dict[str, Any] = module.run(env, {n: client(n) for n in ("sqs", "autoscaling")})
    return result


def _desired(client: Any, group: str) -> int:
    found = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
    return int(found[0]["DesiredCapacity"])


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("isolated-2az", {"WarmPool": "stopped"}), ("existing-subnets", {"WakeEveryMinute": "false"})],
    ids=["isolated-warm-pool", "existing-subnets-no-schedule"],
)
def test_a_message_and_one_wake_call_want_a_worker(aws: Clients, client: Any, mode: str, extra: dict[str, str]) -> None:
    stack = f"ww-wake-{mode}"
    network: dict[str, str] = {}
    if mode == "existing-subnets":
        vpc = aws.ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
        subnets = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
        network = {"VpcId": vpc, "SubnetIds": ",".join(subnets)}
    parameters = enabled_parameters(mode=mode, S3PrefixListId="", **network, **extra)
    assert _deploy(aws, stack, parameters).status == "CREATE_COMPLETE"
    physical = _physical(client, stack)
    group = physical["WinGroup"]
    assert _desired(client, group) == 0
    assert ("WinWakeSchedule" in physical) is (extra.get("WakeEveryMinute", "true") == "true")

    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=EXAMPLE_INPUTS["WorkQueueArn"].rsplit(":", 1)[1])["QueueUrl"]
    assert _wake(client, stack)["result"] == "nothing-waiting"  # nothing queued: nothing changes
    assert _desired(client, group) == 0

    sqs.send_message(QueueUrl=url, MessageBody='{"key": "in/first-file-after-an-idle-night.bin"}')
    woken = _wake(client, stack)
    assert (woken["result"], woken["raised_to"]) == ("raised", 1)
    assert _desired(client, group) >= 1
    # No alarm acted: the start alarm and the target tracking alarms are where the emulator put them.
    alarms = client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert all(a["StateValue"] != "ALARM" for a in alarms)
    assert _wake(client, stack)["result"] == "enough"  # a second call changes nothing
    for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # the next case's queue is empty
