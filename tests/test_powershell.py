"""Every PowerShell script the workers run is parsed by a real PowerShell grammar
(tree-sitter-powershell), so a syntax error fails here, not on a worker nobody can log in to.

The scripts come from the rendered template (Fn::Sub resolved with example values):
the UserData, and each cfn-init command of the form ``powershell.exe ... -Command "<script>"``.
cfn-init commands that are not PowerShell are named in ``CMD_COMMANDS``; a new command
must be one or the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import tree_sitter

from conftest import POWERSHELL_PARSER, render, user_data_script
from winworkers.bootstrap import POWERSHELL
from winworkers.renderings import MODES, enabled_parameters

# cfn-init runs these through cmd.exe; they are not PowerShell (the marks: bootstrap._mark).
CMD_COMMANDS = {"agent/03-start-late-and-retry", "harden/99-mark", "agent/99-mark"}


def syntax_errors(script: str) -> list[str]:
    """The ERROR and MISSING nodes the grammar finds, with the text around them."""
    tree = POWERSHELL_PARSER.parse(script.encode("utf-8"))
    found: list[str] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.is_error or node.is_missing:
            kind = "MISSING" if node.is_missing else "ERROR"
            found.append(f"{kind} at {node.start_point}: {script[max(0, node.start_byte - 30) : node.end_byte + 30]!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    if tree.root_node.has_error and not found:
        found.append("the tree has an error")
    return found


def _init(rendered: dict[str, Any]) -> dict[str, Any]:
    init: dict[str, Any] = rendered["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    return init


def scripts(rendered: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PowerShell source) for every script a worker runs."""
    yield "UserData", user_data_script(rendered)
    for config, body in _init(rendered).items():
        if config == "configSets":
            continue
        for name, command in body.get("commands", {}).items():
            where = f"{config}/{name}"
            line = command["command"]
            if where in CMD_COMMANDS:
                assert not line.startswith(POWERSHELL), f"{where} is PowerShell: remove it from CMD_COMMANDS"
                continue
            assert line.startswith(f'{POWERSHELL} "') and line.endswith('"'), f"{where}: neither PowerShell nor named"
            script = line[len(POWERSHELL) + 2 : -1]
            # cmd.exe hands powershell.exe one double-quoted argument: an inner quote would end it.
            assert '"' not in script, f"{where}: a double quote ends the -Command argument early"
            yield where, script
        for path, spec in body.get("files", {}).items():
            if path.lower().endswith(".ps1"):
                yield f"{config}/{path}", spec["content"]


@pytest.fixture(scope="module", params=sorted(MODES))
def rendered(request: pytest.FixtureRequest, feature: dict[str, Any]) -> dict[str, Any]:
    return render(feature, enabled_parameters(mode=request.param))


def test_every_script_the_workers_run_parses(rendered: dict[str, Any]) -> None:
    found = dict(scripts(rendered))
    # The UserData and every PowerShell command of the three config sets.
    assert {"UserData", "harden/01-harden", "agent/01-wait-for-imds", "agent/02-start", "service/01-install"} <= set(
        found
    )
    for where, script in found.items():
        assert syntax_errors(script) == [], where


def test_every_cfn_init_command_is_classified(rendered: dict[str, Any]) -> None:
    configs = {c: body for c, body in _init(rendered).items() if c != "configSets"}
    commands = {f"{c}/{n}" for c, body in configs.items() for n in body.get("commands", {})}
    assert commands >= CMD_COMMANDS, "a named cmd.exe command no longer exists"
    assert len(dict(scripts(rendered))) == len(commands) - len(CMD_COMMANDS) + 1  # + the UserData


@pytest.mark.parametrize(
    "broken",
    [
        "foreach ($s in 'a','b') { Stop-Service $s -Force",  # unclosed block
        "try { & 'C:\\x.exe' } catch { Write-Output $_ ",  # unclosed catch
        "$t = irm -Headers @{'a'='b' -TimeoutSec 5",  # unclosed hashtable
        "if ($x) { 1 } else",  # else without a block
    ],
)
def test_the_check_reports_a_broken_script(broken: str) -> None:
    assert syntax_errors(broken) != []


def test_the_check_reports_a_broken_copy_of_a_real_script(feature: dict[str, Any]) -> None:
    harden = dict(scripts(render(feature, enabled_parameters())))["harden/01-harden"]
    assert syntax_errors(harden) == []
    assert syntax_errors(harden.replace("ForEach-Object {", "ForEach-Object ", 1)) != []


def test_the_warm_pool_user_data_parses(feature: dict[str, Any]) -> None:
    # WarmPool=stopped: the UserData that runs at every boot.
    rendered = render(feature, enabled_parameters(WarmPool="stopped"))
    assert syntax_errors(user_data_script(rendered, persist=True)) == []
