"""WorkersConfig.extra_endpoints (winworkers.network.endpoints_of): the interface endpoints the platform's
software needs beyond the five services, each with its security-group path, its endpoint policy and
its DNS Firewall allowance, judged on the rendered template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_dns_firewall import decide

from conftest import ROOT, render
from winworkers.build import build_template
from winworkers.config import ConfigError, WorkersConfig, extra_endpoint
from winworkers.renderings import enabled_parameters

LICENCE = "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"
EXTRAS = ("secretsmanager", "ecr.api:ecr", f"{LICENCE} licence.example.com:27000")


@pytest.fixture(scope="module")
def extra() -> dict[str, Any]:
    rendered: dict[str, Any] = json.loads(build_template(WorkersConfig(extra_endpoints=EXTRAS)).to_json())
    return rendered


def test_an_aws_service_gets_an_endpoint_its_policy_and_its_name(extra: dict[str, Any]) -> None:
    rendered = render(extra, enabled_parameters(), region="eu-west-1")
    # The name the SDKs resolve, which the endpoint's private DNS answers: ECR's is api.ecr (General
    # Reference, Amazon ECR endpoints: "you must use the api.ecr endpoint"; register 264), not ecr.api.
    for logical, service, prefix, name in (
        ("WinSecretsmanagerEndpoint", "secretsmanager", "secretsmanager", "secretsmanager"),
        ("WinEcrApiEndpoint", "ecr.api", "ecr", "api.ecr"),
    ):
        endpoint = rendered["Resources"][logical]["Properties"]
        assert endpoint["ServiceName"] == f"com.amazonaws.eu-west-1.{service}"
        assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"] is True
        assert endpoint["SecurityGroupIds"] == ["WinEndpointSecurityGroup"]
        (statement,) = endpoint["PolicyDocument"]["Statement"]
        assert list(statement["Principal"]) == ["AWS"] and "WinInstanceRole" in json.dumps(statement["Principal"])
        assert statement["Action"] == [f"{prefix}:*"] and statement["Resource"] == ["*"]
        assert decide(rendered, f"{name}.eu-west-1.amazonaws.com") == "ALLOW"
    assert decide(rendered, "ecr.api.eu-west-1.amazonaws.com") == "BLOCK", "a name nothing resolves"


@pytest.mark.parametrize(("client", "service"), [("ecr", "ecr.api"), ("sagemaker-runtime", "sagemaker.runtime")])
def test_a_sub_service_s_derived_name_is_the_one_the_sdk_resolves(client: str, service: str) -> None:
    """config.sdk_name against botocore's own endpoint resolution (271): the hostname the SDK calls."""
    import boto3

    url = boto3.client(client, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").meta
    assert url.endpoint_url == f"https://{extra_endpoint(service).names[0]}.eu-west-1.amazonaws.com"


def test_given_names_replace_the_derived_one_and_a_wildcard_allows_the_registry() -> None:
    """A private API Gateway's names are <api-id>.execute-api.<region>.amazonaws.com: a wildcard given
    after the service allows them and nothing else; Firehose's host (firehose) is not its endpoint
    service's name (kinesis-firehose), so it must be given (register 271)."""
    extras = ("execute-api:execute-api *.execute-api", "kinesis-firehose:firehose firehose")
    rendered = json.loads(build_template(WorkersConfig(extra_endpoints=extras)).to_json())
    resolved = render(rendered, enabled_parameters(), region="eu-west-1")
    assert decide(resolved, "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com") == "ALLOW"
    assert decide(resolved, "execute-api.eu-west-1.amazonaws.com") == "BLOCK"
    assert decide(resolved, "firehose.eu-west-1.amazonaws.com") == "ALLOW"
    assert decide(resolved, "kinesis-firehose.eu-west-1.amazonaws.com") == "BLOCK"
    for unknown in ("kinesis-firehose:firehose", "kinesis-streams:kinesis", "codeartifact.api:codeartifact"):
        with pytest.raises(ConfigError, match=r"extra_endpoints.*give its private DNS names"):
            extra_endpoint(unknown)
    with pytest.raises(ConfigError, match=r"extra_endpoints.*image layers"):
        build_template(WorkersConfig(extra_endpoints=("ecr.api:ecr", "ecr.dkr:ecr *.dkr.ecr")))
    with pytest.raises(ConfigError, match=r"extra_endpoints.*give its private DNS names"):
        extra_endpoint("timestream.ingest.cell1")


def test_a_privatelink_service_gets_its_port_and_its_private_name_and_no_policy(extra: dict[str, Any]) -> None:
    rendered = render(extra, enabled_parameters(), region="eu-west-1")
    resources = rendered["Resources"]
    endpoint = resources["WinVpceSvc0123456789abcdef0Endpoint"]["Properties"]
    assert endpoint["ServiceName"] == LICENCE
    # Another account's endpoint service takes no endpoint policy (AWS: full access; 252).
    assert "PolicyDocument" not in endpoint
    assert endpoint["SecurityGroupIds"] == ["WinEndpointSecurityGroup"] and endpoint["PrivateDnsEnabled"] is True
    ingress = resources["WinEndpointIngressFromWorkers27000"]["Properties"]
    egress = resources["WinWorkerEgressToEndpoints27000"]["Properties"]
    assert (ingress["GroupId"], ingress["SourceSecurityGroupId"]) == (
        "WinEndpointSecurityGroup",
        "WinWorkerSecurityGroup",
    )
    assert (egress["GroupId"], egress["DestinationSecurityGroupId"]) == (
        "WinWorkerSecurityGroup",
        "WinEndpointSecurityGroup",
    )
    assert ingress["FromPort"] == ingress["ToPort"] == egress["FromPort"] == egress["ToPort"] == 27000
    assert decide(rendered, "licence.example.com") == "ALLOW"
    assert decide(rendered, "other.example.com") == "BLOCK"
    # The workers wait for it and its rules, as for every endpoint.
    waits = json.dumps(resources["WinGroup"]["Metadata"]["WaitsFor"])
    for name in (
        "WinVpceSvc0123456789abcdef0Endpoint",
        "WinEndpointIngressFromWorkers27000",
        "WinWorkerEgressToEndpoints27000",
    ):
        assert name in waits


def test_existing_subnets_reaches_them_in_the_networks_block(extra: dict[str, Any]) -> None:
    values = enabled_parameters(mode="existing-subnets", CreateDnsFirewall="true")
    rendered = render(extra, values, region="eu-west-1")
    resources = rendered["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    egress = resources["WinWorkerEgressToNetworkEndpoints27000"]["Properties"]
    assert egress["CidrIp"] == values["WinEndpointsCidr"] and egress["FromPort"] == 27000
    # The offered rule group allows their names for the platform's own endpoints.
    assert decide(rendered, "licence.example.com") == "ALLOW"
    assert decide(rendered, "secretsmanager.eu-west-1.amazonaws.com") == "ALLOW"


def test_without_extras_nothing_of_them_exists(feature: dict[str, Any]) -> None:
    rendered = render(feature, enabled_parameters(), region="eu-west-1")
    assert decide(rendered, "secretsmanager.eu-west-1.amazonaws.com") == "BLOCK"
    assert not [n for n in rendered["Resources"] if n.endswith("27000")]


@pytest.mark.parametrize(
    "bad",
    [
        "ssm",  # Systems Manager: never the workers'
        "ssmmessages",
        "imagebuilder",
        "sqs",  # the stack has it already
        "Secrets Manager",
        "com.amazonaws.eu-west-1.kms",
        f"{LICENCE}",  # no private DNS name
        f"{LICENCE} licence.example.com:70000",
    ],
)
def test_a_bad_extra_is_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_template(WorkersConfig(extra_endpoints=(bad,)))
    assert error.value.field == "extra_endpoints"
    assert str(error.value).startswith(f"WorkersConfig.extra_endpoints={bad!r} is not allowed")


def test_an_extra_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match="one item per service"):
        WorkersConfig(extra_endpoints=("kms", "kms"))


def test_the_example_config_reads_extras() -> None:
    config = WorkersConfig.from_mapping({"extra_endpoints": list(EXTRAS)})
    assert config.extra_endpoints == EXTRAS
    assert WorkersConfig.from_mapping(config.to_mapping()) == config


def test_adding_extras_to_a_running_stack_replaces_no_worker(feature: dict[str, Any], extra: dict[str, Any]) -> None:
    """A rebuild with extras adds their endpoints and rules and updates the DNS allow list in place; the
    launch template and the refresh custom resource are unchanged, so no worker is replaced
    (docs/updates.md, "The build's network and extra endpoints")."""
    before, after = feature["Resources"], extra["Resources"]
    changed = sorted(name for name in before if name in after and before[name] != after[name])
    assert changed == ["WinBuildInfrastructure", "WinDnsAllowList", "WinGroup"]
    # The group's and the image build's change is their Metadata alone (what they wait for: the build
    # waits for all the workers wait for, image.add_baked_image), which updates nothing running.
    for name in ("WinGroup", "WinBuildInfrastructure"):
        assert {k: v for k, v in before[name].items() if k != "Metadata"} == {
            k: v for k, v in after[name].items() if k != "Metadata"
        }, name
    assert not set(before) - set(after)


def test_the_sdk_hosts_are_botocores() -> None:
    """winworkers/sdk_hosts.py is what scripts/sdk_hosts.py derives from the installed botocore (make
    templates writes it): a botocore upgrade that adds or renames a host changes it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sdk_hosts_script", ROOT / "scripts" / "sdk_hosts.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from winworkers.sdk_hosts import SDK_HOSTS

    assert set(script.sdk_hosts()) == SDK_HOSTS
    assert {"firehose", "kinesis", "api.ecr", "secretsmanager"} <= SDK_HOSTS
    assert not {"kinesis-firehose", "kinesis-streams", "api.codeartifact"} & SDK_HOSTS
