"""Rewrite the README's parameter table from the parameter declarations (run by `make templates`)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from winworkers import WorkersConfig
from winworkers.docs import parameter_table

BEGIN, END = "<!-- parameters:begin -->", "<!-- parameters:end -->"


def main() -> int:
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        print(f"{readme}: no {BEGIN} ... {END} block", file=sys.stderr)
        return 1
    table = f"{BEGIN}\n{parameter_table(WorkersConfig())}{END}"
    readme.write_text(pattern.sub(lambda _: table, text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
