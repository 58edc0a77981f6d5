"""What a deploy through the emulator costs in botocore sessions and clients (issue 29). Counted, not
timed: a botocore session registers over a hundred event handlers and a client builds its class from
the service's model, so one made per resource or per custom resource request was most of an emulator
deploy's CPU. The CLI makes one session per run and its clients from it; the emulator checks
properties against shapes from one session per process, and hands a custom resource's function the
clients it made for that emulator and Region before, as a warm Lambda environment keeps its own."""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import botocore.session
import moto
import pytest
from moto.core import utils as moto_utils

from conftest import BUCKET_FLAG, ROOT
from winworkers.cli import main
from winworkers.emulator import custom_resources, services
from winworkers.renderings import enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")
FEATURE = ROOT / "templates" / "winworkers.json"
CLI_CLIENTS = Counter({"cloudformation": 1, "ec2": 1, "s3": 1, "autoscaling": 1, "sqs": 1})
"""A deploy run's: Clients.connect's four, and preflight's SQS (the work queue's finding), one of each."""
HANDLER_CLIENTS = Counter({"autoscaling": 1, "cloudformation": 1, "ec2": 1, "ssm": 1})
"""What a custom resource's function is handed (custom_resources._handler_clients)."""


class Made:
    def __init__(self) -> None:
        self.sessions = 0
        self.clients: Counter[str] = Counter()
        self.moto_listings = 0
        """moto's list_of_moto_modules's listings of its package (its server's lookup of a request's service)."""


@pytest.fixture()
def made(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> Iterator[Made]:
    """Every botocore session and client made while the test runs, in any thread (the emulator's
    server threads too), starting with nothing kept: no shape looked up, no handler clients."""
    services._input_shape.cache_clear()
    services._model_session.cache_clear()
    # moto's error answers name their service through a lookup it makes once per process and moto
    # package (a session each time): made here, before counting, for every service. Its session only
    # lists the services botocore knows, the same from any session: one session answers them all.
    shared = botocore.session.get_session()
    with monkeypatch.context() as warming:
        warming.setattr(moto_utils, "Session", lambda: shared)
        for name in shared.get_available_services():
            moto_utils.service_name_from_moto_package_name(name.replace("-", ""))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    custom_resources.forget_clients(endpoint)
    counted = Made()
    session_init = botocore.session.Session.__init__
    create_client = botocore.client.ClientCreator.create_client

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        counted.sessions += 1
        session_init(self, *args, **kwargs)

    def client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        counted.clients[service_name] += 1
        return create_client(self, service_name, *args, **kwargs)

    listdir = os.listdir
    moto_folder = os.path.dirname(moto.__file__)

    def listing(path: Any = ".") -> list[str]:
        counted.moto_listings += path == moto_folder and sys._getframe(1).f_code.co_name == "list_of_moto_modules"
        return listdir(path)

    monkeypatch.setattr(os, "listdir", listing)
    monkeypatch.setattr(botocore.session.Session, "__init__", init)
    monkeypatch.setattr(botocore.client.ClientCreator, "create_client", client)
    yield counted


def _deploy(endpoint: str, stack: str, values: dict[str, str]) -> int:
    argv = ["deploy", "--stack-name", stack, "--endpoint-url", endpoint, "--template", str(FEATURE), *BUCKET_FLAG]
    return main([*argv, *(f for k, v in values.items() for f in ("--parameter", f"{k}={v}")), "--yes"])


def test_each_run_makes_one_session_and_the_emulator_keeps_its_own(
    aws: Any, endpoint: str, cli_env: None, made: Made
) -> None:
    given = enabled_parameters()
    assert _deploy(endpoint, "ww-emu-budget", given) == 0
    (stack,) = aws.cloudformation.describe_stacks(StackName="ww-emu-budget")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    custom = [
        r
        for r in aws.cloudformation.list_stack_resources(StackName="ww-emu-budget")["StackResourceSummaries"]
        if r["ResourceType"].startswith("Custom::")
    ]
    assert custom, "the feature has a custom resource: its function ran on the emulator"
    # The run's; one for the emulator's shape checks (an alarm, a scaling policy, egress rules...);
    # and boto3's default session, which the handler clients come from.
    assert made.sessions == 3, made.sessions
    assert made.clients == CLI_CLIENTS + HANDLER_CLIENTS, made.clients
    assert _deploy(endpoint, "ww-emu-budget", {**given, "WinMaxSize": "6"}) == 0
    (stack,) = aws.cloudformation.describe_stacks(StackName="ww-emu-budget")["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert made.sessions == 4, made.sessions  # the second run's own, nothing else
    assert made.clients == CLI_CLIENTS + CLI_CLIENTS + HANDLER_CLIENTS, made.clients
    # The delete (its run's session and Clients.connect's four) runs the custom resource's function
    # again (Delete), with the clients it had.
    argv = ["delete", "--stack-name", "ww-emu-budget", "--endpoint-url", endpoint, "--yes", "--poll-seconds", "0.05"]
    assert main(argv) == 0
    assert "ww-emu-budget" not in {s["StackName"] for s in aws.cloudformation.describe_stacks()["Stacks"]}
    assert made.sessions == 5, made.sessions
    assert made.clients == CLI_CLIENTS + CLI_CLIENTS + CLI_CLIENTS - Counter(sqs=1) + HANDLER_CLIENTS, made.clients
    # Hundreds of requests, and moto's folder listed when the emulator started, not at each of them.
    assert made.moto_listings == 0, made.moto_listings
