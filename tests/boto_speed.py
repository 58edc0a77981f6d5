"""botocore, the same answers for less CPU (conftest installs it; tests/test_lint_speed.py holds each
stand-in to the function it replaces).

Measured (cProfile, issue 29): most of the deploy tests' CPU was botocore parsing timestamps through
dateutil, the same ones again and again: the deploy watcher polls DescribeStackEvents, whose every page
holds the stack's events so far, each parsed again at every poll. A timestamp's datetime is a function of
its text alone (and the process's local zone, for a text without one), and a datetime never changes.
"""

from __future__ import annotations

import datetime
from typing import Any

import botocore.parsers

fresh_parse_timestamp = botocore.parsers.DEFAULT_TIMESTAMP_PARSER

_parsed: dict[tuple[type, Any], datetime.datetime] = {}


def parse_timestamp(value: Any) -> datetime.datetime:
    """botocore's timestamp parser, its answer kept per value (and its type: 1 and 1.0 are equal keys)
    for the process; a value that cannot be a key, or that the parser refuses, goes to it every time."""
    try:
        key = (type(value), value)
        return _parsed[key]
    except KeyError:
        parsed = _parsed[key] = fresh_parse_timestamp(value)
        return parsed
    except TypeError:
        return fresh_parse_timestamp(value)


def install() -> None:
    """Every botocore parser made after this (a client's, at its creation) parses timestamps through the
    kept answers: ResponseParser reads DEFAULT_TIMESTAMP_PARSER when it is made."""
    botocore.parsers.DEFAULT_TIMESTAMP_PARSER = parse_timestamp


def uninstall() -> None:
    botocore.parsers.DEFAULT_TIMESTAMP_PARSER = fresh_parse_timestamp
