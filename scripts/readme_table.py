"""Rewrite the generated blocks of the docs/ pages (and of README.md, should it hold one; run by
`make templates`): the parameter and output tables from the declarations, the examples' code from
examples/, the committed templates' sizes (as `make bench` measures them), worker.json's keys, what
the emulator creates of each resource type, which parameter changes refresh the workers, and the
lint rules' reference from the rules' own metadata.

    python scripts/readme_table.py            # every page of DOCUMENTS
    python scripts/readme_table.py FILE...    # only these (each must hold its required blocks)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from bench import FLEET_SIZES, fleet_size_bytes, template_figures

from winworkers import WorkersConfig
from winworkers.docs import (
    lint_rule_reference,
    output_table,
    parameter_table,
    refresh_table,
    worker_config_sample,
    worker_config_table,
)
from winworkers.emulator import coverage_table
from winworkers.network import endpoint_table
from winworkers.renderings import enabled_parameters
from winworkers.templates import FEATURE_BUDGET, S3_LIMIT

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = {".py": "python", ".toml": "toml"}
# Each document make templates rewrites, and the blocks it must hold (a block missing there is an error:
# a page that lost its markers would silently stop being refreshed).
DOCUMENTS = {
    "README.md": (),
    "docs/parameters.md": ("parameters",),
    "docs/embedding.md": (
        "examples/inline_parent.py",
        "examples/workers.toml",
        "examples/nested_parent.py",
        "examples/own_switch_parent.py",
        "outputs",
    ),
    "docs/updates.md": ("refreshes",),
    "docs/emulator.md": ("emulator-coverage",),
    "docs/operations.md": ("sizes",),
    "docs/worker-contract.md": ("worker-json",),
    "docs/lint-rules.md": ("lint-rules",),
    "docs/network.md": ("endpoints",),
}


def document_of(block: str) -> Path:
    """The page that holds a generated block (each block is in exactly one page of DOCUMENTS)."""
    (name,) = [name for name, required in DOCUMENTS.items() if block in required]
    return ROOT / name


def size_table() -> str:
    """The committed templates' sizes and counts, and the feature's at each fleet size."""
    rows = ["| Template | Minified bytes | Resources | Parameters | Limit |", "| --- | --- | --- | --- | --- |"]
    for path in sorted((ROOT / "templates").glob("*.json")):
        f = template_figures(path)
        limit = f"S3 {S3_LIMIT:,}, budget {FEATURE_BUDGET:,}" if path.name == "winworkers.json" else f"S3 {S3_LIMIT:,}"
        rows.append(f"| `{path.name}` | {f['minified']:,} | {f['resources']} | {f['parameters']} | {limit} |")
    sizes = ", ".join(f"{fleet_size_bytes(n):,} at {n:,}" for n in FLEET_SIZES)
    feature = template_figures(ROOT / "templates" / "winworkers.json")
    worst, code = feature["user_data"], feature["user_data_code"]
    notes = [
        f"- The feature's template by `max_fleet_size`: {sizes} (bytes, minified).",
        f"- UserData, worst case (longest stack name, region and URL suffix, every value of its config "
        f"line at its longest): {worst:,} bytes, base64; {worst * 3 // 4:,} raw, of EC2's 16 KB (raw). "
        f"The script alone: {code:,} bytes, base64.",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


def worker_config_block() -> str:
    """worker.json: its keys, from the code that writes it, and the file an instance gets."""
    config = WorkersConfig()
    sample = json.dumps(worker_config_sample(config, enabled_parameters(config)), indent=2)
    return (
        worker_config_table(config)
        + "\nFor example, with the default config in a stack named `platform`:\n\n"
        + (f"```json\n{sample}\n```\n")
    )


def _resources(path: Path) -> list[dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["Resources"]
    return list(resources.values())


def blocks() -> dict[str, str]:
    """Each generated block's name and content."""
    generated = {
        "parameters": parameter_table(WorkersConfig()),
        "outputs": output_table(WorkersConfig()),
        "refreshes": refresh_table(WorkersConfig()),
        "sizes": size_table(),
        "worker-json": worker_config_block(),
        "lint-rules": lint_rule_reference(),
        "endpoints": endpoint_table(),
        "emulator-coverage": coverage_table(
            r["Type"] for p in sorted((ROOT / "templates").glob("*.json")) for r in _resources(p)
        ),
    }
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


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or [str(ROOT / name) for name in DOCUMENTS]
    for name in names:
        path = Path(name)
        key = path.resolve().relative_to(ROOT).as_posix() if path.resolve().is_relative_to(ROOT) else name
        text = path.read_text(encoding="utf-8")
        for required in DOCUMENTS.get(key, ()):
            if f"<!-- {required}:begin -->" not in text:
                print(f"{path}: no <!-- {required}:begin --> ... <!-- {required}:end --> block", file=sys.stderr)
                return 1
        path.write_text(rewrite(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
