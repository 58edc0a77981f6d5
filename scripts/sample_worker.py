"""Build the sample worker (examples/sample-worker/) into the zip a fleet's ArtifactKey names
(run by `make sample-worker`): install.ps1 at the root, as cfn-init expects it.

The zip is deterministic: the same files give the same bytes (fixed order, timestamps and
permissions, stored uncompressed), so an upload changes only when a script does.

    python scripts/sample_worker.py [OUT.zip]   # default dist/sample-worker.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "examples" / "sample-worker"
# The earliest time a zip can record; any fixed value would do.
EPOCH = (1980, 1, 1, 0, 0, 0)


def scripts() -> list[Path]:
    """The files the zip holds: every PowerShell script of the sample, by name."""
    return sorted(SOURCE.glob("*.ps1"))


def build(out: Path) -> Path:
    """Write the zip to out and return it."""
    names = [path.name for path in scripts()]
    if "install.ps1" not in names:
        raise ValueError(f"{SOURCE} has no install.ps1: cfn-init runs install.ps1 from the zip's root")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for path in scripts():
            info = zipfile.ZipInfo(path.name, date_time=EPOCH)
            # Stored, not deflated: deflate's output may change with the zlib version.
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return out


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist" / "sample-worker.zip"
    print(build(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
