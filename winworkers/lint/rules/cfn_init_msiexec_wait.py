"""E9106: cfn-init must not run msiexec without waiting for it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch
from cfnlint.template import Template

from winworkers.lint._template import (
    Assumed,
    Path,
    branches,
    created_when,
    function,
    reachable,
    resources,
    scenario_text,
    unique,
)

# msiexec as a program name (a path before it is part of the word; msiexec.log is not it).
_MSIEXEC = re.compile(r"(?<![\w-])msiexec(?:\.exe)?(?![\w.-])|(?<![\w-])msiexec\.exe(?![\w-])", re.IGNORECASE)
_MSIEXEC_PROGRAM = re.compile(r"msiexec(?:\.exe)?", re.IGNORECASE)
_SUBSTITUTION = re.compile(r"\$\{([^{}]*)\}")
# Where cmd or PowerShell starts a new command: a newline, &&, ||, &, |, ;, { or }.
_SEPARATOR = re.compile(r"[\r\n;&|{}]")
# What may stand between the start of a command and the program it runs: the
# launchers (call, cmd /c, powershell -Command, start, Start-Process and its alias
# saps, Invoke-Expression and its alias iex), an assignment ($p = ...), cmd's if
# clauses, a path and opening quotes or brackets. Anything else (echo, Write-Host,
# rem, taskkill /im ...) only mentions msiexec.
_LAUNCHER = re.compile(
    r"""(?:\s|[("'@]|call\b|(?:cmd|cmd\.exe)(?:\s+/\w)*
        |(?:powershell|powershell\.exe|pwsh|pwsh\.exe)(?:\s+-\w+(?:\s+(?!-)[\w.]+(?=\s+-))?)*
        |start(?:\s+"[^"]*")?(?:\s+/\w+)*|(?:start-process|saps)(?:\s+-\w+)*|invoke-expression\b|iex\b
        |\$[\w:]+\s*=|if(?:\s+/i)?(?:\s+not)?\s+(?:exist\s+\S+|errorlevel\s+\d+|defined\s+\S+|\S+==\S+)
        |[^\s"'()\\/]*[\\/])*""",
    re.IGNORECASE | re.VERBOSE,
)
# cmd's `start /wait` (`/w` too; `start "" /wait`, other switches before it).
_START_WAIT = re.compile(r"(?<![\w-])start(?:\s+\"[^\"]*\")?(?:\s+/\w+)*\s+/w(?:ait)?(?![\w-])", re.IGNORECASE)
# PowerShell: where powershell.exe (pwsh) takes the rest of a cmd statement, up to a cmd
# separator outside double quotes.
_POWERSHELL = re.compile(r"(?<![\w-])(?:powershell|pwsh)(?:\.exe)?(?![\w-])", re.IGNORECASE)
_CMD_END = re.compile(r'"|[&|\r\n]')
# Start-Process, by name or by its aliases (start, saps), as a command word.
_START_PROCESS = re.compile(r"(?:^|[\s(;{&|'\"])(?:start-process|saps|start)(?![\w-])(?!\s+(?:\"[^\"]*\"\s+)?/)", re.I)
# Start-Process's -Wait: a parameter name may be shortened to any unambiguous prefix, and
# -Wai is the shortest (-Wa is the common parameter WarningAction's alias, -W also
# WindowStyle, WorkingDirectory); -Wait:$false does not wait.
_WAIT_SWITCH = re.compile(r"(?<![\w-])-wait?(?::\s*\$true)?(?![\w:-])", re.IGNORECASE)
# -PassThru, shortened (-Pa; -P is also the common PipelineVariable); the process it returns
# waited for by .WaitForExit() or Wait-Process.
_PASS_THRU = re.compile(r"(?<![\w-])-pa(?:s(?:s(?:t(?:h(?:r(?:u)?)?)?)?)?)?(?![\w-])", re.IGNORECASE)
# The process Start-Process returned: assigned to a variable ($p = Start-Process ...), or the
# call itself in brackets ((Start-Process ...).WaitForExit()), or piped on (... | Wait-Process).
_ASSIGNED = re.compile(r"\$([\w:]+)\s*=\s*\(?\s*$", re.IGNORECASE)
_START_WORD = re.compile(r"(?:start-process|saps|start)$", re.IGNORECASE)
_BRACKETED = re.compile(r"\(\s*$")
_BRACKET_WAITED = re.compile(r"\)\s*\.WaitForExit\s*\(", re.IGNORECASE)
_PIPED_WAIT = re.compile(r"\|\s*Wait-Process(?![\w-])", re.IGNORECASE)
# PowerShell waits for a native program whose output is piped to a command (`| Out-Null`):
# it reads the output until the program ends.
_PIPED = re.compile(r"\|(?!\|)\s*[\w$]", re.IGNORECASE)
# PowerShell's strings, as powershell.exe reads them from a cmd line: \" is a quote (the
# command-line escape), '...' has no escapes, "..." has backtick escapes and $( ) subexpressions,
# which may hold strings of their own.
_STRING_START = re.compile(r"""\\"|"|'""")
_INVOKE = re.compile(r"(?<![\w-])(?:invoke-expression|iex)(?![\w-])", re.IGNORECASE)
# A PowerShell line continuation (a backtick at the end of a line).
_CONTINUATION = re.compile(r"`\r?\n")


class CfnInitMsiexecNotAwaited(CloudFormationLintRule):
    """``msiexec.exe`` is a Windows (GUI-subsystem) program: PowerShell does not
    wait for it and does not see its exit code, and whether a ``cmd`` wrapper waits
    depends on how it was started; nothing in the template shows which. If the
    install is not awaited, cfn-init runs the next command against a half-installed
    product (starting the CloudWatch agent before its files exist) and a failed
    install (1603) or one that wants a reboot (3010) is not noticed. cfn-init has
    the right tool: ``packages: {"msi": {"name": "<URL or path>"}}`` installs
    through the Windows Installer API, waits, skips a product already installed and
    suppresses reboots. Otherwise make the wait explicit: ``start /wait msiexec ...``
    or ``Start-Process msiexec -ArgumentList ... -Wait``.

    **What it sees.** Every ``AWS::CloudFormation::Init`` config of every
    resource's ``Metadata`` (``configSets`` only order them), on every ``Fn::If``
    branch; a command built with ``Fn::Join`` or ``Fn::Sub`` is read as its literal
    text. A command *runs* msiexec when msiexec (with or without a path or
    ``.exe``) is the program of one of its statements (statements are split at
    newlines, ``&&``, ``||``, ``&``, ``|``, ``;``, ``{`` and ``}``), possibly behind
    ``call``, ``cmd /c``, ``powershell -Command``, ``start``, ``Start-Process`` (or
    ``saps``), ``Invoke-Expression`` (``iex``), ``$p =``, cmd's ``if exist``/``if
    errorlevel`` or opening quotes and brackets. cfn-init runs a string command with
    ``cmd.exe /c``; an array command is an argv it runs without a shell and waits for
    (register rows 21 and 209): msiexec as its program is waited for, and an array running
    another program (``cmd /c``, ``powershell -Command``) is read as that program's
    command line. What follows ``powershell.exe`` (or ``pwsh``) up to the end of its
    cmd statement is PowerShell's (a backtick continues its line).

    **What waits** (docs/lint-rules.md lists each form with its source): cmd's
    ``start /wait`` (``/w``; after a title or other switches), in cmd or PowerShell;
    in PowerShell, ``Start-Process`` (or its aliases ``start``, ``saps``) with
    ``-Wait`` anywhere in its parameters, in any case, shortened to ``-Wai`` or
    more, or ``-Wait:$true``, outside its strings; ``Start-Process ... -PassThru``
    (``-Pa`` or more) whose process, the object it returned (its variable, the bracketed
    call, a pipe from it), is then waited for (``.WaitForExit()``, ``Wait-Process``); and a
    native call whose output is piped on (``& msiexec ... | Out-Null``): PowerShell
    reads the output until the program ends. What does not: a bare ``msiexec`` (cmd
    waits for a GUI program only in a command script, not under ``cmd /c``; PowerShell
    not at all), ``start`` without ``/wait``, ``Start-Process`` without ``-Wait``,
    ``-Wa`` (the common parameter WarningAction's alias), ``-Wait:$false``, or a
    ``-Wait`` inside the quoted arguments it passes to msiexec (single- or double-quoted,
    ``$( )`` within), or a ``Wait-Process`` for another process.

    **What it deliberately does not flag.** A command that only mentions msiexec
    (``echo ... msiexec ...``, ``Write-Host``, ``rem``, ``taskkill /im msiexec.exe``,
    a log file named ``msiexec.log``); msiexec run by a script file the command
    calls (the rule cannot read it); ``packages: {msi: ...}``; UserData outside
    cfn-init.

    **Not read.** A script file the command calls, ``-EncodedCommand``, and msiexec
    piped in cmd (``msiexec ... | more``: not documented either way, so flagged).

    **Each form, and its source.** ``reference_table`` lists every form the rule
    reads, whether cfn-init then waits, and the document that says so (the lint-rule
    reference, docs/lint-rules.md, shows it as a table).
    ``tests/fixtures/lint-corpus/windows-msiexec-waits.yaml`` holds each form as
    templates write it (strings, ``!Sub``, ``!Join``, ``!If``, a continued PowerShell
    line; on an instance and a launch template), and ``expected.json`` the exact
    findings.
    """

    id = "E9106"
    shortdesc = "cfn-init runs msiexec without waiting"
    description = (
        "A cfn-init command runs msiexec without start /wait or Start-Process -Wait; use cfn-init's "
        "packages: {msi: ...} or a waited install."
    )
    source_url = "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-init.html"
    tags = ["resources", "metadata", "cfn-init", "windows", "winworkers"]
    #: Each form a template writes msiexec in, whether cfn-init then waits, and the source
    #: (docs/lint-rules.md renders this table from here; tests/fixtures/lint-corpus/
    #: windows-msiexec-waits.yaml holds each form, and expected.json its findings).
    reference_table = (
        (
            "Form",
            "Waits?",
            "Source",
        ),
        (
            (
                '`command: ["msiexec", "/i", "x.msi", "/qn"]` (an array whose program is msiexec, with or '
                "without a path or `.exe`)"
            ),
            "yes: cfn-init runs it without a shell and waits for its own child",
            (
                "[AWS::CloudFormation::Init](https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateRef"
                'erence/aws-resource-init.html#aws-resource-init-commands) (`command`: "Either an array or a '
                'string"; each array element "a single command argument", per the user guide\'s older text); '
                "secondary: aws-cfn-bootstrap's `ProcessHelper` (`Popen(cmd, shell=isinstance(cmd, "
                "basestring))`, then `communicate()`)"
            ),
        ),
        (
            (
                '`command: ["cmd", "/c", "start msiexec ..."]`, `["powershell", "-Command", "Start-Process '
                'msiexec ..."]` (an array running another program)'
            ),
            ("as that program's command line (the array joined as Windows quotes an argv) reads, row by row below"),
            "same",
        ),
        (
            "`msiexec /i x.msi` (bare, under `cmd /c`)",
            (
                'no: cmd does not wait for a GUI program unless it runs "within a command script"; `cmd /c` '
                "with a command line is not one (flagged)"
            ),
            (
                "`start /?` and [start](https://learn.microsoft.com/en-us/windows-server/administration/windo"
                "ws-commands/start)"
            ),
        ),
        (
            '`start msiexec ...`, `start "" msiexec ...`',
            "no (flagged)",
            ("[start](https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/start)"),
        ),
        (
            ('`start /wait msiexec`, `start "" /wait msiexec`, `start /b /wait msiexec`, `cmd /c start /wait msiexec`'),
            "yes",
            (
                "[start](https://learn.microsoft.com/en-us/windows-server/administration/windows-commands/sta"
                "rt) (`/wait`)"
            ),
        ),
        (
            "`start /w msiexec`",
            "yes: cmd takes `/w` for `/wait`",
            (
                "not in `start`'s reference; Microsoft's IIS 7 unattended-setup walkthrough runs `start /w "
                "pkgmgr` (https://learn.microsoft.com/en-us/iis/install/installing-iis-7/using-unattended-set"
                "up-to-install-iis; the line was not in the excerpt seen here: treat as unverified)"
            ),
        ),
        (
            (
                "`Start-Process msiexec ... -Wait` (`-Wait` anywhere, any case, `-Wai`, `-Wait:$true`, with "
                "`-NoNewWindow`)"
            ),
            "yes",
            (
                "[Start-Process](https://learn.microsoft.com/powershell/module/microsoft.powershell.managemen"
                "t/start-process) (`-Wait`); [about_Parameters](https://learn.microsoft.com/powershell/module"
                "/microsoft.powershell.core/about/about_parameters) (names may be shortened while "
                "unambiguous; case-insensitive)"
            ),
        ),
        (
            "`start msiexec ... -Wait`, `saps msiexec ... -Wait` in PowerShell",
            "yes: `start` and `saps` are Start-Process's aliases",
            (
                "[Start-Process](https://learn.microsoft.com/powershell/module/microsoft.powershell.managemen"
                "t/start-process) (Aliases)"
            ),
        ),
        (
            "`Start-Process msiexec ... -Wa ...`",
            "no: `-wa` is the alias of the common parameter WarningAction (flagged)",
            (
                "[CommonParameters.WarningAction](https://learn.microsoft.com/dotnet/api/system.management.au"
                'tomation.internal.commonparameters.warningaction) (`Alias("wa")`)'
            ),
        ),
        (
            (
                "`Start-Process ... -Wait:$false`; `-ArgumentList '/i x.msi -Wait'`, `-ArgumentList \"/i x.msi"
                ' -Wait"` (also `\\"...\\"` inside `powershell -Command "..."`, and a `"..."` holding `$( )`)'
            ),
            "no: a `-Wait` inside a string is msiexec's argument (flagged)",
            (
                "[about_Parameters](https://learn.microsoft.com/powershell/module/microsoft.powershell.core/a"
                "bout/about_parameters) (switch values)"
            ),
        ),
        (
            (
                "`$p = Start-Process ... -PassThru; $p.WaitForExit()`, `(Start-Process ... "
                "-PassThru).WaitForExit()`, `... -PassThru | Wait-Process`, `$p | Wait-Process`, "
                "`Wait-Process -Id $p.Id` (`-InputObject $p`): the process Start-Process returned"
            ),
            "yes",
            (
                "[Start-Process](https://learn.microsoft.com/powershell/module/microsoft.powershell.managemen"
                "t/start-process) (`-PassThru`), [Wait-Process](https://learn.microsoft.com/powershell/module"
                "/microsoft.powershell.management/wait-process)"
            ),
        ),
        (
            (
                "`Start-Process msiexec ...` alone, `-PassThru` not waited for (its process dropped, then "
                "`Wait-Process -Name other`), `saps msiexec ...`"
            ),
            "no (flagged)",
            (
                "[Start-Process](https://learn.microsoft.com/powershell/module/microsoft.powershell.managemen"
                "t/start-process)"
            ),
        ),
        (
            "`& msiexec ... | Out-Null`, `msiexec ... | Out-Default`",
            "yes: PowerShell reads a native program's piped output until it ends",
            (
                'secondary: "PowerShell Notes for Professionals", Running Executables, GUI applications '
                "(https://riptutorial.com/powershell/example/25303/gui-applications)"
            ),
        ),
        (
            "`& msiexec ...` alone",
            "no (flagged)",
            "same",
        ),
        (
            "`powershell -Command \"Invoke-Expression 'Start-Process msiexec ... -Wait'\"`",
            "yes (read as the command it runs)",
            (
                "[Invoke-Expression](https://learn.microsoft.com/powershell/module/microsoft.powershell.utili"
                "ty/invoke-expression)"
            ),
        ),
    )

    def match(self, cfn: Template) -> list[RuleMatch]:
        matches: list[RuleMatch] = []
        for name, resource in resources(cfn):
            metadata = resource.get("Metadata")
            if not isinstance(metadata, Mapping) or "AWS::CloudFormation::Init" not in metadata:
                continue
            at: Path = ["Resources", name, "Metadata", "AWS::CloudFormation::Init"]
            init = metadata["AWS::CloudFormation::Init"]
            for key, command, where, scenario in _commands(init, at, created_when(resource)):
                if _command_unawaited(command) and reachable(cfn, scenario):
                    matches.append(
                        RuleMatch(
                            where,
                            f"cfn-init command {key!r} of {name!r} runs msiexec without waiting"
                            f"{scenario_text(scenario, resource)}: use cfn-init's packages: "
                            '{"msi": {...}}, "start /wait msiexec ..." or "Start-Process msiexec ... -Wait"',
                        )
                    )
        return unique(matches)


def _commands(init: Any, at: Path, assumed: Assumed) -> Iterator[tuple[str, Any, Path, Assumed]]:
    """``(key, command, path, conditions)`` of every command of every config."""
    for configs, configs_at, scenario in branches(init, at, assumed):
        if not isinstance(configs, Mapping):
            continue
        for key, config in configs.items():
            if key == "configSets":
                continue
            for resolved, config_at, with_config in branches(config, [*configs_at, key], scenario):
                commands = resolved.get("commands") if isinstance(resolved, Mapping) else None
                for listed, listed_at, with_commands in branches(commands, [*config_at, "commands"], with_config):
                    if not isinstance(listed, Mapping):
                        continue
                    for command_name, entry in listed.items():
                        for spec, spec_at, with_spec in branches(entry, [*listed_at, command_name], with_commands):
                            if isinstance(spec, Mapping) and "command" in spec:
                                for command, command_at, with_command in branches(
                                    spec["command"], [*spec_at, "command"], with_spec
                                ):
                                    yield str(command_name), command, command_at, with_command


def _command_unawaited(command: Any) -> bool:
    """Whether a cfn-init command runs msiexec without waiting for it. A string is a line cfn-init
    hands to cmd.exe /c; a list is an argv cfn-init runs without a shell, as its own child, and
    waits for (register row 21): msiexec as its program is waited for; any other program (cmd /c,
    powershell -Command) gets the list as its command line, which is read like a string."""
    if not isinstance(command, list):
        return _runs_msiexec_unawaited(_text(command))
    argv = [_text(part) for part in command]
    if argv and _MSIEXEC_PROGRAM.fullmatch(re.split(r"[\\/]", argv[0].strip('"'))[-1]):
        return False
    return _runs_msiexec_unawaited(subprocess.list2cmdline(argv))


def _text(command: Any) -> str:
    """The literal text of a command: a string, an argv list, ``Fn::Join`` or ``Fn::Sub``."""
    if isinstance(command, str):
        return command
    if isinstance(command, list):
        return " ".join(_text(part) for part in command)
    call = function(command)
    if call is None:
        return ""
    name, argument = call
    if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
        parts = argument[1] if isinstance(argument[1], list) else [argument[1]]
        return argument[0].join(_text(part) for part in parts)
    if name == "Fn::Sub":
        return argument if isinstance(argument, str) else _text(argument[0]) if isinstance(argument, list) else ""
    if name == "Fn::If" and isinstance(argument, list):
        return " ".join(_text(part) for part in argument[1:])
    return ""


def _powershell_spans(text: str) -> list[tuple[int, int]]:
    """Where PowerShell reads text: from each powershell.exe (pwsh) to the end of its cmd statement."""
    spans = []
    for found in _POWERSHELL.finditer(text):
        quoted, end = False, len(text)
        for mark in _CMD_END.finditer(text, found.end()):
            if mark.group() == '"' and text[mark.start() - 1] != "\\":
                quoted = not quoted
            elif mark.group() != '"' and not quoted:
                end = mark.start()
                break
        spans.append((found.end(), end))
    return spans


def _awaited(prefix: str, statement: str, rest: str, powershell: bool) -> bool:
    """Whether the msiexec that ends prefix is waited for: statement is its command, rest
    the text after that command, powershell whether PowerShell runs it (else cmd)."""
    if _START_WAIT.search(prefix):
        return True
    if not powershell:
        return False
    started = _START_PROCESS.search(prefix)
    if started:
        # A switch inside a quoted argument ("/i x.msi -Wait", '/i x.msi -Wait') is msiexec's, unless
        # the whole command is a string Invoke-Expression runs.
        before = _START_WORD.sub("", prefix[: started.end()])
        call = statement[len(before) :]
        switches = statement if _INVOKE.search(prefix) else _unquoted(call)
        passed = _PASS_THRU.search(_unquoted(call)) and _waited_for(before, statement, rest)
        return bool(_WAIT_SWITCH.search(switches) or passed)
    return bool(_PIPED.match(rest))


def _waited_for(before: str, statement: str, rest: str) -> bool:
    """Whether the process a Start-Process -PassThru returns is waited for: before is the text of its
    statement up to Start-Process, statement the statement and rest what follows it."""
    if _BRACKETED.search(before) and _BRACKET_WAITED.search(statement):
        return True
    if _PIPED_WAIT.match(rest):
        return True
    assigned = _ASSIGNED.search(before)
    if assigned is None:
        return False
    variable = re.escape(assigned.group(1))
    waits = re.compile(
        rf"\${variable}\s*\.WaitForExit\s*\(|\${variable}\s*\|\s*Wait-Process(?![\w-])"
        rf"|(?<![\w-])Wait-Process(?![\w-])[^;&|\r\n]*\${variable}(?![\w:])",
        re.IGNORECASE,
    )
    return bool(waits.search(rest))


def _unquoted(text: str) -> str:
    """text without PowerShell's strings (each left as ''), so that a parameter in them is not read
    as the command's; a string left open runs to the end."""
    out, at = [], 0
    while (found := _STRING_START.search(text, at)) is not None:
        out.append(text[at : found.start()] + "''")
        at = _string_end(text, found.end(), found.group())
    out.append(text[at:])
    return "".join(out)


def _string_end(text: str, at: int, quote: str) -> int:
    """Where the string opened by quote just before at ends (after its closing quote)."""
    if quote == "'":
        close = text.find("'", at)
        return len(text) if close < 0 else close + 1
    depth = 0
    while at < len(text):
        if text.startswith(quote, at) and depth == 0:
            return at + len(quote)
        if text[at] == "`":
            at += 2
            continue
        if text.startswith("$(", at):
            depth, at = depth + 1, at + 2
            continue
        if text[at] == ")" and depth:
            depth -= 1
        elif depth and _STRING_START.match(text, at):
            inner = _STRING_START.match(text, at)
            assert inner is not None
            at = _string_end(text, inner.end(), inner.group())
            continue
        at += 1
    return len(text)


def _runs_msiexec_unawaited(text: str) -> bool:
    """Whether some command in ``text`` runs msiexec (not merely mentions it) and
    does not wait for it."""
    # ${Name} (Fn::Sub, PowerShell) is a value, not a script block; a continued line is one line.
    text = _SUBSTITUTION.sub(lambda m: m.group(1), text)
    text = _CONTINUATION.sub(lambda m: " " * len(m.group()), text)
    spans = _powershell_spans(text)
    for found in _MSIEXEC.finditer(text):
        starts = [m.end() for m in _SEPARATOR.finditer(text, 0, found.start())]
        begin = starts[-1] if starts else 0
        prefix = text[begin : found.start()]
        if not _LAUNCHER.fullmatch(prefix):
            continue  # echo, Write-Host, rem, a log file name...: not a run
        end = _SEPARATOR.search(text, found.end())
        after = end.start() if end else len(text)
        powershell = any(start <= found.start() < stop for start, stop in spans)
        if not _awaited(prefix, text[begin:after], text[after:], powershell):
            return True
    return False
