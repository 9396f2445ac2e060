"""Plan of an unchanged job whose stored form gains server-side defaults (Connect sidecar tasks
and ports, implied constraints) reports no change, through the CLI against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from nomadmesh.cli import main
from nomadmesh.testing import NomadEmulator

EXAMPLES = Path(__file__).parent.parent / "examples/jobs"


@pytest.fixture(autouse=True)
def nomad_addr(nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI finds the plugin's emulator through NOMAD_ADDR, as it would a cluster."""
    monkeypatch.setenv("NOMAD_ADDR", nomad.url)
    for name in ("NOMAD_CLI_NO_COLOR", "NOMAD_CLI_FORCE_COLOR", "NO_COLOR", "NOMAD_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def nomadmesh(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(exited.value.code or 0)


@pytest.mark.parametrize(("example", "job_id", "options", "sidecar"), [
    # the server injects Connect's sidecar tasks (nomad/job_endpoint_hook_connect.go:274)
    ("connect-countdash.nomad.hcl", "countdash", (), "connect-proxy-"),
    # nomadmesh injects its own Envoy before submitting
    ("service-a.nomad.hcl", "service-a", ("--inject",), "service-a-sidecar")])
def test_plan_of_an_unchanged_connect_job_reports_no_change(
        example: str, job_id: str, options: tuple[str, ...], sidecar: str, nomad: NomadEmulator,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / example
    path.write_text((EXAMPLES / example).read_text())
    assert nomadmesh("run", str(path), *options, "-detach") == 0
    capsys.readouterr()
    stored = requests.get(f"{nomad.url}/v1/job/{job_id}", timeout=10).json()
    tasks = [t["Name"] for g in stored["TaskGroups"] for t in g["Tasks"]]
    assert any(name.startswith(sidecar) for name in tasks), tasks
    code = nomadmesh("plan", str(path), *options)
    out = capsys.readouterr().out
    # command/job_plan.go: an unchanged job prints without a +/-/~ marker on any line
    head = out.split("\n\nScheduler dry-run:")[0].splitlines()
    assert head[0] == f'Job: "{job_id}"', out
    assert all(line.lstrip()[:1] not in "+-~" for line in head if line), out
    # no allocation is updated, replaced or stopped; one the run could not place is created again
    counts = [line.rsplit("(", 1)[1].rstrip(")") for line in head
              if line.startswith("Task Group:")]
    assert counts and all(c.split(" ", 1)[1] in ("ignore", "create")
                          for part in counts for c in part.split(", ")), out
    # command/job_plan.go:417: a diff of type None exits 0 whatever is placed
    assert code == 0, out
