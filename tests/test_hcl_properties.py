"""Hypothesis-generated HCL through Nomad's own parser: nomadmesh.hcl must give the same job or
the same first error. Runs where `nomad-api-oracle` is (required in CI)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nomadmesh.errors import HclError
from nomadmesh.hcl import parse_job
from tests.go_form import job_form
from tests.golden_hcl import first_diagnostic
from tests.nomad_oracle import oracle

NAMES = st.sampled_from(["a", "b", "web", "x_1", "dash-name"])
STRINGS = st.text(alphabet=st.sampled_from(list('ab Z09-_./:{}$%\\"\té\n')), max_size=8)


def _string_literal(s: str) -> str:
    escaped = (
        s.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("${", "$${")
        .replace("%{", "%%{")
    )
    return f'"{escaped}"'


numbers = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
)
atoms = st.one_of(
    numbers,
    STRINGS.map(_string_literal),
    st.sampled_from(["true", "false", "null"]),
    st.sampled_from(["local.n", "local.s", "local.l", "local.m", "var.v"]),
)


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(NAMES, children), max_size=3).map(
            lambda kvs: "{ " + ", ".join(f'"{k}" = {v}' for k, v in kvs) + " }"
        ),
        st.tuples(
            st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||"]), children, children
        ).map(lambda t: f"({t[1]} {t[0]} {t[2]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        pair.map(lambda t: f'"pre-${{{t[0]}}}-${{{t[1]}}}"'),
        children.map(lambda x: f"[for i, v in local.l : {x}]"),
        children.map(lambda x: f"{{ for k, v in local.m : k => {x} }}"),
        st.tuples(
            st.sampled_from(
                [
                    "upper",
                    "lower",
                    "trimspace",
                    "length",
                    "jsonencode",
                    "keys",
                    "sort",
                    "distinct",
                    "flatten",
                    "abs",
                    "floor",
                    "tostring",
                    "chomp",
                    "values",
                ]
            ),
            children,
        ).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(
            st.sampled_from(
                [
                    "concat",
                    "max",
                    "min",
                    "coalesce",
                    "join",
                    "format",
                    "split",
                    "lookup",
                    "element",
                    "contains",
                ]
            ),
            pair,
        ).map(lambda t: f"{t[0]}({t[1][0]}, {t[1][1]})"),
        children.map(lambda x: f"{x}[0]"),
        children.map(lambda x: f'{x}["a"]'),
        children.map(lambda x: f"{x}[*]"),
        children.map(lambda x: f'"%{{ if {x} }}yes%{{ else }}no%{{ endif }}"'),
    )


# merge() is left out: cty panics on merge(null, <number>) ("panic in function implementation").
EXPRESSIONS = st.recursive(atoms, _compound, max_leaves=8)

HEADER = """\
variable "v" {
  default = "from-var"
}

locals {
  n = 3
  s = "str"
  l = ["x", "y", 1]
  m = { a = 1, b = "two" }
}

job "prop" {
  group "g" {
    task "t" {
      driver = "docker"

      config {
        value = %s
      }
    }
  }
}
"""


def _oracle_answer(binary: Path, tmp: Path, text: str) -> dict[str, Any]:
    path = tmp / "prop.nomad.hcl"
    path.write_text(text)
    done = subprocess.run(
        [str(binary), "parse", path.name],
        cwd=tmp,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()}
    return {"job": json.loads(done.stdout)["Job"]}


@settings(
    # NOMADMESH_HCL_EXAMPLES: more draws for a longer local run (each one runs Nomad's parser)
    max_examples=int(os.environ.get("NOMADMESH_HCL_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(expr=EXPRESSIONS)
# Draws that once differed from Nomad (2026-12-02), checked in every run.
@example(expr="contains(local.m, 0)")
@example(expr='split("", "")[*][0]')
@example(expr='split("", "")[*].a')
@example(expr="([] ? [for i, v in local.l : 0] : [for i, v in local.l : true])")
@example(expr='(0 ? [for i, v in local.l : []["a"]] : { for k, v in local.m : k => [for i, v in '
              'local.l : {  }] })')
@example(expr='(true ? { for k, v in local.m : k => [][0] } : [1])')
@example(expr='(true ? {a=1} : {a=true})')
@example(expr='(true ? [[1]] : [[true],[1]])')
@example(expr='([] ? 0 : "pre-${0}-${0}"[*][0])')
@example(expr='(true ? 0 : split(",", "a,b")[*][0])')
@example(expr="(0 / 0)")
@example(expr='"%{ if format("é%", 0) }yes%{ else }no%{ endif }"')
@example(expr="keys((0 + 0))")
@example(expr='concat((0 + 0), {  })["a"]')
# Unknown values (an untyped null for contains' value) and typed nulls (2026-12-03).
@example(expr="contains(local.l, null)")
@example(expr="contains(local.m, null)")
@example(expr='"pre-${contains(local.l, null)}-${0}"')
@example(expr="length([contains(local.l, null)])")
@example(expr="(true ? 1 : contains(local.l, null))")
@example(expr="(false ? 1 : contains(local.l, null))")
@example(expr="(contains(local.l, null) ? 1 : 2)")
@example(expr="(contains(local.l, null) == true)")
@example(expr="(null == (contains(local.l, null) == true))")
@example(expr="(true || contains(local.l, null))")
@example(expr="(null + contains(local.l, null))")
@example(expr="[for i, v in local.l : contains(local.l, null)]")
@example(expr="{ for k, v in local.m : k => contains(local.l, null) }")
@example(expr="contains(local.l, null)[*]")
@example(expr="contains(local.l, null)[0]")
@example(expr="contains([1, contains(local.l, null)], 1)")
@example(expr="jsonencode([contains(local.l, null)])")
@example(expr="coalesce(null, contains(local.l, null))")
@example(expr="element([contains(local.l, null), 1], 1)")
@example(expr='"%{ if contains(local.l, null) }yes%{ else }no%{ endif }"')
@example(expr='(true ? (true ? null : [1]) : "x")')
@example(expr='(true ? (true ? null : 1) : "x")')
@example(expr='(true ? [(true ? null : [1])] : ["x"])')
@example(expr="contains(local.l, (true ? null : 1))")
@example(expr="(true ? null : [1])[*]")
@example(expr='join(",", [(true ? null : "a")])')
@example(expr='"%{ if "pre-${0}-${contains(0, null)}"[*] }yes%{ else }no%{ endif }"')
@example(expr='([] ? {  }[*] : [(0 + "")])')
@example(expr="[for i, v in local.l : (1 / 0)][0]")
def test_generated_expressions_evaluate_as_nomad_evaluates_them(expr: str, tmp_path: Path) -> None:
    text = HEADER % expr
    theirs = _oracle_answer(oracle(), tmp_path, text)
    try:
        ours: dict[str, Any] = {"job": parse_job(text, filename="prop.nomad.hcl", environ={})}
    except HclError as exc:
        ours = {"error": exc.nomad_text}
    if "error" in theirs:
        assert "error" in ours, f"Nomad refuses: {theirs['error']}"
        assert first_diagnostic(ours["error"]) == first_diagnostic(theirs["error"])
    else:
        assert "job" in ours, ours["error"]
        assert job_form(ours["job"]) == job_form(theirs["job"])


PIECES = [
    'job "j" {',
    "}",
    "{",
    "[",
    "]",
    "(",
    ")",
    '"',
    "${",
    "%{",
    "~}",
    "<<EOF\n",
    "EOF\n",
    "<<-X\n",
    "=",
    "\n",
    " ",
    "var.",
    "local.",
    "for ",
    " in ",
    ":",
    "=>",
    "...",
    "if ",
    "endif",
    "endfor",
    'group "g" {',
    'dynamic "port" {',
    "for_each = ",
    "content {",
    "1",
    "0.5",
    "-",
    "*",
    "/",
    "%",
    "?",
    "!",
    "&&",
    "==",
    "null",
    "upper(",
    "jsondecode(",
    "format(",
    ",",
    "#c\n",
    "/*",
    "\\",
    "$${",
    "é",
    "\t",
    "\x00",
    "'",
    ";",
    'variable "v" {',
    "default = ",
    "locals {",
    "meta = {",
    "try(",
    "[*]",
    ".0",
    "1e999999",
    "9" * 30,
    "convert(",
    "list(string)",
]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_any_input_ends_in_a_job_or_an_hcl_error(text: str) -> None:
    from nomadmesh.hcl import format_source, parse_var_file

    for attempt in (
        lambda: parse_job(text, environ={}),
        lambda: format_source(text),
        lambda: parse_var_file(text),
    ):
        try:
            result = attempt()
        except HclError as exc:
            assert exc.nomad_text  # Nomad's diagnostic text, with its position
        else:
            assert isinstance(result, (dict, str))
