"""The offline CLI verbs: render, validate, fmt — exit codes and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples" / "jobs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_render_prints_the_registration_payload(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "echo-api.json"))
    assert code == 0
    assert json.loads(out)["Job"]["TaskGroups"][0]["Count"] == 2


def test_render_passes_variables_to_python_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "service_a.py"), "--var", "count=5")
    assert code == 0
    assert json.loads(out)["Job"]["TaskGroups"][0]["Count"] == 5


def test_a_malformed_var_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "service_a.py"), "--var", "count")
    assert code == 2
    assert "'count' is not KEY=VALUE" in err


def test_validate_exits_0_for_a_valid_job(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(EXAMPLES / "echo-api.json"))
    assert code == 0
    assert "job 'echo-api' is valid" in out


def test_validate_lists_every_problem_and_exits_1(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ID": "x", "Priority": 500, "TaskGroups": [
        {"Name": "g", "Count": -1, "Tasks": [{"Name": "t", "Driver": "exec"}]}]}))
    code, _, err = run(capsys, "validate", str(bad))
    assert code == 1
    lines = err.strip().splitlines()
    # Nomad's own messages (nomad/job_endpoint_hooks.go:518, nomad/structs/structs.go:7121).
    assert f"{bad}: job[x].priority: job priority must be between [1, 100]" in lines
    assert f"{bad}: job[x].group[g].count: Task group count can't be negative" in lines
    assert lines[-1] == "2 problem(s) found"


def test_an_unreadable_file_is_one_line_and_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(tmp_path / "missing.json"))
    assert code == 2
    assert err.strip() == f"error: {tmp_path / 'missing.json'}: no such file"


def test_bad_input_never_shows_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Job": {"ID": 3}')
    done = subprocess.run([sys.executable, "-m", "nomadmesh", "render", str(bad)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {bad}:1:")


def test_render_inject_adds_the_sidecar_and_egress_env(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "service-b.nomad.hcl"), "--inject")
    assert code == 0
    tasks = json.loads(out)["Job"]["TaskGroups"][0]["Tasks"]
    assert [t["Name"] for t in tasks] == ["service-b-app", "service-b-sidecar"]
    assert tasks[0]["Env"]["SERVICE_A_URL"].endswith("/hi_a")


def test_render_hcl_output_loads_back_as_the_same_job(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "render", str(EXAMPLES / "web-canary.nomad.hcl"), "--output", "hcl")
    assert code == 0
    written = tmp_path / "web.nomad.hcl"
    written.write_text(out)
    from nomadmesh import load

    assert load(written) == load(EXAMPLES / "web-canary.nomad.hcl")


def test_render_takes_a_pack_and_ties_jobs_to_the_deployment_name(
        capsys: pytest.CaptureFixture[str]) -> None:
    pack = Path(__file__).parent.parent / "examples" / "packs" / "batch_report"
    code, out, _ = run(capsys, "render", str(pack), "--name", "nightly")
    assert code == 0
    job = json.loads(out)["Job"]
    assert job["ID"] == "nightly"
    assert job["Meta"]["nomadmesh.deployment"] == "nightly"


def test_a_deployment_name_for_a_plain_job_file_is_an_input_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", str(EXAMPLES / "echo-api.json"), "--name", "x")
    assert code == 2
    assert "a deployment name only applies to packs" in err
