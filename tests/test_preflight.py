"""issue 25, 3: inputs that cannot work are refused before anything changes.

On the emulator (winworkers.emulator, which starts with the example platform's
inputs): each unworkable input is refused in one line naming the parameter, the
stack's parameters stay as they were, no change set is left and no instance
refresh starts. moto cannot deny a call, so the paths where the deployer may not
look (403, another account) run on real botocore clients whose answers
botocore's Stubber gives (nothing is sent anywhere).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from troposphere import Template

from conftest import ROOT, TEMPLATE_BUCKET, render
from winworkers import add_to
from winworkers.cli import main
from winworkers.constraints import check_parameters
from winworkers.deploy import Clients, DeployError, deploy
from winworkers.deploy.preflight import bucket_finding, preflight, run, targets
from winworkers.emulator import ENVIRONMENT
from winworkers.parameters import SWITCH
from winworkers.renderings import EXAMPLE_INPUTS, enabled_parameters

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:moto")

FEATURE = ROOT / "templates" / "winworkers.json"
STACK = "ww-preflight"
ACCOUNT = "123456789012"
"""moto's account, the example queue's."""
NOT_THERE = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REFUSED_TAIL = " (nothing was changed; --skip-preflight to deploy anyway)"


def _run(aws: Clients, stack: str, values: dict[str, str], **kwargs: Any) -> tuple[Any, list[str]]:
    out: list[str] = []
    kwargs.setdefault("template_bucket", TEMPLATE_BUCKET)
    template = kwargs.pop("template", FEATURE)
    result = deploy(aws, stack, template, values, poll_seconds=0.01, echo=out.append, **kwargs)
    return result, out


def _parameters(aws: Clients, stack: str) -> dict[str, str]:
    described = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def _change_sets(aws: Clients, stack: str) -> list[str]:
    """Every change set of the stack, executed or not (moto 5.2.5 lists every stack's)."""
    summaries = aws.cloudformation.list_change_sets(StackName=stack)["Summaries"]
    return [s["ChangeSetId"] for s in summaries if s["StackName"] == stack]


def _refreshes(aws: Clients, stack: str) -> list[str]:
    assert aws.client is not None
    resources = aws.cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    group = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "WinGroup")
    found = aws.client("autoscaling").describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]
    return [r["InstanceRefreshId"] for r in found]


@pytest.fixture(scope="module")
def running(aws: Clients) -> Iterator[Clients]:
    """A running stack with a worker (MinSize 1), so that a change of what the workers run with refreshes."""
    result, _ = _run(aws, STACK, enabled_parameters(MinSize="1"))
    assert result.status == "CREATE_COMPLETE" and _refreshes(aws, STACK) == []
    yield aws


def test_what_the_examples_point_at_is_there_on_the_emulator(aws: Clients) -> None:
    _, out = _run(aws, "ww-preflight-ok", enabled_parameters(), dry_run=True)
    assert out[0] == "preflight: WinWorkQueueArn, WinDataBucket, WinArtifactBucket, WinArtifactKey: there, in us-east-1"


def _in_ireland(aws: Clients) -> None:
    """A queue and a bucket of the same account in eu-west-1 (made once, for two cases)."""
    endpoint = aws.s3.meta.endpoint_url
    sqs = boto3.client("sqs", region_name="eu-west-1", endpoint_url=endpoint, **_KEYS)
    sqs.create_queue(QueueName="example-platform-work")
    with contextlib.suppress(ClientError):  # BucketAlreadyOwnedByYou, the second time
        aws.s3.create_bucket(Bucket="ww-data-in-ireland", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def _disabled_key(aws: Clients) -> str:
    assert aws.client is not None
    kms = aws.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=key["KeyId"])  # moto 5.2.5 takes the id here, not the ARN
    return str(key["Arn"])


# What the stack will point at, and what preflight says of it.
UNWORKABLE = [
    pytest.param(
        "WinArtifactKey",
        lambda aws: "windows/missing.zip",
        "WinArtifactKey names s3://example-platform-artifacts/windows/missing.zip, which does not exist",
        id="artifact-missing",
    ),
    pytest.param(
        "WinWorkQueueArn",
        lambda aws: _in_ireland(aws) or f"arn:aws:sqs:eu-west-1:{ACCOUNT}:example-platform-work",
        "WinWorkQueueArn names the queue example-platform-work in eu-west-1, not in the stack's Region us-east-1",
        id="queue-other-region",
    ),
    pytest.param(
        "WinWorkQueueArn",
        lambda aws: f"arn:aws:sqs:us-east-1:{ACCOUNT}:ww-no-such-queue",
        f"WinWorkQueueArn names the queue ww-no-such-queue, which does not exist in {ACCOUNT} in us-east-1",
        id="queue-missing",
    ),
    pytest.param(
        "WinDataBucket",
        lambda aws: "ww-no-such-bucket",
        "WinDataBucket names the bucket ww-no-such-bucket, which does not exist",
        id="data-bucket-missing",
    ),
    pytest.param(
        "WinDataBucket",
        lambda aws: _in_ireland(aws) or "ww-data-in-ireland",
        "WinDataBucket names the bucket ww-data-in-ireland in eu-west-1, not in the stack's Region us-east-1",
        id="data-bucket-other-region",
    ),
    pytest.param(
        "WinArtifactBucket",
        lambda aws: "ww-no-such-artifacts",
        "WinArtifactBucket names the bucket ww-no-such-artifacts, which does not exist",
        id="artifact-bucket-missing",
    ),
    pytest.param(
        "WinKmsKeyArn",
        lambda aws: NOT_THERE.replace("us-east-1", "eu-west-1"),
        "WinKmsKeyArn names a KMS key in eu-west-1, not in the stack's Region us-east-1",
        id="key-other-region",
    ),
    pytest.param(
        "WinDataKmsKeyArn",
        lambda aws: NOT_THERE,
        f"WinDataKmsKeyArn names a KMS key that does not exist in {ACCOUNT} in us-east-1",
        id="key-missing",
    ),
    pytest.param(
        "WinQueueKmsKeyArn",
        _disabled_key,
        "WinQueueKmsKeyArn names a KMS key that is Disabled: only an Enabled key encrypts",
        id="key-disabled",
    ),
]


@pytest.mark.parametrize(("parameter", "value", "message"), UNWORKABLE)
def test_an_update_to_an_unworkable_input_is_refused_and_changes_nothing(
    running: Clients, parameter: str, value: Any, message: str
) -> None:
    before, change_sets = _parameters(running, STACK), _change_sets(running, STACK)
    with pytest.raises(DeployError) as refused:
        _run(running, STACK, {parameter: value(running)}, yes=True)
    assert str(refused.value) == f"preflight refused: {message}{REFUSED_TAIL}"
    assert _parameters(running, STACK) == before
    assert _change_sets(running, STACK) == change_sets  # none made, none left
    assert _refreshes(running, STACK) == []


def test_the_same_update_with_a_workable_input_does_refresh(running: Clients) -> None:
    """The control: the artifact's new build, once uploaded, is deployed and refreshes the worker, so the
    refusals above did keep a refresh from starting."""
    running.s3.put_object(Bucket=EXAMPLE_INPUTS["ArtifactBucket"], Key="windows/worker-service-2.zip", Body=b"PK")
    result, _ = _run(running, STACK, {"WinArtifactKey": "windows/worker-service-2.zip"}, yes=True)
    assert result.status == "UPDATE_COMPLETE"
    assert len(_refreshes(running, STACK)) == 1


def test_a_create_with_an_unworkable_input_leaves_no_stack(aws: Clients) -> None:
    values = enabled_parameters(ArtifactKey="windows/missing.zip")
    with pytest.raises(DeployError, match=r"^preflight refused: WinArtifactKey names s3://"):
        _run(aws, "ww-preflight-new", values)
    assert not [s for s in aws.cloudformation.list_stacks()["StackSummaries"] if s["StackName"] == "ww-preflight-new"]


def test_the_cli_refuses_in_one_line_and_exit_status_1(
    aws: Clients, endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    values = enabled_parameters(ArtifactKey="windows/missing.zip")
    argv = ["deploy", "--stack-name", "ww-preflight-cli", "--template", str(FEATURE), "--endpoint-url", endpoint]
    argv += ["--template-bucket", TEMPLATE_BUCKET, *(f"--parameter={k}={v}" for k, v in values.items())]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err == (
        "winworkers deploy: preflight refused: WinArtifactKey names "
        f"s3://example-platform-artifacts/windows/missing.zip, which does not exist{REFUSED_TAIL}\n"
    )
    # --skip-preflight says so in one line, and the deploy goes on (to its change set, with --dry-run).
    assert main([*argv, "--skip-preflight", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    skipped = "preflight skipped (--skip-preflight): the queue, buckets, artifact and keys were not looked up"
    assert out.splitlines()[0] == skipped and err == ""
    assert "dry run: the change set is left for review" in out


def test_winworkers_preflight_checks_alone_and_creates_nothing(
    running: Clients, endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    stacks = aws_stacks(running)
    change_sets = _change_sets(running, STACK)
    command = ["preflight", "--template", str(FEATURE), "--endpoint-url", endpoint]
    # An update: the parameters not given are the stack's, which are workable.
    assert main([*command, "--stack-name", STACK]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == f"preflight passed: an update of stack {STACK}; nothing was created"
    assert main([*command, "--stack-name", STACK, "--parameter", "WinDataBucket=ww-no-such-bucket"]) == 1
    out, err = capsys.readouterr()
    assert err == (
        "winworkers preflight: preflight refused: WinDataBucket names the bucket ww-no-such-bucket, "
        f"which does not exist{REFUSED_TAIL}\n"
    )
    # A new stack: nothing to look at while the feature is off (the default), and nothing created.
    assert main([*command, "--stack-name", "ww-preflight-none"]) == 0
    assert capsys.readouterr().out == "preflight passed: a new stack ww-preflight-none; nothing was created\n"
    assert aws_stacks(running) == stacks and _change_sets(running, STACK) == change_sets


class _NoAws:
    """A client that fails the test if anything is called on it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"AWS was called: {name}")


# WinCapacityMode reads these four and no other: given all four, it is judged before any AWS call.
WARM_WITH_SPOT = enabled_parameters(WarmPool="stopped", OnDemandPercentage="30", InstanceTypes="")
RULES_REFUSE = "the template's Rules refuse these values: WinCapacityMode: WinWarmPool=stopped cannot be used with Spot"


def test_winworkers_preflight_refuses_the_given_values_rules_without_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # As deploy: a Rule whose every parameter is given is judged when the values are read, before
    # DescribeStacks (deploy.inputs.read_given); the Rules reading a stack's value once it is read.
    from winworkers.deploy import commands
    from winworkers.deploy.execute import preflight_stack

    no_aws = Clients(_NoAws(), _NoAws(), _NoAws(), "us-east-1", _NoAws())
    with pytest.raises(DeployError) as refused:
        preflight_stack(no_aws, "ww-preflight-rules", FEATURE, WARM_WITH_SPOT, echo=lambda line: None)
    assert str(refused.value).startswith(RULES_REFUSE)
    monkeypatch.setattr(commands, "_connect", lambda args: no_aws)
    flags = [f"--parameter={k}={v}" for k, v in WARM_WITH_SPOT.items()]
    assert main(["preflight", "--stack-name", "ww-preflight-rules", "--template", str(FEATURE), *flags]) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"winworkers preflight: {RULES_REFUSE}") and err.count("\n") == 1, err
    assert out == ""


def aws_stacks(aws: Clients) -> list[str]:
    return sorted(s["StackId"] for s in aws.cloudformation.list_stacks()["StackSummaries"])


# Where the deployer may not look: one line, and it goes on ------------------------------------------------------


def _stubbed(name: str) -> tuple[Any, Stubber]:
    client = boto3.client(name, region_name="us-east-1", **_KEYS)
    return client, Stubber(client)


def _denied(
    s3_answers: list[tuple[str, str, dict[str, str]]], sqs_code: str, kms_code: str
) -> tuple[Clients, list[Stubber]]:
    s3, s3_stub = _stubbed("s3")
    for method, code, headers in s3_answers:
        status = int(code) if code.isdigit() else 400
        s3_stub.add_client_error(method, code, http_status_code=status, response_meta={"HTTPHeaders": headers})
    sqs, sqs_stub = _stubbed("sqs")
    sqs_stub.add_client_error("get_queue_url", sqs_code, http_status_code=400)
    sts, sts_stub = _stubbed("sts")
    sts_stub.add_response("get_caller_identity", {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:root"})
    kms, kms_stub = _stubbed("kms")
    kms_stub.add_client_error("describe_key", kms_code, http_status_code=400)
    others = {"sqs": sqs, "sts": sts, "kms": kms}
    stubs = [s3_stub, sqs_stub, sts_stub, kms_stub]
    for stub in stubs:
        stub.activate()
    return Clients(None, None, s3, "us-east-1", client=others.__getitem__), stubs


def test_what_the_deployer_may_not_look_at_is_one_line_each_and_it_goes_on(feature: dict[str, Any]) -> None:
    """HeadBucket 403 (another account's bucket, or no s3:ListBucket), HeadObject 403 (S3's answer to a
    missing object without s3:ListBucket: not "missing"), another account's queue (SQS answers
    NonExistentQueue for one it may not see), a key the key policy does not let it describe."""
    clients, stubs = _denied(
        [("head_bucket", "403", {}), ("head_bucket", "403", {}), ("head_object", "403", {})],
        "AWS.SimpleQueueService.NonExistentQueue",
        "AccessDeniedException",
    )
    values = enabled_parameters(DataKmsKeyArn=NOT_THERE)
    out: list[str] = []
    run(clients, feature, values, out.append)  # no DeployError: it goes on
    assert out == [
        f"preflight: WinWorkQueueArn {EXAMPLE_INPUTS['WorkQueueArn']}: could not look "
        "(AWS.SimpleQueueService.NonExistentQueue: another account's, or no permission): going on",
        "preflight: WinDataBucket example-platform-data: could not look (403: another account's, or no "
        "s3:ListBucket): going on",
        "preflight: WinArtifactBucket example-platform-artifacts: could not look (403: another account's, or no "
        "s3:ListBucket): going on",
        "preflight: WinArtifactKey s3://example-platform-artifacts/windows/worker-service.zip: could not look "
        "(403: no s3:ListBucket, or not ours): going on",
        f"preflight: WinDataKmsKeyArn {NOT_THERE}: could not look (AccessDeniedException: another account's key, "
        "or no kms:DescribeKey): going on",
    ]
    for stub in stubs:
        stub.assert_no_pending_responses()


def test_a_denied_bucket_in_another_region_is_still_refused(feature: dict[str, Any]) -> None:
    """HeadBucket's answer carries the bucket's Region (x-amz-bucket-region) even when access is denied."""
    ireland = {"x-amz-bucket-region": "eu-west-1"}
    clients, _ = _denied(
        [("head_bucket", "403", ireland), ("head_bucket", "403", {}), ("head_object", "403", {})],
        "AWS.SimpleQueueService.NonExistentQueue",
        "AccessDeniedException",
    )
    (refused,) = [f for f in preflight(clients, feature, enabled_parameters()) if f.refused]
    assert refused.line() == (
        "WinDataBucket names the bucket example-platform-data in eu-west-1, not in the stack's Region us-east-1"
    )


# What is looked at ------------------------------------------------------------------------------------------------


def test_only_the_inputs_of_a_feature_that_is_on_are_looked_at(feature: dict[str, Any]) -> None:
    assert targets(feature, {**enabled_parameters(), SWITCH: "false"}) == {}
    assert set(targets(feature, enabled_parameters(DataKmsKeyArn=NOT_THERE))) == {
        "WinWorkQueueArn",
        "WinDataBucket",
        "WinArtifactBucket",
        "WinArtifactKey",
        "WinDataKmsKeyArn",
    }
    # A parent that wires its own queue and bucket: only the inputs that are its parameters.
    parent = json.loads((ROOT / "templates" / "parent-inline.json").read_text())
    given = {SWITCH: "true", "WinArtifactBucket": "a-bucket", "WinArtifactKey": "w.zip"}
    assert targets(parent, given) == {"WinArtifactBucket": "a-bucket", "WinArtifactKey": "w.zip"}


# The worker artifact's S3 scope: no IAM wildcards -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("WinDataPrefix", "team*/"),
        ("WinDataPrefix", "team?/"),
        ("WinArtifactKey", "*.zip"),
        ("WinArtifactKey", "b?.zip"),
    ],
)
def test_a_wildcard_in_the_artifact_scope_is_refused(feature: dict[str, Any], parameter: str, value: str) -> None:
    (problem,) = check_parameters(feature, {parameter: value})
    assert problem.startswith(f"{parameter}={value!r} is not allowed: ") and "without * or ?" in problem
    name = parameter.removeprefix("Win")
    with pytest.raises(ValueError, match=rf"^wired {name}='{value.replace('*', '[*]').replace('?', '[?]')}' is not"):
        add_to(Template(), wired={name: value})


def test_an_empty_data_prefix_is_allowed_and_described_as_the_whole_bucket(feature: dict[str, Any]) -> None:
    assert check_parameters(feature, {"WinDataPrefix": ""}) == []
    assert "empty: the whole bucket" in feature["Parameters"]["WinDataPrefix"]["Description"]
    rendered = json.dumps(render(feature, enabled_parameters(DataPrefix="")))
    assert '"arn:aws:s3:::example-platform-data/*"' in rendered  # what the instance role may read and write


def test_a_running_stack_whose_prefix_is_now_refused_is_stopped_before_any_change(aws: Clients, tmp_path: Path) -> None:
    """The second deploy: a stack made by 0.3.0, whose DataPrefix holds a *, keeps it on an update
    (UsePreviousValue). winworkers deploy checks the kept value against the new pattern and refuses,
    naming it, before anything changes; a value given instead goes through."""
    old = json.loads(FEATURE.read_text())
    old["Parameters"]["WinDataPrefix"]["AllowedPattern"] = r"^([A-Za-z0-9!_.*'()-]+/)*$"  # 0.3.0's
    template = tmp_path / "0.3.0.json"
    template.write_text(json.dumps(old))
    stack = "ww-preflight-wildcard"
    result, _ = _run(aws, stack, enabled_parameters(DataPrefix="team*/"), template=template)
    assert result.status == "CREATE_COMPLETE"
    with pytest.raises(DeployError) as refused:
        _run(aws, stack, {"WinMaxSize": "6"}, yes=True)
    assert str(refused.value).startswith("WinDataPrefix='team*/' is not allowed: ")
    assert _parameters(aws, stack)["WinDataPrefix"] == "team*/"
    result, _ = _run(aws, stack, {"WinDataPrefix": "team/"}, yes=True)
    assert result.status == "UPDATE_COMPLETE" and _parameters(aws, stack)["WinDataPrefix"] == "team/"


@pytest.mark.parametrize(
    ("constraint", "refused"), [(None, False), ("EU", True), ("eu-west-1", True), ("us-east-2", True)]
)
def test_without_bucket_region_getbucketlocation_is_read_with_its_quirks(
    feature: dict[str, Any], constraint: str | None, refused: bool
) -> None:
    """GetBucketLocation: null is us-east-1, EU is eu-west-1 (its API reference); read when HeadBucket's
    answer has no BucketRegion."""
    s3, stub = _stubbed("s3")
    stub.add_response("head_bucket", {})
    stub.add_response("get_bucket_location", {"LocationConstraint": constraint} if constraint else {})
    with stub:
        finding = bucket_finding(Clients(None, None, s3, "us-east-1"), "WinDataBucket", "example-platform-data")
    assert (finding is not None) == refused
    if finding is not None:
        region = "eu-west-1" if constraint == "EU" else constraint
        assert finding.line() == (
            f"WinDataBucket names the bucket example-platform-data in {region}, not in the stack's Region us-east-1"
        )


def test_upgrading_a_running_stack_with_its_values_refreshes_nothing(aws: Clients, tmp_path: Path) -> None:
    """0.3.0's template differs from this one only in the two patterns and their texts: the update
    is not risky (deploy would need --yes otherwise) and starts no refresh."""
    old = json.loads(FEATURE.read_text())
    parameters = old["Parameters"]
    parameters["WinDataPrefix"].update(
        AllowedPattern=r"^([A-Za-z0-9!_.*'()-]+/)*$",
        ConstraintDescription="a key prefix ending in /",
        Description="Key prefix the workers may use.",
    )
    parameters["WinArtifactKey"].update(
        AllowedPattern=r"^([A-Za-z0-9!_.*'()/-]+\.zip)?$", ConstraintDescription="a .zip key"
    )
    template = tmp_path / "0.3.0.json"
    template.write_text(json.dumps(old))
    stack = "ww-preflight-upgrade"
    assert _run(aws, stack, enabled_parameters(MinSize="1"), template=template)[0].status == "CREATE_COMPLETE"
    result, _ = _run(aws, stack, {})  # no --yes, no terminal: refused if it replaced, removed or refreshed
    assert result.status in ("UPDATE_COMPLETE", "CREATE_COMPLETE") and _refreshes(aws, stack) == []


# Review R1 -------------------------------------------------------------------------------------------------------


def test_a_multi_region_key_in_the_updating_state_is_not_refused() -> None:
    """KMS developer guide, "Change the primary key in a set of multi-Region keys": after UpdatePrimaryRegion
    the old and new primary keys are Updating for a few seconds, and "while the key state is Updating, you
    can use the keys in cryptographic operations". Preflight refuses every state but Enabled, saying
    "only an Enabled key encrypts": a correct, working key is refused."""
    from winworkers.deploy.preflight import key_finding

    kms, stub = _stubbed("kms")
    arn = "arn:aws:kms:us-east-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    stub.add_response(
        "describe_key",
        {"KeyMetadata": {"KeyId": "mrk-1234abcd12ab34cd56ef1234567890ab", "Arn": arn, "KeyState": "Updating"}},
    )
    with stub:
        finding = key_finding(
            Clients(None, None, None, "us-east-1", client={"kms": kms}.__getitem__), "WinKmsKeyArn", arn
        )
    assert finding is None or not finding.refused, finding.line()
