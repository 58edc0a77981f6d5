"""Documentation generated from the declarations, so it cannot drift from them."""

from __future__ import annotations

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
