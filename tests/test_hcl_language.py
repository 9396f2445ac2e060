"""The HCL2 language as hashicorp/hcl and go-cty define it: syntax, positions, values, functions.

Every expectation here is what Nomad's parser gives for the same input (the golden fixture set
and tests/test_hcl_properties.py check that against the oracle itself).
"""

from __future__ import annotations

from typing import Any

import pytest

from nomadmesh.errors import HclError, ParseError
from nomadmesh.hcl import parse, parse_job


def job(body: str = "", top: str = "", **kwargs: Any) -> dict[str, Any]:
    return parse_job(f'{top}\njob "j" {{\n{body}\n}}\n', environ={}, **kwargs)


def meta(expr: str, top: str = "") -> Any:
    """The value an expression gets as a job meta entry (so: converted to a string)."""
    return job(f"  meta {{\n    v = {expr}\n  }}", top)["Meta"]["v"]


def config(expr: str, top: str = "") -> Any:
    """An expression's value as Nomad keeps it in a task's free-form config."""
    body = f'group "g" {{\n task "t" {{\n driver = "d"\n config {{\n v = {expr}\n }}\n }}\n}}'
    return job(body, top)["TaskGroups"][0]["Tasks"][0]["Config"]["v"]


def error(text: str, **kwargs: Any) -> HclError:
    with pytest.raises(HclError) as info:
        parse(text, filename="f.nomad.hcl", environ={}, **kwargs)
    return info.value


# --- syntax ---------------------------------------------------------------------------------


def test_an_attribute_set_twice_is_redefined_with_both_positions() -> None:
    exc = error('job "j" {\n  region = "a"\n  region = "b"\n}\n')
    assert exc.nomad_text == (
        'f.nomad.hcl:3,3-9: Attribute redefined; The argument "region" was already set '
        "at f.nomad.hcl:2,3-9. Each argument may be set only once."
    )
    assert (exc.line, exc.column) == (3, 3)
    assert isinstance(exc, ParseError)


def test_syntax_errors_carry_file_line_and_column() -> None:
    exc = error('job "j" {\n  region = \n}\n')
    assert str(exc).startswith("f.nomad.hcl:2:12: Invalid expression")
    assert exc.nomad_text.startswith("f.nomad.hcl:2,12-3,1: Invalid expression")


def test_nesting_is_bounded_and_reported_not_a_recursion_error() -> None:
    deep = "[" * 5000 + "]" * 5000
    exc = error(f'job "j" {{\n  datacenters = {deep}\n}}\n')
    assert "Nesting too deep" in exc.nomad_text


def test_deep_block_nesting_is_an_error_line() -> None:
    text = 'job "j" {\n' + "config {\n" * 3000 + "}\n" * 3000 + "}\n"
    assert "Nesting too deep" in error(text).nomad_text


def test_comments_of_all_three_kinds_are_ignored() -> None:
    assert job('  # hash\n  // slashes\n  /* block\n  */ region = "r" # trailing')["Region"] == "r"


def test_single_line_blocks_hold_one_argument() -> None:
    assert job('  group "g" { count = 2 }')["TaskGroups"][0]["Count"] == 2
    assert (
        "Invalid single-argument block definition"
        in error('job "j" {\n  group "g" { count = 2, x = 1 }\n}\n').nomad_text
    )


def test_heredocs_keep_their_last_newline_and_flush_ones_drop_the_common_indent() -> None:
    assert meta("<<EOT\n  a\n b\nEOT\n") == "  a\n b\n"
    assert meta("<<-EOT\n    a\n      b\n    EOT\n") == "a\n  b\n"


def test_string_escapes_and_literal_template_markers() -> None:
    assert meta(r'"t\tq\"b\\ \u00e9 $${x} %%{y}"') == 't\tq"b\\ é ${x} %{y}'


def test_an_unescaped_shell_default_is_nomads_extra_characters_error() -> None:
    exc = error('job "j" {\n  region = "${HOME:-/root}"\n}\n')
    assert exc.nomad_text.startswith("f.nomad.hcl:2,19-20: Extra characters after interpolation expression")


def test_tabs_and_windows_newlines_are_whitespace() -> None:
    assert parse_job('job "j" {\r\n\tregion = "r"\r\n}\r\n', environ={})["Region"] == "r"


def test_invalid_characters_are_named() -> None:
    assert "Single quotes are not valid" in error("job 'j' {\n}\n").nomad_text


# --- values and expressions ----------------------------------------------------------------


def test_a_single_interpolation_keeps_its_type() -> None:
    assert job('  group "g" {\n    count = "${1 + 2}"\n  }')["TaskGroups"][0]["Count"] == 3


def test_numbers_are_exact_decimals_and_print_as_cty_does() -> None:
    assert meta("0.1 + 0.2") == "0.3"
    assert meta("1 / 3").startswith("0.3333333333") and len(meta("1 / 3")) > 150
    assert meta("12345678901234567890 * 10") == "123456789012345678900"
    assert config("7.5 % 2") == 1.5
    assert config("-7 % 3") == -1


def test_conversions_follow_cty() -> None:
    assert config('true ? 1 : "a"') == "1"
    assert meta("true") == "true"
    assert job('  all_at_once = "true"')["AllAtOnce"] is True
    assert "a bool is required" in error('job "j" {\n  all_at_once = "yes"\n}\n').nomad_text


def test_equality_compares_types_too() -> None:
    assert config('[1 == 1, "1" == 1, null == null, [1] == [1]]') == [True, False, True, True]


def test_for_expressions_build_tuples_and_objects_in_key_order() -> None:
    assert config('[for k, v in { b = 2, a = 1 } : "${k}${v}"]') == ["a1", "b2"]
    assert config("{ for x in [3, 1, 3] : x => x... }") == {"1": [1], "3": [3, 3]}
    assert "Duplicate object key" in error('job "j" {\n  meta = { for x in [1, 1] : x => x }\n}\n').nomad_text


def test_splats_and_index_steps() -> None:
    top = 'locals {\n  s = [{ n = "a" }, { n = "b" }]\n}\n'
    assert config("local.s[*].n", top) == ["a", "b"]
    assert config("local.s.*.n", top) == ["a", "b"]
    assert config("local.s.1.n", top) == "b"
    assert config('local.s[0]["n"]', top) == "a"


def test_template_directives_and_strip_markers() -> None:
    assert meta('"%{ for x in [1, 2] }<${x}>%{ endfor }"') == "<1><2>"
    assert meta('"a %{~ if false }x%{ else ~} b %{~ endif }"') == "ab"


def test_runtime_references_stay_literal_as_jobspec2_writes_them() -> None:
    assert meta('"${NOMAD_ALLOC_DIR}/x"') == "${NOMAD_ALLOC_DIR}/x"
    assert meta('"${ attr.kernel.name }"') == "${ attr.kernel.name }"
    assert meta('"${meta["rack"]}"') == '${meta["rack"]}'
    assert meta("node.unique.name") == "${node.unique.name}"


def test_unknown_attributes_of_var_are_errors_at_the_step() -> None:
    exc = error('job "j" {\n  region = var.nope\n}\n')
    assert exc.nomad_text.startswith(
        'f.nomad.hcl:2,15-20: Unsupported attribute; This object does not have an attribute named "nope".'
    )


def test_try_and_can_catch_evaluation_errors() -> None:
    assert config('try(local.missing, "fallback")', "locals {\n}\n") == "fallback"
    assert config("can(local.missing)", "locals {\n}\n") is False


def test_convert_takes_a_type_expression() -> None:
    assert config("convert({ a = 1 }, map(string))") == {"a": "1"}


# --- functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ('format("%05.1f|%-4s|%x", 3.14159, "ab", 255)', "003.1|ab  |ff"),
        ('join(",", split("-", "a-b-c"))', "a,b,c"),
        ('jsonencode({ b = [1, "<x>"], a = null })', '{"a":null,"b":[1,"\\u003cx\\u003e"]}'),
        ('yamlencode({ a = [1], b = "x\\ny" })', '"a":\n- 1\n"b": |-\n  x\n  y\n'),
        ('jsondecode("{\\"a\\": [1, 2.5]}").a[1]', "2.5"),
        ('jsonencode(yamldecode("on: y"))', '{"true":true}'),
        ('base64encode("nomad")', "bm9tYWQ="),
        ('sha256("x")', "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"),
        ('uuidv5("dns", "example.com")', "cfbff0d1-9375-5685-968c-48ce8b15ae17"),
        ('cidrsubnet("10.0.0.0/8", 8, 3)', "10.3.0.0/16"),
        ('formatdate("DD MMM YYYY hh:mm ZZZ", "2026-03-05T07:08:09Z")', "05 Mar 2026 07:08 UTC"),
        ('timeadd("2026-01-31T23:00:00Z", "90m")', "2026-02-01T00:30:00Z"),
        ('regex_replace("host-01", "^([a-z]+)-(\\\\d+)$", "$2.$1")', "01.host"),
        ('title("hello world")', "Hello World"),
        ('parseint("ff", 16)', "255"),
        ("max(1, 5, 3)", "5"),
        ('lookup({ a = 1 }, "b", "none")', "none"),
        ('element(["a", "b"], 3)', "b"),
        ('reverse("abc")', "cba"),
    ],
)
def test_functions_compute_what_nomad_computes(expr: str, value: str) -> None:
    assert meta(expr) == value


def test_a_function_argument_of_the_wrong_type_names_the_parameter() -> None:
    exc = error('job "j" {\n  region = upper(["a"])\n}\n')
    assert exc.nomad_text == (
        'f.nomad.hcl:2,18-19: Invalid function argument; Invalid value for "str" '
        "parameter: string required, but have tuple."
    )


def test_an_unknown_function_suggests_the_nearest_name() -> None:
    assert 'Did you mean "upper"?' in error('job "j" {\n  region = uppr("a")\n}\n').nomad_text


def test_an_unknown_block_type_suggests_the_nearest_name() -> None:
    assert error('job "j" {\n  grop "g" {\n  }\n}\n').nomad_text == (
        'f.nomad.hcl:2,3-7: Unsupported block type; Blocks of type "grop" are not expected here.'
        ' Did you mean "group"?')


@pytest.mark.timeout(60)
def test_a_very_long_unknown_block_type_is_reported_in_linear_time() -> None:
    # Fuzz finding: the suggestion's edit distance was quadratic in the name (a 200 KB name took
    # 21 s, 400 KB would take minutes); names that differ in length by 3 or more cannot match.
    name = "v" + "a" * 400_000
    exc = error(f'job "j" {{\n  {name} {{\n  }}\n}}\n')
    assert exc.nomad_text == (f'f.nomad.hcl:2,3-{3 + len(name)}: Unsupported block type; Blocks of'
                              f' type "{name}" are not expected here.')


def test_file_functions_read_relative_to_the_job_file(tmp_path: Any) -> None:
    (tmp_path / "data.txt").write_text("from disk")
    text = 'job "j" {\n  meta {\n    v = file("data.txt")\n  }\n}\n'
    assert parse_job(text, filename=str(tmp_path / "j.nomad.hcl"), environ={})["Meta"]["v"] == "from disk"
    assert "no file exists" in error(text, base_dir=tmp_path / "elsewhere").nomad_text
