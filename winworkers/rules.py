"""Evaluate a template's Rules for given parameter values, as CloudFormation does
before it creates a change set. Used by winworkers deploy (after the parameter
constraints, winworkers.constraints) to fail before any API call, and by the
tests; local emulators do not evaluate Rules.

Only the rule-specific intrinsic functions are supported, and an unknown one
raises ValueError rather than guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any


def is_list_type(parameter_type: str) -> bool:
    """CommaDelimitedList and the List<...> types take comma-separated items.

    Defined here, below winworkers.constraints (which imports this module and
    offers it as constraints.is_list_type), so that both use the one test."""
    return parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<")


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """Every parameter's value: the given one, else its default. Lists are split."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given:
            raw = given[name]
        elif "Default" in spec:
            raw = str(spec["Default"])
        else:
            raise ValueError(f"parameter {name} has no value and no default")
        values[name] = split_list(spec["Type"], raw)
    unknown = sorted(set(given) - set(values))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}")
    return values


def failed_assertions(template: Mapping[str, Any], given: Mapping[str, str]) -> list[str]:
    """The AssertDescription of every assertion that fails, rule by rule ("Rule: description").

    An assertion described as an order of parameters ("A <= B <= C") is also
    checked numerically over every value, not only as far as the Rule itself
    enumerates (see winworkers.parameters.RULE_CAPACITY_BOUND); its failure
    names the values. Empty values are unset and bound nothing.
    """
    values = parameter_values(template, given)
    failures = []
    for rule_name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _eval(rule["RuleCondition"], values):
            continue
        for assertion in rule.get("Assertions", []):
            description = assertion.get("AssertDescription", "assertion failed")
            order = _order(description, values)
            if order is not None and not _ordered(order, values):
                got = ", ".join(f"{name}={values[name]!r}" for name in order)
                failures.append(f"{rule_name}: {description} (got {got})")
            elif not _eval(assertion["Assert"], values):
                failures.append(f"{rule_name}: {description}")
    return failures


def parameters_read(rule: Mapping[str, Any]) -> set[str]:
    """The parameters a Rule reads (its RuleCondition and Assertions): each it Refs, and each its order
    descriptions name ("A <= B <= C", checked over every value by failed_assertions). A Rule whose every
    parameter is given judges the same whatever else the stack holds."""
    read: set[str] = set()

    def visit(key: str, value: Any) -> list[Any]:
        if key == "Ref" and isinstance(value, str):
            read.add(value)
        elif key == "AssertDescription" and isinstance(value, str) and "<=" in value:
            read.update(name.strip() for name in value.split("<="))
        return [value]

    walk([rule], visit)
    return read


def _order(description: str, values: Mapping[str, Any]) -> list[str] | None:
    """The parameter names of a description "A <= B <= C", if it is one."""
    names = [name.strip() for name in description.split("<=")]
    return names if len(names) > 1 and all(name in values for name in names) else None


def _ordered(names: list[str], values: Mapping[str, Any]) -> bool:
    numbers = [int(values[name]) for name in names if str(values[name]).strip().isdigit()]
    return numbers == sorted(numbers)


# What each section of a template may call (CloudFormation's Rules and Conditions function
# references): Ref, and Condition in Conditions, come with both.
RULE_FUNCTIONS = frozenset(
    {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Contains", "Fn::EachMemberEquals", "Fn::EachMemberIn"}
)
CONDITION_FUNCTIONS = frozenset({"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Select", "Fn::Join", "Fn::Split"})


def split_list(parameter_type: str, raw: str) -> str | list[str]:
    """A parameter's value as Rules and Conditions see it: a list type's items, split and stripped."""
    return [item.strip() for item in raw.split(",")] if is_list_type(parameter_type) else raw


def _eval(node: Any, values: Mapping[str, Any]) -> Any:
    """A Rules expression's value (RuleCondition, Assert) for parameter_values."""
    return evaluate(node, values, RULE_FUNCTIONS)


def evaluate(
    node: Any, values: Mapping[str, Any], functions: frozenset[str], conditions: Mapping[str, Any] | None = None
) -> Any:
    """node's value for values (lists split), with Ref, the named functions and, given the template's
    conditions, Condition; any other function raises ValueError rather than guessing."""
    if isinstance(node, list):
        return [evaluate(item, values, functions, conditions) for item in node]
    if not isinstance(node, Mapping):
        return node
    if len(node) != 1:
        raise ValueError(f"not an intrinsic function: {node!r}")
    ((function, args),) = node.items()
    if function == "Ref":
        return values[args]
    if function == "Condition" and conditions is not None:
        return evaluate(conditions[args], values, functions, conditions)
    if function not in functions:
        raise ValueError(f"{function} is not a function this evaluator knows here")
    arg = evaluate(args, values, functions, conditions)
    match function:
        case "Fn::Equals":
            return as_text(arg[0]) == as_text(arg[1])
        case "Fn::Not":
            return not arg[0]
        case "Fn::And":
            return all(arg)
        case "Fn::Or":
            return any(arg)
        case "Fn::Contains":
            return arg[1] in arg[0]
        case "Fn::EachMemberEquals":
            return all(item == arg[1] for item in arg[0])
        case "Fn::EachMemberIn":
            return all(item in arg[1] for item in arg[0])
        case "Fn::Select":
            return arg[1][int(arg[0])]
        case "Fn::Join":
            return str(arg[0]).join(arg[1])
        case "Fn::Split":
            return str(arg[1]).split(arg[0])
    raise ValueError(f"{function} is not a function this evaluator knows")


def as_text(value: Any) -> str:
    """A value compared as CloudFormation's strings: a list joined with commas, nothing empty."""
    return ",".join(str(v) for v in value) if isinstance(value, list) else "" if value is None else str(value)


def walk(roots: Iterable[Any], visit: Callable[[str, Any], Iterable[Any]]) -> None:
    """Every key and value of every mapping in the trees of roots (lists looked through):
    visit(key, value) returns what to walk next in its place (the value, more, or nothing)."""
    pending = list(roots)
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending += node
        elif isinstance(node, Mapping):
            for key, value in node.items():
                pending += visit(key, value)


def condition_named(key: str, value: Any) -> str | None:
    """The condition a resource's or output's Condition, or an Fn::If, names."""
    if key == "Condition" and isinstance(value, str):
        return value
    if key == "Fn::If" and isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None
