"""Pack variables: types, nesting, sources, precedence and errors with the variable's path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import attrs
import pytest

from nomadmesh.errors import ParseError, ValidationError
from nomadmesh.packs import VariableInfo, variable
from nomadmesh.packs.variables import describe, resolve


@attrs.frozen(kw_only=True)
class Redis:
    port: int = variable(6379, description="port Redis listens on",
                         validator=attrs.validators.and_(attrs.validators.ge(1),
                                                         attrs.validators.le(65535)))
    persistent: bool = variable(False, description="keep data on a host volume")


@attrs.frozen(kw_only=True)
class Web:
    image: str = variable(description="container image")
    count: int = variable(2, description="instances", validator=attrs.validators.ge(1))
    ratio: float = variable(0.5)
    datacenters: list[str] = variable(factory=lambda: ["dc1"])
    labels: dict[str, str] = variable(factory=dict)
    mode: Literal["bridge", "host"] = variable("bridge")
    owner: str | None = variable(None)
    redis: Redis = variable(factory=Redis, description="the cache")


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {p.path: p.message for p in exc.value.problems}


def test_defaults_fill_every_variable_not_given() -> None:
    v = resolve(Web, values={"image": "web:1"}, env={})
    assert (v.count, v.datacenters, v.redis.port) == (2, ["dc1"], 6379)


def test_strings_from_the_command_line_are_converted_to_each_field_type() -> None:
    v = resolve(Web, values={"image": "web:1", "count": "3", "ratio": "0.25",
                             "datacenters": "dc1, dc2", "labels": '{"team": "a"}',
                             "mode": "host", "redis.persistent": "yes"}, env={})
    assert (v.count, v.ratio, v.datacenters, v.labels, v.mode, v.redis.persistent) == (
        3, 0.25, ["dc1", "dc2"], {"team": "a"}, "host", True)


def test_a_dotted_name_sets_a_nested_variable() -> None:
    assert resolve(Web, values={"image": "x", "redis.port": "6380"}, env={}).redis.port == 6380


def test_a_nested_mapping_sets_nested_variables_and_keeps_the_others() -> None:
    v = resolve(Web, values={"image": "x", "redis": {"persistent": True}}, env={})
    assert (v.redis.persistent, v.redis.port) == (True, 6379)


def test_a_missing_required_variable_is_reported_with_its_path() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, env={})
    assert "required variable is not set" in problems(exc)["image"]


def test_a_type_error_names_the_nested_path_and_the_source() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "redis.port": "six"}, env={})
    assert problems(exc) == {"redis.port": "expected an integer, got 'six' (from --var)"}


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"count": "0", "redis.port": "70000", "mode": "overlay"}, env={})
    assert set(problems(exc)) == {"image", "count", "redis.port", "mode"}


def test_a_validator_failure_is_reported_at_the_variable() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "count": "0"}, env={})
    assert problems(exc)["count"].startswith("'count' must be >= 1")


def test_an_unknown_variable_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "redis.prot": "1"}, env={})
    assert problems(exc) == {"redis.prot": "unknown variable (from --var); did you mean redis.port?"}


def test_a_group_of_variables_cannot_take_a_plain_value() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "redis": "big"}, env={})
    assert "is a group of variables (redis.port, redis.persistent)" in problems(exc)["redis"]


def test_booleans_from_files_are_not_numbers() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "count": True}, env={})
    assert problems(exc)["count"] == "expected an integer, got True (from --var)"


def test_list_items_are_checked_with_their_index() -> None:
    with pytest.raises(ValidationError) as exc:
        resolve(Web, values={"image": "x", "datacenters": ["dc1", 2]}, env={})
    assert "datacenters[1]" in problems(exc)


def test_optional_variables_accept_null() -> None:
    assert resolve(Web, values={"image": "x", "owner": None}, env={}).owner is None


@pytest.mark.parametrize("suffix,text", [
    (".json", json.dumps({"image": "web:2", "redis": {"port": 7000}})),
    (".yaml", "image: web:2\nredis:\n  port: 7000\n"),
    (".toml", 'image = "web:2"\n[redis]\nport = 7000\n'),
    (".hcl", 'image = "web:2"\nredis = { port = 7000 }\n'),
])
def test_var_files_in_every_format_set_nested_values(tmp_path: Path, suffix: str,
                                                     text: str) -> None:
    f = tmp_path / f"vars{suffix}"
    f.write_text(text)
    v = resolve(Web, var_files=[f], env={})
    assert (v.image, v.redis.port) == ("web:2", 7000)


def test_a_var_file_value_of_the_wrong_type_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "vars.yaml"
    f.write_text("image: web\ncount: many\n")
    with pytest.raises(ValidationError) as exc:
        resolve(Web, var_files=[f], env={})
    assert problems(exc)["count"] == f"expected an integer, got 'many' (from {f})"


def test_a_malformed_var_file_is_a_parse_error_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "vars.json"
    f.write_text('{"image": \n')
    with pytest.raises(ParseError) as exc:
        resolve(Web, var_files=[f], env={})
    assert exc.value.source == str(f) and exc.value.line == 2


def test_environment_variables_use_double_underscores_for_nesting() -> None:
    v = resolve(Web, env={"NOMADMESH_VAR_image": "e", "NOMADMESH_VAR_redis__port": "6390"})
    assert (v.image, v.redis.port) == ("e", 6390)


def test_environment_variables_for_other_packs_are_ignored() -> None:
    assert resolve(Web, env={"NOMADMESH_VAR_image": "e", "NOMADMESH_VAR_other": "1"}).image == "e"


def test_precedence_is_defaults_then_env_then_files_in_order_then_values(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"image": "file-a", "count": 3, "ratio": 0.1}))
    second.write_text(json.dumps({"count": 4}))
    env = {"NOMADMESH_VAR_image": "env", "NOMADMESH_VAR_owner": "env-owner",
           "NOMADMESH_VAR_ratio": "0.9"}
    v = resolve(Web, values={"count": "5"}, var_files=[first, second], env=env)
    assert (v.owner, v.image, v.ratio, v.count, v.mode) == ("env-owner", "file-a", 0.1, 5, "bridge")


def test_describe_lists_nested_variables_with_types_defaults_and_docs() -> None:
    info = {i.path: i for i in describe(Web)}
    assert info["redis.port"] == VariableInfo("redis.port", "int", False, 6379,
                                              "port Redis listens on")
    assert info["image"].required and info["datacenters"].default == ["dc1"]

