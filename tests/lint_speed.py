"""cfn-lint, the same answers for less CPU: what each in-process lint of a run computed again that only
its inputs determine, computed once per process (conftest installs it; tests/test_lint_speed.py holds
the answers to an unpatched cfn-lint's, and each part to the function it stands in for).

Measured on the feature's template (cProfile, issue 29): JSON-schema validation is most of a lint; in it
sympy's satisfiability checks of the Conditions (about a sixth, the same condition sets asked again and
again, within a template and across the renderings of one template), ``dataclasses.fields`` on every
``evolve`` of a context, validator or path (about a tenth: the fields of a class never change) and a
new validator class for every rule and resource (``cfnlint.jsonschema.validators.create``).

Measured again after those (py-spy over the suite, then one lint of an enabled rendering of the feature,
best of five, issue 29 again): rule E1101's ``cfnLint`` keyword searched every child rule's keywords at
every node it validates (about a tenth of a lint), and ``Context.evolve`` built each new context through
the frozen dataclass's ``__init__``; with both stand-ins one lint took 1.33 s of CPU instead of 1.85 s.
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
from cfnlint.jsonschema._utils import Unset
from sympy.assumptions.cnf import EncodedCNF
from sympy.logic import inference

# Where cfn-lint calls sympy's satisfiable (each module imported the name itself).
SATISFIABLE_USERS = (cfnlint.conditions.conditions, cfnlint.context.conditions._conditions)
# Where cfn-lint calls dataclasses.fields on a class in an evolve or descend.
FIELDS_USERS = (cfnlint.context.context, cfnlint.jsonschema._filter, cfnlint.jsonschema.validators)

fresh_satisfiable = inference.satisfiable
fresh_fields = dataclasses.fields
fresh_create = cfnlint.jsonschema.validators.create
fresh_evolve = cfnlint.context.context.Context.evolve

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


# Context is a frozen dataclass whose fields are all init fields and that has no __post_init__
# (tests/test_lint_speed.py holds both): its __init__ only sets each field.
CONTEXT_FIELDS = tuple(f.name for f in dataclasses.fields(cfnlint.context.context.Context))
_CONTEXT_FIELD_SET = frozenset(CONTEXT_FIELDS)


def evolve(self: Any, **kwargs: Any) -> Any:
    """Context.evolve: a new context with kwargs' fields, the others this one's, and ``ref_values``
    merged into this one's, made without calling the frozen dataclass's ``__init__`` (which sets the
    fields one ``object.__setattr__`` at a time). A name that is no field goes to cfn-lint's, to fail
    as it does there."""
    if not kwargs.keys() <= _CONTEXT_FIELD_SET:
        return fresh_evolve(self, **kwargs)
    if "ref_values" in kwargs:
        ref_values = self.ref_values.copy()
        ref_values.update(kwargs["ref_values"])
        kwargs["ref_values"] = ref_values
    values = self.__dict__
    new = object.__new__(type(self))
    new.__dict__.update({name: kwargs[name] if name in kwargs else values[name] for name in CONTEXT_FIELDS})
    return new


# Rule E1101's class of each load of cfn-lint's rules (each load imports the rule files anew) and
# its own cfnLint.
_CFN_LINT_CLASSES: dict[type, Callable[..., Any]] = {}
_keyword_rules: dict[int, tuple[tuple[Any, ...], dict[str, list[Any]]]] = {}
_installed = False


def cfn_lint(self: Any, validator: Any, keywords: Any, instance: Any, schema: Any) -> Any:
    """Rule E1101's cfnLint: each keyword validated by the child rules that declare it, in the child
    rules' order (twice by a rule that declares it twice), the rule named on an error without one.
    cfn-lint compares every child rule's keywords with every keyword at every node; here they are
    indexed once per set of child rules (the same rule objects, the same order)."""
    validator = validator.evolve(function_filter=validator.function_filter.evolve(add_cfn_lint_keyword=False))
    rules = tuple(self.child_rules.values())
    kept = _keyword_rules.get(id(self))
    # By identity: cfn-lint's rules compare equal by id, and a new collection may wire other objects.
    if kept is None or len(kept[0]) != len(rules) or any(a is not b for a, b in zip(kept[0], rules, strict=True)):
        index: dict[str, list[Any]] = {}
        for rule in rules:
            if rule is not None and rule.id:
                for keyword in rule.keywords:
                    index.setdefault(keyword, []).append(rule)
        kept = _keyword_rules[id(self)] = (rules, index)
    for keyword in keywords:
        for rule in kept[1].get(keyword, ()):
            for err in rule.validate(validator, keyword, instance, schema):
                if err.rule is None and isinstance(err.validator, Unset):
                    err.rule = rule
                yield err


def adopt(rules: list[Any]) -> list[Any]:
    """Rules just loaded (conftest.shared_rules): E1101's class gets cfn_lint while installed."""
    for rule in rules:
        cls = type(rule)
        if cls.__name__ == "CfnLint" and "cfnLint" in vars(cls) and cls not in _CFN_LINT_CLASSES:
            _CFN_LINT_CLASSES[cls] = vars(cls)["cfnLint"]
            if _installed:
                cls.cfnLint = cfn_lint  # type: ignore[attr-defined]
    return rules


def _pycosat_absent() -> None:
    """sympy's satisfiable tries ``import pycosat`` at every call, a search of the whole sys.path when
    it is not installed; None in sys.modules fails the import at once, as the search would."""
    if "pycosat" not in sys.modules and importlib.util.find_spec("pycosat") is None:
        sys.modules["pycosat"] = None  # type: ignore[assignment]


def install() -> None:
    global _installed
    _installed = True
    _pycosat_absent()
    cfnlint.context.context.Context.evolve = evolve  # type: ignore[method-assign]
    for cls in _CFN_LINT_CLASSES:
        cls.cfnLint = cfn_lint  # type: ignore[attr-defined]
    for module in SATISFIABLE_USERS:
        module.satisfiable = satisfiable  # type: ignore[attr-defined]
    for module in FIELDS_USERS:
        module.fields = fields  # type: ignore[attr-defined]
    cfnlint.jsonschema.validators.create = create  # type: ignore[assignment]


def uninstall() -> None:
    """cfn-lint as shipped (for the tests that compare the two)."""
    global _installed
    _installed = False
    cfnlint.context.context.Context.evolve = fresh_evolve  # type: ignore[method-assign]
    for cls, shipped in _CFN_LINT_CLASSES.items():
        cls.cfnLint = shipped  # type: ignore[attr-defined]
    for module in SATISFIABLE_USERS:
        module.satisfiable = fresh_satisfiable  # type: ignore[attr-defined]
    for module in FIELDS_USERS:
        module.fields = fresh_fields  # type: ignore[attr-defined]
    cfnlint.jsonschema.validators.create = fresh_create


PATCHES: dict[str, Callable[..., Any]] = {
    "satisfiable": satisfiable,
    "fields": fields,
    "create": create,
    "evolve": evolve,
    "cfnLint": cfn_lint,
}
