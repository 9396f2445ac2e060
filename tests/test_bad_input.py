"""Bad input of every kind ends in a nomadmesh error (or a valid job), never another exception.

Each test runs `BUDGETS[name]` Hypothesis examples of `CASES[name]` generated documents each
(JSON examples carry a batch of 4 documents: cheap to check, so the batch amortizes Hypothesis's
per-example cost); the cases add up to more than 10,000, as the last test checks. Each case runs
the public entry points `Job.from_hcl` and `Job.from_api` on malformed text, wrong types, unknown
fields and mutated valid documents.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nomadmesh.errors import NomadmeshError, ParseError, ValidationError
from nomadmesh.model import Job

BUDGETS = {
    "arbitrary_text_as_hcl": 2500,
    "mutated_hcl": 900,
    "wrong_types_in_hcl": 500,
    "unknown_hcl_fields": 250,
    "variable_values": 150,
    "arbitrary_json": 900,
    "mutated_json": 800,
}
BATCH = 4
CASES = {name: BATCH if name.endswith("_json") else 1 for name in BUDGETS}


def budget(name: str) -> settings:
    """Hypothesis settings running exactly the named number of generated cases."""
    return settings(max_examples=BUDGETS[name], deadline=None, database=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def outcome(load: Callable[[], Job]) -> Job | NomadmeshError:
    """The job, or the nomadmesh error raised; any other exception fails the test."""
    try:
        return load()
    except NomadmeshError as exc:
        return exc


BASE_HCL = """\
job "web" {
  datacenters = ["dc1"]
  meta = { "team.name" = "core" }
  group "api" {
    count = 2
    network {
      port "http" { to = 8080 }
    }
    task "app" {
      driver = "docker"
      config { image = "nginx:${NOMAD_META_v}" }
      resources { memory = 128 }
      kill_timeout = "10s"
    }
  }
}
"""

BASE_JSON: dict[str, Any] = Job.from_hcl(BASE_HCL).to_api()
BASE_JSON_TEXT = json.dumps(BASE_JSON)

hcl_fragments = st.sampled_from([
    "{", "}", "[", "]", '"', "=", "\n", "${", "%{", "<<EOF\n", "EOF", "#", "//", "/*", "*/",
    "var.x", "local.y", "upper(", ")", "1e9", "-", "?", ":", "null", "true", ",", ".", "\\",
    'group "g" {', "task", "dynamic", "for", "x = 1", "\"${attr.x}\"", "$${", "%%{",
])


@budget("arbitrary_text_as_hcl")
@given(st.text(max_size=80) | st.lists(hcl_fragments, max_size=12).map("".join))
def test_arbitrary_text_never_escapes_as_another_exception(text: str) -> None:
    assert isinstance(outcome(lambda: Job.from_hcl(text)), (Job, NomadmeshError))


@st.composite
def mutated_hcl(draw: st.DrawFn) -> str:
    """The base job with a span replaced by HCL-ish fragments or random text."""
    text = BASE_HCL
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        filler = draw(st.lists(hcl_fragments, max_size=3).map("".join) | st.text(max_size=6))
        text = text[:start] + filler + text[end:]
    return text


@budget("mutated_hcl")
@given(mutated_hcl())
def test_mutated_hcl_documents_end_in_nomadmesh_errors(text: str) -> None:
    assert isinstance(outcome(lambda: Job.from_hcl(text)), (Job, NomadmeshError))


HCL_FIELDS = {
    "count": "group", "kill_timeout": "task", "driver": "task", "priority": "job",
    "datacenters": "job", "meta": "job", "env": "task", "config": "task", "user": "task",
    "leader": "task", "shutdown_delay": "group", "all_at_once": "job", "type": "job",
}
hcl_values = st.sampled_from([
    "1", "-5", "1.5", "true", "null", '"ten"', '"10s"', "[]", '["a", 1]', "{}", '{ a = "b" }',
    "[[1]]", '{ "a.b" = [1] }', "var.missing", "local.missing", "upper(\"x\")",
    "1 + 2", "x ? 1 : 2", "[for s in [1] : s]", '"${NOMAD_ALLOC_ID}"', "<<EOF\nx\nEOF",
])


@budget("wrong_types_in_hcl")
@given(st.sampled_from(sorted(HCL_FIELDS)), hcl_values, st.integers(0, 2))
def test_wrong_types_in_hcl_fields_are_reported_with_a_path(field: str, value: str,
                                                            copies: int) -> None:
    where = {"job": "job \"web\" {\n", "group": "group \"api\" {\n", "task": "task \"app\" {\n"}
    anchor = where[HCL_FIELDS[field]]
    line = f"  {field} = {value}\n" * copies
    result = outcome(lambda: Job.from_hcl(BASE_HCL.replace(anchor, anchor + line, 1)))
    if isinstance(result, ValidationError):
        assert all(p.path for p in result.problems)
    else:
        assert isinstance(result, (Job, ParseError))


@budget("unknown_hcl_fields")
@given(st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True),
       st.sampled_from(["job \"web\" {\n", "group \"api\" {\n", "task \"app\" {\n",
                        "network {\n", "resources {"]))
def test_unknown_hcl_fields_are_reported_with_their_path(name: str, anchor: str) -> None:
    text = BASE_HCL.replace(anchor, anchor + f" {name} = \"x\"\n", 1)
    result = outcome(lambda: Job.from_hcl(text))
    if isinstance(result, ValidationError):
        assert all(p.path.startswith("job[web]") for p in result.problems)
    else:
        assert isinstance(result, (Job, ParseError))


VARIABLES_HCL = """\
variable "count" { type = number }
variable "tags" { type = list(string) }
variable "cfg" { type = object({ image = string }) }
job "web" {
  group "api" {
    count = var.count
    task "app" {
      driver = "docker"
      config { image = var.cfg.image }
      meta { tags = var.tags[0] }
    }
  }
}
"""
TRICKY: list[Any] = [None, True, False, 0, -1, 2**64, 1.5, float("inf"), "", "x", "10s", "${var.x}", [],
          {}, [None], ["a", 1], {"a": 1}, {"ID": None}, [{}], {"": {"": []}}]
json_scalars = (st.sampled_from(TRICKY).map(copy.deepcopy) | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=8))
json_containers = (st.lists(json_scalars, max_size=3)
                   | st.dictionaries(st.text(max_size=6), json_scalars, max_size=3))
json_values = (json_scalars | json_containers
               | st.dictionaries(st.text(max_size=6), json_containers, max_size=2))


@budget("variable_values")
@given(st.fixed_dictionaries({}, optional={
    "count": st.text(max_size=8) | json_values, "tags": st.text(max_size=12) | json_values,
    "cfg": st.text(max_size=20) | json_values, "extra": json_values}))
def test_any_variable_values_end_in_a_job_or_a_nomadmesh_error(values: dict[str, Any]) -> None:
    result = outcome(lambda: Job.from_hcl(VARIABLES_HCL, variables=values))
    assert isinstance(result, (Job, NomadmeshError))


@budget("arbitrary_json")
@given(st.lists(json_values | st.dictionaries(st.sampled_from(sorted(BASE_JSON)), json_values),
                min_size=BATCH, max_size=BATCH))
def test_arbitrary_json_values_are_rejected_as_jobs(batch: list[Any]) -> None:
    for data in batch:
        assert isinstance(outcome(partial(Job.from_api, data)), (Job, NomadmeshError))


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*path, i)))
    return out


BASE_PATHS = _paths(BASE_JSON)[1:]


@st.composite
def mutated_json(draw: st.DrawFn) -> dict[str, Any]:
    """The base job's JSON with values replaced, keys added (typos) or removed."""
    data: dict[str, Any] = json.loads(BASE_JSON_TEXT)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(BASE_PATHS))
        parent: Any = data
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["replace", "add", "delete"]))
            if action == "replace":
                parent[path[-1]] = draw(json_scalars)
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(max_size=10))] = draw(json_scalars)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return data


@budget("mutated_json")
@given(st.lists(mutated_json(), min_size=BATCH, max_size=BATCH))
def test_mutated_api_json_ends_in_nomadmesh_errors(batch: list[dict[str, Any]]) -> None:
    for data in batch:
        result = outcome(partial(Job.from_api, json.loads(json.dumps(data))))
        assert isinstance(result, (Job, NomadmeshError))


def test_the_suite_generates_at_least_ten_thousand_cases() -> None:
    assert sum(BUDGETS[name] * CASES[name] for name in BUDGETS) >= 10_000
