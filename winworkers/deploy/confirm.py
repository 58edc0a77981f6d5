"""Asking before a change that loses something: a removal, a replacement, an
instance refresh, a deletion. In a terminal the operator is asked; without one
(CI, a pipe) the change is refused unless --yes was given. Turning the feature
off deletes all of it, so it needs --yes even in a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable

Ask = Callable[[str], bool]
"""Ask a yes/no question; True to go ahead."""


def terminal() -> Ask | None:
    """A question on the terminal, or None without one (stdin or stdout not a terminal)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None

    def ask(question: str) -> bool:
        try:
            answer = input(f"{question} [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    return ask


def approved(question: str, *, yes: bool, ask: Ask | None) -> bool | None:
    """True: go ahead (--yes, or the operator said yes); False: the operator said no;
    None: nobody to ask and no --yes."""
    if yes:
        return True
    if ask is None:
        return None
    return ask(question)
