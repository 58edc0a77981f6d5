"""Command line: ``winworkers build``, ``params``, ``lint``, ``deploy``/``delete`` and ``emulator``."""

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
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["lint"]:
        # cfn-lint parses its own options: hand them over untouched (lazily: it is optional).
        from winworkers.lint import main as lint

        return lint(arguments[1:])
    parser = argparse.ArgumentParser(prog="winworkers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write every template as JSON")
    build.add_argument("--out", type=Path, default=Path("templates"), help="output folder (default: templates)")
    commands.add_parser("params", help="print the stack parameters as a Markdown table")
    commands.add_parser("lint", help="cfn-lint with winworkers' rules: lint [cfn-lint options] TEMPLATE...")
    deploy.add_commands(commands)
    emulator.add_command(commands)
    args = parser.parse_args(arguments)
    if "run" in args:
        status: int = args.run(args)
        return status
    if args.command == "build":
        for path in write_templates(args.out):
            print(path)
    else:
        sys.stdout.write(parameter_table(WorkersConfig()))
    return 0
