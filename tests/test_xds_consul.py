"""The Consul source against the Consul emulator: endpoints, health, routes, outages, index resets."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest
import requests
from envoy.config.endpoint.v3 import endpoint_pb2

from nomadmesh.contract import CONFIG_PREFIX, PUSH_ORDER, Policy, config_document, node_hash
from nomadmesh.errors import XdsError
from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.envoy import (
    AdsClient,
    HttpBackend,
    Sidecar,
    eventually,
    free_port,
    watching,
)
from nomadmesh.xds import ControlPlane, Endpoint, Upstream
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from nomadmesh.xds.sources.consul import ConsulSource, service_view

ROUTES = {"nomadmesh-upstreams": "service-a=/hi_a,service-b=/hi_b"}
NODES = ("service-x", "service-a", "service-b")


def register(
    consul: ConsulEmulator,
    name: str,
    instance: str,
    port: int,
    status: str = "passing",
    meta: dict[str, str] | None = None,
    weights: dict[str, int] | None = None,
) -> None:
    consul.register_definition(
        {
            "Name": name,
            "ID": instance,
            "Address": "127.0.0.1",
            "Port": port,
            "Meta": meta or {},
            "Weights": weights or {"Passing": 1, "Warning": 1},
            "Checks": [{"CheckID": f"{instance}-check", "TTL": "30s", "Status": status}],
        }
    )


def ports(plane: ControlPlane, service: str, node: str = "service-x") -> list[tuple[int, int]]:
    """(port, health_status) of each endpoint of `service` as node `node` would get them."""
    snapshot = plane.cache.get(node)
    if snapshot is None or service not in snapshot.of_type(ENDPOINT_TYPE):
        return []
    assignment = snapshot.of_type(ENDPOINT_TYPE)[service].message
    assert isinstance(assignment, endpoint_pb2.ClusterLoadAssignment)
    return [
        (e.endpoint.address.socket_address.port_value, e.health_status)
        for group in assignment.endpoints
        for e in group.lb_endpoints
    ]


@pytest.fixture
def consul() -> Iterator[ConsulEmulator]:
    with ConsulEmulator() as emulator:
        register(emulator, "service-x", "x1", 7000, meta=ROUTES)
        register(emulator, "service-a", "a1", 7001)
        register(emulator, "service-b", "b1", 7002)
        yield emulator


@contextlib.contextmanager
def consul_plane(consul: ConsulEmulator, **options: Any) -> Iterator[ControlPlane]:
    """A control plane on `consul` with sidecars of service-x, -a and -b watching (no binding)."""
    with ControlPlane(listen="127.0.0.1:0", consul=consul.address, **options) as plane, \
            watching(plane.port, *NODES):
        yield plane


def builds(plane: ControlPlane) -> int:
    assert isinstance(plane.source, ConsulSource)
    return plane.source.builds


@pytest.fixture
def plane(consul: ConsulEmulator) -> Iterator[ControlPlane]:
    with consul_plane(consul, metrics="127.0.0.1:0") as cp:
        eventually(lambda: ports(cp, "service-b"), what="first snapshot from Consul")
        yield cp


def test_routes_come_from_the_service_meta(plane: ControlPlane) -> None:
    snapshot = plane.cache.get("service-x")
    assert snapshot is not None
    assert sorted(snapshot.of_type(CLUSTER_TYPE)) == ["service-a", "service-b"]
    route = snapshot.of_type("type.googleapis.com/envoy.config.route.v3.RouteConfiguration")
    prefixes = {r.match.prefix for r in route["egress_route"].message.virtual_hosts[0].routes}
    assert sorted(prefixes) == ["/hi_a", "/hi_b"]


def test_a_new_instance_appears_in_the_assignment(plane: ControlPlane, consul: ConsulEmulator) -> None:
    register(consul, "service-a", "a2", 7011)
    eventually(lambda: [p for p, _ in ports(plane, "service-a")] == [7001, 7011], what="the second instance")


def test_a_service_that_leaves_the_catalog_leaves_the_snapshots(
    plane: ControlPlane, consul: ConsulEmulator
) -> None:
    consul.deregister("x1")
    eventually(lambda: plane.cache.get("service-x") is None, what="service-x dropped")
    assert plane.cache.get("service-a") is not None


def test_a_critical_check_marks_the_endpoint_unhealthy(plane: ControlPlane, consul: ConsulEmulator) -> None:
    consul.set_check_status("a1-check", "critical")
    eventually(lambda: ports(plane, "service-a") == [(7001, 2)], what="UNHEALTHY endpoint")


def test_a_health_flip_changes_only_that_services_assignment(
    plane: ControlPlane, consul: ConsulEmulator
) -> None:
    before = plane.cache.get("service-x")
    assert before is not None
    versions = {(t, name): item.version for t in PUSH_ORDER for name, item in before.of_type(t).items()}
    consul.set_check_status("a1-check", "critical")
    eventually(lambda: ports(plane, "service-a") == [(7001, 2)], what="the flip")
    after = plane.cache.get("service-x")
    assert after is before  # the shared assignment was replaced; no snapshot was rebuilt
    changed = [
        (type_url, name)
        for type_url in PUSH_ORDER
        for name, item in after.of_type(type_url).items()
        if versions[type_url, name] != item.version
    ]
    assert changed == [(ENDPOINT_TYPE, "service-a")]


def test_a_wake_up_without_a_change_builds_nothing(plane: ControlPlane, consul: ConsulEmulator) -> None:
    time.sleep(0.1)
    before = plane.cache.get("service-x")
    consul.set_check_status("a1-check", "passing", output="still fine")  # new index, same view
    time.sleep(0.3)
    assert plane.cache.get("service-x") is before


def test_a_burst_of_changes_is_coalesced_into_one_build(consul: ConsulEmulator) -> None:
    with consul_plane(consul, coalesce=0.5) as plane:
        eventually(lambda: ports(plane, "service-b"), what="first snapshot")
        time.sleep(0.6)  # let the window of the initial builds close
        generation = builds(plane)
        for n in range(5):
            register(consul, "service-a", f"extra{n}", 7100 + n)
        eventually(lambda: len(ports(plane, "service-a")) == 6, what="all five instances")
        later = builds(plane)
    # The first change is built at once; the rest of the burst waits for the window.
    assert later - generation <= 2


def test_an_isolated_change_is_built_without_waiting_for_the_window(
    consul: ConsulEmulator,
) -> None:
    # A wide window, so that a change served well inside it proves it did not wait for it, even
    # on a loaded machine.
    with consul_plane(consul, coalesce=3.0) as plane:
        eventually(lambda: ports(plane, "service-b"), what="first snapshot")
        time.sleep(3.1)  # the window of the initial builds has closed
        register(consul, "service-a", "a2", 7011)
        eventually(lambda: len(ports(plane, "service-a")) == 2, timeout=2.0, what="the change")


def test_consul_down_keeps_the_last_snapshot_and_recovers_when_back(
    plane: ControlPlane, consul: ConsulEmulator
) -> None:
    before = plane.cache.get("service-x")
    consul.stop()
    eventually(lambda: not plane.healthy(), what="unhealthy while Consul is down")
    time.sleep(1.0)
    assert plane.cache.get("service-x") is before
    # Four watches (catalog and three services) backing off from 50 ms to 0.5 s: a handful of
    # attempts each, not a busy loop.
    assert 1 <= plane.metrics.consul_errors._value.get() <= 40
    consul.start()
    register(consul, "service-a", "a2", 7011)
    eventually(
        lambda: len(ports(plane, "service-a")) == 2,
        timeout=1.0,
        what="the change served within a second of Consul's return",
    )
    eventually(plane.healthy, timeout=1.0, what="every watch recovered within a second")


def test_healthz_reports_consul_outages(plane: ControlPlane, consul: ConsulEmulator) -> None:
    url = f"http://127.0.0.1:{plane.metrics_port}/healthz"
    assert requests.get(url, timeout=2).status_code == 200
    consul.stop()
    eventually(lambda: requests.get(url, timeout=2).status_code == 503, what="503 from /healthz")
    consul.start()


def test_an_index_that_goes_backwards_restarts_the_watch(consul: ConsulEmulator) -> None:
    # A query carrying an index from the old Consul blocks until its wait expires; the shorter
    # wait bounds the test, the behaviour is the same with the default 10 s.
    with consul_plane(consul, consul_wait="1s") as plane:
        eventually(lambda: ports(plane, "service-b"), what="first snapshot")
        port = consul.port
        consul.stop()
        with ConsulEmulator(port=port) as fresh:  # a rebuilt Consul: its indexes start over
            register(fresh, "service-x", "x1", 7000, meta=ROUTES)
            register(fresh, "service-a", "a9", 7009)
            register(fresh, "service-b", "b1", 7002)
            eventually(
                lambda: [p for p, _ in ports(plane, "service-a")] == [7009],
                timeout=5,
                what="the rebuilt Consul's endpoint",
            )


def test_the_explicit_address_wins_over_consul_http_addr(
    consul: ConsulEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{free_port()}")
    with consul_plane(consul) as cp:
        eventually(lambda: ports(cp, "service-a"), what="snapshot from the explicit address")


def test_metrics_page_lists_the_control_plane_metrics(plane: ControlPlane) -> None:
    text = requests.get(f"http://127.0.0.1:{plane.metrics_port}/metrics", timeout=2).text
    for name in (
        "nomadmesh_xds_connected_proxies",
        "nomadmesh_xds_pushes",
        "nomadmesh_xds_nacks",
        "nomadmesh_xds_snapshot_build_seconds",
        "nomadmesh_xds_consul_errors",
    ):
        assert name in text


def test_service_view_applies_consul_weights_and_worst_check() -> None:
    def entry(instance: str, port: int, status: str) -> dict[str, object]:
        return {
            "Node": {"Address": "10.0.0.1"},
            "Service": {
                "ID": instance,
                "Address": "",
                "Port": port,
                "Weights": {"Passing": 10, "Warning": 1},
                "Meta": ROUTES,
            },
            "Checks": [{"Status": "passing"}, {"Status": status}],
        }

    (endpoints, upstreams), skipped = service_view(
        "s", [entry("i1", 1, "passing"), entry("i2", 2, "warning"), entry("i3", 3, "critical")]
    )
    assert skipped == []
    assert endpoints == (
        Endpoint("10.0.0.1", 1, health="passing", weight=10),
        Endpoint("10.0.0.1", 2, health="warning", weight=1),
        Endpoint("10.0.0.1", 3, health="critical", weight=10),
    )
    assert upstreams == (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))


@attrs.frozen
class Meshed:
    """Consul, a control plane fed by it, a real sidecar for `service-x`, and the backends."""

    consul: ConsulEmulator
    sidecar: Sidecar
    backends: dict[str, HttpBackend]

    def only(self, name: str) -> bool:
        """Whether ten requests in a row to /hi_a all reach the backend `name`."""
        return all(self.sidecar.answer("/hi_a").startswith(f"{name} ") for _ in range(10))


@pytest.fixture
def meshed(consul: ConsulEmulator) -> Iterator[Meshed]:
    with HttpBackend("a1") as a1, HttpBackend("a2") as a2, HttpBackend("b1") as b1:
        register(consul, "service-a", "a1", a1.port)
        register(consul, "service-b", "b1", b1.port)
        with (
            ControlPlane(listen="127.0.0.1:0", consul=consul.address) as plane,
            Sidecar(plane.port, "service-x") as sidecar,
        ):
            sidecar.envoy.wait_for(lambda: sidecar.answer("/hi_a").startswith("a1"), what="/hi_a")
            yield Meshed(consul, sidecar, {"a1": a1, "a2": a2, "b1": b1})


@pytest.mark.envoy
def test_envoy_sends_each_prefix_to_its_service_from_consul(meshed: Meshed) -> None:
    assert meshed.sidecar.answer("/hi_a/x") == "a1 /hi_a/x"
    assert meshed.sidecar.answer("/hi_b") == "b1 /hi_b"


@pytest.mark.envoy
def test_scaling_up_in_consul_brings_traffic_to_the_new_instance(meshed: Meshed) -> None:
    register(meshed.consul, "service-a", "a2", meshed.backends["a2"].port)
    meshed.sidecar.envoy.wait_for(
        lambda: meshed.sidecar.answer("/hi_a").startswith("a2"), what="traffic on a2"
    )


@pytest.mark.envoy
def test_scaling_down_in_consul_takes_traffic_off_the_instance(meshed: Meshed) -> None:
    register(meshed.consul, "service-a", "a2", meshed.backends["a2"].port)
    meshed.sidecar.envoy.wait_for(lambda: meshed.sidecar.answer("/hi_a").startswith("a2"))
    meshed.consul.deregister("a1")
    meshed.sidecar.envoy.wait_for(lambda: meshed.only("a2"), what="traffic only on a2")


@pytest.mark.envoy
def test_a_failing_health_check_takes_the_instance_out(meshed: Meshed) -> None:
    register(meshed.consul, "service-a", "a2", meshed.backends["a2"].port)
    meshed.sidecar.envoy.wait_for(lambda: meshed.sidecar.answer("/hi_a").startswith("a2"))
    meshed.consul.set_check_status("a1-check", "critical")
    meshed.sidecar.envoy.wait_for(lambda: meshed.only("a2"), what="traffic only on a2")
    meshed.consul.set_check_status("a1-check", "passing")
    meshed.sidecar.envoy.wait_for(
        lambda: meshed.sidecar.answer("/hi_a").startswith("a1"), what="a1 back in rotation"
    )


@pytest.mark.envoy
def test_envoy_keeps_routing_through_a_ten_second_consul_outage(consul: ConsulEmulator) -> None:
    with HttpBackend("a1") as a1, HttpBackend("a2") as a2:
        register(consul, "service-a", "a1", a1.port)
        consul.deregister("b1")
        with (
            ControlPlane(listen="127.0.0.1:0", consul=consul.address) as plane,
            Sidecar(plane.port, "service-x") as sidecar,
        ):
            sidecar.envoy.wait_for(lambda: sidecar.answer("/hi_a") == "a1 /hi_a", what="/hi_a")
            consul.stop()
            outage_ends = time.monotonic() + 10
            while time.monotonic() < outage_ends:
                assert sidecar.answer("/hi_a") == "a1 /hi_a"
                time.sleep(0.25)
            assert not plane.healthy()
            consul.start()
            eventually(plane.healthy, timeout=1.0, what="recovery within a second of the return")
            register(consul, "service-a", "a2", a2.port)
            consul.deregister("a1")
            sidecar.envoy.wait_for(
                lambda: sidecar.answer("/hi_a") == "a2 /hi_a", what="the post-outage change"
            )
            assert plane.healthy()


def test_stopping_leaves_no_control_plane_threads_behind() -> None:
    def ours() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("nomadmesh-xds")]

    with ConsulEmulator() as emulator:
        register(emulator, "service-x", "x1", 7000, meta=ROUTES)
        register(emulator, "service-a", "a1", 7001)
        with consul_plane(emulator, metrics="127.0.0.1:0") as cp:
            eventually(lambda: ports(cp, "service-a"), what="first snapshot")
            with AdsClient(cp.port, cluster="service-x") as client:
                client.request(CLUSTER_TYPE)
                client.receive()
    eventually(lambda: not ours(), timeout=5, what=f"threads to end: {ours()}")


def route_timeouts(plane: ControlPlane, node: str = "service-x") -> dict[str, float]:
    """Route timeout (seconds) per prefix, as `node` would get it."""
    snapshot = plane.cache.get(node)
    if snapshot is None:
        return {}
    config = snapshot.of_type(ROUTE_TYPE)["egress_route"].message
    return {r.match.prefix: r.route.timeout.ToTimedelta().total_seconds()
            for r in config.virtual_hosts[0].routes}


def test_the_config_in_kv_wins_over_the_meta_routes_and_changes_without_a_reregistration(
        plane: ControlPlane, consul: ConsulEmulator) -> None:
    eventually(lambda: route_timeouts(plane) == {"/hi_a": 15.0, "/hi_b": 15.0},
               what="the meta routes with the default policy")
    document = config_document([Upstream("service-a", "/hi_a", policy=Policy(timeout="2s"))])
    consul.kv_put(CONFIG_PREFIX + "service-x", document)
    eventually(lambda: route_timeouts(plane) == {"/hi_a": 2.0}, what="the KV config served")
    consul.kv_put(CONFIG_PREFIX + "service-x", config_document(
        [Upstream("service-a", "/hi_a", policy=Policy(timeout="3s"))]))
    eventually(lambda: route_timeouts(plane) == {"/hi_a": 3.0}, what="the policy change served")


def test_a_bad_kv_document_is_reported_and_the_last_good_one_kept(
        plane: ControlPlane, consul: ConsulEmulator) -> None:
    good = config_document([Upstream("service-a", "/hi_a", policy=Policy(timeout="2s"))])
    consul.kv_put(CONFIG_PREFIX + "service-x", good)
    eventually(lambda: route_timeouts(plane) == {"/hi_a": 2.0}, what="the KV config")
    consul.kv_put(CONFIG_PREFIX + "service-x", b"{\"upstreams\": [{\"service\": 1}]}\xff")
    eventually(lambda: any("config" in p for p in plane.source.problems()),  # type: ignore[union-attr]
               what="the bad document reported")
    assert not plane.healthy()
    assert route_timeouts(plane) == {"/hi_a": 2.0}
    consul.kv_put(CONFIG_PREFIX + "service-x", config_document(
        [Upstream("service-a", "/hi_a", policy=Policy(timeout="4s"))]))
    eventually(lambda: route_timeouts(plane) == {"/hi_a": 4.0}, what="a later good edit applied")
    eventually(plane.healthy, what="healthy again")


@pytest.mark.parametrize(("instance", "problem"), [
    ({"Port": 70000}, "port 70000 is not 1-65535"),
    ({"Weights": {"Passing": 5_000_000_000, "Warning": 1}}, "clamped"),
])
def test_an_instance_envoy_cannot_take_is_skipped_counted_and_later_changes_still_apply(
        plane: ControlPlane, consul: ConsulEmulator, instance: dict[str, Any], problem: str) -> None:
    consul.register_definition({"Name": "service-a", "ID": "bad", "Address": "127.0.0.1",
                                "Port": 7050, **instance})
    eventually(lambda: any(problem in p for p in plane.source.problems()),  # type: ignore[union-attr]
               what="the problem reported")
    assert not plane.healthy()
    register(consul, "service-b", "b2", 7022)
    eventually(lambda: [p for p, _ in ports(plane, "service-b")] == [7002, 7022],
               what="a later change still served")
    consul.deregister("bad")
    eventually(plane.healthy, what="healthy once the bad instance is gone")


def test_malformed_health_answers_are_skipped_and_counted() -> None:
    (endpoints, _), skipped = service_view("s", [None, {"Service": {"ID": "x", "Port": 1.5,
                                                                    "Address": "10.0.0.1"}}])
    assert endpoints == ()
    assert skipped == ["1 entries that are not objects skipped",
                       "instance x: port 1.5 is not 1-65535, skipped"]


def test_a_malformed_consul_address_is_an_xds_error() -> None:
    for address in ("http://[::1", "host:abc", "ftp://host:8500"):
        with pytest.raises(XdsError, match="Consul address"):
            ControlPlane(listen="127.0.0.1:0", consul=address)


class HostileConsul:
    """A Consul that answers `null` catalogs and `[null]` health at first, then good answers."""

    def __init__(self, bad_answers: int, null_reads: int = 0) -> None:
        self.bad_left = {"catalog": bad_answers, "health": bad_answers}
        self.null_reads_left = null_reads  # first reads of service-a's health answered `null`
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kind = "catalog" if self.path.startswith("/v1/catalog/services") else "health"
                bad = hostile.bad_left.get(kind, 0) > 0 and "/v1/kv/" not in self.path
                if bad:
                    hostile.bad_left[kind] -= 1
                if "/v1/kv/" in self.path:
                    status, body = 404, b""
                elif kind == "catalog":
                    status, body = 200, b"null" if bad else b'{"service-x": [], "service-a": []}'
                elif self.path.startswith("/v1/health/service/service-a"):
                    good = b'[{"Node": {"Address": "127.0.0.1"}, "Service": {"ID": "a1", "Port": 7001}}]'
                    status, body = 200, b"[null]" if bad else good
                    if not bad and hostile.null_reads_left > 0:
                        hostile.null_reads_left -= 1
                        body = b"null"
                else:
                    meta = b'{"nomadmesh-upstreams": "service-a=/hi_a"}'
                    status, body = 200, b'[{"Node": {"Address": "127.0.0.1"}, "Service": ' \
                        b'{"ID": "x1", "Port": 7000, "Meta": ' + meta + b"}}]"
                self.send_response(status)
                self.send_header("X-Consul-Index", "7")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_null_catalog_and_null_health_answers_are_retried_until_good() -> None:
    hostile = HostileConsul(bad_answers=3)
    try:
        with ControlPlane(listen="127.0.0.1:0", consul=hostile.address,
                          consul_wait="1s") as plane, watching(plane.port, "service-x"):
            eventually(lambda: ports(plane, "service-a") == [(7001, 1)], what="the good answers")
            assert hostile.bad_left == {"catalog": 0, "health": 0}
            assert plane.metrics.source_errors.labels("consul", "bad_answer")._value.get() >= 2
            eventually(plane.healthy, what="healthy after the good answers")
    finally:
        hostile.close()


def test_a_service_read_that_fails_is_read_again_as_that_service() -> None:
    # A reader retrying a failed health read must read the service again (the retry once went
    # to the node path, with the service's name as a node, and the service was never served).
    hostile = HostileConsul(bad_answers=0, null_reads=2)
    try:
        with ControlPlane(listen="127.0.0.1:0", consul=hostile.address,
                          consul_wait="1s") as plane, watching(plane.port, "service-x"):
            eventually(lambda: ports(plane, "service-a") == [(7001, 1)], what="service-a read")
            assert hostile.null_reads_left == 0
    finally:
        hostile.close()


def _route_timeouts(dump: dict[str, Any]) -> set[str]:
    found = set()
    for config in dump["configs"]:
        for route_config in config.get("dynamic_route_configs", ()):
            for host in route_config["route_config"].get("virtual_hosts", ()):
                found |= {r["route"].get("timeout", "") for r in host["routes"]}
    return found


@pytest.mark.envoy
def test_a_policy_written_to_kv_reaches_the_running_sidecar(meshed: Meshed) -> None:
    envoy = meshed.sidecar.envoy
    assert _route_timeouts(envoy.config_dump()) == {"15s"}
    meshed.consul.kv_put(CONFIG_PREFIX + "service-x", config_document(
        [Upstream("service-a", "/hi_a", policy=Policy(timeout="2s"))]))
    envoy.wait_for(lambda: _route_timeouts(envoy.config_dump()) == {"2s"},
                   what="the new route timeout in Envoy")
    assert meshed.sidecar.answer("/hi_a") == "a1 /hi_a"


def inbound_rbac(plane: ControlPlane, node: str) -> list[str]:
    """The policy names of the inbound listener's RBAC filter, as `node` would get them."""
    from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    snapshot = plane.cache.get(node)
    if snapshot is None or "inbound" not in snapshot.of_type(LISTENER_TYPE):
        return []
    manager = hcm_pb2.HttpConnectionManager()
    listener = snapshot.of_type(LISTENER_TYPE)["inbound"].message
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    rbac = rbac_pb2.RBAC()
    manager.http_filters[0].typed_config.Unpack(rbac)
    return sorted(rbac.rules.policies)


def test_allowed_callers_in_kv_become_the_inbound_rbac_policy(consul: ConsulEmulator) -> None:
    node = node_hash("service-a", {"inbound_port": 3102, "app_port": 8080})
    with ControlPlane(listen="127.0.0.1:0", consul=consul.address) as plane, \
            watching(plane.port, node):
        eventually(lambda: inbound_rbac(plane, node) == ["any-caller"], what="default allow")
        consul.kv_put(CONFIG_PREFIX + "service-a", config_document([], allow=["service-x"]))
        eventually(lambda: inbound_rbac(plane, node) == ["allowed-callers"],
                   what="only service-x allowed")


def test_the_emulator_answers_a_service_whose_instance_came_and_went_between_two_reads() -> None:
    """(The emulator's health listing is updated per instance: one registered and deregistered
    between two reads must not break the next answer, which real Consul gives as usual.)"""
    with ConsulEmulator() as consul:
        consul.register("a", service_id="a-1", address="127.0.0.1", port=1)
        url = f"http://{consul.address}/v1/health/service/a"
        assert requests.get(url, timeout=5).status_code == 200
        consul.register("a", service_id="a-2", address="127.0.0.1", port=2)
        consul.deregister("a-2")
        answer = requests.get(url, timeout=5)
        assert answer.status_code == 200, answer.text
        assert [e["Service"]["ID"] for e in answer.json()] == ["a-1"]
