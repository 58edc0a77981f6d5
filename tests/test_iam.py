"""winworkers.iam: the platform's own KMS keys (QueueKmsKeyArn, DataKmsKeyArn,
ArtifactKmsKeyArn) are usable exactly as SQS and S3 need them, and not at all when unset;
asserted on cloud-radar renderings (Fn::If evaluated) and on wired parents."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from troposphere import GetAtt, Parameter, Ref, Template
from troposphere.kms import Key

from conftest import as_dict, props, render
from winworkers import WorkersConfig, add_to, build_template, nested_stack
from winworkers.parameters import SWITCH
from winworkers.renderings import MODES, enabled_parameters

KEYS = {
    "QueueKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/11111111-aaaa-bbbb-cccc-000000000001",
    "DataKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/11111111-aaaa-bbbb-cccc-000000000002",
    "ArtifactKmsKeyArn": "arn:aws:kms:us-east-1:210987654321:key/11111111-aaaa-bbbb-cccc-000000000003",
}
# What each key may do, and through which service only.
EXPECTED = {
    "QueueKmsKeyArn": (["kms:Decrypt"], "sqs.us-east-1.amazonaws.com"),
    "DataKmsKeyArn": (["kms:Decrypt", "kms:GenerateDataKey"], "s3.us-east-1.amazonaws.com"),
    "ArtifactKmsKeyArn": (["kms:Decrypt"], "s3.us-east-1.amazonaws.com"),
}


def role_policies(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    """The instance role's inline policies: its own, and the AWS::IAM::Policy resources
    attached to it."""
    attached = [
        r["Properties"]
        for r in rendered["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and "WinInstanceRole" in r["Properties"]["Roles"]
    ]
    return [*props(rendered, "WinInstanceRole")["Policies"], *attached]


def kms_statements(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the instance role that names a kms: action."""
    return [
        statement
        for policy in role_policies(rendered)
        for statement in policy["PolicyDocument"]["Statement"]
        if any(action.startswith("kms:") for action in statement["Action"])
    ]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_without_keys_the_role_grants_no_kms_at_all(feature: dict[str, Any], mode: str) -> None:
    rendered = render(feature, enabled_parameters(mode=mode))
    assert [p["PolicyName"] for p in role_policies(rendered)] == ["least-privilege"]
    assert '"kms:' not in json.dumps(rendered["Resources"])


@pytest.mark.parametrize("given", [*KEYS, "all"])
def test_each_key_grants_exactly_what_its_service_needs_through_it_only(feature: dict[str, Any], given: str) -> None:
    names = list(KEYS) if given == "all" else [given]
    rendered = render(feature, enabled_parameters(**{name: KEYS[name] for name in names}))
    granted = sorted(
        (s["Resource"], s["Action"], s["Condition"]) for s in kms_statements(rendered) if s["Effect"] == "Allow"
    )
    expected = sorted(
        ([KEYS[name]], EXPECTED[name][0], {"StringEquals": {"kms:ViaService": EXPECTED[name][1]}}) for name in names
    )
    assert granted == expected
    assert len(kms_statements(rendered)) == len(names)


def test_kms_never_reaches_an_endpoint_policy(feature: dict[str, Any]) -> None:
    # SQS and S3 call KMS themselves: the endpoints carry no kms: action, and no KMS endpoint exists.
    rendered = render(feature, enabled_parameters(**KEYS))
    for name, resource in rendered["Resources"].items():
        if resource["Type"] == "AWS::EC2::VPCEndpoint":
            assert "kms" not in json.dumps(resource["Properties"]["PolicyDocument"]), name
            assert not resource["Properties"]["ServiceName"].endswith(".kms"), name


def test_the_keys_are_optional_kms_key_arns(feature: dict[str, Any]) -> None:
    for name in KEYS:
        spec = feature["Parameters"][f"Win{name}"]
        assert (spec["Default"], spec["ConstraintDescription"]) == ("", "empty or a KMS key ARN")
    from winworkers.constraints import check_inputs

    assert check_inputs(feature, enabled_parameters(**KEYS)) == []
    bad = check_inputs(feature, enabled_parameters(QueueKmsKeyArn="alias/platform-queue"))
    assert len(bad) == 1 and bad[0].startswith(
        "WinQueueKmsKeyArn='alias/platform-queue' is not allowed: empty or a KMS"
    )


def _key_policies(template: Template) -> dict[str, dict[str, Any]]:
    """The parent's AWS::IAM::Policy resources, by logical ID."""
    return {n: r for n, r in as_dict(template)["Resources"].items() if r["Type"] == "AWS::IAM::Policy"}


def test_a_wired_key_is_granted_without_a_condition_and_an_empty_one_not_at_all() -> None:
    parent = Template()
    key = parent.add_resource(Key("QueueKey", KeyPolicy={"Version": "2012-10-17", "Statement": []}))
    add_to(parent, wired={"QueueKmsKeyArn": GetAtt(key, "Arn"), "DataKmsKeyArn": ""})
    policies = _key_policies(parent)
    # The data key was wired empty: no policy. The artifact key is still a parameter.
    assert sorted(policies) == ["WinArtifactKeyPolicy", "WinQueueKeyPolicy"]
    queue = policies["WinQueueKeyPolicy"]
    # A Condition cannot read GetAtt: the policy exists whenever the feature does.
    assert queue["Condition"] == "WinEnabled"
    assert queue["Properties"]["Roles"] == [{"Ref": "WinInstanceRole"}]
    assert queue["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] == [
        {"Fn::Sub": ["${Key}", {"Key": {"Fn::GetAtt": ["QueueKey", "Arn"]}}]}
    ]
    assert policies["WinArtifactKeyPolicy"]["Condition"] == "WinHasArtifactKmsKey"
    assert "WinQueueKmsKeyArn" not in parent.parameters and "WinHasQueueKmsKey" not in parent.conditions
    # The workers boot only once their key policies exist: the group waits for the profile.
    profile = as_dict(parent)["Resources"]["WinInstanceProfile"]
    assert profile["Metadata"]["WaitsFor"] == [
        {"Ref": "WinQueueKeyPolicy"},
        {"Fn::If": ["WinHasArtifactKmsKey", {"Ref": "WinArtifactKeyPolicy"}, {"Ref": "AWS::NoValue"}]},
    ]


def test_a_key_wired_from_a_parents_parameter_stays_conditioned() -> None:
    parent = Template()
    parent.add_parameter(Parameter(SWITCH, Type="String", AllowedValues=["true", "false"], Default="false"))
    given = parent.add_parameter(Parameter("PlatformQueueKey", Type="String", Default=""))
    add_to(parent, wired={"QueueKmsKeyArn": Ref(given)})
    assert as_dict(parent)["Conditions"]["WinHasQueueKmsKey"] == {
        "Fn::And": [{"Condition": "WinEnabled"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "PlatformQueueKey"}, ""]}]}]
    }
    assert _key_policies(parent)["WinQueueKeyPolicy"]["Condition"] == "WinHasQueueKmsKey"


def test_nested_stacks_pass_the_keys_through() -> None:
    parent = Template()
    key = parent.add_resource(Key("DataKey", KeyPolicy={"Version": "2012-10-17", "Statement": []}))
    nested = nested_stack(
        parent, "https://b.s3.us-east-1.amazonaws.com/winworkers.json", wired={"DataKmsKeyArn": GetAtt(key, "Arn")}
    )
    passed = as_dict(parent)["Resources"][nested.stack.title]["Properties"]["Parameters"]
    assert passed["WinDataKmsKeyArn"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert passed["WinQueueKmsKeyArn"] == {"Ref": "WinQueueKmsKeyArn"}
    assert "WinDataKmsKeyArn" not in parent.parameters and "WinQueueKmsKeyArn" in parent.parameters
    # The child is the standalone template, where each key is a parameter with its condition.
    child = as_dict(build_template(WorkersConfig()))
    assert {f"WinHas{n.removesuffix('Arn')}" for n in KEYS} <= set(child["Conditions"])


def test_a_key_wired_by_its_id_is_refused() -> None:
    parent = Template()
    key = parent.add_resource(Key("QueueKey", KeyPolicy={"Version": "2012-10-17", "Statement": []}))
    with pytest.raises(ValueError, match=r'Ref of AWS::KMS::Key QueueKey gives its key ID.*GetAtt\(key, "Arn"\)'):
        add_to(parent, wired={"QueueKmsKeyArn": Ref(key)})
    with pytest.raises(ValueError, match="wired DataKmsKeyArn='alias/data' is not allowed: empty or a KMS key ARN"):
        add_to(Template(), wired={"DataKmsKeyArn": "alias/data"})


def _stable(resources: dict[str, Any]) -> dict[str, Any]:
    """Resources with cloud-radar's random stack id made fixed, to compare two renderings."""
    text = re.sub(r"stack/([^/]+)/[0-9a-f-]{36}", r"stack/\1/id", json.dumps(resources))
    return dict(json.loads(text))


def test_setting_a_key_on_a_running_stack_only_adds_its_policy(feature: dict[str, Any]) -> None:
    # The second deploy: each key set adds its policy to the role in place; the profile's
    # Metadata (what it waits for) changes, which replaces and refreshes nothing.
    before = _stable(render(feature, enabled_parameters())["Resources"])
    after = _stable(render(feature, enabled_parameters(**KEYS))["Resources"])
    assert sorted(set(after) - set(before)) == ["WinArtifactKeyPolicy", "WinDataKeyPolicy", "WinQueueKeyPolicy"]
    assert set(before) <= set(after)
    assert [name for name in before if before[name] != after[name]] == ["WinInstanceProfile"]
    assert before["WinInstanceProfile"]["Properties"] == after["WinInstanceProfile"]["Properties"]
