"""`nomadmesh fmt` formats as `nomad fmt` (hclwrite's formatter): spaces only, order and comments kept."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from nomadmesh.cli import main
from nomadmesh.errors import HclError
from nomadmesh.hcl import format_source, parse_job

UNFORMATTED = """\
# a comment above the job
job   "web"  {
datacenters=["dc1"]
    type = "service"   # trailing comment
  node_pool = "default"

  group "g" {
  count=2
      network {
        port "http"{ to = 8080 }
      }
  }
}
"""

FORMATTED = """\
# a comment above the job
job "web" {
  datacenters = ["dc1"]
  type        = "service" # trailing comment
  node_pool   = "default"

  group "g" {
    count = 2
    network {
      port "http" { to = 8080 }
    }
  }
}
"""


def test_fmt_indents_aligns_and_keeps_comments_and_order() -> None:
    assert format_source(UNFORMATTED) == FORMATTED


def test_fmt_of_a_formatted_file_changes_nothing() -> None:
    assert format_source(FORMATTED) == FORMATTED


def test_fmt_keeps_variables_locals_and_functions_as_written() -> None:
    text = (
        'variable "n" {\n  default = 2\n}\n\nlocals {\n  names = [for i in range(var.n) : "w${i}"]\n}\n\n'
        'job "j" {\n  meta = { count = length(local.names) }\n}\n'
    )
    assert format_source(text) == text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("a=b.c\n", "a = b.c\n"),
        ("a = b [ 0 ]\n", "a = b[0]\n"),
        ("a = f( 1 ,2 )\n", "a = f(1, 2)\n"),
        ("a = -1\nb = 1 - -2\n", "a = -1\nb = 1 - -2\n"),
        ('a = "${ x }"\n', 'a = "${x}"\n'),
        ("a = {b=1}\n", "a = { b = 1 }\n"),
        ("a = !b\n", "a = !b\n"),
        ("a = [ for x in y : x ]\n", "a = [for x in y : x]\n"),
    ],
)
def test_fmt_spacing_rules(before: str, after: str) -> None:
    assert format_source(before) == after


def test_fmt_leaves_heredoc_content_alone() -> None:
    text = 'job "j" {\n  meta {\n    a = <<EOT\n  keep   this\nEOT\n  }\n}\n'
    assert format_source(text) == text


def test_fmt_refuses_a_file_with_syntax_errors() -> None:
    with pytest.raises(HclError, match="Argument names must not be quoted"):
        format_source('job "j" {\n  "quoted" = 1\n}\n')


def test_formatting_never_changes_the_job() -> None:
    assert parse_job(format_source(UNFORMATTED), environ={}) == parse_job(UNFORMATTED, environ={})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["fmt", *argv])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_fmt_verb_rewrites_files_and_lists_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "web.nomad.hcl", UNFORMATTED)
    assert run(capsys, str(path)) == (0, f"{path}\n", "")
    assert path.read_text() == FORMATTED


def test_fmt_check_writes_nothing_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "web.hcl", UNFORMATTED)
    assert run(capsys, "-check", str(path))[0] == 1
    assert path.read_text() == UNFORMATTED


def test_fmt_check_passes_on_formatted_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--check", str(write(tmp_path, "web.nomad", FORMATTED))) == (0, "", "")


def test_fmt_reads_standard_input_and_writes_standard_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(UNFORMATTED))
    assert run(capsys, "-") == (0, FORMATTED, "")


def test_fmt_of_a_directory_takes_nomad_and_hcl_files_and_recurses_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = write(tmp_path, "a.nomad", UNFORMATTED)
    nested = write(tmp_path, "sub/b.hcl", UNFORMATTED)
    other = write(tmp_path, "c.txt", UNFORMATTED)
    assert run(capsys, "-list=false", str(tmp_path)) == (0, "", "")
    assert top.read_text() == FORMATTED and nested.read_text() == UNFORMATTED
    assert other.read_text() == UNFORMATTED
    assert run(capsys, "-recursive", str(tmp_path)) == (0, f"{nested}\n", "")
    assert nested.read_text() == FORMATTED


def test_fmt_without_writing_or_listing_prints_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "web.hcl", UNFORMATTED)
    assert run(capsys, "-list=false", "-write=false", str(path)) == (0, FORMATTED, "")
    assert path.read_text() == UNFORMATTED


def test_fmt_reports_each_bad_file_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.hcl", 'job "j" {\n')
    code, out, err = run(capsys, str(bad), str(tmp_path / "missing.hcl"), str(write(tmp_path, "x.txt", "")))
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert "Unclosed configuration block" in lines[0]
    assert "No file or directory" in lines[1]
    assert "only .nomad and .hcl files" in lines[2]


@pytest.mark.parametrize("args", [(), ("-check", "-list=false"), ("-recursive",)])
def test_fmt_of_a_path_the_system_refuses_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    # Fuzz finding: a 300-character name (ENAMETOOLONG) escaped as an OSError from pathlib.
    too_long = str(tmp_path / ("x" * 300))
    assert run(capsys, *args, too_long) == (1, "", f"No file or directory at {too_long}\n")
