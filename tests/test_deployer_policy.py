"""winworkers deployer-policy: managed policies that each fit IAM's quota, their actions derived from
the registry schemas' handler permissions of the resource types the template renders (issue 25)."""

from __future__ import annotations

import functools
import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, render
from winworkers import WorkersConfig, build_template
from winworkers.cli import main
from winworkers.deployer_policy import (
    DEPLOY_ACTIONS,
    DOCUMENTS,
    HANDLERS,
    LEFT_OUT,
    MANAGED_POLICY_CHARACTERS,
    NARROWED,
    NOT_IAM_ACTIONS,
    SERVICE_LINKED_ROLES,
    allows,
    policy_document,
    policy_documents,
    policy_size,
    resource_types,
    schema_permissions,
    statements,
)
from winworkers.handler_permissions import HANDLER_PERMISSIONS
from winworkers.renderings import MODES, enabled_parameters

CONFIGS = [WorkersConfig(), WorkersConfig(include_alarms=False), WorkersConfig(prefix="Batch", max_fleet_size=50)]
THREE = "m6a.large,c6i.large,m5.large"
# Every capacity variant on top of each network mode (the switch on): the warm pool, Spot.
VARIANTS = {
    "plain": {},
    "warm-pool": {"WarmPool": "stopped"},
    "spot": {"InstanceTypes": THREE, "OnDemandPercentage": "30", "OnDemandBaseCapacity": "1"},
}


@functools.cache
def _built(config: WorkersConfig) -> str:
    """The feature's template for config, built once per module (the cases below are modes and variants of
    a few configs); a new dict from it for each caller."""
    return build_template(config).to_json()


def _schema(kind: str) -> dict[str, Any]:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    schema: dict[str, Any] = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
    return schema


def _union(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"Statement": [s for d in documents.values() for s in d["Statement"]]}


def _sets(resource: dict[str, Any], prop: str) -> bool:
    value: Any = resource.get("Properties", {})
    for part in prop.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


@pytest.mark.parametrize("config", CONFIGS[::2], ids=["default", "prefixed"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_rendered_types_handler_permissions_are_granted(config: WorkersConfig, variant: str, mode: str) -> None:
    """Each handler permission (create, update, delete, read) of the schema cfn-lint ships for every
    type the mode renders is granted, or left out by a rule: not an IAM action, or a property unset."""
    template = json.loads(_built(config))
    rendered = render(template, enabled_parameters(config, mode=mode, **VARIANTS[variant]))
    allowed = _union(policy_documents(config, template=template))
    kinds = {r["Type"] for r in rendered["Resources"].values() if not r["Type"].startswith("Custom::")}
    assert "AWS::AutoScaling::AutoScalingGroup" in kinds and ("AWS::AutoScaling::WarmPool" in kinds) == (
        variant == "warm-pool"
    )
    for kind in sorted(kinds):
        handlers = _schema(kind).get("handlers", {})
        unset = {
            a
            for prop, listed in LEFT_OUT.get(kind, {}).items()
            if not any(_sets(r, prop) for r in rendered["Resources"].values() if r["Type"] == kind)
            for a in listed
        }
        for handler in HANDLERS:
            for action in handlers.get(handler, {}).get("permissions", []):
                granted = allows(allowed, NARROWED.get(action, action)) or action in NOT_IAM_ACTIONS or action in unset
                assert granted, f"{kind} {handler}: {action}"
    assert all(allows(allowed, str(a.JSONrepr())) for a in DEPLOY_ACTIONS)


def test_a_nested_parents_stack_handler_permissions_are_granted_on_the_stack() -> None:
    """The parent creates the child (AWS::CloudFormation::Stack) with the caller's rights."""
    document = policy_document(nested=True, stack_name="platform")
    stack = next(s for s in document["Statement"] if s["Sid"] == "CloudFormation")
    handlers = _schema("AWS::CloudFormation::Stack")["handlers"]
    for action in {a for h in HANDLERS for a in handlers[h]["permissions"]}:
        # iam:PassRole: the feature's roles, each to its service (test_pass_role_is_scoped_...).
        assert allows({"Statement": [stack]}, action) or action == "iam:PassRole", action
    assert stack["Resource"] == [
        "arn:aws:cloudformation:*:*:stack/platform/*",
        "arn:aws:cloudformation:*:*:stack/platform-*/*",
    ]
    assert not allows(policy_document(), "cloudformation:CreateStack")


def test_the_shipped_handler_permissions_are_cfn_lints() -> None:
    """winworkers/handler_permissions.py (cfn-lint is no runtime dependency) is what cfn-lint's loader says,
    for every type any config renders: run scripts/handler_permissions.py when cfn-lint moves."""
    kinds = set(resource_types(build_template().to_dict())) | {"AWS::CloudFormation::Stack"}
    kinds -= {"AWS::CloudFormation::CustomResource"}
    assert set(HANDLER_PERMISSIONS) == kinds
    assert schema_permissions(kinds) == HANDLER_PERMISSIONS


@pytest.mark.parametrize("nested", [False, True], ids=["inline", "nested"])
@pytest.mark.parametrize("config", [*CONFIGS, WorkersConfig(prefix="P" * 32)], ids=["d", "na", "pre", "long"])
def test_each_document_fits_a_managed_policy(config: WorkersConfig, nested: bool) -> None:
    documents = policy_documents(config, nested=nested, template_bucket="b" * 63, stack_name="s" * 60)
    assert len(documents) == len(DOCUMENTS)
    for name, document in documents.items():
        minified = json.dumps(document, separators=(",", ":"))
        # IAM does not count white space: the minified JSON holds none, so its length is IAM's count.
        assert not re.search(r"\s", minified) and policy_size(document) == len(minified)
        assert policy_size(document) <= MANAGED_POLICY_CHARACTERS, name
        assert re.fullmatch(r"[\w+=,.@-]{1,128}", name), name
    # The split loses nothing and repeats nothing.
    whole = policy_document(config, nested=nested, template_bucket="b" * 63, stack_name="s" * 60)
    split = [s for d in documents.values() for s in d["Statement"]]
    assert sorted(whole["Statement"], key=str) == sorted(split, key=str) and len({s["Sid"] for s in split}) == len(
        split
    )


def test_the_documents_are_deterministic() -> None:
    first = json.dumps(policy_documents(nested=True))
    assert first == json.dumps(policy_documents(nested=True))
    assert list(policy_documents()) == [
        "WinDeployerFleet",
        "WinDeployerRoles",
        "WinDeployerServices",
        "WinDeployerImage",
    ]


def _awacs_actions() -> dict[str, set[str]]:
    import awacs
    from awacs.aws import Action

    known: dict[str, set[str]] = {}
    for module in pkgutil.iter_modules(awacs.__path__):
        loaded = importlib.import_module(f"awacs.{module.name}")
        prefix = getattr(loaded, "prefix", None)
        if isinstance(prefix, str):
            known.setdefault(prefix, set()).update(n for n, v in vars(loaded).items() if isinstance(v, Action))
    return known


def _real(action: str, known: dict[str, set[str]]) -> bool:
    service, _, name = action.partition(":")
    pattern = re.compile(re.escape(name).replace(r"\*", ".*") + "$")
    return any(pattern.match(a) for a in known.get(service, set()))


def test_the_rules_leave_out_only_what_the_schemas_list() -> None:
    """LEFT_OUT names real properties and actions of the type's schema; NOT_IAM_ACTIONS are in a schema
    and in no service of AWS's Service Authorization Reference (awacs's action lists); every action
    granted is in it."""
    known = _awacs_actions()
    for kind, rules in LEFT_OUT.items():
        assert kind in HANDLER_PERMISSIONS, kind
        properties = _schema(kind)["properties"]
        for prop, listed in rules.items():
            assert prop.split(".")[0] in properties, (kind, prop)
            assert set(listed) <= set(HANDLER_PERMISSIONS[kind]), (kind, prop)
    listed_anywhere = {a for perms in HANDLER_PERMISSIONS.values() for a in perms}
    assert listed_anywhere >= NOT_IAM_ACTIONS
    assert not [a for a in NOT_IAM_ACTIONS if _real(a, known)]
    document = policy_document(nested=True)
    granted = {a for s in document["Statement"] for a in s["Action"]}
    assert not [a for a in granted if not _real(a, known)]


def test_a_left_out_property_that_is_set_is_refused() -> None:
    template: dict[str, Any] = json.loads(build_template().to_json())
    template["Resources"]["WinRefreshFunction"]["Properties"]["KmsKeyArn"] = "arn:aws:kms:us-east-1:1:key/k"
    with pytest.raises(ValueError, match=r"^WinRefreshFunction sets KmsKeyArn: grant kms:CreateGrant"):
        statements(template)


def test_service_linked_roles_are_scoped_to_the_services_whose_handlers_create_one() -> None:
    document = policy_document()
    linked = [s for s in document["Statement"] if s["Action"] == ["iam:CreateServiceLinkedRole"]]
    needing = {
        k
        for k in resource_types(build_template().to_dict())
        if "iam:CreateServiceLinkedRole" in HANDLER_PERMISSIONS.get(k, ())
    }
    needing -= {
        k for k in needing if "iam:CreateServiceLinkedRole" in {a for v in LEFT_OUT.get(k, {}).values() for a in v}
    }
    services = sorted({SERVICE_LINKED_ROLES[k][0] for k in needing})
    assert services == ["autoscaling.amazonaws.com", "imagebuilder.amazonaws.com", "route53resolver.amazonaws.com"]
    assert [s["Condition"]["StringEquals"]["iam:AWSServiceName"] for s in linked] == services
    assert [s["Resource"] for s in linked] == [
        ["arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"],
        ["arn:aws:iam::*:role/aws-service-role/imagebuilder.amazonaws.com/AWSServiceRoleForImageBuilder"],
        ["arn:aws:iam::*:role/aws-service-role/route53resolver.amazonaws.com/AWSServiceRoleForRoute53Resolver"],
    ]


def _without(*kinds: str) -> dict[str, Any]:
    template: dict[str, Any] = json.loads(build_template().to_json())
    template["Resources"] = {n: r for n, r in template["Resources"].items() if r["Type"] not in kinds}
    return template


def _document(template: dict[str, Any]) -> dict[str, Any]:
    return {"Statement": [json.loads(s.to_json()) for s in statements(template)]}


def test_a_removed_type_drops_its_actions() -> None:
    full = _document(json.loads(build_template().to_json()))
    without = _document(_without("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"))
    # Alarm-only actions go; those the scaling policies also need (target tracking's alarms) stay.
    # The dashboard tags too (its schema's handlers): only without both does TagResource go.
    assert allows(full, "cloudwatch:TagResource") and not allows(without, "cloudwatch:TagResource")
    assert allows(_document(_without("AWS::CloudWatch::Alarm")), "cloudwatch:TagResource")
    assert allows(full, "cloudwatch:PutDashboard") and not allows(without, "cloudwatch:PutDashboard")
    assert allows(without, "cloudwatch:PutMetricAlarm")
    no_queue = _without("AWS::SQS::Queue")
    assert "AWS::SQS::Queue" not in resource_types(no_queue)
    assert not [a for s in _document(no_queue)["Statement"] for a in s["Action"] if a.startswith("sqs:")]
    no_group = _document(_without("AWS::AutoScaling::AutoScalingGroup"))
    assert "ServiceLinkedRoleAutoScaling" not in {s["Sid"] for s in no_group["Statement"]}
    assert not allows(no_group, "ec2:RunInstances")
    no_logging = _document(_without("AWS::Route53Resolver::ResolverQueryLoggingConfig"))
    assert "ServiceLinkedRoleRoute53Resolver" not in {s["Sid"] for s in no_logging["Statement"]}


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("AWS::Made::Up", r"^no deployer actions known for AWS::Made::Up: run scripts/handler_permissions.py"),
        ("AWS::S3::Bucket", r"^no deployer actions known for AWS::S3::Bucket"),
    ],
)
def test_an_unknown_type_is_refused_not_skipped(kind: str, message: str) -> None:
    template: dict[str, Any] = {"Resources": {"Thing": {"Type": kind}}}
    with pytest.raises(ValueError, match=message):
        statements(template)


def test_pass_role_is_scoped_to_each_role_and_its_service() -> None:
    document = policy_document()
    passes = {s["Sid"]: s for s in document["Statement"] if s["Action"] == ["iam:PassRole"]}
    assert set(passes) == {
        "PassRoleWinInstanceRole",
        "PassRoleWinRefreshRole",
        "PassRoleWinFlowLogsRole",
        "PassRoleWinEvidenceRole",
        "PassRoleWinWakeRole",
        # ImageSource=baked: the build's instances' role, and Image Builder's execution role (the pipeline's,
        # the first image's and the lifecycle policy's).
        "PassRoleWinBuildRole",
        "PassRoleWinImageExecutionRole",
    }
    assert passes["PassRoleWinInstanceRole"]["Resource"] == ["arn:aws:iam::*:role/*-WinInstanceRole-*"]
    assert passes["PassRoleWinInstanceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}
    }
    assert passes["PassRoleWinRefreshRole"]["Condition"]["StringEquals"]["iam:PassedToService"] == [
        "lambda.amazonaws.com"
    ]
    ami = next(s for s in document["Statement"] if s["Sid"] == "WindowsAmiParameters")
    # Reads: AWS's AMI parameters, and the stack's own (ImageSource=baked: compute.IMAGE_PARAMETER); writes:
    # the stack's own only (row 248).
    assert ami["Resource"] == [
        "arn:aws:ssm:*:*:parameter/aws/service/ami-windows-latest/*",
        "arn:aws:ssm:*:*:parameter/winworkers/*/*",
    ]
    assert allows({"Statement": [ami]}, "ssm:GetParameters")
    assert not allows({"Statement": [ami]}, "ssm:PutParameter")
    own = next(s for s in document["Statement"] if s["Sid"] == "OwnParameters")
    assert own["Resource"] == ["arn:aws:ssm:*:*:parameter/winworkers/*/*"]
    assert not [s for s in document["Statement"] if "iam:" in json.dumps(s["Action"]) and s["Resource"] == ["*"]]
    assert not [s for s in document["Statement"] if "ssm:" in json.dumps(s["Action"]) and s not in (ami, own)]


def test_the_command_prints_policies_that_each_fit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "workers.toml"
    config.write_text('prefix = "Batch"\n')
    argv = ["deployer-policy", "--config", str(config), "--template-bucket", "ci-templates", "--nested"]
    assert main([*argv, "--stack-name", "platform"]) == 0
    documents = json.loads(capsys.readouterr().out)
    assert list(documents) == [
        "platform-BatchDeployerFleet",
        "platform-BatchDeployerRoles",
        "platform-BatchDeployerServices",
        "platform-BatchDeployerImage",
    ]
    for document in documents.values():
        assert document["Version"] == "2012-10-17"
        assert len("".join(json.dumps(document).split())) <= MANAGED_POLICY_CHARACTERS
    sids = {s["Sid"]: s for d in documents.values() for s in d["Statement"]}
    assert sids["TemplateObjects"]["Resource"] == ["arn:aws:s3:::ci-templates/*"]
    assert "cloudformation:CreateStack" in sids["CloudFormation"]["Action"]
    stacks = ["arn:aws:cloudformation:*:*:stack/platform/*", "arn:aws:cloudformation:*:*:stack/platform-*/*"]
    assert sids["CloudFormation"]["Resource"] == stacks
    assert "PassRoleBatchInstanceRole" in sids


def test_the_command_writes_one_file_per_policy_and_how_to_create_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "my policies"
    assert main(["deployer-policy", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    documents = policy_documents()
    assert lines == [
        f"aws iam create-policy --policy-name {name} --policy-document 'file://{out / name}.json'" for name in documents
    ]
    for name, document in documents.items():
        assert json.loads((out / f"{name}.json").read_text()) == document
    # What the printed commands do, in moto's IAM (in-process): its policy grammar check accepts each file.
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        for name in documents:
            iam.create_policy(PolicyName=name, PolicyDocument=(out / f"{name}.json").read_text())
        assert sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]) == sorted(documents)
    (tmp_path / "file").write_text("")
    assert main(["deployer-policy", "--out", str(tmp_path / "file" / "x")]) == 2
    assert capsys.readouterr().err.startswith(f"winworkers: error: {tmp_path / 'file' / 'x'}: ")


def test_the_readme_counts_the_policies_and_roles_as_built() -> None:
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
    page = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")  # "The deployer's permissions"
    paragraph = page[page.index("- Deploying needs the permissions") :].split("\n- ")[0]
    paragraph = " ".join(paragraph.split())
    roles = [n for n, r in build_template().to_dict()["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    documents = policy_documents(nested=True, stack_name="s" * 60, template_bucket="b" * 63)
    assert f"the feature's {words[len(roles)]} roles" in paragraph
    assert f"{words[len(documents)]} managed policies" in paragraph
    long = {"nested": True, "stack_name": "s" * 60, "template_bucket": "b" * 63}
    built = [*policy_documents().values(), *policy_documents(WorkersConfig(prefix="P" * 32), **long).values()]
    largest = max(policy_size(d) for d in built)
    match = re.search(r"each at most ([\d,]+) characters", paragraph)
    assert match and largest <= int(match.group(1).replace(",", "")) < MANAGED_POLICY_CHARACTERS, largest


def _stale_mismatch(issue: str, detail: Any) -> bool:
    """parliament 1.6.4's data knows ModifyVpcEndpoint on vpc-endpoint only; the call also names the subnets,
    security groups and route tables it adds (AddSubnetId, AddSecurityGroupId, AddRouteTableId: the EC2 API
    reference), which EndpointAzs changes in place, so the stack's own (tagged) ones are granted too."""
    return issue == "RESOURCE_MISMATCH" and all(d.get("action") == "ec2:ModifyVpcEndpoint" for d in detail)


def test_parliament_finds_nothing_medium_or_worse_in_the_deployer_policies() -> None:
    """parliament (a dev tool) knows each action's resource formats: every action is real and its ARN fits."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
        from parliament import analyze_policy_string, enhance_finding

    known = _awacs_actions()
    for nested in (False, True):
        for document in policy_documents(nested=nested, template_bucket="ci-templates", stack_name="platform").values():
            analysis = analyze_policy_string(
                json.dumps(document), include_community_auditors=False, ignore_private_auditors=True
            )
            findings = [
                f
                for f in map(enhance_finding, analysis.findings)
                if f.issue != "RESOURCE_STAR" and not _stale_mismatch(f.issue, f.detail)
            ]
            # parliament's action list is older than awacs's (generated from AWS's reference): newer actions.
            unknown = [f.detail.split()[-1] for f in findings if f.issue == "UNKNOWN_ACTION"]
            assert [f for f in findings if f.issue != "UNKNOWN_ACTION"] == [], [(f.issue, f.detail) for f in findings]
            assert all(_real(a, known) for a in unknown), unknown


def test_the_output_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    """Sets order by the hash seed: the policies and the templates they come from do not."""
    import os
    import subprocess
    import sys

    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        argv = [sys.executable, "-m", "winworkers"]
        policy = subprocess.run([*argv, "deployer-policy", "--nested"], env=env, capture_output=True, check=True)
        out = tmp_path / seed
        subprocess.run([*argv, "build", "--out", str(out)], env=env, capture_output=True, check=True)
        outputs.append((policy.stdout, (out / "winworkers.json").read_bytes()))
    assert outputs[0] == outputs[1]


def test_a_stack_name_too_long_for_a_policy_name_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        ValueError, match=r"^--stack-name 'a{120}': the policy name a{120}-WinDeployerFleet is over 128"
    ):
        policy_documents(stack_name="a" * 120)
    assert main(["deployer-policy", "--stack-name", "a" * 120]) == 1
    err = capsys.readouterr().err
    assert err.startswith("winworkers deployer-policy: --stack-name") and err.count("\n") == 1


def test_the_standing_resource_needs_no_statement_and_its_schema_names_no_permission() -> None:
    # CloudFormation keeps a WaitConditionHandle itself: the type is rendered, adds no action,
    # and cfn-lint's shipped schema for it declares no handler permissions.
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    kind = "AWS::CloudFormation::WaitConditionHandle"
    assert kind in resource_types(json.loads(build_template().to_json()))
    assert "handlers" not in PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
    assert not HANDLER_PERMISSIONS.get(kind)


# Review R1 -----------------------------------------------------------------------------------------------------

# Write actions that act on a resource that already exists, by its ARN (Service Authorization Reference,
# "Actions, resources, and condition keys for AWS Lambda" / "... Amazon SQS" / "... CloudWatch Logs" /
# "... Amazon EventBridge": each takes a function, queue, log-group or rule resource). Granted on "*" they reach
# every such resource in the account, not the stack's: lambda:UpdateFunctionCode plus lambda:InvokeFunction
# runs the deployer's code as any function's execution role (no iam:PassRole is asked for either), and
# sqs:SetQueueAttributes / sqs:DeleteQueue reach the platform's own work queue (WorkQueueArn).
EXISTING_RESOURCE_WRITES = (
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:InvokeFunction",
    "lambda:AddPermission",
    "lambda:DeleteFunction",
    "sqs:SetQueueAttributes",
    "sqs:DeleteQueue",
    "logs:DeleteLogGroup",
    "events:PutTargets",
    # Another fleet's group and launch template: a new version with other UserData runs as that fleet's role
    # (no iam:PassRole when the profile is kept); another VPC's security group opened to anywhere.
    "autoscaling:UpdateAutoScalingGroup",
    "ec2:CreateLaunchTemplateVersion",
    "ec2:AuthorizeSecurityGroupEgress",
)


@pytest.mark.parametrize("action", EXISTING_RESOURCE_WRITES)
def test_writes_to_existing_resources_are_not_granted_on_every_resource_in_the_account(action: str) -> None:
    """With --stack-name the stack's resources have known name patterns (CloudFormation names them
    <stack>-<logical id>-<random>, as the IAM statements already assume) and carry the
    aws:cloudformation:stack-name tag: these writes belong on them, by ARN or by a tag condition."""
    import fnmatch as _fnmatch

    documents = policy_documents(stack_name="platform-winworkers")
    on_everything = [
        s.get("Sid")
        for d in documents.values()
        for s in d["Statement"]
        if any(_fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in s["Action"])
        and "*" in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        and not s.get("Condition")  # e.g. aws:ResourceTag/aws:cloudformation:stack-name would scope it
    ]
    assert on_everything == [], f"{action} is granted on '*' by {on_everything}"


@pytest.mark.parametrize(
    "action", ["ec2:GetPasswordData", "ec2:GetConsoleScreenshot", "ec2:GetConsoleOutput", "ec2:GetLaunchTemplateData"]
)
def test_the_ec2_get_wildcard_does_not_reach_any_windows_instances_password_or_screen(action: str) -> None:
    """The Auto Scaling group's schema lists ec2:Get*; granted as is (NARROWED narrows ssm:Get* only) it
    lets the deployer read any instance's encrypted Administrator password (GetPasswordData), screen
    (GetConsoleScreenshot), console output, and any launch template's UserData (Service Authorization
    Reference, Amazon EC2). Nothing the template renders needs them; narrow it as ssm:Get* is."""
    for documents in (policy_documents(), policy_documents(stack_name="platform-winworkers")):
        assert not allows(_union(documents), action)


@pytest.mark.parametrize(
    "argv",
    [
        ["deployer-policy", "--template-bucket", "templates/winworkers.json"],
        # deploy's --template, which deployer-policy does not have: argparse takes it as --template-bucket's prefix.
        ["deployer-policy", "--template", "templates/winworkers.json"],
    ],
)
def test_a_template_bucket_that_is_no_bucket_name_is_refused_in_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy refuses --template-bucket 'templates/winworkers.json' (not an S3 bucket name); deployer-policy prints,
    with exit status 0, policies whose TemplateBucket statements name arn:aws:s3:::templates/winworkers.json, which
    grant nothing on the bucket deploy will use: the first upload of a template then fails with AccessDenied."""
    assert main(argv) != 0
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "templates/winworkers.json" in err


# Review R1, the fix: SCOPES ----------------------------------------------------------------------------------


def _statements_by_sid(**kwargs: Any) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for d in policy_documents(**kwargs).values() for s in d["Statement"]}


def test_the_stacks_own_resources_are_scoped_by_name_or_by_the_stacks_tag() -> None:
    """With --stack-name: each generated name <stack>-<logical id>-* (review 3: not a sibling stack's
    <stack>-other-...), the group's explicit name, EC2 by the stack's own tag (a nested feature stack's
    <stack>-*); without it: each resource type, and EC2 resources CloudFormation tagged."""
    named = _statements_by_sid(stack_name="platform")
    assert named["Lambda"]["Resource"] == [
        "arn:aws:lambda:*:*:function:platform-WinEvidenceFunction-*",
        "arn:aws:lambda:*:*:function:platform-WinRefreshFunction-*",
        "arn:aws:lambda:*:*:function:platform-WinWakeFunction-*",
    ]
    assert named["SQS"]["Resource"] == ["arn:aws:sqs:*:*:platform-WinRefreshDeadLetters-*"]
    assert "arn:aws:logs:*:*:log-group:platform-WinHostLogs-*" in named["Logs"]["Resource"]
    assert all(r.startswith("arn:aws:events:*:*:rule/platform-Win") for r in named["Events"]["Resource"])
    group = "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/platform-WinWorkers"
    assert named["AutoScaling"]["Resource"] == [group]
    tag = "aws:ResourceTag/aws:cloudformation:stack-name"
    assert named["EC2"]["Condition"] == {"StringLike": {tag: ["platform"]}}
    assert allows({"Statement": [named["EC2"]]}, "ec2:AuthorizeSecurityGroupIngress")
    assert not allows({"Statement": [named["EC2Anywhere"]]}, "ec2:AuthorizeSecurityGroupIngress")
    assert named["EC2"]["Resource"][-1] == "arn:aws:ec2:*:*:security-group/*"
    # CloudFormation gives a launch template no stack tag (row 205): its type only, never "*".
    assert named["EC2ByType"]["Resource"][0] == "arn:aws:ec2:*:*:launch-template/*"
    assert allows({"Statement": [named["EC2ByType"]]}, "ec2:CreateLaunchTemplateVersion")
    assert named["EC2TagOnCreate"]["Condition"]["StringEquals"]["ec2:CreateAction"][:2] == [
        "AuthorizeSecurityGroupEgress",
        "AuthorizeSecurityGroupIngress",
    ]
    anywhere = _statements_by_sid()
    assert anywhere["Lambda"]["Resource"] == ["arn:aws:lambda:*:*:function:*"]
    assert anywhere["EC2"]["Condition"] == {"StringLike": {tag: ["*"]}}
    # A generated name the type's limit could cut (64 for functions and rules), or a nested feature stack's
    # (named by the parent): the type's every resource, not a pattern the cut name would miss.
    long = _statements_by_sid(stack_name="s" * 40)
    assert long["Lambda"]["Resource"] == ["arn:aws:lambda:*:*:function:*"]
    assert f"arn:aws:logs:*:*:log-group:{'s' * 40}-WinHostLogs-*" in long["Logs"]["Resource"]
    nested = _statements_by_sid(stack_name="platform", nested=True)
    nested_group = "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/platform-*-WinWorkers"
    assert nested["SQS"]["Resource"] == ["arn:aws:sqs:*:*:*"] and nested["AutoScaling"]["Resource"] == [nested_group]
    assert nested["EC2"]["Condition"] == {"StringLike": {tag: ["platform", "platform-*"]}}


def test_the_groups_name_is_the_stacks_name_first() -> None:
    """The AutoScaling scope's <stack>-* matches the group only because its explicit name starts so."""
    for config in CONFIGS:
        resources = build_template(config).to_dict()["Resources"]
        kind = "AWS::AutoScaling::AutoScalingGroup"
        names = [r["Properties"]["AutoScalingGroupName"] for r in resources.values() if r["Type"] == kind]
        assert names and all(n["Fn::Sub"].startswith("${AWS::StackName}-") for n in names), names


def test_every_action_scoped_by_the_stacks_tag_takes_a_resource_tag_condition() -> None:
    """A tag condition on an action whose resources take no aws:ResourceTag would deny it: every action of a
    statement so conditioned has a resource type that does (AWS's Service Authorization Reference, as
    parliament ships it), and every action of an ARN-scoped statement has a resource type (none on "*" only)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import parliament

    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    services = {s["prefix"]: s for s in definition}
    for statement in _statements_by_sid(stack_name="platform").values():
        if statement["Resource"] == ["*"] and not statement.get("Condition", {}).get("StringLike"):
            continue
        for action in statement["Action"]:
            prefix, _, name = action.partition(":")
            service = services[prefix]
            tagged = {r["resource"] for r in service["resources"] if "aws:ResourceTag/${TagKey}" in r["condition_keys"]}
            privilege = next((p for p in service["privileges"] if p["privilege"] == name), None)
            if privilege is None:  # newer than parliament's list (test_parliament_finds_nothing_...)
                continue
            kinds = {t["resource_type"].rstrip("*") for t in privilege["resource_types"]} - {""}
            assert kinds, f"{action} takes no resource: {statement['Sid']} cannot scope it"
            if "StringLike" in statement.get("Condition", {}):
                assert kinds & tagged, f"{action}: no resource type of it takes aws:ResourceTag"


def test_deployer_policy_takes_no_abbreviated_option(capsys: pytest.CaptureFixture[str]) -> None:
    """No option is a prefix of another here (deploy's --template was taken for --template-bucket)."""
    with pytest.raises(SystemExit) as exited:
        main(["deployer-policy", "--template-buck", "ci-templates"])
    assert exited.value.code == 2 and "unrecognized arguments: --template-buck" in capsys.readouterr().err
    assert main(["deployer-policy", "--template-bucket", "ci-templates"]) == 0


IMAGE_BUILDER_WRITES = (
    "imagebuilder:CreateComponent",
    "imagebuilder:DeleteComponent",
    "imagebuilder:CreateImageRecipe",
    "imagebuilder:DeleteImageRecipe",
    "imagebuilder:CreateInfrastructureConfiguration",
    "imagebuilder:UpdateInfrastructureConfiguration",
    "imagebuilder:DeleteInfrastructureConfiguration",
    "imagebuilder:CreateDistributionConfiguration",
    "imagebuilder:UpdateDistributionConfiguration",
    "imagebuilder:DeleteDistributionConfiguration",
    "imagebuilder:CreateImagePipeline",
    "imagebuilder:UpdateImagePipeline",
    "imagebuilder:DeleteImagePipeline",
    "imagebuilder:StartImagePipelineExecution",
    "imagebuilder:CreateImage",
    "imagebuilder:DeleteImage",
    "imagebuilder:CancelImageCreation",
    "imagebuilder:CreateLifecyclePolicy",
    "imagebuilder:UpdateLifecyclePolicy",
    "imagebuilder:DeleteLifecyclePolicy",
    "imagebuilder:TagResource",
    "imagebuilder:UntagResource",
)
# Image Builder puts a resource's name in its ARN in lower case (the API's ARN patterns take [a-z0-9-_] only;
# register 247): the stack "Platform"'s names ${WinImageExecutionRole}-Win<name> are
# platform-winimageexecutionrole-<random>-win<name> (the role's generated name; image.image_builder_name).
IMAGE_BUILDER_ARNS = [
    "arn:aws:imagebuilder:*:*:component/platform-winimageexecutionrole-*-winworker/*",
    "arn:aws:imagebuilder:*:*:distribution-configuration/platform-winimageexecutionrole-*-windistribution",
    "arn:aws:imagebuilder:*:*:distribution-configuration/platform-winimageexecutionrole-*-winfirstdistribution",
    "arn:aws:imagebuilder:*:*:image-pipeline/platform-winimageexecutionrole-*-winimage",
    "arn:aws:imagebuilder:*:*:image-recipe/platform-winimageexecutionrole-*-winrecipe/*",
    "arn:aws:imagebuilder:*:*:image/platform-winimageexecutionrole-*-winrecipe/*",
    "arn:aws:imagebuilder:*:*:infrastructure-configuration/platform-winimageexecutionrole-*-winbuild",
    "arn:aws:imagebuilder:*:*:lifecycle-policy/platform-winimageexecutionrole-*-winimages",
]


def test_image_builder_writes_are_on_the_stacks_own_arns_with_a_stack_name() -> None:
    """247: with --stack-name every Image Builder write is on the ARNs of the stack's own (named)
    Image Builder resources, none on "*"; the reads (Get*) stay on "*": the handlers read AWS-owned
    resources too (the managed build and test workflows, arn:...:aws:workflow/...)."""
    named = _statements_by_sid(stack_name="Platform")
    assert sorted(named["Imagebuilder"]["Resource"]) == IMAGE_BUILDER_ARNS
    for action in IMAGE_BUILDER_WRITES:
        assert allows({"Statement": [named["Imagebuilder"]]}, action), action
        assert not allows({"Statement": [named["ImagebuilderAnywhere"]]}, action), action
    assert allows({"Statement": [named["ImagebuilderAnywhere"]]}, "imagebuilder:GetWorkflow")
    assert named["ImagebuilderAnywhere"]["Resource"] == ["*"]
    # Without --stack-name: every Image Builder resource of the account's, by type, never a bare "*".
    anywhere = _statements_by_sid()["Imagebuilder"]["Resource"]
    assert anywhere == [
        f"arn:aws:imagebuilder:*:*:{path}"
        for path in (
            "component/*/*",
            "distribution-configuration/*",
            "image-pipeline/*",
            "image-recipe/*/*",
            "image/*/*",
            "infrastructure-configuration/*",
            "lifecycle-policy/*",
        )
    ]


@pytest.mark.parametrize("stack_name", [None, "platform"])
def test_ssm_writes_are_only_on_the_stacks_own_parameters(stack_name: str | None) -> None:
    """248: AWS's public parameters (/aws/service/...) are read, never written: the writes (the
    stack's image and build-settings parameters) are on /winworkers/<stack>/* alone."""
    own = f"arn:aws:ssm:*:*:parameter/winworkers/{stack_name or '*'}/*"
    statements = [s for d in policy_documents(stack_name=stack_name).values() for s in d["Statement"]]
    for action in ("ssm:PutParameter", "ssm:DeleteParameter", "ssm:AddTagsToResource", "ssm:RemoveTagsFromResource"):
        granting = [s for s in statements if allows({"Statement": [s]}, action)]
        assert [s["Resource"] for s in granting] == [[own]], action
    readers = [s for s in statements if allows({"Statement": [s]}, "ssm:GetParameters")]
    assert any("arn:aws:ssm:*:*:parameter/aws/service/ami-windows-latest/*" in s["Resource"] for s in readers)
