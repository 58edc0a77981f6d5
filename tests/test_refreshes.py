"""Issue 25: which parameter changes refresh the running workers, derived from the template
(what reaches the launch template's properties or the refresh custom resource's), one source
for the table of docs/updates.md (docs.refresh_rows) and the deploy preview (deploy.changes)."""

from __future__ import annotations

import copy
from typing import Any

from readme_table import document_of

from winworkers.ami_refresh import ROLLED_OUT
from winworkers.deploy.changes import from_change_set, refresh_inputs, refresh_triggers, resources_holding
from winworkers.docs import refresh_rows

TABLE = document_of("refreshes")  # the page that holds the generated table (docs/updates.md)
SWITCH = "EnableWinTaskScriptService"


def _refreshing(template: dict[str, Any]) -> set[str]:
    return {name for name, what, _ in refresh_rows(template) if what == "refreshes the workers"}


def test_the_drain_time_reaches_the_workers_so_a_change_refreshes_them(feature: dict[str, Any]) -> None:
    # DrainSeconds is in the worker's config line (the UserData): a new launch template version.
    assert "WinDrainSeconds" in _refreshing(feature)
    assert refresh_inputs(feature)["WinDrainSeconds"] == ("WinLaunchTemplate",)
    row = next(
        line for line in TABLE.read_text(encoding="utf-8").splitlines() if line.startswith("| `WinDrainSeconds`")
    )
    assert "refreshes the workers" in row, row


def test_the_triggers_are_the_launch_template_and_what_the_refresh_function_compares(feature: dict[str, Any]) -> None:
    triggers = refresh_triggers(feature)
    assert set(triggers) == {"WinLaunchTemplate", "WinFleetRefresh"}
    assert set(triggers["WinFleetRefresh"]) == set(ROLLED_OUT), "the properties whose change starts a refresh"
    assert "LaunchTemplateData" in triggers["WinLaunchTemplate"]


def test_a_parameter_is_classed_by_where_it_flows_not_by_a_list(feature: dict[str, Any]) -> None:
    planted = copy.deepcopy(feature)
    planted["Parameters"].update({n: {"Type": "String"} for n in ("PData", "PCond", "PMeta", "PGroup")})
    planted["Conditions"]["PCondSet"] = {"Fn::Equals": [{"Ref": "PCond"}, "x"]}
    lt = planted["Resources"]["WinLaunchTemplate"]
    data = lt["Properties"]["LaunchTemplateData"]
    data["UserData"] = {"Fn::Join": ["", [data["UserData"], {"Fn::Sub": "# ${PData}"}]]}
    data["EbsOptimized"] = {"Fn::If": ["PCondSet", True, {"Ref": "AWS::NoValue"}]}
    lt["Metadata"]["Planted"] = {"Ref": "PMeta"}  # Metadata alone makes no new version (row 79)
    planted["Resources"]["WinGroup"]["Properties"]["MaxSize"] = {"Ref": "PGroup"}
    refreshing = _refreshing(planted)
    assert {"PData", "PCond"} <= refreshing
    assert not {"PMeta", "PGroup"} & refreshing


def test_a_replaced_resource_that_the_workers_name_refreshes_them(feature: dict[str, Any]) -> None:
    rows = {name: (what, through) for name, what, through in refresh_rows(feature)}
    assert rows["WinVpcId"] == ("refreshes the workers", "`WinLaunchTemplate` (replaces `WinWorkerSecurityGroup`)")
    assert "`WinSubnetA`" in rows["WinVpcCidr"][1]
    assert rows["WinMinSize"][0] == rows["WinInstanceTypes"][0] == "nothing is refreshed"
    assert rows[SWITCH][0].startswith("creates or deletes")


def test_a_resource_replaced_under_a_get_att_reaches_the_workers(feature: dict[str, Any]) -> None:
    # The launch template names its instance profile by Fn::GetAtt (Arn): a parameter that
    # replaced the profile would change the data, so a new version.
    data = feature["Resources"]["WinLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["WinInstanceProfile", "Arn"]}}
    planted = copy.deepcopy(feature)
    planted["Parameters"]["PProfile"] = {"Type": "String"}
    assert refresh_inputs(planted, {"PProfile": {"WinInstanceProfile"}})["PProfile"] == ("WinLaunchTemplate",)
    assert "PProfile" not in refresh_inputs(planted, {"PProfile": {"WinAlarmTopicSubscription"}})


def _changed(value: str) -> str:
    return value + "1" if value else "x"


def test_the_deploy_preview_predicts_the_same_refreshes(feature: dict[str, Any]) -> None:
    # From the templates alone (what an emulator's change set leaves out), for each parameter
    # changed on its own, the preview starts a refresh exactly when the table says so.
    declared = feature["Parameters"]
    old = {name: str(p.get("Default", "")) for name, p in declared.items()} | {SWITCH: "true"}
    current = {n: feature["Resources"][n]["Type"] for n in resources_holding(feature, old)}
    direct = refresh_inputs(feature)
    for name in sorted(set(declared) - {SWITCH}):
        new = old | {name: _changed(old[name])}
        plan = from_change_set([], feature, feature, new, old, current)
        assert bool(plan.refresh) == (name in direct), (name, plan.refresh)
