"""cfn-lint, the same answers for less CPU: what each in-process lint of a run computed again that only
its inputs determine, computed once per process (conftest installs it; tests/test_lint_speed.py holds
the answers to an unpatched cfn-lint's, and each part to the function it stands in for).

Measured on the feature's template (cProfile, issue 29): JSON-schema validation is most of a lint; in it
sympy's satisfiability checks of the Conditions (about a sixth, the same condition sets asked again and
again, within a template and across the renderings of one template), ``dataclasses.fields`` on every
``evolve`` of a context, validator or path (about a tenth: the fields of a class never change) and a
new validator class for every rule and resource (``cfnlint.jsonschema.validators.create``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any

import cfnlint.conditions.conditions
import cfnlint.context.conditions._conditions
import cfnlint.context.context
import cfnlint.jsonschema._filter
import cfnlint.jsonschema.validators
from sympy.assumptions.cnf import EncodedCNF
from sympy.logic import inference

# Where cfn-lint calls sympy's satisfiable (each module imported the name itself).
SATISFIABLE_USERS = (cfnlint.conditions.conditions, cfnlint.context.conditions._conditions)
# Where cfn-lint calls dataclasses.fields on a class in an evolve or descend.
FIELDS_USERS = (cfnlint.context.context, cfnlint.jsonschema._filter, cfnlint.jsonschema.validators)

fresh_satisfiable = inference.satisfiable
fresh_fields = dataclasses.fields
fresh_create = cfnlint.jsonschema.validators.create

_models: dict[tuple[Any, ...], Any] = {}


def satisfiable(expr: Any, algorithm: Any = None, all_models: bool = False, **options: Any) -> Any:
    """sympy's satisfiable, its answer for one encoded CNF (the clauses and the symbols they number)
    kept for the process: the first model it finds (a new dict each call) or False. Anything else
    (an expression, all models, another algorithm) goes to sympy every time."""
    if not isinstance(expr, EncodedCNF) or algorithm is not None or all_models or options:
        return fresh_satisfiable(expr, algorithm, all_models, **options)
    key = (tuple(map(frozenset, expr.data)), tuple(expr.encoding.items()))
    if key not in _models:
        _models[key] = fresh_satisfiable(expr)
    model = _models[key]
    return dict(model) if isinstance(model, dict) else model


_fields: dict[type, tuple[dataclasses.Field[Any], ...]] = {}


def fields(class_or_instance: Any) -> tuple[dataclasses.Field[Any], ...]:
    """dataclasses.fields, kept per dataclass (a class's fields are fixed when it is made; the
    classes cfn-lint makes as it runs are create's, one per set of arguments)."""
    try:
        return _fields[class_or_instance]
    except (KeyError, TypeError):
        if not isinstance(class_or_instance, type):
            return fresh_fields(class_or_instance)
    _fields[class_or_instance] = fresh_fields(class_or_instance)
    return _fields[class_or_instance]


_validator_classes: dict[tuple[Any, ...], type] = {}


def _filter_key(function_filter: Any) -> Any:
    """A FunctionFilter by its settings (a dataclass nothing changes once made), None as itself."""
    if function_filter is None:
        return None
    return (type(function_filter), repr(function_filter))


def create(
    validators: Mapping[str, Any] | None = None,
    function_filter: Any = None,
    fn_resolvers: Mapping[str, Any] | None = None,
) -> Any:
    """cfnlint.jsonschema.validators.create, one class per set of arguments: the class only holds
    them, as the defaults of its instances' validators, function filter and resolvers. The key is
    the functions themselves (a rule's bound method equals another of the same rule and method) and
    the filter's settings."""
    try:
        key = (
            tuple((validators or {}).items()),
            _filter_key(function_filter),
            tuple((fn_resolvers or {}).items()),
        )
        hash(key)
    except TypeError:
        return fresh_create(validators, function_filter, fn_resolvers)
    if key not in _validator_classes:
        _validator_classes[key] = fresh_create(validators, function_filter, fn_resolvers)
    return _validator_classes[key]


def _pycosat_absent() -> None:
    """sympy's satisfiable tries ``import pycosat`` at every call, a search of the whole sys.path when
    it is not installed; None in sys.modules fails the import at once, as the search would."""
    if "pycosat" not in sys.modules and importlib.util.find_spec("pycosat") is None:
        sys.modules["pycosat"] = None  # type: ignore[assignment]


def install() -> None:
    _pycosat_absent()
    for module in SATISFIABLE_USERS:
        module.satisfiable = satisfiable  # type: ignore[attr-defined]
    for module in FIELDS_USERS:
        module.fields = fields  # type: ignore[attr-defined]
    cfnlint.jsonschema.validators.create = create  # type: ignore[assignment]


def uninstall() -> None:
    """cfn-lint as shipped (for the tests that compare the two)."""
    for module in SATISFIABLE_USERS:
        module.satisfiable = fresh_satisfiable  # type: ignore[attr-defined]
    for module in FIELDS_USERS:
        module.fields = fresh_fields  # type: ignore[attr-defined]
    cfnlint.jsonschema.validators.create = fresh_create


PATCHES: dict[str, Callable[..., Any]] = {"satisfiable": satisfiable, "fields": fields, "create": create}
