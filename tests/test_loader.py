"""Loading job files: which reader by name, bounded reads of regular files only, Nomad API JSON as
Go decodes it, Python modules, and HCL through nomadmesh.hcl (whose rules tests/test_hcl_* cover)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

import nomadmesh
from nomadmesh import loader
from nomadmesh.errors import HclError, InputError, LoadError, ParseError, ValidationError

EXAMPLES = Path(__file__).parent.parent / "examples" / "jobs"
HCL_JOB = 'job "web" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n    }\n  }\n}\n'


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_json_file_may_hold_a_bare_job_or_a_register_body(tmp_path: Path) -> None:
    body = json.loads((EXAMPLES / "echo-api.json").read_text())
    bare = write(tmp_path, "bare.json", json.dumps(body["Job"]))
    assert nomadmesh.load(bare) == nomadmesh.load(EXAMPLES / "echo-api.json")


def test_json_syntax_errors_carry_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{\n  "Job": {\n    "ID": "x",,\n  }\n}\n')
    with pytest.raises(ParseError) as caught:
        nomadmesh.load(path)
    assert (caught.value.line, caught.value.column) == (3, 15)
    assert str(caught.value).startswith(f"{path}:3:15:")


def test_an_invalid_json_job_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.json",
        json.dumps(
            {
                "ID": "x",
                "TaskGroups": [{"Name": "g", "Count": "two", "Tasks": [{"Name": "t", "Driver": "exec"}]}],
            }
        ),
    )
    with pytest.raises(ValidationError, match=r"(?s)bad.json: .*job\[x\]\.group\[g\]\.count"):
        nomadmesh.load(path)


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        nomadmesh.load(tmp_path / "nope.nomad.hcl")


@pytest.mark.parametrize("name", ["web.job", "web", "web.txt", "web.nomad", "web.hcl"])
def test_any_other_file_name_is_read_as_hcl2_as_nomad_does(tmp_path: Path, name: str) -> None:
    job = nomadmesh.load(write(tmp_path, name, HCL_JOB), validate=False)
    assert job.id == "web"


def test_standard_input_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(HCL_JOB.encode())))
    assert nomadmesh.load("-", validate=False).id == "web"


def test_json_format_reads_api_json_whatever_the_name(tmp_path: Path) -> None:
    body = (EXAMPLES / "echo-api.json").read_text()
    assert nomadmesh.load(write(tmp_path, "echo.nomad", body), format="json").id == "echo-api"


def test_a_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.nomad.hcl"
    os.mkfifo(fifo)
    with pytest.raises(LoadError, match="not a regular file"):
        nomadmesh.load(fifo)


def test_a_device_is_refused_without_reading() -> None:
    with pytest.raises(LoadError, match="not a regular file"):
        nomadmesh.load("/dev/zero")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="is a directory"):
        nomadmesh.load(tmp_path)


def test_a_file_over_the_size_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    with pytest.raises(LoadError, match="larger than the 64 bytes"):
        nomadmesh.load(write(tmp_path, "big.nomad.hcl", HCL_JOB))


def test_binary_input_is_an_error_line(tmp_path: Path) -> None:
    path = tmp_path / "bin.nomad.hcl"
    path.write_bytes(b"\x00\xff\xfe job")
    with pytest.raises(LoadError, match="not UTF-8"):
        nomadmesh.load(path)


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_json_is_an_error_line(tmp_path: Path, depth: int) -> None:
    text = '{"ID": "x", "Meta": ' + '{"a": ' * depth + "1" + "}" * depth + "}"
    with pytest.raises(InputError):
        nomadmesh.load(write(tmp_path, "deep.json", text))


def test_a_five_thousand_digit_integer_is_an_error_line(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="5000 digits"):
        nomadmesh.load(write(tmp_path, "n.json", '{"ID": "x", "Priority": ' + "9" * 5000 + "}"))


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(tmp_path: Path, word: str) -> None:
    with pytest.raises(ParseError, match="is not JSON"):
        nomadmesh.load(write(tmp_path, "n.json", '{"ID": "x", "Priority": ' + word + "}"))


def test_hcl_errors_are_hcl_errors_with_nomads_text(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.nomad.hcl", 'job "x" {\n  count = 1\n}\n')
    with pytest.raises(HclError) as caught:
        nomadmesh.load(path)
    assert caught.value.nomad_text == (
        f'{path}:2,3-8: Unsupported argument; An argument named "count" is not expected here.'
    )


def test_a_var_value_that_does_not_convert_is_an_error_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "v.nomad.hcl", 'variable "n" {\n  type = number\n}\njob "x" {\n  priority = var.n\n}\n'
    )
    with pytest.raises(HclError, match="The received arg value for n is not compatible"):
        nomadmesh.load(path, variables={"n": "many"}, validate=False)


def test_a_nomad_var_environment_value_that_does_not_convert_is_an_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_VAR_n", "[1")
    path = write(tmp_path, "v.nomad.hcl", 'variable "n" {\n  type = list(number)\n}\njob "x" {\n}\n')
    with pytest.raises(HclError):
        nomadmesh.load(path, validate=False)


def test_var_files_and_flags_are_recorded_in_the_submission(tmp_path: Path) -> None:
    path = write(
        tmp_path, "v.nomad.hcl", 'variable "n" {\n  default = 1\n}\njob "x" {\n  priority = var.n\n}\n'
    )
    var_file = write(tmp_path, "v.vars.hcl", "n = 70\n")
    job = nomadmesh.load(path, var_files=[var_file], validate=False)
    assert job.priority == 70
    assert job.submission is not None
    assert job.submission.format == "hcl2" and job.submission.variables == "n = 70\n\n"
    job = nomadmesh.load(path, variables={"n": "80"}, validate=False)
    assert job.priority == 80 and dict(job.submission.variable_flags) == {"n": "80"}


def test_a_python_module_job_function_takes_variables() -> None:
    job = nomadmesh.load(EXAMPLES / "service_a.py", variables={"count": "3"})
    assert job.groups[0].count == 3


def test_unknown_python_variables_are_named(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="unknown variable\\(s\\) replicas"):
        nomadmesh.load(EXAMPLES / "service_a.py", variables={"replicas": "3"})


def test_a_python_module_may_define_several_jobs() -> None:
    jobs = nomadmesh.load_all(EXAMPLES / "fleet.py")
    assert [j.id for j in jobs] == ["worker-emails", "worker-thumbnails", "worker-billing"]
    with pytest.raises(LoadError, match="defines 3 jobs"):
        nomadmesh.load(EXAMPLES / "fleet.py")


def test_an_exception_in_a_python_job_file_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "boom.py", "x = 1\nraise RuntimeError('no image tag')\n")
    with pytest.raises(LoadError, match=r"boom.py: line 2: RuntimeError: no image tag"):
        nomadmesh.load(path)


def test_python_syntax_errors_are_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(ParseError) as caught:
        nomadmesh.load(write(tmp_path, "syntax.py", "def job(:\n"))
    assert caught.value.line == 1


def test_a_python_module_without_a_job_says_how_to_define_one(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="defines no job"):
        nomadmesh.load(write(tmp_path, "empty.py", "x = 1\n"))


def test_an_invalid_python_job_is_validated_on_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "invalid.py",
        "from nomadmesh import Job, Group, Task\n"
        "job = Job('x', groups=[Group('g', count='two', tasks=[Task('t', driver='exec')])])\n",
    )
    with pytest.raises(ValidationError, match=r"job\[x\]\.group\[g\]\.count"):
        nomadmesh.load(path)


def test_nomad_var_environment_reaches_a_variable_however_its_block_is_spaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOMAD_VAR_image", "nginx:1.27")
    path = write(
        tmp_path,
        "web.nomad.hcl",
        'variable   "image" {\n  type = string\n}\n'
        'job "web" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n'
        "      config {\n        image = var.image\n      }\n    }\n  }\n}\n",
    )
    assert nomadmesh.load(path).groups[0].tasks[0].config["image"] == "nginx:1.27"


def test_an_hcl_file_written_in_json_syntax_is_read_as_jobspec2_reads_it(tmp_path: Path) -> None:
    text = '{"job": {"web": {"group": {"g": {"count": "${1 + 1}", "task": {"t": {"driver": "docker"}}}}}}}'
    job = nomadmesh.load(write(tmp_path, "web.nomad", text), validate=False)
    assert (job.id, job.groups[0].count) == ("web", 2)
    assert job.submission is not None and job.submission.format == "json"
