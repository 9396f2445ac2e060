"""The cluster verbs of the `nomadmesh` command against the emulator: output and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomadmesh.cli import main
from nomadmesh.testing import NomadEmulator

JOB = """
job "web" {
  group "api" {
    count = 2
    task "app" {
      driver = "docker"
      config {
        image = var.image
      }
    }
  }
}

variable "image" {
  type    = string
  default = "busybox:1.36"
}
"""

PARAMETERIZED = """
job "thumbs" {
  type = "batch"
  parameterized {
    meta_required = ["input"]
  }
  group "run" {
    task "work" {
      driver = "docker"
      config {
        image = "busybox:1.36"
      }
    }
  }
}
"""


@pytest.fixture(autouse=True)
def nomad_addr(nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI finds the plugin's emulator through NOMAD_ADDR, as it would a cluster."""
    monkeypatch.setenv("NOMAD_ADDR", nomad.url)


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "web.nomad.hcl"
    path.write_text(JOB)
    return path


def nomadmesh(*argv: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(exited.value.code or 0)


def test_plan_of_a_new_job_exits_1_and_prints_the_diff(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("plan", str(job_file)) == 1
    out = capsys.readouterr().out
    assert '+   Job: "web"' in out
    assert "nomadmesh run --check-index 0" in out


def test_plan_of_an_unchanged_job_exits_0(nomad: NomadEmulator, job_file: Path) -> None:
    assert nomadmesh("run", str(job_file)) == 0
    assert nomadmesh("plan", str(job_file)) == 0


def test_plan_against_an_unreachable_server_exits_255(
        job_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    with NomadEmulator() as gone:
        url = gone.url
    monkeypatch.setenv("NOMAD_ADDR", url)
    assert nomadmesh("plan", str(job_file)) == 255
    assert url in capsys.readouterr().err


def test_run_exits_0_when_healthy_and_prints_plain_progress_lines(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file), "--var", "image=busybox:1.37") == 0
    out = capsys.readouterr().out
    assert "[evaluation]" in out
    assert "==> job 'web': healthy" in out


def test_run_exits_1_and_prints_the_diagnosis_when_the_deploy_fails(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomad.script_task("web", "api", "app", fail="driver", message="image not found")
    assert nomadmesh("run", str(job_file)) == 1
    err = capsys.readouterr().err
    assert "group 'api' task 'app'" in err
    assert "driver failure: image not found" in err


def test_run_with_a_stale_check_index_exits_1_as_a_conflict(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file)) == 0
    assert nomadmesh("run", str(job_file), "--check-index", "1", "--var", "image=x:2") == 1
    assert "nothing was written" in capsys.readouterr().err


def test_run_of_a_missing_file_is_an_input_error_exiting_2(nomad: NomadEmulator,
                                                           tmp_path: Path) -> None:
    assert nomadmesh("run", str(tmp_path / "nope.nomad.hcl")) == 2


def test_run_with_a_bad_timeout_is_a_usage_error_exiting_2(nomad: NomadEmulator,
                                                           job_file: Path) -> None:
    assert nomadmesh("run", str(job_file), "--timeout", "soon") == 2


def test_run_detach_returns_once_registered(nomad: NomadEmulator, job_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", "--detach", str(job_file)) == 0
    assert "registered" in capsys.readouterr().out


def test_run_inject_adds_the_envoy_sidecar_before_submitting(
        nomad: NomadEmulator, tmp_path: Path) -> None:
    path = tmp_path / "a.nomad.hcl"
    path.write_text(Path("examples/jobs/service-a.nomad.hcl").read_text())
    assert nomadmesh("run", str(path), "--inject") == 0
    (job,) = nomad.snapshot().jobs()
    tasks = [t["Name"] for g in job["TaskGroups"] for t in g["Tasks"]]
    assert any("sidecar" in name or "envoy" in name for name in tasks)


def test_status_history_stop_show_the_job_lifecycle(
        nomad: NomadEmulator, job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nomadmesh("run", str(job_file))
    nomadmesh("run", str(job_file), "--var", "image=busybox:1.37")
    capsys.readouterr()
    assert nomadmesh("status", "web") == 0
    assert "Owner     = nomadmesh" in capsys.readouterr().out
    assert nomadmesh("history", "web") == 0
    assert capsys.readouterr().out.startswith("Version 1")
    assert nomadmesh("revert", "web", "0") == 0
    assert nomadmesh("stop", "web", "--purge") == 0
    assert "purged" in capsys.readouterr().out


def test_status_of_an_unknown_job_exits_1(nomad: NomadEmulator,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("status", "nope") == 1
    assert "not found" in capsys.readouterr().err


def test_dispatch_passes_meta_and_prints_the_child_id(
        nomad: NomadEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "thumbs.nomad.hcl"
    path.write_text(PARAMETERIZED)
    assert nomadmesh("run", str(path)) == 0
    assert nomadmesh("dispatch", "thumbs", "--meta", "input=a.png") == 0
    assert "==> dispatched thumbs/dispatch-" in capsys.readouterr().out


def test_dispatch_meta_without_equals_is_a_usage_error(nomad: NomadEmulator) -> None:
    assert nomadmesh("dispatch", "thumbs", "--meta", "input") == 2


def test_run_on_a_terminal_shows_a_live_table_of_group_progress(
        job_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats the captured output as a terminal
    monkeypatch.setenv("COLUMNS", "120")
    assert nomadmesh("run", str(job_file)) == 0
    out = capsys.readouterr().out
    assert "job web" in out
    assert all(column in out for column in ("group", "healthy", "placed", "desired"))
    assert "    [evaluation]" not in out  # no plain lines on a terminal


PACKS = Path(__file__).parent.parent / "examples" / "packs"


def test_plan_run_and_stop_take_a_pack_like_a_job_file(
        nomad: NomadEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    pack = str(PACKS / "redis_cache")
    assert nomadmesh("plan", pack, "--name", "cache") == 1
    assert "Pack redis-cache 1.0.0, deployment 'cache'" in capsys.readouterr().out
    assert nomadmesh("run", pack, "--name", "cache") == 0
    assert nomadmesh("plan", pack, "--name", "cache") == 0
    capsys.readouterr()
    assert nomadmesh("stop", pack, "--name", "cache") == 0
    assert "==> job 'cache' stopped" in capsys.readouterr().out


def test_prune_is_refused_for_a_plain_job_file(job_file: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert nomadmesh("run", str(job_file), "--prune") == 2
    assert "--prune applies to packs only" in capsys.readouterr().err
