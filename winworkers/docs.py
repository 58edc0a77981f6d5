"""Documentation generated from the declarations, so it cannot drift from them."""

from __future__ import annotations

import json
import re
from typing import Any

from winworkers.build import child_template
from winworkers.config import WorkersConfig
from winworkers.parameters import in_console_order, param_name, parameter_specs


def parameter_table(config: WorkersConfig) -> str:
    """The stack parameters as a Markdown table (docs/parameters.md embeds this), grouped as the console
    groups them (parameters.in_console_order)."""
    rows = ["| Group | Parameter | Default | Allowed | Description |", "| --- | --- | --- | --- | --- |"]
    for spec in in_console_order(parameter_specs(config)):
        default = f"`{spec.default}`" if spec.default else "(empty)"
        allowed = spec.constraint_text().replace("|", "\\|")
        name = param_name(config, spec.name)
        rows.append(f"| {spec.group} | `{name}` | {default} | {allowed} | {spec.description} |")
    return "\n".join(rows) + "\n"


def output_table(config: WorkersConfig) -> str:
    """The feature's outputs as a Markdown table, read from the built template (docs/embedding.md embeds this)."""
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


_PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::StackName": "platform",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::Partition": "aws",
}


def worker_settings_of(config: WorkersConfig) -> dict[str, Any]:
    """The content of worker.json as the template declares it (intrinsics as JSON)."""
    from troposphere import Template, encode_to_dict

    from winworkers.bootstrap import worker_settings
    from winworkers.parameters import add_parameters

    settings: dict[str, Any] = encode_to_dict(worker_settings(add_parameters(Template(), config)))
    return settings


def worker_config_table(config: WorkersConfig) -> str:
    """worker.json's keys as a Markdown table: JSON type, where the value comes from, meaning."""
    from winworkers import bootstrap

    rows = ["| Key | Type | Value | Meaning |", "| --- | --- | --- | --- |"]
    meaning = {row.key: row.meaning for row in bootstrap.WORKER_SETTINGS}

    def add(prefix: str, settings: dict[str, Any]) -> None:
        for key, value in settings.items():
            name = f"{prefix}{key}"
            nested = isinstance(value, dict) and not _is_intrinsic(value)
            kind = "object" if nested else "array of strings" if isinstance(value, list) else "string"
            source = "" if nested else _value_text(value)
            rows.append(f"| `{name}` | {kind} | {source} | {meaning[name]} |")
            if nested:
                add(f"{name}.", value)

    add("", worker_settings_of(config))
    return "\n".join(rows) + "\n"


def worker_config_sample(
    config: WorkersConfig, values: dict[str, str], pseudo: dict[str, str] | None = None
) -> dict[str, Any]:
    """worker.json as an instance receives it, for parameter values (logical names; the
    others take their defaults) and pseudo parameters (defaults: us-east-1, stack "platform", account 123456789012)."""
    defaults = {param_name(config, spec.name): spec.default for spec in parameter_specs(config)}
    known = {**_PSEUDO, **(pseudo or {}), **defaults, **values}
    resolved: dict[str, Any] = _resolve(worker_settings_of(config), known)
    return resolved


_INTRINSICS = ("Ref", "Fn::Sub", "Fn::Select", "Fn::Split", "Fn::Join", "Fn::GetAtt")


def _is_intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in _INTRINSICS


def _value_text(value: Any) -> str:
    """Where a worker.json value comes from, as a reader writes it."""
    if isinstance(value, list):
        return "`" + json.dumps(value).replace("|", "\\|") + "` (`WorkersConfig.worker_log_paths`)"
    if isinstance(value, str):
        return f"`{value}`"
    if "Ref" in value:
        name = value["Ref"]
        return f"`{name}`" if name.startswith("AWS::") else f"parameter `{name}`"
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub
        for variable, expression in variables.items():
            text = text.replace("${" + variable + "}", "<" + variable.lower() + " of " + _refs_text(expression) + ">")
        return f"`{text}`"
    return f"`{json.dumps(value)}`"


def _refs_text(expression: Any) -> str:
    if isinstance(expression, dict):
        if "Ref" in expression:
            return str(expression["Ref"])
        return ", ".join(_refs_text(v) for v in expression.values())
    if isinstance(expression, list):
        return ", ".join(t for t in (_refs_text(v) for v in expression) if t)
    return ""


def _resolve(node: Any, known: dict[str, str]) -> Any:
    """The few intrinsics worker_settings uses, evaluated as CloudFormation would."""
    if isinstance(node, list):
        return [_resolve(item, known) for item in node]
    if not isinstance(node, dict):
        return node
    if not _is_intrinsic(node):
        return {key: _resolve(value, known) for key, value in node.items()}
    ((function, argument),) = node.items()
    if function == "Ref":
        return known[argument]
    if function == "Fn::Select":
        return _resolve(argument[1], known)[int(argument[0])]
    if function == "Fn::Split":
        return _resolve(argument[1], known).split(argument[0])
    if function == "Fn::Join":
        return argument[0].join(_resolve(argument[1], known))
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        scope = {**known, **{k: _resolve(v, known) for k, v in variables.items()}}
        return re.sub(r"\$\{([\w:]+)\}", lambda m: str(scope[m.group(1)]), text)
    raise ValueError(f"worker.json uses {function}, which winworkers.docs cannot evaluate")


def refresh_rows(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(parameter, what a change of it does to the running workers, through what) for each parameter
    of template, derived as the deploy preview predicts (deploy.changes.refresh_inputs), with the
    replacements the resource schemas imply (update_path; needs cfn-lint)."""
    from winworkers.deploy.changes import references, refresh_inputs, refresh_triggers
    from winworkers.update_path import depends_on, update_path

    replaced, _ = update_path(template)
    inputs = refresh_inputs(template, replaced)
    triggers = refresh_triggers(template)
    resources = template["Resources"]
    switches = {
        name
        for n, r in resources.items()
        if r.get("Type") == "AWS::EC2::LaunchTemplate" and n in triggers and "Condition" in r
        for name in references({"Condition": r["Condition"]}, template)
    }
    rows = []
    for parameter in template["Parameters"]:
        if parameter in switches:
            rows.append((parameter, "creates or deletes the workers (the feature's switch)", ""))
            continue
        if parameter not in inputs:
            rows.append((parameter, "nothing is refreshed", ""))
            continue
        through = []
        for trigger in inputs[parameter]:
            used = depends_on(triggers[trigger], template.get("Conditions", {}))
            via = sorted(used & replaced.get(parameter, set()))
            through.append(f"`{trigger}`" + (f" (replaces {', '.join(f'`{v}`' for v in via)})" if via else ""))
        rows.append((parameter, "refreshes the workers", ", ".join(through)))
    return rows


def refresh_table(config: WorkersConfig) -> str:
    """Which parameter changes refresh the running workers (docs/updates.md embeds this)."""
    rows = ["| Parameter | A change | Through |", "| --- | --- | --- |"]
    template = child_template(config).to_dict()
    rows += [f"| `{name}` | {what} | {through} |" for name, what, through in refresh_rows(template)]
    return "\n".join(rows) + "\n"


def lint_rule_reference() -> str:
    """The package's cfn-lint rules as docs/lint-rules.md shows them, read from each rule's own
    metadata as cfn-lint documents its rules (id, shortdesc, description, source_url, tags): a
    table, then per rule its docstring and, where it has one, its `reference_table` (needs cfn-lint)."""
    import inspect

    from winworkers.lint import rules as package

    found = sorted((getattr(package, name) for name in package.__all__), key=lambda rule: str(rule.id)[1:])
    rows = ["| Rule | Title | Description | Source | Tags |", "| --- | --- | --- | --- | --- |"]
    sections = []
    for rule in found:
        path = f"../winworkers/lint/rules/{inspect.getfile(rule).replace(chr(92), '/').rsplit('/', 1)[-1]}"
        tags = ", ".join(f"`{tag}`" for tag in rule.tags)
        rows.append(
            f"| [{rule.id}]({path}) | {_cell(rule.shortdesc)} | {_cell(rule.description)} "
            f"| [Source]({rule.source_url}) | {tags} |"
        )
        doc = rule.__dict__.get("__doc__")  # its own: inspect.getdoc would inherit cfn-lint's base class's
        if not doc:
            raise ValueError(f"lint rule {rule.id} has no docstring: winworkers.docs documents each rule from it")
        sections.append(f"### {rule.id}: {rule.shortdesc}\n\n{_markdown(inspect.cleandoc(doc))}\n")
        table = getattr(rule, "reference_table", ())
        if table:
            header, *body = table
            lines = [_row(header), "| " + " | ".join("---" for _ in header) + " |", *(_row(r) for r in body)]
            sections.append("\n".join(lines) + "\n")
    count = f"The package's **{len(found)}** rules, from each rule's own metadata and docstring:\n\n"
    return count + "\n".join(rows) + "\n\n" + "\n".join(sections)


def _cell(text: str) -> str:
    """text as one Markdown table cell: its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _markdown(docstring: str) -> str:
    """A rule's docstring (reStructuredText's ``literals``) as Markdown (`literals`)."""
    return docstring.replace("``", "`")
