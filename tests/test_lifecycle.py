"""A worker's lifecycle: the launch hook its bootstrap completes, the drain hook its
worker completes, and refreshes that cannot replace a healthy fleet with broken workers.

The UserData is PowerShell. It is parsed with tree-sitter's PowerShell grammar and run
by a small interpreter of the few constructs it uses, against a fake instance whose
cfn-init, cfn-signal and Auto Scaling calls succeed or fail as each case says; the
cases assert the calls the script makes, in order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from powershell import Call, Failure, Interpreter

from conftest import props, render, resources_of, user_data_script
from winworkers.bootstrap import (
    BOOT_MARKS,
    BOOT_PHASES,
    BOOT_TIMEOUT_SECONDS,
    CONFIG_SETS,
    DRAIN_HOOK,
    LAUNCH_HOOK,
    OK_MARK,
    POOL_START_METRIC,
    RETRY_MINUTES,
    SERVICE_CONFIG,
    SERVICE_DIR,
    SIGNAL_TIMEOUT,
    START_MARK,
    TARGET_STATE,
)
from winworkers.compute import CHECKPOINTS
from winworkers.config import WorkersConfig
from winworkers.parameters import Group, parameter_specs
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
    assert spec.group == Group.ADVANCED


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


def test_a_stack_update_refreshes_in_two_phases_launching_first() -> None:
    # The refresh Lambda starts a stack update's refresh too (its custom resource), with these.
    from winworkers.ami_refresh import _preferences

    preferences = _preferences({})
    assert {k: preferences[k] for k in CHECKPOINTS} == CHECKPOINTS
    assert preferences["CheckpointPercentages"][-1] == 100  # a lower last checkpoint is a partial refresh
    assert (preferences["MinHealthyPercentage"], preferences["MaxHealthyPercentage"]) == (100, 200)
    # resolve:ssm: rules these out (RefreshPreferences API reference).
    assert not {"AutoRollback", "SkipMatching"} & set(preferences)


# The UserData, run


PERMANENT = 10**9
LAUNCH = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
TO_USER_DATA = 300  # Windows boots, EC2Launch starts the UserData
PHASES = {"harden": 40, "agent": 200, "service": 150}  # seconds each cfn-init config set takes
CALL_SECONDS = 3  # each Complete-ASLifecycleAction


@dataclass
class Instance:
    """What the script touches, and what it did. Time is simulated: commands and sleeps
    move the clock, nothing waits."""

    init_exit: int | None = 0
    """cfn-init's exit code; None: cfn-init.exe is missing, so calling it throws. A non-zero
    code fails the agent set: only the harden mark is written."""
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    """How many CompleteLifecycleAction calls fail for (hook, result) before one succeeds
    (PERMANENT: none does): a new endpoint not resolving yet, no action waiting."""
    metrics_fail: bool = False
    """PutMetricData fails: no monitoring endpoint, or no permission."""
    clock: datetime = LAUNCH + timedelta(seconds=TO_USER_DATA)
    marks: dict[str, datetime] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    """When each call was made."""
    uncaught: str | None = None
    """The error that ended the script, if one did."""
    target: str | None = "InService"
    """autoscaling/target-lifecycle-state; None: the metadata item does not answer."""
    pending: datetime = LAUNCH
    """The instance identity document's pendingTime: the launch, or the last start."""
    files: dict[str, str] = field(default_factory=dict)
    """Files the script reads and writes (the warm pool mode's marks), by path."""
    writes: list[tuple[int, str]] = field(default_factory=list)
    """Each file written, with the number of calls made before it."""
    install_exit: int = 0
    """install.ps1's exit code when the script runs it (a start from the warm pool)."""

    def record(self, *call: Any) -> None:
        self.calls.append(call)
        self.times.append(self.clock)


class _Script:
    """The UserData, run by the tests' PowerShell interpreter (tests/powershell.py) against an
    :class:`Instance`: its programs and cmdlets are the instance's. The script's own output is
    dropped (EC2Launch logs it); an error nothing caught ends it."""

    def __init__(self, source: str, instance: Instance) -> None:
        self.instance = instance
        self.script = Interpreter(source, self._command, {"LASTEXITCODE": None}, strict=False)

    def run(self) -> None:
        try:
            self.script.run()
        except Failure as error:
            self.instance.uncaught = str(error)

    def _command(self, call: Call) -> Any:
        return self._native(call.name, call.args) if call.native else self._cmdlet(call.name, call.args)

    def _native(self, path: str, args: list[Any]) -> None:
        program = path.rsplit("\\", 1)[-1]
        assert path.startswith("C:\\Program Files\\Amazon\\cfn-bootstrap\\"), path
        if program == "cfn-init.exe" and self.instance.init_exit is None:
            raise Failure("The term 'cfn-init.exe' is not recognized")
        self.instance.record(program, *map(str, args))
        self.script.variables["LASTEXITCODE"] = self.instance.init_exit if program == "cfn-init.exe" else 0
        if program == "cfn-init.exe":
            # Each config set's last command writes its mark (bootstrap.BOOT_MARKS); a
            # failure stops cfn-init in the agent set.
            for config_set in CONFIG_SETS if self.instance.init_exit == 0 else CONFIG_SETS[:1]:
                self.instance.clock += timedelta(seconds=PHASES[config_set])
                if config_set != "service":
                    self.instance.marks[f"{BOOT_MARKS}{config_set}"] = self.instance.clock

    def _cmdlet(self, name: str, args: list[Any]) -> Any:
        options = {str(args[i])[1:]: args[i + 1] for i in range(len(args) - 1) if str(args[i]).startswith("-")}
        instance = self.instance
        if name == "irm":
            url = next(a for a in args if str(a).startswith("http://169.254.169.254/latest/"))
            assert "TimeoutSec" in options, "an instance metadata call without a timeout can hang the boot"
            path = url.split("latest/")[1]
            if path == TARGET_STATE and instance.target is None:
                raise Failure("(404) Not Found")
            return {
                "api/token": "token",
                "meta-data/instance-id": "i-0123456789abcdef0",
                "dynamic/instance-identity/document": json.dumps(
                    {"pendingTime": instance.pending.strftime("%Y-%m-%dT%H:%M:%SZ")}
                ),
                TARGET_STATE: instance.target,
            }[path]
        if name == "Test-Path":
            return args[0] in instance.files or args[0] in instance.marks
        if name == "gc":
            return instance.files[args[0]]
        if name == "ni":
            assert "-Force" in args, "without -Force New-Item fails on an existing file"
            instance.files[args[0]] = str(options.get("Value", ""))
            instance.writes.append((len(instance.calls), args[0]))
            return {"FullName": args[0]}
        if name == "powershell.exe":
            assert args[:4] == ["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass"], args
            instance.record("install.ps1", options["File"], options["ConfigPath"])
            self.script.variables["LASTEXITCODE"] = instance.install_exit
            return None
        if name == "Complete-ASLifecycleAction":
            hook, result = options["LifecycleHookName"], options["LifecycleActionResult"]
            instance.record(
                "CompleteLifecycleAction", options["AutoScalingGroupName"], hook, options["InstanceId"], result
            )
            instance.clock += timedelta(seconds=CALL_SECONDS)
            assert "-Force" in args, "a confirmation prompt would hang a script nobody can answer"
            if instance.failures.get((hook, result), 0) > 0:
                instance.failures[(hook, result)] -= 1
                raise Failure("No active Lifecycle Action found")
            return None
        if name == "sleep":
            instance.clock += timedelta(seconds=int(args[0]))
            return None
        if name == "Get-Date":
            return instance.clock
        if name == "Write-Host":
            return None
        if name == "ConvertFrom-Json":
            return json.loads(args[0])
        if name == "Get-Item":
            if args[0] not in instance.marks:
                raise Failure(f"Cannot find path '{args[0]}' because it does not exist.")
            return {"LastWriteTime": instance.marks[args[0]]}
        if name == "New-Object":
            return {"type": args[0], **options["Property"]}
        if name == "Write-CWMetricData":
            assert "-Force" in args, "a confirmation prompt would hang a script nobody can answer"
            data = options["MetricData"]
            instance.record("PutMetricData", options["Namespace"], options["Region"], data)
            if instance.metrics_fail:
                raise Failure("AccessDenied")
            return None
        raise AssertionError(f"the test's interpreter does not know the command {name}")


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

# An abandoned instance waits on its drain hook, running: the boot evidence function takes its
# console and screenshot, then ABANDONs that hook (register row 200). The UserData never touches it.
DRAINED = _hook("ABANDON", DRAIN_HOOK)
TIMINGS = {
    "BootToUserData": TO_USER_DATA,
    "BootHarden": PHASES["harden"],
    "BootAgent": PHASES["agent"],
    "BootService": PHASES["service"],
    "BootHook": CALL_SECONDS,
    "BootTotal": TO_USER_DATA + sum(PHASES.values()) + CALL_SECONDS,
}
CASES: dict[str, tuple[Instance, list[tuple[str, ...]]]] = {
    # Success: in service first, then the signal, then the boot timings.
    "bootstrap succeeds": (Instance(init_exit=0), [INIT, _hook("CONTINUE"), _signal(0), ("PutMetricData",)]),
    # Failure: reported to CloudFormation, then abandoned so Auto Scaling replaces it now.
    "cfn-init fails": (Instance(init_exit=1), [INIT, _signal(1), _hook("ABANDON")]),
    "cfn-init is missing": (Instance(init_exit=None), [_signal(1), _hook("ABANDON")]),
    # A transient failure (the first call loads the AWS Tools, fetches credentials and resolves
    # a brand-new endpoint) is retried: the worker comes into service.
    "the launch hook fails twice, then succeeds": (
        Instance(init_exit=0, failures={(LAUNCH_HOOK, "CONTINUE"): 2}),
        [INIT, *[_hook("CONTINUE")] * 3, _signal(0), ("PutMetricData",)],
    ),
    "the abandon fails once": (
        Instance(init_exit=1, failures={(LAUNCH_HOOK, "ABANDON"): 1}),
        [INIT, _signal(1), _hook("ABANDON"), _hook("ABANDON")],
    ),
    # Publishing the timings fails: nothing else changes, and the script ends normally.
    "the timings cannot be published": (
        Instance(init_exit=0, metrics_fail=True),
        [INIT, _hook("CONTINUE"), _signal(0), ("PutMetricData",)],
    ),
}


def _run(enabled: dict[str, Any], instance: Instance) -> Instance:
    _Script(user_data_script(enabled), instance).run()
    return instance


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_data_continues_only_after_a_successful_bootstrap(enabled: dict[str, Any], case: str) -> None:
    template, expected = CASES[case]
    instance = _run(enabled, Instance(**{**template.__dict__, "failures": dict(template.failures), "calls": []}))
    assert [call[:1] if call[0] == "PutMetricData" else call for call in instance.calls] == expected
    # The drain hook is the evidence function's to complete, after the capture (register row 200).
    assert DRAINED not in instance.calls


@pytest.mark.parametrize("warm_pool", [False, True], ids=["cold", "warm-pool"])
def test_a_failed_bootstrap_leaves_the_drain_hook_to_the_evidence_function(
    enabled: dict[str, Any], warm: dict[str, Any], warm_pool: bool
) -> None:
    # The instance must still be running when the evidence function asks for its screenshot:
    # the script abandons the launch hook only, and never names the drain hook.
    # With the warm pool: a first boot into the pool (Warmed:Pending:Wait).
    instance = Instance(init_exit=1, target="Warmed:Stopped" if warm_pool else "InService")
    (_boot(warm, instance) if warm_pool else _run(enabled, instance))
    assert _hook("ABANDON") in instance.calls
    assert [call for call in instance.calls if DRAIN_HOOK in call] == []
    script = user_data_script(warm, persist=True) if warm_pool else user_data_script(enabled)
    assert re.search(rf"\b{DRAIN_HOOK}\b", script) is None
    assert instance.uncaught is None, "an error ended the script"


def test_a_booted_worker_reports_each_phase_fleet_wide(enabled: dict[str, Any]) -> None:
    instance = _run(enabled, Instance(init_exit=0))
    ((_, namespace, region, data),) = [call for call in instance.calls if call[0] == "PutMetricData"]
    assert (namespace, region) == (WorkersConfig().metrics_namespace, "us-east-1")
    assert {d["MetricName"]: d["Value"] for d in data} == TIMINGS
    assert [name for name, _, _ in BOOT_PHASES] == list(TIMINGS)
    for datum in data:
        assert datum["type"] == "Amazon.CloudWatch.Model.MetricDatum"
        assert datum["Unit"] == "Seconds"
        # Fleet-wide: the group's name only, no instance id (the alarm reads this series).
        (dimension,) = datum["Dimensions"]
        assert (dimension["Name"], dimension["Value"]) == ("AutoScalingGroupName", GROUP)
    # Only after the worker is in service and CloudFormation has its signal.
    assert instance.calls.index(_signal(0)) < len(instance.calls) - 1


def test_a_retried_launch_hook_counts_in_the_timings(enabled: dict[str, Any]) -> None:
    instance = _run(enabled, Instance(init_exit=0, failures={(LAUNCH_HOOK, "CONTINUE"): 2}))
    ((*_, data),) = [call for call in instance.calls if call[0] == "PutMetricData"]
    # Three calls and the two pauses between them.
    assert {d["MetricName"]: d["Value"] for d in data}["BootHook"] == 3 * CALL_SECONDS + 2 * 15


@pytest.mark.parametrize("failing", [(LAUNCH_HOOK, "CONTINUE"), (LAUNCH_HOOK, "ABANDON")])
def test_a_hook_that_cannot_be_completed_is_given_up_in_bounded_time(
    enabled: dict[str, Any], failing: tuple[str, str]
) -> None:
    init_exit = 0 if failing == (LAUNCH_HOOK, "CONTINUE") else 1
    instance = _run(enabled, Instance(init_exit=init_exit, failures={failing: PERMANENT}))
    tries = [t for call, t in zip(instance.calls, instance.times, strict=True) if call == _hook(failing[1], failing[0])]
    assert len(tries) > 2, "retried"
    # Given up at the deadline: the first failure after it ends the retries, so the last try
    # starts at most one pause (15 s) after it, and not a pause and a try before it.
    window = (tries[-1] - tries[0]).total_seconds()
    assert RETRY_MINUTES * 60 - 15 - CALL_SECONDS < window <= RETRY_MINUTES * 60 + 15
    assert instance.uncaught is None
    if failing == (LAUNCH_HOOK, "CONTINUE"):
        # The signal says so; the instance is abandoned, and no timing is published.
        assert instance.calls[instance.calls.index(_signal(1)) :] == [_signal(1), _hook("ABANDON")]
    # Well inside the launch hook's heartbeat, even if all three completions had to give up.
    elapsed = (instance.clock - LAUNCH).total_seconds()
    assert elapsed + 2 * RETRY_MINUTES * 60 < BOOT_TIMEOUT_SECONDS


def test_missing_marks_cost_the_timings_only(enabled: dict[str, Any]) -> None:
    # The harden and agent marks are gone (say, a config set renamed its last command):
    # the worker is in service and signalled, and the script ends normally.
    script = user_data_script(enabled).replace(f"{BOOT_MARKS}harden", f"{BOOT_MARKS}missing")
    instance = Instance(init_exit=0)
    _Script(script, instance).run()
    assert instance.calls == [INIT, _hook("CONTINUE"), _signal(0)]
    assert instance.uncaught is None


def test_the_marks_are_the_config_sets_last_commands(enabled: dict[str, Any]) -> None:
    init = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    for config_set in ("harden", "agent"):
        commands = init[config_set]["commands"]
        last = commands[max(commands)]  # cfn-init runs commands in the order of their names
        assert last["command"] == f"echo.>{BOOT_MARKS}{config_set}", config_set
    assert f"'{BOOT_MARKS}harden'" in user_data_script(enabled)


def test_the_interpreter_catches_a_script_that_continues_on_failure(enabled: dict[str, Any]) -> None:
    # The same script with its success test inverted must fail the cases above.
    broken = user_data_script(enabled).replace("if ($code -eq 0 -and", "if ($code -ne 5 -and")
    instance = Instance(init_exit=1)
    _Script(broken, instance).run()
    assert _hook("CONTINUE") in instance.calls


def test_the_interpreter_catches_a_retry_without_a_deadline(enabled: dict[str, Any]) -> None:
    broken = user_data_script(enabled).replace("if ((Get-Date) -gt $e) { return $false }", "")
    assert broken != user_data_script(enabled)
    instance = Instance(init_exit=0, failures={(LAUNCH_HOOK, "CONTINUE"): 40})
    _Script(broken, instance).run()
    assert instance.calls.count(_hook("CONTINUE")) == 41  # it never gives up


def test_the_interpreter_catches_an_uncaught_publishing_error(enabled: dict[str, Any]) -> None:
    # Without its try/catch, a failed PutMetricData would end the script with an error.
    script = user_data_script(enabled)
    broken = script.replace("if ($code -eq 0) { try {", "if ($code -eq 0) {").replace(
        "-Force } catch { $_ } }", "-Force }"
    )
    assert broken.count("try {") == script.count("try {") - 1
    instance = Instance(init_exit=0, metrics_fail=True)
    _Script(broken, instance).run()
    assert instance.uncaught == "AccessDenied"


# The warm pool mode (WarmPool=stopped): the UserData runs at every boot


@pytest.fixture(scope="module")
def warm(feature: dict[str, Any]) -> dict[str, Any]:
    return render(feature, enabled_parameters(WarmPool="stopped"))


def _boot(warm: dict[str, Any], instance: Instance) -> Instance:
    instance.calls, instance.writes, instance.uncaught = [], [], None
    _Script(user_data_script(warm, persist=True), instance).run()
    assert instance.uncaught is None, "an error ended the script"
    return instance


STOPPED_FOR = timedelta(days=3)
INSTALL = ("install.ps1", f"{SERVICE_DIR}\\install.ps1", SERVICE_CONFIG)
PENDING = LAUNCH.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pooled(warm: dict[str, Any], **failing: Any) -> Instance:
    """An instance whose first boot into the pool ran (and succeeded, unless failing says
    otherwise), then started from the pool days later: target InService, a new pendingTime."""
    instance = _boot(warm, Instance(target="Warmed:Stopped", **failing))
    instance.target, instance.pending = "InService", LAUNCH + STOPPED_FOR
    instance.clock = instance.pending + timedelta(seconds=40)
    instance.failures, instance.init_exit = {}, 0
    return instance


def test_the_warm_pool_mode_persists_and_the_cold_mode_does_not(enabled: dict[str, Any], warm: dict[str, Any]) -> None:
    assert "<persist>" not in user_data_script(enabled)
    assert user_data_script(warm, persist=True)  # <persist>true</persist> after </powershell>
    with pytest.raises(AssertionError):
        user_data_script(enabled, persist=True)


def test_first_boot_into_the_pool_bootstraps_then_lets_it_stop(warm: dict[str, Any]) -> None:
    # Warmed:Pending:Wait: the whole bootstrap, then CONTINUE, and Auto Scaling stops it.
    instance = _boot(warm, Instance(target="Warmed:Stopped"))
    assert [c[:1] if c[0] == "PutMetricData" else c for c in instance.calls] == [
        INIT,
        _hook("CONTINUE"),
        _signal(0),
        ("PutMetricData",),
    ]
    assert instance.files == {START_MARK: PENDING, OK_MARK: ""}
    ((*_, data),) = [call for call in instance.calls if call[0] == "PutMetricData"]
    assert {d["MetricName"]: d["Value"] for d in data} == TIMINGS  # the cold boot's phases
    # Both marks before the hook: the stop that follows CONTINUE may cut the script short.
    continued = instance.calls.index(_hook("CONTINUE"))
    assert [path for before, path in instance.writes if before <= continued] == [START_MARK, OK_MARK]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_first_boot_in_the_warm_pool_mode_is_the_cold_boot(warm: dict[str, Any], case: str) -> None:
    # Into service (the pool empty) or into the pool, a first boot does what the cold mode does.
    template, expected = CASES[case]
    for target in ("InService", "Warmed:Stopped"):
        fresh = {"failures": dict(template.failures), "files": {}, "marks": {}, "target": target}
        instance = Instance(**{**template.__dict__, **fresh})
        calls = _boot(warm, instance).calls
        assert [call[:1] if call[0] == "PutMetricData" else call for call in calls] == expected
        assert (OK_MARK in instance.files) == (template.init_exit == 0)


def test_a_start_from_the_pool_starts_the_worker_and_continues_without_cfn_init(warm: dict[str, Any]) -> None:
    instance = _boot(warm, _pooled(warm))
    # No cfn-init, no signal (the CreationPolicy is long done); one timing, not the first boot's phases.
    assert [c[:1] if c[0] == "PutMetricData" else c for c in instance.calls] == [
        INSTALL,
        _hook("CONTINUE"),
        ("PutMetricData",),
    ]
    assert instance.files[START_MARK] == (LAUNCH + STOPPED_FOR).strftime("%Y-%m-%dT%H:%M:%SZ")
    ((_, namespace, _, datum),) = [c for c in instance.calls if c[0] == "PutMetricData"]
    assert namespace == WorkersConfig().metrics_namespace
    # From the start (its pendingTime) to in service: 40 s to the UserData, then one hook call.
    assert (datum["MetricName"], datum["Value"], datum["Unit"]) == (POOL_START_METRIC, 40 + CALL_SECONDS, "Seconds")
    (dimension,) = datum["Dimensions"]
    assert (dimension["Name"], dimension["Value"]) == ("AutoScalingGroupName", GROUP)


def test_a_start_from_the_pool_after_a_failed_bootstrap_is_abandoned(warm: dict[str, Any]) -> None:
    # The first boot failed (cfn-init 1) and was not replaced at once (the ABANDON never
    # went through): started from the pool, it must not come into service.
    instance = _pooled(warm, init_exit=1, failures={(LAUNCH_HOOK, "ABANDON"): PERMANENT})
    assert OK_MARK not in instance.files
    _boot(warm, instance)
    assert _hook("CONTINUE") not in instance.calls
    assert INSTALL not in instance.calls and INIT not in instance.calls
    assert instance.calls == [_hook("ABANDON")]


def test_a_start_from_the_pool_whose_worker_fails_to_start_is_abandoned(warm: dict[str, Any]) -> None:
    instance = _pooled(warm)
    instance.install_exit = 1
    assert _boot(warm, instance).calls == [INSTALL, _hook("ABANDON")]


def test_a_start_from_the_pool_retries_the_hook(warm: dict[str, Any]) -> None:
    instance = _pooled(warm)
    instance.failures = {(LAUNCH_HOOK, "CONTINUE"): 2}
    assert _boot(warm, instance).calls[:-1] == [INSTALL, *[_hook("CONTINUE")] * 3]


def test_a_reboot_of_a_worker_in_service_does_nothing(warm: dict[str, Any]) -> None:
    # Same pendingTime (a reboot is not a launch): no cfn-init, no hook completed, no
    # signal; the worker starts by itself, as after any reboot.
    instance = _boot(warm, Instance(target="InService"))
    files = dict(instance.files)
    instance.clock += timedelta(days=2)
    assert _boot(warm, instance).calls == []
    assert instance.files == files
    # The same after a start from the pool and a reboot since.
    instance = _boot(warm, _pooled(warm))
    assert _boot(warm, instance).calls == []


@pytest.mark.parametrize("target", ["Warmed:Stopped", "Terminated", None])
def test_a_later_boot_not_on_its_way_into_service_does_nothing(warm: dict[str, Any], target: str | None) -> None:
    instance = _pooled(warm)
    instance.target = target
    assert _boot(warm, instance).calls == []


def test_the_interpreter_catches_a_start_path_that_reruns_cfn_init(warm: dict[str, Any]) -> None:
    # Without the start mark's test, every boot is a first boot.
    script = user_data_script(warm, persist=True)
    broken = script.replace(f"if (Test-Path '{START_MARK}')", "if ($false)")
    assert broken != script
    instance = _pooled(warm)
    instance.calls = []
    _Script(broken, instance).run()
    assert INIT in instance.calls


def test_the_interpreter_catches_a_start_that_continues_without_the_ok_mark(warm: dict[str, Any]) -> None:
    script = user_data_script(warm, persist=True)
    broken = script.replace(f"if (Test-Path '{OK_MARK}') {{ ", "if ($true) { ")
    assert broken != script
    instance = _pooled(warm, init_exit=1, failures={(LAUNCH_HOOK, "ABANDON"): PERMANENT})
    instance.calls = []
    _Script(broken, instance).run()
    assert _hook("CONTINUE") in instance.calls
