"""A library user reads the API from help(): plain text, no reStructuredText roles."""

from __future__ import annotations

import importlib
import pkgutil
import pydoc
import re

import pytest

import winworkers

ROLE = re.compile(r":(class|func|data|mod|meth|attr|exc|obj):`")
MODULES = sorted(
    name for _, name, _ in pkgutil.iter_modules(winworkers.__path__, "winworkers.") if name != "winworkers.__main__"
)


@pytest.mark.parametrize("name", ["winworkers", *MODULES])
def test_help_text_has_no_restructuredtext_roles(name: str) -> None:
    text = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
    assert ROLE.findall(text) == [], name


@pytest.mark.parametrize(
    "name",
    ["winworkers", "winworkers.cli", "winworkers.docs", "winworkers.renderings", "winworkers.rules",
     "winworkers.templates", "winworkers.wiring"],
)  # fmt: skip
def test_help_of_the_public_api_has_no_literal_markup(name: str) -> None:
    # help(winworkers) renders every function and class in __all__ (add_to, WorkersConfig, ...).
    text = pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext)
    assert "``" not in text, name


def test_help_of_the_package_shows_the_public_api() -> None:
    text = pydoc.render_doc(winworkers, renderer=pydoc.plaintext)
    for name in (n for n in winworkers.__all__ if not n.startswith("__")):
        assert name in text, name
