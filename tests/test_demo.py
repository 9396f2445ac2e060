"""`nomadmesh demo --once`: the original design on this machine, real Envoy, real traffic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import attrs
import pytest

from nomadmesh.loader import load_all
from nomadmesh.model import evolve

ROOT = Path(__file__).parent.parent
LOCAL_JOBS = ROOT / "examples" / "jobs" / "local"
NOMADMESH = str(Path(sys.executable).parent / "nomadmesh")


def process_groups_with(marker: str) -> set[int]:
    """Process groups of live processes whose environment carries `marker` (tasks inherit it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.add(os.getpgid(int(entry.name)))
        except OSError:
            continue
    return found


def alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@attrs.frozen
class DemoRun:
    """`nomadmesh demo --once` as run by the tests: its result and the process groups it made."""

    result: subprocess.CompletedProcess[str]
    groups: set[int]


@pytest.fixture(scope="module")
def demo_run() -> DemoRun:
    marker = str(uuid.uuid4())
    env = {**os.environ, "NOMADMESH_DEMO_TEST": marker}
    process = subprocess.Popen([NOMADMESH, "demo", "--once"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    groups: set[int] = set()
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        groups |= process_groups_with(marker)
        time.sleep(0.2)
    stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    groups.discard(os.getpgid(0))
    return DemoRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
                   groups)


@pytest.mark.envoy
def test_demo_once_passes_its_check(
        demo_run: DemoRun) -> None:
    assert (demo_run.result.returncode, demo_run.result.stderr) == (0, ""), demo_run.result.stdout


@pytest.mark.envoy
def test_demo_routes_hi_a_and_hi_b_through_edge_routers_sidecar(
        demo_run: DemoRun) -> None:
    lines = demo_run.result.stdout.splitlines()
    assert "routes on edge-router's egress listener (from Envoy /config_dump): " \
           "/hi_a -> service-a, /hi_b -> service-b" in lines
    assert any("GET /hi_b" in line and "(its own sidecar) -> service-a" in line for line in lines)


@pytest.mark.envoy
def test_demo_spreads_traffic_over_three_service_a_instances(
        demo_run: DemoRun) -> None:
    assert "traffic spread over 3 service-a instances" in demo_run.result.stdout


@pytest.mark.envoy
def test_demo_once_prints_no_addresses_that_die_with_it(
        demo_run: DemoRun) -> None:
    # Without --once the demo stays up and prints them (tests/test_cli_demo.py).
    out = demo_run.result.stdout
    assert "explore:" not in out and "Envoy admin" not in out


@pytest.mark.envoy
def test_demo_leaves_no_process_group_behind(
        demo_run: DemoRun) -> None:
    assert len(demo_run.groups) >= 9  # control plane, 4-5 apps, 4-5 sidecars, each its own group
    assert [pgid for pgid in demo_run.groups if alive(pgid)] == []


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
    # Nomad's HCL parser names a job after its ID (jobspec2/parse_job.go); the Python jobs leave
    # the name to the server, which does the same (api/jobs.go:1169).
    assert from_hcl.to_api() == evolve(from_python, name=from_python.id).to_api()
