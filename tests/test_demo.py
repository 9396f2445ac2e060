"""`nomadmesh demo --once`: the original design on this machine, real Envoy, real traffic."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from nomadmesh.loader import load_all

ROOT = Path(__file__).parent.parent
LOCAL_JOBS = ROOT / "examples" / "jobs" / "local"
NOMADMESH = str(Path(sys.executable).parent / "nomadmesh")


def processes_with(marker: str) -> list[int]:
    """PIDs of live processes whose environment carries `marker` (tasks inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def demo_run() -> tuple[subprocess.CompletedProcess[str], list[int]]:
    marker = f"NOMADMESH_DEMO_TEST={uuid.uuid4()}"
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    result = subprocess.run([NOMADMESH, "demo", "--once"], env=env, capture_output=True,
                            text=True, timeout=120)
    return result, processes_with(marker)


@pytest.mark.envoy
def test_demo_once_passes_its_check(
        demo_run: tuple[subprocess.CompletedProcess[str], list[int]]) -> None:
    result, _ = demo_run
    assert (result.returncode, result.stderr) == (0, ""), result.stdout


@pytest.mark.envoy
def test_demo_routes_hi_a_and_hi_b_through_edge_routers_sidecar(
        demo_run: tuple[subprocess.CompletedProcess[str], list[int]]) -> None:
    lines = demo_run[0].stdout.splitlines()
    assert "routes on edge-router's egress listener (from Envoy /config_dump): " \
           "/hi_a -> service-a, /hi_b -> service-b" in lines
    assert any("GET /hi_b" in line and "(its own sidecar) -> service-a" in line for line in lines)


@pytest.mark.envoy
def test_demo_spreads_traffic_over_three_service_a_instances(
        demo_run: tuple[subprocess.CompletedProcess[str], list[int]]) -> None:
    assert "traffic spread over 3 service-a instances" in demo_run[0].stdout


@pytest.mark.envoy
def test_demo_prints_the_addresses_to_explore(
        demo_run: tuple[subprocess.CompletedProcess[str], list[int]]) -> None:
    out = demo_run[0].stdout
    assert all(what in out for what in ("NOMAD_ADDR ", "CONSUL_HTTP_ADDR ", "Envoy admin",
                                        "/stats/prometheus", "/metrics"))


@pytest.mark.envoy
def test_demo_leaves_no_process_behind(
        demo_run: tuple[subprocess.CompletedProcess[str], list[int]]) -> None:
    assert demo_run[1] == []


def test_demo_without_examples_fails_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run([NOMADMESH, "demo", "--once", "--examples", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        1, f"error: the examples are not at {tmp_path} (missing apps/); run from a source "
           "checkout (pip install -e .) or pass --examples DIR\n")


@pytest.mark.parametrize(("hcl", "python"), [
    ("service-a.nomad.hcl", "service_a.py"), ("service-b.nomad.hcl", "service_b.py"),
    ("edge-router.nomad.hcl", "edge_router.py"), ("nomadmesh-xds.nomad.hcl", "control_plane.py"),
])
def test_each_local_example_job_is_the_same_in_hcl_and_python(hcl: str, python: str) -> None:
    variables = ({"nomadmesh": "/bin/nomadmesh", "consul": "127.0.0.1:1"} if "xds" in hcl
                 else {"python": "/bin/python3", "apps": "/srv/apps"})
    (from_hcl,) = load_all(LOCAL_JOBS / hcl, variables=variables)
    (from_python,) = load_all(LOCAL_JOBS / python, variables=variables)
    assert from_hcl.to_api() == from_python.to_api()
