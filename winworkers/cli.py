"""Command line: winworkers build [--config FILE] [--out DIR], winworkers check PARENT CHILD,
winworkers params, winworkers --version."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from winworkers._version import __version__
from winworkers.build import check_pair
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
    check = commands.add_parser(
        "check",
        help="check that a nested parent and a child were built from the same config",
        description="Exit 1, naming both fingerprints and the parent's config, unless CHILD is the "
        "template that PARENT's nested winworkers stack expects (see winworkers.check_pair).",
    )
    check.add_argument("parent", type=Path, help="the parent template (JSON)")
    check.add_argument("child", type=Path, help="the child template (JSON) to upload")
    check.add_argument("--stack", default="", help="the parent's stack resource, if it nests more than one")
    commands.add_parser("params", help="print the stack parameters as a Markdown table")
    args = parser.parse_args(argv)
    if args.command == "check":
        try:
            parent, child = (json.loads(path.read_text(encoding="utf-8")) for path in (args.parent, args.child))
        except (OSError, ValueError) as error:
            print(f"winworkers: error: {error}", file=sys.stderr)
            return 2
        try:
            check_pair(parent, child, stack=args.stack)
        except ValueError as error:
            print(f"winworkers: {args.parent} and {args.child} are no pair: {error}", file=sys.stderr)
            return 1
        print(f"{args.parent} and {args.child} are a pair")
    elif args.command == "build":
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
