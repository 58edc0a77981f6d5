"""Command line: winworkers build [--config FILE] [--out DIR], winworkers params, winworkers --version."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from winworkers._version import __version__
from winworkers.config import WorkersConfig, load_config
from winworkers.docs import parameter_table
from winworkers.templates import write_templates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="winworkers", description=__doc__)
    parser.add_argument("--version", action="version", version=f"winworkers {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build",
        help="write the feature's template (the child to upload for nested_stack) as JSON",
        description="Write winworkers.json for a WorkersConfig: the feature's template, and the child "
        "that nested_stack(parent, url, config) expects at url when built with the same config.",
    )
    build.add_argument(
        "--config",
        type=Path,
        help="a .toml or .json file of WorkersConfig fields (default: the default config)",
    )
    build.add_argument("--out", type=Path, default=Path("templates"), help="output folder (default: templates)")
    commands.add_parser("params", help="print the stack parameters as a Markdown table")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            config = load_config(args.config) if args.config else WorkersConfig()
        except (OSError, ValueError) as error:
            # One line, no traceback: the file is the user's to fix.
            print(f"winworkers: error: {args.config}: {error}", file=sys.stderr)
            return 2
        for path in write_templates(args.out, config):
            print(path)
    else:
        sys.stdout.write(parameter_table(WorkersConfig()))
    return 0
