"""A small PowerShell interpreter for the tests: the constructs the UserData (tests/test_lifecycle.py)
and the sample worker (tests/test_sample_worker.py) are written in, no more.

There is no PowerShell here, so a script is parsed with tree-sitter's PowerShell grammar and
run statement by statement; every command that is not one of the script's own functions goes
to the test's fake world as a :class:`Call`, which answers it, fails it (:class:`Failure`, a
terminating error as with ErrorActionPreference Stop) or ends the run. A construct the
interpreter does not know fails the test, naming it, rather than being guessed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tree_sitter import Node

from conftest import POWERSHELL_PARSER


class Syntax:
    """A tree-sitter node as the interpreter reads it, its children and text kept once read: tree-sitter
    makes new objects for them at every access, and a loop's body is read again at every pass (a fifth
    of the sample worker's tests' CPU). The tree does not change while it runs."""

    __slots__ = ("_children", "_named", "_node", "_text", "end_byte", "start_byte", "type")

    def __init__(self, node: Node) -> None:
        self._node = node
        self.type: str = node.type
        self.start_byte: int = node.start_byte
        self.end_byte: int = node.end_byte
        self._named: list[Syntax] | None = None
        self._children: list[Syntax] | None = None
        self._text: bytes | None = None

    @property
    def named_children(self) -> list[Syntax]:
        if self._named is None:
            self._named = [Syntax(c) for c in self._node.named_children]
        return self._named

    @property
    def children(self) -> list[Syntax]:
        if self._children is None:
            self._children = [Syntax(c) for c in self._node.children]
        return self._children

    @property
    def named_child_count(self) -> int:
        return len(self.named_children)

    @property
    def text(self) -> bytes | None:
        if self._text is None:
            self._text = self._node.text
        return self._text


class Exit(Exception):
    """``exit``: the script ends, with its code."""

    def __init__(self, code: int = 0) -> None:
        self.code = code


class Break(Exception):
    pass


class Continue(Exception):
    pass


class Return(Exception):
    """``return``: the function ends, with its value."""

    def __init__(self, value: Any = None) -> None:
        self.value = value


class Failure(Exception):
    """A terminating error (a failed command, ``throw``); ``catch`` sets $_ to its message."""


@dataclass
class Call:
    """A command the script runs, as the fake world sees it."""

    name: str
    """The command's name, or a native program's path (``& "C:\\...\\cfn-init.exe"``)."""
    args: list[Any]
    """Every argument in order, a parameter as its "-Name" token, a splatted array spread."""
    positional: list[Any] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    """By lower-case parameter name: its value, or True for a switch."""
    piped: Any = None
    native: bool = False


# The switch parameters the scripts pass: they take no value.
SWITCHES = {"force", "parent", "raw"}
_BLOCKS = {"program", "statement_list", "statement_block", "script_block", "script_block_body"}
_PASS_THROUGH = {
    "pipeline",
    "pipeline_chain",
    "logical_expression",
    "bitwise_expression",
    "comparison_expression",
    "additive_expression",
    "multiplicative_expression",
    "format_expression",
    "range_expression",
    "array_literal_expression",
    "unary_expression",
    "expression_with_unary_operator",
    "left_assignment_expression",
    "parenthesized_expression",
    "command_name_expr",
    "while_condition",
    "script_parameter_default",
    "key_expression",
    # A method's arguments.
    "argument_expression",
    "logical_argument_expression",
    "bitwise_argument_expression",
    "comparison_argument_expression",
    "additive_argument_expression",
    "multiplicative_argument_expression",
    "format_argument_expression",
    "range_argument_expression",
}
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "-eq": lambda a, b: a == b,
    "-ne": lambda a, b: a != b,
    "-ge": lambda a, b: a >= b,
    "-gt": lambda a, b: a > b,
    "-le": lambda a, b: a <= b,
    "-lt": lambda a, b: a < b,
    "-like": lambda a, b: fnmatch.fnmatchcase(str(a).lower(), str(b).lower()),  # PowerShell's wildcards, any case
}


class Interpreter:
    """Runs a script; commands go to ``command``. A function's result is the value of its
    ``return``, or else what its statements output (one value: that value), as in PowerShell.
    ``strict``: reading a variable never set fails the test (else it is $null)."""

    def __init__(
        self, source: str, command: Callable[[Call], Any], variables: dict[str, Any], *, strict: bool = True
    ) -> None:
        tree = POWERSHELL_PARSER.parse(source.encode())
        assert not tree.root_node.has_error, "not valid PowerShell"
        self.root, self.command, self.strict = Syntax(tree.root_node), command, strict
        self.variables: dict[str, Any] = {"true": True, "false": False, "null": None, **variables}
        self.functions: dict[str, tuple[list[str], Syntax]] = {}

    def run(self) -> int:
        """The exit code; a Failure nothing caught propagates."""
        try:
            self._block(self.root)
        except Exit as done:
            return done.code
        return 0

    # statements

    def _block(self, node: Syntax) -> list[Any]:
        out: list[Any] = []
        for child in node.named_children:
            out += self._statement(child)
        return out

    def _statement(self, node: Syntax) -> list[Any]:
        kind = node.type
        if kind in _BLOCKS:
            return self._block(node)
        if kind in {"empty_statement", "comment"}:
            return []
        if kind == "param_block":
            for parameter in node.named_children[0].named_children:
                default = named(parameter, "script_parameter_default")
                name = text(named(parameter, "variable") or parameter)[1:]
                self.variables.setdefault(name, self._value(default) if default else None)
            return []
        if kind == "function_statement":
            self._function(node)
            return []
        if kind == "if_statement":
            return self._if(node)
        if kind in {"while_statement", "foreach_statement"}:
            return self._loop(node)
        if kind == "try_statement":
            try:
                return self._block(child(node, "statement_block"))
            except Failure as error:
                self.variables["_"] = str(error)
                return self._block(child(child(child(node, "catch_clauses"), "catch_clause"), "statement_block"))
        if kind == "flow_control_statement":
            self._flow(node)
        value = self._value(node)
        return [] if value is None else [value]

    def _function(self, node: Syntax) -> None:
        name = text(child(node, "function_name"))
        declaration = named(node, "function_parameter_declaration")
        params = [text(v)[1:] for v in descendants(declaration, "variable")] if declaration else []
        self.functions[name] = (params, child(node, "script_block"))

    def _if(self, node: Syntax) -> list[Any]:
        condition, body = node.named_children[0], node.named_children[1]
        if self._value(condition):
            return self._block(body)
        for clause in (named(node, "elseif_clauses") or node).named_children:
            if clause.type == "elseif_clause" and self._value(clause.named_children[0]):
                return self._block(clause.named_children[1])
        otherwise = named(node, "else_clause")
        return self._block(child(otherwise, "statement_block")) if otherwise else []

    def _loop(self, node: Syntax) -> list[Any]:
        out: list[Any] = []
        if node.type == "while_statement":
            condition, body = child(node, "while_condition"), child(node, "statement_block")
            rounds: Any = iter(lambda: bool(self._value(condition)), False)
        else:
            variable, items, body = node.named_children
            rounds = self._value(items)
        for item in rounds:
            if node.type == "foreach_statement":
                self.variables[text(variable)[1:]] = item
            try:
                out += self._block(body)
            except Break:
                break
            except Continue:
                continue
        return out

    def _flow(self, node: Syntax) -> None:
        keyword = text(node.children[0]).lower()
        value = self._value(node.named_children[0]) if node.named_child_count else None
        if keyword == "break":
            raise Break
        if keyword == "continue":
            raise Continue
        if keyword == "return":
            raise Return(value)
        if keyword == "exit":
            raise Exit(int(value or 0))
        assert keyword == "throw", keyword
        raise Failure(str(value))

    # expressions

    def _value(self, node: Syntax) -> Any:
        kind = node.type
        children = node.named_children
        if kind in _PASS_THROUGH and len(children) == 1 and kind != "expression_with_unary_operator":
            return self._value(children[0])
        if kind == "pipeline_chain" or (kind == "pipeline" and len(children) > 1):
            piped: Any = None
            for stage in children:
                piped = self._command(stage, piped)
            return piped
        if kind == "assignment_expression":
            target = text(descendants(child(node, "left_assignment_expression"), "variable")[0])[1:]
            value = self._value(children[-1])
            if target != "null":
                self.variables[target] = value
            return None
        if kind == "variable":
            return self._variable(text(node)[1:])
        if kind == "string_literal":
            return self._value(children[0]) if children else text(node)
        if kind == "verbatim_string_characters":
            return text(node)[1:-1]
        if kind == "expandable_string_literal":
            return re.sub(r"\$(\w+)", lambda m: str(self._variable(m.group(1))), text(node)[1:-1])
        if kind == "integer_literal":
            return int(text(node))
        if kind == "generic_token":
            return text(node)
        if kind == "array_literal_expression":
            return [self._value(c) for c in children]
        if kind == "array_expression":
            return self._block(children[0]) if children else []
        if kind == "hash_literal_expression":
            body = named(node, "hash_literal_body")
            entries = body.named_children if body else []
            return {text(e.named_children[0]).strip("'\""): self._value(e.named_children[1]) for e in entries}
        if kind == "command":
            return self._command(node, None)
        if kind == "if_statement":  # $x = if (...) {...} else {...}: the branch's output
            out = self._statement(node)
            return out[0] if len(out) == 1 else out
        return self._operation(node)

    def _variable(self, name: str) -> Any:
        assert name in self.variables or not self.strict, f"${name} is not set"
        return self.variables.get(name)

    def _operation(self, node: Syntax) -> Any:
        kind, children = node.type, node.named_children
        if kind == "comparison_expression":
            left, operator, right = children
            return COMPARE[text(operator).lower()](self._value(left), self._value(right))
        if kind == "logical_expression":
            left, right = children
            if between(node, left, right).lower() == "-and":
                return bool(self._value(left)) and bool(self._value(right))
            assert between(node, left, right).lower() == "-or", text(node)
            return bool(self._value(left)) or bool(self._value(right))
        if kind == "additive_expression":
            left, right = (self._value(c) for c in children)
            if between(node, *children) == "+":
                return str(left) + str(right) if isinstance(left, str) else left + right
            return int(left) - int(right) if isinstance(left, str) or isinstance(right, str) else left - right
        if kind == "multiplicative_expression":
            left, right = (self._value(c) for c in children)
            assert between(node, *children) == "*", text(node)
            return left * right
        if kind == "expression_with_unary_operator":
            if children[0].type == "cast_expression":
                return self._value(children[0])
            assert text(node).lower().startswith("-not"), text(node)
            return not self._value(children[0])
        if kind == "cast_expression":
            return self._cast(text(children[0]), self._value(children[1]))
        if kind in {"member_access", "element_access", "invokation_expression"}:
            return self._member(node)
        raise AssertionError(f"the test's interpreter does not know {kind}: {text(node)!r}")

    def _cast(self, kind: str, value: Any) -> Any:
        if kind == "[int]":
            return int(value)
        assert kind == "[datetime]", kind
        return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))

    def _member(self, node: Syntax) -> Any:
        kind, children = node.type, node.named_children
        if kind == "element_access":
            return self._value(children[0])[self._value(children[1])]
        if kind == "invokation_expression" and text(node).startswith("["):
            # A .NET static call (the clock, a parse): the world answers it by its text, given the variables.
            return self.command(Call(text(node), [], piped=dict(self.variables)))
        if kind == "invokation_expression":
            target, member, arguments = children
            value, name = self._value(target), text(member)
            args = [self._value(a) for a in descendants(arguments, "argument_expression")]
            assert name == "AddMinutes", f"the test's interpreter has no method {name}"
            return value + timedelta(minutes=args[0])
        target, member = children
        owner, name = self._value(target), text(member)
        if isinstance(owner, dict):
            return owner[name]
        if isinstance(owner, timedelta):
            assert name == "TotalSeconds", name
            return owner.total_seconds()
        return getattr(owner, name)

    # commands

    def _command(self, node: Syntax, piped: Any) -> Any:
        call = self._arguments(node, piped)
        if re.fullmatch(r"\d+\.\.\d+", call.name):  # the grammar reads foreach's 1..10 as a command
            low, high = map(int, call.name.split(".."))
            return list(range(low, high + 1))
        if call.name in self.functions:
            return self._call(call)
        return self.command(call)

    def _arguments(self, node: Syntax, piped: Any) -> Call:
        if named(node, "command_name_expr"):  # & "path\program.exe" ...
            name, native = str(self._value(child(node, "command_name_expr"))), True
        else:
            name, native = text(node.named_children[0]), False
        container = named(node, "command_elements")
        elements = [c for c in container.named_children if c.type != "command_argument_sep"] if container else []
        call = Call(name, [], piped=piped, native=native)
        parameter: str | None = None
        for element in elements:
            if element.type == "command_parameter":
                if parameter is not None:
                    call.options[parameter] = True
                call.args.append(text(element))
                parameter = text(element)[1:].lower()
                if parameter in SWITCHES:
                    call.options[parameter], parameter = True, None
                continue
            values = self.variables[text(element)[1:]] if re.fullmatch(r"@\w+", text(element)) else None
            value = self._value(element) if values is None else values  # @c: splatting
            call.args.extend(values if values is not None else [value])
            if parameter is None:
                call.positional.append(value)
            else:
                call.options[parameter], parameter = value, None
        if parameter is not None:
            call.options[parameter] = True
        return call

    def _call(self, call: Call) -> Any:
        params, body = self.functions[call.name]
        saved = dict(self.variables)
        bound = dict(zip(params, call.positional, strict=False))
        bound |= {p: call.options[p.lower()] for p in params if p.lower() in call.options}
        # An argument not given is $null, as in PowerShell (worker.ps1's Get-EpochMs reads the clock
        # when it is given no time); one given that the function does not declare is a defect.
        assert len(bound) == len(call.positional) + len(call.options) <= len(params), (call.name, call.args)
        self.variables.update({p: bound.get(p) for p in params})
        try:
            out = self._block(body)
            return out[0] if len(out) == 1 else (out or None)
        except Return as returned:
            return returned.value
        finally:
            # A function reads its callers' variables; what it assigns is its own (PowerShell's scopes).
            self.variables = saved


def text(node: Syntax | None) -> str:
    assert node is not None and node.text is not None
    return node.text.decode()


def named(node: Syntax, kind: str) -> Syntax | None:
    """node's first named child of kind, if any."""
    return next((c for c in node.named_children if c.type == kind), None)


def child(node: Syntax | None, kind: str) -> Any:
    """node's first named child of kind, which must be there."""
    assert node is not None
    found = named(node, kind)
    assert found is not None, f"{node.type} has no {kind}"
    return found


def descendants(node: Syntax, kind: str) -> list[Syntax]:
    found = [node] if node.type == kind else []
    for c in node.named_children:
        found += descendants(c, kind)
    return found


def between(node: Syntax, left: Syntax, right: Syntax) -> str:
    """The operator token between two operands."""
    source = node.text or b""
    return source[left.end_byte - node.start_byte : right.start_byte - node.start_byte].decode().strip()
