"""winworkers deploy, upload, delete and status on the command line: a thin layer
over winworkers.deploy; every input is checked before any AWS call, and every
failure is one line on stderr with exit status 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from winworkers.deploy import confirm, preflight
from winworkers.deploy.base import Clients, DeployError
from winworkers.deploy.execute import (
    DEFAULT_TIMEOUT_MINUTES,
    delete,
    deploy,
    follow,
    preflight_stack,
    require_bucket,
    upload,
)
from winworkers.deploy.inputs import (
    Given,
    check_bucket_name,
    check_minutes,
    check_size,
    check_stack_name,
    parse_pairs,
    read_given,
    read_parameters_file,
    read_template,
)

CAPABILITY_CHOICES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND")


def add_commands(commands: Any, description: str) -> None:
    """winworkers deploy, preflight, upload, delete and status (and watch), on the CLI's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    _aws_command(
        commands,
        "deploy",
        run_deploy,
        _deploy_arguments,
        help="check the parameters, preview the change set, confirm, then create or update the stack",
        description=description,
        formatter_class=raw,
    )
    _aws_command(
        commands,
        "preflight",
        run_preflight,
        _input_arguments,
        help="look up what the stack will point at (queue, buckets, artifact, keys); create nothing",
        description=preflight.__doc__,
        formatter_class=raw,
    )
    _aws_command(
        commands,
        "upload",
        run_upload,
        _upload_arguments,
        help="put a template (a nested stack's child) into a bucket and print its https URL",
        description="Check that TEMPLATE is a template, put it into BUCKET under KEY and print the "
        "https:// URL to pass as the nested stack's TemplateURL parameter (e.g. WinTemplateUrl).",
    )
    _aws_command(
        commands,
        "delete",
        run_delete,
        _delete_arguments,
        help="delete a stack (asks first; --yes without a terminal) and wait, streaming its events",
        description="Say what the deletion removes and what stays (DeletionPolicy Retain: the log groups), "
        "ask (without a terminal: needs --yes), delete and follow to the end.",
    )
    for name in ("status", "watch"):
        _aws_command(
            commands,
            name,
            run_status,
            _status_arguments,
            help="show a stack's status; attach to an operation under way and follow it to its end",
            description="Print the stack's status and its groups' latest instance refresh. If an operation is "
            "under way (after Ctrl-C, or from another terminal), print its events so far, then follow its "
            "events, its nested stacks' and the refresh's progress to the end. Exit 1 if it failed or rolled back.",
        )


def _aws_command(
    commands: Any,
    name: str,
    run: Callable[[argparse.Namespace], int],
    arguments: Callable[[argparse.ArgumentParser], None],
    **parser_options: Any,
) -> None:
    """A command that talks to AWS: its own arguments, then the connection's; run runs it."""
    parser = commands.add_parser(name, **parser_options)
    arguments(parser)
    _connection_arguments(parser)
    parser.set_defaults(run=run)


def _deploy_arguments(parser: argparse.ArgumentParser) -> None:
    _input_arguments(parser)
    parser.add_argument(
        "--dry-run", "--no-execute", action="store_true", help="print the change set and leave it unexecuted"
    )
    parser.add_argument(
        "--skip-preflight",
        action="store_true",
        help="do not look up the queue, buckets, artifact and keys the stack will point at",
    )
    parser.add_argument(
        "--yes", "-y", action="store_true", help="execute a change set that removes, replaces or refreshes, unasked"
    )
    parser.add_argument("--wait-for-refresh", action="store_true", help="wait for an instance refresh under way")
    _wait_argument(parser, "then follow an instance refresh the update starts to its end")
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--template-bucket", metavar="BUCKET", help="for a template over 51,200 bytes")
    parser.add_argument(
        "--role-arn", metavar="ARN", help="a service role CloudFormation acts with (outlasts a session)"
    )
    parser.add_argument("--disable-rollback", action="store_true", help="keep what was done when the update fails")
    parser.add_argument(
        "--capabilities",
        nargs="+",
        default=[],
        choices=CAPABILITY_CHOICES,
        metavar="CAPABILITY",
        help="added to CAPABILITY_IAM and CAPABILITY_NAMED_IAM (CAPABILITY_AUTO_EXPAND is added for a Transform)",
    )


def _upload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", type=Path)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", help="default: the template's file name")
    parser.add_argument("--create-bucket", action="store_true", help="create BUCKET first if it does not exist")


def _delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    parser.add_argument("--role-arn", metavar="ARN", help="a service role CloudFormation acts with")
    parser.add_argument("--wait-for-refresh", action="store_true", help="wait for an instance refresh under way")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", required=True)
    _wait_argument(parser, "then follow an instance refresh under way to its end")


def _input_arguments(parser: argparse.ArgumentParser) -> None:
    """The stack, the template and the values: deploy's and preflight's."""
    parser.add_argument("--stack-name", required=True)
    parser.add_argument(
        "--template",
        type=Path,
        help="a JSON or YAML template (default: the feature's template, built here from --config)",
    )
    parser.add_argument("--config", type=Path, help="without --template: a .toml or .json file of WorkersConfig fields")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="overrides the file")
    parser.add_argument(
        "--parameters-file", type=Path, metavar="FILE", help="JSON: CloudFormation's list, or an object"
    )
    parser.add_argument(
        "--reset-to-defaults",
        action="store_true",
        help="parameters not given take their defaults (each change named), not their previous values",
    )


def _wait_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"{what}: exit 1 unless it ends Successful (default: --wait; --no-wait ends with the stack)",
    )


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's")
    parser.add_argument("--profile", help="a profile of the AWS config files")
    parser.add_argument("--endpoint-url", metavar="URL", help="an emulator, e.g. http://127.0.0.1:5000")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_MINUTES,
        metavar="MINUTES",
        help="stop waiting after this long (default %(default)g); the stack is not cancelled",
    )
    parser.add_argument("--poll-seconds", type=float, default=5, help=argparse.SUPPRESS)


def _connect(args: argparse.Namespace) -> Clients:
    return Clients.connect(args.region, args.profile, args.endpoint_url)


def _common_checks(args: argparse.Namespace) -> None:
    if getattr(args, "stack_name", None) is not None:
        check_stack_name(args.stack_name)
    check_minutes(args.timeout)


def run_deploy(args: argparse.Namespace) -> int:
    def go() -> None:
        # Everything the operator typed is checked before connecting: a bad value needs no credentials.
        _common_checks(args)
        if args.template_bucket is not None:
            check_bucket_name(args.template_bucket, "--template-bucket")
        given = _given(args)
        tags = parse_pairs(args.tag, "--tag")
        check_size(given.template.body, args.template_bucket)
        deploy(
            _connect(args),
            args.stack_name,
            given,
            given.values,
            template_bucket=args.template_bucket,
            tags=tags,
            **_following(args),
            reset_to_defaults=args.reset_to_defaults,
            dry_run=args.dry_run,
            yes=args.yes,
            ask=confirm.terminal(),
            role_arn=args.role_arn,
            disable_rollback=args.disable_rollback,
            capabilities=tuple(args.capabilities),
            wait_for_refresh=args.wait_for_refresh,
            skip_preflight=args.skip_preflight,
            wait=args.wait,
        )

    return _one_line_errors("deploy", go, args.stack_name)


def run_preflight(args: argparse.Namespace) -> int:
    def go() -> None:
        _common_checks(args)
        given = _given(args)
        preflight_stack(
            _connect(args), args.stack_name, given, given.values, reset_to_defaults=args.reset_to_defaults, echo=_echo
        )

    return _one_line_errors("preflight", go)


def _given(args: argparse.Namespace) -> Given:
    """The template (--template, else built from --config) and the values given, checked on their own
    (deploy.inputs.read_given): deploy and preflight go on from it."""
    if args.template and args.config:
        raise DeployError("--config builds the template: give --template or --config, not both")
    values = read_parameters_file(args.parameters_file) if args.parameters_file else {}
    values.update(parse_pairs(args.parameter, "--parameter"))
    return read_given(args.template if args.template else _built(args.config), values)


def _built(config_path: Path | None) -> dict[str, Any]:
    """The feature's template for --config (or the default config), built in-process:
    an installed wheel has no templates/ folder."""
    from winworkers.build import build_template
    from winworkers.config import WorkersConfig, load_config

    try:
        config = load_config(config_path) if config_path else WorkersConfig()
    except (OSError, ValueError) as error:
        raise DeployError(f"{config_path}: {error}") from error
    built: dict[str, Any] = build_template(config).to_dict()
    return built


def run_upload(args: argparse.Namespace) -> int:
    def go() -> None:
        check_minutes(args.timeout)
        check_bucket_name(args.bucket, "--bucket")
        body = read_template(args.template).body
        clients = _connect(args)
        if args.create_bucket:
            _create_bucket(clients, args.bucket)
        else:
            require_bucket(clients, args.bucket, "--bucket")
        print(upload(clients, body, args.bucket, args.key or args.template.name))

    return _one_line_errors("upload", go)


def _create_bucket(clients: Clients, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        clients.s3.head_bucket(Bucket=bucket)
        return
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    # us-east-1 takes no LocationConstraint (CreateBucket API reference).
    where = (
        {} if clients.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    )
    clients.s3.create_bucket(Bucket=bucket, **where)


def run_delete(args: argparse.Namespace) -> int:
    def go() -> None:
        _common_checks(args)
        deleted = delete(
            _connect(args),
            args.stack_name,
            **_following(args),
            yes=args.yes,
            ask=confirm.terminal(),
            role_arn=args.role_arn,
            wait_for_refresh=args.wait_for_refresh,
        )
        if not deleted:
            raise DeployError(f"stack {args.stack_name} does not exist: nothing to delete")

    return _one_line_errors("delete", go, args.stack_name)


def run_status(args: argparse.Namespace) -> int:
    def go() -> None:
        _common_checks(args)
        follow(
            _connect(args),
            args.stack_name,
            **_following(args),
            wait=args.wait,
        )

    return _one_line_errors(args.command, go)


def _following(args: argparse.Namespace) -> dict[str, Any]:
    """How a command follows the stack: how long, how often, where each line goes."""
    return {"timeout_minutes": args.timeout, "poll_seconds": args.poll_seconds, "echo": _echo}


def _echo(line: str) -> None:
    print(line, flush=True)


def _one_line_errors(command: str, go: Callable[[], None], stack: str = "NAME") -> int:
    """Every failure is one line on stderr and exit status 1, never a traceback."""
    try:
        go()
    except KeyboardInterrupt:
        print(
            f"winworkers {command}: interrupted (a stack operation already started goes on: "
            f"follow it with winworkers status --stack-name {stack})",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        raise  # the reader went away: winworkers.cli.main ends quietly
    except Exception as error:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError, ...
        message = " ".join(str(error).split())
        known = isinstance(error, DeployError | OSError) or type(error).__module__.startswith("botocore")
        print(f"winworkers {command}: {message if known else f'{type(error).__name__}: {message}'}", file=sys.stderr)
        return 1
    return 0
