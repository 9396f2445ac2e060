"""ADS protocol rules, checked with a scripted gRPC client against the real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2

from nomadmesh.contract import node_hash
from nomadmesh.testing.envoy import AdsClient, eventually
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
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from nomadmesh.xds.source import SourceHealth

UPSTREAMS = {
    "service-a": (Upstream("service-b", "/hi_b"), Upstream("service-c", "/hi_c")),
    "service-d": (Upstream("service-c", "/hi_c"),),
}
ENDPOINTS = {
    "service-b": (Endpoint("127.0.0.1", 8001),),
    "service-c": (Endpoint("127.0.0.1", 8002), Endpoint("127.0.0.1", 8003)),
}


def install(
    plane: ControlPlane,
    endpoints: dict[str, tuple[Endpoint, ...]] | None = None,
    upstreams: dict[str, tuple[Upstream, ...]] | None = None,
) -> None:
    state = MeshState(endpoints=endpoints or ENDPOINTS, upstreams=upstreams or UPSTREAMS)
    bound = node_hash("service-a", {"egress_address": "127.0.0.2", "egress_port": 4555})
    nodes = [*state.endpoints, *state.upstreams, bound]
    plane.cache.replace_all(build_snapshots(state, nodes))


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(listen="127.0.0.1:0") as control_plane:
        install(control_plane)
        yield control_plane


@pytest.fixture
def client(plane: ControlPlane) -> Iterator[AdsClient]:
    with AdsClient(plane.port) as ads:
        yield ads


def names(response: object) -> list[str]:
    found = []
    for packed in response.resources:  # type: ignore[attr-defined]
        message = {
            CLUSTER_TYPE: cluster_pb2.Cluster,
            ENDPOINT_TYPE: endpoint_pb2.ClusterLoadAssignment,
            LISTENER_TYPE: listener_pb2.Listener,
            ROUTE_TYPE: route_pb2.RouteConfiguration,
        }[packed.type_url]
        item = message()
        packed.Unpack(item)
        found.append(getattr(item, "cluster_name", "") or item.name)
    return found


def subscribe_all(client: AdsClient) -> dict[str, object]:
    """Walk the stream the way Envoy does: CDS, EDS, LDS, RDS, acknowledging each."""
    client.request(CLUSTER_TYPE)
    cds = client.receive()
    client.ack(cds)
    client.request(ENDPOINT_TYPE, ("service-b", "service-c"))
    eds = client.receive()
    client.ack(eds, ("service-b", "service-c"))
    client.request(LISTENER_TYPE)
    lds = client.receive()
    client.ack(lds)
    client.request(ROUTE_TYPE, ("egress_route",))
    rds = client.receive()
    client.ack(rds, ("egress_route",))
    assert client.pending() == []
    return {"cds": cds, "eds": eds, "lds": lds, "rds": rds}


def test_first_request_gets_the_complete_cluster_set(client: AdsClient) -> None:
    client.request(CLUSTER_TYPE)
    response = client.receive()
    assert response.type_url == CLUSTER_TYPE
    assert sorted(names(response)) == ["service-b", "service-c"]


def test_a_stream_whose_first_request_has_no_node_is_refused(plane: ControlPlane) -> None:
    with AdsClient(plane.port, send_node=False) as client:
        client.request(CLUSTER_TYPE)
        with pytest.raises(AssertionError, match="stream ended"):
            client.receive()
        assert client.error is not None
        assert client.error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_every_response_has_a_fresh_nonce(client: AdsClient) -> None:
    responses = subscribe_all(client)
    nonces = [r.nonce for r in responses.values()]  # type: ignore[attr-defined]
    assert len(set(nonces)) == len(nonces) and all(nonces)


def test_an_ack_gets_no_response(client: AdsClient) -> None:
    client.request(CLUSTER_TYPE)
    client.ack(client.receive())
    assert client.pending() == []


def test_a_request_without_a_nonce_is_a_new_subscription_and_is_answered(
    client: AdsClient,
) -> None:
    client.request(CLUSTER_TYPE)
    first = client.receive()
    client.request(CLUSTER_TYPE)
    again = client.receive()
    assert again.version_info == first.version_info
    assert again.nonce != first.nonce


def test_a_request_with_a_stale_nonce_is_ignored(client: AdsClient, plane: ControlPlane) -> None:
    responses = subscribe_all(client)
    install(plane, endpoints={**ENDPOINTS, "service-b": (Endpoint("127.0.0.1", 9001),)})
    client.receive()  # the new service-b assignment
    client.request(ENDPOINT_TYPE, ("service-b",), nonce=responses["eds"].nonce)  # type: ignore[attr-defined]
    assert client.pending() == []
    assert plane.metrics.stale_requests._value.get() == 1


def test_requested_names_that_do_not_exist_yet_are_sent_when_they_appear(
    client: AdsClient, plane: ControlPlane
) -> None:
    client.request(ENDPOINT_TYPE, ("service-x",))
    assert client.pending() == []
    install(
        plane,
        endpoints={**ENDPOINTS, "service-x": (Endpoint("127.0.0.1", 8009),)},
        upstreams={**UPSTREAMS, "service-a": (Upstream("service-x", "/x"),)},
    )
    assert names(client.receive()) == ["service-x"]


def test_a_nack_is_counted_and_the_rejected_version_is_not_sent_again(
    client: AdsClient, plane: ControlPlane
) -> None:
    client.request(CLUSTER_TYPE)
    cds = client.receive()
    client.nack(cds, "Proto constraint validation failed")
    assert client.pending() == []
    assert plane.metrics.nacks.labels(CLUSTER_TYPE)._value.get() == 1


def test_a_nack_is_logged_with_envoys_error_text(
    client: AdsClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.request(CLUSTER_TYPE)
    client.nack(client.receive(), "Proto constraint validation failed: connect_timeout")
    eventually(lambda: "NACK" in caplog.text, timeout=2, what="the NACK log line")
    assert "error=Proto constraint validation failed: connect_timeout" in caplog.text
    assert "cluster=service-a" in caplog.text


def test_after_a_nack_a_new_version_is_sent(client: AdsClient, plane: ControlPlane) -> None:
    client.request(CLUSTER_TYPE)
    cds = client.receive()
    client.nack(cds, "rejected")
    install(plane, upstreams={**UPSTREAMS, "service-a": (Upstream("service-b", "/hi_b"),)})
    responses = client.pending(1.0)
    assert [names(r) for r in responses if r.type_url == CLUSTER_TYPE][-1] == ["service-b"]


def snapshot(version: str, port: int, services: tuple[str, ...]) -> Snapshot:
    upstreams = [Upstream(name, f"/{name}") for name in services]
    items = [
        Resource.of(resources.egress_listener(port=port)),
        Resource.of(resources.egress_route(upstreams)),
    ]
    for name in services:
        items.append(Resource.of(resources.eds_cluster(name)))
        endpoint = Endpoint("127.0.0.1", port + 1)
        items.append(Resource.of(resources.load_assignment(name, [endpoint])))
    return Snapshot.of(items, version=version)


def test_one_change_is_pushed_clusters_then_endpoints_then_listeners_then_routes(
    plane: ControlPlane,
) -> None:
    plane.cache.set_snapshot("service-z", snapshot("1", 3101, ("service-b",)))
    with AdsClient(plane.port, cluster="service-z") as client:
        for type_url, subscribed in (
            (CLUSTER_TYPE, ()),
            (ENDPOINT_TYPE, ("service-b", "service-c")),
            (LISTENER_TYPE, ()),
            (ROUTE_TYPE, ("egress_route",)),
        ):
            client.request(type_url, subscribed)
            client.ack(client.receive(), subscribed)
        plane.cache.set_snapshot("service-z", snapshot("2", 3201, ("service-b", "service-c")))
        order = [r.type_url for r in client.pending(1.0)]
    assert order == [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]


def test_removed_clusters_go_last_after_the_routes_that_stop_using_them(
    client: AdsClient, plane: ControlPlane
) -> None:
    subscribe_all(client)
    install(plane, upstreams={**UPSTREAMS, "service-a": (Upstream("service-b", "/hi_b"),)})
    responses = client.pending(1.0)
    order = [(r.type_url, sorted(names(r))) for r in responses if r.type_url != ENDPOINT_TYPE]
    assert order == [(ROUTE_TYPE, ["egress_route"]), (CLUSTER_TYPE, ["service-b"])]


def test_one_endpoint_change_resends_only_that_clusters_assignment(
    client: AdsClient, plane: ControlPlane
) -> None:
    subscribe_all(client)
    install(plane, endpoints={**ENDPOINTS, "service-b": (Endpoint("127.0.0.1", 9001),)})
    responses = client.pending(1.0)
    assert [(r.type_url, names(r)) for r in responses] == [(ENDPOINT_TYPE, ["service-b"])]


def test_an_endpoint_change_reaches_only_envoys_that_use_the_cluster(plane: ControlPlane) -> None:
    with AdsClient(plane.port, cluster="service-d") as other, AdsClient(plane.port) as client:
        subscribe_all(client)
        other.request(CLUSTER_TYPE)
        other.ack(other.receive())
        other.request(ENDPOINT_TYPE, ("service-c",))
        other.ack(other.receive(), ("service-c",))
        install(plane, endpoints={**ENDPOINTS, "service-b": (Endpoint("127.0.0.1", 9001),)})
        assert [names(r) for r in client.pending(0.5)] == [["service-b"]]
        assert other.pending(0.2) == []


def test_the_egress_listener_binds_where_node_metadata_says(plane: ControlPlane) -> None:
    metadata = {"egress_address": "127.0.0.2", "egress_port": 4555}
    with AdsClient(plane.port, metadata=metadata) as client:
        client.request(LISTENER_TYPE)
        listener = listener_pb2.Listener()
        client.receive().resources[0].Unpack(listener)
    address = listener.address.socket_address
    assert (address.address, address.port_value) == ("127.0.0.2", 4555)


def test_cluster_version_does_not_change_when_only_endpoints_change(
    client: AdsClient, plane: ControlPlane
) -> None:
    responses = subscribe_all(client)
    install(plane, endpoints={**ENDPOINTS, "service-c": (Endpoint("127.0.0.1", 9002),)})
    eds = client.receive()
    assert eds.type_url == ENDPOINT_TYPE
    assert eds.version_info != responses["eds"].version_info  # type: ignore[attr-defined]
    assert client.pending() == []


def test_unsubscribed_then_resubscribed_names_are_sent_again(client: AdsClient) -> None:
    responses = subscribe_all(client)
    eds = responses["eds"]
    client.request(ENDPOINT_TYPE, ("service-c",), nonce=eds.nonce)  # type: ignore[attr-defined]
    assert client.pending() == []
    client.request(ENDPOINT_TYPE, ("service-b", "service-c"), nonce=eds.nonce)  # type: ignore[attr-defined]
    assert [names(r) for r in client.pending()] == [["service-b"]]


def test_a_closed_stream_leaves_no_watch_and_no_connected_proxy(plane: ControlPlane) -> None:
    with AdsClient(plane.port) as client:
        client.request(CLUSTER_TYPE)
        client.receive()
        assert plane.metrics.connected_proxies._value.get() == 1
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and plane.cache.watcher_count():
        time.sleep(0.02)
    assert plane.cache.watcher_count() == 0
    assert plane.metrics.connected_proxies._value.get() == 0


def test_a_hundred_streams_connect_and_disconnect_repeatedly_without_leaks(
    plane: ControlPlane,
) -> None:
    threads_before = threading.active_count()
    for _ in range(3):
        clients = [AdsClient(plane.port, node_id=f"n{i}") for i in range(100)]
        for client in clients:
            client.request(CLUSTER_TYPE)
        for client in clients:
            assert sorted(names(client.receive())) == ["service-b", "service-c"]
        for client in clients:
            client.close()

    def readers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "nomadmesh-xds-reader"]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        plane.cache.watcher_count() or plane.metrics.connected_proxies._value.get() or readers()
    ):
        time.sleep(0.05)
    assert plane.cache.watcher_count() == 0
    assert plane.metrics.connected_proxies._value.get() == 0
    # Idle pool workers may linger; stream readers and client threads must not.
    assert readers() == []
    assert threading.active_count() <= threads_before + 120


def raw_stream(port: int, messages: list[bytes], timeout: float = 10) -> grpc.RpcError:
    """Send raw bytes as gRPC messages on an ADS stream; the error the server ends it with."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        method = channel.stream_stream(
            "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
            request_serializer=None, response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as ended:
            list(method(iter(messages), timeout=timeout))
    return ended.value


def test_a_response_is_exactly_what_protobuf_would_encode() -> None:
    from envoy.service.discovery.v3 import discovery_pb2

    from nomadmesh.xds.cache import Response
    from nomadmesh.xds.server import encode_response

    items = (Resource.of(resources.eds_cluster("a")), Resource.of(resources.eds_cluster("b")))
    control_plane = discovery_pb2.DiscoveryResponse(control_plane={"identifier": "x"})
    wire = encode_response(
        Response(CLUSTER_TYPE, "v1", items), "7", control_plane.SerializeToString()
    )
    decoded = discovery_pb2.DiscoveryResponse.FromString(wire)
    expected = discovery_pb2.DiscoveryResponse(
        version_info="v1", type_url=CLUSTER_TYPE, nonce="7", control_plane={"identifier": "x"}
    )
    for item in items:
        expected.resources.add().Pack(item.message)
    assert decoded == expected


def test_a_message_that_is_not_a_discovery_request_ends_that_stream_only(
    plane: ControlPlane, client: AdsClient
) -> None:
    ended = raw_stream(plane.port, [b"\xff\xff\xff\xff\x0fnot a request"])
    assert ended.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a DiscoveryRequest" in (ended.details() or "")
    client.request(CLUSTER_TYPE)
    assert sorted(names(client.receive())) == ["service-b", "service-c"]
    assert plane.metrics.streams_refused.labels("bad_request")._value.get() == 1


def test_garbage_after_the_first_request_ends_the_stream_with_invalid_argument(
    plane: ControlPlane,
) -> None:
    from envoy.service.discovery.v3 import discovery_pb2

    first = discovery_pb2.DiscoveryRequest(type_url="unknown", node={"cluster": "service-a"})
    ended = raw_stream(plane.port, [first.SerializeToString(), b"\x0a\xff\xff"])
    assert ended.code() == grpc.StatusCode.INVALID_ARGUMENT
    eventually(lambda: plane.cache.watcher_count() == 0, timeout=5, what="the watch closed")


def test_a_stream_that_never_sends_a_request_is_ended_after_the_identify_timeout() -> None:
    from nomadmesh.testing.ads import SilentStreams

    with ControlPlane(listen="127.0.0.1:0", identify_timeout=0.3) as plane:
        with SilentStreams(plane.port, 3) as silent:
            eventually(lambda: None not in silent.codes(), timeout=10, what="the streams to end")
            assert set(silent.codes()) == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert plane.metrics.streams_refused.labels("identify_timeout")._value.get() == 3


def test_past_the_bound_the_oldest_silent_stream_makes_room() -> None:
    from nomadmesh.testing.ads import SilentStreams

    with ControlPlane(listen="127.0.0.1:0", max_unidentified=5) as plane:
        install(plane)
        with SilentStreams(plane.port, 8) as silent:
            eventually(
                lambda: silent.codes().count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 3,
                timeout=10, what="three evictions",
            )
            assert plane.metrics.unidentified_streams._value.get() == 5
            with AdsClient(plane.port) as client:
                client.request(CLUSTER_TYPE)
                assert sorted(names(client.receive())) == ["service-b", "service-c"]


def test_a_first_request_carrying_another_replicas_nonce_is_answered(client: AdsClient) -> None:
    client.request(CLUSTER_TYPE, version="0123456789abcdef", nonce="42")
    assert sorted(names(client.receive())) == ["service-b", "service-c"]


def test_the_same_state_gets_the_same_versions_from_two_control_planes() -> None:
    with ControlPlane(listen="127.0.0.1:0") as one, ControlPlane(listen="127.0.0.1:0") as two:
        install(one)
        install(two)
        versions = []
        for plane in (one, two):
            with AdsClient(plane.port) as client:
                versions.append([r.version_info for r in subscribe_all(client).values()])  # type: ignore[attr-defined]
    assert versions[0] == versions[1]


def test_a_node_whose_metadata_the_node_hash_refuses_is_refused(plane: ControlPlane) -> None:
    with AdsClient(plane.port, metadata={"egress_port": "eighty"}) as client:
        client.request(CLUSTER_TYPE)
        with pytest.raises(AssertionError, match="stream ended"):
            client.receive()
    assert client.error is not None and client.error.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.envoy
def test_1100_streams_that_never_send_a_request_do_not_starve_a_real_sidecar() -> None:
    from nomadmesh.testing.ads import SilentStreams
    from nomadmesh.testing.envoy import HttpBackend, Sidecar

    with (
        HttpBackend("a1") as backend,
        ControlPlane(listen="127.0.0.1:0", identify_timeout=300) as plane,
    ):
        state = MeshState(
            endpoints={"service-a": (Endpoint("127.0.0.1", backend.port),)},
            upstreams={"service-x": (Upstream("service-a", "/hi_a"),)},
        )
        sidecar = Sidecar(plane.port, "service-x")
        plane.cache.replace_all(build_snapshots(state, [sidecar.node_hash]))
        with SilentStreams(plane.port, 1100) as silent:
            eventually(lambda: plane.metrics.unidentified_streams._value.get() == 1024,
                       timeout=30, what="1,024 silent streams held (the bound)")
            with sidecar:
                sidecar.envoy.wait_for(lambda: sidecar.answer("/hi_a").startswith("a1"),
                                       timeout=20, what="the sidecar's route to service-a")
            # The silent streams were bounded, not timed out: the sidecar got in beside them.
            assert silent.codes().count(None) >= 1000


class Failing:
    """A source whose health says what is wrong."""

    def __init__(self) -> None:
        self.problems = ("consul health:web: [null] entry skipped (3 times)",)

    def start(self) -> None:
        """Nothing to load."""

    def stop(self) -> None:
        """Nothing to stop."""

    def health(self) -> SourceHealth:
        return SourceHealth(ok=not self.problems, problems=self.problems)


def test_healthz_answers_503_with_each_source_problem_and_200_once_they_are_gone() -> None:
    import requests

    failing = Failing()
    with ControlPlane(listen="127.0.0.1:0", metrics="127.0.0.1:0",
                      source=lambda cache, metrics: failing) as plane:
        url = f"http://127.0.0.1:{plane.metrics_port}/healthz"
        answer = requests.get(url, timeout=5)
        assert (answer.status_code, answer.text) == (
            503, "unhealthy\nconsul health:web: [null] entry skipped (3 times)\n")
        failing.problems = ()
        answer = requests.get(url, timeout=5)
        assert (answer.status_code, answer.text) == (200, "ok\n")
    assert plane.health() == SourceHealth(ok=False, problems=("not serving",))


def test_a_listen_port_outside_the_port_range_is_an_xds_error() -> None:
    from nomadmesh.errors import XdsError

    with pytest.raises(XdsError, match="port 99999 is outside 0-65535"):
        ControlPlane(listen="127.0.0.1:99999")
