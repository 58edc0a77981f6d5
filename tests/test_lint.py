"""The cfn-lint gate, with winworkers' own rules: zero errors, warnings and informational findings, on the
committed templates and on renderings of non-default configs (the feature's
template and the examples' parents built with them)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import inline_parent
import nested_parent
from cfnlint.api import ManualArgs, lint
from hypothesis import HealthCheck, Phase, given, settings
from troposphere import Template

from conftest import ROOT, valid_configs
from winworkers import WorkersConfig, cli
from winworkers.constraints import check_parameters
from winworkers.lint import DESIGN_RULE_CONFIG, DESIGN_RULES, RULES_MODULE
from winworkers.renderings import with_defaults
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
    """template as deployed with each of deployments (parameter values, as a user passes them), as cfn-lint
    judges a copy of the template whose Defaults are a deployment's values: the deploy pre-check's
    constraints.check_parameters for every deployment (every parameter without a default given, each value
    within its constraints), then cfn-lint with our templates' options. Findings as "deployment N: problem"
    and "copy of deployment N: id message".

    One whole copy per distinct set of the values cfn-lint reads from a Default, not one per deployment:
    cfn-lint resolves a parameter with AllowedValues through every allowed value whatever its Default (in
    Conditions too), and besides that a Default is read only by E2015 (within the constraints) and by rules
    our templates give nothing to read (register row 284, tests/test_lint.py's pins). So copies that differ
    only in the Defaults of parameters with AllowedValues (the switch, the network mode, the warm pool) lint
    alike but for E2015, and each other deployment's Defaults get E2015 alone, on a copy of the parameters
    with one placeholder resource (and the template's Metadata: its cfn-lint configuration). A template
    with a Transform (cfn-lint's language extensions read Defaults) or a cfn-lint configuration of its own
    (its parameter sets) gets a whole copy per deployment."""
    declared = template.get("Parameters", {})
    problems = [
        f"deployment {n}: {p}" for n, values in enumerate(deployments) for p in check_parameters(template, values)
    ]
    if problems:
        return problems
    # A Transform (the language extensions read Defaults), or the template's own cfn-lint configuration (its
    # parameter sets resolve even a parameter with AllowedValues through one value): a copy per deployment.
    exact = "Transform" in template or "cfn-lint" in template.get("Metadata", {})
    read = [name for name, spec in declared.items() if not spec.get("AllowedValues") or exact]
    whole: dict[tuple[Any, ...], int] = {}
    for n, values in enumerate(deployments):
        whole.setdefault(tuple(values.get(name, declared[name].get("Default")) for name in read), n)
    placeholder = {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}
    parameters = {"Metadata": template.get("Metadata", {}), "Parameters": declared, "Resources": placeholder}
    findings = []
    for n, values in enumerate(deployments):
        copy = with_defaults(template if n in whole.values() else parameters, values)
        for m in lint(json.dumps(copy), config=lint_options()):
            if n in whole.values() or m.rule.id == "E2015":
                findings.append(f"copy of deployment {n}: {m.rule.id} {m.message}")
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
    assert [f.split(" ", 5)[4] for f in findings] == ["W1030"], findings
    assert findings[0].startswith("copy of deployment 1: W1030 {'Ref': 'Subnet'}"), findings


def test_lint_deployed_finds_a_broken_default_and_a_value_its_parameter_refuses() -> None:
    findings = lint_deployed(_instance({"Default": "sn-1"}), [{"Enable": "true"}])
    assert [f.split(" ", 5)[4] for f in findings] == ["W1030"], findings
    template = _instance({"Default": GOOD_SUBNET, "AllowedPattern": "^subnet-[0-9a-f]+$"})
    assert lint_deployed(template, [{"Subnet": "Subnet-1"}]) == [
        "deployment 0: Subnet='Subnet-1' is not allowed: pattern ^subnet-[0-9a-f]+$"
    ]


def test_lint_deployed_asks_every_deployment_for_what_has_no_default() -> None:
    findings = lint_deployed(_instance({}), [{"Subnet": GOOD_SUBNET}, {"Enable": "true"}])
    assert findings == ["deployment 1: Subnet has no default: give it a value"], findings


def test_lint_deployed_lints_a_copy_per_set_of_the_values_cfn_lint_reads_from_a_default() -> None:
    # Every copy here has a finding (the subnet's Default is refused), so each copy linted is named: the
    # deployments that differ from an earlier one only in the switch (AllowedValues) are not linted again.
    deployments = [{"Enable": "true"}, {"Enable": "false"}, {"Subnet": "sn-2"}, {"Subnet": "sn-2", "Enable": "true"}]
    findings = lint_deployed(_instance({"Default": "sn-1"}), deployments)
    assert [f.split(":")[0] for f in findings] == ["copy of deployment 0", "copy of deployment 2"], findings
    # With a Transform (the language extensions read Defaults), a copy per deployment.
    transformed = {**_instance({"Default": "sn-1"}), "Transform": "AWS::LanguageExtensions"}
    findings = lint_deployed(transformed, deployments)
    assert [f.split(":")[0] for f in findings] == [f"copy of deployment {n}" for n in range(4)], findings


# Register row 284: what lint_deployed's one copy per set of values rests on, in cfn-lint 1.58.0.


def test_cfn_lint_resolves_a_parameter_with_allowed_values_through_all_of_them_whatever_its_default() -> None:
    # cfnlint/context/context.py, ParameterValue.ref_value: "assume default is an allowed value so we skip it".
    def resolved(default: str) -> list[str]:
        template = _instance({"AllowedValues": [GOOD_SUBNET, "sn-1"], "Default": default})
        return [f"{m.rule.id} {m.message}" for m in lint(json.dumps(template), config=lint_options())]

    assert resolved(GOOD_SUBNET) == resolved("sn-1") != []


def test_cfn_lint_judges_conditions_at_a_resolution_with_the_value_resolved_not_other_defaults() -> None:
    # jsonschema/validators.py resolve_value keeps a resolved value only where the Conditions in force can
    # hold with it: a free-form parameter's Default decides that (so copies differ by it), the Default of a
    # parameter with AllowedValues (here the switch the resource's Condition reads) does not.
    def ids(switch: str, subnet: str, condition: str) -> list[str]:
        template = _instance({"Default": subnet})
        template["Parameters"]["Enable"]["Default"] = switch
        template["Conditions"]["Listed"] = {"Fn::Equals": [{"Ref": "Subnet"}, GOOD_SUBNET]}
        template["Resources"]["Worker"]["Condition"] = condition
        # W8001 (a condition nothing uses: the one the resource does not name) aside.
        return [m.rule.id for m in lint(json.dumps(template), config=lint_options()) if m.rule.id != "W8001"]

    assert ids("false", "sn-1", "Enabled") == ids("true", "sn-1", "Enabled") == ["W1030"]
    assert ids("true", "sn-1", "Listed") == []  # the Default "sn-1" makes Listed false: not checked there


def test_the_rules_that_read_a_parameter_s_default_are_the_known_ones() -> None:
    # Besides ParameterValue (context/context.py: the resolution), which of cfn-lint's modules read a
    # parameter's "Default": E2015 (within the constraints: check_parameters), E1051 and E1052 (dynamic
    # references in a Default: none in the tests' values), E3043 (a nested template's own Defaults),
    # E2900 (deployment files: not used) and the language extensions transform (a Transform: a copy per
    # deployment). A cfn-lint that reads Defaults elsewhere fails here, for lint_deployed to be looked at again.
    import cfnlint

    package = Path(cfnlint.__file__).parent
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "data" not in path.relative_to(package).parts and re.search(r"[\"']Default[\"']", path.read_text())
    )
    assert readers == [
        "context/context.py",
        "rules/deployment_files/Parameters.py",
        "rules/functions/DynamicReferenceSecretsManagerPath.py",
        "rules/functions/DynamicReferenceSsmPath.py",
        "rules/parameters/Default.py",
        "rules/resources/cloudformation/NestedStackParameters.py",
        "template/transforms/_language_extensions.py",
    ]
