"""Per-resource exceptions to a scanner's check, each with its reason next to it.

Never global: a check is switched off only on the resource it is wrong for,
and the reason is rendered into that resource's Metadata for the reader.
"""

from __future__ import annotations

from typing import Any

from troposphere import BaseAWSObject


def skip_checkov(resource: BaseAWSObject, check: str, reason: str) -> None:
    """checkov's own per-resource skip format; the comment is the reason."""
    metadata = _metadata(resource)
    metadata.setdefault("checkov", {"skip": []})["skip"].append({"id": check, "comment": reason})


def skip_cfn_lint(resource: BaseAWSObject, check: str, reason: str) -> None:
    """cfn-lint's per-resource ignore_checks, with the reason beside it."""
    metadata = _metadata(resource)
    entry = metadata.setdefault("cfn-lint", {"config": {"ignore_checks": []}})
    entry["config"]["ignore_checks"].append(check)
    metadata.setdefault("cfn-lint-reasons", {})[check] = reason


def _metadata(resource: BaseAWSObject) -> dict[str, Any]:
    if "Metadata" not in resource.resource:
        resource.Metadata = {}
    metadata: dict[str, Any] = resource.Metadata
    return metadata
