"""The tables a maintainer extends (issue 29, "Tables as data"): adding a row is the whole change.

Each test builds the feature's template with one extra row (the table monkeypatched) and finds
the row everywhere it must appear, read from the rendering; and each table refuses an incomplete
row, naming the field.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from test_dns_firewall import decide
from test_network import dependencies

from conftest import ROOT, as_dict, props, render, resources_of
from winworkers import ami_refresh, bootstrap, config, deployer_policy, network
from winworkers.bootstrap import WORKER_SETTINGS, WorkerSetting
from winworkers.build import build_template
from winworkers.config import LAUNCH_AGENTS, WINDOWS_VERSIONS, WindowsVersion, WorkersConfig
from winworkers.constraints import check_parameters
from winworkers.cwagent import BOOT_LOGS, LAUNCH_AGENT_LOGS
from winworkers.docs import parameter_table, worker_config_sample, worker_config_table
from winworkers.network import ENDPOINTS, DnsName, EndpointService
from winworkers.renderings import enabled_parameters

# Its policy is the workers' sqs statements: the one-row test needs statements to narrow to.
EXTRA = EndpointService("ssm", "the one-row test", "sqs")
OPTIONAL = EndpointService("sts", "the optional one-row test", "sqs", condition="ThreeAzs")


# The rows the workers reach; the image build's (for_build: ssm among them) would collide with
# the one-row test's extra ssm row.
WORKER_ENDPOINTS = tuple(row for row in ENDPOINTS if not row.for_build)


def _built_with(monkeypatch: pytest.MonkeyPatch, *rows: EndpointService) -> dict[str, Any]:
    monkeypatch.setattr(network, "ENDPOINTS", (*WORKER_ENDPOINTS, *rows))
    return as_dict(build_template(WorkersConfig()))


def _endpoint(rendered: dict[str, Any], service: str) -> tuple[str, dict[str, Any]] | None:
    found = [
        (name, r["Properties"])
        for name, r in resources_of(rendered, "AWS::EC2::VPCEndpoint").items()
        if r["Properties"]["ServiceName"] == f"com.amazonaws.us-east-1.{service}"
    ]
    return found[0] if found else None


def test_an_endpoint_service_is_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    template = _built_with(monkeypatch, EXTRA)
    rendered = render(template, enabled_parameters())
    # The endpoint, in the endpoints' subnets and security group, with private DNS.
    found = _endpoint(rendered, "ssm")
    assert found is not None
    name, endpoint = found
    assert name == "WinSsmEndpoint"
    assert (endpoint["VpcEndpointType"], endpoint["PrivateDnsEnabled"]) == ("Interface", True)
    assert endpoint["SecurityGroupIds"] == ["WinEndpointSecurityGroup"]
    assert endpoint["SubnetIds"] == props(rendered, "WinSqsEndpoint")["SubnetIds"]
    # Its policy: the workers' sqs statements, granted to the workers' role only.
    statements = endpoint["PolicyDocument"]["Statement"]
    assert statements == props(rendered, "WinSqsEndpoint")["PolicyDocument"]["Statement"]
    assert {json.dumps(s["Principal"]) for s in statements} == {json.dumps({"AWS": "WinInstanceRole.Arn"})}
    # The DNS Firewall answers its name, which the quiet list would block otherwise (ssm is in it).
    assert decide(rendered, "ssm.us-east-1.amazonaws.com") == "ALLOW"
    monkeypatch.setattr(network, "ENDPOINTS", WORKER_ENDPOINTS)
    without = render(as_dict(build_template(WorkersConfig())), enabled_parameters())
    assert decide(without, "ssm.us-east-1.amazonaws.com") == "BLOCK"
    # The workers wait for it (the group's Metadata), and docs/network.md's table lists it.
    assert name in dependencies(template, rendered["Conditions"], "WinGroup")
    monkeypatch.setattr(network, "ENDPOINTS", (*WORKER_ENDPOINTS, EXTRA))
    assert "| `com.amazonaws.<region>.ssm` | interface, private DNS | the one-row test |" in network.endpoint_table()
    # existing-subnets: the platform provides it; the feature creates none.
    assert _endpoint(render(template, enabled_parameters(mode="existing-subnets")), "ssm") is None


def test_an_optional_endpoint_is_one_row_with_its_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    template = _built_with(monkeypatch, OPTIONAL)
    assert template["Resources"]["WinStsEndpoint"]["Condition"] == "WinThreeAzs"
    for mode, present in (("isolated-2az", False), ("isolated-3az", True)):
        rendered = render(template, enabled_parameters(mode=mode))
        assert (_endpoint(rendered, "sts") is not None) is present, mode
        assert (decide(rendered, "sts.us-east-1.amazonaws.com") == "ALLOW") is present, mode
        waited = dependencies(template, rendered["Conditions"], "WinGroup")
        assert ("WinStsEndpoint" in waited) is present, mode
    assert "| interface, private DNS (when ThreeAzs) |" in network.endpoint_table()


def test_an_optional_endpoint_needs_a_condition_of_the_isolated_vpc(monkeypatch: pytest.MonkeyPatch) -> None:
    for condition, problem in (
        ("NoSuchCondition", "no such condition"),
        ("InUsEast1", "must imply IsolatedVpc"),
        ("HasDnsFirewall", "must imply IsolatedVpc"),  # an Fn::Or with it: true without it too
    ):
        monkeypatch.setattr(network, "ENDPOINTS", (*ENDPOINTS, EndpointService("sts", "x", "sqs", condition=condition)))
        with pytest.raises(ValueError, match=rf"EndpointService.condition='{condition}' \(sts\): {problem}"):
            build_template(WorkersConfig())


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"service": "", "purpose": "x", "action_prefix": "sqs"}, "service"),
        ({"service": "sqs", "purpose": "", "action_prefix": "sqs"}, "purpose"),
        ({"service": "sqs", "purpose": "x", "action_prefix": ""}, "action_prefix"),
        ({"service": "Not A Service", "purpose": "x", "action_prefix": "sqs"}, "service"),
        ({"service": "sqs", "purpose": "x", "action_prefix": "sqs", "kind": "Gateways"}, "kind"),
        ({"service": "dynamodb", "purpose": "x", "action_prefix": "dynamodb", "kind": "Gateway"}, "prefix_list"),
        ({"service": "sqs", "purpose": "x", "action_prefix": "sqs", "prefix_list": "S3PrefixListId"}, "prefix_list"),
        ({"service": "sqs", "purpose": "x", "action_prefix": "sqs", "public_objects": ("arn",)}, "public_objects"),
    ],
)
def test_an_incomplete_endpoint_row_is_refused(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=rf"EndpointService\.{named}"):
        EndpointService(**fields)


def test_a_dns_name_names_its_bucket_parameter() -> None:
    with pytest.raises(ValueError, match=r"DnsName\.bucket"):
        DnsName("${Bucket}.s3.amazonaws.com")
    with pytest.raises(ValueError, match=r"DnsName\.name"):
        DnsName("")


def test_an_endpoint_whose_prefix_no_worker_uses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no worker statement uses kms; its endpoint would allow nothing"):
        _built_with(monkeypatch, EndpointService("kms", "x", "kms"))


def test_every_row_is_in_the_default_template(feature: dict[str, Any]) -> None:
    """The committed rows, read from the table: each a resource, a name in the allow list, a table row."""
    allowed = json.dumps(props(feature, "WinDnsAllowList")["Domains"])
    for row in ENDPOINTS:
        assert feature["Resources"][f"Win{row.logical_name}"]["Type"] == "AWS::EC2::VPCEndpoint"
        assert json.dumps(row.regional_name) in allowed, row.service
        assert f"`com.amazonaws.<region>.{row.service}`" in network.endpoint_table()


# --- Windows versions -----------------------------------------------------------------------

NEW_VERSION = WindowsVersion("2028", "EC2Launch v2")


def test_a_windows_version_is_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "WINDOWS_VERSIONS", (*WINDOWS_VERSIONS, NEW_VERSION))
    template = as_dict(build_template(WorkersConfig()))
    assert template["Parameters"]["WinWindowsVersion"]["AllowedValues"] == [
        row.version for row in (*WINDOWS_VERSIONS, NEW_VERSION)
    ]
    rendered = render(template, enabled_parameters(WindowsVersion="2028"))
    data = props(rendered, "WinLaunchTemplate")["LaunchTemplateData"]
    assert data["ImageId"] == f"resolve:ssm:{NEW_VERSION.ami_parameter}"
    env = props(rendered, "WinRefreshFunction")["Environment"]["Variables"]
    assert env["AMI_PARAMETER"] == NEW_VERSION.ami_parameter
    # The deploy accepts it (the parameter's own constraint), the deployer policy's scope covers it,
    # the README's parameter table lists it, and its launch agent's log folder is shipped.
    assert check_parameters(template, {"WinWindowsVersion": "2028"}) == []
    scope = deployer_policy._AMI_PARAMETERS
    assert fnmatch.fnmatchcase(f"arn:aws:ssm:us-east-1::parameter{NEW_VERSION.ami_parameter}", scope)
    assert "`2019` / `2022` / `2025` / `2028`" in parameter_table(WorkersConfig())
    assert LAUNCH_AGENT_LOGS[NEW_VERSION.launch_agent] in dict(BOOT_LOGS)


def test_every_windows_version_s_launch_agent_logs_are_shipped() -> None:
    assert set(LAUNCH_AGENT_LOGS) == set(LAUNCH_AGENTS)
    for row in WINDOWS_VERSIONS:
        assert LAUNCH_AGENT_LOGS[row.launch_agent] in dict(BOOT_LOGS), row


def test_the_refresh_function_s_default_is_the_default_version_s_parameter() -> None:
    # ami_refresh.py is embedded verbatim in the template and imports nothing of winworkers.
    assert WINDOWS_VERSIONS[0].ami_parameter == ami_refresh.DEFAULT_PARAMETER


@pytest.mark.parametrize(
    ("version", "agent", "named"),
    [("", "EC2Launch v2", "version"), ("19", "EC2Launch v2", "version"), ("2028", "EC2Launch v3", "launch_agent")],
)
def test_an_incomplete_windows_version_row_is_refused(version: str, agent: str, named: str) -> None:
    with pytest.raises(ValueError, match=rf"WindowsVersion\.{named}"):
        WindowsVersion(version, agent)


# --- The inputs that reach an instance: worker.json -----------------------------------------

NEW_SETTING = WorkerSetting("lifecycle.warm_pool", "The one-row test: the WarmPool parameter.", "WarmPool")


def _worker_json(rendered: dict[str, Any]) -> dict[str, Any]:
    files = rendered["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["service"]["files"]
    (content,) = (f["content"] for f in files.values())
    return dict(content)


def test_a_worker_json_key_is_one_row(monkeypatch: pytest.MonkeyPatch, feature: dict[str, Any]) -> None:
    monkeypatch.setattr(bootstrap, "WORKER_SETTINGS", (*WORKER_SETTINGS, NEW_SETTING))
    template = as_dict(build_template(WorkersConfig()))
    rendered = render(template, enabled_parameters(WarmPool="stopped"))
    # The instance gets it, from the parameter; the docs' table and sample say what it is.
    assert _worker_json(rendered)["lifecycle"]["warm_pool"] == "stopped"
    table = worker_config_table(WorkersConfig())
    assert (
        "| `lifecycle.warm_pool` | string | parameter `WinWarmPool` | The one-row test: the WarmPool parameter. |"
        in table
    )
    sample = worker_config_sample(WorkersConfig(), enabled_parameters(WarmPool="stopped"))
    assert sample["lifecycle"]["warm_pool"] == "stopped"
    # A new key is a new launch template version (the config line's digest), so the workers get it.
    user_data = props(template, "WinLaunchTemplate")["LaunchTemplateData"]["UserData"]
    assert json.dumps(user_data) != json.dumps(props(feature, "WinLaunchTemplate")["LaunchTemplateData"]["UserData"])


def test_a_worker_json_key_under_an_object_needs_the_object_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "WORKER_SETTINGS", (*WORKER_SETTINGS, WorkerSetting("pool.mode", "x", "WarmPool")))
    with pytest.raises(ValueError, match=r"WorkerSetting\.key='pool\.mode': its object 'pool' is not a row before it"):
        build_template(WorkersConfig())


@pytest.mark.parametrize(
    ("key", "meaning", "named"), [("", "x", "key"), ("Queue-Arn", "x", "key"), ("queue_arn", "", "meaning")]
)
def test_an_incomplete_worker_json_row_is_refused(key: str, meaning: str, named: str) -> None:
    with pytest.raises(ValueError, match=rf"WorkerSetting\.{named}"):
        WorkerSetting(key, meaning, "WorkQueueArn")


# --- Checks read the template they are given ------------------------------------------------


def test_the_deployer_policy_reads_the_template_it_is_given(feature: dict[str, Any]) -> None:
    assert deployer_policy.policy_documents(template=feature) == deployer_policy.policy_documents()
    # Read, not rebuilt: without the DNS Firewall's resources, none of its actions.
    action = "route53resolver:CreateFirewallRuleGroup"
    resources = {n: r for n, r in feature["Resources"].items() if not r["Type"].startswith("AWS::Route53Resolver::")}
    document = deployer_policy.policy_document(template={**feature, "Resources": resources})
    assert deployer_policy.allows(deployer_policy.policy_document(template=feature), action)
    assert not deployer_policy.allows(document, action)


def test_usage_reads_the_nested_children_it_is_given() -> None:
    from winworkers.deploy.inputs import built_children
    from winworkers.usage import parameter_kinds

    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text())
    children = built_children(parent)
    assert children, "the parent's nested winworkers stack, built from the config its Metadata records"
    kinds = parameter_kinds(parent, children)
    assert kinds.get("WinMaxSize") == "whole number", kinds
    assert "WinMaxSize" not in parameter_kinds(parent)  # no child given, none read
    assert "build_template" not in (ROOT / "winworkers" / "usage.py").read_text()
