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

Instance refreshes and the refresh custom resource (see the section at the end):

8. StartInstanceRefresh, DescribeInstanceRefreshes and CancelInstanceRefresh exist
   (moto has none of them), with per-group state: one active refresh per group
   (a second start is InstanceRefreshInProgress; a cancel without one is
   ActiveInstanceRefreshNotFound), newest first, each with its Preferences and
   DesiredConfiguration as requested. A start that asks for SkipMatching or a
   DesiredConfiguration while the group's launch template ImageId is
   ``resolve:ssm:`` is refused (ValidationError), as the Auto Scaling user guide
   says AWS refuses it. What it does NOT model: no instance is replaced, a
   refresh never progresses (InProgress, 0%, until cancelled), and a cancel is
   Cancelled at once (AWS passes through Cancelling).
9. A stack is ``<type>_IN_PROGRESS`` while its change set runs (moto keeps the old
   status), so code called during the update can see it. An update also updates
   each resource whose properties, once resolved, changed (moto updates only the
   resources whose JSON or named parameters changed): a new launch template
   version reaches the group's ``LatestVersionNumber`` and whatever names it.
   A failed update rolls back as in AWS: ExecuteChangeSet is accepted, the
   failing resource gets UPDATE_FAILED with its reason, then the previous
   template and parameters are applied again while the stack is
   UPDATE_ROLLBACK_IN_PROGRESS (so a custom resource sees its rollback Update),
   and the stack ends UPDATE_ROLLBACK_COMPLETE. NOT modelled: what moto cannot
   update back is left as it is, and a failure during the rollback still ends
   UPDATE_ROLLBACK_COMPLETE (AWS: UPDATE_ROLLBACK_FAILED).
10. ``Custom::*`` resources whose ServiceToken is a function of the stack are
   served in-process (moto would run the Lambda in Docker, and only on create):
   the function's inline ZipFile source is loaded as a module and its
   ``on_stack_event(event, environment, clients)`` runs with boto3 clients
   pointed at the emulator, for Create, Update (with OldResourceProperties)
   and Delete. Its response, PUT to a ResponseURL on the emulator, is honoured:
   SUCCESS keeps its PhysicalResourceId and Data (Fn::GetAtt), FAILED fails
   the operation with its Reason, no response fails it too. On a stack's
   deletion custom resources go first, as CloudFormation deletes dependents
   before what they name (moto deletes in no particular order). Each request is
   delivered twice, one after the other, as Lambda may deliver an asynchronous
   event more than once even after the function answered, and the second answer
   must be the first's. NOT modelled: ServiceTimeout (the call is synchronous),
   Lambda's retries after an error, concurrent deliveries, and any other function code.

Resources moto's CloudFormation leaves out:

11. Resource types moto's CloudFormation does not model (it warns, skips them and
   still reports CREATE_COMPLETE) are created through moto's own backends where
   moto has them: AWS::CloudWatch::Alarm (PutMetricAlarm),
   AWS::AutoScaling::ScalingPolicy (PutScalingPolicy),
   AWS::AutoScaling::WarmPool (PutWarmPool; DescribeWarmPool then answers its
   configuration, but moto launches no pooled instance) and
   AWS::EC2::SecurityGroupEgress (AuthorizeSecurityGroupEgress), after checking
   the properties against that API's request shape (botocore's model), as
   CloudFormation's handler would refuse them; AWS::CloudFormation::WaitConditionHandle
   (no properties, no call: CloudFormation keeps it itself) as a URL for its Ref.
   Any other type moto lacks is not
   created, and never silently: its CREATE_COMPLETE event says "NOT CREATED by
   the emulator", and the stack's own CREATE_COMPLETE (or UPDATE_COMPLETE, or the
   parent's event for a nested stack) lists every such resource. coverage()
   says which happens to each type; the README's list is generated from it.
12. DeletionPolicy Retain is honoured when an update removes a resource (moto
   deletes it; it honours Retain only on stack deletion), and each retained
   resource gets a DELETE_SKIPPED event, as in CloudFormation.
13. The stack's Outputs are evaluated after each executed change set (moto
   builds them from the empty template of the change set's REVIEW_IN_PROGRESS
   stack, so DescribeStacks returned none).
14. A resource moto cannot update (no update handler, e.g. AWS::Logs::LogGroup)
   stays as it was, with UPDATE_COMPLETE saying so (moto dropped it from the
   stack, so its Ref and its Outputs were lost).
15. An update of an Auto Scaling group keeps its warm pool, as AWS updates a group in
   place (moto deletes and creates the group, and the new one has no warm pool).

Parameters on updates:

16. UsePreviousValue reuses a parameter's value as it was given (moto reuses its
   parsed list or number, and its update then fails on it), and a stack keeps
   every parameter's value, defaults included (moto keeps only those given, so
   passing a default later "changes" every resource that uses it). An update
   that changes nothing is refused ("No updates are to be performed") whether
   its template comes inline or from S3 (moto compared only an inline body).

VPC endpoints on updates:

17. An ``AWS::EC2::VPCEndpoint`` whose SubnetIds, SecurityGroupIds, RouteTableIds or
   PolicyDocument change is modified in place, keeping its id, as CloudFormation
   does through ModifyVpcEndpoint (none of them is create-only); moto has no update
   handler and kept the endpoint as it was (14.). NOT modelled: moto creates no
   network interface in an added subnet.

Conditions:

18. Fn::Equals compares a Number parameter's value as the string it was given, as
   CloudFormation does (a Number parameter's Ref is a string; "Parameters" reference).
   moto parses it into an int first, so ``Equals(Ref Number, "100")`` was never true: on
   the emulator every fleet took the Spot mode's MixedInstancesPolicy (OnDemandPercentage
   100, the default, compared as 100 against "100").

What the emulator starts with:

19. The example platform's inputs (winworkers.renderings.EXAMPLE_INPUTS), in us-east-1
   of moto's account: the buckets, the worker artifact object and the work queue, so
   that the examples pass winworkers deploy's preflight (winworkers.deploy.preflight),
   which refuses a queue, bucket or artifact that does not exist.

Resources without properties:

20. A resource that has no Properties (AWS::CloudFormation::WaitConditionHandle) is not
   updated when nothing about it changed, as in CloudFormation: moto's parse_resource adds
   "Properties": {} to the stored template when it creates it, so its diff saw every
   later template's resource as modified and updated it at each stack update.

Honest by construction (issue 26; winworkers.emulator_truth):

21. Invariants after every stack operation (an executed change set, a stack deletion, judged once
   for the outermost): every resource a stack lists exists in moto's backends; nothing a stack
   made exists outside it unless retained; a deleted stack's outputs and resources are never
   evaluated again; a nested stack keeps its id across an update; a group runs the launch
   template version its template resolves. A violation ends the stack CREATE_FAILED,
   UPDATE_ROLLBACK_FAILED or DELETE_FAILED, its last event naming the invariant.
22. A deleted stack is never evaluated again: its outputs are frozen at its deletion (moto's
   ResourceMap creates a resource on first access, so a DescribeStacks of a deleted nested
   parent re-created its child and queue), and ListStackResources lists what a stack holds.
23. A nested stack (AWS::CloudFormation::Stack has no create-only property) is updated in
   place from its TemplateURL and Parameters, keeping its id (moto deleted the child and
   created another, orphaning its retained log groups).
24. An update modifies resources in dependency order (moto: template order, so a Spot
   group took its launch template's previous version when both changed).
25. A change set is "no changes" only when every value, defaults included, is the stack's
   (moto compared the values given at creation: clearing a value an update had set was "no changes").
26. An update is judged by the type's createOnlyProperties (cfn-lint's registry schemas): the
   UPDATE_COMPLETE event says "replaced: create-only X changed", or NOT MODELLED where moto
   replaced what CloudFormation modifies in place, or modified what CloudFormation replaces.
   A type the emulator cannot create is kept on an update and its event says "not modelled"
   (its update failed on moto's keyword arguments: new_resource_name).

Which of these moto would take as fixes (each small, against moto's own code): 1, 2, 3, 4, 5,
6, 7, 9, 12, 13, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25. The emulator's own (not moto's
business): 8 (a refresh model that never progresses), 10 (custom resources in-process), 11
(types created through moto's backends, checked with botocore's shapes: moto would take real
CloudFormation models for them instead), 19 (the example platform), 21 and 26 (judgement).
moto 5.2.6 (the newest release) changes none of the code these patch, so none can be dropped;
its rewritten ResponseURL handler would break 10: the pin stays at 5.2.5.

What is NOT fixed: moto checks neither Rules nor parameter constraints; they
are judged by the tests that evaluate them (winworkers.rules,
winworkers.constraints), and winworkers deploy checks both before any call.
It runs no instances and no cfn-init either, and no Lambda but a custom
resource's inline code (10.): a complete stack on the emulator proves the
template's wiring, not the workers. UpdateReplacePolicy needs nothing here:
moto replaces none of the types these templates retain.
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

from winworkers import emulator_truth as truth
from winworkers.emulator_truth import INVARIANTS, InvariantViolation

__all__ = [
    "DEFAULT_PORT",
    "ENVIRONMENT",
    "INSTALL",
    "INVARIANTS",
    "REGION",
    "EmulatorError",
    "InvariantViolation",
    "add_command",
    "coverage",
    "coverage_table",
    "local_aws",
    "reset",
    "run",
]

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

        from moto.autoscaling.models import FakeAutoScalingGroup
        from moto.cloudformation import models, parsing
        from moto.cloudformation.responses import CloudFormationResponse
        from moto.ec2.models.security_groups import SecurityGroup
        from moto.ec2.models.vpcs import VPCEndPoint

        undo = contextlib.ExitStack()
        patches: list[tuple[Any, str, Callable[[Any], Any]]] = [
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
            (VPCEndPoint, "update_from_cloudformation_json", _endpoint_modified_in_place),
            (parsing, "parse_condition", _numbers_compared_as_given),
            (FakeAutoScalingGroup, "update_from_cloudformation_json", _keeping_its_warm_pool),
            (parsing.ResourceMap, "__getitem__", truth.guarded_getitem),
            (models.Stack, "stack_resources", truth.listed_resources),
            (models.Stack, "outputs", truth.frozen_outputs),
            (models.Stack, "delete", truth.deleting),
            (models.Stack, "has_parameters", _parameters_with_defaults),
            (models.Stack, "update_from_cloudformation_json", _nested_in_place),
        ]
        for owner, name, wrap in patches:
            undo.enter_context(mock.patch.object(owner, name, wrap(getattr(owner, name))))
        for owner, name, new in _refresh_patches():
            undo.enter_context(mock.patch.object(owner, name, new, create=True))
        # Last, so outermost: the invariants judge the operation's end state (21.).
        backend = models.CloudFormationBackend
        undo.enter_context(mock.patch.object(backend, "execute_change_set", _verified(backend.execute_change_set)))
        undo.enter_context(mock.patch.object(backend, "delete_stack", _verified_deletion(backend.delete_stack)))
        _undo = undo


def _unpatch_moto() -> None:
    global _users, _undo
    with _lock:
        _users -= 1
        if _users == 0 and _undo is not None:
            _undo.close()
            _undo = None


def reset(endpoint_url: str) -> None:
    """Clear the emulator at endpoint_url: moto's state (its reset API) and the emulator's own
    bookkeeping (what the stacks made, custom resource answers), then the example platform again (19.)."""
    urllib.request.urlopen(urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST"), timeout=10)
    truth.reset()
    _responses.clear()
    _example_platform(endpoint_url)


_operations = [0]
"""Stack operations under way: the invariants judge the outermost one's end state (a nested stack's
deletion during its parent's update is not an end state)."""


def _verified(execute_change_set: Any) -> Any:
    # 21. The invariants (winworkers.emulator_truth) judge every executed change set's end state.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        _operations[0] += 1
        try:
            execute_change_set(backend, change_set_name, stack_name)
            if _operations[0] == 1:
                truth.verify(backend.account_id, backend.region_name)
        except InvariantViolation as violation:
            if _operations[0] > 1:
                raise
            failed = "CREATE_FAILED" if change_set.change_set_type == "CREATE" else "UPDATE_ROLLBACK_FAILED"
            truth.fail(change_set.stack, violation, failed)
            change_set.execution_status = "EXECUTE_FAILED"
        finally:
            _operations[0] -= 1

    return execute


def _verified_deletion(delete_stack: Any) -> Any:
    # 21. ... and every stack deletion's (once, after a nested parent's children went too).
    def delete(backend: Any, name_or_stack_id: str) -> None:
        stack = next((s for s in backend.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
        _operations[0] += 1
        try:
            delete_stack(backend, name_or_stack_id)
            if _operations[0] == 1:
                truth.verify(backend.account_id, backend.region_name)
        except InvariantViolation as violation:
            if stack is None or _operations[0] > 1:
                raise
            backend.deleted_stacks.pop(stack.stack_id, None)
            backend.stacks[stack.stack_id] = stack  # DELETE_FAILED: still there, as in CloudFormation
            truth.fail(stack, violation, "DELETE_FAILED")
        finally:
            _operations[0] -= 1

    return delete


def _parameters_with_defaults(_: Any) -> Any:
    # An update is "no change" when every value, defaults included, is the stack's: moto compared the
    # values given at the stack's creation (a change set never updated them), so clearing a value set
    # by an earlier update ("QueueKmsKeyArn set, then cleared") was "no changes" and the resource stayed.
    def same(stack: Any, other: dict[str, Any]) -> bool:
        declared = stack.template_dict.get("Parameters", {}) or {}
        defaults = {k: str(v["Default"]) for k, v in declared.items() if "Default" in v}
        current = {k: _as_given(v) for k, v in stack.stack_parameters.items()}
        return {**defaults, **current} == {**defaults, **{k: _as_given(v) for k, v in other.items()}}

    return same


def _nested_in_place(_: Any) -> Any:
    # AWS::CloudFormation::Stack has no create-only property (its registry schema): CloudFormation
    # updates a nested stack in place, and it keeps its id. moto deleted the child and created another.
    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        from moto.cloudformation.utils import get_stack_from_s3_url
        from moto.utilities.utils import get_partition

        properties = cloudformation_json["Properties"]
        body = get_stack_from_s3_url(
            properties["TemplateURL"], account_id=account_id, partition=get_partition(region_name)
        )
        stack_id = original_resource.stack_id
        original_resource.update(body, parameters=dict(properties.get("Parameters", {})))
        if original_resource.stack_id != stack_id:
            raise InvariantViolation("nested-stack-keeps-id", f"{original_resource.name} became {stack_id}")
        return original_resource

    return classmethod(update)


def _keeping_its_warm_pool(update: Any) -> Any:
    # AWS updates a group in place (UpdateAutoScalingGroup), and its warm pool stays; moto
    # replaces the group object (it deletes and creates the group), and the new one had none.
    def run(*args: Any, **kwargs: Any) -> Any:
        pool = getattr(kwargs.get("original_resource"), "warm_pool", None)
        group = update(*args, **kwargs)
        if pool is not None and getattr(group, "warm_pool", None) is None:
            group.warm_pool = pool
        return group

    return staticmethod(run)


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


def _numbers_compared_as_given(parse_condition: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
    # (Number: "when you use the parameter elsewhere in your template ... the value becomes a string").
    def parse(condition: Any, resources_map: Any, condition_map: Any) -> Any:
        if isinstance(condition, dict) and list(condition) == ["Fn::Equals"]:
            from moto.cloudformation.parsing import clean_json

            left, right = (
                condition_map[v["Condition"]]
                if isinstance(v, dict) and "Condition" in v
                else clean_json(v, resources_map)
                for v in condition["Fn::Equals"]
            )
            if any(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
                return _as_given(left) == _as_given(right)
        return parse_condition(condition, resources_map, condition_map)

    return parse


def _as_given(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


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


def _properties_absent_as_empty(build_resource_diff: Any) -> Any:
    def run(resources_map: Any, other_template: dict[str, Any], parameters: Any = None) -> Any:
        old = resources_map._resource_json_map
        for name, resource in other_template.get("Resources", {}).items():
            if "Properties" not in resource and old.get(name, {}).get("Properties") == {}:
                resource["Properties"] = {}  # as moto's parse_resource stored it
        diff = build_resource_diff(resources_map, other_template, parameters)
        diff["Modify"] = _in_dependency_order(diff["Modify"], other_template.get("Resources", {}))
        return diff

    return run


def _in_dependency_order(names: list[str], resources: dict[str, Any]) -> list[str]:
    """names, each after those of names it refers to (Ref, Fn::GetAtt, DependsOn), as CloudFormation
    updates them: moto updated in template order, so a group took its launch template's old version."""
    wanted, ordered = set(names), list[str]()
    pending = list(names)
    while pending:
        ready = [
            n
            for n in pending
            if not (
                (_names(resources.get(n, {})) | set(_depends_on(resources.get(n, {})))) & wanted - set(ordered) - {n}
            )
        ]
        for name in ready or pending[:1]:  # a cycle: template order
            ordered.append(name)
            pending.remove(name)
    return ordered


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


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


def _compared_from_s3_too(validate: Any) -> Any:
    # An update with nothing new is refused whether its template comes inline or from S3
    # (moto compares only an inline TemplateBody, so a TemplateURL update always "changed").
    def run(response: Any, incoming_params: Any, stack_body: str, old_stack: Any) -> None:
        url = response._get_param("TemplateURL")
        if not stack_body and url:
            stack_body = response._get_stack_from_s3_url(url)
        validate(response, incoming_params, stack_body, old_stack)

    return run


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
            truth.remember(resources_map, logical_id, kind, resource)
            with contextlib.suppress(AttributeError):  # what an update compares with (create-only properties)
                resource.winworkers_applied = _resolved(resources_map, resource_json)
            physical = getattr(resource, "physical_resource_id", "")
            _record(resources_map, logical_id, kind, physical, "CREATE_IN_PROGRESS")
            _record(resources_map, logical_id, kind, physical, "CREATE_COMPLETE", _note(resource))
        return resource

    return create


def _update_events(parse_and_update_resource: Any) -> Any:
    def update(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        # moto retries failed updates (dependency order), so only successes are recorded.
        kind = resource_json.get("Type", "")
        before = resources_map._parsed_resources.get(logical_id)
        was = getattr(before, "physical_resource_id", None)
        resource = parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is not None and resource is not before:  # a new object: the stack's from now on
            truth.remember(resources_map, logical_id, kind, resource)
        physical = getattr(resource, "physical_resource_id", "")
        applied = _resolved(resources_map, resource_json)
        judged = truth.update_note(kind, getattr(before, "winworkers_applied", None), applied, physical != was)
        with contextlib.suppress(AttributeError):
            resource.winworkers_applied = applied
        note = "; ".join(n for n in (judged, _note(resource)) if n)
        _record(resources_map, logical_id, kind, physical, "UPDATE_IN_PROGRESS")
        _record(resources_map, logical_id, kind, physical, "UPDATE_COMPLETE", note)
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
        except InvariantViolation:
            raise
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


# Instance refreshes and the refresh custom resource (i17-refresh) --------------------------------------------------
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StartInstanceRefresh.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref.html

_endpoints: list[str] = []
"""The running emulators' URLs, newest last: the clients a custom resource handler gets."""
_responses: dict[str, dict[str, Any]] = {}
"""Custom resource responses received, by RequestId."""
_ACTIVE_REFRESH = {"Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking"}


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
        (parsing.ResourceMap, "update", _following_changed_references(parsing.ResourceMap.update)),
        (parsing.ResourceMap, "delete", _custom_resources_first(parsing.ResourceMap.delete)),
        (CloudFormationResponse, "process_cfn_response", _received_response),
        (CustomModel, "create_from_cloudformation_json", classmethod(_create_custom)),
        (CustomModel, "update_from_cloudformation_json", classmethod(_update_custom)),
        (CustomModel, "delete", _delete_custom),
    ]


def _refresh_error(code: str, message: str) -> Exception:
    from moto.autoscaling.exceptions import AutoscalingClientError

    return AutoscalingClientError(code, message)


def _refreshes(response: Any, group_name: str) -> list[dict[str, Any]]:
    """The group's refreshes, newest first (state kept on the backend, so a reset clears it)."""
    backend = response.autoscaling_backend
    if group_name not in backend.autoscaling_groups:
        raise _refresh_error("ValidationError", f"AutoScalingGroup name not found - {group_name}")
    state: dict[str, list[dict[str, Any]]] = backend.__dict__.setdefault("winworkers_refreshes", {})
    return state.setdefault(group_name, [])


def _resolves_ssm(group: Any) -> bool:
    template = group.ec2_launch_template
    if template is None:
        return False
    version = template.get_version(group.provided_launch_template_version or "$Default")
    return str(version.data.get("ImageId", "")).startswith("resolve:ssm:")


def _start_instance_refresh(response: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.moto_api._internal import mock_random

    params = response._get_params()
    name = params["AutoScalingGroupName"]
    refreshes = _refreshes(response, name)
    if active := [r for r in refreshes if r["Status"] in _ACTIVE_REFRESH]:
        raise _refresh_error(
            "InstanceRefreshInProgress",
            f"An Instance Refresh is already in progress and blocks the execution of this Instance Refresh. "
            f"{active[0]['InstanceRefreshId']}",
        )
    preferences = params.get("Preferences") or {}
    desired = params.get("DesiredConfiguration")
    group = response.autoscaling_backend.autoscaling_groups[name]
    # Auto Scaling user guide, "Use AWS Systems Manager parameters instead of AMI IDs", limitations.
    if (desired or str(preferences.get("SkipMatching", "")).lower() == "true") and _resolves_ssm(group):
        raise _refresh_error(
            "ValidationError",
            "An instance refresh with skip matching or a desired configuration is not supported "
            "for a launch template that uses a Systems Manager parameter for its AMI",
        )
    refresh = {
        "InstanceRefreshId": str(mock_random.uuid4()),
        "AutoScalingGroupName": name,
        "Status": "InProgress",
        "StatusReason": "modelled by winworkers.emulator: it never progresses",
        "StartTime": utcnow(),
        "PercentageComplete": 0,
        "InstancesToUpdate": len(group.instance_states),
        "Preferences": preferences,
        **({"DesiredConfiguration": desired} if desired else {}),
    }
    refreshes.insert(0, refresh)
    return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})


def _describe_instance_refreshes(response: Any) -> Any:
    from moto.core.responses import ActionResult

    params = response._get_params()
    wanted = params.get("InstanceRefreshIds") or []
    refreshes = [
        r
        for r in _refreshes(response, params["AutoScalingGroupName"])
        if not wanted or r["InstanceRefreshId"] in wanted
    ]
    return ActionResult({"InstanceRefreshes": refreshes[: int(params.get("MaxRecords") or 50)]})


def _cancel_instance_refresh(response: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow

    params = response._get_params()
    active = [r for r in _refreshes(response, params["AutoScalingGroupName"]) if r["Status"] in _ACTIVE_REFRESH]
    if not active:
        raise _refresh_error("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found")
    active[0].update(Status="Cancelled", StatusReason="Cancelled by the user", EndTime=utcnow())
    return ActionResult({"InstanceRefreshId": active[0]["InstanceRefreshId"]})


def _in_progress_while_applied(apply: Any) -> Any:
    def run(change_set: Any) -> None:
        stack, before = change_set.stack, change_set.stack.status
        stack.status = f"{change_set.change_set_type}_IN_PROGRESS"
        try:
            apply(change_set)
        except Exception:
            stack.status = before
            raise

    return run


def _names(value: Any) -> set[str]:
    """The resources and parameters ``value`` names with Ref or Fn::GetAtt."""
    if isinstance(value, dict):
        named = {value["Ref"]} if isinstance(value.get("Ref"), str) else set()
        if isinstance(value.get("Fn::GetAtt"), list) and value["Fn::GetAtt"]:
            named.add(str(value["Fn::GetAtt"][0]))
        return named.union(*(_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_names(v) for v in value))
    return set()


class _CustomResourceFailed(Exception):
    """A custom resource's FAILED response (or none): the operation fails with its reason."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id = logical_id


def _resolved(resources_map: Any, resource_json: dict[str, Any]) -> Any:
    from moto.cloudformation.parsing import clean_json

    try:
        return clean_json(resource_json.get("Properties", {}), resources_map)
    except Exception:  # moto cannot resolve everything; such a resource counts as unchanged
        return None


def _following_changed_references(update: Any) -> Any:
    # CloudFormation updates a resource whose properties change once resolved, e.g. a
    # Fn::GetAtt [LaunchTemplate, LatestVersionNumber] after the launch template changed;
    # moto only updates the resources whose own JSON, or parameters they name, changed.
    def run(resources_map: Any, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> Any:
        from moto.cloudformation import parsing

        old = dict(resources_map._resource_json_map)
        before = {name: _resolved(resources_map, old[name]) for name in old}
        handled = set(resources_map.build_resource_diff(template, parameters)["Modify"])
        result = update(resources_map, template, parameters)
        for _ in range(10):  # chains: the launch template, then the group, then what names the group
            changed = {  # in the template as applied: the resources whose Condition holds
                name: resource_json
                for name, resource_json in resources_map._resource_json_map.items()
                if name in old
                and name not in handled
                and name in resources_map._parsed_resources
                and before[name] is not None
                and _resolved(resources_map, resource_json) != before[name]
            }
            # In dependency order, as CloudFormation: none before a resource it names that changes too.
            ready = [name for name, resource_json in changed.items() if not _names(resource_json) & set(changed)]
            for name in ready or list(changed):
                handled.add(name)
                try:
                    resources_map._parsed_resources[name] = parsing.parse_and_update_resource(
                        name, changed[name], resources_map, resources_map._account_id, resources_map._region_name
                    )
                except (_CustomResourceFailed, InvariantViolation):
                    raise
                except Exception:  # what moto cannot update it would not have tried to: leave it as it is
                    continue
            if not changed:
                break
        return result

    return run


def _update_rolling_back(execute_change_set: Any) -> Any:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-rollback-triggers.html
    # A failed update: the resource's UPDATE_FAILED, then the previous template and
    # parameters applied again while the stack is UPDATE_ROLLBACK_IN_PROGRESS.
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = backend.describe_change_set(change_set_name)
        stack = change_set.stack
        if change_set.change_set_type != "UPDATE":
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        template, parameters = stack.template, dict(stack.resource_map.input_parameters)
        try:
            return execute_change_set(backend, change_set_name, stack_name)  # type: ignore[no-any-return]
        except InvariantViolation:
            raise
        except Exception as error:
            logical = error.logical_id if isinstance(error, _CustomResourceFailed) else ""
            if logical:
                kind = stack.resource_map._resource_json_map[logical].get("Type", "")
                _record(stack.resource_map, logical, kind, "", "UPDATE_FAILED", _one_line(error))
            reason = f"The following resource(s) failed to update: [{logical}]." if logical else _one_line(error)
            stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
            stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
            stack.template = template
            stack._parse_template()
            with contextlib.suppress(Exception):  # moto cannot undo everything; AWS would
                stack.resource_map.update(stack.template_dict, parameters)
            stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            stack.status = "UPDATE_ROLLBACK_COMPLETE"
            change_set.execution_status = "EXECUTE_FAILED"
        return None

    return execute


def _received_response(response: Any) -> tuple[int, dict[str, Any], str]:
    import json

    body = json.loads(response.body or "{}")
    _responses[str(body.get("RequestId"))] = body
    return 200, {"status": 200}, ""


def _handler(model: Any, properties: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """The custom resource function's code, loaded as Lambda loads index.py, and its environment.

    Kept on the resource: when a stack update removes the feature moto may delete the
    function first (CloudFormation would not), and the resource's Delete still runs its code."""
    import importlib.util
    import io
    import zipfile

    from moto.awslambda.utils import get_backend
    from moto.cloudformation.exceptions import ValidationError

    try:
        function = get_backend(model.winworkers_account, model.region_name).get_function(properties["ServiceToken"])
    except Exception:
        if hasattr(model, "winworkers_handler"):
            return model.winworkers_handler  # type: ignore[no-any-return]
        raise
    inline = (getattr(function, "code", None) or {}).get("ZipFile")
    try:  # moto keeps an inline ZipFile as a zip holding the source
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            source = archive.read(next(n for n in archive.namelist() if n.endswith(".py")))
    except (AttributeError, StopIteration, zipfile.BadZipFile) as error:
        # After moto updated the function (its configuration), it may keep the inline source as is.
        if not isinstance(inline, str):
            raise ValidationError(message=f"{model.logical_id}: only inline Python code can serve it here") from error
        source = inline.encode()
    spec = importlib.util.spec_from_loader("index", loader=None)
    if spec is None:
        raise ValidationError(message=f"{model.logical_id}: cannot load the function's code")
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, "index.py", "exec"), module.__dict__)  # the function's own code, as Lambda loads it
    if not callable(getattr(module, "on_stack_event", None)):
        raise ValidationError(message=f"{model.logical_id}: the function has no on_stack_event(event, env, clients)")
    # Lambda hands a function its environment as strings (moto may keep a parsed Number).
    model.winworkers_handler = (module, {k: str(v) for k, v in (function.environment_vars or {}).items()})
    return model.winworkers_handler  # type: ignore[no-any-return]


def _serve(request: str, model: Any, properties: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the custom resource's function in-process for ``request``; its response, or raise its failure."""
    import urllib.parse

    import boto3
    from moto.cloudformation.exceptions import ValidationError
    from moto.moto_api._internal import mock_random

    if not _endpoints:
        raise ValidationError(message=f"{model.logical_id}: no emulator endpoint to serve it")
    module, environment = _handler(model, properties)
    endpoint, region = _endpoints[-1], model.region_name
    request_id = str(mock_random.uuid4())
    stack = urllib.parse.quote(model.winworkers_stack_id, safe="")
    event = {
        "RequestType": request,
        "ServiceToken": properties["ServiceToken"],
        "ResponseURL": f"{endpoint}/cloudformation_{region}/cfnresponse?stack={stack}",
        "StackId": model.winworkers_stack_id,
        "RequestId": request_id,
        "LogicalResourceId": model.logical_id,
        "ResourceType": model.winworkers_type,
        "ResourceProperties": properties,
        **({"PhysicalResourceId": model.resource_name} if request != "Create" else {}),
        **({"OldResourceProperties": old} if old is not None else {}),
    }
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    names = ("autoscaling", "cloudformation", "ec2", "ssm")
    clients = {n: boto3.client(n, endpoint_url=endpoint, region_name=region, **keys) for n in names}
    answers = []
    for _ in (1, 2):  # Lambda may deliver a request twice, even after an answer: each must be the same
        module.on_stack_event(event, environment, clients)
        answers.append(_responses.pop(request_id, None))
    answer = answers[0]
    if answer is None:
        raise _CustomResourceFailed(model.logical_id, "the function sent no response to ResponseURL")
    if answers[1] != answer:
        second = answers[1] or {}
        raise _CustomResourceFailed(
            model.logical_id,
            f"answered {answer.get('Status')}, then {second.get('Status')} to a second delivery of the same request"
            f" ({second.get('Reason')})",
        )
    if answer.get("Status") != "SUCCESS":
        raise _CustomResourceFailed(model.logical_id, str(answer.get("Reason")))
    return answer


def _remember(model: Any, answer: dict[str, Any], properties: dict[str, Any]) -> Any:
    model.resource_name = answer.get("PhysicalResourceId") or model.resource_name
    model.winworkers_properties = properties
    model.set_data(answer.get("Data") or {})
    return model


def _create_custom(
    cls: Any,
    /,
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    model = cls(region_name, "", kwargs["LogicalId"], resource_name)
    model.winworkers_account, model.winworkers_stack_id = account_id, kwargs["StackId"]
    model.winworkers_type = kwargs["ResourceType"]
    cloudformation_backends[account_id][region_name].get_stack(kwargs["StackId"]).add_custom_resource(model)
    properties = cloudformation_json["Properties"]
    return _remember(model, _serve("Create", model, properties), properties)


def _update_custom(
    cls: Any,
    /,
    original_resource: Any,
    new_resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
) -> Any:
    properties = cloudformation_json["Properties"]
    answer = _serve("Update", original_resource, properties, original_resource.winworkers_properties)
    return _remember(original_resource, answer, properties)


def _delete_custom(model: Any, account_id: str, region_name: str) -> None:
    _serve("Delete", model, model.winworkers_properties)


def _custom_resources_first(delete: Any) -> Any:
    # CloudFormation deletes in reverse dependency order, so a custom resource goes
    # before the function that serves it; moto deletes in no particular order.
    def run(resources_map: Any) -> Any:
        from moto.cloudformation.custom_model import CustomModel

        for name, resource in list(resources_map._parsed_resources.items()):
            declared = resources_map._resource_json_map.get(name)  # moto keeps resources an update removed
            kept = declared is None or declared.get("DeletionPolicy") == "Retain"
            if isinstance(resource, CustomModel) and hasattr(resource, "winworkers_properties") and not kept:
                resources_map._delete_resource(resource, resources_map._resource_json_map[name])
                resources_map._parsed_resources.pop(name)
        return delete(resources_map)

    return run


# The truth patches (11-13 in the module docstring) ----------------------------------------------------------


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


class _Made:
    """A resource an emulated type made through moto's backend: its Ref, its GetAtt
    attributes, and how to delete it (what moto's ResourceMap asks of a resource)."""

    winworkers_note = ""

    logical_resource_id = ""  # moto sets these two after creation
    cf_resource_type = ""

    def __init__(self, physical_id: str, attributes: dict[str, Any], remove: Callable[[], None]) -> None:
        self.physical_resource_id = physical_id
        self.attributes = attributes
        self.remove = remove

    def get_cfn_attribute(self, name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if name not in self.attributes:
            raise UnformattedGetAttTemplateException()
        return self.attributes[name]

    def is_created(self) -> bool:
        return True

    def delete(self, account_id: str, region_name: str) -> None:
        self.remove()


class _Skipped(_Made):
    """A resource of a type the emulator cannot create: listed, never silent."""

    def __init__(self, kind: str) -> None:
        super().__init__("", {}, lambda: None)
        self.winworkers_note = f"NOT CREATED by the emulator: moto has no {kind}; CloudFormation would create it"

    def get_cfn_attribute(self, name: str) -> Any:
        return ""


def _checked(service: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """request as the API takes it, or ValueError: the properties are coerced to the
    operation's input shape (CloudFormation converts "1" to 1 where the schema wants a
    number), then validated by botocore against that shape. CloudFormation's handler
    for the type makes this call, so a property it would refuse fails here too."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    coerced = _coerced(request, shape)
    report = ParamValidator().validate(coerced, shape)
    if report.has_errors():
        raise ValueError(f"{operation} refuses these properties: {_one_line(ValueError(report.generate_report()))}")
    return dict(coerced)


def _coerced(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _coerced(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_coerced(item, shape.member) for item in value]
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            if kind in ("integer", "long"):
                return int(value)
            if kind in ("float", "double"):
                return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def _alarm(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudwatch-alarm.html
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends

    props = _checked("cloudwatch", "PutMetricAlarm", {"AlarmName": name, **props})
    queries = []
    for query in props.get("Metrics", []):
        stat, metric = query.get("MetricStat"), query.get("MetricStat", {}).get("Metric", {})
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        queries.append(
            MetricDataQuery(
                query_id=query["Id"],
                label=query.get("Label"),
                period=query.get("Period"),
                return_data=query.get("ReturnData", True),
                expression=query.get("Expression"),
                metric_stat=MetricStat(
                    Metric(metric["MetricName"], metric["Namespace"], dimensions),
                    stat["Period"],
                    stat["Stat"],
                    stat.get("Unit"),
                )
                if stat
                else None,
            )
        )
    backend: Any = cloudwatch_backends[account][region]  # moto types as str what its handler passes as None
    # Absent properties are None, as moto's PutMetricAlarm handler passes them.
    alarm = backend.put_metric_alarm(
        name=name,
        namespace=props.get("Namespace"),
        metric_name=props.get("MetricName"),
        comparison_operator=props["ComparisonOperator"],
        evaluation_periods=props["EvaluationPeriods"],
        period=props.get("Period"),
        threshold=props.get("Threshold"),
        statistic=props.get("Statistic"),
        description=props.get("AlarmDescription"),
        dimensions=props.get("Dimensions", []),
        alarm_actions=props.get("AlarmActions", []),
        metric_data_queries=queries or None,
        datapoints_to_alarm=props.get("DatapointsToAlarm"),
        ok_actions=props.get("OKActions", []),
        insufficient_data_actions=props.get("InsufficientDataActions", []),
        treat_missing_data=props.get("TreatMissingData"),
    )
    return _Made(name, {"Arn": alarm.alarm_arn}, lambda: backend.delete_alarms([name]))


def _scaling_policy(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-scalingpolicy.html
    # Ref returns the policy's ARN (an alarm's action), GetAtt Arn and PolicyName.
    from moto.autoscaling.models import autoscaling_backends

    props = _checked("autoscaling", "PutScalingPolicy", {"PolicyName": name, **props})
    backend: Any = autoscaling_backends[account][region]  # likewise
    # Absent properties are None, as moto's PutScalingPolicy handler passes them.
    policy = backend.put_scaling_policy(
        name=name,
        policy_type=props.get("PolicyType", "SimpleScaling"),
        metric_aggregation_type=props.get("MetricAggregationType"),
        adjustment_type=props.get("AdjustmentType"),
        as_name=props["AutoScalingGroupName"],
        min_adjustment_magnitude=props.get("MinAdjustmentMagnitude"),
        scaling_adjustment=props.get("ScalingAdjustment"),
        cooldown=props.get("Cooldown"),
        target_tracking_config=props.get("TargetTrackingConfiguration", {}),
        step_adjustments=props.get("StepAdjustments", []),
        estimated_instance_warmup=props.get("EstimatedInstanceWarmup"),
        predictive_scaling_configuration=props.get("PredictiveScalingConfiguration", {}),
    )
    return _Made(policy.arn, {"Arn": policy.arn, "PolicyName": name}, lambda: backend.delete_policy(name))


def _egress(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ec2-securitygroupegress.html
    from moto.ec2.models import ec2_backends

    described = {"Description": props["Description"]} if "Description" in props else {}
    permission: dict[str, Any] = {"IpProtocol": props["IpProtocol"]}
    permission.update({k: props[k] for k in ("FromPort", "ToPort") if k in props})
    if "CidrIp" in props:
        permission["IpRanges"] = [{"CidrIp": props["CidrIp"], **described}]
    if "CidrIpv6" in props:
        permission["Ipv6Ranges"] = [{"CidrIpv6": props["CidrIpv6"], **described}]
    if "DestinationSecurityGroupId" in props:
        permission["UserIdGroupPairs"] = [{"GroupId": props["DestinationSecurityGroupId"], **described}]
    if "DestinationPrefixListId" in props:
        permission["PrefixListIds"] = [{"PrefixListId": props["DestinationPrefixListId"], **described}]
    request = {"GroupId": props["GroupId"], "IpPermissions": [permission]}
    (permission,) = _checked("ec2", "AuthorizeSecurityGroupEgress", request)["IpPermissions"]
    backend = ec2_backends[account][region]
    rule = {
        "group_name_or_id": props["GroupId"],
        "ip_protocol": permission["IpProtocol"],
        "from_port": permission.get("FromPort"),
        "to_port": permission.get("ToPort"),
        "ip_ranges": permission.get("IpRanges", []) + permission.get("Ipv6Ranges", []),
        "source_groups": permission.get("UserIdGroupPairs", []),
        "prefix_list_ids": permission.get("PrefixListIds", []),
    }
    rules, _ = backend.authorize_security_group_egress(**rule)

    def revoke() -> None:
        from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError

        try:
            if backend.get_security_group_by_name_or_id(props["GroupId"]) is not None:
                backend.revoke_security_group_egress(**rule)
        except InvalidSecurityGroupNotFoundError:  # it went with its group (or the group it allowed)
            pass

    return _Made(rules[0].id, {"Id": rules[0].id}, revoke)


def _warm_pool(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-autoscaling-warmpool.html
    # One pool per group, named by the group (the schema's primaryIdentifier); moto's group
    # keeps it (DescribeWarmPool answers its configuration), and launches no pooled instance.
    from moto.autoscaling.models import autoscaling_backends

    props = _checked("autoscaling", "PutWarmPool", props)
    backend: Any = autoscaling_backends[account][region]
    group = props["AutoScalingGroupName"]
    # Absent properties are None, as moto's PutWarmPool handler passes them.
    backend.put_warm_pool(
        group_name=group,
        max_group_prepared_capacity=props.get("MaxGroupPreparedCapacity"),
        min_size=props.get("MinSize"),
        pool_state=props.get("PoolState"),
        instance_reuse_policy=props.get("InstanceReusePolicy"),
    )

    def delete() -> None:
        if backend.autoscaling_groups.get(group) is not None:  # it went with its group
            backend.delete_warm_pool(group)

    return _Made(group, {}, delete)


def _wait_condition_handle(name: str, props: dict[str, Any], account: str, region: str) -> _Made:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cloudformation-waitconditionhandle.html
    # No properties; CloudFormation keeps it itself, and its Ref is a presigned URL for signals.
    if props:
        raise ValueError(f"AWS::CloudFormation::WaitConditionHandle has no properties, not {sorted(props)}")
    url = f"https://cloudformation-waitcondition-{region}.s3.amazonaws.com/{account}/{name}"
    return _Made(url, {}, lambda: None)


_EMULATED: dict[str, Callable[[str, dict[str, Any], str, str], _Made]] = {
    "AWS::CloudFormation::WaitConditionHandle": _wait_condition_handle,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::AutoScaling::ScalingPolicy": _scaling_policy,
    "AWS::AutoScaling::WarmPool": _warm_pool,
    "AWS::EC2::SecurityGroupEgress": _egress,
}
"""The types moto's CloudFormation skips that the emulator creates through moto's backends."""

# The name property of each emulated type: given, it names the resource; else CloudFormation generates one.
_NAME_PROPERTIES = {"AWS::CloudWatch::Alarm": "AlarmName", "AWS::AutoScaling::ScalingPolicy": "PolicyName"}


class _Maker:
    """What moto's CloudFormation asks of a resource class, for one emulated type."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def has_cfn_attr(self, attribute: str) -> bool:
        return True

    def create_from_cloudformation_json(
        self, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
    ) -> _Made:
        props = dict(cloudformation_json.get("Properties") or {})
        name = props.pop(_NAME_PROPERTIES.get(self.kind, ""), resource_name)
        return _EMULATED[self.kind](name, props, account_id, region_name)

    def update_from_cloudformation_json(
        self,
        original_resource: _Made,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _Made:
        # Replace it: delete the old, create the new, under the same generated name when none is given.
        original_resource.remove()
        name = original_resource.attributes.get("PolicyName") or original_resource.physical_resource_id
        if self.kind == "AWS::EC2::SecurityGroupEgress":
            name = new_resource_name
        return self.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

    def delete_from_cloudformation_json(self, *_: Any) -> None:
        return None  # _Made.delete did it


class _Skipping(_Maker):
    """A type neither moto nor the emulator can create: a _Skipped placeholder, listed in the events."""

    def create_from_cloudformation_json(self, *_: Any, **__: Any) -> _Made:
        return _Skipped(self.kind)

    def update_from_cloudformation_json(self, original_resource: _Made, *_: Any, **__: Any) -> _Made:
        # moto passes its arguments by keyword (a positional-only signature failed every update of
        # such a resource with "unexpected keyword argument 'new_resource_name'").
        original_resource.winworkers_note = f"NOT UPDATED by the emulator: not modelled (moto has no {self.kind})"
        return original_resource


def _with_emulated_types(resource_class_from_type: Any) -> Any:
    def find(resource_type: str) -> Any:
        if resource_type in _EMULATED:
            return _Maker(resource_type)
        found = resource_class_from_type(resource_type)
        return found if found is not None else _Skipping(resource_type)

    return find


def coverage(types: Any) -> dict[str, str]:
    """What the emulator does with each resource type: "moto" (moto's CloudFormation
    creates it), "emulator" (created through moto's backend, patch 11) or "not created"
    (listed in the deploy output). Needs moto."""
    from moto.cloudformation.parsing import get_model_map

    def what(kind: str) -> str:
        if kind in _EMULATED:
            return "emulator"
        return "moto" if kind in get_model_map() or kind.startswith("Custom::") else "not created"

    return {kind: what(kind) for kind in sorted(set(types))}


def coverage_table(types: Any) -> str:
    """coverage(types) as the README's Markdown table."""
    meaning = {
        "moto": "moto's CloudFormation creates it",
        "emulator": "created through moto's backend by the emulator, its properties checked against the API",
        "not created": "NOT created: listed in the deploy output (its event and the stack's)",
    }
    rows = ["| Resource type | Emulator | What happens |", "| --- | --- | --- |"]
    rows += [f"| `{kind}` | {how} | {meaning[how]} |" for kind, how in coverage(types).items()]
    return "\n".join(rows) + "\n"


def _note(resource: Any) -> str:
    """What an event about resource must say beyond its status: an emulator gap, or
    the resources a nested stack did not create."""
    note = getattr(resource, "winworkers_note", "")
    if not note and hasattr(resource, "resource_map"):  # a nested stack
        note = _skipped_summary(resource)
    return str(note)


def _skipped_summary(stack: Any) -> str:
    parsed = getattr(stack.resource_map, "_parsed_resources", {})
    skipped = [f"{r.logical_resource_id} ({r.cf_resource_type})" for r in parsed.values() if isinstance(r, _Skipped)]
    if not skipped:
        return ""
    from winworkers.deploy.base import counted

    return f"the emulator did NOT create {counted(len(skipped), 'resource')}: {', '.join(sorted(skipped))}"


def _kept_when_not_updatable(parse_and_update_resource: Any) -> Any:
    # moto returns None for a type without an update handler and stores that None as the resource.
    def update(logical_id: str, resource_json: dict[str, Any], resources_map: Any, *args: Any, **kwargs: Any) -> Any:
        resource = parse_and_update_resource(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is None and logical_id in resources_map._parsed_resources:
            resource = resources_map._parsed_resources[logical_id]
            kind = resource_json.get("Type", "")
            resource.winworkers_note = f"NOT UPDATED by the emulator: moto cannot update {kind}; kept as it was"
        return resource

    return update


def _endpoint_modified_in_place(_: Any) -> Any:
    # AWS::EC2::VPCEndpoint's schema lists none of these as create-only: CloudFormation calls
    # ModifyVpcEndpoint (its update handler's permission) and the endpoint keeps its id.
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVpcEndpoint.html
    def update(  # moto calls it with these names as keywords
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        import json

        properties = cloudformation_json.get("Properties", {})

        def change(key: str, current: list[str] | None) -> tuple[list[str] | None, list[str] | None]:
            wanted, now = set(properties.get(key) or []), set(current or [])
            return sorted(wanted - now) or None, sorted(now - wanted) or None

        add_subnets, remove_subnets = change("SubnetIds", original_resource.subnet_ids)
        add_groups, remove_groups = change("SecurityGroupIds", original_resource.security_group_ids)
        add_tables, remove_tables = change("RouteTableIds", original_resource.route_table_ids)
        policy = properties.get("PolicyDocument")
        original_resource.modify(
            json.dumps(policy) if isinstance(policy, dict) else policy,
            add_subnets,
            remove_subnets,
            add_tables,
            remove_tables,
            add_groups,
            remove_groups,
        )
        return original_resource

    return classmethod(update)


def _retained(resource_json: dict[str, Any]) -> bool:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html
    return resource_json.get("DeletionPolicy") == "Retain"


def _retaining(delete_resource: Any) -> Any:
    # An update that removes a resource deletes it unless it is retained (moto deletes it).
    def delete(resources_map: Any, parsed_resource: Any, resource_json: dict[str, Any]) -> Any:
        if not _retained(resource_json):
            return delete_resource(resources_map, parsed_resource, resource_json)
        logical_id = getattr(parsed_resource, "logical_resource_id", "")
        physical = getattr(parsed_resource, "physical_resource_id", "")
        truth.retain(resource_json.get("Type", ""), str(physical))
        _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_SKIPPED")
        return None

    return delete


def _recording_retained(delete: Any) -> Any:
    # moto's stack deletion already keeps retained resources, without an event.
    def run(resources_map: Any) -> Any:
        for logical_id, resource_json in resources_map._resource_json_map.items():
            resource = resources_map._parsed_resources.get(logical_id)
            if _retained(resource_json) and resource is not None and not isinstance(resource, str):
                physical = getattr(resource, "physical_resource_id", "")
                truth.retain(resource_json.get("Type", ""), str(physical))
                _record(resources_map, logical_id, resource_json.get("Type", ""), physical, "DELETE_SKIPPED")
        return delete(resources_map)

    return run


def _with_outputs_and_skips(execute_change_set: Any) -> Any:
    def execute(backend: Any, change_set_name: str, stack_name: str | None = None) -> None:
        execute_change_set(backend, change_set_name, stack_name)
        stack = backend.describe_change_set(change_set_name).stack
        if stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/outputs-section-structure.html
            stack._parse_template()
            stack.output_map = stack._create_output_map()
            summary = _skipped_summary(stack)
            if summary and stack.events:
                stack.events[-1].resource_status_reason = summary

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
