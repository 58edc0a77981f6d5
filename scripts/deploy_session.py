"""Record the deploy session of docs/deploy.md: real `winworkers` commands in a pseudo-terminal
(so that deploy asks, and is answered "y") against `winworkers emulator`, then write
the transcript, trimmed, between the page's deploy-session markers.

    python scripts/deploy_session.py docs/deploy.md

Only 127.0.0.1 is contacted: the emulator runs on a free local port.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

BEGIN, END = "<!-- deploy-session:begin -->", "<!-- deploy-session:end -->"
STACK = "platform-winworkers"
INPUTS = [
    "EnableWinTaskScriptService=true",
    "WinInstanceType=c7i.xlarge",
    "WinMinSize=1",
    "WinDataBucket=example-platform-data",
    "WinWorkQueueArn=arn:aws:sqs:us-east-1:123456789012:example-platform-work",
    "WinArtifactBucket=example-platform-artifacts",
    "WinArtifactKey=windows/worker-service.zip",
]
# The third step starts an instance refresh (a new launch template version); the emulator's
# refreshes never progress, so the fourth meets it: deploy shows its progress and refuses.
STEPS = [INPUTS, ["WinMaxSize=6"], ["WinWindowsVersion=2022"], ["WinMaxSize=8"]]
NO_WAIT = {2}
"""The steps that pass --no-wait: deploy would follow the third's refresh to its end, which the
emulator's never reaches (it would wait for --timeout); --no-wait ends with the stack."""
BUCKET = "example-platform-templates"
"""The feature's template is over the inline limit: deployed from this bucket."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_terminal(argv: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run argv with a pseudo-terminal as stdin and stdout, answering "y" to its question."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        os.execve(argv[0], argv, env)
    out = b""
    while select.select([fd], [], [], 120)[0]:
        try:
            data = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
        if out.rstrip().endswith(b"[y/N]"):
            os.write(fd, b"y\n")
    _, status = os.waitpid(pid, 0)
    return out.decode().replace("\r\n", "\n"), os.waitstatus_to_exitcode(status)


def _trim(lines: list[str]) -> list[str]:
    """Keep the first and last few lines of each long run of add, remove and event lines."""
    kept: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) > 8:
            kept.extend([*run[:3], f"...  ({len(run) - 5} more)", *run[-2:]])
        else:
            kept.extend(run)
        run.clear()

    for line in lines:
        kind = line.split()[0] if line.startswith(("  add", "  remove", "20")) else ""
        if run and (not kind or kind != run[-1].split()[0]):
            flush()
        (run if kind else kept).append(line)
    flush()
    return kept


def record(winworkers: str) -> str:
    port = _free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    emulator = subprocess.Popen(
        [winworkers, "emulator", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert emulator.stdout is not None
        emulator.stdout.readline()  # "Local AWS emulator at ..."
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}"
        upload = [winworkers, "upload", "templates/winworkers.json", "--endpoint-url", url, "--bucket", BUCKET]
        subprocess.run([*upload, "--create-bucket"], env=env, check=True, stdout=subprocess.DEVNULL)
        transcript: list[str] = []
        for index, step in enumerate(STEPS):
            flags = [part for assignment in step for part in ("--parameter", assignment)]
            flags += ["--no-wait"] if index in NO_WAIT else []
            argv = [winworkers, "deploy", "--endpoint-url", url, "--stack-name", STACK, "--template-bucket", BUCKET]
            argv += flags
            text, status = _in_terminal([*argv, "--poll-seconds", "0.2"], env)
            command = f"winworkers deploy --endpoint-url {url} --stack-name {STACK} --template-bucket {BUCKET}"
            shown = " \\\n    ".join(
                [command, *(f"--parameter {a}" for a in step)] + ["--no-wait"] * (index in NO_WAIT)
            )
            transcript += [f"$ {shown}", *_trim(text.rstrip().splitlines()), f"# exit status {status}"]
        return "\n".join(transcript)
    finally:
        emulator.terminate()
        emulator.wait()


def main(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not tail and END not in rest:
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} markers")
    winworkers = str(Path(sys.executable).with_name("winworkers"))
    session = record(winworkers)
    readme.write_text(f"{head}{BEGIN}\n```text\n{session}\n```\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/deploy.md"))
