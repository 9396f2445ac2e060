"""`nomadmesh pack ...`: list, info, new, render, plan, run, stop, status — output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nomadmesh.cli import main
from tests.packs_support import write_pack


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("NOMADMESH_PACKS_PATH", "NOMADMESH_VAR_image", "NOMADMESH_VAR_count"):
        monkeypatch.delenv(name, raising=False)


def test_list_shows_packs_of_the_search_path(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    write_pack(tmp_path, name="alpha", version="1.2.0")
    code, out, _ = run(capsys, "pack", "--path", str(tmp_path), "list")
    assert code == 0
    assert out.splitlines()[1].split()[:2] == ["alpha", "1.2.0"]


def test_list_shows_the_packs_installed_with_nomadmesh_from_any_directory(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "nomadmesh", "pack", "list"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    [row] = [line.split() for line in done.stdout.splitlines() if line.startswith("mesh-")]
    assert row[:2] == ["mesh-control-plane", "1.0.0"] and row[-2] == "nomadmesh"


def test_no_packs_found_suggests_a_command_that_exists(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import nomadmesh.packs.registry as registry

    monkeypatch.setattr(registry, "_entry_points", lambda: [])
    code, out, _ = run(capsys, "pack", "list")
    assert code == 0
    assert "`nomadmesh pack --path DIR list`" in out and "$NOMADMESH_PACKS_PATH" in out
    write_pack(tmp_path, name="alpha")
    code, out, _ = run(capsys, "pack", "--path", str(tmp_path), "list")  # as suggested
    assert code == 0 and "alpha" in out


def test_info_lists_variables_with_types_and_defaults(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    directory = write_pack(tmp_path, name="alpha", image="nginx:1")
    code, out, _ = run(capsys, "pack", "info", str(directory))
    assert code == 0
    assert out.startswith("alpha 1.0.0")
    assert ["image", "str", '"nginx:1"', "container", "image"] in [line.split() for line in
                                                                   out.splitlines()]


def test_render_prints_every_job_with_variables_applied(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    directory = write_pack(tmp_path, suffixes=("web", "worker"))
    code, out, _ = run(capsys, "pack", "render", str(directory), "--var", "count=4",
                       "--name", "shop")
    assert code == 0
    bodies = json.loads(out)
    assert [(b["Job"]["ID"], b["Job"]["TaskGroups"][0]["Count"]) for b in bodies] == [
        ("shop-web", 4), ("shop-worker", 4)]
    assert bodies[0]["Job"]["Meta"]["nomadmesh.deployment"] == "shop"


def test_render_injects_the_sidecar_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    web_service = Path(__file__).parent.parent / "examples" / "packs" / "web_service"
    code, out, _ = run(capsys, "pack", "render", str(web_service), "--var", "image=web:1",
                       "--inject")
    tasks = [t["Name"] for t in json.loads(out)[0]["Job"]["TaskGroups"][0]["Tasks"]]
    assert code == 0 and len(tasks) == 2 and tasks[0] == "app"


def test_render_reads_environment_variables(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMADMESH_VAR_count", "7")
    code, out, _ = run(capsys, "pack", "render", str(write_pack(tmp_path)))
    assert code == 0
    assert json.loads(out)[0]["Job"]["TaskGroups"][0]["Count"] == 7


def test_a_bad_variable_is_a_usage_error_with_its_path(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    code, out, err = run(capsys, "pack", "render", str(write_pack(tmp_path)), "--var", "count=x",
                         "--var", "imgae=y")
    assert (code, out) == (2, "")
    assert "count: expected an integer, got 'x' (from --var)" in err
    assert "imgae: unknown variable (from --var); did you mean image?" in err


def test_an_unknown_pack_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "pack", "render", "no-such-pack")
    assert code == 2 and "pack 'no-such-pack' not found" in err


def test_new_scaffolds_a_pack_whose_own_tests_pass(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    code, out, _ = run(capsys, "pack", "new", "my-svc", str(tmp_path))
    assert code == 0 and out.startswith(f"created {tmp_path / 'my_svc'}")
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:nomadmesh", str(tmp_path / "my_svc")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout


def test_new_refuses_an_existing_directory(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    (tmp_path / "my_svc").mkdir()
    code, _, err = run(capsys, "pack", "new", "my-svc", str(tmp_path))
    assert code == 2 and "already exists" in err


def test_run_plan_status_and_stop_a_deployment(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, nomad_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_url)
    v1 = write_pack(tmp_path / "v1", name="shop", suffixes=("web", "worker"))
    v2 = write_pack(tmp_path / "v2", name="shop", version="2.0.0", suffixes=("web",))
    assert run(capsys, "pack", "run", str(v1), "--name", "eu")[1].splitlines() == [
        "job 'eu-web': healthy", "job 'eu-worker': healthy"]
    code, out, _ = run(capsys, "pack", "plan", str(v2), "--name", "eu")
    assert code == 0 and "  - eu-worker" in out
    code, out, _ = run(capsys, "pack", "run", str(v2), "--name", "eu", "--prune")
    assert "job 'eu-worker': stopped (pruned: no longer in the pack)" in out
    code, out, _ = run(capsys, "pack", "status")
    # The pack version is no longer job meta (a meta change restarts every allocation).
    assert [line.split()[:4] for line in out.splitlines()[1:]] == [["eu", "shop", "-", "eu-web"]]
    code, out, _ = run(capsys, "pack", "stop", "--name", "eu")
    assert (code, out) == (0, "job 'eu-web': stopped\n")


def test_run_without_prune_says_which_jobs_it_left(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, nomad_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_url)
    run(capsys, "pack", "run", str(write_pack(tmp_path / "a", name="shop",
                                              suffixes=("web", "worker"))), "--name", "eu")
    _, out, _ = run(capsys, "pack", "run", str(write_pack(tmp_path / "b", name="shop",
                                                          suffixes=("web",))), "--name", "eu")
    assert "job 'eu-worker': left running" in out and "--prune" in out


def test_pack_run_exits_as_nomad_job_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         nomad_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMAD_ADDR", nomad_url)
    shop = write_pack(tmp_path, name="shop")
    assert run(capsys, "pack", "run", str(shop), "--name", "small")[0] == 0
    assert run(capsys, "pack", "plan", str(shop), "--name", "small")[0] == 0
    assert run(capsys, "pack", "plan", str(shop), "--var", "count=2", "--name", "small")[0] == 1
    assert run(capsys, "pack", "plan", str(shop), "--var", "count=x", "--name", "small")[0] == 255
    # 100 x 300 MB does not fit the emulator's three 8 GB nodes: placement failures exit 2
    code, _, err = run(capsys, "pack", "run", str(shop), "--var", "count=100", "--name", "big")
    assert code == 2 and "failed" in err
