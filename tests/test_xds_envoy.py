"""The control plane driving a real Envoy: routes, endpoint changes, NACKs and restarts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nomadmesh.contract import PUSH_ORDER
from nomadmesh.testing.envoy import HttpBackend, Sidecar, free_port
from nomadmesh.xds import (
    ControlPlane,
    Endpoint,
    MeshState,
    Resource,
    Snapshot,
    Upstream,
    resources,
)
from nomadmesh.xds.sources.state import MeshStateSource

pytestmark = pytest.mark.envoy

UPSTREAMS = {"service-x": (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))}


def install(plane: ControlPlane, endpoints: dict[str, tuple[Endpoint, ...]]) -> None:
    state = MeshState(endpoints=endpoints, upstreams=UPSTREAMS)
    source = plane.source
    assert isinstance(source, MeshStateSource)
    source.update(state)


def state_plane(listen: str = "127.0.0.1:0") -> ControlPlane:
    return ControlPlane(listen=listen, source=lambda cache, metrics: MeshStateSource(cache))


@pytest.fixture
def backends() -> Iterator[dict[str, HttpBackend]]:
    with HttpBackend("a1") as a1, HttpBackend("a2") as a2, HttpBackend("b1") as b1:
        yield {"a1": a1, "a2": a2, "b1": b1}


def endpoint(backend: HttpBackend, health: str = "passing") -> Endpoint:
    return Endpoint("127.0.0.1", backend.port, health=health)


@pytest.fixture
def plane(backends: dict[str, HttpBackend]) -> Iterator[ControlPlane]:
    with state_plane() as control_plane:
        install(
            control_plane,
            {"service-a": (endpoint(backends["a1"]),), "service-b": (endpoint(backends["b1"]),)},
        )
        yield control_plane


@pytest.fixture
def sidecar(plane: ControlPlane) -> Iterator[Sidecar]:
    with Sidecar(plane.port, "service-x") as proxy:
        proxy.envoy.wait_for(lambda: proxy.answer("/hi_a").startswith("a1"), what="/hi_a")
        yield proxy


def test_egress_routes_each_prefix_to_its_upstream(sidecar: Sidecar) -> None:
    assert sidecar.answer("/hi_a") == "a1 /hi_a"
    assert sidecar.answer("/hi_b/x") == "b1 /hi_b/x"
    assert sidecar.get("/other").status_code == 404


def test_scaling_a_service_up_and_down_moves_traffic(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    both = (endpoint(backends["a1"]), endpoint(backends["a2"]))
    install(plane, {"service-a": both, "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(lambda: sidecar.answer("/hi_a").startswith("a2"), what="traffic on a2")
    install(plane, {"service-a": (endpoint(backends["a2"]),), "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(
        lambda: all(sidecar.answer("/hi_a").startswith("a2") for _ in range(10)), what="traffic only on a2"
    )


def test_a_critical_endpoint_takes_no_traffic(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    failing = (endpoint(backends["a1"], "critical"), endpoint(backends["a2"]))
    install(plane, {"service-a": failing, "service-b": (endpoint(backends["b1"]),)})
    sidecar.envoy.wait_for(
        lambda: all(sidecar.answer("/hi_a").startswith("a2") for _ in range(10)),
        what="traffic only on the passing endpoint",
    )


def test_a_rejected_cluster_is_counted_once_and_traffic_is_unaffected(
    sidecar: Sidecar, plane: ControlPlane, backends: dict[str, HttpBackend]
) -> None:
    current = plane.cache.get(sidecar.node_hash)
    assert current is not None
    broken = resources.eds_cluster("service-a")
    broken.connect_timeout.seconds = -1  # Envoy's validation refuses a negative timeout
    items = [
        r
        for type_url in PUSH_ORDER
        for r in current.of_type(type_url).values()
        if r.name != "service-a" or r.type_url != resources.CLUSTER_TYPE
    ]
    broken_snapshot = Snapshot.of([*items, Resource.of(broken)])
    plane.cache.set_snapshot(sidecar.node_hash, broken_snapshot)
    sidecar.envoy.wait_for(
        lambda: sidecar.envoy.stat("cluster_manager.cds.update_rejected") == "1", what="the CDS rejection"
    )
    pushes = plane.metrics.pushes.labels(resources.CLUSTER_TYPE)._value.get()
    time.sleep(0.5)
    assert plane.metrics.nacks.labels(resources.CLUSTER_TYPE)._value.get() == 1
    assert plane.metrics.pushes.labels(resources.CLUSTER_TYPE)._value.get() == pushes
    assert sidecar.envoy.stat("cluster_manager.cds.update_rejected") == "1"
    assert sidecar.answer("/hi_a") == "a1 /hi_a"


def test_envoy_keeps_routing_across_a_control_plane_restart(
    backends: dict[str, HttpBackend],
) -> None:
    port = free_port()
    endpoints = {"service-a": (endpoint(backends["a1"]),), "service-b": (endpoint(backends["b1"]),)}
    first = state_plane(f"127.0.0.1:{port}").start()
    try:
        install(first, endpoints)
        with Sidecar(port, "service-x") as proxy:
            envoy = proxy.envoy
            envoy.wait_for(lambda: proxy.answer("/hi_a").startswith("a1"), what="/hi_a")
            first.stop()
            answers = []

            def ask_until_connected_state_is(value: str) -> None:
                # Traffic is asked for continuously while the control plane goes and comes back.
                deadline = time.monotonic() + 15
                while envoy.stat("control_plane.connected_state") != value:
                    assert time.monotonic() < deadline, f"connected_state never became {value}"
                    answers.append(proxy.answer("/hi_a"))

            ask_until_connected_state_is("0")
            answers.extend(proxy.answer("/hi_a") for _ in range(10))
            with state_plane(f"127.0.0.1:{port}") as second:
                install(second, endpoints)
                ask_until_connected_state_is("1")
                answers.append(proxy.answer("/hi_a"))
            assert set(answers) == {"a1 /hi_a"}
    finally:
        first.stop()
