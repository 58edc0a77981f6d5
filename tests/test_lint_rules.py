"""The package's cfn-lint rules (``winworkers.lint``): each rule fails its bad
fixture with exactly its own id and passes its good one, through the Python entry
and the installed console script, with cfn-lint's exit codes (bit mask: 2 error,
4 warning, 8 informational)."""

from __future__ import annotations

import functools
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs
from cfnlint.api import lint as api_lint
from cfnlint.config import ConfigMixIn
from cfnlint.decode.decode import decode_str
from cfnlint.rules import CloudFormationLintRule, Rules
from cfnlint.runner import run_template_by_data

from conftest import ROOT
from winworkers import cli
from winworkers.lint import DESIGN_RULE_CONFIG, DESIGN_RULES, RULES_MODULE
from winworkers.lint import rules as rule_modules

FIXTURES = ROOT / "tests" / "fixtures" / "lint"
WINWORKERS = Path(sys.executable).with_name("winworkers")

# Fixture folder (= rule module) -> the ids its bad.json must produce, with multiplicity.
BAD = {
    "gateway_endpoint_principal": ["E9101", "E9101"],
    "nested_stack_list_parameter": ["E9102", "E9102"],
    "lambda_reserved_concurrency": ["W9103"],
    "interface_endpoint_private_dns": ["W9104", "W9104"],
    "asg_waits_for_network": ["E9105", "E9105", "E9105"],
    "cfn_init_msiexec_wait": ["E9106", "E9106"],
}
SEVERITY_BIT = {"E": 2, "W": 4, "I": 8}
#: Our own templates are held to the opt-in design rule too (W9104: no private DNS in a VPC we do not create).
OPT_IN = DESIGN_RULES


def exit_code(ids: list[str]) -> int:
    """cfn-lint's exit code for findings with these ids (default --non-zero-exit-code)."""
    code = 0
    for rule_id in ids:
        code |= SEVERITY_BIT[rule_id[0]]
    return code


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """``winworkers lint --format json ARGS`` in process: (exit code, findings)."""
    code = cli.main(["lint", "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out or "[]")


def ids(findings: list[dict[str, Any]]) -> list[str]:
    return sorted(f["Rule"]["Id"] for f in findings)


@pytest.mark.parametrize("rule", sorted(BAD))
def test_bad_fixture_fails_with_exactly_its_rule(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(capsys, "--include-checks", "I", *OPT_IN, "--", str(FIXTURES / rule / "bad.json"))
    assert ids(findings) == BAD[rule], [f["Message"] for f in findings]
    assert code == exit_code(BAD[rule])


@pytest.mark.parametrize("rule", sorted(BAD))
def test_good_fixture_passes_every_rule(rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings = lint(capsys, "--include-checks", "I", *OPT_IN, "--", str(FIXTURES / rule / "good.json"))
    assert [f"{f['Rule']['Id']} {f['Message']}" for f in findings] == []
    assert code == 0


def test_console_script_runs_the_rules_with_cfn_lint_exit_codes() -> None:
    bad = [str(FIXTURES / rule / "bad.json") for rule in sorted(BAD)]
    run = subprocess.run(
        [str(WINWORKERS), "lint", "--format", "json", *OPT_IN, "--", *bad], capture_output=True, text=True, check=False
    )
    expected = sorted(rule_id for found in BAD.values() for rule_id in found)
    assert ids(json.loads(run.stdout)) == expected, run.stderr
    assert run.returncode == exit_code(expected) == 2 | 4


def test_other_cfn_lint_options_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    warning_only = str(FIXTURES / "lambda_reserved_concurrency" / "bad.json")
    assert lint(capsys, "--non-zero-exit-code", "error", warning_only)[0] == 0
    assert lint(capsys, "--ignore-checks", "W9103", "--", warning_only) == (0, [])
    assert cli.main(["lint", "--format", "parseable", warning_only]) == 4
    assert ":W9103:" in capsys.readouterr().out
    # A template given first is a template, not one more rules module for --append-rules.
    assert cli.main(["lint", warning_only]) == 4
    assert "W9103" in capsys.readouterr().out
    assert sys.argv[0] != "winworkers lint"  # restored


def test_plain_cfn_lint_loads_the_rules_by_module_path() -> None:
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--append-rules",
            RULES_MODULE,
            "--format",
            "json",
            "--",
            str(FIXTURES / "nested_stack_list_parameter" / "bad.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ids(json.loads(run.stdout)) == ["E9102", "E9102"], run.stderr
    assert run.returncode == 2


def test_one_rule_per_module_each_with_fixtures_an_aws_source_and_a_free_id() -> None:
    loaded = Rules.create_from_module(RULES_MODULE)
    assert sorted(loaded.keys()) == sorted({rule_id for found in BAD.values() for rule_id in found})
    for name in BAD:
        module = __import__(f"{RULES_MODULE}.{name}", fromlist=["*"])
        (rule,) = [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, CloudFormationLintRule) and c is not CloudFormationLintRule
        ]
        assert rule.id in BAD[name], name
        assert rule.shortdesc and rule.description and rule.__doc__, name
        assert rule.source_url.startswith(("https://docs.aws.amazon.com/", "https://repost.aws/")), name
        assert {"good.json", "bad.json"} <= {p.name for p in (FIXTURES / name).iterdir()}, name
        assert getattr(rule_modules, type(loaded[rule.id]).__name__) is rule, name
    # Our ids must not shadow (or be shadowed by) one of cfn-lint's own rules.
    assert not set(loaded.keys()) & set(Rules.create_from_directory(_cfn_lint_rules_dir()).keys())
    assert {p.stem for p in Path(rule_modules.__file__).parent.glob("[a-z]*.py")} == set(BAD)


def _cfn_lint_rules_dir() -> str:
    import cfnlint.rules

    return str(Path(cfnlint.rules.__file__).parent)


# --- The corpus: real-world-shaped templates written here, each with the exact findings it must produce ---

CORPUS = ROOT / "tests" / "fixtures" / "lint-corpus"
EXPECTED: dict[str, list[dict[str, str]]] = {
    name: findings
    for name, findings in json.loads((CORPUS / "expected.json").read_text(encoding="utf-8")).items()
    if not name.startswith("_")
}
# Our rules' ids, and cfn-lint's template errors (a corpus template that does not parse would pass silently).
OUR_ID = re.compile(r"[EWI]9\d{3}|E0\d{3}")
Finding = tuple[str, str, str]


def read_rules() -> Rules:
    """The rules whose findings corpus_findings reads: winworkers' and cfn-lint's template errors
    (E0xxx: a template that does not parse or transform, E0002 a rule that failed on it), new per lint
    as cfn-lint's own runner makes them."""
    rules = Rules.create_from_module(RULES_MODULE)
    for rule_id, rule in Rules.create_from_directory(_cfn_lint_rules_dir()).items():
        if OUR_ID.fullmatch(rule_id):
            rules.register(rule)
    return rules


@functools.cache
def corpus_findings(text: str, *, opt_in: bool, all_rules: bool = False) -> list[Finding]:
    """(rule id, path, message) of winworkers' rules for one template, as a platform runs them. Our
    rules read the template alone (each its own ``match``), never another rule's findings, so the lint
    runs only read_rules unless all_rules (cfn-lint's own ~330 as well, their findings dropped:
    cfn-lint runs every rule it has and filters the findings after, --ignore-checks saves nothing;
    tests/test_lint_rules.py's test_corpus_findings_are_the_same_with_every_rule holds the two equal):
    a lint of the feature's template is about 1.7 s of CPU with them all, with ours alone a tenth."""
    args = ManualArgs(
        regions=["us-east-1"],
        include_checks=["I"],
        append_rules=[RULES_MODULE],
        configure_rules=DESIGN_RULE_CONFIG if opt_in else {},
    )
    if all_rules:
        matches = api_lint(text, config=args)
    else:
        # cfnlint.api.lint with the rules given (it takes only the older RulesCollection).
        template, matches = decode_str(text)
        if not matches and template is not None:
            matches = list(run_template_by_data(template, ConfigMixIn(**args), read_rules()))
    return sorted((m.rule.id, "/".join(map(str, m.path)), m.message) for m in matches if OUR_ID.fullmatch(m.rule.id))


def unmatched(found: list[Finding], expected: list[dict[str, str]]) -> tuple[list[Finding], list[dict[str, str]]]:
    """(findings nobody expected, expected findings not found): each expected finding
    (rule, path, the logical ID or key it is about) matches exactly one finding."""
    left = list(expected)
    surprises = []
    for rule, path, message in found:
        match = next((e for e in left if (e["rule"], e["path"]) == (rule, path) and f"'{e['about']}'" in message), None)
        if match is None:
            surprises.append((rule, path, message))
        else:
            left.remove(match)
    return surprises, left


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_template_gets_exactly_its_findings(name: str) -> None:
    text = (CORPUS / name).read_text(encoding="utf-8")
    found = corpus_findings(text, opt_in=True)
    assert unmatched(found, EXPECTED[name]) == ([], [])
    if any(e["rule"] in DESIGN_RULE_CONFIG for e in EXPECTED[name]):
        # Off by default: the opt-in rules' findings are the only difference.
        assert corpus_findings(text, opt_in=False) == [f for f in found if f[0] not in DESIGN_RULE_CONFIG]


def test_corpus_findings_are_the_same_with_every_rule() -> None:
    """corpus_findings runs only the rules it reads; with cfn-lint's own rules run too (as a platform's
    cfn-lint does), every corpus template gets the same findings of ours (the opt-in rules on: the
    off run differs only in W9104's configuration)."""
    for name in sorted(EXPECTED):
        text = (CORPUS / name).read_text(encoding="utf-8")
        assert corpus_findings(text, opt_in=True) == corpus_findings(text, opt_in=True, all_rules=True), name
    assert {"E9105", "W9104", "E0000", "E0002"} <= set(read_rules()) and len(read_rules()) < 20


def test_corpus_covers_every_rule_and_the_real_world_shapes() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "expected.json"}
    assert files == set(EXPECTED)
    loaded = set(Rules.create_from_module(RULES_MODULE).keys())
    found = {e["rule"] for findings in EXPECTED.values() for e in findings}
    assert found == loaded
    texts = {name: (CORPUS / name).read_text(encoding="utf-8") for name in files}
    shapes = {
        "YAML with short-form intrinsics": lambda t: all(f in t for f in ("!Ref", "!Sub", "!GetAtt", "!If")),
        "imports": lambda t: "!ImportValue" in t,
        "SAM": lambda t: "Transform: AWS::Serverless-2016-10-31" in t,
        "nested stacks": lambda t: "AWS::CloudFormation::Stack" in t,
        "ECS clusters": lambda t: "AWS::ECS::Cluster" in t,
        "EC2 clusters": lambda t: "AWS::AutoScaling::LaunchConfiguration" in t,
        "network stacks": lambda t: "AWS::EC2::VPCEndpoint" in t and "AWS::AutoScaling::AutoScalingGroup" not in t,
        "JSON": lambda t: t.lstrip().startswith("{"),
    }
    assert {shape for shape, has in shapes.items() if any(has(t) for t in texts.values())} == set(shapes)


def test_the_real_world_samples_that_used_to_fail_pass() -> None:
    """The shapes the issue names: AWS's ECS cluster samples and a CI agent stack
    (Buildkite's) produce nothing, with or without the opt-in rules."""
    for name in ("ecs-ec2-public-vpc.yaml", "ecs-ec2-private-vpc.yaml", "ci-agent-stack.yaml"):
        assert corpus_findings((CORPUS / name).read_text(encoding="utf-8"), opt_in=True) == [], name


def test_our_group_without_its_waits_fails_on_everything_it_boots_through() -> None:
    """Our own gate: drop the group's Metadata (its conditional DependsOn) and E9105
    names every endpoint, security group rule and route table association of the
    feature, in every mode (the isolated VPC's and the existing subnets' egress)."""
    template = json.loads((ROOT / "templates" / "winworkers.json").read_text(encoding="utf-8"))
    # The image build's own rules (ImageSource=baked: its security group and its endpoints') are not
    # the workers': the group boots through none of them (its build endpoints, private DNS in the
    # VPC, it does wait for).
    build = {"BuildEndpointSecurityGroup", "BuildSecurityGroup"}
    network = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"]
        in (
            "AWS::EC2::VPCEndpoint",
            "AWS::EC2::SecurityGroupIngress",
            "AWS::EC2::SecurityGroupEgress",
            "AWS::EC2::SubnetRouteTableAssociation",
        )
        and resource["Properties"].get("GroupId", {}).get("Ref", "").removeprefix("Win") not in build
    }
    assert corpus_findings(json.dumps(template), opt_in=True) == []
    del template["Resources"]["WinGroup"]["Metadata"]
    # The image build's infrastructure waits for the same network (image.add_baked_image), and the group
    # reaches it through the launch template's Fn::If (baked mode only; the rule does not evaluate
    # conditions): drop that carrier too, or the aws-published group's missing waits would be hidden.
    del template["Resources"]["WinBuildInfrastructure"]["Metadata"]
    found = corpus_findings(json.dumps(template), opt_in=True)
    assert {rule for rule, _, _ in found} == {"E9105"}
    assert {re.findall(r"'([^']+)'", message)[1] for _, _, message in found} == network
    assert len(found) == len(network) == 16


def test_our_endpoints_in_a_vpc_we_do_not_create_fail_the_design_rule() -> None:
    template = json.loads((ROOT / "templates" / "winworkers.json").read_text(encoding="utf-8"))
    template["Resources"]["WinSqsEndpoint"]["Properties"]["VpcId"] = {"Ref": "WinVpcId"}
    found = corpus_findings(json.dumps(template), opt_in=True)
    assert [(rule, path) for rule, path, _ in found] == [("W9104", "Resources/WinSqsEndpoint/Properties/VpcId")]
    assert corpus_findings(json.dumps(template), opt_in=False) == []


def test_the_design_rule_is_off_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(FIXTURES / "interface_endpoint_private_dns" / "bad.json")
    assert lint(capsys, "--include-checks", "I", "--", bad) == (0, [])
    assert ids(lint(capsys, "--configure-rule=W9104:enabled=true", bad)[1]) == ["W9104", "W9104"]


def test_cfn_lint_lints_sam_as_written_with_globals_merged() -> None:
    """What W9103 and E9102 see in a SAM template: cfn-lint 1.58 does not run the SAM
    translator; it merges Globals into the SAM resources (honouring IgnoreGlobals).
    If a cfn-lint upgrade starts translating, this fails: re-check the SAM forms."""
    from cfnlint.decode import decode_str
    from cfnlint.template import Template
    from cfnlint.template.transforms import Transform

    decoded, errors = decode_str((CORPUS / "sam-globals.yaml").read_text(encoding="utf-8"))
    assert not errors
    cfn = Template("sam-globals.yaml", decoded, ["us-east-1"])
    assert Transform().transform(cfn) == []
    seen = {
        name: (r["Type"], r["Properties"].get("ReservedConcurrentExecutions"))
        for name, r in cfn.template["Resources"].items()
    }
    assert seen == {
        "Ingest": ("AWS::Serverless::Function", 2),
        "Export": ("AWS::Serverless::Function", 3),
        "Janitor": ("AWS::Serverless::Function", None),
    }


# Review R1 -------------------------------------------------------------------------------------------------------


def _launch_template_running(command: str) -> str:
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {
                "WorkerLaunchTemplate": {
                    "Type": "AWS::EC2::LaunchTemplate",
                    "Metadata": {
                        "AWS::CloudFormation::Init": {
                            "config": {"commands": {"01-install": {"command": command, "waitAfterCompletion": "0"}}}
                        }
                    },
                    "Properties": {"LaunchTemplateData": {"InstanceType": "m6i.large"}},
                }
            },
        }
    )


@pytest.mark.parametrize(
    "command",
    [
        # The only -Wait is inside the double-quoted arguments Start-Process hands to msiexec (docs/lint-rules.md:
        # "-Wait inside msiexec's quoted arguments" is flagged; only single quotes are stripped).
        'powershell.exe -Command "Start-Process msiexec.exe -ArgumentList \\"/i C:\\cfn\\agent.msi /qn -Wait\\""',
        # -PassThru, but the process object is dropped; Wait-Process waits for another program (none: at once).
        "powershell.exe -Command \"Start-Process msiexec.exe -ArgumentList '/i C:\\cfn\\agent.msi /qn' -PassThru; "
        'Wait-Process -Name notepad -ErrorAction SilentlyContinue"',
    ],
    ids=["wait-inside-double-quoted-arguments", "passthru-then-unrelated-wait-process"],
)
def test_e9106_flags_msiexec_that_is_not_waited_for_however_it_is_quoted(command: str) -> None:
    found = [f for f in corpus_findings(_launch_template_running(command), opt_in=False) if f[0] == "E9106"]
    assert len(found) == 1, found


def test_e9106_does_not_flag_msiexec_given_as_an_argv_list() -> None:
    """cfn-init runs a command given as a list without a shell (aws-cfn-bootstrap's ProcessHelper: Popen(cmd,
    shell=isinstance(cmd, basestring)), then communicate()): msiexec is cfn-init's own child, and cfn-init
    waits for it and reads its exit code, as the template reference says a list is "the command to run".
    The rule joins the list into a string and reads it as a cmd.exe /c line, which it is not."""
    template = json.loads(_launch_template_running("placeholder"))
    commands = template["Resources"]["WorkerLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["config"]
    commands["commands"]["01-install"]["command"] = ["msiexec.exe", "/i", "C:\\cfn\\agent.msi", "/qn", "/norestart"]
    found = [f for f in corpus_findings(json.dumps(template), opt_in=False) if f[0] == "E9106"]
    assert found == []


@pytest.mark.parametrize(
    ("command", "flagged"),
    [
        # An argv list whose program is msiexec (a path, .exe, any case): cfn-init's own child, waited for.
        (["C:\\Windows\\System32\\MSIEXEC.EXE", "/i", "C:\\cfn\\agent.msi", "/qn"], False),
        # A list running cmd or PowerShell: the inner command line is read as a string is.
        (["cmd.exe", "/c", "start msiexec /i C:\\cfn\\agent.msi /qn"], True),
        (["cmd.exe", "/c", "start /wait msiexec /i C:\\cfn\\agent.msi /qn"], False),
        (["powershell.exe", "-Command", "Start-Process msiexec -ArgumentList '/i C:\\cfn\\agent.msi /qn'"], True),
        (["powershell.exe", "-Command", 'Start-Process msiexec -ArgumentList "/i C:\\cfn\\a.msi /qn" -Wait'], False),
        (["powershell.exe", "-Command", 'Start-Process msiexec -ArgumentList "/i C:\\cfn\\a.msi /qn -Wait"'], True),
    ],
    ids=["msiexec-program", "cmd-start", "cmd-start-wait", "powershell-no-wait", "powershell-wait", "wait-in-string"],
)
def test_e9106_reads_an_argv_list_by_the_program_it_runs(command: list[str], flagged: bool) -> None:
    template = json.loads(_launch_template_running("placeholder"))
    commands = template["Resources"]["WorkerLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["config"]
    commands["commands"]["01-install"]["command"] = command
    found = [f for f in corpus_findings(json.dumps(template), opt_in=False) if f[0] == "E9106"]
    assert len(found) == int(flagged), found


@pytest.mark.parametrize(
    ("command", "flagged"),
    [
        # A double-quoted string holding $( ) with quotes of its own: -Wait after it is Start-Process's.
        (
            'powershell -Command "Start-Process msiexec -ArgumentList '
            '\\"/i $(\\"C:\\cfn\\\\\\" + \\"a.msi\\") /qn\\" -Wait"',
            False,
        ),
        ('powershell -Command "Start-Process msiexec -ArgumentList \\"/i $(\\"a.msi\\") /qn -Wait\\""', True),
        # The process Start-Process returned, waited for through its variable or a pipe.
        (
            "powershell -Command \"$p = Start-Process msiexec '/i C:\\cfn\\a.msi /qn' -PassThru; $p | Wait-Process\"",
            False,
        ),
        (
            "powershell -Command \"$p = saps msiexec '/i C:\\cfn\\a.msi' -PassThru; Wait-Process -InputObject $p\"",
            False,
        ),
        # Another variable's process is waited for, not msiexec's.
        ("powershell -Command \"$p = Start-Process msiexec '/i C:\\cfn\\a.msi' -PassThru; $q.WaitForExit()\"", True),
        (
            "powershell -Command \"$p = Start-Process msiexec '/i C:\\cfn\\a.msi' -PassThru; Wait-Process -Id $pid\"",
            True,
        ),
    ],
    ids=[
        "subexpression-then-wait",
        "wait-in-string-with-subexpression",
        "variable-piped",
        "input-object",
        "other-variable",
        "other-id",
    ],
)
def test_e9106_reads_double_quoted_strings_and_the_process_start_process_returned(command: str, flagged: bool) -> None:
    found = [f for f in corpus_findings(_launch_template_running(command), opt_in=False) if f[0] == "E9106"]
    assert len(found) == int(flagged), found


def test_rules_shared_across_lints_answer_as_freshly_loaded_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """conftest.shared_rules hands every lint of a run the same rule instances: a lint with other
    options in between (the design rule on, then off) leaves nothing behind, and the findings are
    those of rules loaded afresh, as each cfn-lint run loads them."""
    import cfnlint.helpers

    import conftest

    bad = str(FIXTURES / "interface_endpoint_private_dns" / "bad.json")
    on = lint(capsys, "--include-checks", "I", *OPT_IN, "--", bad)
    off = lint(capsys, "--include-checks", "I", "--", bad)
    on_again = lint(capsys, "--include-checks", "I", *OPT_IN, "--", bad)
    monkeypatch.setattr(cfnlint.helpers, "load_plugins", conftest._load_plugins)
    assert lint(capsys, "--include-checks", "I", "--", bad) == off == (0, [])
    assert lint(capsys, "--include-checks", "I", *OPT_IN, "--", bad) == on == on_again
    assert ids(on[1]) == ["W9104", "W9104"]
