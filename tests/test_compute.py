"""The worker fleet: launch template, bootstrap, Auto Scaling group and scaling."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from conftest import props, render, resources_of
from winworkers.config import WINDOWS_VERSIONS
from winworkers.renderings import enabled_parameters


def _data(rendered: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = props(rendered, "WinLaunchTemplate")["LaunchTemplateData"]
    return data


def test_nobody_can_log_in(enabled: dict[str, Any]) -> None:
    data = _data(enabled)
    assert "KeyName" not in data
    text = json.dumps(enabled["Resources"])
    for secret in ("Password", "SecretsManager", "AWS::IAM::User", "AccessKey"):
        assert secret not in text
    harden = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]["harden"]
    commands = " ".join(c["command"] for c in harden["commands"].values())
    # AllowInboundRules False: the enabled allow rules (RDP, WinRM, file sharing) are ignored too.
    assert "Set-NetFirewallProfile -All -Enabled True -DefaultInboundAction Block -AllowInboundRules False" in commands
    assert "fDenyTSConnections -Value 1" in commands
    stopped = re.search(r"Get-Service ([\w,']+) -ErrorAction SilentlyContinue \| ForEach-Object \{ (.*?) \}", commands)
    assert stopped, commands
    assert set(stopped[1].split(",")) == {"'TermService'", "'WinRM'", "'AmazonSSMAgent'"}
    assert stopped[2] == "Stop-Service $_.Name -Force; Set-Service $_.Name -StartupType Disabled"


def test_instance_metadata_requires_imdsv2_with_hop_limit_one(enabled: dict[str, Any]) -> None:
    options = _data(enabled)["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 1)


def test_every_volume_is_encrypted_gp3(feature: dict[str, Any]) -> None:
    for kms in ("", "arn:aws:kms:us-east-1:123456789012:key/abcd-1234"):
        rendered = render(feature, enabled_parameters(KmsKeyArn=kms, RootVolumeSize="80"))
        mappings = _data(rendered)["BlockDeviceMappings"]
        assert mappings and all(m["Ebs"]["Encrypted"] is True and m["Ebs"]["VolumeType"] == "gp3" for m in mappings)
        assert mappings[0]["Ebs"]["VolumeSize"] == "80"
        assert mappings[0]["Ebs"].get("KmsKeyId") == (kms or None)
        assert mappings[0]["DeviceName"] == "/dev/sda1"  # the root device of AWS Windows AMIs


@pytest.mark.parametrize("version", [row.version for row in WINDOWS_VERSIONS])
def test_image_is_the_latest_aws_windows_ami_for_the_version(feature: dict[str, Any], version: str) -> None:
    rendered = render(feature, enabled_parameters(WindowsVersion=version))
    assert _data(rendered)["ImageId"] == (
        f"resolve:ssm:/aws/service/ami-windows-latest/Windows_Server-{version}-English-Full-Base"
    )
    env = props(rendered, "WinRefreshFunction")["Environment"]["Variables"]
    assert env["AMI_PARAMETER"] == f"/aws/service/ami-windows-latest/Windows_Server-{version}-English-Full-Base"
    assert env["AMI_PARAMETER"] == next(row.ami_parameter for row in WINDOWS_VERSIONS if row.version == version)


def test_user_data_is_plain_powershell_running_cfn_init_then_cfn_signal(enabled: dict[str, Any]) -> None:
    raw = base64.b64decode(_data(enabled)["UserData"])
    assert not raw.startswith(b"\x1f\x8b"), "gzipped user data is rejected by EC2Launch v2"
    script = raw.decode()
    # No <persist>: EC2Launch runs it once, at first boot (tests/test_lifecycle.py runs it).
    assert script.startswith("<powershell>") and script.rstrip().endswith("</powershell>")
    init = script.index("cfn-init.exe")
    signal = script.index("cfn-signal.exe")
    assert init < signal
    assert "--resource WinLaunchTemplate --configsets default" in script
    assert "-e $code" in script and "--resource WinGroup" in script
    assert script.count("'--url','https://cloudformation.us-east-1.amazonaws.com'") == 1
    assert len(raw) < 4096


def test_bootstrap_config_sets(enabled: dict[str, Any]) -> None:
    init = enabled["Resources"]["WinLaunchTemplate"]["Metadata"]["AWS::CloudFormation::Init"]
    assert init["configSets"]["default"] == ["harden", "agent", "service"]
    agent = init["agent"]
    # cfn-init installs the MSI itself and waits for it; no msiexec command, no separate download.
    assert agent["packages"] == {
        "msi": {
            "amazon-cloudwatch-agent": "https://amazoncloudwatch-agent-us-east-1.s3.us-east-1.amazonaws.com"
            "/windows/amd64/latest/amazon-cloudwatch-agent.msi"
        }
    }
    assert [path for path, f in agent["files"].items() if "source" in f] == []
    assert "msiexec" not in json.dumps(init).lower()
    order = sorted(agent["commands"])
    # 99-mark: the boot timings' mark (tests/test_lifecycle.py).
    assert order == ["01-wait-for-imds", "02-start", "03-start-late-and-retry", "99-mark"], (
        "the agent must wait for IMDS"
    )
    wait = agent["commands"]["01-wait-for-imds"]["command"]
    assert "http://169.254.169.254/latest" in wait and "api/token" in wait and "exit 1" in wait
    service = init["service"]
    assert service["sources"] == {
        "C:\\winworkers\\service": "https://example-platform-artifacts.s3.us-east-1.amazonaws.com/windows/worker-service.zip"
    }
    settings = service["files"]["C:\\winworkers\\worker.json"]["content"]
    assert settings["queue_url"] == "https://sqs.us-east-1.amazonaws.com/123456789012/example-platform-work"


def test_instance_role_is_least_privilege_and_has_no_ssm(enabled: dict[str, Any]) -> None:
    role = props(enabled, "WinInstanceRole")
    assert "ManagedPolicyArns" not in role
    # EC2 sends no aws:SourceAccount when it assumes the role: a condition on it would lock the workers out.
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["ec2.amazonaws.com"]} and "Condition" not in trust
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    actions = {a for s in statements for a in s["Action"]}
    assert not {a for a in actions if a.split(":")[0] in {"ssm", "ssmmessages", "ec2messages", "iam", "sts"}}
    assert "logs:CreateLogGroup" not in actions
    by_action = {a: s for s in statements for a in s["Action"]}
    assert by_action["sqs:ReceiveMessage"]["Resource"] == ["arn:aws:sqs:us-east-1:123456789012:example-platform-work"]
    assert by_action["cloudformation:SignalResource"]["Resource"] != ["*"]
    assert by_action["cloudwatch:PutMetricData"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "WinWorkers"}
    }
    assert by_action["s3:PutObject"]["Resource"] == ["arn:aws:s3:::example-platform-data/winworkers/*"]
    assert by_action["logs:PutLogEvents"]["Resource"] == [f"Win{n}.Arn" for n in ("WorkerLogs", "HostLogs")]


def test_group_replaces_without_losing_capacity(feature: dict[str, Any], enabled: dict[str, Any]) -> None:
    group = feature["Resources"]["WinGroup"]
    # No AutoScalingInstanceRefresh policy: its SkipMatching defaults to true, which a resolve:ssm:
    # image refuses; the refresh Lambda starts every refresh (tests/test_refresh_template.py).
    assert group["UpdatePolicy"] == {"AutoScalingScheduledAction": {"IgnoreUnmodifiedGroupSizeProperties": True}}
    assert props(enabled, "WinGroup")["InstanceMaintenancePolicy"] == {
        "MinHealthyPercentage": 100,
        "MaxHealthyPercentage": 200,
    }
    signal = group["CreationPolicy"]["ResourceSignal"]
    assert int(signal["Timeout"].removeprefix("PT").removesuffix("M")) >= 30


def test_capacity_and_tags(feature: dict[str, Any]) -> None:
    rendered = render(feature, enabled_parameters(MinSize="1", MaxSize="6", DesiredCapacity="2"))
    group = props(rendered, "WinGroup")
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == ("1", "6", "2")
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert tags["Feature"] == "windows-workers" and tags["Stack"] and tags["Name"]
    unset = props(render(feature, enabled_parameters()), "WinGroup")
    assert "DesiredCapacity" not in unset and unset["MinSize"] == "0"


def test_scaling_tracks_backlog_per_worker_and_starts_from_zero(feature: dict[str, Any]) -> None:
    rendered = render(feature, enabled_parameters(BacklogPerWorker="2"))
    config = props(rendered, "WinBacklogPolicy")["TargetTrackingConfiguration"]
    assert config["TargetValue"] == "2" and "DisableScaleIn" not in config
    queries = {q["Id"]: q for q in config["CustomizedMetricSpecification"]["Metrics"]}
    assert queries["backlog"]["Expression"] == "(visible + inflight) / serving"
    assert "ReturnData" not in queries["backlog"]
    assert [queries[q]["MetricStat"]["Metric"]["MetricName"] for q in ("visible", "inflight", "serving")] == [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "GroupInServiceInstances",
    ]
    assert all(queries[q]["ReturnData"] is False for q in ("visible", "inflight", "serving"))
    # The denominator is a group metric: the group must publish it.
    assert "GroupInServiceInstances" in props(rendered, "WinGroup")["MetricsCollection"][0]["Metrics"]
    start = props(rendered, "WinStartAlarm")
    assert start["AlarmActions"] == ["WinStartPolicy"]
    assert {q.get("Expression") for q in start["Metrics"]} >= {"IF(serving == 0, visible, 0)"}
    assert (start["Threshold"], start["ComparisonOperator"], start["TreatMissingData"]) == (
        0,
        "GreaterThanThreshold",
        "notBreaching",
    )
    policy = props(rendered, "WinStartPolicy")
    assert (policy["PolicyType"], policy["AdjustmentType"]) == ("StepScaling", "ChangeInCapacity")
    assert policy["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    kinds = [r["Type"] for r in rendered["Resources"].values()]
    assert kinds.count("AWS::AutoScaling::ScalingPolicy") == 2


def test_there_is_no_warm_pool_by_default(feature: dict[str, Any]) -> None:
    # WarmPool defaults to off: the cold mode, as in 0.2.0, with 0.2.0's UserData.
    assert feature["Parameters"]["WinWarmPool"]["Default"] == "off"
    assert not resources_of(render(feature, enabled_parameters()), "AWS::AutoScaling::WarmPool")
    assert not {"WinEnableWarmPool", "WinScaleInIdleMinutes"} & set(feature["Parameters"])


def test_the_warm_pool_is_stopped_bounded_and_reuses_scaled_in_workers(feature: dict[str, Any]) -> None:
    rendered = render(feature, enabled_parameters(WarmPool="stopped"))
    (name,) = resources_of(rendered, "AWS::AutoScaling::WarmPool")
    assert props(rendered, name) == {
        "AutoScalingGroupName": "WinGroup",  # cloud-radar's Ref of the group
        "PoolState": "Stopped",
        "MinSize": "1",
        "MaxGroupPreparedCapacity": "-1",
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    }
    sized = render(feature, enabled_parameters(WarmPool="stopped", WarmPoolMinSize="3", WarmPoolMaxPrepared="8"))
    assert (props(sized, name)["MinSize"], props(sized, name)["MaxGroupPreparedCapacity"]) == ("3", "8")


@pytest.mark.parametrize(
    ("switch", "mode", "pooled"),
    [("true", "stopped", True), ("true", "off", False), ("false", "stopped", False), ("false", "off", False)],
)
def test_the_warm_pool_exists_only_with_the_feature_and_the_mode(
    feature: dict[str, Any], switch: str, mode: str, pooled: bool
) -> None:
    rendered = render(feature, enabled_parameters(EnableWinTaskScriptService=switch, WarmPool=mode))
    assert bool(resources_of(rendered, "AWS::AutoScaling::WarmPool")) is pooled
    if switch == "true":
        # The UserData that runs at every boot comes with the pool, and only with it.
        script = base64.b64decode(_data(rendered)["UserData"]).decode()
        assert script.endswith("</powershell>\n<persist>true</persist>") is pooled
        assert ("target-lifecycle-state" in script) is pooled


def test_the_warm_pool_parameters_bound_what_putwarmpool_accepts(feature: dict[str, Any]) -> None:
    # PutWarmPool: MinSize from 0, MaxGroupPreparedCapacity from -1 (-1 unsets it).
    params = feature["Parameters"]
    assert params["WinWarmPool"]["AllowedValues"] == ["off", "stopped"]
    assert (params["WinWarmPoolMinSize"]["MinValue"], params["WinWarmPoolMinSize"]["MaxValue"]) == (0, 100)
    assert (params["WinWarmPoolMaxPrepared"]["MinValue"], params["WinWarmPoolMaxPrepared"]["MaxValue"]) == (-1, 100)


def test_every_alarm_fits_cloudwatchs_one_day_evaluation_window(enabled: dict[str, Any]) -> None:
    # EvaluationPeriods x Period may not exceed one day (PutMetricAlarm API reference).
    for name, alarm in resources_of(enabled, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        periods = [q["MetricStat"]["Period"] for q in properties.get("Metrics", []) if "MetricStat" in q]
        period = max(periods or [properties["Period"]])
        assert int(properties["EvaluationPeriods"]) * int(period) <= 86400, name


# sha256 of the cold mode's UserData as rendered here (enabled_parameters(), cloud-radar). A
# change of it replaces every worker of every stack at its next update: update the digest only
# with a CHANGELOG upgrade note saying so. 0.2.0 and 0.3.0 had
# 494f0817b19825d566fa1229b7a7b298e54b528514a1adb7f937c1a2c172bc27; Unreleased (i25-evidence):
# a failed bootstrap no longer ABANDONs the drain hook (register row 200).
USER_DATA_DIGEST = "4e03e3363cfecb0ba3672b572d26824d5058baa59e4c270407e5275cd63557f8"


def test_the_cold_mode_user_data_changes_only_with_an_upgrade_note(enabled: dict[str, Any]) -> None:
    import hashlib

    assert hashlib.sha256(_data(enabled)["UserData"].encode()).hexdigest() == USER_DATA_DIGEST


def test_a_warm_pool_group_asks_for_no_spot_and_no_mixed_instances(feature: dict[str, Any]) -> None:
    # PutWarmPool refuses a group with a mixed instances policy, or whose launch template asks for Spot.
    rendered = render(feature, enabled_parameters(WarmPool="stopped"))
    assert "MixedInstancesPolicy" not in props(rendered, "WinGroup")
    assert "InstanceMarketOptions" not in _data(rendered)
    # The pool names the group by Ref, so CloudFormation creates it after the group, whose
    # CreationPolicy then counts only the instances launched into service.
    (name,) = resources_of(feature, "AWS::AutoScaling::WarmPool")
    assert feature["Resources"][name]["Properties"]["AutoScalingGroupName"] == {"Ref": "WinGroup"}


@pytest.mark.parametrize(
    ("overrides", "count"), [({}, 0), ({"MinSize": "2"}, 2), ({"MinSize": "1", "DesiredCapacity": "3"}, 3)]
)
def test_creation_waits_45_minutes_for_a_signal_from_every_first_worker(
    feature: dict[str, Any], overrides: dict[str, str], count: int
) -> None:
    # docs/capacity.md "Spot" and docs/lifecycle.md: the group's creation waits (45 minutes at most) for a
    # bootstrap signal from each of its first MinSize (or DesiredCapacity) workers, and fails the
    # create if one does not come (MinSuccessfulInstancesPercent 100).
    rendered = render(feature, enabled_parameters(**{"MaxSize": "4", **overrides}))
    policy = rendered["Resources"]["WinGroup"]["CreationPolicy"]
    assert policy["ResourceSignal"] == {"Count": str(count), "Timeout": "PT45M"}
    assert policy["AutoScalingCreationPolicy"] == {"MinSuccessfulInstancesPercent": 100}
