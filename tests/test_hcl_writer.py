"""write_job: API JSON -> HCL2 that Nomad's parser reads back to the same job."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from nomadmesh import Job
from nomadmesh.hcl import format_source, parse_job, write_job
from nomadmesh.hcl._writer import WriteError, go_duration
from tests.go_form import job_form
from tests.golden_hcl import fixtures
from tests.nomad_oracle import oracle

VALID = [f for f in fixtures() if "job" in json.loads(f.golden.read_text())]


def golden_job(name: str) -> dict[str, Any]:
    fixture = next(f for f in VALID if f.name == name)
    job: dict[str, Any] = json.loads(fixture.golden.read_text())["job"]
    return job


@pytest.mark.parametrize("fixture", VALID, ids=lambda f: f.name)
def test_written_hcl_parses_back_to_the_same_job(fixture: Any) -> None:
    job = json.loads(fixture.golden.read_text())["job"]
    assert job_form(parse_job(write_job(job), environ={})) == job_form(job)


def test_written_hcl_is_already_formatted() -> None:
    text = write_job(golden_job("shorthands.nomad.hcl"))
    assert format_source(text) == text


def test_nomad_reads_what_we_write(tmp_path: Path) -> None:
    binary = oracle()
    for fixture in VALID:
        job = json.loads(fixture.golden.read_text())["job"]
        path = tmp_path / f"{fixture.name}.nomad.hcl"
        path.write_text(write_job(job))
        done = subprocess.run(
            [str(binary), "parse", path.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("NOMAD_VAR_")},
            timeout=120,
        )
        assert done.returncode == 0, f"{fixture.name}: {done.stderr}"
        assert job_form(json.loads(done.stdout)["Job"]) == job_form(job), fixture.name


def test_runtime_references_are_written_as_is_and_other_templates_escaped() -> None:
    job = {"ID": "j", "Meta": {"a": "${NOMAD_ALLOC_DIR}/x", "b": "${var.x}", "c": "%{if}", "d": "${a}}"}}
    text = write_job(job)
    assert 'a = "${NOMAD_ALLOC_DIR}/x"' in text
    assert 'b = "$${var.x}"' in text and 'c = "%%{if}"' in text and 'd = "$${a}}"' in text
    assert parse_job(text, environ={})["Meta"] == job["Meta"]


def test_maps_with_dotted_keys_use_the_attribute_form() -> None:
    job = {"ID": "j", "Meta": {"team.name": "core"}}
    assert parse_job(write_job(job), environ={})["Meta"] == {"team.name": "core"}


def test_free_form_config_keeps_objects_and_lists_of_objects_apart() -> None:
    config = {"labels": {"a": "b"}, "mount": [{"type": "bind"}], "n": 1.5, "empty": []}
    job = {
        "ID": "j",
        "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "d", "Config": config}]}],
    }
    assert parse_job(write_job(job), environ={})["TaskGroups"][0]["Tasks"][0]["Config"] == config


def test_the_default_identity_is_written_where_nomad_reads_it() -> None:
    task = {
        "Name": "t",
        "Driver": "d",
        "Identity": {"Env": True},
        "Identities": [{"Name": "vault", "Audience": ["v"]}],
    }
    job = {"ID": "j", "TaskGroups": [{"Name": "g", "Tasks": [task]}]}
    back = parse_job(write_job(job), environ={})["TaskGroups"][0]["Tasks"][0]
    assert back["Identity"] == {"Env": True}
    assert back["Identities"] == [{"Name": "vault", "Audience": ["v"]}]


def test_a_field_nomads_hcl_cannot_hold_is_an_error() -> None:
    with pytest.raises(WriteError, match="ConsulNamespace"):
        write_job({"ID": "j", "ConsulNamespace": "ns"})


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5\u00b5s"),
        (2_500_000, "2.5ms"),
        (10_000_000_000, "10s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (5_400_500_000_000, "1h30m0.5s"),
        (-2_000_000_000, "-2s"),
    ],
)
def test_durations_are_written_as_go_prints_them(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_job_to_hcl_round_trips_through_the_model() -> None:
    job = Job.from_api(golden_job("connect-and-more.nomad.hcl"), validate=False)
    assert Job.from_hcl(job.to_hcl(), validate=False) == job


def test_an_empty_block_is_written_because_it_means_defaults() -> None:
    connect = {"SidecarService": {}, "Gateway": {"Mesh": {}}}
    job = {"ID": "j", "TaskGroups": [{"Name": "g", "Services": [{"Name": "s", "Connect": connect}]}]}
    assert parse_job(write_job(job), environ={})["TaskGroups"][0]["Services"][0]["Connect"] == connect
