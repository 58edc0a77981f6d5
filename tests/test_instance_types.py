"""The instance types: a policy (winworkers.instance_types) over a maintained list
(winworkers/instance_type_data.py, generated from botocore and cfn-lint), checked at
build time, by the deploy pre-check, and by the template's own constraint."""

from __future__ import annotations

import json
import re
from typing import Any

import instance_types as generator
import pytest

from conftest import ROOT, render
from winworkers import ConfigError, WorkersConfig
from winworkers.constraints import check_inputs
from winworkers.instance_types import (
    INSTANCE_TYPE_PATTERN,
    INSTANCE_TYPES,
    SIZES_BY_FAMILY,
    is_fleet_type,
    pattern_for,
)
from winworkers.renderings import enabled_parameters

GOOD = ["m7i.8xlarge", "c6i.12xlarge", "r7i.48xlarge", "m6a.32xlarge", "c5n.18xlarge", "t3a.2xlarge", "m6i.large"]
BAD = {
    "m7i.8xlage": "did you mean m7i.8xlarge?",  # a typo
    "m7g.large": "arm64",  # Graviton: the Windows AMIs are x86_64
    "c7gn.xlarge": "arm64",
    "t3.4xlarge": "t3 comes in large, xlarge, 2xlarge",  # a size the family does not have
    "m6i.5xlarge": "m6i comes in",
    "m7i.metal-24xl": "m7i comes in",  # bare metal
    "m6i.medium": "m6i comes in",  # below large
    "mac2.metal": "x86_64",
    "M6i.large": "x86_64",
}


def test_the_committed_list_is_what_the_pinned_sources_give() -> None:
    committed = (ROOT / "winworkers" / "instance_type_data.py").read_text(encoding="utf-8")
    assert committed == generator.render(), "stale: run .venv/bin/python scripts/instance_types.py"


def test_every_listed_type_is_in_a_source_and_admitted_by_the_policy() -> None:
    known = generator.botocore_types() | generator.cfn_lint_types()
    assert INSTANCE_TYPES.issubset(known)
    assert all(is_fleet_type(name) for name in INSTANCE_TYPES)
    # The policy keeps out what cannot run the x86_64 Windows AMIs or does not fit the fleet.
    families = set(SIZES_BY_FAMILY)
    assert not {f for f in families if "g" in f.removesuffix("-flex")[2:]}, "no Graviton"
    assert not {n for n in INSTANCE_TYPES if "metal" in n or n.endswith((".medium", ".small", ".micro", ".nano"))}
    # And keeps what a Windows fleet uses, across generations and vendors, for Spot diversity too.
    assert {"m5", "m6i", "m6a", "m7i", "m7a", "c5", "c6i", "c7i", "r5", "r6i", "r7i", "t3", "t3a"} <= families
    assert len(INSTANCE_TYPES) > 300


def test_the_pattern_accepts_exactly_the_listed_types() -> None:
    pattern = re.compile(INSTANCE_TYPE_PATTERN)
    sizes = {size for family_sizes in SIZES_BY_FAMILY.values() for size in family_sizes} | {"medium", "metal"}
    candidates = generator.botocore_types() | generator.cfn_lint_types()
    candidates |= {f"{family}.{size}" for family in SIZES_BY_FAMILY for size in sizes}
    assert {name for name in candidates if pattern.fullmatch(name)} == INSTANCE_TYPES
    assert pattern_for({"m6i": ["xlarge", "large"], "c6i": ["large", "xlarge"]}) == r"^([cm]6i\.(large|xlarge))$"


def test_the_pattern_stays_small_where_allowed_values_would_not(feature: dict[str, Any]) -> None:
    declared = feature["Parameters"]["WinInstanceType"]
    assert "AllowedValues" not in declared
    assert declared["AllowedPattern"] == INSTANCE_TYPE_PATTERN
    pattern_bytes = len(json.dumps(INSTANCE_TYPE_PATTERN))
    listed_bytes = len(json.dumps(sorted(INSTANCE_TYPES), separators=(",", ":")))
    assert pattern_bytes <= 700, pattern_bytes
    assert listed_bytes > 10 * pattern_bytes, (listed_bytes, pattern_bytes)


@pytest.mark.parametrize("name", GOOD)
def test_a_listed_type_is_accepted_everywhere(feature: dict[str, Any], name: str) -> None:
    assert WorkersConfig(default_instance_type=name).default_instance_type == name
    values = enabled_parameters(InstanceType=name)
    assert check_inputs(feature, values) == []
    # CloudFormation's own constraint (cloud-radar enforces AllowedPattern), down to the launch template.
    launch = render(feature, values)["Resources"]["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert launch["InstanceType"] == name


@pytest.mark.parametrize(("name", "why"), BAD.items(), ids=list(BAD))
def test_a_type_not_listed_is_refused_everywhere_naming_the_parameter(
    feature: dict[str, Any], name: str, why: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        WorkersConfig(default_instance_type=name)
    assert raised.value.field == "default_instance_type"
    assert str(raised.value).startswith(f"WorkersConfig.default_instance_type={name!r} is not allowed: ")
    assert why in str(raised.value)
    problems = check_inputs(feature, enabled_parameters(InstanceType=name))
    assert len(problems) == 1 and problems[0].startswith(f"WinInstanceType={name!r} is not allowed: "), problems
    assert why in problems[0] and "\n" not in problems[0]
    with pytest.raises(ValueError, match="AllowedPattern"):
        render(feature, enabled_parameters(InstanceType=name))


def test_every_type_the_old_pattern_allowed_that_exists_is_still_allowed() -> None:
    # A running stack's InstanceType survives an update (UsePreviousValue meets the new pattern),
    # unless it is t3.4xlarge, which EC2 never had: no stack can be running on it.
    old = re.compile(r"^(m6i|m7i|c6i|c7i|r6i|r7i|m6a|m7a|t3)\.(large|xlarge|2xlarge|4xlarge)$")
    families = ("m6i", "m7i", "c6i", "c7i", "r6i", "r7i", "m6a", "m7a", "t3")
    olds = {
        f"{f}.{s}" for f in families for s in ("large", "xlarge", "2xlarge", "4xlarge") if old.fullmatch(f"{f}.{s}")
    }
    assert olds - INSTANCE_TYPES == {"t3.4xlarge"}
    assert "t3.4xlarge" not in generator.botocore_types() | generator.cfn_lint_types()
