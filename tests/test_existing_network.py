"""What an existing-subnets network must provide that a template cannot check: its DNS
(winworkers.network.vpc_dns_problems), against moto in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from winworkers.network import vpc_dns_problems


@pytest.fixture()
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1")


def _vpc(ec2: Any, support: bool = True, hostnames: bool = True) -> str:
    vpc: str = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": support})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": hostnames})
    return vpc


def _options(ec2: Any, vpc: str, *servers: str) -> str:
    configurations = [
        {"Key": "domain-name-servers", "Values": list(servers)},
        {"Key": "domain-name", "Values": ["corp.example"]},
    ]
    options: str = ec2.create_dhcp_options(DhcpConfigurations=configurations)["DhcpOptions"]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=options, VpcId=vpc)
    return options


def test_a_vpc_resolving_through_amazon_passes(ec2: Any) -> None:
    vpc = _vpc(ec2)
    assert vpc_dns_problems(ec2, vpc) == []
    _options(ec2, vpc, "AmazonProvidedDNS")
    assert vpc_dns_problems(ec2, vpc) == []


def test_dhcp_options_naming_other_dns_servers_are_named(ec2: Any) -> None:
    vpc = _vpc(ec2)
    options = _options(ec2, vpc, "10.20.0.10", "10.20.1.10")
    assert vpc_dns_problems(ec2, vpc) == [
        f"{vpc}'s DHCP options {options} name DNS servers 10.20.0.10, 10.20.1.10, not AmazonProvidedDNS: "
        "the workers may send only HTTPS, so they would resolve nothing"
    ]


def test_dns_support_and_hostnames_must_be_on(ec2: Any) -> None:
    vpc = _vpc(ec2, hostnames=False)
    assert vpc_dns_problems(ec2, vpc) == [
        f"{vpc} has enableDnsHostnames off: the endpoints' private DNS names need it on"
    ]
