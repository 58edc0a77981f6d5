"""Shared fixtures: templates built once per session, rendered with cloud-radar."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloud_radar.cf.unit import Template as RadarTemplate
from cloud_radar.cf.unit import functions as radar_functions

from winworkers import WorkersConfig, build_template
from winworkers.renderings import enabled_parameters

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

Rendered = dict[str, Any]

# cloud-radar downloads a region list from GitHub for Fn::GetAZs; tests have no
# Internet, so give it the two regions they render in.
radar_functions.REGION_DATA = [
    {"code": "us-east-1", "zones": [f"us-east-1{z}" for z in "abcdef"]},
    {"code": "eu-west-1", "zones": [f"eu-west-1{z}" for z in "abc"]},
]


def as_dict(template: Any) -> dict[str, Any]:
    """The template exactly as written to JSON."""
    return json.loads(template.to_json())


@pytest.fixture(scope="session")
def feature() -> dict[str, Any]:
    return as_dict(build_template(WorkersConfig()))


def render(template: dict[str, Any], params: dict[str, str], region: str = "us-east-1") -> Rendered:
    """The template as CloudFormation would create it for ``params``: Conditions
    evaluated, resources and properties they remove gone, intrinsics resolved."""
    stack = RadarTemplate(json.loads(json.dumps(template))).create_stack(params, region=region)
    return dict(stack.data)


@pytest.fixture(scope="session")
def renderer() -> Callable[..., Rendered]:
    return render


@pytest.fixture(scope="session")
def enabled(feature: dict[str, Any]) -> Rendered:
    return render(feature, enabled_parameters())


def resources_of(rendered: Rendered, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in rendered.get("Resources", {}).items() if r["Type"] == kind}


def props(rendered: Rendered, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = rendered["Resources"][name]["Properties"]
    return properties
