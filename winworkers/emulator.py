"""A local AWS to deploy to: moto's server (pip install 'winworkers[emulator]'),
with the gaps winworkers' templates fall into filled in the way CloudFormation behaves.

    with local_aws() as endpoint_url:   # http://127.0.0.1:<free port>
        ...  # boto3 clients with endpoint_url=..., any credentials, any region

winworkers emulator [--port N] runs the same thing in the foreground and
prints the endpoint and the environment to use with it. The tests deploy through
exactly this, so what the README shows is what they check.

What is patched in moto 5.2.5 (in-process, for as long as the context is open):

1. Fn::Cidr is evaluated (moto leaves it as is, so the Fn::Select around
   it fails): the first count blocks of /(32 - cidrBits) in ipBlock.
2. {"Ref": "AWS::NoValue"} inside a list is removed, as CloudFormation removes
   it (moto keeps a None item).
3. Fn::GetAtt [<security group>, VpcId] returns the group's VPC (moto knows
   only GroupId).
4. Resource events: moto records only the stack's own events; the patched
   emulator also records CREATE_IN_PROGRESS/CREATE_COMPLETE (or
   CREATE_FAILED with the error), UPDATE_* and DELETE_* for each
   resource, so winworkers deploy has something to stream.
5. Deleting a stack deletes its route tables, VPC endpoints and subnet route-table
   associations (moto's CloudFormation silently leaves them, so the VPC's deletion
   then fails with DependencyViolation).
6. A failed create rolls back: moto raises from ExecuteChangeSet and leaves
   the stack in progress; CloudFormation accepts the execution, then records the
   resource's CREATE_FAILED, deletes what was created and leaves the stack in
   ROLLBACK_COMPLETE, which the patched emulator now does too.

7. A resource whose Condition is false is not in the stack, on create and on
   update: moto skips creating it but still lists it (CREATE_COMPLETE, empty
   id), and on an update that turns a condition false it keeps the resource.
   CloudFormation deletes it, so turning the switch off on an update removes
   the feature here too.
8. UsePreviousValue reuses a parameter's value as it was given (moto reuses its
   parsed list or number, and its update then fails on it), and a stack keeps
   every parameter's value, defaults included (moto keeps only those given, so
   passing a default later "changes" every resource that uses it).

What is NOT fixed: moto checks neither Rules nor parameter constraints; they
are judged by the tests that evaluate them (winworkers.rules,
winworkers.constraints), and winworkers deploy checks both before any call.
It runs no instances, Lambdas or cfn-init either: a complete stack on the
emulator proves the template's wiring, not the workers.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

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
        try:
            yield url
        finally:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10)
            server.stop()
    finally:
        _unpatch_moto()
        werkzeug_log.setLevel(level)


def _patch_moto() -> None:
    global _users, _undo
    with _lock:
        _users += 1
        if _users > 1:
            return
        from unittest import mock

        from moto.cloudformation import models, parsing
        from moto.ec2.models.security_groups import SecurityGroup

        undo = contextlib.ExitStack()
        patches: list[tuple[Any, str, Callable[[Any], Any]]] = [
            (parsing, "clean_json", _with_fn_cidr),
            (SecurityGroup, "get_cfn_attribute", _with_vpc_id),
            (models.Stack, "_create_resource_map", _remembering_stack),
            (parsing, "parse_and_create_resource", _creation_events),
            (parsing, "parse_and_update_resource", _update_events),
            (parsing.ResourceMap, "_delete_resource", _deletion_events),
            (models.CloudFormationBackend, "execute_change_set", _rolling_back),
            (parsing.ResourceMap, "create", _created_if_conditions_hold),
            (parsing.ResourceMap, "update", _updated_if_conditions_hold),
            (models.Stack, "stack_parameters", _previous_values_as_given),
            (parsing.ResourceMap, "load_parameters", _defaults_kept_as_values),
        ]
        for owner, name, wrap in patches:
            undo.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        _undo = undo


def _unpatch_moto() -> None:
    global _users, _undo
    with _lock:
        _users -= 1
        if _users == 0 and _undo is not None:
            _undo.close()
            _undo = None


def _with_fn_cidr(clean_json: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-cidr.html
    def clean(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            block, count, bits = (clean(arg, resources_map) for arg in resource_json["Fn::Cidr"])
            network = ipaddress.ip_network(block)
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(bits))
            return [str(subnet) for _, subnet in zip(range(int(count)), subnets, strict=False)]
        cleaned = clean_json(resource_json, resources_map)
        return [item for item in cleaned if item is not None] if isinstance(resource_json, list) else cleaned

    return clean


def _with_vpc_id(get_cfn_attribute: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroup.html#aws-resource-ec2-securitygroup-return-values
    def get(group: Any, attribute: str) -> Any:
        return group.vpc_id if attribute == "VpcId" else get_cfn_attribute(group, attribute)

    return get


def _holding(resources_map: Any, template: dict[str, Any]) -> dict[str, Any]:
    """``template`` without the resources whose Condition is false (conditions loaded)."""
    conditions = resources_map.lazy_condition_map
    resources = {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if "Condition" not in resource or conditions[resource["Condition"]]
    }
    return {**template, "Resources": resources}


def _created_if_conditions_hold(create: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/conditions-section-structure.html
    def run(resources_map: Any, template: dict[str, Any]) -> Any:
        return create(resources_map, _holding(resources_map, template))

    return run


def _updated_if_conditions_hold(update: Any) -> Any:
    def run(resources_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
        # Evaluate the new template's conditions with the new values, then restore the
        # old state: moto's update diffs against it and reloads everything itself.
        state = ("_template", "input_parameters", "resolved_parameters", "lazy_condition_map")
        old = {name: getattr(resources_map, name, None) for name in state}
        resources_map._template = template
        if parameters:
            resources_map.input_parameters = parameters
        resources_map.resolved_parameters = {}
        resources_map.load_parameters()
        resources_map.load_conditions()
        holding = _holding(resources_map, template)
        for name, value in old.items():
            setattr(resources_map, name, value)
        return update(resources_map, holding, parameters)

    return run


def _previous_values_as_given(stack_parameters: property) -> property:
    # UsePreviousValue (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html)
    # reuses the value as it was given; moto 5.2.5 reuses its parsed form (a list for a
    # CommaDelimitedList, a number for a Number), which its own parameter loading then fails on.
    def given(stack: Any) -> dict[str, Any]:
        parsed: dict[str, Any] = stack_parameters.fget(stack) if stack_parameters.fget else {}
        return {
            name: ",".join(str(v) for v in value) if isinstance(value, list) else value if value is None else str(value)
            for name, value in parsed.items()
        }

    return property(given)


def _defaults_kept_as_values(load_parameters: Any) -> Any:
    # CloudFormation keeps every parameter's value with the stack, a default included, so an
    # update that passes the same value (or UsePreviousValue) changes nothing. moto keeps only
    # the values given, and takes a default passed later as a change of every resource using it.
    def load(resources_map: Any) -> None:
        load_parameters(resources_map)
        for name, spec in resources_map._template.get("Parameters", {}).items():
            if name not in resources_map.input_parameters and "Default" in spec:
                resources_map.input_parameters[name] = str(spec["Default"])

    return load


def _remembering_stack(create_resource_map: Any) -> Any:
    def create(stack: Any) -> Any:
        resource_map = create_resource_map(stack)
        resource_map.winworkers_stack = stack
        return resource_map

    return create


def _record(resources_map: Any, logical_id: str, kind: str, physical_id: Any, status: str, reason: str = "") -> None:
    from moto.cloudformation.models import Event

    stack = getattr(resources_map, "winworkers_stack", None)
    if stack is None:
        return
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=str(physical_id or ""),
        resource_type=kind,
        resource_status=status,
        resource_status_reason=reason or None,
        resource_properties=None,
    )
    stack.events.append(event)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _creation_events(parse_and_create_resource: Any) -> Any:
    def create(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        kind = resource_json.get("Type", "")
        try:
            resource = parse_and_create_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        except Exception as error:
            _record(resources_map, logical_id, kind, "", "CREATE_IN_PROGRESS")
            _record(resources_map, logical_id, kind, "", "CREATE_FAILED", _one_line(error))
            raise
        if resource is not None:  # None: its Condition is false, nothing was created
            physical = getattr(resource, "physical_resource_id", "")
            _record(resources_map, logical_id, kind, physical, "CREATE_IN_PROGRESS")
            _record(resources_map, logical_id, kind, physical, "CREATE_COMPLETE")
        return resource

    return create


def _update_events(parse_and_update_resource: Any) -> Any:
    def update(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        # moto retries failed updates (dependency order), so only successes are recorded.
        resource = parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        physical = getattr(resource, "physical_resource_id", "")
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "UPDATE_IN_PROGRESS")
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "UPDATE_COMPLETE")
        return resource

    return update


# Resources moto's CloudFormation creates but never deletes (a no-op, silently), so
# that deleting the isolated VPC then fails with DependencyViolation.
_EC2_DELETERS: dict[str, Callable[[Any, Any], Any]] = {
    "AWS::EC2::RouteTable": lambda ec2, table: ec2.delete_route_table(table.id),
    "AWS::EC2::VPCEndpoint": lambda ec2, endpoint: _delete_endpoint(ec2, endpoint),
    "AWS::EC2::SubnetRouteTableAssociation": lambda ec2, association: ec2.subnet_associations.pop(
        f"{association.route_table_id}:{association.subnet_id}", None
    ),
}


def _delete_endpoint(ec2: Any, endpoint: Any) -> None:
    # A gateway endpoint's routes go with it, and with their route table if that went first
    # (moto's delete_vpc_endpoints fails on a route table already deleted).
    for table in endpoint.route_table_ids or []:
        with contextlib.suppress(Exception):
            ec2.delete_route(table, endpoint.destination_prefix_list_id)
    endpoint.route_table_ids = []
    ec2.delete_vpc_endpoints([endpoint.id])


def _deletion_events(delete_resource: Any) -> Any:
    def delete(resources_map: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> Any:
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        physical = getattr(parsed_resource, "physical_resource_id", "")
        deleter = _EC2_DELETERS.get(resource_json.get("Type", ""))
        if deleter is not None:
            from moto.ec2.models import ec2_backends

            result = deleter(ec2_backends[resources_map._account_id][resources_map._region_name], parsed_resource)
        else:
            result = delete_resource(resources_map, parsed_resource, resource_json)
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_IN_PROGRESS")
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_COMPLETE")
        return result

    return delete


def _rolling_back(execute_change_set: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html
    # A failed creation is rolled back and the stack left in ROLLBACK_COMPLETE, which can only be deleted.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        if change_set.change_set_type != "CREATE":
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        try:
            execute_change_set(backend, change_set_name, stack_name)
        except Exception:
            stack = change_set.stack
            failed = [e.logical_resource_id for e in stack.events if e.resource_status == "CREATE_FAILED"]
            reason = f"The following resource(s) failed to create: [{', '.join(failed)}]. Rollback requested by user."
            stack._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
            with contextlib.suppress(Exception):  # moto cannot delete everything; AWS would retry
                stack.resource_map.delete()
            stack._add_stack_event("ROLLBACK_COMPLETE")
            stack.status = "ROLLBACK_COMPLETE"
            change_set.execution_status = "EXECUTE_FAILED"
        return None

    return execute


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
