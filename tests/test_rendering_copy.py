"""conftest's two shortcuts through JSON: the tests' renderings (conftest.render) copy the template
through JSON where cloud-radar copies it through YAML (conftest.JsonCopy), and moto's CloudFormation
reads a JSON body as JSON before YAML (conftest.JsonFirst): each gives what the YAML path gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloud_radar.cf.unit import _template as radar_template

from conftest import ROOT, JsonCopy, JsonFirst, render
from winworkers.renderings import enabled_parameters

# cloud-radar makes a stack ID with a fresh UUID for each rendering.
STACK_ID = re.compile(r"(:stack/my-cloud-radar-stack/)[0-9a-f-]{36}")


def _text(rendered: dict[str, Any]) -> str:
    return STACK_ID.sub(r"\1ID", json.dumps(rendered))


def test_the_json_copy_renders_as_cloud_radars_yaml_copy(
    feature: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = enabled_parameters(mode="isolated-3az-endpoints-1az", WarmPool="stopped", OnDemandPercentage="0")
    assert radar_template.yaml is JsonCopy
    fast = _text(render(feature, values))
    monkeypatch.setattr(radar_template, "yaml", yaml)
    assert _text(render(feature, values)) == fast


def test_the_json_copy_sorts_keys_as_yaml_dump_does() -> None:
    data = {"b": [{"z": 1, "a": None}], "a": {"y": True, "x": 1.5}}
    assert json.dumps(JsonCopy.load(JsonCopy.dump(data))) == json.dumps(yaml.load(yaml.dump(data), yaml.FullLoader))
    assert list(JsonCopy.load(JsonCopy.dump(data))) == ["a", "b"]


@pytest.mark.parametrize("path", sorted((ROOT / "templates").glob("*.json")), ids=lambda p: p.name)
def test_moto_reads_our_json_templates_as_its_yaml_would(path: Path) -> None:
    from moto.cloudformation import models, responses

    text = path.read_text(encoding="utf-8")
    expected = yaml.load(text, Loader=yaml.Loader)
    for module in (models, responses):
        assert isinstance(module.yaml, JsonFirst)
        read = module.yaml.load(text, Loader=yaml.Loader)
        assert read == expected and list(read["Resources"]) == list(expected["Resources"])


def test_moto_still_reads_yaml_as_yaml() -> None:
    from moto.cloudformation import models

    assert models.yaml.load("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n", Loader=yaml.Loader) == {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}
    }


def test_every_boto3_session_shares_one_loader_of_botocore_s_data() -> None:
    import boto3

    from conftest import shared_loader

    first, second = boto3.session.Session(), boto3.session.Session()
    loader = first._session.get_component("data_loader")
    assert loader is second._session.get_component("data_loader") is shared_loader(None)
    assert len(loader.search_paths) == len(set(loader.search_paths))
    model = first.client("sqs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9").meta.service_model
    assert model.service_name == "sqs" and "SendMessage" in model.operation_names
