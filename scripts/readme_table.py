"""Rewrite the README's generated blocks (run by `make templates`): the parameter and
output tables from the declarations, and the examples' code from examples/."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from winworkers import WorkersConfig
from winworkers.docs import output_table, parameter_table

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = {".py": "python", ".toml": "toml"}


def blocks() -> dict[str, str]:
    """Each generated block's name and content."""
    generated = {"parameters": parameter_table(WorkersConfig()), "outputs": output_table(WorkersConfig())}
    for path in sorted((ROOT / "examples").iterdir()):
        if path.suffix in LANGUAGES:
            code = path.read_text(encoding="utf-8")
            generated[f"examples/{path.name}"] = f"```{LANGUAGES[path.suffix]}\n{code}```\n"
    return generated


def rewrite(text: str) -> str:
    """text with every generated block that it marks (<!-- NAME:begin --> ... <!-- NAME:end -->) refreshed."""
    for name, content in blocks().items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        block = f"{begin}\n{content}{end}"
        text = pattern.sub(lambda _: block, text)  # noqa: B023 (used at once, inside this iteration)
    return text


def main() -> int:
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    text = readme.read_text(encoding="utf-8")
    for required in ("parameters", "outputs"):
        if f"<!-- {required}:begin -->" not in text:
            print(f"{readme}: no <!-- {required}:begin --> ... <!-- {required}:end --> block", file=sys.stderr)
            return 1
    readme.write_text(rewrite(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
