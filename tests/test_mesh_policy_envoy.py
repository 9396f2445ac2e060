"""Traffic policy through a real Envoy: retries, timeouts, ejection, splits, matches, rate limits."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from nomadmesh.contract import (
    DEFAULT_POLICY,
    HeaderMatch,
    OutlierDetection,
    Policy,
    RateLimit,
    Retries,
    Split,
    Upstream,
)
from nomadmesh.testing.envoy import HttpBackend, Sidecar
from nomadmesh.xds import ControlPlane, Endpoint, MeshState, resources
from nomadmesh.xds.sources.state import MeshStateSource

pytestmark = pytest.mark.envoy

# What the mesh did before traffic policy: no retries, no ejection.
NO_POLICY = Policy(retries=Retries(attempts=0), outlier_detection=None)


@pytest.fixture
def plane() -> Iterator[ControlPlane]:
    with ControlPlane(listen="127.0.0.1:0",
                      source=lambda cache, metrics: MeshStateSource(cache)) as control_plane:
        yield control_plane


@pytest.fixture
def source(plane: ControlPlane) -> MeshStateSource:
    assert isinstance(plane.source, MeshStateSource)
    return plane.source


@pytest.fixture
def sidecar(plane: ControlPlane) -> Iterator[Sidecar]:
    with Sidecar(plane.port, "caller") as proxy:
        yield proxy


def serve(source: MeshStateSource, sidecar: Sidecar, backends: dict[str, list[HttpBackend]],
          *upstreams: Upstream, tags: dict[str, tuple[str, ...]] | None = None) -> None:
    """Serve `upstreams` to the caller's sidecar and wait until every route answers."""
    tags = tags or {}
    source.update(MeshState(
        endpoints={service: tuple(Endpoint("127.0.0.1", b.port, tags=tags.get(b.name, ()))
                                  for b in group) for service, group in backends.items()},
        upstreams={"caller": upstreams},
    ))
    for upstream in upstreams:
        sidecar.envoy.wait_for(lambda u=upstream: _routed(sidecar, u.prefix),
                               what=f"route {upstream.prefix}")


def _routed(sidecar: Sidecar, path: str) -> bool:
    """Whether the route reaches a backend: not Envoy's own 404 (no route yet) nor its own 503
    (the route's cluster still warming for its endpoints, seen under load: a POST sent then
    never reached the backend). The router adds the service-time header to upstream answers."""
    try:
        response = sidecar.get(path)
    except requests.RequestException:
        return False
    return ("x-envoy-upstream-service-time" in response.headers
            or response.status_code not in (404, 503))


def every_other_fails(number: int, method: str, path: str) -> tuple[int, float]:
    return (503 if number % 2 else 200), 0.0


def test_a_flaky_backend_behind_the_default_retries_answers_200(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    with HttpBackend("flaky", answer=every_other_fails) as flaky:
        serve(source, sidecar, {"api": [flaky]}, Upstream("api", "/api"))
        statuses = Counter(sidecar.get("/api").status_code for _ in range(20))
    assert statuses == {200: 20}
    assert int(sidecar.envoy.stat("cluster.api.upstream_rq_retry") or 0) >= 10


def test_a_post_is_not_retried_on_a_503_by_default(source: MeshStateSource,
                                                   sidecar: Sidecar) -> None:
    failing_posts = lambda n, m, p: (503 if m == "POST" else 200, 0.0)  # noqa: E731
    with HttpBackend("flaky", answer=failing_posts) as flaky:
        serve(source, sidecar, {"api": [flaky]}, Upstream("api", "/api"))
        before = flaky.requests
        response = requests.post(sidecar.egress_url + "/api", data=b"x", timeout=5)
    assert response.status_code == 503
    assert flaky.requests - before == 1


def test_a_slow_backend_behind_a_timeout_answers_504_at_the_timeout(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    slow = lambda n, m, p: (200, 3.0 if p.startswith("/slow") else 0.0)  # noqa: E731
    with HttpBackend("slow", answer=slow) as backend:
        serve(source, sidecar, {"api": [backend]},
              Upstream("api", "/slow", policy=Policy(timeout="500ms")), Upstream("api", "/ok"))
        started = time.monotonic()
        response = sidecar.get("/slow")
        elapsed = time.monotonic() - started
    assert response.status_code == 504
    assert 0.45 <= elapsed < 1.5


def test_a_host_that_keeps_failing_is_ejected_and_takes_no_traffic(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    failing = lambda n, m, p: (502, 0.0)  # noqa: E731
    with HttpBackend("good") as good, HttpBackend("bad", answer=failing) as bad:
        policy = Policy(retries=Retries(attempts=0),
                        outlier_detection=OutlierDetection(base_ejection_time="30s"))
        upstream = Upstream("api", "/api", policy=policy)
        serve(source, sidecar, {"api": [good, bad]}, upstream)
        ((cluster, _),) = resources.cluster_plans(upstream, policy.merged_onto(DEFAULT_POLICY))
        ejected = f"cluster.{cluster.name}.outlier_detection.ejections_active"
        sidecar.envoy.wait_for(lambda: (sidecar.get("/api"), sidecar.envoy.stat(ejected))[1]
                               == "1", what="the bad host ejected")
        bad_before = bad.requests
        statuses = Counter(sidecar.get("/api").status_code for _ in range(30))
    assert statuses == {200: 30}
    assert bad.requests == bad_before


def test_a_95_5_split_by_tag_measures_within_a_few_percent(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    with HttpBackend("stable") as stable, HttpBackend("canary") as canary:
        split = [Split(weight=95), Split(weight=5, tag="canary")]
        serve(source, sidecar, {"api": [stable, canary]}, Upstream("api", "/api", split=split),
              tags={"canary": ("canary",)})
        sidecar.envoy.wait_for(lambda: sidecar.answer("/api").startswith("canary"),
                               timeout=20, what="the canary subset warmed")
        stable_before, canary_before = stable.requests, canary.requests
        session = requests.Session()
        total = 2000
        for _ in range(total):
            assert session.get(sidecar.egress_url + "/api", timeout=5).status_code == 200
    share = (canary.requests - canary_before) / total
    assert (stable.requests - stable_before) + (canary.requests - canary_before) == total
    assert 0.03 <= share <= 0.07, share


def test_header_and_method_matches_and_a_prefix_rewrite(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    with HttpBackend("v1") as v1, HttpBackend("v2") as v2:
        serve(source, sidecar, {"api-v1": [v1], "api-v2": [v2]},
              Upstream("api-v2", "/api", headers=[HeaderMatch(name="x-version", exact="2")],
                       rewrite="/"),
              Upstream("api-v2", "/api", methods=["DELETE"]),
              Upstream("api-v1", "/api"))
        plain = sidecar.answer("/api/items")
        by_header = requests.get(sidecar.egress_url + "/api/items", headers={"x-version": "2"},
                                 timeout=5).text
        by_method = requests.delete(sidecar.egress_url + "/api/items", timeout=5).text
    assert plain == "v1 /api/items"
    assert by_header == "v2 /items"
    assert by_method == "v2 /api/items"


def test_a_rate_limited_route_answers_429_past_its_budget(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    with HttpBackend("api") as backend:
        limited = Policy(rate_limit=RateLimit(requests=3, per="1m"))
        serve(source, sidecar, {"api": [backend]}, Upstream("api", "/free"),
              Upstream("api", "/limited", policy=limited))
        statuses = Counter(sidecar.get("/limited").status_code for _ in range(8))
        free = Counter(sidecar.get("/free").status_code for _ in range(8))
    assert statuses[429] >= 5
    assert statuses[200] <= 3
    assert free == {200: 8}


def failures_across_an_instance_death(source: MeshStateSource, sidecar: Sidecar,
                                      policy: Policy | None) -> int:
    """Non-200 answers to steady traffic while one of two instances dies (Consul not told yet)."""
    with HttpBackend("a1") as a1, HttpBackend("a2") as a2:
        serve(source, sidecar, {"api": [a1, a2]}, Upstream("api", "/api", policy=policy))
        sidecar.envoy.wait_for(lambda: (sidecar.answer("/api"), a1.requests and a2.requests)[1],
                               what="traffic on both instances")
        failures = 0
        stop = threading.Event()

        def traffic() -> None:
            nonlocal failures
            session = requests.Session()
            while not stop.is_set():
                try:
                    ok = session.get(sidecar.egress_url + "/api", timeout=5).status_code == 200
                except requests.RequestException:
                    ok = False
                failures += not ok

        threads = [threading.Thread(target=traffic) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while a1.requests < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        a1.kill()
        dead_at = a2.requests
        while a2.requests < dead_at + 200 and time.monotonic() < deadline + 10:
            time.sleep(0.01)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    return failures


def test_with_the_default_policy_an_instance_death_costs_no_request(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    assert failures_across_an_instance_death(source, sidecar, None) == 0


def test_without_policy_an_instance_death_costs_requests(
        source: MeshStateSource, sidecar: Sidecar) -> None:
    # The window the defaults close: the same death with retries and ejection off.
    assert failures_across_an_instance_death(source, sidecar, NO_POLICY) > 0
