"""Example parameter values for each network mode, and copies of a template whose
defaults are those values.

Scanners such as checkov evaluate Conditions with the parameters' defaults; the
feature defaults to off, so a plain scan sees nothing. The tests, the scanners,
the emulator deploys and the benchmark all use these renderings.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from winworkers.config import WorkersConfig
from winworkers.parameters import ENDPOINTS_IN_ONE_AZ, EXISTING, ISOLATED, SWITCH, param_name

# Syntactically real inputs; nothing here exists in any account. The emulator starts with them
# (winworkers.emulator, 19.), so that the emulator deploys pass the preflight.
EXAMPLE_INPUTS = {
    "DataBucket": "example-platform-data",
    "WorkQueueArn": "arn:aws:sqs:us-east-1:123456789012:example-platform-work",
    "ArtifactBucket": "example-platform-artifacts",
    "ArtifactKey": "windows/worker-service.zip",
    "S3PrefixListId": "pl-63a5400a",
}

MODES: dict[str, dict[str, str]] = {
    "isolated-2az": {"NetworkMode": ISOLATED, "AzCount": "2"},
    "isolated-3az": {"NetworkMode": ISOLATED, "AzCount": "3"},
    # The interface endpoints in the first AZ only, the workers in all three (EndpointAzs).
    "isolated-3az-endpoints-1az": {"NetworkMode": ISOLATED, "AzCount": "3", "EndpointAzs": ENDPOINTS_IN_ONE_AZ},
    # The platform's VPC provides the endpoints (winworkers.network docstring).
    "existing-subnets": {
        "NetworkMode": EXISTING,
        "VpcId": "vpc-0a1b2c3d4e5f67890",
        "SubnetIds": "subnet-0a1b2c3d4e5f67890,subnet-0b1b2c3d4e5f67890",
        "EndpointsCidr": "10.0.0.0/16",
    },
}


def enabled_parameters(
    config: WorkersConfig | None = None, mode: str = "isolated-2az", **overrides: str
) -> dict[str, str]:
    """Parameter values that enable the feature in mode (a key of MODES)."""
    config = config or WorkersConfig()
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed: one of {sorted(MODES)}")
    values = {SWITCH: "true", **EXAMPLE_INPUTS, **MODES[mode], **overrides}
    return {param_name(config, name): value for name, value in values.items()}


def with_defaults(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of template whose parameter defaults are values."""
    rendered = copy.deepcopy(dict(template))
    parameters = rendered.get("Parameters", {})
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}")
    for name, value in values.items():
        parameters[name]["Default"] = value
    return rendered
