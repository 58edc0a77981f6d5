"""Custom resources served in-process (patch 10 of winworkers.emulator): the function's own inline code
runs for Create, Update and Delete, and its ResponseURL answer is honoured. The emulator's own: moto
would run the Lambda in Docker, on create only.
"""

from __future__ import annotations

from typing import Any

_endpoints: list[str] = []
"""The running emulators' URLs, newest last: the clients a custom resource handler gets."""


_clients: dict[tuple[str, str], dict[str, Any]] = {}
"""The clients handed to custom resource handlers, by emulator URL and Region (_handler_clients)."""

_responses: dict[str, dict[str, Any]] = {}
"""Custom resource responses received, by RequestId."""


class _CustomResourceFailed(Exception):
    """A custom resource's FAILED response (or none): the operation fails with its reason."""

    def __init__(self, logical_id: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id = logical_id


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


def _handler_clients(endpoint: str, region: str) -> dict[str, Any]:
    """The boto3 clients a handler gets on the emulator at endpoint in region, made once per emulator
    and Region, as a warm Lambda environment keeps the clients its code made (a client is stateless
    between calls; making one builds its class from botocore's model, the cost of several calls).
    local_aws forgets an emulator's clients when it stops (forget_clients)."""
    import boto3

    key = (endpoint, region)
    if key not in _clients:
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        names = ("autoscaling", "cloudformation", "ec2", "ssm")
        _clients[key] = {n: boto3.client(n, endpoint_url=endpoint, region_name=region, **keys) for n in names}
    return dict(_clients[key])  # the clients kept, the mapping the handler's own (as each function's in Lambda)


def forget_clients(endpoint: str) -> None:
    """Drop the handler clients of the emulator at endpoint (it stopped; its port may serve another)."""
    for key in [k for k in _clients if k[0] == endpoint]:
        del _clients[key]


def _serve(request: str, model: Any, properties: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the custom resource's function in-process for ``request``; its response, or raise its failure."""
    import urllib.parse

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
    clients = _handler_clients(endpoint, region)
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


def _update_custom(original_resource: Any, cloudformation_json: dict[str, Any], *_: str) -> Any:
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
