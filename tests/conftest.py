"""Shared fixtures: templates built once per session, rendered with cloud-radar."""

from __future__ import annotations

import base64
import functools
import gc
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto_speed
import botocore.session as botocore_session
import cfnlint.helpers
import lint_speed
import pytest
import tree_sitter
import tree_sitter_powershell
import yaml
from botocore.loaders import create_loader as botocore_create_loader
from cloud_radar.cf.unit import Template as RadarTemplate
from cloud_radar.cf.unit import _template as radar_template
from cloud_radar.cf.unit import functions as radar_functions
from hypothesis import strategies as st
from moto.cloudformation import models as moto_cfn_models
from moto.cloudformation import responses as moto_cfn_responses
from moto.ec2.models import amis as moto_amis

from winworkers import WorkersConfig, build_template
from winworkers.config import METRIC_INTERVALS
from winworkers.instance_types import INSTANCE_TYPES
from winworkers.renderings import enabled_parameters

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_BUCKET = "ww-templates"
"""The bucket the deploy tests deploy templates over the inline limit from (--template-bucket)."""
BUCKET_FLAG = ("--template-bucket", TEMPLATE_BUCKET)


def emulator_clients(endpoint: str, region: str = "us-east-1") -> Any:
    """winworkers.deploy.Clients for the emulator at endpoint, with TEMPLATE_BUCKET made
    (the feature's template is over the inline limit, so deploys go through it), and
    any other client (preflight's SQS, KMS, STS) of the same session."""
    import boto3

    from winworkers.deploy import Clients

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)

    def client(name: str) -> Any:
        return session.client(name, endpoint_url=endpoint)

    clients = Clients(client("cloudformation"), client("ec2"), client("s3"), region, client=client)
    clients.s3.create_bucket(Bucket=TEMPLATE_BUCKET)
    return clients


def stack_events(cloudformation: Any, stack: str) -> list[dict[str, Any]]:
    """Every event of the stack, newest first, from every page (the emulator answers 100 a page, as AWS does:
    the feature's create alone is more than one)."""
    pages = cloudformation.get_paginator("describe_stack_events").paginate(StackName=stack)
    return [e for page in pages for e in page["StackEvents"]]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """The emulator (winworkers.emulator's patched moto server on 127.0.0.1), one per test module."""
    from winworkers.emulator import local_aws

    with local_aws() as url:
        yield url


@pytest.fixture(scope="module")
def aws(endpoint: str) -> Any:
    """winworkers.deploy.Clients on the module's emulator (emulator_clients); a module may
    define its own."""
    return emulator_clients(endpoint)


@pytest.fixture()
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment docs/emulator.md tells emulator users to export, and nothing of the
    caller's profile, Region or endpoint."""
    from winworkers.emulator import ENVIRONMENT

    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `make wheel` builds, built once per run (tests read it, never change it)."""
    folder = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = folder.glob("winworkers-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_wheel(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """built_wheel installed, once per run, into a folder of its own (its dependencies come from the
    test's environment; run it with ``python -S`` and that folder on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("wheel-install") / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--target", str(site), str(built_wheel)], check=True)
    return site


DATA = ROOT / "tests" / "data"
# The example parents (examples/*.py) import each other as a reader runs them: from their folder;
# the tests import the scripts (scripts/*.py: the model, the docs' generated tables) as modules too.
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "scripts"))

# moto's EC2 makes every image it ships for a Region (1,301 in us-east-1, each with a volume and a
# snapshot) whenever it makes a backend: at each mock_aws and each reset, about 0.15 s of CPU. Its own
# base images (moto-amis.json: moto's ec2/resources/amis.json, 44 images) hold every image the tests
# use (tests/test_moto_amis.py); MOTO_AMIS_PATH reaches the emulators the tests start in subprocesses.
MOTO_AMIS = DATA / "moto-amis.json"
os.environ["MOTO_AMIS_PATH"] = str(MOTO_AMIS)
moto_amis.AMIS = json.loads(MOTO_AMIS.read_text(encoding="utf-8"))

Rendered = dict[str, Any]

# cloud-radar downloads a region list from GitHub for Fn::GetAZs; tests have no
# Internet, so give it the two regions they render in.
radar_functions.REGION_DATA = [
    {"code": "us-east-1", "zones": [f"us-east-1{z}" for z in "abcdef"]},
    {"code": "eu-west-1", "zones": [f"eu-west-1{z}" for z in "abc"]},
]


class JsonCopy:
    """cloud-radar copies each template it renders through ``yaml.dump`` and ``yaml.load``
    (keys sorted), in pure Python: 95% of a render's time. The templates here are JSON, so
    the same copy, keys sorted, is made through JSON (tests/test_renderings.py holds the two
    copies' renderings equal)."""

    FullLoader = None

    @staticmethod
    def dump(data: Any) -> str:
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def load(stream: str, Loader: Any = None) -> Any:
        return json.loads(stream)


radar_template.yaml = JsonCopy  # type: ignore[assignment]


class JsonFirst(types.ModuleType):
    """moto's CloudFormation reads every template body with ``yaml.load`` in pure Python first, JSON
    only if that fails: a fifth of an emulator deploy's time. JSON is YAML, so the JSON answer is
    the same for a JSON body (tests/test_rendering_copy.py holds them equal on our templates); a
    YAML body still goes to yaml. yaml's other names pass through."""

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)

    @staticmethod
    def load(stream: str, Loader: Any) -> Any:
        try:
            return json.loads(stream)
        except ValueError:
            return yaml.load(stream, Loader=Loader)


for _module in (moto_cfn_models, moto_cfn_responses):
    _module.yaml = JsonFirst("yaml")  # type: ignore[attr-defined]


class _SearchPaths(list[str]):
    """A shared loader's search paths: boto3 adds its own folder at each session; once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def shared_loader(search_path_string: str | None = None) -> Any:
    """botocore's loader of its data files (service models, endpoints), one per data path per run.
    moto gives each mock its own boto3 session, so each botocore session parsed the same JSON
    again (about 0.1 s a client); the files do not change, so every session reads them once."""
    loader = botocore_create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader._search_paths)
    return loader


botocore_session.create_loader = shared_loader


_load_plugins = cfnlint.helpers.load_plugins


@functools.cache
def _rule_instances(directory: str, name: str, modules: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(lint_speed.adopt(_load_plugins(directory, name, modules)))


def shared_rules(
    directory: str,
    name: str = "CloudFormationLintRule",
    modules: tuple[str, ...] = ("cfnlint", "cfnlint.rules", "cfnlint.rules._rule"),
) -> list[Any]:
    """cfn-lint's rules from a folder (its own ~300 rule files), imported once per run: each in-process
    lint imported and instantiated them all again (about 0.3 s of CPU a call, most of a small lint). Every
    lint configures each rule afresh (``Rule.configure`` resets it to its defaults, then applies the call's
    options) and initializes it per template, as cfn-lint does for the templates of one call; the
    collection (``Rules``) is still new per call. tests/test_lint_rules.py holds the answers to a fresh load's."""
    return list(_rule_instances(directory, name, tuple(modules)))


cfnlint.helpers.load_plugins = shared_rules
lint_speed.install()
boto_speed.install()

# CPython's cyclic garbage collector at its default thresholds (700, 10, 10) runs a young collection
# every 700 new objects and a full one (the whole heap: botocore's and moto's models, cfn-lint's
# schemas and rules, every rendering a module keeps) every hundred of those. Measured with gc.callbacks
# (tests/test_embedding_lint.py alone, one process): 7,177 collections, 5.6 s of CPU, 4.5 s of it full
# ones; at (50,000, 20, 20), 950 collections, 3.3 s, 1.2 s full (a cfn-lint run makes objects by the
# million). Nothing a test asserts waits on a collection; pytest still collects at the end of the run
# for unraisable exceptions.
GC_THRESHOLDS = (50_000, 20, 20)
gc.set_threshold(*GC_THRESHOLDS)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported by now lives for the whole run: out of the collector's scans (gc.freeze)."""
    gc.collect()
    gc.freeze()


def as_dict(template: Any) -> dict[str, Any]:
    """The template exactly as written to JSON."""
    return json.loads(template.to_json())


@pytest.fixture(scope="session")
def feature() -> Iterator[dict[str, Any]]:
    """The default feature template, built once per run and shared: read it, or change a copy
    (copy.deepcopy, renderings.with_defaults); a change to the shared one fails the run here."""
    text = build_template(WorkersConfig()).to_json()
    shared = json.loads(text)
    yield shared
    assert shared == json.loads(text), "a test changed the shared feature template: change a copy"


def render(template: dict[str, Any], params: dict[str, str], region: str = "us-east-1") -> Rendered:
    """The template as CloudFormation would create it for ``params``: Conditions
    evaluated, resources and properties they remove gone, intrinsics resolved."""
    stack = RadarTemplate(json.loads(json.dumps(template))).create_stack(params, region=region)
    return dict(stack.data)


@pytest.fixture(scope="session")
def renderer() -> Callable[..., Rendered]:
    return render


@pytest.fixture(scope="session")
def enabled(feature: dict[str, Any]) -> Iterator[Rendered]:
    """The feature rendered enabled (isolated-2az), once per run and shared, as feature is."""
    shared = render(feature, enabled_parameters())
    text = json.dumps(shared)
    yield shared
    assert json.dumps(shared) == text, "a test changed the shared rendering: change a copy"


def resources_of(rendered: Rendered, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in rendered.get("Resources", {}).items() if r["Type"] == kind}


def props(rendered: Rendered, name: str) -> dict[str, Any]:
    properties: dict[str, Any] = rendered["Resources"][name]["Properties"]
    return properties


def valid_configs() -> st.SearchStrategy[WorkersConfig]:
    """Every kind of WorkersConfig the validation accepts (for property tests)."""
    return st.builds(
        WorkersConfig,
        prefix=st.from_regex(r"[A-Z][A-Za-z0-9]{0,11}", fullmatch=True),
        worker_log_paths=st.lists(
            # * in the file name, never ** (WorkersConfig.worker_log_paths).
            st.from_regex(r"[C-F]:\\[A-Za-z0-9_]{1,10}\\[A-Za-z0-9_*]{1,10}\.(log|txt)", fullmatch=True).filter(
                lambda path: "**" not in path
            ),
            min_size=1,
            max_size=3,
            unique=True,
        ).map(tuple),
        metrics_namespace=st.from_regex(r"[A-Za-z][A-Za-z0-9/_.-]{0,20}", fullmatch=True),
        metrics_interval_seconds=st.sampled_from(METRIC_INTERVALS),
        max_fleet_size=st.integers(1, 1000),
        include_alarms=st.booleans(),
        default_instance_type=st.sampled_from(sorted(INSTANCE_TYPES)),
        tags=st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
            st.text(st.characters(categories=["L", "N"], include_characters=" _.:/=+-@"), max_size=20),
            max_size=2,
        ).map(lambda d: tuple(d.items())),
    )


# A real PowerShell grammar: tests/test_powershell.py parses every script the workers
# run, tests/test_lifecycle.py runs the UserData.
POWERSHELL_PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def user_data_script(rendered: Rendered, persist: bool = False) -> str:
    """The UserData's PowerShell, between EC2Launch's tags: without <persist> (it runs once,
    at first boot), or, with persist (WarmPool=stopped), followed by <persist>true</persist>."""
    raw = props(rendered, "WinLaunchTemplate")["LaunchTemplateData"]["UserData"]
    tail = "\n<persist>true</persist>" if persist else ""
    match = re.fullmatch(r"<powershell>\n(.*)\n</powershell>" + tail, base64.b64decode(raw).decode(), re.DOTALL)
    assert match, "plain PowerShell inside <powershell> tags, nothing else"
    return match.group(1)


LONGEST_FIRST = (
    "test_embedding_lint.py",
    "test_embedding.py",
    "test_lint_rules.py",
    "test_lint.py",
    "test_scanners.py",
    "test_refresh_template.py",
    "test_build.py",
    "test_deploy.py",
    "test_deploy_safety.py",
    "test_lint_speed.py",
    "test_deploy_operator.py",
    "test_sample_worker.py",
    "test_review26.py",
    "test_emulator_defects.py",
    "test_boot_evidence.py",
    "test_emulator_differential.py",
)
"""The modules that take longest (a full run's per-module times, 2026-12-07), longest first: `make test`
(pytest-xdist, --dist loadfile) gives each of its 2 workers a module at a time in collection order, so
that a long one started last no longer ends the run alone. tests/test_lint_speed.py holds each name to a
module of tests/."""


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist sends modules in collection order (pytest_collection_modifyitems: LONGEST_FIRST),
    not by their number of tests (its default: test_lint's 3 long tests and test_scanners' 5 went last)."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """LONGEST_FIRST's modules first, in its order, then the rest as collected; each module's own
    tests in their order."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
