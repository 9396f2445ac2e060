"""Injected sidecars against the real Envoy: every bootstrap validates, and a sidecar routes."""

from __future__ import annotations

import json
import threading
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
from nomadmesh.testing.envoy import (
    EnvoyProcess,
    HttpBackend,
    eventually,
    free_port,
    validate_group,
)
from nomadmesh.xds import (
    ControlPlane,
    Endpoint,
    MeshState,
    Snapshot,
    build_snapshots,
    parse_upstreams,
)
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.ca import MeshCA
from nomadmesh.xds.sources.state import MeshStateSource

pytestmark = pytest.mark.envoy

ROOT = Path(__file__).parent.parent
EXAMPLE_FILES = [*job_files(),
                 ROOT / "examples" / "mesh" / "original_design.py"]
DRIVERS = ("docker", "exec", "raw_exec")
CONTROL_PLANES = ("nomadmesh-xds", "10.0.0.5:18000")


def bootstraps(job: Job) -> tuple[dict[str, Group], list[str]]:
    """A group for every distinct rendered bootstrap of `job` over drivers and control planes,
    by label.

    The second value lists the combinations that failed to inject for another reason than a
    raw_exec sidecar in a bridge network (which is refused on purpose).
    """
    found: dict[str, tuple[str, Group]] = {}
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
                    found.setdefault(text, (f"{label}/{group.name}", group))
    return dict(found.values()), unexpected


def envoy_failures(rendered: dict[str, Group]) -> list[str]:
    failures = []
    for label, group in rendered.items():
        result = validate_group(group)
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
                inbound_port=free_port(),
                groups={"service-b": GroupMesh(upstreams=[Upstream("service-a", prefix="/hi_a")])})
    job = nomadmesh.load(ROOT / "examples" / "jobs" / "service_a.py")
    service_b = inject(renamed(job, "service-b"), mesh)
    group = service_b.groups[0]
    routes, problems = parse_upstreams(group.services[0].meta["nomadmesh-upstreams"], "meta")
    assert not problems
    state = MeshState(endpoints={"service-a": (Endpoint("127.0.0.1", service_a.port),)},
                      upstreams={"service-b": routes})
    sidecar = EnvoyProcess.for_group(group, services={"nomadmesh-xds": [("127.0.0.1",
                                                                         control_plane.port)]})
    app = group.task("service-b-app")
    assert app is not None

    with sidecar as envoy:
        control_plane.cache.set_snapshots(build_snapshots(state, [envoy.node_hash]))
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
                egress_port=free_port(), admin_port=free_port(), metrics_port=free_port(),
                inbound_port=free_port())
    job = Job("web", groups=[Group(
        "api", networks=[Network(mode=mode, ports=[Port("http")])],
        services=[Service(name="api", port="http")], tasks=[Task("app", driver="docker")])])
    group = inject(job, mesh).groups[0]
    # Dynamic ports (host mode) get free loopback ports, as Nomad would assign them.
    env = {f"NOMAD_PORT_{p.label}": str(free_port()) for p in group.ports}
    sidecar = EnvoyProcess.for_group(group, env, services={"nomadmesh-xds": [(
        "127.0.0.1", control_plane.port)]})

    with sidecar as envoy:
        control_plane.cache.set_snapshot(envoy.node_hash, Snapshot.empty())  # ready after xDS
        envoy.wait_for(envoy.is_ready, what="/ready")
        envoy.wait_for(lambda: envoy.stat("control_plane.connected_state") == "1",
                       what="connected to the control plane")
    assert sidecar.bootstrap["node"]["cluster"] == "api"


def loopback_mesh(**settings: object) -> Mesh:
    """A mesh whose bridge-mode ports are free loopback ports: one sidecar per mesh per host."""
    return Mesh(egress_port=free_port(), admin_port=free_port(), metrics_port=free_port(),
                inbound_port=free_port(), **settings)  # type: ignore[arg-type]


def test_injected_sidecars_talk_mtls_and_the_app_is_behind_the_inbound_listener() -> None:
    job = nomadmesh.load(ROOT / "examples" / "jobs" / "service_a.py")
    callee_mesh = loopback_mesh()
    caller_mesh = loopback_mesh(groups={"service-b": GroupMesh(
        upstreams=[Upstream("service-a", prefix="/hi_a")])})
    service_a = inject(renamed(job, "service-a"), callee_mesh).groups[0]
    service_b = inject(renamed(job, "service-b"), caller_mesh).groups[0]
    assert service_a.services[0].port == "inbound"
    config = MeshConfig(ca=MeshCA.generate())
    with HttpBackend("service-a") as app, ControlPlane(
            listen="127.0.0.1:0",
            source=lambda cache, metrics: MeshStateSource(cache, config=config)) as plane:
        xds = {"nomadmesh-xds": [("127.0.0.1", plane.port)]}
        # The app listens where its port label says; Nomad would set NOMAD_PORT_http.
        a_env = {"NOMAD_PORT_http": str(app.port)}
        with EnvoyProcess.for_group(service_a, a_env, xds) as callee, \
                EnvoyProcess.for_group(service_b, services=xds) as caller:
            routes, _ = parse_upstreams(service_b.services[0].meta["nomadmesh-upstreams"], "m")
            assert isinstance(plane.source, MeshStateSource)
            plane.source.update(MeshState(
                endpoints={"service-a": (Endpoint("127.0.0.1", callee_mesh.inbound_port),),
                           "service-b": ()},
                upstreams={"service-b": routes}))
            url = service_b.task("service-b-app").env["SERVICE_A_URL"]  # type: ignore[union-attr]
            caller.wait_for(lambda: _get(url) == "service-a /hi_a", timeout=20,
                            what="service-b reaches service-a over mTLS")
            assert int(callee.stat("http.inbound.downstream_cx_ssl_total") or 0) >= 1
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{callee_mesh.inbound_port}/hi_a", timeout=5)


def test_a_killed_control_plane_replica_hands_its_sidecar_to_another_without_a_restart() -> None:
    mesh = loopback_mesh(groups={"service-b": GroupMesh(
        upstreams=[Upstream("service-a", prefix="/hi_a")])})
    job = nomadmesh.load(ROOT / "examples" / "jobs" / "service_a.py")
    group = inject(renamed(job, "service-b"), mesh).groups[0]
    url = group.task("service-b-app").env["SERVICE_A_URL"]  # type: ignore[union-attr]
    routes, _ = parse_upstreams(group.services[0].meta["nomadmesh-upstreams"], "meta")

    def replica() -> ControlPlane:
        return ControlPlane(listen="127.0.0.1:0",
                            source=lambda cache, metrics: MeshStateSource(cache))

    with HttpBackend("a1") as a1, HttpBackend("a2") as a2, replica() as first, \
            replica() as second:
        for plane in (first, second):
            assert isinstance(plane.source, MeshStateSource)
            plane.source.update(MeshState(endpoints={"service-a": (Endpoint("127.0.0.1", a1.port),),
                                                     "service-b": ()},
                                          upstreams={"service-b": routes}))
        instances = {"nomadmesh-xds": [("127.0.0.1", first.port), ("127.0.0.1", second.port)]}
        with EnvoyProcess.for_group(group, services=instances) as envoy:
            envoy.wait_for(lambda: _get(url) == "a1 /hi_a", what="routed through a replica")
            versions = (envoy.stat("cluster_manager.cds.version_text"),
                        envoy.stat("listener_manager.lds.version_text"))
            connected = first if first.metrics.connected_proxies._value.get() else second
            other = second if connected is first else first
            failures = []
            stop = threading.Event()

            def traffic() -> None:
                session = requests.Session()
                while not stop.is_set():
                    try:
                        failures.append(session.get(url, timeout=5).text != "a1 /hi_a")
                    except requests.RequestException:
                        failures.append(True)

            sender = threading.Thread(target=traffic)
            sender.start()
            try:
                connected.stop()
                eventually(lambda: other.metrics.connected_proxies._value.get() == 1,
                           timeout=30, what="the sidecar reconnected to the other replica")
            finally:
                stop.set()
                sender.join(timeout=10)
            assert len(failures) > 10
            assert not any(failures), f"{sum(failures)} of {len(failures)} requests failed"
            # Replicas build content-derived versions: the survivor's are those Envoy has.
            envoy.wait_for(lambda: int(envoy.stat("cluster_manager.cds.update_attempt") or 0) >= 3,
                           what="the survivor's first answer")
            assert (envoy.stat("cluster_manager.cds.version_text"),
                    envoy.stat("listener_manager.lds.version_text")) == versions
            # The surviving replica now drives the sidecar: a change reaches it.
            assert isinstance(other.source, MeshStateSource)
            other.source.update(MeshState(endpoints={"service-a": (Endpoint("127.0.0.1", a2.port),),
                                                     "service-b": ()},
                                          upstreams={"service-b": routes}))
            envoy.wait_for(lambda: _get(url) == "a2 /hi_a", what="a change from the survivor")
            assert envoy.stat("server.hot_restart_epoch") == "0"
