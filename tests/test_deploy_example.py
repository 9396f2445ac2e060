"""The deploy example script works against the emulator, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nomadmesh.testing import NomadEmulator

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "deploy" / "deploy.py"


def run_example(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NOMAD_ADDR": address}
    env.pop("NOMAD_TOKEN", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_example_deploys_the_echo_api_and_reports_it_healthy() -> None:
    with NomadEmulator() as nomad:
        done = run_example(nomad.url, "examples/jobs/echo-api.json")
    assert done.returncode == 0, done.stderr
    assert "job 'echo-api': healthy" in done.stdout


def test_example_exits_1_with_the_diagnosis_of_a_failed_deploy() -> None:
    with NomadEmulator() as nomad:
        nomad.script_task("echo-api", "echo", "echo", fail="driver", message="no such image")
        done = run_example(nomad.url, "examples/jobs/echo-api.json")
    assert done.returncode == 1
    assert "driver failure: no such image" in done.stderr


def test_example_exits_2_when_the_job_cannot_be_placed(tmp_path: Path) -> None:
    job = json.loads((ROOT / "examples" / "jobs" / "echo-api.json").read_text())
    body = job.get("Job", job)
    for group in body["TaskGroups"]:
        for task in group["Tasks"]:
            task.setdefault("Resources", {})["MemoryMB"] = 10_000_000
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(job))
    with NomadEmulator() as nomad:
        done = run_example(nomad.url, str(path))
    assert done.returncode == 2, done.stderr
    assert "could not place" in done.stderr
