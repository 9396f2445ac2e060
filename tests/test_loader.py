"""Loading job files: JSON, Python modules (HCL is covered with its codec)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nomadmesh
from nomadmesh.errors import LoadError, ParseError, ValidationError

EXAMPLES = Path(__file__).parent.parent / "examples" / "jobs"


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
    path = write(tmp_path, "bad.json", json.dumps({"ID": "x", "TaskGroups": [{"Name": "g",
                                                   "Count": -1, "Tasks": [{"Name": "t",
                                                                           "Driver": "exec"}]}]}))
    with pytest.raises(ValidationError, match=r"(?s)bad.json: .*job\[x\]\.group\[g\]\.count"):
        nomadmesh.load(path)


def test_a_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="no such file"):
        nomadmesh.load(tmp_path / "nope.nomad.hcl")


def test_an_unknown_file_type_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="unsupported file type"):
        nomadmesh.load(write(tmp_path, "job.txt", "job"))


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
    path = write(tmp_path, "invalid.py",
                 "from nomadmesh import Job, Group, Task\n"
                 "job = Job('x', groups=[Group('g', count=-2, tasks=[Task('t', driver='exec')])])\n")
    with pytest.raises(ValidationError, match=r"job\[x\]\.group\[g\]\.count"):
        nomadmesh.load(path)


def test_nomad_var_environment_reaches_a_variable_however_its_block_is_spaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_VAR_image", "nginx:1.27")
    path = write(tmp_path, "web.nomad.hcl",
                 'variable   "image" {\n  type = string\n}\n'
                 'job "web" {\n  group "g" {\n    task "t" {\n      driver = "docker"\n'
                 '      config {\n        image = var.image\n      }\n    }\n  }\n}\n')
    assert nomadmesh.load(path).groups[0].tasks[0].config["image"] == "nginx:1.27"
