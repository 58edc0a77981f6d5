"""Documentation generated from the declarations, so it cannot drift from them."""

from __future__ import annotations

from typing import Any

from winworkers.build import child_template
from winworkers.config import WorkersConfig
from winworkers.parameters import param_name, parameter_specs


def parameter_table(config: WorkersConfig) -> str:
    """The stack parameters as a Markdown table (the README embeds this)."""
    rows = ["| Group | Parameter | Default | Allowed | Description |", "| --- | --- | --- | --- | --- |"]
    for spec in parameter_specs(config):
        default = f"`{spec.default}`" if spec.default else "(empty)"
        allowed = spec.constraint_text().replace("|", "\\|")
        name = param_name(config, spec.name)
        rows.append(f"| {spec.group} | `{name}` | {default} | {allowed} | {spec.description} |")
    return "\n".join(rows) + "\n"


def output_table(config: WorkersConfig) -> str:
    """The feature's outputs as a Markdown table, read from the built template (the README embeds this)."""
    rows = ["| Output | Value | Description |", "| --- | --- | --- |"]
    for name, output in child_template(config).to_dict()["Outputs"].items():
        rows.append(f"| `{name}` | `{_intrinsic_text(output['Value'])}` | {output['Description']} |")
    return "\n".join(rows) + "\n"


def _intrinsic_text(value: Any) -> str:
    """Ref and GetAtt as a reader writes them: Ref WinGroup, GetAtt WinInstanceRole.Arn."""
    if isinstance(value, dict) and "Ref" in value:
        return f"Ref {value['Ref']}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "GetAtt " + ".".join(value["Fn::GetAtt"])
    return str(value)
