"""The first file after an idle night, in seconds (scripts/scaling_model.py, first_file_*): the
percentiles are the sum's, the wake paths are never longer than the alarm path, and
BENCHMARKS.md holds the current table with its target stated."""

from __future__ import annotations

import itertools

import pytest
import scaling_model as model
from bench import first_file_section

from conftest import ROOT


def test_one_uniform_minute_has_its_own_percentiles() -> None:
    assert model.percentiles([model.Lag("minute", 0, 60, "")]) == (30, 57)
    assert model.percentiles([model.Lag("fixed", 7, 7, "")]) == (7, 7)


def test_the_percentiles_are_those_of_the_sum_counted_by_hand() -> None:
    lags = [model.Lag("a", 0, 9, ""), model.Lag("b", 5, 12, ""), model.Lag("c", 0, 3, "")]
    sums = sorted(sum(v) for v in itertools.product(*(range(lag.low, lag.high + 1) for lag in lags)))
    by_hand = tuple(sums[next(i for i in range(len(sums)) if (i + 1) / len(sums) >= p - 1e-12)] for p in (0.5, 0.95))
    assert model.percentiles(lags) == by_hand


def test_a_bad_step_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^backwards: low 9 and high 3"):
        model.percentiles([model.Lag("backwards", 9, 3, "")])


@pytest.mark.parametrize("mode", sorted(model.LAUNCH))
def test_the_wake_is_never_slower_than_the_alarm_and_calling_it_beats_the_schedule(mode: str) -> None:
    paths = {name: model.percentiles(lags) for name, lags in model.first_file_paths(mode).items()}
    alarm, scheduled, called = paths["alarm (no wake)"], paths["wake, every minute"], paths["wake, called on enqueue"]
    assert called < scheduled < alarm
    # The alarm path's steps add at least the SQS minute, ingestion and an evaluation over the called wake's.
    assert alarm[0] - called[0] >= 60


def test_every_step_has_a_source_and_the_alarm_path_cites_the_register() -> None:
    for lag in [*model.ALARM_PATH, *model.WAKE_SCHEDULED, *model.LAUNCH.values(), model.POLL]:
        assert lag.source and lag.low <= lag.high
    assert "register row 53" in model.SQS_PERIOD.source and "216" in model.ALARM_EVALUATION.source
    assert "estimate" in model.INGESTION.source  # not AWS's text, and said so


def test_benchmarks_holds_the_current_table_and_states_the_target() -> None:
    section = first_file_section()
    assert section in (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8"), "run `make bench`"
    p50, p95 = model.percentiles(model.first_file_paths("warm pool")["wake, called on enqueue"])
    goal = model.FIRST_FILE_TARGET
    verdict = "**met**" if p50 <= goal[0] and p95 <= goal[1] else "**not met**"
    assert f"{verdict}, {p50} s and {p95} s" in section
    if verdict == "**not met**":
        assert "The gap is the pool start" in section
    for mode in model.LAUNCH:
        assert f"| {mode} | alarm (no wake) |" in section and f"| {mode} | wake, called on enqueue |" in section
