"""Print tests/test_image.py's BEFORE: the digest of each committed template resolved with the feature
on and ImageSource=aws-published (less the ImageSource parameters), for when a change to what the
default mode deploys is intended.

    python scripts/image_digests.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from resolved import digest, resolve  # noqa: E402  (the tests' resolver, one copy)

CASES = (
    ("parent-inline.json", "existing-subnets", "off"),
    ("parent-inline.json", "isolated-vpc", "off"),
    ("winworkers.json", "existing-subnets", "off"),
    ("winworkers.json", "existing-subnets", "stopped"),
    ("winworkers.json", "isolated-vpc", "off"),
    ("winworkers.json", "isolated-vpc", "stopped"),
)
NEW_PARAMETERS = (
    "WinImageSource",
    "WinFastLaunchSnapshots",
    "WinImageRevision",
    "WinBuildVolumeSize",
    "WinBuildEndpointsCidr",
)


def main() -> int:
    for name, mode, pool in CASES:
        template = json.loads((ROOT / "templates" / name).read_text())
        given = {
            "EnableWinTaskScriptService": "true",
            "WinNetworkMode": mode,
            "WinWarmPool": pool,
            "WinImageSource": "aws-published",
        }
        print(
            f'    ("{name}", "{mode}", "{pool}"): "{digest(resolve(template, given, drop_parameters=NEW_PARAMETERS))}",'
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
