"""The cfn-lint gate, with winworkers' own rules: zero errors, warnings and informational findings, on the
committed templates and on renderings of non-default configs (the feature's
template and the examples' parents built with them)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import inline_parent
import nested_parent
from cfnlint.api import ManualArgs, lint
from cfnlint.context.parameters import ParameterSet
from hypothesis import HealthCheck, Phase, given, settings
from troposphere import Template

from conftest import ROOT, valid_configs
from winworkers import WorkersConfig, cli
from winworkers.constraints import value_problems
from winworkers.lint import DESIGN_RULE_CONFIG, DESIGN_RULES, RULES_MODULE
from winworkers.rules import split_list
from winworkers.templates import all_templates, render

LINTED: dict[tuple[str, ...], tuple[int, list[dict[str, Any]]]] = {}
"""linted's answers by its arguments and the templates' bytes, for this run: a template that several
tests lint with the same options is linted once (cfn-lint takes about 2 s of CPU per template)."""


def linted(paths: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    """`winworkers lint` with our templates' options, as (exit code, findings): the console
    script's main in process (tests/test_lint_rules.py runs the script itself)."""
    argv = [
        "lint",
        "--include-checks",
        "I",
        # Our templates are held to the opt-in design rules too (W9104).
        *DESIGN_RULES,
        "--format",
        "json",
        "--",
        *map(str, paths),
    ]
    key = (*argv, *(hashlib.sha256(path.read_bytes()).hexdigest() for path in paths))
    if key not in LINTED:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(argv)
        LINTED[key] = (code, json.loads(out.getvalue() or "[]"))
    code, findings = LINTED[key]
    return code, copy.deepcopy(findings)


def cfn_lint(paths: list[Path]) -> list[str]:
    """linted's findings as "file: id message"."""
    code, findings = linted(paths)
    assert code in (0, 2, 4, 6, 8, 10, 12, 14) or findings, code
    return [f"{f['Filename']}: {f['Rule']['Id']} {f['Message']}" for f in findings]


def lint_options(**more: Any) -> ManualArgs:
    """linted's options (`winworkers lint`'s, as the package's own gates run it) for cfnlint.api.lint."""
    return ManualArgs(
        include_checks=["I"],
        regions=["us-east-1"],
        append_rules=[RULES_MODULE],
        configure_rules=DESIGN_RULE_CONFIG,
        **more,
    )


def lint_deployed(template: Mapping[str, Any], deployments: Sequence[Mapping[str, str]]) -> list[str]:
    """template linted as built, and as deployed with each of deployments (parameter values, as a
    user passes them): every value against its parameter's constraints (constraints.value_problems,
    the deploy pre-check's), then cfn-lint with our templates' options twice, on the template alone
    and with deployments as its parameter sets (one run: each Ref to a parameter a set names
    resolves to the set's value; cfn-lint's --parameters and deployment files). Findings as
    "deployment N: problem", "as built: id message" and "as deployed: id message".

    This replaces linting copies whose Defaults are the values, which checked less for N times the
    CPU: cfn-lint resolves a parameter with AllowedValues through every allowed value whatever its
    Default (the switch's "true" was never singled out), and evaluates no Condition from a Default;
    what else read the copies' Defaults was E2015 (a Default within the constraints: value_problems
    here). Register row 284."""
    declared = template.get("Parameters", {})
    problems = [
        f"deployment {n}: {p}" for n, values in enumerate(deployments) for p in value_problems(template, values)
    ]
    if problems:
        return problems
    sets = [
        ParameterSet(
            source=f"deployment {n}",
            parameters={name: split_list(declared[name]["Type"], value) for name, value in values.items()},
        )
        for n, values in enumerate(deployments)
    ]
    body = json.dumps(template)
    findings = [f"as built: {m.rule.id} {m.message}" for m in lint(body, config=lint_options())]
    if sets:  # cfn-lint takes no parameter sets as none given: the lint as built again
        findings += [f"as deployed: {m.rule.id} {m.message}" for m in lint(body, config=lint_options(parameters=sets))]
    return findings


def test_committed_templates_lint_clean() -> None:
    assert cfn_lint(sorted((ROOT / "templates").glob("*.json"))) == []


def test_committed_templates_pass_our_rules() -> None:
    templates = sorted(str(p) for p in (ROOT / "templates").glob("*.json"))
    assert len(templates) == 3
    # tests/test_lint_rules.py's gate, here: the same run as test_committed_templates_lint_clean's, linted
    # once per run (pytest-xdist gives each module to one worker, a process of its own, with its own LINTED).
    code, findings = linted([Path(t) for t in templates])
    assert [(f["Filename"], f["Rule"]["Id"], f["Message"]) for f in findings] == []
    assert code == 0


def _with_parents(config: WorkersConfig) -> dict[str, Template]:
    """The feature's template for config, and the examples' parents built with it."""
    return {
        **all_templates(config),
        "parent-inline.json": inline_parent.inline_parent(config),
        "parent-nested.json": nested_parent.nested_parent(config)[0],
    }


def test_other_configs_lint_clean(tmp_path: Path) -> None:
    paths = []
    for n, config in enumerate(
        [
            WorkersConfig(prefix="Masslynx", max_fleet_size=1000, include_alarms=False),
            WorkersConfig(
                max_fleet_size=1, worker_log_paths=("D:\\a\\*.log", "E:\\b.txt"), metrics_interval_seconds=10
            ),
        ]
    ):
        for name, template in _with_parents(config).items():
            paths.append(tmp_path / f"{n}-{name}")
            paths[-1].write_text(render(template), encoding="utf-8")
    assert cfn_lint(paths) == []


# Each example runs cfn-lint three times (~3 s); few examples, no shrinking marathon on failure.
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=[Phase.generate])
@given(config=valid_configs())
def test_any_valid_config_lints_clean(config: WorkersConfig) -> None:
    for name, template in _with_parents(config).items():
        matches = lint(render(template), config=lint_options())
        assert [f"{m.rule.id} {m.message}" for m in matches] == [], (name, config)


def _instance(subnet: dict[str, Any]) -> dict[str, Any]:
    """A platform's template in small: an instance in a subnet parameter, behind a switch with AllowedValues."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "Subnet": {"Type": "String", **subnet},
            "Enable": {"Type": "String", "AllowedValues": ["true", "false"], "Default": "false"},
        },
        "Conditions": {"Enabled": {"Fn::Equals": [{"Ref": "Enable"}, "true"]}},
        "Resources": {
            "Worker": {
                "Type": "AWS::EC2::Instance",
                "Condition": "Enabled",
                "Properties": {"ImageId": "ami-0a1b2c3d4e5f67890", "SubnetId": {"Ref": "Subnet"}},
            }
        },
    }


GOOD_SUBNET = "subnet-0a1b2c3d4e5f67890"


def test_lint_deployed_finds_what_only_a_deployment_s_values_break() -> None:
    template = _instance({"Default": GOOD_SUBNET})
    assert lint_deployed(template, [{"Enable": "true"}]) == []
    # As built it is clean; deployed with a subnet the property's pattern refuses, it is not.
    findings = lint_deployed(template, [{"Enable": "true"}, {"Enable": "true", "Subnet": "sn-1"}])
    assert [f.split(" ", 3)[2] for f in findings] == ["W1030"], findings
    assert "when 'Ref' is resolved to 'sn-1' from ['deployment 1']" in findings[0]


def test_lint_deployed_finds_a_broken_build_and_a_value_its_parameter_refuses() -> None:
    assert [f.split(" ", 3)[2] for f in lint_deployed(_instance({"Default": "sn-1"}), [])] == ["W1030"]
    template = _instance({"Default": GOOD_SUBNET, "AllowedPattern": "^subnet-[0-9a-f]+$"})
    assert lint_deployed(template, [{"Subnet": "Subnet-1"}]) == [
        "deployment 0: Subnet='Subnet-1' is not allowed: pattern ^subnet-[0-9a-f]+$"
    ]


def test_lint_deployed_asks_every_deployment_for_what_has_no_default() -> None:
    findings = lint_deployed(_instance({}), [{"Enable": "true"}])
    assert findings == ["as deployed: E2900 'Subnet' is a required property"], findings


def test_cfn_lint_resolves_a_parameter_with_allowed_values_through_all_of_them_whatever_its_default() -> None:
    # Why lint_deployed lints parameter sets rather than copies whose Defaults are the values: a Default
    # of a parameter with AllowedValues never singles its value out (cfnlint/context/context.py,
    # ParameterValue.ref_value: "assume default is an allowed value so we skip it"). Register row 284.
    def resolved(default: str) -> list[str]:
        template = _instance({"AllowedValues": [GOOD_SUBNET, "sn-1"], "Default": default})
        return [f"{m.rule.id} {m.message}" for m in lint(json.dumps(template), config=lint_options())]

    assert resolved(GOOD_SUBNET) == resolved("sn-1") != []
    # A parameter set's value is singled out.
    sets = [ParameterSet(source="good", parameters={"Subnet": GOOD_SUBNET})]
    template = _instance({"AllowedValues": [GOOD_SUBNET, "sn-1"], "Default": "sn-1"})
    assert list(lint(json.dumps(template), config=lint_options(parameters=sets))) == []
