"""winworkers.functions: a Lambda's inline source, with what it shares inlined at build time."""

from __future__ import annotations

from pathlib import Path

import pytest

from winworkers.functions import lambda_source


def test_a_marked_import_becomes_the_definition_and_nothing_else_changes(tmp_path: Path) -> None:
    (tmp_path / "shared.py").write_text('"""Doc."""\n\nX = 1\n\n\ndef judge(a: int) -> bool:\n    return a > X\n')
    lambda_text = "import os\n\n\nfrom winworkers.shared import judge  # noqa: E402  # inlined at build\n\n\nY = 2\n"
    (tmp_path / "index.py").write_text(lambda_text)
    assert lambda_source(tmp_path / "index.py") == (
        "import os\n\n\ndef judge(a: int) -> bool:\n    return a > X\n\n\nY = 2\n"
    )
    # An ordinary import, or one without the mark, stays as it is.
    plain = "from winworkers.shared import judge\n"
    (tmp_path / "plain.py").write_text(plain)
    assert lambda_source(tmp_path / "plain.py") == plain


def test_a_marked_import_of_nothing_fails_the_build(tmp_path: Path) -> None:
    (tmp_path / "shared.py").write_text("X = 1\n")
    (tmp_path / "index.py").write_text("from winworkers.shared import judge  # noqa: E402  # inlined at build\n")
    with pytest.raises(KeyError, match=r"shared\.py defines no judge"):
        lambda_source(tmp_path / "index.py")
