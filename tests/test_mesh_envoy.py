"""Injected sidecars against the real Envoy: every bootstrap validates, and a sidecar routes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import requests
from example_files import job_files

import nomadmesh
from nomadmesh.errors import MeshError
from nomadmesh.mesh import GroupMesh, Mesh, Sidecar, Upstream, inject, sidecar_task
from nomadmesh.mesh.node import node_bootstrap
from nomadmesh.model import Group, Job, Network, Port, Service, Task
from nomadmesh.testing.envoy import EnvoyProcess, HttpBackend, free_port, validate_bootstrap
from nomadmesh.xds import (
    ControlPlane,
    Endpoint,
    MeshState,
    Snapshot,
    build_snapshots,
    parse_upstreams,
)

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).parent.parent
EXAMPLE_FILES = [*job_files(),
                 ROOT / "examples" / "mesh" / "original_design.py"]
DRIVERS = ("docker", "exec", "raw_exec")
CONTROL_PLANES = ("nomadmesh-xds", "10.0.0.5:18000")


def bootstraps(job: Job) -> tuple[dict[str, str], list[str]]:
    """Every distinct rendered bootstrap of `job` over drivers and control planes, by label.

    The second value lists the combinations that failed to inject for another reason than a
    raw_exec sidecar in a bridge network (which is refused on purpose).
    """
    found: dict[str, str] = {}
    unexpected: list[str] = []
    for driver in DRIVERS:
        for control_plane in CONTROL_PLANES:
            mesh = Mesh(control_plane=control_plane, sidecar=Sidecar(driver=driver))
            label = f"{job.id}/{driver}/{control_plane}"
            try:
                injected = inject(job, mesh)
            except MeshError as exc:
                if driver != "raw_exec" or "raw_exec" not in str(exc):
                    unexpected.append(f"{label}: {exc}")
                continue
            for group in injected.groups:
                if sidecar_task(group) is not None:
                    text = json.dumps(node_bootstrap(group), sort_keys=True)
                    found.setdefault(text, f"{label}/{group.name}")
    return {label: text for text, label in found.items()}, unexpected


def envoy_failures(rendered: dict[str, str]) -> list[str]:
    failures = []
    for label, text in rendered.items():
        result = validate_bootstrap(json.loads(text))
        if result.returncode != 0:
            failures.append(f"{label}: {result.stdout}{result.stderr}")
    return failures


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_sidecar_bootstrap_of_an_example_job_passes_envoy_validate(path: Path) -> None:
    for job in nomadmesh.load_all(path):
        rendered, unexpected = bootstraps(job)
        assert unexpected == []
        if not rendered:
            assert inject(job) is job  # nothing meshed: the job comes back untouched
        assert envoy_failures(rendered) == []


@pytest.mark.parametrize("mode", ["bridge", "host", "cni/mesh"])
def test_every_driver_and_control_plane_bootstrap_passes_envoy_validate(mode: str) -> None:
    job = Job("web", groups=[Group(
        "api",
        networks=[Network(mode=mode, ports=[Port("http", to=8080)])],
        services=[Service(name="api", port="http")],
        meta={"nomadmesh.upstreams": "db=/db,cache=/cache"},
        tasks=[Task("app", driver="docker")],
    )])
    rendered, unexpected = bootstraps(job)
    assert unexpected == []
    assert len(rendered) == len(CONTROL_PLANES)  # drivers change the task, not the bootstrap
    assert envoy_failures(rendered) == []


# --- a sidecar from an injected job, end to end -------------------------------------------------


@pytest.fixture
def service_a() -> Iterator[HttpBackend]:
    with HttpBackend("service-a") as backend:
        yield backend


@pytest.fixture
def control_plane() -> Iterator[ControlPlane]:
    with ControlPlane(listen="127.0.0.1:0") as plane:
        yield plane


def test_injected_service_b_reaches_service_a_through_its_egress_url(
        service_a: HttpBackend, control_plane: ControlPlane) -> None:
    # The original design on one machine: loopback ports instead of a network namespace.
    mesh = Mesh(egress_port=free_port(), admin_port=free_port(), metrics_port=free_port(),
                groups={"service-b": GroupMesh(upstreams=[Upstream("service-a", prefix="/hi_a")])})
    job = nomadmesh.load(ROOT / "examples" / "jobs" / "service_a.py")
    service_b = inject(renamed(job, "service-b"), mesh)
    group = service_b.groups[0]
    routes = parse_upstreams(group.services[0].meta["nomadmesh-upstreams"])
    state = MeshState(endpoints={"service-a": (Endpoint("127.0.0.1", service_a.port),)},
                      upstreams={"service-b": routes})
    control_plane.cache.replace_all(build_snapshots(state, version="1"))
    bootstrap = node_bootstrap(group, services={"nomadmesh-xds": [("127.0.0.1",
                                                                   control_plane.port)]})
    app = group.task("service-b-app")
    assert app is not None

    with EnvoyProcess(bootstrap) as envoy:
        envoy.wait_for(envoy.is_ready, what="/ready")
        envoy.wait_for(lambda: _get(app.env["SERVICE_A_URL"]) == "service-a /hi_a",
                       what="service-a through the egress listener")
        metrics = requests.get(f"http://127.0.0.1:{mesh.metrics_port}/stats/prometheus",
                               timeout=5)
    assert "envoy_control_plane_connected_state" in metrics.text


def renamed(job: Job, name: str) -> Job:
    """service-a's example job, renamed: a second service with the same shape."""
    group = job.groups[0]
    service = attrs.evolve(group.services[0], name=name)
    task = attrs.evolve(group.tasks[0], name=f"{name}-app")
    return attrs.evolve(job, id=name, groups=[attrs.evolve(group, name=name, count=1,
                                                           services=[service], tasks=[task])])


def _get(url: str) -> str:
    try:
        response = requests.get(url, timeout=2)
    except requests.RequestException:
        time.sleep(0.05)
        return ""
    return response.text if response.status_code == 200 else ""


@pytest.mark.parametrize(("mode", "control_plane_kind"), [("host", "fixed"), ("cni/mesh", "consul")])
def test_sidecar_comes_up_ready_and_connected(mode: str, control_plane_kind: str,
                                              control_plane: ControlPlane) -> None:
    address = f"127.0.0.1:{control_plane.port}"
    mesh = Mesh(control_plane=address if control_plane_kind == "fixed" else "nomadmesh-xds",
                egress_port=free_port(), admin_port=free_port(), metrics_port=free_port())
    job = Job("web", groups=[Group(
        "api", networks=[Network(mode=mode, ports=[Port("http")])],
        services=[Service(name="api", port="http")], tasks=[Task("app", driver="docker")])])
    group = inject(job, mesh).groups[0]
    control_plane.cache.set_snapshot("api", Snapshot.empty())  # Envoy is ready after xDS
    # Dynamic ports (host mode) get free loopback ports, as Nomad would assign them.
    env = {f"NOMAD_PORT_{p.label}": str(free_port()) for p in group.ports}
    bootstrap = node_bootstrap(group, env, services={"nomadmesh-xds": [("127.0.0.1",
                                                                        control_plane.port)]})

    with EnvoyProcess(bootstrap) as envoy:
        envoy.wait_for(envoy.is_ready, what="/ready")
        envoy.wait_for(lambda: envoy.stat("control_plane.connected_state") == "1",
                       what="connected to the control plane")
    assert bootstrap["node"]["cluster"] == "api"
