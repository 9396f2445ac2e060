"""Every example job file loads, validates and survives both codecs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from example_files import JOBS as EXAMPLES
from example_files import job_files

import nomadmesh
from nomadmesh import Job
from nomadmesh.model import evolve

FILES = job_files()


def test_there_are_at_least_ten_example_job_files() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_loads_and_validates(path: Path) -> None:
    for job in nomadmesh.load_all(path):
        assert job.validate() is job


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_survives_the_json_round_trip(path: Path) -> None:
    for job in nomadmesh.load_all(path):
        assert Job.from_api(json.loads(json.dumps(job.to_register_body()))) == job


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_survives_the_hcl_round_trip(path: Path) -> None:
    for job in nomadmesh.load_all(path):
        # Nomad's HCL parser names a job after its ID (jobspec2/parse_job.go), as the API does.
        assert Job.from_hcl(job.to_hcl()) == evolve(job, name=job.name or job.id)


def test_hcl_variables_are_evaluated_and_runtime_interpolations_kept() -> None:
    job = nomadmesh.load(EXAMPLES / "batch-report.nomad.hcl", variables={"report_date": "2026-11-01"})
    task = job.groups[0].tasks[0]
    assert task.meta["report_date"] == "2026-11-01"
    assert "REPORT_DATE=2026-11-01" in (task.templates[0].data or "")
    assert task.config["args"] == ("--date", "${NOMAD_META_report_date}")


def test_hcl_variable_defaults_apply_when_no_value_is_given() -> None:
    job = nomadmesh.load(EXAMPLES / "batch-report.nomad.hcl")
    assert job.groups[0].tasks[0].meta["report_date"] == "today"


def test_nomad_var_environment_variables_set_declared_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_VAR_report_date", "from-env")
    job = nomadmesh.load(EXAMPLES / "batch-report.nomad.hcl")
    assert job.groups[0].tasks[0].meta["report_date"] == "from-env"


def test_explicit_variables_win_over_var_files_and_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_VAR_report_date", "from-env")
    var_file = tmp_path / "vars.hcl"
    var_file.write_text('report_date = "from-file"\n')
    from_file = nomadmesh.load(EXAMPLES / "batch-report.nomad.hcl", var_files=[var_file])
    explicit = nomadmesh.load(EXAMPLES / "batch-report.nomad.hcl", var_files=[var_file],
                              variables={"report_date": "explicit"})
    assert from_file.groups[0].tasks[0].meta["report_date"] == "from-file"
    assert explicit.groups[0].tasks[0].meta["report_date"] == "explicit"


def test_dotted_meta_keys_load_from_the_hcl_map_form() -> None:
    job = nomadmesh.load(EXAMPLES / "service-b.nomad.hcl")
    assert job.groups[0].meta["nomadmesh.upstreams"] == "service-a=/hi_a"


def test_connect_blocks_reach_nomads_json_form() -> None:
    job = nomadmesh.load(EXAMPLES / "connect-countdash.nomad.hcl")
    api = job.to_api()["TaskGroups"][1]["Services"][0]["Connect"]
    upstream = api["SidecarService"]["Proxy"]["Upstreams"][0]
    assert upstream == {"DestinationName": "count-api", "LocalBindPort": 8080}
    assert api["SidecarTask"]["Resources"] == {"CPU": 300, "MemoryMB": 256}


def test_unmodelled_task_blocks_pass_through_in_nomads_json_form() -> None:
    job = nomadmesh.load(EXAMPLES / "thumbnail-dispatch.nomad.hcl")
    assert job.to_api()["TaskGroups"][0]["Tasks"][0]["DispatchPayload"] == {"File": "input.jpg"}


def test_the_hcl_and_python_forms_of_service_a_are_the_same_job() -> None:
    hcl_job = nomadmesh.load(EXAMPLES / "service-a.nomad.hcl")
    py_job = nomadmesh.load(EXAMPLES / "service_a.py")
    assert hcl_job.groups[0] == py_job.groups[0]
