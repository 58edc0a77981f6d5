"""The instance types the workers may run on: a floor below the config and the parameters.

Both winworkers.config (the default type) and winworkers.parameters (the
InstanceType parameter's constraint) need this, so it lives here and imports
nothing from the package but its generated data.

Two questions, answered in two places:

- *Which kinds* a Windows file-processing fleet may use is a policy, written
  here (is_fleet_type): the general purpose, compute and memory classes
  (m, c, r) from the 5th generation on, Intel or AMD, with or without local
  NVMe (d), network (n), EBS (b) or frequency (z) options and the flex
  variants; and the burstable t3 and t3a. Sizes from large up; no bare metal
  (a slower boot, for nothing a file worker needs), nothing smaller than
  large (Windows Server and the worker want its memory). No Graviton family
  (a ``g`` among the options): the AWS Windows Server AMIs are x86_64, and EC2
  refuses an AMI whose architecture the type does not support. Mac,
  accelerated, high-memory, HPC and storage-dense classes are out by the same
  class list.
- *Which types exist* comes from maintained sources, not from this module:
  scripts/instance_types.py reads botocore's EC2 service model (its
  ``InstanceType`` enum) and cfn-lint's per-Region instance type data (which
  cfn-lint gathers from the AWS Pricing API; it is newer than the pinned
  botocore and lists the 8th generation), keeps the types the policy admits,
  and writes winworkers/instance_type_data.py. tests/test_instance_types.py
  regenerates it from the versions pinned in requirements.lock and fails on
  any difference, so a new botocore or cfn-lint cannot leave the list stale.

Why a committed list, not botocore at run time: the package's runtime
dependencies are troposphere and awacs only, and a build must give the same
template wherever it runs. Why a pattern in the template, not AllowedValues:
the ~600 types as AllowedValues cost about 9 KB of the feature template,
which is held to a byte budget (templates.FEATURE_BUDGET); INSTANCE_TYPE_PATTERN, generated from the same list
(families grouped by their sizes), accepts exactly the listed types in about
0.6 KB. So CloudFormation itself refuses a typo, an arm64 type or a size the
family does not have, on every deploy path (console, CLI, nested parent),
before it creates anything.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping

from winworkers.instance_type_data import SIZES_BY_FAMILY as _LISTED

_FLEET_FAMILY = re.compile(r"[cmr][5-9][a-fh-z]*(-flex)?|t3a?")
_FLEET_SIZE = re.compile(r"large|[1-9][0-9]*xlarge|xlarge")

SIZES_BY_FAMILY: dict[str, tuple[str, ...]] = {family: tuple(sizes.split()) for family, sizes in _LISTED.items()}
"""Each listed family's sizes, smallest first (from winworkers/instance_type_data.py)."""
INSTANCE_FAMILIES: tuple[str, ...] = tuple(sorted(SIZES_BY_FAMILY))
INSTANCE_TYPES: frozenset[str] = frozenset(f"{f}.{s}" for f, sizes in SIZES_BY_FAMILY.items() for s in sizes)

INSTANCE_TYPE_DESCRIPTION = "a listed x86_64 m, c, r (gen 5+) or t3 type, large or up"
"""What INSTANCE_TYPE_PATTERN accepts, in words: the InstanceType parameter's ConstraintDescription."""


def is_fleet_type(name: str) -> bool:
    """Whether the policy admits the instance type name (whether EC2 has it is INSTANCE_TYPES' question)."""
    family, dot, size = name.partition(".")
    return bool(dot and _FLEET_FAMILY.fullmatch(family) and _FLEET_SIZE.fullmatch(size))


def size_order(size: str) -> tuple[int, int]:
    """large, xlarge, 2xlarge, 3xlarge, ... 96xlarge: the order EC2's sizes grow in."""
    if size == "large":
        return (0, 0)
    return (1, int(size.removesuffix("xlarge") or 1))


def sizes_by_family(types: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The types the policy admits, as family to its sizes (sorted): the shape of instance_type_data."""
    grouped: defaultdict[str, set[str]] = defaultdict(set)
    for name in types:
        if is_fleet_type(name):
            family, _, size = name.partition(".")
            grouped[family].add(size)
    return {family: tuple(sorted(grouped[family], key=size_order)) for family in sorted(grouped)}


def pattern_for(families: Mapping[str, Iterable[str]]) -> str:
    """An anchored regular expression that matches exactly the family.size names given.

    Families with the same sizes share one alternative, and within it, families
    differing only in their class letter share a character class ([cmr]6i):
    the expression grows with the kinds of size sets, not with the types.
    """
    by_sizes: defaultdict[tuple[str, ...], list[str]] = defaultdict(list)
    for family, sizes in families.items():
        by_sizes[tuple(sorted(set(sizes), key=size_order))].append(family)
    parts = sorted(f"{_families(names)}\\.{_sizes(sizes)}" for sizes, names in by_sizes.items())
    return f"^({'|'.join(parts)})$"


def _alternatives(items: Iterable[str]) -> str:
    ordered = sorted(set(items), key=lambda item: (len(item), item))
    return ordered[0] if len(ordered) == 1 else f"({'|'.join(ordered)})"


def _families(names: list[str]) -> str:
    classes_by_rest: defaultdict[str, set[str]] = defaultdict(set)
    for name in names:
        classes_by_rest[name[1:]].add(name[0])
    rests_by_classes: defaultdict[str, list[str]] = defaultdict(list)
    for rest, classes in classes_by_rest.items():
        rests_by_classes["".join(sorted(classes))].append(rest)
    return _alternatives(
        (classes if len(classes) == 1 else f"[{classes}]") + _alternatives(rests)
        for classes, rests in rests_by_classes.items()
    )


def _sizes(sizes: tuple[str, ...]) -> str:
    multiples = [size.removesuffix("xlarge") for size in sizes if size.endswith("xlarge") and size != "xlarge"]
    parts = ["large"] if "large" in sizes else []
    if multiples:
        parts.append(_alternatives(multiples) + ("?" if "xlarge" in sizes else "") + "xlarge")
    elif "xlarge" in sizes:
        parts.append("xlarge")
    return _alternatives(parts)


INSTANCE_TYPE_PATTERN = pattern_for(SIZES_BY_FAMILY)
"""The InstanceType parameter's AllowedPattern: exactly INSTANCE_TYPES."""

INSTANCE_TYPE_LIST_PATTERN = "^(" + INSTANCE_TYPE_PATTERN.removeprefix("^(").removesuffix(")$") + ")?$"
"""The InstanceTypes list's AllowedPattern, which CloudFormation applies to each item: one of
INSTANCE_TYPES, or empty (an empty list is one empty item)."""
INSTANCE_TYPE_LIST_DESCRIPTION = "empty, or listed x86_64 m, c, r (gen 5+) or t3 types, large or up, comma-separated"
"""What INSTANCE_TYPE_LIST_PATTERN accepts, in words."""


def instance_type_problem(name: str) -> str | None:
    """Why name is not one of INSTANCE_TYPES, in words (None if it is), with the nearest listed type."""
    if name in INSTANCE_TYPES:
        return None
    family = name.partition(".")[0]
    if family in SIZES_BY_FAMILY:
        why = f"{family} comes in {', '.join(SIZES_BY_FAMILY[family])}"
    elif re.fullmatch(r"[a-z0-9-]*g[a-z0-9-]*", family) and _FLEET_FAMILY.fullmatch(family.replace("g", "", 1)):
        why = "an arm64 (Graviton) family, and the Windows AMIs are x86_64"
    else:
        why = f"{INSTANCE_TYPE_DESCRIPTION} (winworkers.instance_types.INSTANCE_TYPES)"
    near = difflib.get_close_matches(name, sorted(INSTANCE_TYPES), n=1)
    return why + (f"; did you mean {near[0]}?" if near else "")
