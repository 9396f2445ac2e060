"""The snapshot cache and its watches, without any network: what each stream is due, and when."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from nomadmesh.errors import XdsError
from nomadmesh.xds import Endpoint, MeshState, Resource, Snapshot, SnapshotCache, Upstream, resources
from nomadmesh.xds.build import build_snapshots
from nomadmesh.xds.cache import Response, Watch
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE

T = TypeVar("T")
STATE = MeshState(
    endpoints={"service-a": (Endpoint("10.0.0.1", 80),), "service-b": (Endpoint("10.0.0.2", 80),)},
    upstreams={
        "service-x": (Upstream("service-a", "/hi_a"), Upstream("service-b", "/hi_b")),
        "service-y": (Upstream("service-b", "/hi_b"),),
    },
)


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


def with_endpoint(service: str, port: int) -> MeshState:
    return MeshState(endpoints={**STATE.endpoints, service: (Endpoint("10.0.0.9", port),)},
                     upstreams=STATE.upstreams)


def subscribe(watch: Watch) -> list[Response]:
    sent = []
    for type_url, names in (
        (CLUSTER_TYPE, ()),
        (ENDPOINT_TYPE, ("service-a", "service-b")),
        (LISTENER_TYPE, ()),
        (ROUTE_TYPE, ("egress_route",)),
    ):
        sent += watch.request(type_url, names, initial=True)
    return sent


def summary(responses: list[Response]) -> list[tuple[str, list[str]]]:
    return [(r.type_url.rsplit(".", 1)[-1], [i.name for i in r.resources]) for r in responses]


def test_only_the_watches_of_a_changed_node_hash_are_woken() -> None:
    async def body() -> list[str]:
        cache = SnapshotCache()
        snapshots = build_snapshots(STATE)
        cache.replace_all(snapshots)
        heard: list[str] = []
        cache.open_watch("service-x", lambda: heard.append("x"))
        cache.open_watch("service-y", lambda: heard.append("y"))
        cache.set_snapshots({"service-x": build_snapshots(with_endpoint("service-a", 81))["service-x"]})
        await asyncio.sleep(0)
        return heard

    assert run(body) == ["x"]


def test_installing_the_same_snapshot_object_wakes_nobody() -> None:
    async def body() -> list[str]:
        cache = SnapshotCache()
        snapshots = build_snapshots(STATE)
        cache.replace_all(snapshots)
        heard: list[str] = []
        cache.open_watch("service-x", lambda: heard.append("x"))
        cache.set_snapshots(snapshots)
        await asyncio.sleep(0)
        return heard

    assert run(body) == []


def test_a_closed_watch_hears_nothing_and_leaves_no_trace() -> None:
    async def body() -> list[str]:
        cache = SnapshotCache()
        heard: list[str] = []
        cache.open_watch("service-x", lambda: heard.append("x")).close()
        cache.set_snapshot("service-x", Snapshot.empty())
        await asyncio.sleep(0)
        assert cache.watcher_count() == 0 and cache.watched() == set()
        return heard

    assert run(body) == []


def test_a_change_from_another_thread_wakes_the_watch_on_its_own_loop() -> None:
    async def body() -> bool:
        cache = SnapshotCache()
        loop_thread = threading.get_ident()
        woken: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        cache.open_watch("service-x", lambda: woken.set_result(threading.get_ident()))
        setter = threading.Thread(target=cache.set_snapshot, args=("service-x", Snapshot.empty()))
        setter.start()
        woken_on = await asyncio.wait_for(woken, timeout=5)
        setter.join()
        return woken_on == loop_thread

    assert run(body)


def test_an_inconsistent_snapshot_installs_nothing_of_the_same_call() -> None:
    cache = SnapshotCache()
    good = build_snapshots(STATE)
    cache.replace_all(good)
    broken = Snapshot.of([Resource.of(resources.egress_listener())])
    with pytest.raises(XdsError, match="uses route configuration 'egress_route'"):
        cache.set_snapshots({"service-y": Snapshot.empty(), "service-x": broken})
    assert cache.get("service-x") is good["service-x"]
    assert cache.get("service-y") is good["service-y"]


def test_an_inconsistent_snapshot_still_wakes_the_users_of_a_changed_shared_assignment() -> None:
    async def body() -> tuple[list[str], list[tuple[str, list[str]]]]:
        from nomadmesh.xds.build import SnapshotBuilder

        cache = SnapshotCache()
        builder = SnapshotBuilder()
        builder.load(STATE)
        builder.add_node("service-x")
        cache.set_snapshots(*builder.build())
        heard: list[str] = []
        x = cache.open_watch("service-x", lambda: heard.append("x"))
        subscribe(x)
        builder.set_service("service-a", (Endpoint("10.0.0.9", 81),))
        build = builder.build()
        broken = Snapshot.of([Resource.of(resources.egress_listener())])
        with pytest.raises(XdsError, match="uses route configuration 'egress_route'"):
            cache.set_snapshots({"service-y": broken}, (), build.shared)
        await asyncio.sleep(0)
        return heard, summary(x.due())

    heard, due = run(body)
    assert heard == ["x"]
    assert due == [("ClusterLoadAssignment", ["service-a"])]


def test_set_snapshots_removes_what_it_is_told_and_keeps_the_rest() -> None:
    cache = SnapshotCache()
    cache.replace_all(build_snapshots(STATE))
    cache.set_snapshots({}, removed=["service-y"])
    assert "service-y" not in cache.node_hashes() and "service-x" in cache.node_hashes()


def test_a_new_watch_gets_everything_it_subscribes_to_in_one_response_per_type() -> None:
    async def body() -> list[tuple[str, list[str]]]:
        cache = SnapshotCache()
        cache.replace_all(build_snapshots(STATE))
        return summary(subscribe(cache.open_watch("service-x", lambda: None)))

    assert run(body) == [
        ("Cluster", ["service-a", "service-b"]),
        ("ClusterLoadAssignment", ["service-a", "service-b"]),
        ("Listener", ["egress"]),
        ("RouteConfiguration", ["egress_route"]),
    ]


def test_after_an_endpoint_change_only_that_assignment_is_due() -> None:
    async def body() -> list[tuple[str, list[str]]]:
        cache = SnapshotCache()
        cache.replace_all(build_snapshots(STATE))
        watch = cache.open_watch("service-x", lambda: None)
        subscribe(watch)
        cache.replace_all(build_snapshots(with_endpoint("service-b", 81)))
        return summary(watch.due())

    assert run(body) == [("ClusterLoadAssignment", ["service-b"])]


def test_a_shared_assignment_changed_in_place_wakes_its_users_with_only_that_assignment_due() -> None:
    async def body() -> tuple[list[str], list[tuple[str, list[str]]], list[Response]]:
        from nomadmesh.xds.build import SnapshotBuilder

        cache = SnapshotCache()
        builder = SnapshotBuilder()
        builder.load(STATE)
        for node in ("service-x", "service-y", "service-a"):
            builder.add_node(node)
        cache.set_snapshots(*builder.build())
        heard: list[str] = []
        x = cache.open_watch("service-x", lambda: heard.append("x"))
        cache.open_watch("service-y", lambda: heard.append("y"))
        cache.open_watch("service-a", lambda: heard.append("a"))
        subscribe(x)
        installed = cache.get("service-x")
        builder.set_service("service-a", (Endpoint("10.0.0.9", 81),))
        build = builder.build()
        assert build.snapshots == {} and build.shared == ["service-a"]
        cache.set_snapshots(*build)
        await asyncio.sleep(0)
        assert cache.get("service-x") is installed  # no snapshot was rebuilt or replaced
        return heard, summary(x.due()), x.due()

    heard, due, again = run(body)
    assert heard == ["x"]  # service-y does not call service-a; service-a's sidecar calls nobody
    assert due == [("ClusterLoadAssignment", ["service-a"])]
    assert again == []


def test_a_route_change_and_a_shared_assignment_change_in_one_build_are_both_due() -> None:
    async def body() -> list[tuple[str, list[str]]]:
        from nomadmesh.xds.build import SnapshotBuilder

        cache = SnapshotCache()
        builder = SnapshotBuilder()
        builder.load(STATE)
        builder.add_node("service-x")
        cache.set_snapshots(*builder.build())
        x = cache.open_watch("service-x", lambda: None)
        subscribe(x)
        # The route moves (a derived snapshot keeps its EDS mapping) and service-a's endpoints
        # move in place, in the same build.
        builder.set_upstreams("service-x", (Upstream("service-a", "/moved_a"),
                                            Upstream("service-b", "/hi_b")))
        builder.set_service("service-a", (Endpoint("10.0.0.9", 81),))
        build = builder.build()
        assert sorted(build.snapshots) == ["service-x"] and build.shared == ["service-a"]
        cache.set_snapshots(*build)
        await asyncio.sleep(0)
        return summary(x.due())

    assert run(body) == [("ClusterLoadAssignment", ["service-a"]),
                         ("RouteConfiguration", ["egress_route"])]


def test_nothing_is_due_twice_for_the_same_content() -> None:
    async def body() -> list[Response]:
        cache = SnapshotCache()
        cache.replace_all(build_snapshots(STATE))
        watch = cache.open_watch("service-x", lambda: None)
        subscribe(watch)
        cache.replace_all(build_snapshots(STATE))  # rebuilt from scratch, same content
        return watch.due()

    assert run(body) == []


def test_a_node_hash_whose_snapshot_is_removed_is_due_nothing() -> None:
    async def body() -> list[Response]:
        cache = SnapshotCache()
        cache.replace_all(build_snapshots(STATE))
        watch = cache.open_watch("service-x", lambda: None)
        subscribe(watch)
        cache.set_snapshots({}, removed=["service-x"])
        return watch.due()

    assert run(body) == []


def test_versions_depend_only_on_content_so_replicas_agree() -> None:
    first, second = build_snapshots(STATE)["service-x"], build_snapshots(STATE)["service-x"]
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        assert first.type_version(type_url) == second.type_version(type_url)


def test_the_node_hash_function_is_the_callers() -> None:
    cache = SnapshotCache(node_hash=lambda cluster, metadata: f"{cluster}/{metadata.get('zone')}")
    assert cache.node_hash("service-x", {"zone": "b"}) == "service-x/b"


def test_any_bytes_are_the_packed_resource() -> None:
    from google.protobuf import any_pb2

    item = Resource.of(resources.eds_cluster("service-a"))
    packed = any_pb2.Any()
    packed.ParseFromString(item.any_bytes)
    assert packed.type_url == CLUSTER_TYPE
    assert packed.value == item.message.SerializeToString(deterministic=True)


def test_a_source_hears_when_a_node_hash_gets_its_first_and_loses_its_last_watch() -> None:
    async def body() -> list[str]:
        cache = SnapshotCache()
        heard: list[str] = []
        cache.on_watch(lambda h: heard.append(f"+{h}"), lambda h: heard.append(f"-{h}"))
        one = cache.open_watch("service-x", lambda: None)
        two = cache.open_watch("service-x", lambda: None)
        one.close()
        two.close()
        two.close()
        return heard

    assert run(body) == ["+service-x", "-service-x"]


def test_with_resources_replaces_and_shares_what_it_does_not_touch() -> None:
    snapshot = build_snapshots(STATE)["service-x"]
    snapshot.check()
    moved = Resource.of(resources.load_assignment("service-a", [Endpoint("10.0.0.7", 80)]))
    derived = snapshot.with_resources([moved])
    assert derived.of_type(ENDPOINT_TYPE)["service-a"] is moved
    assert derived.of_type(CLUSTER_TYPE) is snapshot.of_type(CLUSTER_TYPE)
    assert snapshot.of_type(ENDPOINT_TYPE)["service-a"] is not moved
    assert derived.type_version(ENDPOINT_TYPE) != snapshot.type_version(ENDPOINT_TYPE)


def test_with_resources_that_change_references_is_checked_again() -> None:
    cache = SnapshotCache()
    snapshot = build_snapshots(STATE)["service-x"]
    cache.set_snapshot("service-x", snapshot)
    rerouted = Resource.of(resources.egress_route([Upstream("service-z", "/z")]))
    with pytest.raises(XdsError, match="routes to cluster 'service-z', which does not exist"):
        cache.set_snapshot("service-x", snapshot.with_resources([rerouted]))
    assert cache.get("service-x") is snapshot


def test_a_weighted_route_needs_every_cluster_it_splits_to() -> None:
    from envoy.config.route.v3 import route_pb2

    config = route_pb2.RouteConfiguration(name="egress_route")
    entry = config.virtual_hosts.add(name="egress", domains=["*"]).routes.add()
    entry.match.prefix = "/"
    entry.route.weighted_clusters.clusters.add(name="service-a", weight={"value": 95})
    entry.route.weighted_clusters.clusters.add(name="canary", weight={"value": 5})
    snapshot = Snapshot.of([Resource.of(config), Resource.of(resources.eds_cluster("service-a")),
                            Resource.of(resources.load_assignment("service-a", []))])
    assert snapshot.problems() == [
        "route configuration 'egress_route' routes to cluster 'canary', which does not exist"
    ]
