"""Snapshot building: what each sidecar gets, per node hash, and what a change rebuilds."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import health_check_pb2

from nomadmesh.contract import (
    DEFAULT_POLICY,
    CircuitBreakers,
    HeaderMatch,
    Policy,
    RateLimit,
    Retries,
    Split,
    node_hash,
    parse_upstreams,
)
from nomadmesh.errors import XdsError
from nomadmesh.xds import Endpoint, MeshState, Resource, Snapshot, Upstream, build_snapshots, resources
from nomadmesh.xds.build import SnapshotBuilder
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE

STATE = MeshState(
    endpoints={
        "service-a": (Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80, health="warning", weight=3)),
        "service-b": (Endpoint("10.0.0.3", 80, health="critical"),),
    },
    upstreams={"service-x": (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))},
)
X = node_hash("service-x", {"egress_address": "127.0.0.1", "egress_port": 3101})


def test_parse_upstreams_reads_the_short_form() -> None:
    found, problems = parse_upstreams("service-a=/hi_a, service-b=/hi_b", "meta")
    assert found == (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b"))
    assert problems == []


def test_parse_upstreams_refuses_an_entry_without_a_path() -> None:
    _, problems = parse_upstreams("service-a", "meta")
    assert [p.message for p in problems] == [
        "upstream 'service-a' is not of the form service=/prefix "
        "(e.g. 'service-a=/hi_a,service-b=/hi_b')"]


def test_a_node_gets_listener_route_and_one_cluster_and_assignment_per_upstream() -> None:
    snapshot = build_snapshots(STATE, [X])[X]
    assert list(snapshot.of_type(LISTENER_TYPE)) == ["egress"]
    assert list(snapshot.of_type(ROUTE_TYPE)) == ["egress_route"]
    assert sorted(snapshot.of_type(CLUSTER_TYPE)) == ["service-a", "service-b"]
    assert sorted(snapshot.of_type(ENDPOINT_TYPE)) == ["service-a", "service-b"]


def test_the_egress_listener_binds_where_the_node_hash_says() -> None:
    other = node_hash("service-x", {"egress_address": "10.1.2.3", "egress_port": 20001})
    snapshots = build_snapshots(STATE, [X, other])
    bound = [snapshots[h].of_type(LISTENER_TYPE)["egress"].message.address.socket_address
             for h in (X, other)]
    assert [(a.address, a.port_value) for a in bound] == [("127.0.0.1", 3101), ("10.1.2.3", 20001)]
    # Everything but the listener is shared between the two sidecars.
    assert snapshots[X].of_type(CLUSTER_TYPE)["service-a"] is snapshots[other].of_type(
        CLUSTER_TYPE)["service-a"]


def test_a_bare_cluster_name_gets_the_default_egress_binding() -> None:
    listener = build_snapshots(STATE)["service-x"].of_type(LISTENER_TYPE)["egress"].message
    assert (listener.address.socket_address.address,
            listener.address.socket_address.port_value) == ("0.0.0.0", 3101)


def test_a_node_of_an_unknown_service_gets_no_snapshot() -> None:
    assert build_snapshots(STATE, ["nobody"]) == {}


def test_a_service_without_upstreams_still_gets_its_egress_listener() -> None:
    snapshot = build_snapshots(STATE, ["service-a"])["service-a"]
    assert list(snapshot.of_type(LISTENER_TYPE)) == ["egress"]
    assert not snapshot.of_type(CLUSTER_TYPE)


def test_longer_prefixes_are_matched_first() -> None:
    route = resources.egress_route([Upstream("a", "/hi"), Upstream("b", "/hi_b")])
    assert [r.match.prefix for r in route.virtual_hosts[0].routes if not r.match.headers] == [
        "/hi_b", "/hi"]


def test_routes_forward_the_path_unchanged_unless_a_rewrite_is_set() -> None:
    plain, rewritten = (r for r in resources.egress_route([
        Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b", rewrite="/")
    ]).virtual_hosts[0].routes if not r.match.headers)
    assert (plain.route.cluster, plain.route.prefix_rewrite) == ("service-a", "")
    assert (rewritten.route.cluster, rewritten.route.prefix_rewrite) == ("service-b", "/")


def test_by_default_idempotent_methods_retry_more_than_others() -> None:
    idempotent, other = resources.egress_route([Upstream("service-a", "/")]).virtual_hosts[0].routes
    assert idempotent.match.headers[0].string_match.safe_regex.regex == (
        "^(GET|HEAD|OPTIONS|PUT|DELETE|TRACE)$")
    assert idempotent.route.retry_policy.retry_on == "connect-failure,refused-stream,reset,gateway-error"
    assert not other.match.headers
    assert other.route.retry_policy.retry_on == "connect-failure,refused-stream"
    for route in (idempotent, other):
        assert route.route.retry_policy.num_retries.value == 2
        assert route.route.retry_policy.retry_host_predicate[0].name == (
            "envoy.retry_host_predicates.previous_hosts")
        assert route.route.timeout.seconds == 15


def test_retries_for_every_method_when_asked() -> None:
    upstream = Upstream("service-a", "/", policy=Policy(retries=Retries(
        retry_on=("5xx",), attempts=4, per_try_timeout="250ms", idempotent_only=False)))
    (route,) = resources.egress_route([upstream]).virtual_hosts[0].routes
    assert route.route.retry_policy.retry_on == "5xx"
    assert route.route.retry_policy.num_retries.value == 4
    assert route.route.retry_policy.per_try_timeout.nanos == 250_000_000


def test_header_and_method_matches_and_a_rate_limit_are_on_the_route() -> None:
    upstream = Upstream("service-a", "/api", methods=["POST"],
                        headers=[HeaderMatch(name="x-canary", exact="1")],
                        policy=Policy(rate_limit=RateLimit(requests=5, per="1s")))
    route = resources.egress_route([upstream]).virtual_hosts[0].routes[-1]
    assert [h.name for h in route.match.headers] == [":method", "x-canary"]
    assert route.match.headers[1].string_match.exact == "1"
    assert resources.RATE_LIMIT_FILTER in route.typed_per_filter_config


def test_a_split_is_a_weighted_route_over_tag_subsets() -> None:
    state = MeshState(
        endpoints={"api": (Endpoint("10.0.0.1", 80, tags=("canary",)), Endpoint("10.0.0.2", 80))},
        upstreams={"web": (Upstream("api", "/", split=[Split(weight=5, tag="canary"),
                                                      Split(weight=95)]),)},
    )
    snapshot = build_snapshots(state, ["web"])["web"]
    routes = snapshot.of_type(ROUTE_TYPE)["egress_route"].message.virtual_hosts[0].routes
    weighted = routes[0].route.weighted_clusters.clusters
    assert [(c.name, c.weight.value) for c in weighted] == [("api[tag=canary]", 5),
                                                            ("api[not=canary]", 95)]
    assignments = snapshot.of_type(ENDPOINT_TYPE)
    canary = assignments["api[tag=canary]"].message.endpoints[0].lb_endpoints
    rest = assignments["api[not=canary]"].message.endpoints[0].lb_endpoints
    assert [e.endpoint.address.socket_address.address for e in canary] == ["10.0.0.1"]
    assert [e.endpoint.address.socket_address.address for e in rest] == ["10.0.0.2"]
    snapshot.check()


def test_default_clusters_eject_failing_hosts_and_budget_their_retries() -> None:
    cluster = resources.eds_cluster("service-a")
    assert cluster.connect_timeout.seconds == 1
    assert cluster.outlier_detection.consecutive_gateway_failure.value == 3
    assert cluster.outlier_detection.enforcing_consecutive_gateway_failure.value == 100
    assert cluster.outlier_detection.always_eject_one_host.value
    budget = cluster.circuit_breakers.thresholds[0].retry_budget
    assert (budget.budget_percent.value, budget.min_retry_concurrency.value) == (20.0, 10)


def test_a_caller_with_its_own_cluster_policy_gets_its_own_cluster_on_the_same_endpoints() -> None:
    strict = Policy(circuit_breakers=CircuitBreakers(max_requests=10))
    state = MeshState(endpoints=STATE.endpoints, upstreams={
        "x": (Upstream("service-a", "/a"),),
        "y": (Upstream("service-a", "/a", policy=strict),),
    })
    snapshots = build_snapshots(state, ["x", "y"])
    (plain,) = snapshots["x"].of_type(CLUSTER_TYPE).values()
    (own,) = snapshots["y"].of_type(CLUSTER_TYPE).values()
    assert plain.name == "service-a"
    assert own.name.startswith("service-a~")
    assert own.message.eds_cluster_config.service_name == "service-a"
    assert own.message.circuit_breakers.thresholds[0].max_requests.value == 10
    assert snapshots["y"].of_type(ENDPOINT_TYPE)["service-a"] is snapshots["x"].of_type(
        ENDPOINT_TYPE)["service-a"]


def test_warning_endpoints_keep_their_weight_and_critical_ones_are_unhealthy() -> None:
    assignment = build_snapshots(STATE, [X])[X].of_type(ENDPOINT_TYPE)
    a = assignment["service-a"].message.endpoints[0].lb_endpoints
    b = assignment["service-b"].message.endpoints[0].lb_endpoints
    assert [e.load_balancing_weight.value for e in a] == [1, 3]
    assert [e.health_status for e in a] == [health_check_pb2.HEALTHY] * 2
    assert [e.health_status for e in b] == [health_check_pb2.UNHEALTHY]


def test_clusters_never_panic_route_to_unhealthy_endpoints() -> None:
    cluster = resources.eds_cluster("service-a")
    assert cluster.common_lb_config.healthy_panic_threshold.value == 0


def test_the_same_state_gets_the_same_versions_in_another_builder() -> None:
    # Two control plane replicas that see the same state serve the same versions.
    first = build_snapshots(STATE, [X])[X]
    second = build_snapshots(STATE, [X])[X]
    assert first.version == second.version
    assert all(first.type_version(t) == second.type_version(t)
               for t in (LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE))


def test_an_endpoint_change_replaces_one_shared_assignment_and_rebuilds_no_snapshot() -> None:
    builder = SnapshotBuilder()
    builder.load(MeshState(STATE.endpoints, {**STATE.upstreams,
                                             "service-y": (Upstream("service-a", "/hi_a"),)}))
    for name in (X, "service-y", "service-a"):
        builder.add_node(name)
    first = builder.build().snapshots
    assert sorted(first) == sorted([X, "service-y", "service-a"])
    old_a = first[X].of_type(ENDPOINT_TYPE)["service-a"]
    old_b = first[X].of_type(ENDPOINT_TYPE)["service-b"]
    builder.set_service("service-a", (Endpoint("10.0.0.1", 80, health="critical"),))
    assert builder.build() == ({}, [], ["service-a"])
    # Both snapshots that route to service-a serve the new assignment; the other is the same.
    new_a = builder.assignments.get("service-a")
    assert new_a is not None and new_a is not old_a
    assert first[X].of_type(ENDPOINT_TYPE)["service-a"] is new_a
    assert first["service-y"].of_type(ENDPOINT_TYPE)["service-a"] is new_a
    assert first[X].of_type(ENDPOINT_TYPE)["service-b"] is old_b
    assert first[X].type_version(ENDPOINT_TYPE) != build_snapshots(STATE, [X])[X].type_version(
        ENDPOINT_TYPE)


def test_an_assignment_no_snapshot_names_any_more_is_dropped() -> None:
    builder = SnapshotBuilder()
    builder.load(STATE)
    builder.add_node(X)
    builder.build()
    assert "service-b" in builder.assignments
    builder.set_upstreams("service-x", (Upstream("service-a", "/hi_a"),))
    builder.build()
    builder.build()  # unused assignments go at the next build, after the cache installed
    assert "service-b" not in builder.assignments
    assert "service-a" in builder.assignments
    builder.set_service("service-b", (Endpoint("10.0.0.7", 80),))
    assert builder.build().shared == []  # no snapshot names it: nothing to push


def test_a_build_without_changes_returns_nothing() -> None:
    builder = SnapshotBuilder()
    builder.load(STATE)
    builder.add_node(X)
    builder.build()
    builder.set_service("service-a", STATE.endpoints["service-a"])
    assert builder.build() == ({}, [], [])


def test_a_node_that_leaves_and_a_service_that_leaves_are_removed() -> None:
    builder = SnapshotBuilder()
    builder.load(STATE)
    builder.add_node(X)
    builder.add_node("service-a")
    builder.build()
    builder.remove_node("service-a")
    assert builder.build() == ({}, ["service-a"], [])
    builder.remove_service("service-x")
    assert builder.build() == ({}, [X], [])


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


def test_the_default_policy_is_valid() -> None:
    assert list(DEFAULT_POLICY.problems("policy")) == []
