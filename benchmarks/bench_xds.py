"""xDS control plane costs: snapshot build, push fan-out of one endpoint flip, convergence, data plane.

Run: python benchmarks/bench_xds.py [--services 1000] [--endpoints 10] [--trials 50]
     [--skip-envoy] [--coalesce 0.005]
Targets (issue 6): build for 1,000 services x 10 endpoints <= 200 ms; one endpoint flip costs
O(that cluster) in pushes; Consul health change -> first request on the new endpoint through a real
Envoy p50 <= 20 ms, p99 <= 100 ms; one sidecar hop adds <= 1 ms p50 at 500 requests/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import requests

from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.envoy import AdsClient, HttpBackend, Sidecar, eventually
from nomadmesh.xds import ControlPlane, Endpoint, MeshState, Upstream, build_snapshots
from nomadmesh.xds.build import SnapshotBuilder
from nomadmesh.xds.resources import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE


def mesh_state(services: int, endpoints: int, flipped: int | None = None) -> MeshState:
    """`services` services of `endpoints` endpoints, each calling the next three services."""
    names = [f"svc-{i:04d}" for i in range(services)]
    state_endpoints = {
        name: tuple(
            Endpoint(
                f"10.{i // 250}.{i % 250}.{j + 1}",
                8080,
                health="critical" if (i, j) == (flipped, 0) else "passing",
            )
            for j in range(endpoints)
        )
        for i, name in enumerate(names)
    }
    upstreams = {
        name: tuple(Upstream(names[(i + k) % services], f"/{names[(i + k) % services]}") for k in (1, 2, 3))
        for i, name in enumerate(names)
    }
    return MeshState(endpoints=state_endpoints, upstreams=upstreams)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of `repeat` runs of `action`, in milliseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of the samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_build(services: int, endpoints: int) -> None:
    state = mesh_state(services, endpoints)
    full = timed(lambda: build_snapshots(state), 11)
    builder = SnapshotBuilder()
    builder.load(state)
    for name in state.endpoints:
        builder.add_node(name)
    builder.build()
    flipped = mesh_state(services, endpoints, flipped=0)
    incremental = []
    for n in range(8):
        started = time.perf_counter()
        builder.load(flipped if n % 2 == 0 else state)
        builder.build()
        incremental.append((time.perf_counter() - started) * 1000)
    print(f"snapshot build, {services} services x {endpoints} endpoints (3 upstreams each):")
    print(
        f"  full build        median {statistics.median(full):7.1f} ms  best {min(full):7.1f} ms"
        "  (target <= 200 ms)"
    )
    print(
        f"  after one flip    median {statistics.median(incremental):7.1f} ms  best "
        f"{min(incremental):7.1f} ms  (memoized)"
    )


def bench_fanout(services: int, endpoints: int, streams: int) -> None:
    state = mesh_state(services, endpoints)
    with ControlPlane(listen="127.0.0.1:0") as plane:
        plane.cache.replace_all(build_snapshots(state))
        clients = [AdsClient(plane.port, cluster=f"svc-{i:04d}", node_id=f"n{i}") for i in range(streams)]
        try:
            for client in clients:
                client.request(CLUSTER_TYPE)
                client.ack(client.receive())
                snapshot = plane.cache.get(client.node.cluster)
                assert snapshot is not None
                clusters = tuple(sorted(snapshot.of_type(CLUSTER_TYPE)))
                client.request(ENDPOINT_TYPE, clusters)
                client.ack(client.receive(), clusters)
                for type_url, names in ((LISTENER_TYPE, ()), (ROUTE_TYPE, ("egress_route",))):
                    client.request(type_url, names)
                    client.ack(client.receive(), names)

            def counts() -> dict[str, float]:
                return {
                    t.rsplit(".", 1)[-1]: plane.metrics.resources_pushed.labels(t)._value.get()
                    for t in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE)
                }

            before = counts()
            # svc-0001 is an upstream of svc-0000, svc-0998 and svc-0999; of the connected
            # streams (the first `streams` services) only svc-0000 uses it.
            plane.cache.replace_all(build_snapshots(mesh_state(services, endpoints, flipped=1)))
            time.sleep(0.5)
            delta = {k: counts()[k] - v for k, v in before.items()}
            receivers = sum(1 for c in clients if c.pending(0.01))
        finally:
            for client in clients:
                client.close()
    print(f"push fan-out of one endpoint flip, {streams} connected streams:")
    print(f"  resources pushed by type: {delta}; streams that received anything: {receivers}")


def bench_convergence(trials: int, coalesce: float) -> None:
    with (
        ConsulEmulator() as consul,
        HttpBackend("a1") as a1,
        HttpBackend("a2") as a2,
    ):
        consul.register(
            "service-x",
            service_id="x1",
            address="127.0.0.1",
            port=1,
            meta={"nomadmesh-upstreams": "service-a=/hi_a"},
            checks=[{"CheckID": "x1", "TTL": "1h", "Status": "passing"}],
        )
        for name, backend, status in (("a1", a1, "passing"), ("a2", a2, "critical")):
            consul.register(
                "service-a",
                service_id=name,
                address="127.0.0.1",
                port=backend.port,
                checks=[{"CheckID": name, "TTL": "1h", "Status": status}],
            )
        with (
            ControlPlane(listen="127.0.0.1:0", consul=consul.address, coalesce=coalesce) as plane,
            Sidecar(plane.port, "service-x") as sidecar,
        ):
            sidecar.envoy.wait_for(lambda: sidecar.answer("/hi_a").startswith("a1"), what="a1")
            session = requests.Session()
            url = sidecar.egress_url + "/hi_a"
            samples = []
            current = "a1"
            for _ in range(trials):
                target = "a2" if current == "a1" else "a1"
                started = time.perf_counter()
                consul.set_check_status(target, "passing")
                consul.set_check_status(current, "critical")
                while not session.get(url, timeout=2).text.startswith(target):
                    pass
                samples.append((time.perf_counter() - started) * 1000)
                current = target
                time.sleep(0.05)
    print(
        f"convergence, Consul health flip -> first request on the new endpoint via Envoy "
        f"({trials} trials, coalesce {coalesce * 1000:.0f} ms):"
    )
    print(
        f"  p50 {percentile(samples, 0.5):6.1f} ms  p99 {percentile(samples, 0.99):6.1f} ms  "
        f"max {max(samples):6.1f} ms  (targets p50 <= 20, p99 <= 100)"
    )


def bench_data_plane(requests_count: int, rate: float) -> None:
    """Direct and via-sidecar requests interleaved at `rate` per second, so both see the same load."""
    with HttpBackend("a1") as backend, ControlPlane(listen="127.0.0.1:0") as plane:
        state = MeshState(
            endpoints={"service-a": (Endpoint("127.0.0.1", backend.port),)},
            upstreams={"service-x": (Upstream("service-a", "/hi_a"),)},
        )
        sidecar = Sidecar(plane.port, "service-x")
        plane.cache.replace_all(build_snapshots(state, [sidecar.node_hash]))
        with sidecar:
            eventually(lambda: sidecar.answer("/hi_a").startswith("a1"), what="route")
            targets = {
                "direct": (requests.Session(), f"http://127.0.0.1:{backend.port}/hi_a"),
                "via sidecar": (requests.Session(), sidecar.egress_url + "/hi_a"),
            }
            samples: dict[str, list[float]] = {label: [] for label in targets}
            next_at = time.perf_counter()
            for n in range(2 * requests_count):
                label = "direct" if n % 2 == 0 else "via sidecar"
                session, url = targets[label]
                next_at += 1 / rate
                started = time.perf_counter()
                session.get(url, timeout=2)
                samples[label].append((time.perf_counter() - started) * 1000)
                time.sleep(max(0.0, next_at - time.perf_counter()))
    print(
        f"data plane at {rate:.0f} requests/s, direct and via sidecar interleaved "
        f"({requests_count} requests each):"
    )
    for label, values in samples.items():
        print(f"  {label:12s} p50 {percentile(values, 0.5):6.2f} ms  p90 {percentile(values, 0.9):6.2f} ms")
    added = percentile(samples["via sidecar"], 0.5) - percentile(samples["direct"], 0.5)
    print(f"  added by the sidecar hop: p50 {added:+.2f} ms  (target <= 1 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--coalesce", type=float, default=0.01, help="seconds (the default)")
    parser.add_argument("--skip-envoy", action="store_true")
    args = parser.parse_args()
    bench_build(args.services, args.endpoints)
    bench_fanout(args.services, args.endpoints, args.streams)
    if not args.skip_envoy:
        bench_convergence(args.trials, args.coalesce)
        bench_data_plane(2000, 500.0)


if __name__ == "__main__":
    main()
