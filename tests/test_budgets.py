"""Deterministic budgets (sizes, counts, API calls); timings live in `make bench`."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bench import (
    FLEET_SIZES,
    SPOT_TARGET_SHARE,
    TEST_LOOP,
    TIMINGS,
    USERDATA_LIMIT,
    WARM_TARGET_MINUTES,
    fleet_size_row,
    mode_runs,
    modes_section,
    scaling_section,
    split_report,
    template_figures,
    template_row,
    user_data,
)

from conftest import ROOT, render
from winworkers.renderings import enabled_parameters
from winworkers.templates import FEATURE_BUDGET, S3_LIMIT

TEMPLATES = sorted((ROOT / "templates").glob("*.json"))


@pytest.fixture(scope="module", params=TEMPLATES, ids=[p.name for p in TEMPLATES])
def figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"name": request.param.name, **template_figures(request.param)}


def test_size(figures: dict[str, Any]) -> None:
    # Every template is deployed from S3 (templates.FEATURE_BUDGET says why), so CloudFormation's
    # S3 limit is the hard one; the feature's template is also held to the project's own budget.
    assert figures["minified"] <= S3_LIMIT
    if figures["name"] == "winworkers.json":
        assert figures["minified"] <= FEATURE_BUDGET


def test_counts(figures: dict[str, Any]) -> None:
    # CloudFormation allows 500; 100 is the project's budget, to notice growth.
    assert figures["resources"] <= 100
    assert figures["parameters"] <= 200 and figures["outputs"] <= 200


def test_user_data_stays_small(figures: dict[str, Any]) -> None:
    if figures["user_data"] is None:
        assert figures["name"] == "parent-nested.json", "only the nested parent holds no launch template"
        return
    # The script itself, the config line's values empty.
    assert figures["user_data_code"] < 4096
    # Every input of the config line at its longest (bench.longest_value): well inside
    # EC2's 16 KB, which counts the raw script, before base64 (EC2 guide, "Work with
    # instance user data").
    assert figures["user_data"] * 3 // 4 <= USERDATA_LIMIT // 2


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm-pool"])
def test_user_data_measure_is_what_cloudformation_renders(feature: dict[str, Any], warm: bool) -> None:
    # cloud-radar names a resource by its logical id; the parameters have their example values.
    given = enabled_parameters(WarmPool="stopped" if warm else "off")
    enabled = render(feature, given)
    rendered = enabled["Resources"]["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    values = {name: given.get(name, spec.get("Default", "")) for name, spec in feature["Parameters"].items()}
    values |= {name: name for name in feature["Resources"]}
    assert user_data(feature, "my-cloud-radar-stack", "us-east-1", "amazonaws.com", values, warm).decode() == rendered


def test_up_to_date_lambda_path_makes_at_most_four_calls() -> None:
    import test_ami_refresh as t

    with pytest.MonkeyPatch.context() as patch, t.moto_world(patch) as world:
        world.group(desired=3, warm_pool=True)
        world.latest(world.old)
        assert world.run()["action"] == "up-to-date"
        assert len(world.calls) <= 4, world.calls


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_committed_figures_are_current(path: Any) -> None:
    report = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert template_row(path) in report.splitlines(), "BENCHMARKS.md is stale: run `make templates`"
    assert "Cost and latency on paper" in report
    # The size table (docs/operations.md) is generated from the templates (tests/test_build.py checks it is current).
    from readme_table import document_of

    assert f"| `{path.name}` | {template_figures(path)['minified']:,} |" in document_of("sizes").read_text()


@pytest.mark.parametrize("size", FLEET_SIZES)
def test_fleet_size_figures_are_current_and_within_budget(size: int) -> None:
    row = fleet_size_row(size)
    assert row.endswith("| within |"), row
    assert row in (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8").splitlines(), "run `make templates`"


def test_the_timings_are_the_report_s_last_section_and_alone_in_it() -> None:
    # `make bench` rewrites the timings section alone, `make templates` the rest (scripts/bench.py).
    report = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    figures, timings = split_report(report)
    assert report.count(TIMINGS) == 1 and timings.startswith(TIMINGS + "\n")
    assert figures + "\n" + timings == report
    assert not re.search(r"\d ms\b|Peak RSS|[Mm]easured \d|make test", figures), "a timing outside its section"
    assert sum(line.startswith(TEST_LOOP) for line in timings.splitlines()) == 1


def test_committed_scaling_charts_are_current() -> None:
    # The charts and figures come from the template's policies through scripts/scaling_model.py.
    assert scaling_section() in (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), "run `make templates`"


def test_committed_mode_figures_are_current() -> None:
    # The modes' table, targets and charts: scripts/scaling_model.py on the template's policies.
    assert modes_section() in (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), "run `make templates`"


@pytest.fixture(scope="module")
def modes() -> dict[str, Any]:
    return {mode.name: (mode, results) for mode, _, results in mode_runs()}


def test_the_warm_pool_starts_the_first_job_within_the_target(modes: dict[str, Any]) -> None:
    # Issue 20's target: within 3 minutes of the message, against about 15 cold. Fails when the
    # model's warm start (or the scaling policies' reaction) drifts past it.
    _, warm = modes["warm"]
    _, cold = modes["cold"]
    for name, run in warm.items():
        assert run.first_job_minutes <= WARM_TARGET_MINUTES, name
        assert cold[name].first_job_minutes >= 10, name  # cold is the slow path the pool avoids


def test_spot_misses_its_cost_target_by_the_windows_licence(modes: dict[str, Any]) -> None:
    # Issue 20's target is 40% of On-Demand per 1,000 jobs; BENCHMARKS.md states it is not met and
    # why. This holds the statement to the model: the licence alone is over 40% of the On-Demand hour.
    import scaling_model as model

    _, spot = modes["spot"]
    _, cold = modes["cold"]
    prices = model.PRICES
    assert prices.licence / prices.on_demand > SPOT_TARGET_SHARE
    for name, run in spot.items():
        share = run.cost_per_1000_jobs() / cold[name].cost_per_1000_jobs()
        assert prices.spot / prices.on_demand - 0.01 <= share <= 1, name
        assert share > SPOT_TARGET_SHARE, name
    assert "**not met**" in modes_section() and "Windows licence" in modes_section()


def test_measured_phases_change_the_report_and_bad_ones_are_one_line() -> None:
    from bench import parse_phases

    assert parse_phases(["BootAgent=6", "PoolBootHook=2"]) == {"BootAgent": 6, "PoolBootHook": 2}
    for bad in ("BootTotal=5", "BootAgent=six", "BootAgent"):
        with pytest.raises(SystemExit, match="NAME=MINUTES"):
            parse_phases([bad])
    slower = modes_section({"BootAgent": 6})
    assert "| cold | BootAgent | 6 | measured (given) |" in slower and slower != modes_section()
