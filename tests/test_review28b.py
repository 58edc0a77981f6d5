"""Review of the review-28 fixes (branch review28b): each finding a test that fails on the code as it is.

Judged on the rendered template (build_template), resolved for given values (tests/resolved.py), and on real
tool output (botocore's endpoint resolution, offline: no request is sent)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import boto3
import pytest
from resolved import resolve

from conftest import ROOT
from winworkers.build import build_template
from winworkers.config import WorkersConfig

ON = {"EnableWinTaskScriptService": "true"}
REGION = "eu-west-1"


def _resources(extras: tuple[str, ...], **given: str) -> dict[str, Any]:
    rendered = json.loads(build_template(WorkersConfig(extra_endpoints=extras)).to_json())
    resources: dict[str, Any] = resolve(rendered, {**ON, **given})["Resources"]
    return resources


def _sdk_host(client: str) -> str:
    """The host botocore's endpoint data sends client's calls to in REGION, before .<region>.amazonaws.com."""
    url = boto3.client(client, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y").meta.endpoint_url
    host = urlparse(url).hostname or ""
    suffix = f".{REGION}.amazonaws.com"
    assert host.endswith(suffix), host
    return host[: -len(suffix)]


@pytest.mark.parametrize(
    ("extra", "client"),
    [
        ("kinesis-firehose:firehose", "firehose"),
        ("kinesis-streams:kinesis", "kinesis"),
        ("codeartifact.api:codeartifact", "codeartifact"),
    ],
)
def test_a_derived_extra_name_is_the_name_the_sdk_calls(extra: str, client: str) -> None:
    """Wrong name allowed, the SDK's name blocked, and the extra accepted without a word: config.sdk_name
    derives an AWS service's DNS name from its endpoint service's name (one part: itself; two: reversed),
    and docs/network.md says the allow list holds "the ones the SDKs resolve". For these endpoint services
    the SDK's host is neither: botocore (real tool output, its endpoint data, offline) sends Firehose's calls
    to firehose.<region>.amazonaws.com (not kinesis-firehose.), Kinesis Data Streams' to kinesis.<region>
    (not kinesis-streams.), CodeArtifact's API to codeartifact.<region> (not api.codeartifact.). The DNS
    Firewall's last rule answers those NXDOMAIN: the endpoint the stack built is unreachable by name. The
    rule of two-part names holds for ecr.api (row 271) but is not a rule AWS states. Passes when the
    derived name is the SDK's, or when such an extra is refused at build time (its names must be given).

    AWS, Kinesis Data Streams developer guide, "Use Amazon Kinesis Data Streams with interface VPC endpoints"
    (https://docs.aws.amazon.com/streams/latest/dev/vpc.html): "To get started, you do not need to change the
    settings for your streams, producers, or consumers. Create an interface VPC endpoint for your Kinesis Data
    Streams to start traffic flowing from and to your Amazon VPC resources through the interface VPC
    endpoint." (the SDK's default name is the endpoint's private DNS name).
    AWS, CodeArtifact user guide, "Create VPC endpoints for CodeArtifact"
    (https://docs.aws.amazon.com/codeartifact/latest/ug/create-vpc-endpoints.html): "The first endpoint is
    used to call CodeArtifact APIs (for example, GetAuthorizationToken and CreateRepository).
    com.amazonaws.region.codeartifact.api".
    """
    try:
        resources = _resources((extra,))
    except ValueError as refused:
        assert "extra_endpoints" in str(refused)
        return
    assert resources["WinDnsBlockList"]["Properties"]["Domains"] == ["*"], "precondition: all else is blocked"
    allowed = [
        d.get("Fn::Sub") if isinstance(d, dict) else d for d in resources["WinDnsAllowList"]["Properties"]["Domains"]
    ]
    wanted = f"{_sdk_host(client)}.${{AWS::Region}}.${{AWS::URLSuffix}}"
    service = extra.split(":")[0]
    derived = [a for a in allowed if str(a).startswith(tuple(service.split(".")))]
    assert wanted in allowed, f"{extra}: the SDK calls {wanted}; allowed for it: {derived}"


def test_the_documented_ecr_dkr_extra_can_pull_its_image_layers() -> None:
    """The documented example does not work: docs/network.md shows "ecr.dkr:ecr *.dkr.ecr" (with
    "ecr.api:ecr") as the way to reach a container registry from the isolated VPC. A Docker pull reads the
    image's manifest through ecr.dkr and then its layers from Amazon S3, through the VPC's S3 gateway
    endpoint, whose policy the stack writes: it allows the data bucket's prefix, the artifact, the CloudWatch
    agent's and Image Builder's buckets, nothing of ECR's layer bucket (prod-<region>-starport-layer-bucket,
    named by the same ECR page's S3 gateway section, not quoted here). Every pull fails after the manifest.
    Passes when the S3 endpoint allows ECR's layer bucket with ecr.dkr among the extras, or ecr.dkr is refused.

    AWS, Amazon ECR user guide, "Amazon ECR interface VPC endpoints (AWS PrivateLink)"
    (https://docs.aws.amazon.com/AmazonECR/latest/userguide/vpc-endpoints.html): "Amazon ECS tasks hosted on
    Fargate using Windows platform version 1.0.0 or later require both the com.amazonaws.region.ecr.dkr and
    com.amazonaws.region.ecr.api Amazon ECR VPC endpoints as well as the Amazon S3 gateway endpoint to take
    advantage of this feature."
    """
    # Fixed by refusal: docs/network.md no longer offers ecr.dkr and says why (register 280).
    assert '"ecr.dkr:ecr *.dkr.ecr"' not in (ROOT / "docs" / "network.md").read_text()
    try:
        resources = _resources(("ecr.api:ecr", "ecr.dkr:ecr *.dkr.ecr"))
    except ValueError as refused:
        assert "extra_endpoints" in str(refused)
        return
    assert "WinEcrDkrEndpoint" in resources, "precondition: the registry's endpoint is built"
    policy = json.dumps(resources["WinS3Endpoint"]["Properties"]["PolicyDocument"])
    assert "starport-layer-bucket" in policy, "the S3 gateway endpoint's policy refuses every ECR image layer"
