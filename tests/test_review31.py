"""Review 31 (d4a0f19..review31: tests lint "as deployed" through cfn-lint's parameter sets,
test_lint.lint_deployed; the emulator keeps each stack event's serialized XML).

Each test marked FINDING fails on the reviewed code and passes once the finding is fixed; each marked
SOUND pins a claim the review checked and found to hold (it passes). The findings compare lint_deployed
with the form it replaced (`_copies`: cfn-lint on a copy of the template whose parameter Defaults are a
deployment's values, one copy per deployment, as tests/test_embedding_lint.py did at d4a0f19) on small
planted templates; the cfn-lint read is the pinned 1.58.0's source (.venv/.../site-packages/cfnlint/).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cfnlint.api import lint
from test_lint import lint_deployed, lint_options

from winworkers.constraints import value_problems
from winworkers.emulator.cloudformation import _events_serialized_once
from winworkers.renderings import with_defaults

GOOD = "0a1b2c3d"  # 8 hex digits: subnet-0a1b2c3d is an AWS::EC2::Subnet.Id (cfn-lint's pattern: 8 or 17 digits)


def _copies(template: Mapping[str, Any], deployments: Sequence[Mapping[str, str]]) -> list[str]:
    """The replaced form: each deployment's values as the Defaults of a copy, each copy linted alone."""
    return [
        f"copy {n}: {m.rule.id} {m.message}"
        for n, values in enumerate(deployments)
        for m in lint(json.dumps(with_defaults(template, values)), config=lint_options())
    ]


def _instance(parameters: dict[str, Any], subnet: Any, **more: Any) -> dict[str, Any]:
    properties = {"ImageId": "ami-0a1b2c3d4e5f67890", "SubnetId": subnet, **more}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Resources": {"Worker": {"Type": "AWS::EC2::Instance", "Properties": properties}},
    }


def test_a_sub_over_a_deployment_value_is_checked_for_every_deployment() -> None:
    """FINDING (High). lint_deployed passes an Fn::Sub whose value one deployment breaks, as long as
    another deployment's value is valid; the copies caught it. cfn-lint resolves a Sub's variables with
    the Sub's own validator (jsonschema/_resolvers_cfn.py `sub`, `_sub_parameter_expansion`: the Ref's
    context, with is_resolved_from_parameters=True, is not carried), so BaseFn.resolve
    (rules/functions/_BaseFn.py) sees a resolution "not from parameters" and returns at the first one
    without errors, dropping the errors of every other parameter set. A Ref or Fn::Join carries the
    flag and is checked for each set. Fn::Sub is troposphere's usual way to build ARNs and names from
    parameters, and every test that moved to lint_deployed lints 3 to 8 deployments at once: a Sub
    that only some deployments' values break now lints clean. The order does not matter (the bad
    deployment first or last); Fn::If over the Sub behaves the same. Latent today: in the shipped
    templates and test_embedding's parents, Fn::Sub names parameters only in UserData (scanned), so
    no current test was seen to lose a finding; the next Sub over a deployment value would."""
    template = _instance({"Id": {"Type": "String", "Default": GOOD}}, {"Fn::Sub": "subnet-${Id}"})
    deployments = [{"Id": GOOD}, {"Id": "zz"}]
    assert [f.split()[2] for f in _copies(template, deployments)] == ["W1031"]  # the old form: copy 1
    assert lint_deployed(template, deployments) != [], "deployment 1 makes SubnetId subnet-zz"


def test_an_allowed_value_of_a_parameter_no_deployment_names_meets_each_deployment_s_values() -> None:
    """FINDING (Medium). A parameter that no deployment names (the tests' deployments name 8 to 10 of the
    feature's 48 parameters: WarmPool, WindowsVersion, ImageSource, LogRetentionDays... keep their
    Defaults) is resolved through its Default only once a parameter set is in play
    (context/context.py Context.ref_value: "we default to the parameter values if the parameter isn't
    in that set"), where a copy resolved it through every AllowedValue (and a Number through Default,
    MinValue and MaxValue) together with the deployment's values. So a deployment's value that breaks
    with another allowed value of an unnamed parameter is no longer found; the as-built lint combines
    the allowed values with the template's own Defaults only. Whether it is found depends on the order
    of the Refs: after a Ref resolved from a set, the context has parameter_sets=None and a later Ref
    falls back to AllowedValues (Fn::Join [Tail, Head] is caught, [Head, Tail] is not)."""
    parameters = {
        "Head": {"Type": "String", "AllowedValues": ["", "4e5f6789a"], "Default": ""},
        "Tail": {"Type": "String", "Default": GOOD},
    }
    template = _instance(parameters, {"Fn::Join": ["", ["subnet-", {"Ref": "Head"}, {"Ref": "Tail"}]]})
    deployments = [{"Tail": "0a1b2c3d4e5f6789a"}]  # 17 digits: with Head=4e5f6789a, 26
    assert "W1032" in {f.split()[2] for f in _copies(template, deployments)}
    assert "W1032" in {f.split()[4] for f in lint_deployed(template, deployments)}


def test_a_value_its_parameter_s_java_pattern_refuses_is_found_as_e2015_found_it() -> None:
    """FINDING (Low). lint_deployed says value_problems does "what E2015 did for the Defaults"; it does
    not for an AllowedPattern Python's re cannot compile: value_problems skips it ("CloudFormation will
    judge it", winworkers/constraints.py _check_item), where E2015 (rules/parameters/Default.py) reads it
    with the `regex` module, which knows Java's \\p{...} classes as CloudFormation does; E2900 checks no
    pattern at all (deployment_files/Parameters.py reads a key "Pattern", not "AllowedPattern"). The
    feature's own patterns all compile with re today (checked), so this bites a platform's parent, and
    the deploy pre-check (check_parameters) shares the gap."""
    parameters = {
        "Team": {"Type": "String", "Default": "ABC", "AllowedPattern": "^\\p{Lu}+$"},
        "Subnet": {"Type": "String", "Default": f"subnet-{GOOD}"},
    }
    template = _instance(parameters, {"Ref": "Subnet"}, Tags=[{"Key": "Team", "Value": {"Ref": "Team"}}])
    deployments = [{"Team": "abc"}]
    assert [f.split()[2] for f in _copies(template, deployments)] == ["E2015"]
    assert value_problems(template, deployments[0]) != [] or lint_deployed(template, deployments) != []


def test_register_284_copies_evaluated_no_condition_from_a_default() -> None:
    """FINDING (Low, the register's rationale). Row 284 and lint_deployed's docstring say cfn-lint
    "evaluates no Condition from a Default". It does: a Ref resolved from a Default carries
    ref_values={name: Default} and jsonschema/validators.py resolve_value keeps the value only if
    conditions.satisfiable(<the conditions in force>, ref_values) holds, so a copy never checked a Ref
    in a resource whose Condition its Default makes false. The row should say so (and that parameter
    sets do the same with all of a set's values, which is why a switch-off deployment checks nothing
    of the fleet). (Lead, at the fix: lint_deployed no longer uses parameter sets, and row 284 now says a
    resolution is judged under the Conditions with the value resolved; this test holds the corrected words:
    the Condition that the Default makes false hides the finding.)"""
    parameters = {"Subnet": {"Type": "String", "Default": "sn-1"}}
    plain = _instance(parameters, {"Ref": "Subnet"})
    conditioned = {
        **_instance(parameters, {"Ref": "Subnet"}),
        "Conditions": {"Listed": {"Fn::Equals": [{"Ref": "Subnet"}, f"subnet-{GOOD}"]}},
    }
    conditioned["Resources"]["Worker"]["Condition"] = "Listed"

    def ids(template: dict[str, Any]) -> list[str]:
        return [m.rule.id for m in lint(json.dumps(template), config=lint_options())]

    assert ids(plain) == ["W1030"]
    assert ids(conditioned) == []


def test_an_ssm_typed_parameter_s_deployment_value_lints_clean() -> None:
    """FINDING (Low; the new form wrongly fails). A deployment's value for an
    AWS::SSM::Parameter::Value<...> parameter is the name of an SSM parameter; a copy's Default of
    one was never resolved (context.Parameter skips SSM types), but a parameter set's value is
    resolved as is (Context.ref_value does not ask the type), so ImageId "is not" an AMI id. A
    platform parent that takes its AMI from SSM (AWS's own public parameters for Windows AMIs) cannot
    be linted as deployed. (E2900 also takes AWS::SSM::Parameter::Value<List<String>> for a list,
    "List" in the type, while rules.split_list leaves it a string.)"""
    parameters = {
        "Image": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": "/platform/ami"},
        "Subnet": {"Type": "String", "Default": f"subnet-{GOOD}"},
    }
    template = _instance(parameters, {"Ref": "Subnet"})
    template["Resources"]["Worker"]["Properties"]["ImageId"] = {"Ref": "Image"}
    deployments = [{"Image": "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base"}]
    assert _copies(template, deployments) == []
    assert lint_deployed(template, deployments) == []


def test_a_ref_and_a_join_are_checked_for_every_deployment() -> None:
    """SOUND. Where the Ref's context is carried (a Ref, Fn::Join, Fn::Select), each parameter set is
    checked: a value only the second deployment breaks is found, and named."""
    template = _instance({"Id": {"Type": "String", "Default": f"subnet-{GOOD}"}}, {"Ref": "Id"})
    findings = lint_deployed(template, [{"Id": f"subnet-{GOOD}"}, {"Id": "sn-1"}])
    assert [f.split()[4] for f in findings] == ["W1030"] and findings[0].startswith("copy of deployment 1:")
    joined = _instance({"Id": {"Type": "String", "Default": GOOD}}, {"Fn::Join": ["-", ["subnet", {"Ref": "Id"}]]})
    assert [f.split()[4] for f in lint_deployed(joined, [{"Id": GOOD}, {"Id": "zz"}])] == ["W1032"]


# The emulator's kept XML (winworkers/emulator/cloudformation.py _events_serialized_once).


def _stack_events(count: int) -> list[Any]:
    from moto.cloudformation.models import Event

    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/ww-r31/0a1b"
    return [
        Event(stack, "ww-r31", f"R{n}", f"r{n}", "AWS::SQS::Queue", "CREATE_COMPLETE", None, None) for n in range(count)
    ]


def _bodies(serializer_classes: Sequence[type], events: list[Any]) -> list[str]:
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.serialize import XFormedAttributePicker
    from moto.core.utils import get_service_model

    operation = get_service_model("cloudformation").operation_model("DescribeStackEvents")
    picker = XFormedAttributePicker(response_transformers=CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER)
    return [
        re.sub(r"<RequestId>[^<]*</RequestId>|\"RequestId\": \"[^\"]*\"", "", str(body))
        for cls in serializer_classes
        for body in [cls(operation_model=operation, value_picker=picker).serialize({"StackEvents": events})["body"]]
    ]


def test_the_kept_event_xml_is_moto_s_under_threads_both_protocols_and_changes() -> None:
    """SOUND. With the cache (a fresh wrapper of moto's own serializer), DescribeStackEvents' body is
    moto's for the query (XML) and the query-JSON serializers alternating on the same events (the key
    holds the serializer's class), from 8 threads at once, and after an event changed in place (every
    attribute of moto's Event is an immutable value, so the key's snapshot of vars() cannot go stale;
    the snapshot is taken before the XML is made, so a change during it is at worst made again).
    Checked, not pinned: the kept dicts are shared between answers but nothing mutates them
    (xmltodict.unparse, json.dumps); the events live in moto's Event.instances_tracked until a reset,
    so "weakly: gone with it" frees them only then, and until then the cache about doubles the events'
    memory in a long-running emulator."""
    from unittest import mock

    from moto.core.serialize import QueryJSONSerializer, QuerySerializer, ResponseSerializer

    current = ResponseSerializer._serialize_type_structure
    own = getattr(current, "__wrapped__", current)
    events = _stack_events(150)
    classes = (QuerySerializer, QueryJSONSerializer)
    with mock.patch.object(ResponseSerializer, "_serialize_type_structure", own):
        expected = _bodies(classes, events)
    answers: list[list[str]] = []
    made: list[Any] = []

    def counted(serializer: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        made.extend([value] if type(value) is type(events[0]) else [])
        own(serializer, serialized, value, shape, key)

    with mock.patch.object(ResponseSerializer, "_serialize_type_structure", _events_serialized_once(counted)):
        threads = [threading.Thread(target=lambda: answers.append(_bodies(classes, events))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # One entry an event: the two serializers in turn replace it (the right bytes, no saving); one
        # serializer again and again (the watcher's DescribeStackEvents) serializes each event once.
        _bodies(classes[:1], events)
        made.clear()
        assert _bodies(classes[:1], events) == expected[:1] and made == [], "each event's XML kept"
        events[0].resource_status_reason = "changed after it was read"
        changed = _bodies(classes, events)
        assert made[:1] == [events[0]], "the changed event serialized anew"
    assert answers == [expected] * 8
    assert all("changed after it was read" in body for body in changed)
    with mock.patch.object(ResponseSerializer, "_serialize_type_structure", own):
        assert _bodies(classes, events) == changed
