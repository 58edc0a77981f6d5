"""The server (winworkers emulator, local_aws): moto's threaded server bound here, the patches applied
while it runs, the example platform (19.), reset().
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from winworkers.emulator import truth
from winworkers.emulator.cloudformation import (
    _compared_from_s3_too,
    _created_if_conditions_hold,
    _creation_events,
    _defaults_kept_as_values,
    _deletion_events,
    _events_in_pages,
    _events_serialized_once,
    _following_changed_references,
    _in_progress_while_applied,
    _kept_when_not_updatable,
    _nested_in_place,
    _numbers_compared_as_given,
    _outputs_evaluated_in_the_call,
    _parameters_with_defaults,
    _previous_values_as_given,
    _properties_absent_as_empty,
    _recording_retained,
    _remembering_stack,
    _removed_made_anew,
    _replacements_cascading,
    _retaining,
    _rolling_back,
    _update_events,
    _update_rolling_back,
    _updated_if_conditions_hold,
    _verified,
    _verified_deletion,
    _verified_direct,
    _with_fn_cidr,
    _with_outputs_and_skips,
)
from winworkers.emulator.common import _moto_update
from winworkers.emulator.custom_resources import (
    _create_custom,
    _custom_resources_first,
    _delete_custom,
    _endpoints,
    _received_response,
    _responses,
    _update_custom,
    forget_clients,
)
from winworkers.emulator.services import (
    _cancel_instance_refresh,
    _describe_instance_refreshes,
    _endpoint_modified_in_place,
    _keeping_its_warm_pool,
    _start_instance_refresh,
    _with_emulated_types,
    _with_vpc_id,
)

DEFAULT_PORT = 5000


REGION = "us-east-1"


ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
"""What a client needs besides the endpoint: moto takes any credentials and region."""


INSTALL = "pip install 'winworkers[emulator]'"


_lock = threading.Lock()


_users = 0


_undo: contextlib.ExitStack | None = None


class EmulatorError(RuntimeError):
    """The emulator could not start; the message says why."""


@contextlib.contextmanager
def local_aws(port: int = 0, host: str = "127.0.0.1", quiet: bool = True) -> Iterator[str]:
    """Run moto's server, patched as the module docstring says, on host:port
    (0: any free port) and yield its endpoint URL. Its state is reset on exit."""
    if not 0 <= port <= 65535:
        raise EmulatorError(f"--port {port} is not allowed: 0 (any free port) to 65535")
    try:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as error:
        raise EmulatorError(f"the emulator needs moto ({error}): {INSTALL}") from error

    class Server(ThreadedMotoServer):
        # moto binds in its thread, where a port in use would leave start() waiting forever, and
        # werkzeug answers a failed bind with two lines on stderr and sys.exit: bind here instead.
        def start(self) -> None:
            family = socket.AF_INET6 if ":" in self._ip_address else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as listener:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    listener.bind((self._ip_address, self._port))
                    listener.listen()
                except OSError as error:
                    raise EmulatorError(
                        f"cannot listen on {self._ip_address}:{self._port}: {error.strerror or error}"
                    ) from error
                app = DomainDispatcherApplication(create_backend_app)
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler, fd=listener.fileno()
                )
            self._server_ready_event.set()
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()

    server = Server(ip_address=host, port=port, verbose=False)
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    if quiet:
        werkzeug_log.setLevel(logging.ERROR)
    _patch_moto()
    try:
        server.start()
        bound_host, bound_port = server.get_host_and_port()
        url = f"http://{bound_host}:{bound_port}"
        _example_platform(url)
        _endpoints.append(url)
        try:
            yield url
        finally:
            _endpoints.remove(url)
            forget_clients(url)
            with contextlib.suppress(OSError):
                urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
            server.stop()
    finally:
        _unpatch_moto()
        werkzeug_log.setLevel(level)


def _example_platform(url: str) -> None:
    """The example platform's buckets, artifact and queue (19.), in REGION."""
    import boto3

    from winworkers.renderings import EXAMPLE_INPUTS

    session = boto3.session.Session(
        ENVIRONMENT["AWS_ACCESS_KEY_ID"], ENVIRONMENT["AWS_SECRET_ACCESS_KEY"], region_name=REGION
    )
    s3, sqs = (session.client(name, endpoint_url=url) for name in ("s3", "sqs"))
    for bucket in (EXAMPLE_INPUTS["DataBucket"], EXAMPLE_INPUTS["ArtifactBucket"]):
        s3.create_bucket(Bucket=bucket)
    # An empty zip: its end-of-central-directory record alone.
    s3.put_object(
        Bucket=EXAMPLE_INPUTS["ArtifactBucket"], Key=EXAMPLE_INPUTS["ArtifactKey"], Body=b"PK\x05\x06" + bytes(18)
    )
    sqs.create_queue(QueueName=EXAMPLE_INPUTS["WorkQueueArn"].rsplit(":", 1)[1])


def _patch_moto() -> None:
    global _users, _undo
    with _lock:
        _users += 1
        if _users > 1:
            return
        from unittest import mock

        from moto.cloudformation import models
        from moto.moto_api._internal.models import MotoAPIBackend

        undo = contextlib.ExitStack()
        for owner, name, wrap in _moto_patches():
            undo.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        undo.enter_context(mock.patch.object(MotoAPIBackend, "reset", _forgetting_too(MotoAPIBackend.reset)))
        for owner, name, new in _refresh_patches():
            undo.enter_context(mock.patch.object(owner, name, new, create=True))
        # Last, so outermost: the invariants judge the operation's end state (21.).
        backend = models.CloudFormationBackend
        undo.enter_context(mock.patch.object(backend, "execute_change_set", _verified(backend.execute_change_set)))
        undo.enter_context(mock.patch.object(backend, "delete_stack", _verified_deletion(backend.delete_stack)))
        for name, failed in (("create_stack", "CREATE_FAILED"), ("update_stack", "UPDATE_ROLLBACK_FAILED")):
            undo.enter_context(mock.patch.object(backend, name, _verified_direct(getattr(backend, name), failed)))
        _undo = undo


def _moto_patches() -> list[tuple[Any, str, Callable[[Any], Any]]]:
    """What _patch_moto wraps, in order (owner, attribute, wrapper of the attribute's own)."""
    from moto import backends
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.cloudformation import models, parsing
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.serialize import ResponseSerializer
    from moto.ec2.models.security_groups import SecurityGroup
    from moto.ec2.models.vpcs import VPCEndPoint

    return [
        (parsing, "clean_json", _with_fn_cidr),
        (SecurityGroup, "get_cfn_attribute", _with_vpc_id),
        (models.Stack, "_create_resource_map", _remembering_stack),
        (parsing, "parse_and_create_resource", _creation_events),
        (parsing, "parse_and_update_resource", _kept_when_not_updatable),
        (parsing, "parse_and_update_resource", _update_events),
        (parsing.ResourceMap, "_delete_resource", _deletion_events),
        (models.CloudFormationBackend, "execute_change_set", _rolling_back),
        (parsing.ResourceMap, "create", _created_if_conditions_hold),
        (parsing.ResourceMap, "update", _updated_if_conditions_hold),
        (parsing.ResourceMap, "build_resource_diff", _properties_absent_as_empty),
        *_truth_patches(parsing, models),
        (models.Stack, "stack_parameters", _previous_values_as_given),
        (parsing.ResourceMap, "load_parameters", _defaults_kept_as_values),
        (CloudFormationResponse, "_validate_different_update", _compared_from_s3_too),
        (CloudFormationResponse, "describe_stack_events", _events_in_pages),
        (ResponseSerializer, "_serialize_type_structure", _events_serialized_once),
        (VPCEndPoint, "update_from_cloudformation_json", _endpoint_modified_in_place),
        (parsing, "parse_condition", _numbers_compared_as_given),
        (FakeAutoScalingGroup, "update_from_cloudformation_json", _keeping_its_warm_pool),
        (parsing.ResourceMap, "__getitem__", truth.guarded_getitem),
        (parsing.ResourceMap, "__getitem__", _removed_made_anew),
        (models.Stack, "stack_resources", truth.listed_resources),
        (models.Stack, "outputs", truth.frozen_outputs),
        (models.Stack, "delete", truth.deleting),
        (models.Stack, "has_parameters", _parameters_with_defaults),
        (models.Stack, "update_from_cloudformation_json", _nested_in_place),
        (models.CloudFormationBackend, "describe_stacks", _outputs_evaluated_in_the_call),
        (backends, "list_of_moto_modules", _listed_once),
    ]


def _listed_once(list_of_moto_modules: Callable[[], Any]) -> Callable[[], tuple[str, ...]]:
    # moto's server lists its package's folders (a directory listing and a stat per folder) at each
    # request, to find the service a host names: its installed folders, the same while it runs.
    names = tuple(list_of_moto_modules())
    return lambda: names


def _unpatch_moto() -> None:
    global _users, _undo
    with _lock:
        _users -= 1
        if _users == 0 and _undo is not None:
            _undo.close()
            _undo = None


def _forgetting_too(reset_moto: Any) -> Any:
    # moto's POST /moto-api/reset (a user's reset of `winworkers emulator`, and local_aws's exit) clears
    # moto's resources; the emulator's bookkeeping goes with them, or the next stack that makes a
    # resource of the same name was judged an orphan of a stack moto no longer has.
    def run(backend: Any) -> None:
        reset_moto(backend)
        truth.reset()
        _responses.clear()

    return run


def reset(endpoint_url: str) -> None:
    """Clear the emulator at endpoint_url: moto's state (its reset API) and with it the emulator's own
    bookkeeping (what the stacks made, custom resource answers), then the example platform again (19.)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST"), timeout=10)
    truth.reset()  # what the patched reset does; here too, for a reset made after the patches are undone
    _responses.clear()
    _example_platform(endpoint_url)


def _refresh_patches() -> list[tuple[Any, str, Any]]:
    """(owner, attribute, replacement): set for as long as the emulator runs, created if missing."""
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.cloudformation import models, parsing
    from moto.cloudformation.custom_model import CustomModel
    from moto.cloudformation.responses import CloudFormationResponse

    return [
        (AutoScalingResponse, "start_instance_refresh", _start_instance_refresh),
        (AutoScalingResponse, "describe_instance_refreshes", _describe_instance_refreshes),
        (AutoScalingResponse, "cancel_instance_refresh", _cancel_instance_refresh),
        (models.ChangeSet, "apply", _in_progress_while_applied(models.ChangeSet.apply)),
        (
            models.CloudFormationBackend,
            "execute_change_set",
            _update_rolling_back(models.CloudFormationBackend.execute_change_set),
        ),
        (
            parsing.ResourceMap,
            "update",
            _replacements_cascading(_following_changed_references(parsing.ResourceMap.update)),
        ),
        (parsing.ResourceMap, "delete", _custom_resources_first(parsing.ResourceMap.delete)),
        (CloudFormationResponse, "process_cfn_response", _received_response),
        (CustomModel, "create_from_cloudformation_json", classmethod(_create_custom)),
        (CustomModel, "update_from_cloudformation_json", _moto_update(_update_custom)),
        (CustomModel, "delete", _delete_custom),
    ]


def _truth_patches(parsing: Any, models: Any) -> list[tuple[Any, str, Callable[[Any], Any]]]:
    """The patches that keep the emulator from reporting what it did not do.

    _retaining wraps _delete_resource after _deletion_events, so a retained
    resource gets DELETE_SKIPPED and no DELETE_COMPLETE."""
    return [
        (parsing, "resource_class_from_type", _with_emulated_types),
        (parsing.ResourceMap, "_delete_resource", _retaining),
        (parsing.ResourceMap, "delete", _recording_retained),
        (models.CloudFormationBackend, "execute_change_set", _with_outputs_and_skips),
    ]


def add_command(commands: Any) -> None:
    """winworkers emulator, on the CLI's subparsers."""
    parser = commands.add_parser(
        "emulator",
        help="run a local AWS emulator (moto, patched) in the foreground",
        description=f"Run a local AWS emulator to deploy to ({INSTALL}). Ctrl-C stops it; its state is lost.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free port")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, wait: Callable[[], None] | None = None) -> int:
    """Serve until interrupted (or until wait returns). A failure is one line on stderr."""
    try:
        with local_aws(port=args.port, host=args.host, quiet=not args.verbose) as url:
            exports = " ".join(f"{k}={v}" for k, v in ENVIRONMENT.items())
            print(f"Local AWS emulator at {url}", flush=True)
            print(f"In another terminal:\n  export {exports}", flush=True)
            print(f"  winworkers deploy --endpoint-url {url} ...", flush=True)
            print("Ctrl-C stops it (and forgets everything).", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                (wait or threading.Event().wait)()
    except EmulatorError as error:
        print(f"winworkers emulator: {error}", file=sys.stderr)
        return 1
    return 0
