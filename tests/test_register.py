"""docs/aws-behaviours.md, the register of AWS behaviours the design relies on, stays
honest: every row cites its source and names a check that exists."""

from __future__ import annotations

import re

from conftest import ROOT

REGISTER = ROOT / "docs" / "aws-behaviours.md"
RULES = ROOT / "winworkers" / "lint" / "rules"


def _rows() -> list[list[str]]:
    rows = []
    for line in REGISTER.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith(("| # ", "| --- ")):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _pins(cell: str) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """(test file, test name) pairs, test files named alone, and lint rule ids in a Pinned-by cell."""
    tests, files, rules = [], [], re.findall(r"\b[EW]9\d{3}\b", cell)
    last = ""
    for path, name in re.findall(r"(tests/[\w/]+\.py)?(?:::([A-Za-z_]\w*))?", cell):
        if path:
            last = path
            if not name:
                files.append(path)
        if name and last:
            tests.append((last, name))
    return tests, files, rules


def test_the_register_has_rows_numbered_in_order() -> None:
    rows = _rows()
    assert len(rows) > 50
    assert [row[0] for row in rows] == [str(n) for n in range(1, len(rows) + 1)]


def test_every_row_has_a_source_and_a_place_in_the_code() -> None:
    for row in _rows():
        assert len(row) == 5, row
        number, behaviour, source, handled, _ = row
        assert behaviour and handled, number
        assert re.search(r"https://\S+", source), f"row {number} has no source URL"


def test_every_pin_names_a_check_that_exists() -> None:
    rule_ids = {m for path in RULES.glob("*.py") for m in re.findall(r'id = "([EW]9\d{3})"', path.read_text())}
    for number, *_, pinned in _rows():
        tests, files, rules = _pins(pinned)
        assert tests or files or rules, f"row {number} names no test or lint rule"
        for path, name in tests:
            text = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^(def|class) {name}\b|^{name} = ", text, re.M), f"row {number}: {path}::{name}"
        for path in files:
            assert (ROOT / path).is_file(), f"row {number}: {path}"
        assert set(rules) <= rule_ids, f"row {number}: {set(rules) - rule_ids}"


def test_the_pin_parser_reads_each_form() -> None:
    cell = "`tests/test_a.py::test_x`, `::test_y`, rule E9101 + `tests/test_b.py`"
    tests = [("tests/test_a.py", "test_x"), ("tests/test_a.py", "test_y")]
    assert _pins(cell) == (tests, ["tests/test_b.py"], ["E9101"])
