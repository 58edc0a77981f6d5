"""The sample worker (examples/sample-worker/): it parses, it builds into the zip a fleet
takes as ArtifactKey, and its worker keeps the worker contract (docs/worker-contract.md).

There is no PowerShell here, so worker.ps1 is parsed with tree-sitter's PowerShell grammar
and run by a small interpreter of the constructs it uses, against a fake instance: its
metadata service (whose target lifecycle state changes when a case says), its queue, its
background jobs (which take a number of 5-second ticks) and Auto Scaling. The worker.json
it reads is the one the feature's template writes (rendered with cloud-radar). The cases
assert the calls the worker makes, in order, and the contract's invariants on every run;
planted defects show that the checks fail when the worker breaks the contract.
"""

from __future__ import annotations

import json
import ntpath
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from powershell import Failure, Interpreter, descendants, text
from test_powershell import syntax_errors

from conftest import POWERSHELL_PARSER, ROOT
from winworkers import WorkersConfig
from winworkers.bootstrap import DRAIN_HOOK, SERVICE_CONFIG, SERVICE_DIR, WORKER_SETTINGS, WorkerSetting
from winworkers.docs import worker_config_sample, worker_config_table
from winworkers.renderings import enabled_parameters

SAMPLE = ROOT / "examples" / "sample-worker"
SCRIPTS = sorted(SAMPLE.glob("*.ps1"))
INSTANCE = "i-0123456789abcdef0"
TICK = 5  # seconds: worker.ps1's $TickSeconds


# --- the scripts and the zip


def test_every_script_parses_and_is_labelled_a_sample() -> None:
    assert {p.name for p in SCRIPTS} == {"install.ps1", "worker.ps1", "job.ps1"}
    for path in SCRIPTS:
        text = path.read_text(encoding="utf-8")
        assert syntax_errors(text) == [], path.name
        # Windows PowerShell 5.1 reads a BOM-less script as ANSI: non-ASCII text would be mangled.
        assert text.isascii(), path.name
        assert text.startswith("<#\nSAMPLE "), f"{path.name} does not say it is a sample to start from"


def test_install_takes_the_config_path_cfn_init_passes(feature: dict[str, Any]) -> None:
    install = (SAMPLE / "install.ps1").read_text(encoding="utf-8")
    assert "param([Parameter(Mandatory = $true)][string]$ConfigPath)" in install
    commands = feature["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["service"]
    command = commands["commands"]["01-install"]["command"]
    assert f"& '{SERVICE_DIR}\\install.ps1' -ConfigPath '{SERVICE_CONFIG}'; exit $LASTEXITCODE" in command
    assert commands["sources"] == {SERVICE_DIR: commands["sources"][SERVICE_DIR]}


def _build_zip(out: Path) -> bytes:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sample_worker.py"), str(out)], check=True)
    return out.read_bytes()


def test_the_zip_holds_the_scripts_at_its_root_and_is_deterministic(tmp_path: Path) -> None:
    first = _build_zip(tmp_path / "a" / "sample-worker.zip")
    assert _build_zip(tmp_path / "b.zip") == first  # the same bytes, whenever and wherever built
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        assert archive.namelist() == ["install.ps1", "job.ps1", "worker.ps1"]  # install.ps1 at the root
        for name in archive.namelist():
            assert archive.read(name) == (SAMPLE / name).read_bytes()
            assert archive.getinfo(name).date_time == (1980, 1, 1, 0, 0, 0)


def test_makefile_builds_the_sample_worker() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "sample-worker: $(STAMP)\n\t$(BIN)/python scripts/sample_worker.py dist/sample-worker.zip\n" in makefile


# --- the worker, run


class TooLong(Exception):
    """The fake world's step budget ran out: the worker would loop forever."""


class Reclaimed(Exception):
    """EC2 reclaimed the Spot instance: the worker stops wherever it was."""


INTERRUPTION_PATH = "spot/instance-action"
REBALANCE_PATH = "events/recommendations/rebalance"
SPOT_PATHS = {INTERRUPTION_PATH: "interruption", REBALANCE_PATH: "rebalance"}
RECLAIM_TICKS = 120 // 5  # the notice's two minutes, in the worker's 5-second ticks
EPOCH_MS = 1_796_000_000_000  # the fake clock at tick 0, milliseconds since 1970 (UTC)
LAUNCHED = "2026-11-30T00:52:20Z"  # the instance's pendingTime: 60 s before tick 0
AGENT_CONFIG = "C:\\ProgramData\\Amazon\\AmazonCloudWatchAgent\\winworkers.json"
NAMESPACE = "WinWorkers"


@dataclass
class Job:
    message: str
    ticks: int
    fails: bool
    waited: int = 0
    State: str = "Running"


@dataclass
class Instance:
    """The fake instance the worker runs on, and what it did."""

    settings: dict[str, Any]
    messages: list[dict[str, Any]]
    """Each: {"id": ..., "ticks": how long its job takes, "fails": whether it fails}."""
    terminate_at: int | None = None
    """The tick from which the target lifecycle state reads Terminated (None: never)."""
    terminate_on_receive: bool = False
    """Terminated as soon as a receive returns a message (a drain that begins during a long poll)."""
    imds_down_until: int = 0
    imds_down_from: int = 0
    """The metadata service does not answer from tick imds_down_from until imds_down_until."""
    interrupt_on_receive: bool = False
    """A Spot interruption notice as soon as a receive returns a message (during a long poll)."""
    rebalance_at: int | None = None
    """The tick from which the metadata holds a rebalance recommendation (None: never)."""
    interruption_at: int | None = None
    """The tick from which it holds a Spot interruption notice; EC2 reclaims the instance
    RECLAIM_TICKS (two minutes) later, and the worker stops there, wherever it is."""
    spot_seen: int | None = None
    """Where in calls the worker first read a Spot signal."""
    ended: dict[str, int] = field(default_factory=dict)
    """The tick each message was deleted or made visible again (visibility 0)."""
    fail_deletes: int = 0
    """How many DeleteMessage calls fail first (the endpoint does not answer)."""
    fail_completes: int = 0
    """How many CompleteLifecycleAction calls fail first."""
    tick: int = 0
    terminated_seen: int | None = None
    """Where in calls the worker first read a state it must drain on: Terminated, or a Warmed:
    state after it read InService (a scale-in back to the warm pool)."""
    served: bool = False
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    """The job records the worker wrote to jobs.log, parsed."""
    jobs: dict[str, Job] = field(default_factory=dict)
    steps: int = 0
    late: list[tuple[Any, ...]] = field(default_factory=list)
    """Receives and job starts made while the state was Terminated or a Spot signal was given
    (whether the worker looked or not)."""

    pool_at: int | None = None
    """The tick from which the state reads Warmed:Stopped: a scale-in back to the warm pool."""
    pooled: bool = False
    """A first boot into the warm pool: the state reads Warmed:Stopped throughout."""

    def state(self) -> str:
        if self.terminate_at is not None and self.tick >= self.terminate_at:
            return "Terminated"
        if self.pooled or (self.pool_at is not None and self.tick >= self.pool_at):
            return "Warmed:Stopped"
        return "InService"

    def advance(self, seconds: int) -> None:
        self.tick += max(1, seconds // TICK)

    def given(self, signal: str) -> bool:
        """Whether the metadata holds the Spot signal ('interruption' or 'rebalance') now (in this
        fake each stays once given). Both may be there: a recommendation can come with the notice."""
        at = self.interruption_at if signal == "interruption" else self.rebalance_at
        return at is not None and self.tick >= at

    def __call__(self, name: str, args: list[Any], options: dict[str, Any], piped: Any) -> Any:
        self.steps += 1
        if self.steps > 5000:
            raise TooLong
        if self.interruption_at is not None and self.tick >= self.interruption_at + RECLAIM_TICKS:
            raise Reclaimed
        if name.startswith("["):
            return self.dotnet(name, piped)
        handler = getattr(self, "do_" + name.replace("-", "_"), None)
        assert handler is not None, f"the fake instance does not know {name}"
        return handler(args, options, piped)

    # files and logs

    def dotnet(self, call: str, variables: dict[str, Any]) -> int:
        """The worker's .NET clock: milliseconds since 1970, now (the fake's tick) or at a time."""
        if call == "[DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()":
            return EPOCH_MS + self.tick * TICK * 1000
        assert call == "[DateTimeOffset]::Parse($time).ToUnixTimeMilliseconds()", call
        return int(datetime.fromisoformat(variables["time"].replace("Z", "+00:00")).timestamp() * 1000)

    def do_Get_Content(self, args: list[Any], options: dict[str, Any], piped: Any) -> str:
        assert options["raw"] is True
        if options["path"] == AGENT_CONFIG:
            return json.dumps({"metrics": {"namespace": NAMESPACE}})
        assert options["path"] == SERVICE_CONFIG
        return json.dumps(self.settings)

    def do_ConvertFrom_Json(self, args: list[Any], options: dict[str, Any], piped: Any) -> Any:
        return json.loads(piped)

    def do_Split_Path(self, args: list[Any], options: dict[str, Any], piped: Any) -> str:
        assert options == {"parent": True}
        return ntpath.dirname(args[0])

    def do_Join_Path(self, args: list[Any], options: dict[str, Any], piped: Any) -> str:
        return ntpath.join(*args)

    def do_New_Item(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        return None

    def do_Out_Null(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        return None

    def do_Get_Date(self, args: list[Any], options: dict[str, Any], piped: Any) -> str:
        return f"t+{self.tick * TICK}s"

    def do_Add_Content(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        if options["path"].endswith("\\jobs.log"):
            self.records.append(json.loads(options["value"]))
            return
        assert options["path"].endswith("\\sample-worker.log")
        self.calls.append(("log", options["value"].split(" ", 1)[1]))

    def do_Start_Sleep(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        self.advance(int(options["seconds"]))

    # instance metadata, IMDSv2 only

    def do_Invoke_RestMethod(self, args: list[Any], options: dict[str, Any], piped: Any) -> str:
        uri = options["uri"]
        if self.imds_down_from <= self.tick < self.imds_down_until:
            raise Failure("Unable to connect to the remote server")
        if options.get("method") == "Put":
            assert uri == "http://169.254.169.254/latest/api/token"
            assert options["headers"] == {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
            return "token"
        assert options["headers"] == {"X-aws-ec2-metadata-token": "token"}, "IMDSv1: no token"
        if uri == "http://169.254.169.254/latest/dynamic/instance-identity/document":
            return {"pendingTime": LAUNCHED}  # type: ignore[return-value]
        path = uri.removeprefix("http://169.254.169.254/latest/meta-data/")
        if path == "instance-id":
            return INSTANCE
        if path in SPOT_PATHS:
            # Absent (404) until EC2 gives the signal (EC2 user guide: instance metadata categories).
            if not self.given(SPOT_PATHS[path]):
                raise Failure("The remote server returned an error: (404) Not Found.")
            if self.spot_seen is None:
                self.spot_seen = len(self.calls)
            self.calls.append(("spot", SPOT_PATHS[path]))
            return '{"action": "terminate", "time": "..."}' if path == INTERRUPTION_PATH else '{"noticeTime": "..."}'
        assert path == "autoscaling/target-lifecycle-state", uri
        state = self.state()
        leaving = state == "Terminated" or (self.served and state.startswith("Warmed:"))
        if leaving and self.terminated_seen is None:
            self.terminated_seen = len(self.calls)
        self.served = self.served or state == "InService"
        self.calls.append(("state", state))
        return state

    # the queue

    def _queue(self, options: dict[str, Any]) -> None:
        assert options["queueurl"] == self.settings["queue_url"]
        assert options["region"] == self.settings["region"]

    def do_Receive_SQSMessage(self, args: list[Any], options: dict[str, Any], piped: Any) -> Any:
        self._queue(options)
        assert (options["messagecount"], options["waittimeinseconds"]) == (1, 20), "one message, long polling"
        if self.state() == "Terminated" or self.given("interruption") or self.given("rebalance"):
            self.late.append(("receive",))
        visibility = options["visibilitytimeout"]
        if not self.messages:
            self.advance(20)  # the long poll waits its whole time
            self.calls.append(("receive", None))
            return None
        message = self.messages.pop(0)
        self.calls.append(("receive", message["id"], visibility))
        if self.terminate_on_receive:
            self.terminate_at = self.tick
        if self.interrupt_on_receive:
            self.interruption_at = self.tick
        sent = str(message.get("sent", EPOCH_MS))
        attributes = {"SentTimestamp": sent} if options.get("attributename") == "SentTimestamp" else {}
        body = json.dumps(message)
        return {
            "MessageId": message["id"],
            "ReceiptHandle": "rh-" + message["id"],
            "Body": body,
            "Attributes": attributes,
        }

    def do_Edit_SQSMessageVisibility(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        self._queue(options)
        assert options["force"] is True
        message = options["receipthandle"].removeprefix("rh-")
        self.calls.append(("visibility", message, options["visibilitytimeout"]))
        if options["visibilitytimeout"] == 0:
            self.ended[message] = self.tick

    def do_Remove_SQSMessage(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        self._queue(options)
        assert options["force"] is True, "a confirmation prompt would hang a worker nobody can answer"
        if self.fail_deletes:
            self.fail_deletes -= 1
            self.calls.append(("delete failed", options["receipthandle"].removeprefix("rh-")))
            raise Failure("Unable to connect to the remote server")
        self.calls.append(("delete", options["receipthandle"].removeprefix("rh-")))
        self.ended[options["receipthandle"].removeprefix("rh-")] = self.tick

    # background jobs: each Wait-Job is one tick of the job

    def do_Start_Job(self, args: list[Any], options: dict[str, Any], piped: Any) -> Job:
        assert options["filepath"] == f"{SERVICE_DIR}\\job.ps1"
        body, config_path = options["argumentlist"]
        assert config_path == SERVICE_CONFIG
        message = json.loads(body)
        job = self.jobs[message["id"]] = Job(message["id"], message["ticks"], message.get("fails", False))
        if self.state() == "Terminated" or self.given("interruption") or self.given("rebalance"):
            self.late.append(("start", job.message))
        self.calls.append(("start", job.message))
        return job

    def do_Wait_Job(self, args: list[Any], options: dict[str, Any], piped: Any) -> Job | None:
        job: Job = options["job"]
        assert options["timeout"] == TICK
        job.waited += 1
        self.tick += 1
        if job.waited >= job.ticks:
            job.State = "Failed" if job.fails else "Completed"
            self.calls.append(("finished", job.message, job.State))
            return job
        return None

    def do_Stop_Job(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        job: Job = options["job"]
        job.State = "Stopped"
        self.calls.append(("stop", job.message))

    def do_Remove_Job(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        assert options["force"] is True

    # Auto Scaling

    def do_Complete_ASLifecycleAction(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        assert options["force"] is True and options["region"] == self.settings["region"]
        lifecycle = self.settings["lifecycle"]
        assert (options["autoscalinggroupname"], options["lifecyclehookname"]) == (
            lifecycle["group_name"],
            lifecycle["termination_hook"],
        )
        if self.fail_completes:
            self.fail_completes -= 1
            self.calls.append(("complete failed",))
            raise Failure("Unable to connect to the remote server")
        self.calls.append(("complete", options["instanceid"], options["lifecycleactionresult"]))


@pytest.fixture(scope="module")
def settings(enabled: dict[str, Any]) -> dict[str, Any]:
    """worker.json as the feature's template writes it, rendered as CloudFormation would."""
    init = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    content: dict[str, Any] = init["service"]["files"][SERVICE_CONFIG]["content"]
    assert content["lifecycle"]["termination_hook"] == DRAIN_HOOK
    return content


def _run(source: str, instance: Instance) -> int:
    world = lambda call: instance(call.name, call.positional, call.options, call.piped)  # noqa: E731
    return Interpreter(source, world, {"PSScriptRoot": SERVICE_DIR}).run()


def _worker() -> str:
    return (SAMPLE / "worker.ps1").read_text(encoding="utf-8")


def violations(instance: Instance) -> list[str]:
    """The worker contract's invariants, on one run's calls."""
    found = []
    calls = instance.calls
    seen = instance.terminated_seen
    work = [c for c in calls if c[0] in ("receive", "start", "delete", "visibility", "stop", "complete", "finished")]
    if instance.late:
        found.append(f"took work while the state was Terminated or a Spot signal given: {instance.late[:2]}")
    if seen is not None and any(c[0] in ("receive", "start") for c in calls[seen:]):
        found.append("received or started work after reading Terminated")
    completes = [i for i, c in enumerate(calls) if c[0] == "complete"]
    if (instance.terminate_at is not None or instance.pool_at is not None) and len(completes) != 1:
        found.append(f"completed the hook {len(completes)} times")
    if completes and any(c[0] in ("delete", "visibility", "start", "receive") for c in calls[completes[0] :]):
        found.append("worked after completing the hook")
    if completes and seen is None:
        found.append("completed the hook without reading Terminated (or Warmed: after serving)")
    spot = instance.spot_seen
    if spot is not None and any(c[0] in ("receive", "start") for c in calls[spot:]):
        found.append("received or started work after reading a Spot signal")
    if instance.interruption_at is not None:
        reclaim = instance.interruption_at + RECLAIM_TICKS
        late = sorted(m for m in instance.jobs if instance.ended.get(m, reclaim) >= reclaim)
        if late:
            found.append(f"{late} neither deleted nor released before the Spot reclaim")
    for i, call in enumerate(calls):
        if call[0] == "delete" and ("finished", call[1], "Completed") not in calls[:i]:
            found.append(f"deleted {call[1]} before its job succeeded")
    for job in instance.jobs.values():
        ended = [c for c in work if c[1:2] == (job.message,) and c[0] in ("delete", "visibility")]
        if not ended or (ended[-1][0] == "visibility" and ended[-1][2] != 0):
            found.append(f"{job.message} neither deleted nor released")
        if job.waited * TICK >= 300 and ("visibility", job.message, 300) not in calls:
            found.append(f"{job.message} ran {job.waited * TICK} s without renewing its visibility")
    return found


def _work(instance: Instance) -> list[tuple[Any, ...]]:
    return [c for c in instance.calls if c[0] not in ("log", "state", "spot") and c != ("receive", None)]


def _run_until_reclaimed(source: str, instance: Instance) -> int | None:
    """The worker's exit code, or None when EC2 reclaimed the Spot instance under it."""
    try:
        return _run(source, instance)
    except Reclaimed:
        return None


def test_a_drain_that_begins_mid_job_finishes_the_job_then_completes_the_hook(settings: dict[str, Any]) -> None:
    # A 150-second job; the instance is chosen for termination 50 seconds in.
    instance = Instance(settings, [{"id": "A", "ticks": 30}, {"id": "B", "ticks": 2}], terminate_at=10)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("visibility", "A", 300),  # renewed every minute of the job
        ("visibility", "A", 300),
        ("finished", "A", "Completed"),
        ("delete", "A"),
        ("complete", INSTANCE, "CONTINUE"),
    ]
    assert instance.messages == [{"id": "B", "ticks": 2}], "B stays in the queue for another worker"
    assert violations(instance) == []


def test_a_job_that_cannot_end_within_the_drain_is_stopped_and_its_message_released(
    settings: dict[str, Any],
) -> None:
    # DrainSeconds 120 leaves 60 seconds (the worker keeps 60 back) for a 500-second job.
    short = {**settings, "lifecycle": {**settings["lifecycle"], "drain_seconds": "120"}}
    instance = Instance(short, [{"id": "A", "ticks": 100}], terminate_at=3)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("visibility", "A", 300),
        ("stop", "A"),
        ("visibility", "A", 0),  # visible again at once, for a worker that stays
        ("complete", INSTANCE, "CONTINUE"),
    ]
    assert instance.jobs["A"].waited * TICK == 70  # 10 s in service, then 60 s of the drain
    assert violations(instance) == []


def test_a_drain_once_read_counts_on_while_the_metadata_does_not_answer(settings: dict[str, Any]) -> None:
    # The drain is read once, then the metadata service stops answering: the job that cannot
    # end within the drain is still released when the drain's time is up (120 s less the
    # 60-second margin), not left to the hook's timeout, which terminates it mid-job.
    short = {**settings, "lifecycle": {**settings["lifecycle"], "drain_seconds": "120"}}
    instance = Instance(short, [{"id": "A", "ticks": 100}], terminate_at=3, imds_down_from=5, imds_down_until=200)
    assert _run(_worker(), instance) == 0  # Complete-Drain retries until the metadata answers again
    assert _work(instance)[-3:] == [("stop", "A"), ("visibility", "A", 0), ("complete", INSTANCE, "CONTINUE")]
    assert (instance.ended["A"] - instance.terminate_at) * TICK <= 60


def test_a_failed_job_is_released_not_deleted(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 2, "fails": True}, {"id": "B", "ticks": 2}], terminate_at=40)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("finished", "A", "Failed"),
        ("visibility", "A", 0),
        ("receive", "B", 300),
        ("start", "B"),
        ("finished", "B", "Completed"),
        ("delete", "B"),
        ("complete", INSTANCE, "CONTINUE"),
    ]
    assert violations(instance) == []


def test_a_drain_that_begins_during_a_long_poll_starts_no_job(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 2}], terminate_on_receive=True)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [("receive", "A", 300), ("visibility", "A", 0), ("complete", INSTANCE, "CONTINUE")]
    assert violations(instance) == []


def test_no_work_is_taken_while_the_state_cannot_be_read(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 1}], terminate_at=20, imds_down_until=4)
    assert _run(_worker(), instance) == 0
    first = next(i for i, c in enumerate(instance.calls) if c[0] == "receive")
    assert ("state", "InService") in instance.calls[:first], "received before reading InService"
    assert ("receive", "A", 300) in instance.calls and ("delete", "A") in instance.calls
    assert violations(instance) == []


def test_a_worker_goes_on_when_a_call_fails(settings: dict[str, Any]) -> None:
    # DeleteMessage fails once (the message comes back, and is processed again: idempotence),
    # CompleteLifecycleAction twice: the worker keeps working, then keeps trying.
    instance = Instance(
        settings, [{"id": "A", "ticks": 2}, {"id": "B", "ticks": 2}], terminate_at=12, fail_deletes=1, fail_completes=2
    )
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("finished", "A", "Completed"),
        ("delete failed", "A"),
        ("receive", "B", 300),
        ("start", "B"),
        ("finished", "B", "Completed"),
        ("delete", "B"),
        ("complete failed",),
        ("complete failed",),
        ("complete", INSTANCE, "CONTINUE"),
    ]
    logs = [c[1] for c in instance.calls if c[0] == "log"]
    assert "job A failed: Unable to connect to the remote server" in logs


def test_a_worker_started_while_terminating_completes_the_hook_at_once(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 1}], terminate_at=0)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [("complete", INSTANCE, "CONTINUE")]


def test_the_log_goes_where_the_agent_ships_it(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 1}], terminate_at=6)
    _run(_worker(), instance)
    logs = [c[1] for c in instance.calls if c[0] == "log"]
    assert logs[0] == f"started, queue {settings['queue_url']}"
    assert "job A done" in logs and logs[-1] == "drained: the termination hook is completed"
    # The agent ships settings["log_paths"]: the log is in that folder, and matches its pattern.
    assert re.fullmatch(r".*\\\*\.log", settings["log_paths"][0])


# --- Spot (docs/worker-contract.md, "Spot")


def test_an_interruption_notice_mid_job_releases_the_message_before_the_reclaim(settings: dict[str, Any]) -> None:
    # A 500-second job; the notice appears 20 seconds in; EC2 reclaims the instance 120 s later.
    instance = Instance(settings, [{"id": "A", "ticks": 100}, {"id": "B", "ticks": 1}], interruption_at=4)
    assert _run_until_reclaimed(_worker(), instance) is None  # nothing completes a hook: it is gone
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("visibility", "A", 300),
        ("stop", "A"),
        ("visibility", "A", 0),  # visible again at once, for a worker that stays
    ]
    # Released 75 s after the notice (seen at once, 80 s allowed, in 5-second ticks), 45 s before the reclaim.
    assert (instance.ended["A"] - instance.interruption_at) * TICK == 75
    assert instance.messages == [{"id": "B", "ticks": 1}], "no new work after the notice"
    assert violations(instance) == []


def test_an_interruption_with_the_termination_hook_releases_then_completes_it(settings: dict[str, Any]) -> None:
    # Auto Scaling calls the termination hook on an interruption notice (user guide, Capacity Rebalancing).
    instance = Instance(settings, [{"id": "A", "ticks": 100}], interruption_at=4, terminate_at=5)
    assert _run_until_reclaimed(_worker(), instance) == 0
    assert _work(instance)[-3:] == [("stop", "A"), ("visibility", "A", 0), ("complete", INSTANCE, "CONTINUE")]
    assert violations(instance) == []


def test_a_job_that_ends_within_the_notice_is_deleted(settings: dict[str, Any]) -> None:
    instance = Instance(settings, [{"id": "A", "ticks": 10}, {"id": "B", "ticks": 1}], interruption_at=2)
    assert _run_until_reclaimed(_worker(), instance) is None
    assert _work(instance) == [("receive", "A", 300), ("start", "A"), ("finished", "A", "Completed"), ("delete", "A")]
    assert violations(instance) == []


def test_a_notice_once_read_counts_on_while_the_metadata_does_not_answer(settings: dict[str, Any]) -> None:
    # The notice is read once, then the metadata service stops answering (until after the
    # reclaim): the job is still stopped and its message released in time, 80 s at most
    # after the notice. A worker that counted only the ticks it read the notice on would
    # let the job run into the reclaim, and its message would wait for its visibility timeout.
    instance = Instance(settings, [{"id": "A", "ticks": 100}], interruption_at=4, imds_down_from=6, imds_down_until=60)
    assert _run_until_reclaimed(_worker(), instance) is None
    assert _work(instance)[-2:] == [("stop", "A"), ("visibility", "A", 0)]
    assert (instance.ended["A"] - instance.interruption_at) * TICK <= 80
    assert violations(instance) == []


def test_a_rebalance_recommendation_stops_new_work_and_lets_the_job_finish(settings: dict[str, Any]) -> None:
    # Capacity Rebalancing launches a replacement, then terminates this instance through the drain hook.
    instance = Instance(settings, [{"id": "A", "ticks": 30}, {"id": "B", "ticks": 1}], rebalance_at=3, terminate_at=50)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("visibility", "A", 300),
        ("visibility", "A", 300),
        ("finished", "A", "Completed"),
        ("delete", "A"),
        ("complete", INSTANCE, "CONTINUE"),
    ]
    assert instance.messages == [{"id": "B", "ticks": 1}]
    logs = [c[1] for c in instance.calls if c[0] == "log"]
    assert logs.count("Spot rebalance: no new work") == 1, "logged once, not every 5 seconds"
    assert violations(instance) == []


def test_a_spot_signal_during_a_long_poll_sends_the_message_back(settings: dict[str, Any]) -> None:
    # The notice appears while the receive waits: the message it brings goes back at once.
    instance = Instance(settings, [{"id": "A", "ticks": 1}], interrupt_on_receive=True)
    assert _run_until_reclaimed(_worker(), instance) is None
    assert _work(instance) == [("receive", "A", 300), ("visibility", "A", 0)]
    assert instance.ended["A"] == instance.interruption_at and not instance.jobs
    assert violations(instance) == []


class SqsInstance(Instance):
    """The fake instance, but its queue is moto's SQS (in-process, nothing leaves the machine): what
    the worker's calls do to the messages is SQS's, not the fake's, and the clock is real."""

    def __init__(self, settings: dict[str, Any], sqs: Any, **kwargs: Any) -> None:
        super().__init__(settings, [], **kwargs)
        self.sqs = sqs
        self.ids: dict[str, str] = {}

    def do_Receive_SQSMessage(self, args: list[Any], options: dict[str, Any], piped: Any) -> Any:
        self._queue(options)
        if self.given("interruption") or self.given("rebalance"):
            self.late.append(("receive",))
        got = self.sqs.receive_message(
            QueueUrl=options["queueurl"],
            MaxNumberOfMessages=options["messagecount"],
            WaitTimeSeconds=0,  # moto would wait in real time; the fake's clock advances instead
            VisibilityTimeout=options["visibilitytimeout"],
            AttributeNames=[options["attributename"]],
        ).get("Messages", [])
        if not got:
            self.advance(20)
            self.calls.append(("receive", None))
            return None
        (message,) = got
        body = json.loads(message["Body"])
        self.ids[message["ReceiptHandle"]] = body["id"]
        self.calls.append(("receive", body["id"], options["visibilitytimeout"]))
        return {
            "MessageId": body["id"],
            "ReceiptHandle": message["ReceiptHandle"],
            "Body": message["Body"],
            "Attributes": message["Attributes"],
        }

    def do_Edit_SQSMessageVisibility(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        self._queue(options)
        assert options["force"] is True
        self.sqs.change_message_visibility(
            QueueUrl=options["queueurl"],
            ReceiptHandle=options["receipthandle"],
            VisibilityTimeout=options["visibilitytimeout"],
        )
        message = self.ids[options["receipthandle"]]
        self.calls.append(("visibility", message, options["visibilitytimeout"]))
        if options["visibilitytimeout"] == 0:
            self.ended[message] = self.tick

    def do_Remove_SQSMessage(self, args: list[Any], options: dict[str, Any], piped: Any) -> None:
        self._queue(options)
        self.sqs.delete_message(QueueUrl=options["queueurl"], ReceiptHandle=options["receipthandle"])
        self.calls.append(("delete", self.ids[options["receipthandle"]]))
        self.ended[self.ids[options["receipthandle"]]] = self.tick


def test_an_interrupted_job_s_message_is_at_once_another_worker_s_on_sqs(settings: dict[str, Any]) -> None:
    from moto import mock_aws

    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name=settings["region"])
        name = settings["queue_url"].rsplit("/", 1)[1]
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        assert url == settings["queue_url"], "the worker.json queue_url is the queue's URL"
        for body in ({"id": "B", "ticks": 2}, {"id": "A", "ticks": 100}):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
        # B first (SQS does not promise an order; moto keeps it): a short job, deleted; then A, interrupted.
        instance = SqsInstance(settings, sqs, interruption_at=6)
        assert _run_until_reclaimed(_worker(), instance) is None
        assert _work(instance)[-2:] == [("stop", "A"), ("visibility", "A", 0)]
        assert ("delete", "B") in _work(instance) and ("delete", "A") not in _work(instance)
        # Another worker receives A at once (it was received with a 300-second visibility timeout);
        # B is gone. ApproximateReceiveCount 2: the same message, not a copy.
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        assert [json.loads(m["Body"])["id"] for m in got] == ["A"]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == "2"
        assert violations(instance) == []


SPOT_DEFECTS = {
    "ignores the interruption notice": (
        "if (($spotTicks -gt 0) -or ((Get-SpotSignal) -eq 'interruption')) {",
        "if ($false) {",
    ),
    "keeps receiving after a Spot signal": (
        "        if ($spot -ne '') {\n            if",
        "        if ($false) {\n            if",
    ),
    "starts a job the long poll brought after a Spot signal": (
        "if ((Get-SpotSignal) -ne '') {\n                Set-Visibility $message 0",
        "if ($false) {\n                Set-Visibility $message 0",
    ),
    "deletes the message of a job it stopped": (
        "Stop-Work $job $message 'before the Spot interruption'",
        "Stop-Job -Job $job\n                Remove-Job -Job $job -Force\n                Remove-SQSMessage -QueueUrl "
        "$Config.queue_url -ReceiptHandle $message.ReceiptHandle -Region $Config.region -Force",
    ),
}


def _planted(old: str, new: str) -> str:
    """worker.ps1 with one defect planted: old, found exactly once, replaced by new."""
    source = _worker()
    assert source.count(old) == 1, old
    return source.replace(old, new)


@pytest.mark.parametrize("defect", sorted(SPOT_DEFECTS))
def test_the_checks_catch_a_worker_that_breaks_the_spot_contract(settings: dict[str, Any], defect: str) -> None:
    broken = _planted(*SPOT_DEFECTS[defect])
    found: list[str] = []
    for messages, signals in (
        ([{"id": "A", "ticks": 100}, {"id": "B", "ticks": 1}], {"interruption_at": 4}),
        ([{"id": "A", "ticks": 1}, {"id": "B", "ticks": 1}], {"rebalance_at": 0, "terminate_at": 10}),
        ([{"id": "A", "ticks": 1}], {"interrupt_on_receive": True}),
    ):
        instance = Instance(settings, [dict(m) for m in messages], **signals)
        try:
            _run_until_reclaimed(broken, instance)
        except TooLong:
            found.append("never stops")
        found += violations(instance)
        if any(c[0] == "delete" and c[1] in [s[1] for s in instance.calls if s[0] == "stop"] for c in instance.calls):
            found.append("deleted the message of a stopped job")
    assert found, f"the checks did not notice a worker that {defect}"


# Defects planted in a copy of worker.ps1; each breaks the contract, and the checks must say so.
DEFECTS = {
    "keeps receiving after Terminated": (
        "if (($state -eq 'Terminated') -or ($served -and (Test-Leaving $state))) {\n            break\n        }\n"
        "        if ($state -ne 'InService') {",
        "if ($state -eq 'Unknown') {",
    ),
    "never completes the hook": (
        "if (($state -eq 'Terminated') -or ($served -and (Test-Leaving $state))) {\n            break",
        "if ($false) {\n            break",
    ),
    "starts a job the long poll brought after Terminated": (
        "if (Test-Leaving (Get-LifecycleState)) {\n                Set-Visibility $message 0",
        "if ($false) {\n                Set-Visibility $message 0",
    ),
    "deletes a failed job's message": ("if ($state -eq 'Completed') {", "if ($true) {"),
    "never renews the visibility": ("Set-Visibility $message $VisibilitySeconds", "$ticks = 0"),
    "completes the hook before the job ends": (
        "            $drainTicks = $drainTicks + 1\n",
        "            $drainTicks = $drainTicks + 1\n            Complete-Drain\n",
    ),
}


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_checks_catch_a_worker_that_breaks_the_contract(settings: dict[str, Any], defect: str) -> None:
    broken = _planted(*DEFECTS[defect])
    found: list[str] = []
    for messages, terminate_at in (
        ([{"id": "A", "ticks": 70}], 10),
        ([{"id": "A", "ticks": 2, "fails": True}, {"id": "B", "ticks": 2}], 40),
        ([{"id": "A", "ticks": 2}], None),  # None: Terminated as the receive returns
    ):
        instance = Instance(
            settings, [dict(m) for m in messages], terminate_at=terminate_at, terminate_on_receive=terminate_at is None
        )
        try:
            _run(broken, instance)
        except TooLong:
            found.append("never stops")
        found += violations(instance)
    assert found, f"the checks did not notice a worker that {defect}"


# --- worker.json, documented from the code that writes it


def _keys(settings: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in settings.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _keys(value, f"{prefix}{key}.")
    return keys


def test_the_documented_sample_is_what_an_instance_gets(settings: dict[str, Any]) -> None:
    config = WorkersConfig()
    # cloud-radar's stack: its name, Region and account.
    pseudo = {"AWS::StackName": "my-cloud-radar-stack", "AWS::Region": "us-east-1", "AWS::AccountId": "555555555555"}
    assert worker_config_sample(config, enabled_parameters(config), pseudo) == settings
    other = {**enabled_parameters(config), "WinDrainSeconds": "900", "WinDataPrefix": "in/"}
    sample = worker_config_sample(config, other, pseudo)
    assert (sample["lifecycle"]["drain_seconds"], sample["data_prefix"]) == ("900", "in/")


def test_the_worker_contract_documents_every_key_of_worker_json() -> None:
    config = WorkersConfig()
    keys = _keys(worker_config_sample(config, enabled_parameters(config)))
    assert [row.key for row in WORKER_SETTINGS] == keys, "worker.json is bootstrap.WORKER_SETTINGS, row by row"
    table = worker_config_table(config)
    assert re.findall(r"^\| `([\w.]+)` \|", table, re.M) == keys
    contract = (ROOT / "docs" / "worker-contract.md").read_text(encoding="utf-8")
    block = contract.split("<!-- worker-json:begin -->\n", 1)[1].split("<!-- worker-json:end -->", 1)[0]
    assert block.startswith(table), "docs/worker-contract.md's worker.json part is stale: make templates"
    sample = block.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(sample) == worker_config_sample(config, enabled_parameters(config))


def test_an_undescribed_key_of_worker_json_fails_the_build() -> None:
    with pytest.raises(ValueError, match=r"WorkerSetting\.meaning is empty \(lifecycle\.drain_seconds\)"):
        WorkerSetting("lifecycle.drain_seconds", "", "DrainSeconds")


# The AWS calls of the sample's scripts, by cmdlet (AWS Tools for PowerShell reference: each
# cmdlet's synopsis names the API operation it calls).
AWS_CMDLETS = {
    "Receive-SQSMessage": "sqs:ReceiveMessage",
    "Edit-SQSMessageVisibility": "sqs:ChangeMessageVisibility",
    "Remove-SQSMessage": "sqs:DeleteMessage",
    "Complete-ASLifecycleAction": "autoscaling:CompleteLifecycleAction",
    "Read-S3Object": "s3:GetObject",
    "Write-S3Object": "s3:PutObject",
}


def test_the_instance_role_allows_every_aws_call_the_sample_makes(enabled: dict[str, Any]) -> None:
    names = set()
    for path in SCRIPTS:
        tree = POWERSHELL_PARSER.parse(path.read_bytes())
        names |= {text(n) for n in descendants(tree.root_node, "command_name")}
    # A cmdlet of the AWS Tools (its noun starts with a service prefix) must be one the map knows.
    aws = {n for n in names if re.fullmatch(r"[A-Z][a-z]+-(SQS|AS|S3|EC2|CW|CWL|CFN|SSM)[A-Z]\w*", n)}
    assert aws == set(AWS_CMDLETS), aws
    role = enabled["Resources"]["WinInstanceRole"]["Properties"]
    allowed = {a for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert {AWS_CMDLETS[n] for n in aws} <= allowed


# The warm pool mode (WarmPool=stopped; docs/worker-contract.md, "A warm pool")


def test_a_worker_in_the_warm_pool_takes_no_work_and_completes_no_hook(settings: dict[str, Any]) -> None:
    # First boot into the pool: installed and running, it waits until Auto Scaling stops the
    # instance (here: until the fake world's step budget runs out).
    instance = Instance(settings, [{"id": "A", "ticks": 1}], pooled=True)
    with pytest.raises(TooLong):
        _run(_worker(), instance)
    assert _work(instance) == []
    assert {c for c in instance.calls if c[0] == "state"} == {("state", "Warmed:Stopped")}


def test_a_spot_signal_in_the_warm_pool_before_serving_neither_works_nor_drains(settings: dict[str, Any]) -> None:
    # The two modes never meet in one group (the CapacityMode Rule), but the loop must not let a
    # Spot signal count as having served: in the pool, before any InService, the worker only
    # waits; it takes no message, and completes no hook that is not waiting.
    for signal in ({"interruption_at": 0}, {"rebalance_at": 0}):
        instance = Instance(settings, [{"id": "A", "ticks": 1}], pooled=True, **signal)
        with pytest.raises((TooLong, Reclaimed)):
            _run(_worker(), instance)
        assert _work(instance) == [], signal
        assert violations(instance) == []


def test_a_scale_in_back_to_the_warm_pool_drains_like_a_termination(settings: dict[str, Any]) -> None:
    # ReuseOnScaleIn: the drain hook holds the instance in Warmed:Pending:Wait, its target
    # state reads Warmed:Stopped: the job ends, then the hook is completed and it is stopped.
    instance = Instance(settings, [{"id": "A", "ticks": 30}, {"id": "B", "ticks": 2}], pool_at=10)
    assert _run(_worker(), instance) == 0
    assert _work(instance) == [
        ("receive", "A", 300),
        ("start", "A"),
        ("visibility", "A", 300),
        ("visibility", "A", 300),
        ("finished", "A", "Completed"),
        ("delete", "A"),
        ("complete", INSTANCE, "CONTINUE"),
    ]
    assert instance.messages == [{"id": "B", "ticks": 2}]
    assert violations(instance) == []


def test_a_job_too_long_for_a_drain_back_to_the_pool_is_released(settings: dict[str, Any]) -> None:
    short = {**settings, "lifecycle": {**settings["lifecycle"], "drain_seconds": "120"}}
    instance = Instance(short, [{"id": "A", "ticks": 100}], pool_at=3)
    assert _run(_worker(), instance) == 0
    assert _work(instance)[-3:] == [("stop", "A"), ("visibility", "A", 0), ("complete", INSTANCE, "CONTINUE")]
    assert violations(instance) == []


def test_the_checks_catch_a_worker_that_drains_at_its_first_boot_into_the_pool(settings: dict[str, Any]) -> None:
    # Without "once it has served", a worker in the pool completes a termination hook that is
    # not waiting (the launch hook is; Auto Scaling refuses the call) and ends its task.
    broken = _planted("($served -and (Test-Leaving $state))", "(Test-Leaving $state)")
    instance = Instance(settings, [{"id": "A", "ticks": 1}], pooled=True)
    _run(broken, instance)
    assert _work(instance) == [("complete", INSTANCE, "CONTINUE")]
    assert "completed the hook without reading Terminated (or Warmed: after serving)" in violations(instance)


def test_the_checks_catch_a_worker_that_does_not_drain_back_to_the_pool(settings: dict[str, Any]) -> None:
    # A worker that drains on Terminated only never completes the hook on its way back to the
    # pool: the instance waits DrainSeconds, then is stopped, mid-job if one runs.
    broken = _planted(
        "return ($state -eq 'Terminated') -or ($state -like 'Warmed:*')", "return ($state -eq 'Terminated')"
    )
    instance = Instance(settings, [{"id": "A", "ticks": 2}, {"id": "B", "ticks": 2}], pool_at=1)
    with pytest.raises(TooLong):
        _run(broken, instance)
    assert "completed the hook 0 times" in violations(instance)
