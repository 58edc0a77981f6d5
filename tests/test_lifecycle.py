"""A worker's lifecycle: the launch hook its bootstrap completes, the drain hook its
worker completes, and refreshes that cannot replace a healthy fleet with broken workers.

The UserData is PowerShell. It is parsed with tree-sitter's PowerShell grammar and run
by a small interpreter of the few constructs it uses, against a fake instance whose
cfn-init, cfn-signal and Auto Scaling calls succeed or fail as each case says; the
cases assert the calls the script makes, in order.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from tree_sitter import Node

from conftest import POWERSHELL_PARSER, props, render, resources_of, user_data_script
from winworkers.bootstrap import BOOT_TIMEOUT_SECONDS, DRAIN_HOOK, LAUNCH_HOOK, SIGNAL_TIMEOUT
from winworkers.compute import CHECKPOINTS
from winworkers.config import WorkersConfig
from winworkers.parameters import parameter_specs
from winworkers.renderings import MODES, enabled_parameters

STACK = "my-cloud-radar-stack"  # cloud-radar's stack name (its account: 555555555555)
GROUP = f"{STACK}-WinWorkers"
GROUP_ARN = f"arn:aws:autoscaling:us-east-1:555555555555:autoScalingGroup:*:autoScalingGroupName/{GROUP}"


@pytest.fixture(scope="module", params=sorted(MODES))
def mode(request: pytest.FixtureRequest, feature: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return request.param, render(feature, enabled_parameters(mode=request.param))


def _hooks(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    specs = props(rendered, "WinGroup")["LifecycleHookSpecificationList"]
    return {spec["LifecycleTransition"].split(":")[1]: spec for spec in specs}


# The hooks, on the group itself


def test_the_group_declares_both_hooks_in_every_mode(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    hooks = _hooks(rendered)
    assert set(hooks) == {"EC2_INSTANCE_LAUNCHING", "EC2_INSTANCE_TERMINATING"}
    launch, drain = hooks["EC2_INSTANCE_LAUNCHING"], hooks["EC2_INSTANCE_TERMINATING"]
    # A failed or silent bootstrap is abandoned (terminated, replaced); a drain that
    # runs out of time terminates the instance anyway.
    assert (launch["LifecycleHookName"], launch["DefaultResult"]) == (LAUNCH_HOOK, "ABANDON")
    assert (drain["LifecycleHookName"], drain["DefaultResult"]) == (DRAIN_HOOK, "CONTINUE")
    assert launch["HeartbeatTimeout"] == BOOT_TIMEOUT_SECONDS <= 7200
    assert drain["HeartbeatTimeout"] == "3600"
    # No separate AWS::AutoScaling::LifecycleHook: it would come after the first instances.
    assert not resources_of(rendered, "AWS::AutoScaling::LifecycleHook")


def test_the_launch_hook_waits_as_long_as_creation_waits_for_signals(feature: dict[str, Any]) -> None:
    signal = feature["Resources"]["WinGroup"]["CreationPolicy"]["ResourceSignal"]
    assert signal["Timeout"] == SIGNAL_TIMEOUT == f"PT{BOOT_TIMEOUT_SECONDS // 60}M"


@pytest.mark.parametrize("seconds", ["30", "900", "7200"])
def test_the_drain_time_is_the_parameter(feature: dict[str, Any], seconds: str) -> None:
    rendered = render(feature, enabled_parameters(DrainSeconds=seconds))
    assert _hooks(rendered)["EC2_INSTANCE_TERMINATING"]["HeartbeatTimeout"] == seconds
    lifecycle = _worker_config(rendered)["lifecycle"]
    assert lifecycle["drain_seconds"] == seconds


def test_the_drain_parameter_allows_what_a_hook_accepts(feature: dict[str, Any]) -> None:
    # PutLifecycleHook: HeartbeatTimeout from 30 to 7200 seconds.
    parameter = feature["Parameters"]["WinDrainSeconds"]
    assert (parameter["Type"], parameter["MinValue"], parameter["MaxValue"]) == ("Number", 30, 7200)
    spec = next(s for s in parameter_specs(WorkersConfig()) if s.name == "DrainSeconds")
    assert spec.group == "Fleet"


# The worker's side of the drain


def _worker_config(rendered: dict[str, Any]) -> dict[str, Any]:
    init = rendered["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    config: dict[str, Any] = init["service"]["files"]["C:\\winworkers\\worker.json"]["content"]
    return config


def test_the_worker_config_says_how_to_drain(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    assert _worker_config(rendered)["lifecycle"] == {
        "group_name": props(rendered, "WinGroup")["AutoScalingGroupName"],
        "termination_hook": _hooks(rendered)["EC2_INSTANCE_TERMINATING"]["LifecycleHookName"],
        "drain_seconds": "3600",
    }
    assert props(rendered, "WinGroup")["AutoScalingGroupName"] == GROUP


# Who may complete the hooks, and through which endpoint


def test_the_role_completes_lifecycle_actions_of_this_group_only(mode: tuple[str, dict[str, Any]]) -> None:
    _, rendered = mode
    statements = [s for p in props(rendered, "WinInstanceRole")["Policies"] for s in p["PolicyDocument"]["Statement"]]
    granted = [s for s in statements if any(a.startswith("autoscaling:") for a in s["Action"])]
    assert granted == [{"Effect": "Allow", "Action": ["autoscaling:CompleteLifecycleAction"], "Resource": [GROUP_ARN]}]


def test_the_autoscaling_endpoint_allows_only_completing_this_groups_hooks(mode: tuple[str, dict[str, Any]]) -> None:
    name, rendered = mode
    endpoints = {
        props(rendered, n)["ServiceName"]: props(rendered, n) for n in resources_of(rendered, "AWS::EC2::VPCEndpoint")
    }
    if name.startswith("existing"):
        assert endpoints == {}  # the platform's VPC provides the endpoints (winworkers/network.py)
        return
    endpoint = endpoints["com.amazonaws.us-east-1.autoscaling"]
    assert (endpoint["VpcEndpointType"], endpoint["PrivateDnsEnabled"]) == ("Interface", True)
    assert endpoint["SecurityGroupIds"] == ["WinEndpointSecurityGroup"]
    assert endpoint["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "WinInstanceRole.Arn"},
            "Action": ["autoscaling:CompleteLifecycleAction"],
            "Resource": [GROUP_ARN],
        }
    ]


# Refresh safety: the same checkpoints wherever a refresh starts


def test_a_stack_update_refreshes_in_two_phases_launching_first(feature: dict[str, Any]) -> None:
    preferences = feature["Resources"]["WinGroup"]["UpdatePolicy"]["AutoScalingInstanceRefresh"]["Preferences"]
    assert {k: preferences[k] for k in CHECKPOINTS} == CHECKPOINTS
    assert preferences["CheckpointPercentages"][-1] == 100  # else a refresh stops short of the whole group
    assert (preferences["MinHealthyPercentage"], preferences["MaxHealthyPercentage"]) == (100, 200)
    # resolve:ssm: rules these out (RefreshPreferences API reference).
    assert not {"AutoRollback", "SkipMatching"} & set(preferences)


# The UserData, run


class Exit(Exception):
    """``exit``: the script ends."""


class Return(Exception):
    """``return``: the function ends."""


class Failure(Exception):
    """A command failed (a terminating error, as with ErrorActionPreference Stop)."""


@dataclass
class Instance:
    """What the script touches, and what it did."""

    init_exit: int | None = 0
    """cfn-init's exit code; None: cfn-init.exe is missing, so calling it throws."""
    failing: set[tuple[str, str]] = field(default_factory=set)
    """CompleteLifecycleAction fails for these (hook, result): no action waits, or no endpoint."""
    calls: list[tuple[str, ...]] = field(default_factory=list)


class _Script:
    """Runs the subset of PowerShell the UserData uses, against an :class:`Instance`."""

    def __init__(self, source: str, instance: Instance) -> None:
        tree = POWERSHELL_PARSER.parse(source.encode())
        assert not tree.root_node.has_error, "the UserData is not valid PowerShell"
        self.root, self.instance = tree.root_node, instance
        self.variables: dict[str, Any] = {"LASTEXITCODE": None}
        self.functions: dict[str, tuple[list[str], Node]] = {}

    def run(self) -> None:
        with contextlib.suppress(Exit, Failure):  # an uncaught error ends the script
            self._block(self.root)

    def _block(self, node: Node) -> None:
        for child in node.named_children:
            self._statement(child)

    def _statement(self, node: Node) -> Any:
        kind = node.type
        if kind in {"statement_list", "statement_block", "script_block", "script_block_body"}:
            return self._block(node)
        if kind == "empty_statement":
            return None
        if kind == "function_statement":
            name = _text(_child(node, "function_name"))
            params = [_text(v)[1:] for v in _descendants(node, "variable") if _inside(v, "parameter_list")]
            self.functions[name] = (params, _child(node, "script_block"))
            return None
        if kind == "if_statement":
            condition, body = node.named_children[0], node.named_children[1]
            if self._value(condition):
                self._block(body)
            return None
        if kind == "try_statement":
            try:
                self._block(_child(node, "statement_block"))
            except Failure:
                self._block(_child(_child(_child(node, "catch_clauses"), "catch_clause"), "statement_block"))
            return None
        if kind == "foreach_statement":
            _, items, body = node.named_children
            low, high = map(int, _text(items).split(".."))
            for _ in range(low, high + 1):
                self._block(body)
            return None
        if kind == "flow_control_statement":
            raise {"exit": Exit, "return": Return}[_text(node)]
        return self._value(node)

    def _value(self, node: Node) -> Any:
        kind = node.type
        if node.named_child_count == 1 and kind in _PASS_THROUGH:
            return self._value(node.named_children[0])
        if kind == "assignment_expression":
            target = _text(_descendants(_child(node, "left_assignment_expression"), "variable")[0])[1:]
            self.variables[target] = self._value(node.named_children[-1])
            return None
        if kind == "variable":
            return self.variables.get(_text(node)[1:])
        if kind == "string_literal":
            return self._value(node.named_children[0]) if node.named_child_count else _text(node)
        if kind == "verbatim_string_characters":
            return _text(node)[1:-1]
        if kind == "expandable_string_literal":
            return re.sub(r"\$(\w+)", lambda m: str(self.variables.get(m.group(1))), _text(node)[1:-1])
        if kind == "integer_literal":
            return int(_text(node))
        if kind == "generic_token":
            return _text(node)
        if kind == "array_literal_expression":
            return [self._value(c) for c in node.named_children]
        if kind == "comparison_expression":
            left, operator, right = node.named_children
            equal = self._value(left) == self._value(right)
            return {"-eq": equal, "-ne": not equal}[_text(operator)]
        if kind == "hash_literal_expression":  # the IMDS headers
            return {}
        if kind == "command":
            return self._command(node)
        raise AssertionError(f"the test's interpreter does not know {kind}: {_text(node)!r}")

    def _arguments(self, node: Node | None) -> list[Any]:
        values: list[Any] = []
        for child in node.named_children if node else []:
            if child.type == "command_argument_sep":
                continue
            if child.type == "command_parameter":
                values.append(_text(child))
            elif re.fullmatch(r"@\w+", _text(child)):  # @c: splatting
                values.extend(self.variables[_text(child)[1:]])
            else:
                values.append(self._value(child))
        return values

    def _command(self, node: Node) -> Any:
        args = self._arguments(_child(node, "command_elements", required=False))
        if _child(node, "command_name_expr", required=False):  # & "path\program.exe" ...
            return self._native(str(self._value(_child(node, "command_name_expr"))), args)
        name = _text(_child(node, "command_name"))
        if name in self.functions:
            params, body = self.functions[name]
            saved = dict(self.variables)
            self.variables.update(zip(params, args, strict=True))
            try:
                self._block(body)
            except Return:
                pass
            finally:
                self.variables = saved
            return None
        return self._cmdlet(name, args)

    def _native(self, path: str, args: list[Any]) -> None:
        program = path.rsplit("\\", 1)[-1]
        assert path.startswith("C:\\Program Files\\Amazon\\cfn-bootstrap\\"), path
        if program == "cfn-init.exe" and self.instance.init_exit is None:
            raise Failure("The term 'cfn-init.exe' is not recognized")
        self.instance.calls.append((program, *map(str, args)))
        self.variables["LASTEXITCODE"] = self.instance.init_exit if program == "cfn-init.exe" else 0

    def _cmdlet(self, name: str, args: list[Any]) -> Any:
        options = {str(args[i])[1:]: args[i + 1] for i in range(len(args) - 1) if str(args[i]).startswith("-")}
        if name == "irm":
            url = next(a for a in args if str(a).startswith("http://169.254.169.254/latest/"))
            return {"api/token": "token", "meta-data/instance-id": "i-0123456789abcdef0"}[url.split("latest/")[1]]
        if name == "Complete-ASLifecycleAction":
            hook, result = options["LifecycleHookName"], options["LifecycleActionResult"]
            self.instance.calls.append(
                ("CompleteLifecycleAction", options["AutoScalingGroupName"], hook, options["InstanceId"], result)
            )
            assert "-Force" in args, "a confirmation prompt would hang a script nobody can answer"
            if (hook, result) in self.instance.failing:
                raise Failure("No active Lifecycle Action found")
            return None
        if name == "sleep":
            return None
        raise AssertionError(f"the test's interpreter does not know the command {name}")


_PASS_THROUGH = {
    "pipeline",
    "pipeline_chain",
    "logical_expression",
    "bitwise_expression",
    "comparison_expression",
    "additive_expression",
    "multiplicative_expression",
    "format_expression",
    "range_expression",
    "array_literal_expression",
    "unary_expression",
    "left_assignment_expression",
    "parenthesized_expression",
    "command_name_expr",
}


def _text(node: Node | None) -> str:
    assert node is not None and node.text is not None
    return node.text.decode()


def _child(node: Node, kind: str, required: bool = True) -> Any:
    found = next((c for c in node.named_children if c.type == kind), None)
    assert found is not None or not required, f"{node.type} has no {kind}"
    return found


def _descendants(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.named_children:
        found += _descendants(child, kind)
    return found


def _inside(node: Node, kind: str) -> bool:
    parent = node.parent
    while parent is not None and parent.type != kind:
        parent = parent.parent
    return parent is not None


def _hook(result: str, hook: str = LAUNCH_HOOK) -> tuple[str, ...]:
    return ("CompleteLifecycleAction", GROUP, hook, "i-0123456789abcdef0", result)


def _signal(code: int) -> tuple[str, ...]:
    common = ("--stack", STACK, "--region", "us-east-1", "--url", "https://cloudformation.us-east-1.amazonaws.com")
    return ("cfn-signal.exe", "-e", str(code), *common, "--resource", "WinGroup")


INIT = (
    "cfn-init.exe",
    "-v",
    "--stack",
    STACK,
    "--region",
    "us-east-1",
    "--url",
    "https://cloudformation.us-east-1.amazonaws.com",
    "--resource",
    "WinLaunchTemplate",
    "--configsets",
    "default",
)

# An abandoned instance has no worker to drain. ABANDON terminates it as CONTINUE would,
# unless RetainFailedBoots keeps it (winworkers.diagnostics).
DRAINED = _hook("ABANDON", DRAIN_HOOK)
CASES: dict[str, tuple[Instance, list[tuple[str, ...]]]] = {
    # Success: in service first, then the signal.
    "bootstrap succeeds": (Instance(init_exit=0), [INIT, _hook("CONTINUE"), _signal(0)]),
    # Failure: reported to CloudFormation, then abandoned so Auto Scaling replaces it now.
    "cfn-init fails": (Instance(init_exit=1), [INIT, _signal(1), _hook("ABANDON"), DRAINED]),
    "cfn-init is missing": (Instance(init_exit=None), [_signal(1), _hook("ABANDON"), DRAINED]),
    # The hook cannot be completed: the signal says so, and the hook's timeout abandons it.
    "the hooks cannot be completed": (
        Instance(init_exit=0, failing={(LAUNCH_HOOK, "CONTINUE"), (LAUNCH_HOOK, "ABANDON"), (DRAIN_HOOK, "ABANDON")}),
        [INIT, _hook("CONTINUE"), _signal(1), _hook("ABANDON"), *[DRAINED] * 10],
    ),
    # No drain action waits for an abandoned instance: ten tries, and the script ends.
    "no drain action waits": (
        Instance(init_exit=1, failing={(DRAIN_HOOK, "ABANDON")}),
        [INIT, _signal(1), _hook("ABANDON"), *[DRAINED] * 10],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_data_continues_only_after_a_successful_bootstrap(enabled: dict[str, Any], case: str) -> None:
    instance, expected = CASES[case]
    instance = Instance(**{**instance.__dict__, "calls": []})
    _Script(user_data_script(enabled), instance).run()
    assert instance.calls == expected


def test_the_interpreter_catches_a_script_that_continues_on_failure(enabled: dict[str, Any]) -> None:
    # The same script with its success test inverted must fail the cases above.
    broken = user_data_script(enabled).replace("if ($code -eq 0)", "if ($code -ne 5)")
    instance = Instance(init_exit=1)
    _Script(broken, instance).run()
    assert _hook("CONTINUE") in instance.calls
