"""DNS Firewall (winworkers.network, _add_dns_firewall): the isolated VPC resolves exactly
the names the workers use, and nothing else; asserted on renderings of every mode, with the
names taken from the template itself (endpoints, cfn-init and UserData URLs, the worker's
settings), not from the code that writes the allow list."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

import pytest

from conftest import props, render, resources_of
from winworkers.network import ENDPOINTS
from winworkers.renderings import MODES, enabled_parameters

FIREWALL_TYPES = {
    "AWS::Route53Resolver::FirewallDomainList",
    "AWS::Route53Resolver::FirewallRuleGroup",
}
VPC_TYPES = {
    "AWS::Route53Resolver::FirewallRuleGroupAssociation",
    "AWS::Route53Resolver::ResolverQueryLoggingConfig",
    "AWS::Route53Resolver::ResolverQueryLoggingConfigAssociation",
}
REGIONS = {"us-east-1": "ec2.internal", "eu-west-1": "eu-west-1.compute.internal"}


def matches(spec: str, name: str) -> bool:
    """DNS Firewall's domain specification: an optional leading * (Route53Resolver API,
    UpdateFirewallDomains); "*" alone is every name; case and the final dot do not count."""
    spec, name = spec.lower().rstrip("."), name.lower().rstrip(".")
    if spec == "*":
        return True
    if spec.startswith("*."):
        return name.endswith(spec[1:])
    return spec == name


def names_the_workers_use(rendered: dict[str, Any], region: str) -> set[str]:
    """Every host name the workers resolve, read from the rendering: the https:// URLs in the
    launch template (cfn-init sources and packages, the worker's settings, cfn-init's and
    cfn-signal's --url), the buckets the worker reads, the services behind the endpoints (in
    existing-subnets, the same services: the README's table), and the instance's own name."""
    template = rendered["Resources"]["WinLaunchTemplate"]
    user_data = base64.b64decode(template["Properties"]["LaunchTemplateData"]["UserData"]).decode()
    text = json.dumps(template["Metadata"]) + user_data
    hosts = set(re.findall(r"https://([A-Za-z0-9.-]+)", text))
    init = template["Metadata"]["AWS::CloudFormation::Init"]
    settings = json.loads(json.dumps(init["service"]["files"]))
    (worker,) = (f["content"] for f in settings.values())
    hosts.add(f"{worker['data_bucket']}.s3.{region}.amazonaws.com")
    if region == "us-east-1":
        # The SDKs' S3 default there, the AWS Tools for PowerShell's too: the legacy global
        # endpoint, which the sample worker's Read-S3Object/Write-S3Object -Region us-east-1 use.
        hosts |= {"s3.amazonaws.com", f"{worker['data_bucket']}.s3.amazonaws.com"}
    # The regional name behind every endpoint (com.amazonaws.REGION.SERVICE, a gateway's too).
    # existing-subnets creates none: the platform's VPC provides the same services (ENDPOINTS,
    # the README's table).
    endpoints = [e["Properties"]["ServiceName"] for e in resources_of(rendered, "AWS::EC2::VPCEndpoint").values()]
    # The image build's endpoints (for_build, ImageSource=baked) are not the workers' names.
    workers = [row.service for row in ENDPOINTS if not row.for_build]
    services = [name.split(".", 3)[3] for name in endpoints] or workers
    if endpoints:
        assert sorted(services) == sorted(workers)
    hosts |= {f"{service}.{region}.amazonaws.com" for service in services}
    hosts.add(f"ip-10-250-0-10.{REGIONS[region]}")
    assert len(hosts) >= 10, hosts
    return hosts


def _rules(rendered: dict[str, Any]) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(action, domains of its list, rule) of the rule group's rules, in evaluation order."""
    (group,) = resources_of(rendered, "AWS::Route53Resolver::FirewallRuleGroup").values()
    ordered = sorted(group["Properties"]["FirewallRules"], key=lambda rule: rule["Priority"])
    return [(r["Action"], props(rendered, r["FirewallDomainListId"])["Domains"], r) for r in ordered]


def decide(rendered: dict[str, Any], name: str) -> str:
    """What the rule group does with a query for name: the first matching rule's action,
    and ALLOW when none matches (the Resolver's behaviour without a rule)."""
    for action, domains, _ in _rules(rendered):
        if any(matches(spec, name) for spec in domains):
            return action
    return "ALLOW"


def problems(rendered: dict[str, Any], region: str) -> list[str]:
    """Names the workers use that the firewall blocks, and a default that is not to block."""
    found = [f"{name} is blocked" for name in sorted(names_the_workers_use(rendered, region))]
    found = [p for p in found if decide(rendered, p.split()[0]) != "ALLOW"]
    action, domains, _ = _rules(rendered)[-1]
    if (action, domains) != ("BLOCK", ["*"]):
        found.append(f"the last rule is {action} {domains}, not BLOCK *")
    for probe in ("exfil-0a1b2c.attacker.example", "data.s3.amazonaws.com.attacker.example", "wpad.ec2.internal"):
        if decide(rendered, probe) != "BLOCK":
            found.append(f"{probe} is not blocked")
    return found


def _offered(mode: str) -> dict[str, str]:
    extra = {"CreateDnsFirewall": "true"} if mode == "existing-subnets" else {}
    return enabled_parameters(mode=mode, **extra)


@pytest.mark.parametrize("region", sorted(REGIONS))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_the_workers_resolve_their_names_and_nothing_else(feature: dict[str, Any], mode: str, region: str) -> None:
    rendered = render(feature, _offered(mode), region=region)
    assert problems(rendered, region) == []


def test_the_check_fails_for_a_missing_name_or_an_open_default(feature: dict[str, Any]) -> None:
    for name in ("WinDnsAllowList", "WinDnsBlockList"):
        assert feature["Resources"][name]["Type"] == "AWS::Route53Resolver::FirewallDomainList"
    missing = copy.deepcopy(feature)
    domains = missing["Resources"]["WinDnsAllowList"]["Properties"]["Domains"]
    (agent,) = [d for d in domains if "amazoncloudwatch-agent" in json.dumps(d)]
    domains.remove(agent)
    assert problems(render(missing, enabled_parameters()), "us-east-1") == [
        "amazoncloudwatch-agent-us-east-1.s3.us-east-1.amazonaws.com is blocked"
    ]
    open_default = copy.deepcopy(feature)
    open_default["Resources"]["WinDnsFirewall"]["Properties"]["FirewallRules"][-1]["Action"] = "ALLOW"
    found = problems(render(open_default, enabled_parameters()), "us-east-1")
    assert (
        "the last rule is ALLOW ['*'], not BLOCK *" in found and "exfil-0a1b2c.attacker.example is not blocked" in found
    )
    no_block = copy.deepcopy(feature)
    no_block["Resources"]["WinDnsFirewall"]["Properties"]["FirewallRules"].pop()
    assert "exfil-0a1b2c.attacker.example is not blocked" in problems(
        render(no_block, enabled_parameters()), "us-east-1"
    )


def test_blocks_answer_nxdomain_and_allowed_names_follow_their_cnames(enabled: dict[str, Any]) -> None:
    rules = _rules(enabled)
    assert [action for action, _, _ in rules] == ["BLOCK", "ALLOW", "BLOCK"]
    for action, _, rule in rules:
        if action == "BLOCK":
            assert rule["BlockResponse"] == "NXDOMAIN"
        else:
            # S3's names answer with CNAMEs: inspecting each hop would block them.
            assert rule["FirewallDomainRedirectionAction"] == "TRUST_REDIRECTION_DOMAIN"
    # Only the AWS names the workers use are allowed, each exactly, but the instances' own names.
    (_, allowed, _) = rules[1]
    # An optional endpoint's name (the image build's, ImageSource=baked) is Fn::If with
    # AWS::NoValue, which CloudFormation drops from a list and the renderer leaves as "".
    allowed = [d for d in allowed if d]
    assert [d for d in allowed if "*" in d] == ["*.ec2.internal"]
    assert all(d.endswith(".amazonaws.com") for d in allowed[:-2])
    assert allowed[-2:] == ["ec2.internal", "*.ec2.internal"]


def test_the_isolated_vpc_is_filtered_fail_closed(enabled: dict[str, Any]) -> None:
    (association,) = resources_of(enabled, "AWS::Route53Resolver::FirewallRuleGroupAssociation").values()
    assert association["Properties"]["VpcId"] == "WinVpc"
    assert association["Properties"]["FirewallRuleGroupId"] == "WinDnsFirewall.Id"
    assert 100 <= association["Properties"]["Priority"] <= 9900  # AssociateFirewallRuleGroup's range
    # Fail-closed is the Resolver's default: nothing in the template may open it.
    assert not resources_of(enabled, "AWS::Route53Resolver::FirewallConfig")
    assert "FirewallFailOpen" not in json.dumps(enabled)
    # AWS adds the query log's resource policy (vended logs); the template takes none of the account's 10.
    assert not resources_of(enabled, "AWS::Logs::ResourcePolicy")


def test_blocked_queries_are_logged_and_page_the_operators(feature: dict[str, Any]) -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:operators"
    rendered = render(feature, enabled_parameters(AlarmTopicArn=topic))
    logging = props(rendered, "WinDnsQueryLogging")
    assert logging["DestinationArn"] == "WinDnsQueryLogs.Arn"
    assert props(rendered, "WinDnsQueryLoggingAssociation") == {
        "ResolverQueryLogConfigId": "WinDnsQueryLogging.Id",
        "ResourceId": "WinVpc",
    }
    assert rendered["Outputs"]["WinDnsQueryLogGroup"]["Value"] == "WinDnsQueryLogs"  # where to look
    logs = rendered["Resources"]["WinDnsQueryLogs"]
    assert (logs["DeletionPolicy"], logs["Properties"]["RetentionInDays"]) == ("Retain", "90")
    key = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    assert props(render(feature, enabled_parameters(KmsKeyArn=key)), "WinDnsQueryLogs")["KmsKeyId"] == key
    # Only the catch-all's blocks count: Windows' own probes are blocked apart, without paging.
    metric = props(rendered, "WinDnsBlockedFilter")
    assert metric["LogGroupName"] == "WinDnsQueryLogs"
    assert metric["FilterPattern"] == (
        '{ $.firewall_rule_action = "BLOCK" && $.firewall_domain_list_id = "WinDnsBlockList.Id" }'
    )
    (transform,) = metric["MetricTransformations"]
    alarm = props(rendered, "WinDnsBlockedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == (transform["MetricNamespace"], transform["MetricName"])
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [topic]
    assert decide(rendered, "www.msftconnecttest.com") == "BLOCK"
    assert _rules(rendered)[0][2]["FirewallDomainListId"] != "WinDnsBlockList"


def test_existing_subnets_offers_the_rule_group_only_on_request(feature: dict[str, Any]) -> None:
    plain = render(feature, enabled_parameters(mode="existing-subnets"))
    assert not {r["Type"] for r in plain["Resources"].values()} & (FIREWALL_TYPES | VPC_TYPES)
    assert not {"WinDnsFirewallRuleGroupId", "WinDnsAllowListId"} & set(plain["Outputs"])
    offered = render(feature, _offered("existing-subnets"))
    kinds = {r["Type"] for r in offered["Resources"].values()}
    # The platform owns the resolver: the rule group for it to associate, no association, no log.
    assert kinds >= FIREWALL_TYPES and not kinds & VPC_TYPES
    assert offered["Outputs"]["WinDnsFirewallRuleGroupId"]["Value"] == "WinDnsFirewall"
    assert offered["Outputs"]["WinDnsAllowListId"]["Value"] == "WinDnsAllowList"
    # The option changes nothing in the isolated VPC, which is always filtered.
    isolated = render(feature, enabled_parameters(CreateDnsFirewall="false"))
    assert {r["Type"] for r in isolated["Resources"].values()} >= VPC_TYPES


def test_nothing_of_it_exists_while_disabled(feature: dict[str, Any]) -> None:
    rendered = render(feature, {"WinCreateDnsFirewall": "true"})
    # Only the standalone template's standing resource, outside the switch (register row 203).
    assert {n: r["Type"] for n, r in rendered["Resources"].items()} == {
        "WinStanding": "AWS::CloudFormation::WaitConditionHandle"
    }
    assert not rendered.get("Outputs")


def _stable(resources: dict[str, Any]) -> dict[str, Any]:
    """Resources with cloud-radar's random stack id made fixed, to compare two renderings."""
    text = re.sub(r"stack/([^/]+)/[0-9a-f-]{36}", r"stack/\1/id", json.dumps(resources))
    return dict(json.loads(text))


def test_offering_the_rule_group_changes_nothing_that_exists(feature: dict[str, Any]) -> None:
    # The second deploy of an existing-subnets stack with CreateDnsFirewall=true only adds.
    before = _stable(render(feature, enabled_parameters(mode="existing-subnets"))["Resources"])
    after = _stable(render(feature, _offered("existing-subnets"))["Resources"])
    assert {n: r for n, r in after.items() if n in before} == before
    assert {r["Type"] for n, r in after.items() if n not in before} == FIREWALL_TYPES


def test_the_readme_counts_the_listed_domains(feature: dict[str, Any]) -> None:
    from resolved import resolve

    from conftest import ROOT

    # As CloudFormation lists them for the defaults: an optional endpoint's Fn::If resolved.
    resolved = resolve(feature, {"EnableWinTaskScriptService": "true"}, region="us-east-1")["Resources"]
    listed = sum(
        len(r["Properties"]["Domains"])
        for r in resolved.values()
        if r["Type"] == "AWS::Route53Resolver::FirewallDomainList"
    )
    costs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")  # "What it costs"
    found = re.search(r"per listed domain per month \((\d+) here", costs)
    assert found and int(found.group(1)) == listed


# --- The quiet list (issue 25): what a stock Windows Server looks up by itself is blocked, not alarmed ---

WINDOWS_OWN_LOOKUPS = (
    # One name per component the issue names: telemetry, error reporting, Defender,
    # certificate revocation and trust lists, time, and the probes that were quiet before.
    "v10.events.data.microsoft.com",
    "v10.vortex-win.data.microsoft.com",
    "settings-win.data.microsoft.com",
    "watson.telemetry.microsoft.com",
    "wdcp.microsoft.com",
    "definitionupdates.microsoft.com",
    "ctldl.windowsupdate.com",
    "crl.microsoft.com",
    "www.microsoft.com",
    "ocsp.digicert.com",
    "time.windows.com",
    "www.msftconnecttest.com",
    "fe3cr.delivery.mp.microsoft.com",
)


def _first_rule(rendered: dict[str, Any], name: str) -> tuple[str, str]:
    """(action, domain list) of the first rule whose list matches name."""
    for action, domains, rule in _rules(rendered):
        if any(matches(spec, name) for spec in domains):
            return action, str(rule["FirewallDomainListId"])
    return "ALLOW", ""


def _counted_list(rendered: dict[str, Any]) -> str:
    """The domain list whose blocks the alarm's metric filter counts."""
    pattern = props(rendered, "WinDnsBlockedFilter")["FilterPattern"]
    found = re.search(r'firewall_domain_list_id = "([^".]+)\.Id"', pattern)
    assert found, pattern
    return found.group(1)


def _example(domain: str, region: str) -> str:
    """A name a quiet entry stands for, as a worker in region would ask it."""
    name = domain.replace("*.", "probe.", 1)
    name = name.replace("${AWS::Region}", region).replace("${AWS::URLSuffix}", "amazonaws.com")
    return name.replace("${Suffix}", REGIONS[region])


def test_every_quiet_name_has_what_asks_it_and_a_source() -> None:
    from winworkers.dns_quiet import QUIET_NAMES

    assert len({q.domain for q in QUIET_NAMES}) == len(QUIET_NAMES)
    for quiet in QUIET_NAMES:
        assert quiet.what.strip(), quiet
        sources = [s.strip() for s in quiet.source.split(";")]
        assert sources and all(re.fullmatch(r"https://\S+", s) for s in sources), quiet
        # A DNS Firewall domain specification (register row 116): a leading "*." at most.
        spec = re.sub(r"\$\{[^}]+\}", "x", quiet.domain)
        assert re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]{1,253}", spec) and "*" not in spec[1:], quiet


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_each_quiet_name_stays_blocked_but_does_not_page(feature: dict[str, Any], region: str) -> None:
    from winworkers.dns_quiet import QUIET_NAMES

    rendered = render(feature, enabled_parameters(), region=region)
    counted = _counted_list(rendered)
    assert counted == "WinDnsBlockList"
    for quiet in QUIET_NAMES:
        name = _example(quiet.domain, region)
        action, listed = _first_rule(rendered, name)
        assert action == "BLOCK", f"{name} ({quiet.domain}) is not blocked"
        assert listed != counted, f"{name} ({quiet.domain}) would page the operators"
    # Anything else still pages.
    assert _first_rule(rendered, "exfil-0a1b2c.attacker.example") == ("BLOCK", counted)


def test_windows_own_background_lookups_are_quiet(feature: dict[str, Any]) -> None:
    rendered = render(feature, enabled_parameters())
    counted = _counted_list(rendered)
    loud = [name for name in WINDOWS_OWN_LOOKUPS if _first_rule(rendered, name) != ("BLOCK", "WinDnsNoiseList")]
    assert loud == []
    assert all(_first_rule(rendered, name)[1] != counted for name in WINDOWS_OWN_LOOKUPS)


def test_a_new_quiet_list_is_updated_in_place(feature: dict[str, Any]) -> None:
    # The domain list's one create-only property is its Name, which the template leaves to
    # CloudFormation: a changed Domains list is updated in place (no new list id, the rule
    # group unchanged), so the upgrade neither opens nor reorders the firewall.
    from winworkers.update_path import schema_of

    schema = schema_of("AWS::Route53Resolver::FirewallDomainList") or {}
    assert schema["createOnlyProperties"] == ["/properties/Name"]
    lists = [r for r in feature["Resources"].values() if r["Type"] == "AWS::Route53Resolver::FirewallDomainList"]
    assert lists and all("Name" not in r["Properties"] for r in lists)
