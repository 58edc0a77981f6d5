"""What the scripts that write a module of winworkers share (scripts/sdk_hosts.py,
scripts/handler_permissions.py): the module written as ruff formats it, so `make templates` leaves
no diff for `make lint` to find."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_module(target: Path, text: str) -> int:
    """Write text to target, format it with ruff and print its path from the repository root."""
    target.write_text(text, encoding="utf-8")
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(target)], check=True)
    print(target.relative_to(ROOT))
    return 0
