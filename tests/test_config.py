"""WorkersConfig: safe defaults, and a clear error naming the field for each bad value."""

from __future__ import annotations

import dataclasses
import json
import pydoc
import re
from pathlib import Path

import pytest

from winworkers import ConfigError, WorkersConfig, load_config

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
    # The agent's rule (docs/lifecycle.md, "When a worker fails to boot"): * in the file name only.
    ("worker_log_paths", ("C:\\" + "a" * 254 + ".log",), "at most 260 characters"),
    ("worker_log_paths", ("C:\\Logs*\\a.log",), "in the file name only"),
    ("worker_log_paths", ("C:\\Logs\\**.log",), "no **"),
    ("worker_log_paths", ("C:\\Logs\\[ab].log",), "without ? [ ]"),
    ("worker_log_paths", ("C:\\Logs\\a?.log",), "without ? [ ]"),
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
    ("default_instance_type", "t2.micro", "x86_64"),
    ("default_instance_type", "m7i.8xlage", "did you mean m7i.8xlarge?"),
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


def test_defaults_are_valid_and_every_field_is_documented_where_help_shows_it() -> None:
    config = WorkersConfig()
    assert config.prefix == "Win"
    assert config.worker_log_paths == ("C:\\ProgramData\\TDP\\Logs\\*.log",)
    shown = pydoc.render_doc(WorkersConfig, renderer=pydoc.plaintext)
    for field in dataclasses.fields(WorkersConfig):
        doc = field.metadata["doc"]
        assert len(doc) > 20, field.name
        # Each field's entry, and the start of its documentation (help() wraps the rest).
        assert f"{field.name} (default " in shown, field.name
        assert " ".join(doc.split()[:6]) in " ".join(shown.split()), field.name


def test_from_mapping_reads_plain_data_as_the_config() -> None:
    data = {"prefix": "Gpu", "worker_log_paths": ["D:\\a\\*.log"], "tags": {"Team": "imaging", "Env": "dev"}}
    config = WorkersConfig.from_mapping(data)
    assert config == WorkersConfig(
        prefix="Gpu", worker_log_paths=("D:\\a\\*.log",), tags=(("Team", "imaging"), ("Env", "dev"))
    )
    assert WorkersConfig.from_mapping({"tags": [["Team", "imaging"]]}).tags == (("Team", "imaging"),)
    assert WorkersConfig.from_mapping(config.to_mapping()) == config
    assert json.loads(json.dumps(config.to_mapping())) == config.to_mapping()


def test_from_mapping_names_unknown_keys_and_checks_values() -> None:
    with pytest.raises(ConfigError, match=r"unknown WorkersConfig fields \['max_size', 'zone'\]"):
        WorkersConfig.from_mapping({"max_size": 3, "zone": "a", "prefix": "Gpu"})
    with pytest.raises(ConfigError, match=re.escape("WorkersConfig.max_fleet_size='4' is not allowed")):
        WorkersConfig.from_mapping({"max_fleet_size": "4"})


def test_load_config_reads_toml_and_json(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("prefix = 'Gpu'\ninclude_alarms = false\n")
    (tmp_path / "c.json").write_text('{"prefix": "Gpu", "include_alarms": false}')
    expected = WorkersConfig(prefix="Gpu", include_alarms=False)
    assert load_config(tmp_path / "c.toml") == load_config(str(tmp_path / "c.json")) == expected
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match="expected a table"):
        load_config(tmp_path / "list.json")


def test_the_longest_and_widest_log_paths_are_accepted() -> None:
    longest = "C:\\" + "a" * 253 + ".log"
    assert len(longest) == 260
    assert (
        WorkersConfig(worker_log_paths=(longest, "D:\\x y\\*.log", "C:\\Logs\\app-*-*.txt")).worker_log_paths[0]
        == longest
    )


def test_config_is_immutable() -> None:
    config = WorkersConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.prefix = "Other"  # type: ignore[misc]


def test_logical_ids_are_prefixed() -> None:
    assert WorkersConfig(prefix="Win2").logical_id("Group") == "Win2Group"


def test_review2_tags_leave_room_for_the_refresh_claim_within_auto_scaling_s_50() -> None:
    # Review 2: Auto Scaling allows at most 50 tags per group (user guide, "Tag Auto Scaling
    # groups and instances": tag restrictions). The group carries Name, Feature and Stack plus the
    # config's tags, and the refresh custom resource adds its claim tag (ami_refresh.CLAIM) with
    # CreateOrUpdateTags at every forward update: 47 tags would make a group of 50 that deploys,
    # then every update that should refresh fails. The build refuses them, naming the field (the
    # check lives with the claim, in winworkers.refresh, so the config stays the lowest floor).
    from winworkers import build_template, compute

    fits = WorkersConfig(tags=tuple((f"team{i}", "x") for i in range(46)))
    assert len(compute.group_tags(fits)) + 1 == 50
    build_template(fits)
    with pytest.raises(
        ConfigError,
        match=r"^WorkersConfig.tags=.47 tags. is not allowed: at most 46: Auto Scaling allows 50 tags a group",
    ):
        build_template(WorkersConfig(tags=tuple((f"team{i}", "x") for i in range(47))))
