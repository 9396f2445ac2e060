"""Snapshot building and the snapshot cache, without any network."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import health_check_pb2

from nomadmesh.errors import XdsError
from nomadmesh.xds import (
    Endpoint,
    MeshState,
    Resource,
    Snapshot,
    SnapshotCache,
    Upstream,
    build_snapshots,
    parse_upstreams,
    resources,
)
from nomadmesh.xds.build import ResourceMemo
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE

STATE = MeshState(
    endpoints={
        "service-a": (Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80, health="warning", weight=3)),
        "service-b": (Endpoint("10.0.0.3", 80, health="critical"),),
    },
    upstreams={"service-x": (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))},
)


def test_parse_upstreams_reads_the_meta_text_form() -> None:
    assert parse_upstreams("service-a=/hi_a, service-b=/hi_b") == (
        Upstream("service-a", "/hi_a"),
        Upstream("service-b", "/hi_b"),
    )


def test_parse_upstreams_refuses_an_entry_without_a_path() -> None:
    with pytest.raises(XdsError, match="'service-a' is not of the form service=/prefix"):
        parse_upstreams("service-a")


def test_a_node_gets_listener_route_and_one_cluster_and_assignment_per_upstream() -> None:
    snapshot = build_snapshots(STATE, "1")["service-x"]
    assert list(snapshot.of_type(LISTENER_TYPE)) == ["egress"]
    assert list(snapshot.of_type(ROUTE_TYPE)) == ["egress_route"]
    assert sorted(snapshot.of_type(CLUSTER_TYPE)) == ["service-a", "service-b"]
    assert sorted(snapshot.of_type(ENDPOINT_TYPE)) == ["service-a", "service-b"]


def test_a_service_without_upstreams_still_gets_its_egress_listener() -> None:
    snapshot = build_snapshots(STATE, "1")["service-a"]
    assert list(snapshot.of_type(LISTENER_TYPE)) == ["egress"]
    assert not snapshot.of_type(CLUSTER_TYPE)


def test_longer_prefixes_are_matched_first() -> None:
    route = resources.egress_route([Upstream("a", "/hi"), Upstream("b", "/hi_b")])
    assert [r.match.prefix for r in route.virtual_hosts[0].routes] == ["/hi_b", "/hi"]


def test_routes_forward_the_path_unchanged() -> None:
    route = resources.egress_route([Upstream("service-a", "/hi_a")]).virtual_hosts[0].routes[0]
    assert route.route.cluster == "service-a"
    assert not route.route.prefix_rewrite


def test_warning_endpoints_keep_their_weight_and_critical_ones_are_unhealthy() -> None:
    assignment = build_snapshots(STATE, "1")["service-x"].of_type(ENDPOINT_TYPE)
    a = assignment["service-a"].message.endpoints[0].lb_endpoints
    b = assignment["service-b"].message.endpoints[0].lb_endpoints
    assert [e.load_balancing_weight.value for e in a] == [1, 3]
    assert [e.health_status for e in a] == [health_check_pb2.HEALTHY] * 2
    assert [e.health_status for e in b] == [health_check_pb2.UNHEALTHY]


def test_clusters_never_panic_route_to_unhealthy_endpoints() -> None:
    cluster = resources.eds_cluster("service-a")
    assert cluster.common_lb_config.healthy_panic_threshold.value == 0


def test_the_same_content_gets_the_same_version() -> None:
    first = build_snapshots(STATE, "1")["service-x"]
    second = build_snapshots(STATE, "2")["service-x"]
    assert all(
        first.type_version(t) == second.type_version(t)
        for t in (LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE)
    )


def test_a_rebuild_with_a_memo_reuses_unchanged_resources() -> None:
    memo = ResourceMemo()
    first = build_snapshots(STATE, "1", memo=memo)["service-x"]
    endpoints = {**STATE.endpoints, "service-b": (Endpoint("10.0.0.9", 80),)}
    second = build_snapshots(MeshState(endpoints, STATE.upstreams), "2", memo=memo)["service-x"]
    assert second.of_type(ENDPOINT_TYPE)["service-a"] is first.of_type(ENDPOINT_TYPE)["service-a"]
    assert second.of_type(ENDPOINT_TYPE)["service-b"] is not first.of_type(ENDPOINT_TYPE)["service-b"]


def test_a_route_to_a_missing_cluster_is_inconsistent() -> None:
    snapshot = Snapshot.of([Resource.of(resources.egress_route([Upstream("service-a", "/hi_a")]))])
    with pytest.raises(XdsError, match="routes to cluster 'service-a', which does not exist"):
        snapshot.check()


def test_an_eds_cluster_without_an_assignment_is_inconsistent() -> None:
    snapshot = Snapshot.of([Resource.of(resources.eds_cluster("service-a"))])
    with pytest.raises(XdsError, match="EDS cluster 'service-a' has no ClusterLoadAssignment"):
        snapshot.check()


def test_a_listener_whose_route_configuration_is_missing_is_inconsistent() -> None:
    snapshot = Snapshot.of([Resource.of(resources.egress_listener())])
    with pytest.raises(XdsError, match="uses route configuration 'egress_route'"):
        snapshot.check()


def test_the_cache_refuses_an_inconsistent_snapshot_and_keeps_the_old_one() -> None:
    cache = SnapshotCache()
    good = build_snapshots(STATE, "1")["service-x"]
    cache.set_snapshot("service-x", good)
    with pytest.raises(XdsError):
        cache.set_snapshot("service-x", Snapshot.of([Resource.of(resources.egress_listener())]))
    assert cache.get("service-x") is good


def test_a_rebuild_keeps_the_snapshot_of_nodes_that_see_no_change() -> None:
    memo = ResourceMemo()
    state = MeshState(
        endpoints=STATE.endpoints,
        upstreams={**STATE.upstreams, "service-y": (Upstream("service-b", "/hi_b"),)},
    )
    first = build_snapshots(state, "1", memo=memo)
    flipped = {**STATE.endpoints, "service-a": (Endpoint("10.0.0.1", 80, health="critical"),)}
    second = build_snapshots(MeshState(flipped, state.upstreams), "2", memo=memo)
    assert second["service-y"] is first["service-y"]
    assert second["service-x"] is not first["service-x"]
