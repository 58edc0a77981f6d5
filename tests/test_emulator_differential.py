"""Differential table (issue 26): a sequence of operations on one stack of the feature, each judged
against what CloudFormation documents, by asking moto's services what exists:

- a resource is replaced (its physical id changes) only when a create-only property of its
  registry schema changes, which winworkers.update_path derives from cfn-lint's schemas; every
  other resource present before and after keeps its physical id. Where the emulator cannot do
  what CloudFormation does, its event says NOT MODELLED (or NOT UPDATED), never silence;
- a resource whose Condition turns false is deleted, one it turns true is created;
- a DeletionPolicy Retain resource outlives both an update that removes it and the deletion.

The nested parent's update in place is tests/test_emulator_defects.py (2.).
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from conftest import ROOT, TEMPLATE_BUCKET, stack_events
from winworkers.deploy import Clients, delete, deploy
from winworkers.parameters import SWITCH
from winworkers.renderings import enabled_parameters
from winworkers.update_path import update_path

REGION = "us-east-1"
FEATURE = ROOT / "templates" / "winworkers.json"
STACK = "differential"
TEMPLATE = json.loads(FEATURE.read_text())
REPLACES, _ = update_path(TEMPLATE)
RETAINED = sorted(n for n, r in TEMPLATE["Resources"].items() if r.get("DeletionPolicy") == "Retain")
SPOT = {"WinOnDemandPercentage": "0", "WinInstanceTypes": "m6i.large,m5.large"}

# (operation, the parameters it changes: a deploy keeps the others' values); expectations derived below.
TABLE: list[tuple[str, dict[str, str]]] = [
    ("create", {}),
    ("update a group parameter (WinMaxSize)", {"WinMaxSize": "6"}),
    ("update a launch template parameter (WinRootVolumeSize)", {"WinRootVolumeSize": "80"}),
    ("update an alarm parameter (WinBootAlarmSeconds)", {"WinBootAlarmSeconds": "1800"}),
    ("update a log parameter (WinLogRetentionDays)", {"WinLogRetentionDays": "30"}),
    ("update a network parameter that replaces (WinVpcCidr)", {"WinVpcCidr": "10.251.0.0/22"}),
    ("warm pool on", {"WinWarmPool": "stopped"}),
    ("warm pool off", {"WinWarmPool": "off"}),
    ("Spot on", SPOT),
    ("switch off", {SWITCH: "false"}),
]


def _client(endpoint: str, name: str) -> Any:
    return boto3.client(
        name, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def _physical(aws: Clients) -> dict[str, str]:
    summaries = aws.cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries if r["PhysicalResourceId"]}


def _notes(aws: Clients, seen: set[str]) -> dict[str, str]:
    """The new events' reasons by logical id (what the emulator said it did not model)."""
    events = stack_events(aws.cloudformation, STACK)
    fresh = [e for e in events if e["EventId"] not in seen]
    seen |= {e["EventId"] for e in events}
    notes: dict[str, str] = {}
    for event in fresh:
        notes[event["LogicalResourceId"]] = " ".join(
            filter(None, (notes.get(event["LogicalResourceId"]), event.get("ResourceStatusReason")))
        )
    return notes


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {p for p, v in after.items() if before.get(p, enabled_parameters().get(p)) != v}


def _judge(step: str, replaced_by_schema: set[str], before: dict[str, str], after: dict[str, str], notes: Any) -> None:
    """Replaced exactly as the schemas say, or the emulator said, on that resource's own events, that it
    did not model it (a replacement cascading through create-only references included)."""
    for name in sorted(set(before) & set(after)):
        said = "NOT MODELLED" in notes.get(name, "") or "NOT UPDATED" in notes.get(name, "")
        was_replaced = before[name] != after[name]
        expected = name in replaced_by_schema
        assert was_replaced == expected or said, (step, name, "replaced" if was_replaced else "kept")


def test_each_operation_ends_as_cloudformation_documents(aws: Clients, endpoint: str) -> None:
    seen: set[str] = set()
    values: dict[str, str] = {}
    physical: dict[str, str] = {}
    for step, change in TABLE:
        parameters = {**(values or enabled_parameters()), **change}
        result = deploy(
            aws,
            STACK,
            FEATURE,
            parameters,
            template_bucket=TEMPLATE_BUCKET,
            poll_seconds=0.01,
            echo=lambda _: None,
            yes=True,
        )
        assert result.status.endswith("_COMPLETE") and "ROLLBACK" not in result.status, (step, result.status)
        after, notes = _physical(aws), _notes(aws, seen)
        replaced = set().union(*(REPLACES.get(p, set()) for p in _changed(values, parameters))) if values else set()
        _judge(step, replaced, physical, after, notes)
        _check_state(step, parameters, after, aws, endpoint)
        values, physical = parameters, after
        group = after.get("WinGroup")
        if group:  # the emulator's refreshes never end: cancel the step's, as an operator would
            refreshes = _client(endpoint, "autoscaling")
            for refresh in refreshes.describe_instance_refreshes(AutoScalingGroupName=group)["InstanceRefreshes"]:
                if refresh["Status"] == "InProgress":
                    refreshes.cancel_instance_refresh(AutoScalingGroupName=group)
    logs = {g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]}
    assert delete(aws, STACK, poll_seconds=0.01, echo=lambda _: None, yes=True)
    groups = _client(endpoint, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert not [g for g in groups if g["AutoScalingGroupName"].startswith(STACK)]
    left = {g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]}
    assert {g for g in logs if g.startswith(STACK)} == {g for g in left if g.startswith(STACK)}  # retained


def _check_state(step: str, parameters: dict[str, str], physical: dict[str, str], aws: Clients, endpoint: str) -> None:
    autoscaling = _client(endpoint, "autoscaling")
    if parameters.get(SWITCH) == "false":
        assert set(physical) == {"WinStanding"}, step
        logs = {g["logGroupName"] for g in _client(endpoint, "logs").describe_log_groups()["logGroups"]}
        assert len([g for g in logs if g.startswith(STACK)]) >= len(RETAINED) - 1, step  # retained, not deleted
        return
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[physical["WinGroup"]])[
        "AutoScalingGroups"
    ]
    assert group["MaxSize"] == int(parameters.get("WinMaxSize", "4")), step
    pool = autoscaling.describe_warm_pool(AutoScalingGroupName=physical["WinGroup"]).get("WarmPoolConfiguration")
    assert bool(pool) == (parameters.get("WinWarmPool", "off") != "off"), step
    assert ("WinGroupWarmPool" in physical) == (parameters.get("WinWarmPool", "off") != "off"), step
    spot = parameters.get("WinOnDemandPercentage", "100") != "100"
    assert bool(group.get("MixedInstancesPolicy", {}).get("LaunchTemplate")) == spot, step


def test_the_coverage_table_lists_every_type_the_templates_can_render() -> None:
    # winworkers.handler_permissions holds every type any configuration renders (scripts/handler_permissions.py).
    from readme_table import document_of

    from winworkers.emulator import coverage
    from winworkers.handler_permissions import HANDLER_PERMISSIONS

    page = document_of("emulator-coverage").read_text()
    table = page.split("<!-- emulator-coverage:begin -->")[1].split("<!-- emulator-coverage:end -->")[0]
    rendered = set(HANDLER_PERMISSIONS) - {"AWS::CloudFormation::CustomResource"}
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert rendered - listed == set()
    assert set(coverage(rendered)) == rendered
