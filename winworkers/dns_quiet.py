"""The quiet list: names a stock Windows Server (2019, 2022, 2025) on EC2 looks up by itself
and the workers do not need. DNS Firewall blocks them like every other name (NXDOMAIN,
first rule), but apart from the block-everything rule whose blocks page the operators: so
the alarm means "something unexpected asked" (network._add_dns_firewall, docs/network.md).

Data, not code: one row per DNS Firewall domain specification, with what looks it up and
the source that says so. A specification is an exact name or ``*.`` + a name (the names
below it; register row 116); ``${AWS::Region}``, ``${AWS::URLSuffix}`` and ``${Suffix}``
(the instances' own DNS suffix) are filled in by the template (``Fn::Sub``).

Microsoft publishes a per-host list for Windows client editions only ("Manage connection
endpoints for Windows 11 Enterprise", and per Windows 10 version: Windows Server 2019 is
version 1809); "Manage connections from Windows operating system components to Microsoft
services" applies to Windows Server 2016 and later and names the same components. Time
and activation need no name on EC2 (link-local addresses; network.allowed_domains).
"""

from __future__ import annotations

from typing import NamedTuple


class QuietName(NamedTuple):
    domain: str
    what: str
    source: str


WIN11 = "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints"
WIN1809 = "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-1809-endpoints"
DEFENDER = (
    "https://learn.microsoft.com/en-us/defender-endpoint/configure-network-connections-microsoft-defender-antivirus"
)
NCSI = "https://learn.microsoft.com/en-us/windows-server/networking/ncsi/ncsi-frequently-asked-questions"
NCSI_BLOG = "https://techcommunity.microsoft.com/t5/networking-blog/ncsi-change-notification/ba-p/3866600"
SSM = "https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html"
# Windows' DNS Server blocks both names by default because clients query them (its global
# query block list); the page was not in the sources searched here: unverified.
BLOCK_LIST = "https://learn.microsoft.com/en-us/windows-server/networking/dns/manage-global-query-block-list"
W32TIME = "https://learn.microsoft.com/en-us/windows-server/networking/windows-time-service/windows-time-service-tools-and-settings"

QUIET_NAMES: tuple[QuietName, ...] = (
    QuietName("*.msftconnecttest.com", "NCSI's active probe (www., ipv6.)", f"{NCSI} ; {WIN11}"),
    QuietName("*.msftncsi.com", "NCSI's older probe and its DNS check (www., dns.)", f"{NCSI} ; {NCSI_BLOG}"),
    QuietName(
        "*.windowsupdate.com",
        "Windows Update, and ctldl.windowsupdate.com: Automatic Root Certificates Update",
        f"{WIN11} ; {DEFENDER}",
    ),
    QuietName("*.update.microsoft.com", "Windows Update and Microsoft Update", f"{WIN11} ; {DEFENDER}"),
    QuietName("*.delivery.mp.microsoft.com", "Windows Update downloads; Defender's update location", WIN11),
    QuietName("*.dsp.mp.microsoft.com", "Delivery Optimization and Windows Update traffic shaping", WIN11),
    QuietName("emdl.ws.microsoft.com", "Windows Update downloads", WIN11),
    QuietName("adl.windows.com", "compatibility database updates", WIN11),
    QuietName("licensing.mp.microsoft.com", "License Manager: online activation and app licensing", WIN11),
    QuietName("login.live.com", "device authentication", WIN11),
    QuietName("dmd.metaservices.microsoft.com", "device metadata", WIN11),
    QuietName("*.events.data.microsoft.com", "Connected User Experiences and Telemetry (v10., self.)", WIN11),
    QuietName("*.vortex-win.data.microsoft.com", "telemetry, Windows 10 1809 / Server 2019", WIN1809),
    QuietName("vortex-win.data.microsoft.com", "Defender's diagnostic data", DEFENDER),
    QuietName("settings-win.data.microsoft.com", "settings for apps and Defender", f"{WIN11} ; {DEFENDER}"),
    QuietName("settings.data.microsoft.com", "settings for apps", WIN11),
    QuietName("*.telemetry.microsoft.com", "Windows Error Reporting (watson., telecommand.)", f"{WIN11} ; {WIN1809}"),
    QuietName("*.wdcp.microsoft.com", "Defender's cloud-delivered protection (MAPS)", DEFENDER),
    QuietName("wdcp.microsoft.com", "Defender's cloud-delivered protection", WIN11),
    QuietName("*.wdcpalt.microsoft.com", "Defender's cloud-delivered protection (MAPS)", DEFENDER),
    QuietName("*.wd.microsoft.com", "Defender's cloud-delivered protection (MAPS)", DEFENDER),
    QuietName("definitionupdates.microsoft.com", "Defender's security intelligence updates", f"{WIN11} ; {DEFENDER}"),
    QuietName("*.download.microsoft.com", "Defender's alternate download location", DEFENDER),
    QuietName("go.microsoft.com", "Defender's alternate download location", DEFENDER),
    QuietName("*.smartscreen-prod.microsoft.com", "SmartScreen", WIN11),
    QuietName("*.smartscreen.microsoft.com", "SmartScreen (ping-edge., nav-edge., data-edge.)", WIN11),
    QuietName("checkappexec.microsoft.com", "SmartScreen", WIN11),
    QuietName("crl.microsoft.com", "certificate revocation lists", DEFENDER),
    QuietName("www.microsoft.com", "certificate revocation (pkiops), diagnostic data", f"{DEFENDER} ; {WIN11}"),
    QuietName("ocsp.digicert.com", "certificate revocation (OCSP)", WIN11),
    QuietName("time.windows.com", "Windows Time's default NTP server, if not set to Amazon Time Sync", W32TIME),
    QuietName("ssm.${AWS::Region}.${AWS::URLSuffix}", "the SSM Agent, until cfn-init's harden step stops it", SSM),
    QuietName("ec2messages.${AWS::Region}.${AWS::URLSuffix}", "the SSM Agent, until the harden step", SSM),
    QuietName("ssmmessages.${AWS::Region}.${AWS::URLSuffix}", "the SSM Agent, until the harden step", SSM),
    QuietName("wpad.${Suffix}", "WinHTTP proxy auto-discovery under the DNS suffix", BLOCK_LIST),
    QuietName("isatap.${Suffix}", "the ISATAP router under the DNS suffix", BLOCK_LIST),
)
