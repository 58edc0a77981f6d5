"""WorkersConfig: safe defaults, and a clear error naming the field for each bad value."""

from __future__ import annotations

import ast
import dataclasses
import inspect

import pytest

from winworkers import ConfigError, WorkersConfig

BAD = [
    ("prefix", "winWorkers", "PascalCase"),
    ("prefix", "Win-Workers", "PascalCase"),
    ("prefix", "", "PascalCase"),
    ("prefix", "A" * 33, "1-32"),
    ("prefix", 7, "type str"),
    ("worker_log_paths", (), "at least one"),
    ("worker_log_paths", ("logs/*.log",), "absolute Windows path"),
    ("worker_log_paths", ("C:\\Logs\\a|b.log",), "absolute Windows path"),
    ("worker_log_paths", ("C:\\a.log", "C:\\a.log"), "without duplicates"),
    ("worker_log_paths", ("C:\\" + "a" * 4095 + ".log",), "absolute Windows path"),
    ("worker_log_paths", "C:\\a.log", "a tuple"),
    ("worker_log_paths", (3,), "strings"),
    ("metrics_namespace", "AWS/EC2", "AWS/"),
    ("metrics_namespace", "bad namespace!", "1-255"),
    ("metrics_interval_seconds", 7, "one of"),
    ("metrics_interval_seconds", "60", "type int"),
    ("metrics_interval_seconds", True, "type int"),
    ("max_fleet_size", 0, "1 to 1000"),
    ("max_fleet_size", -3, "1 to 1000"),
    ("max_fleet_size", 1001, "1 to 1000"),
    ("include_alarms", "yes", "type bool"),
    ("default_instance_type", "t2.micro", "large|xlarge"),
    ("tags", (("Name", "x"),), "reserved"),
    ("tags", (("aws:x", "y"),), "aws:"),
    ("tags", (("a", "1"), ("a", "2")), "unique"),
    ("tags", (("a",),), "pairs"),
    ("tags", (("a", "\x98"),), "Unicode letters"),
    ("tags", (("a\nb", "x"),), "Unicode letters"),
]


@pytest.mark.parametrize(("field", "value", "allowed"), BAD, ids=[f"{f}={v!r}"[:40] for f, v, _ in BAD])
def test_bad_value_names_the_field_the_value_and_what_is_allowed(field: str, value: object, allowed: str) -> None:
    with pytest.raises(ValueError) as raised:
        WorkersConfig(**{field: value})  # type: ignore[arg-type]
    error = raised.value
    assert isinstance(error, ConfigError)
    assert error.field == field
    assert f"WorkersConfig.{field}=" in str(error)
    assert allowed in str(error)


def test_defaults_are_valid_and_every_field_is_documented() -> None:
    config = WorkersConfig()
    assert config.prefix == "Win"
    assert config.worker_log_paths == ("C:\\ProgramData\\TDP\\Logs\\*.log",)
    body = ast.parse(inspect.getsource(WorkersConfig)).body[0]
    assert isinstance(body, ast.ClassDef)
    documented = {
        node.target.id
        for node, after in zip(body.body, body.body[1:], strict=False)
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
    }
    assert documented == {field.name for field in dataclasses.fields(WorkersConfig)}


def test_config_is_immutable() -> None:
    config = WorkersConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.prefix = "Other"  # type: ignore[misc]


def test_logical_ids_are_prefixed() -> None:
    assert WorkersConfig(prefix="Win2").logical_id("Group") == "Win2Group"
