"""Command line: ``winworkers build --out templates``, ``winworkers params``,
``winworkers deploy``/``delete`` (:mod:`winworkers.deploy`) and ``winworkers emulator``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from winworkers import deploy, emulator
from winworkers.config import WorkersConfig
from winworkers.docs import parameter_table
from winworkers.templates import write_templates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="winworkers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write every template as JSON")
    build.add_argument("--out", type=Path, default=Path("templates"), help="output folder (default: templates)")
    commands.add_parser("params", help="print the stack parameters as a Markdown table")
    deploy.add_commands(commands)
    emulator.add_command(commands)
    args = parser.parse_args(argv)
    if "run" in args:
        status: int = args.run(args)
        return status
    if args.command == "build":
        for path in write_templates(args.out):
            print(path)
    else:
        sys.stdout.write(parameter_table(WorkersConfig()))
    return 0
