"""The control plane driving a real Envoy: routes, endpoint changes, NACKs and restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import attrs
import pytest
import requests

from nomadmesh.mesh.bootstrap import BootstrapParams, render_bootstrap
from nomadmesh.testing.envoy import EnvoyProcess, HttpBackend, free_port
from nomadmesh.xds import (
    ControlPlane,
    Endpoint,
    MeshState,
    Resource,
    Snapshot,
    Upstream,
    build_snapshots,
    resources,
)

pytestmark = pytest.mark.envoy

UPSTREAMS = {"service-x": (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))}


def install(plane: ControlPlane, endpoints: dict[str, tuple[Endpoint, ...]]) -> None:
    state = MeshState(endpoints=endpoints, upstreams=UPSTREAMS)
    plane.cache.replace_all(build_snapshots(state, version=str(time.monotonic_ns())))


@attrs.frozen
class Sidecar:
    """A running Envoy and the URL of its egress listener."""

    envoy: EnvoyProcess
    egress_url: str


def start_sidecar(xds_port: int) -> Sidecar:
    egress_port = free_port()
    params = BootstrapParams(
        node_id="alloc-x",
        cluster="service-x",
        xds_host="127.0.0.1",
        xds_port=xds_port,
        admin_port=0,
        metrics_port=free_port(),
        egress_address="127.0.0.1",
        egress_port=egress_port,
    )
    envoy = EnvoyProcess(render_bootstrap(params)).start()
    return Sidecar(envoy, f"http://127.0.0.1:{egress_port}")


def get(sidecar: Sidecar, path: str) -> requests.Response:
    return requests.get(sidecar.egress_url + path, timeout=2)


def answers(sidecar: Sidecar, path: str) -> str:
    try:
        response = get(sidecar, path)
    except requests.RequestException:
        return ""
    return response.text if response.status_code == 200 else ""


@pytest.fixture
def backends() -> Iterator[dict[str, HttpBackend]]:
    with HttpBackend("a1") as a1, HttpBackend("a2") as a2, HttpBackend("b1") as b1:
        yield {"a1": a1, "a2": a2, "b1": b1}


def endpoint(backend: HttpBackend, health: str = "passing") -> Endpoint:
    return Endpoint("127.0.0.1", backend.port, health=health)


@pytest.fixture
def plane(backends: dict[str, HttpBackend]) -> Iterator[ControlPlane]:
    with ControlPlane(listen="127.0.0.1:0") as control_plane:
        install(
            control_plane,
            {"service-a": (endpoint(backends["a1"]),), "service-b": (endpoint(backends["b1"]),)},
        )
        yield control_plane


@pytest.fixture
def sidecar(plane: ControlPlane) -> Iterator[Sidecar]:
    proxy = start_sidecar(plane.port)
    try:
        proxy.envoy.wait_for(lambda: answers(proxy, "/hi_a").startswith("a1"), what="route to /hi_a")
        yield proxy
    finally:
        proxy.envoy.stop()


def test_egress_routes_each_prefix_to_its_upstream(sidecar: Sidecar) -> None:
    assert answers(sidecar, "/hi_a") == "a1 /hi_a"
    assert answers(sidecar, "/hi_b/x") == "b1 /hi_b/x"
    assert get(sidecar, "/other").status_code == 404


def test_scaling_a_service_up_and_down_moves_traffic(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    both = (endpoint(backends["a1"]), endpoint(backends["a2"]))
    install(plane, {"service-a": both, "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(lambda: answers(sidecar, "/hi_a").startswith("a2"), what="traffic on a2")
    install(plane, {"service-a": (endpoint(backends["a2"]),), "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(
        lambda: all(answers(sidecar, "/hi_a").startswith("a2") for _ in range(10)), what="traffic only on a2"
    )


def test_a_critical_endpoint_takes_no_traffic(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    failing = (endpoint(backends["a1"], "critical"), endpoint(backends["a2"]))
    install(plane, {"service-a": failing, "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(
        lambda: all(answers(sidecar, "/hi_a").startswith("a2") for _ in range(10)),
        what="traffic only on the passing endpoint",
    )


def test_a_rejected_cluster_is_counted_once_and_traffic_is_unaffected(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    current = plane.cache.get("service-x")
    assert current is not None
    broken = resources.eds_cluster("service-a")
    broken.connect_timeout.seconds = -1  # Envoy's validation refuses a negative timeout
    items = [
        r
        for kind in current.resources.values()
        for r in kind.values()
        if r.name != "service-a" or r.type_url != resources.CLUSTER_TYPE
    ]
    broken_snapshot = Snapshot.of("broken", [*items, Resource.of(broken)], bind_egress=True)
    plane.cache.set_snapshot("service-x", broken_snapshot)
    sidecar.envoy.wait_for(
        lambda: sidecar.envoy.stat("cluster_manager.cds.update_rejected") == "1", what="the CDS rejection"
    )
    pushes = plane.metrics.pushes.labels(resources.CLUSTER_TYPE)._value.get()
    time.sleep(0.5)
    assert plane.metrics.nacks.labels(resources.CLUSTER_TYPE)._value.get() == 1
    assert plane.metrics.pushes.labels(resources.CLUSTER_TYPE)._value.get() == pushes
    assert sidecar.envoy.stat("cluster_manager.cds.update_rejected") == "1"
    assert answers(sidecar, "/hi_a") == "a1 /hi_a"


def test_envoy_keeps_routing_across_a_control_plane_restart(
    backends: dict[str, HttpBackend],
) -> None:
    port = free_port()
    endpoints = {"service-a": (endpoint(backends["a1"]),), "service-b": (endpoint(backends["b1"]),)}
    first = ControlPlane(listen=f"127.0.0.1:{port}").start()
    install(first, endpoints)
    proxy = start_sidecar(port)
    envoy = proxy.envoy
    try:
        envoy.wait_for(lambda: answers(proxy, "/hi_a").startswith("a1"), what="route to /hi_a")
        first.stop()
        envoy.wait_for(lambda: envoy.stat("control_plane.connected_state") == "0", what="disconnection")
        assert answers(proxy, "/hi_a") == "a1 /hi_a"
        with ControlPlane(listen=f"127.0.0.1:{port}") as second:
            install(second, endpoints)
            envoy.wait_for(
                lambda: envoy.stat("control_plane.connected_state") == "1", timeout=15, what="reconnection"
            )
            assert answers(proxy, "/hi_a") == "a1 /hi_a"
    finally:
        envoy.stop()
        first.stop()
