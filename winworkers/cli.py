"""Command line: winworkers build [--config FILE] [--out DIR], check PARENT CHILD, params,
lint [cfn-lint options] TEMPLATE..., deploy, preflight, upload, delete, status (watch), deployer-policy,
emulator, --version."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from winworkers import deploy, deployer_policy, emulator
from winworkers._version import __version__
from winworkers.build import build_template, check_pair
from winworkers.config import WorkersConfig, load_config
from winworkers.deploy.base import DeployError
from winworkers.deploy.inputs import check_bucket_name
from winworkers.docs import parameter_table
from winworkers.templates import deploy_note, write_templates


def main(argv: Sequence[str] | None = None) -> int:
    try:
        status = _main(argv)
        sys.stdout.flush()  # a closed pipe is met here, not at exit
        return status
    except KeyboardInterrupt:
        # A second Ctrl-C (while the emulator shuts down, or a prompt) ends quietly too.
        print("winworkers: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _pipe_closed()


def _pipe_closed() -> int:
    """The reader of our output went away (`| head`): end quietly, as Python's note on SIGPIPE
    does it: what is left to flush goes to devnull, exit status 1.
    https://docs.python.org/3/library/signal.html#note-on-sigpipe"""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def _main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["lint"]:
        # cfn-lint parses its own options: hand them over untouched (lazily: it is optional).
        from winworkers.lint import main as lint

        return lint(arguments[1:])
    args = _parser().parse_args(arguments)
    if "run" in args:
        status: int = args.run(args)
        return status
    if args.command == "check":
        return _check(args.parent, args.child, args.stack)
    try:
        config = load_config(args.config) if args.config else WorkersConfig()
    except (OSError, ValueError) as error:
        # One line, no traceback: the file is the user's to fix.
        print(f"winworkers: error: {args.config}: {error}", file=sys.stderr)
        return 2
    if args.command == "build":
        return _build(args.out, config)
    if args.command == "deployer-policy":
        return _deployer_policy(args, config)
    sys.stdout.write(parameter_table(config))
    return 0


def _parser() -> argparse.ArgumentParser:
    """Every command; deploy's and the emulator's from their own modules."""
    parser = argparse.ArgumentParser(prog="winworkers", description=__doc__)
    parser.add_argument("--version", action="version", version=f"winworkers {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_template_commands(commands)
    _add_deployer_policy(commands)
    commands.add_parser("lint", help="cfn-lint with winworkers' rules: lint [cfn-lint options] TEMPLATE...")
    deploy.add_commands(commands)
    emulator.add_command(commands)
    return parser


def _add_template_commands(commands: Any) -> None:
    """build, check and params: the templates and the parameter table."""
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
    params = commands.add_parser("params", help="print the stack parameters as a Markdown table")
    params.add_argument("--config", type=Path, help="a .toml or .json file of WorkersConfig fields")


def _add_deployer_policy(commands: Any) -> None:
    policy = commands.add_parser(
        "deployer-policy",
        help="print the least-privilege IAM policies (name -> document) a CI role needs to deploy, update and "
        "delete the feature",
        description=deployer_policy.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --template is deploy's option, never a prefix of --template-bucket
    )
    policy.add_argument("--config", type=Path, help="a .toml or .json file of WorkersConfig fields")
    policy.add_argument("--template-bucket", metavar="BUCKET", help="the bucket deploy uploads templates to")
    # deploy's --template, given here by mistake: refused in one line (_deployer_policy).
    policy.add_argument("--template", dest="mistaken_template", help=argparse.SUPPRESS)
    policy.add_argument("--nested", action="store_true", help="the feature is a nested stack of the parent")
    policy.add_argument(
        "--stack-name",
        help="limit the actions on existing resources to this stack's and its nested stacks' "
        "(docs/deploy.md: what it narrows)",
    )
    policy.add_argument(
        "--out", type=Path, metavar="DIR", help="write DIR/<name>.json per policy; print the commands that create them"
    )


def _build(out: Path, config: WorkersConfig) -> int:
    """Write the templates, each with how it can be deployed (its size)."""
    try:
        written = write_templates(out, config)
    except OSError as error:
        print(f"winworkers: error: {out}: {error.strerror or error}", file=sys.stderr)
        return 2
    for path in written:
        template = json.loads(path.read_text(encoding="utf-8"))
        size = len(json.dumps(template, separators=(",", ":"), ensure_ascii=False).encode())
        print(f"{path}: {deploy_note(size)}")
    return 0


def _deployer_policy(args: argparse.Namespace, config: WorkersConfig) -> int:
    """Print the managed policies as one JSON object, or write one file each and print how to create them."""
    if args.mistaken_template is not None:
        print(
            f"winworkers deployer-policy: --template {args.mistaken_template!r} is deploy's option:"
            " give the bucket deploy uploads to as --template-bucket BUCKET",
            file=sys.stderr,
        )
        return 2
    try:
        if args.template_bucket is not None:
            check_bucket_name(args.template_bucket, "--template-bucket")
        documents = deployer_policy.policy_documents(
            config,
            template=build_template(config).to_dict(),
            template_bucket=args.template_bucket,
            nested=args.nested,
            stack_name=args.stack_name,
        )
    except (ValueError, DeployError) as error:
        print(f"winworkers deployer-policy: {error}", file=sys.stderr)
        return 1
    if args.out is None:
        print(json.dumps(documents, indent=2))
        return 0
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        paths = {name: args.out / f"{name}.json" for name in documents}
        for name, path in paths.items():
            path.write_text(json.dumps(documents[name], indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        print(f"winworkers: error: {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"aws iam create-policy --policy-name {name} --policy-document {shlex.quote(f'file://{path}')}")
    return 0


def _check(parent_path: Path, child_path: Path, stack: str) -> int:
    try:
        parent, child = (json.loads(path.read_text(encoding="utf-8")) for path in (parent_path, child_path))
    except (OSError, ValueError) as error:
        print(f"winworkers: error: {error}", file=sys.stderr)
        return 2
    try:
        check_pair(parent, child, stack=stack)
    except ValueError as error:
        print(f"winworkers: {parent_path} and {child_path} are no pair: {error}", file=sys.stderr)
        return 1
    print(f"{parent_path} and {child_path} are a pair")
    return 0
