"""tests/lint_speed.py (installed by conftest for every in-process lint) gives cfn-lint's answers:
the same findings as cfn-lint as shipped, on templates with findings (the corpus, our rules' bad
fixtures) and on renderings of the feature, and each stand-in answers as the function it replaces; so do
tests/boto_speed.py's (installed for every botocore client) botocore's."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto_speed
import cfnlint.context.context
import cfnlint.jsonschema._filter
import cfnlint.rules.jsonschema.CfnLint
import cfnlint.template
import lint_speed
import pytest
from cfnlint.api import ManualArgs, lint
from sympy import symbols
from sympy.assumptions.cnf import EncodedCNF
from sympy.logic.boolalg import And, Not, Or

from conftest import ROOT
from winworkers.lint import DESIGN_RULE_CONFIG, RULES_MODULE
from winworkers.renderings import MODES, enabled_parameters, with_defaults

ARGS = ManualArgs(
    include_checks=["I"], regions=["us-east-1"], append_rules=[RULES_MODULE], configure_rules=DESIGN_RULE_CONFIG
)
TEMPLATES = [
    *sorted((ROOT / "tests" / "fixtures" / "lint-corpus").glob("*.yaml")),
    *sorted((ROOT / "tests" / "fixtures" / "lint").glob("*/bad.json")),
]

# Findings of rules that rule E1101's cfnLint keyword runs (E3530 IAM policy, E2533 Lambda runtime,
# E3031 pattern, E1161): the corpus has few, and lint_speed.cfn_lint stands in for that dispatch.
CHILD_RULE_FINDINGS = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allowed, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}
  Function:
    Type: AWS::Lambda::Function
    Properties: {Runtime: python2.7, Handler: index.handler, Role: !GetAtt Role.Arn, Code: {ZipFile: x}}
  Bucket:
    Type: AWS::S3::Bucket
    Properties: {BucketName: Bad_Name}
"""


def _findings(texts: list[str]) -> list[list[tuple[str, str, int, int]]]:
    return [sorted((m.rule.id, m.message, m.linenumber, m.columnnumber) for m in lint(t, config=ARGS)) for t in texts]


@pytest.fixture
def shipped() -> Iterator[None]:
    """cfn-lint without the stand-ins for the test, then with them again."""
    lint_speed.uninstall()
    try:
        yield
    finally:
        lint_speed.install()


def test_findings_are_cfn_lints_as_shipped(shipped: None) -> None:
    texts = [CHILD_RULE_FINDINGS, *(path.read_text(encoding="utf-8") for path in TEMPLATES)]
    # Two renderings of the nested parent (its switch and modes are Conditions): the second asks the
    # solver what the first did (kept answers).
    parent = json.loads((ROOT / "templates" / "parent-nested.json").read_text(encoding="utf-8"))
    for mode in sorted(MODES)[:2]:
        values = {k: v for k, v in enabled_parameters(mode=mode).items() if k in parent["Parameters"]}
        texts.append(json.dumps(with_defaults(parent, values)))
    fresh = _findings(texts)
    lint_speed.install()
    assert _findings(texts) == fresh
    assert sum(map(len, fresh)) > 20, "templates with findings were linted"
    assert {"E3530", "E2533", "E3031"} <= {finding[0] for finding in fresh[0]}


def test_satisfiable_answers_as_sympys() -> None:
    a, b, c = symbols("a b c")
    for expr in (And(a, Not(a)), And(Or(a, b), Not(b), Or(Not(a), c)), Or(a, b)):
        cnf = EncodedCNF()
        cnf.add_prop(expr)
        for _ in range(2):
            assert lint_speed.satisfiable(cnf) == lint_speed.fresh_satisfiable(cnf)
    # A kept model is a copy: changing one answer changes no other.
    cnf = EncodedCNF()
    cnf.add_prop(Or(a, b))
    model = lint_speed.satisfiable(cnf)
    model.clear()
    assert lint_speed.satisfiable(cnf) == lint_speed.fresh_satisfiable(cnf) != {}


def test_fields_and_validator_classes_answer_as_dataclasses_and_cfn_lint() -> None:
    for cls in (cfnlint.context.context.Context, cfnlint.jsonschema._filter.FunctionFilter):
        assert lint_speed.fields(cls) == dataclasses.fields(cls)
        assert lint_speed.fields(cls) is lint_speed.fields(cls)
    instance = cfnlint.jsonschema._filter.FunctionFilter()
    assert lint_speed.fields(instance) == dataclasses.fields(instance)
    fresh = lint_speed.fresh_create(validators={"type": len})
    kept = lint_speed.create(validators={"type": len})
    assert kept is lint_speed.create(validators={"type": len})
    assert [
        (f.name, f.default_factory()) for f in dataclasses.fields(kept) if f.name in ("validators", "fn_resolvers")
    ] == [(f.name, f.default_factory()) for f in dataclasses.fields(fresh) if f.name in ("validators", "fn_resolvers")]
    assert lint_speed.create(validators={"type": str}) is not kept


def test_context_evolve_answers_as_cfn_lints() -> None:
    from cfnlint.context import create_context_for_template
    from cfnlint.decode import decode_str

    Context = cfnlint.context.context.Context
    # What evolve relies on: the dataclass's __init__ only sets fields, all of them init fields.
    assert "__post_init__" not in vars(Context)
    assert all(f.init for f in dataclasses.fields(Context))
    template, errors = decode_str((ROOT / "templates" / "parent-nested.json").read_text(encoding="utf-8"))
    assert not errors
    context = create_context_for_template(cfnlint.template.Template("t.json", template, ["us-east-1"]))
    assert context.module_names == ()  # cached on the context: not carried to a new one
    for changes in (
        {},
        {"strict_types": False},
        {"ref_values": {"AWS::Region": "eu-west-1"}},
        {"path": context.path.descend(path="Resources"), "functions": ["Ref"]},
    ):
        kept, fresh = lint_speed.evolve(context, **changes), lint_speed.fresh_evolve(context, **changes)
        assert kept == fresh and type(kept) is type(fresh)
        assert vars(kept) == vars(fresh) and "module_names" not in vars(kept)
    merged = lint_speed.evolve(context.evolve(ref_values={"A": 1}), ref_values={"B": 2})
    assert merged.ref_values == {"A": 1, "B": 2}
    with pytest.raises(TypeError):
        lint_speed.evolve(context, no_such_field=1)


def test_e1101_dispatch_runs_the_child_rules_in_cfn_lints_order() -> None:
    """cfn-lint sorts its findings, so the findings test cannot see the order E1101 runs its child
    rules in: here rules declaring keywords (one twice, one None, one without an id) answer with their
    names, and the stand-in's sequence is the shipped cfnLint's."""
    from types import SimpleNamespace

    from cfnlint.jsonschema._utils import Unset

    def child(name: str, *keywords: str, rule_id: str = "E9999") -> Any:
        def validate(validator: Any, keyword: str, instance: Any, schema: Any) -> Any:
            yield SimpleNamespace(rule=None, validator=Unset(), name=f"{name}:{keyword}")

        return SimpleNamespace(id=rule_id, keywords=list(keywords), validate=validate, name=name)

    parent = SimpleNamespace(
        child_rules={
            "a": child("a", "k2", "k1"),
            "b": child("b", "k1", "k1"),
            "none": None,
            "noid": child("noid", "k1", rule_id=""),
            "c": child("c", "k2"),
        }
    )
    validator = SimpleNamespace(
        evolve=lambda **kwargs: validator, function_filter=SimpleNamespace(evolve=lambda **kwargs: None)
    )
    # The class as cfn-lint's package defines it (lint_speed patches only the ones its rule loads make).
    shipped = vars(cfnlint.rules.jsonschema.CfnLint.CfnLint)["cfnLint"]
    assert shipped is not lint_speed.cfn_lint
    answers = {}
    for keywords in (["k1", "k2"], ["k2", "k1", "k1"], ["k3"]):
        fresh = [(e.name, e.rule.name) for e in shipped(parent, validator, keywords, {}, {})]
        assert [(e.name, e.rule.name) for e in lint_speed.cfn_lint(parent, validator, keywords, {}, {})] == fresh
        answers[tuple(keywords)] = [name for name, _ in fresh]
    assert answers[("k1", "k2")] == ["a:k1", "b:k1", "b:k1", "a:k2", "c:k2"]
    assert answers[("k3",)] == []


def test_the_stand_ins_are_the_ones_lints_run() -> None:
    """Each stand-in is what an in-process lint calls (a patch that missed cfn-lint's own name would
    leave the findings test nothing to compare)."""
    lint("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n", config=ARGS)
    assert cfnlint.context.context.Context.evolve is lint_speed.evolve
    assert lint_speed._CFN_LINT_CLASSES, "no load of cfn-lint's rules reached lint_speed.adopt"
    assert all(cls.cfnLint is lint_speed.cfn_lint for cls in lint_speed._CFN_LINT_CLASSES)


def test_moto_images_are_motos_base_images_and_the_tests_pick_the_same(tmp_path: Path) -> None:
    """conftest points MOTO_AMIS_PATH at moto's own base images: moto as shipped also makes its latest
    and ECS-optimized ones, which no test names; the Windows images the tests pick come first either way."""
    import subprocess
    import sys

    from moto.utilities.utils import load_resource

    from conftest import MOTO_AMIS

    assert json.loads(MOTO_AMIS.read_text(encoding="utf-8")) == load_resource("ec2/resources/amis.json"), (
        "moto's base images changed: write moto.utilities.utils.load_resource('ec2/resources/amis.json') to "
        + str(MOTO_AMIS)
    )
    pick = (
        "import boto3, json; from moto import mock_aws\n"
        "with mock_aws():\n"
        "    ec2 = boto3.client('ec2', region_name='us-east-1')\n"
        "    images = ec2.describe_images(Owners=['amazon'], Filters=[{'Name': 'platform', 'Values': ['windows']}])\n"
        "    print(json.dumps([i['ImageId'] for i in images['Images']]))\n"
    )
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin"}
    shipped = json.loads(
        subprocess.run([sys.executable, "-c", pick], env=env, capture_output=True, text=True, check=True).stdout
    )
    small = json.loads(
        subprocess.run(
            [sys.executable, "-c", pick],
            env={**env, "MOTO_AMIS_PATH": str(MOTO_AMIS)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert len(shipped) > len(small) >= 2
    assert shipped[: len(small)] == small
    # The images tests name by id (test_wake.py, test_refresh_emulator.py).
    assert "ami-12c6146b" in small


def test_timestamps_parse_as_botocores() -> None:
    """tests/boto_speed.py: the kept datetime of each timestamp is botocore's (value, zone and its offset),
    asked once or again, and every client made in the tests parses through it."""
    import boto3

    values = [
        "2026-12-07T20:56:44.123000Z",
        "2026-12-07T20:56:44Z",
        "2026-12-07T20:56:44+02:00",
        "2026-12-07T20:56:44",
        "Mon, 07 Dec 2026 20:56:44 GMT",
        "1765140000",
        1765140000,
        1765140000.5,
    ]
    for value in values:
        for _ in range(2):
            kept, fresh = boto_speed.parse_timestamp(value), boto_speed.fresh_parse_timestamp(value)
            assert (kept, repr(kept.tzinfo), kept.utcoffset()) == (fresh, repr(fresh.tzinfo), fresh.utcoffset())
    with pytest.raises(ValueError):
        boto_speed.parse_timestamp("not a time")
    client = boto3.session.Session(region_name="us-east-1").client("cloudformation")
    assert client._response_parser._timestamp_parser is boto_speed.parse_timestamp


def test_the_longest_modules_named_first_are_modules_of_the_tests() -> None:
    """conftest.LONGEST_FIRST (the order pytest-xdist sends modules in) names existing test modules, once."""
    from conftest import LONGEST_FIRST

    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    assert [name for name in LONGEST_FIRST if not (ROOT / "tests" / name).is_file()] == []
