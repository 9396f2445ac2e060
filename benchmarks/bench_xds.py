"""xDS control plane costs: snapshot build, push fan-out of one endpoint flip, convergence, data plane.

Run: python benchmarks/bench_xds.py [--services 1000] [--endpoints 10] [--trials 50]
     [--skip-envoy] [--coalesce 0.005]
Targets (issue 6): build for 1,000 services x 10 endpoints <= 200 ms; one endpoint flip costs
O(that cluster) in pushes; Consul health change -> first request on the new endpoint through a real
Envoy p50 <= 20 ms, p99 <= 100 ms; one sidecar hop adds <= 1 ms p50 at 500 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import logging
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import requests

from nomadmesh.testing import ConsulEmulator
from nomadmesh.testing.envoy import AdsClient, HttpBackend, Sidecar, eventually
from nomadmesh.xds import ControlPlane, Endpoint, MeshState, Upstream, build_snapshots
from nomadmesh.xds.build import MeshConfig, SnapshotBuilder
from nomadmesh.xds.cache import Response, SnapshotCache
from nomadmesh.xds.control_plane import settle_heap
from nomadmesh.xds.resources import (
    CLUSTER_TYPE,
    COMPLETE_SET_TYPES,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    load_assignment,
)
from nomadmesh.xds.server import SERVICE, encode_response, xds_loop
from nomadmesh.xds.snapshot import Resource, Snapshot, field
from nomadmesh.xds.sources._common import BuildLoop, Problems


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


def scale_state(services: int, endpoints: int, shared: str) -> MeshState:
    """`services` services of `endpoints` endpoints; each calls the next three and `shared`."""
    names = [f"svc-{i:04d}" for i in range(services)]
    state_endpoints = {
        name: tuple(Endpoint(f"10.{i // 250}.{i % 250}.{j + 1}", 8080) for j in range(endpoints))
        for i, name in enumerate(names)
    }
    upstreams = {
        name: tuple(
            Upstream(target, f"/{target}")
            for target in dict.fromkeys([*(names[(i + k) % services] for k in (1, 2, 3)), shared])
            if target != name
        )
        for i, name in enumerate(names)
    }
    return MeshState(endpoints=state_endpoints, upstreams=upstreams)


class CollectorPauses:
    """Durations of the cyclic garbage collector's runs (ms) until `close()`."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.samples.append((time.perf_counter() - self._started) * 1000)

    def close(self) -> None:
        """Stop recording."""
        gc.callbacks.remove(self._callback)


def rss() -> int:
    """This process's resident memory in bytes."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


class Fleet:
    """`benchmarks/_ads_fleet.py` as a child process: N simulated Envoys on their own core."""

    def __init__(self, port: int, clusters: list[str], per_connection: int) -> None:
        script = Path(__file__).with_name("_ads_fleet.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), "--port", str(port), "--clusters", ",".join(clusters),
             "--per-connection", str(per_connection)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.ready_seconds = float(self._line("ready")[0])

    def _line(self, expected: str) -> list[str]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if not line or line[0] != expected:
            raise RuntimeError(f"fleet said {line[:3]!r}, expected {expected!r}")
        return line[1:]

    def command(self, text: str, expected: str) -> list[str]:
        """Send one command line and read the answer line."""
        assert self._process.stdin is not None
        self._process.stdin.write(text + "\n")
        self._process.stdin.flush()
        return self._line(expected)

    def close(self) -> None:
        """Quit the fleet (closing its streams) and wait for it."""
        assert self._process.stdin is not None
        self._process.stdin.write("quit\n")
        self._process.stdin.flush()
        self._process.wait(timeout=60)


def moved_endpoints(endpoints: int, k: int) -> list[Endpoint]:
    """The endpoints of a service after its k-th change."""
    return [Endpoint(f"10.99.{k % 250}.{j + 1}", 8080 + k) for j in range(endpoints)]


class BarePush:
    """The floor: a bare grpc.aio server that writes one prebuilt message to every stream.

    It answers the fleet's subscriptions from the same snapshots (untimed), then on `push()` every
    stream coroutine wakes and writes the same bytes: gRPC's own cost of one push to N streams.
    """

    def __init__(self, snapshots: dict[str, Snapshot | None]) -> None:
        self.snapshots = snapshots
        self.port = 0
        self._server: Any = None
        self._payloads: list[bytes] = []
        self._wakeup: asyncio.Future[None] | None = None

    async def _open(self) -> None:
        self._wakeup = asyncio.get_running_loop().create_future()
        # The same connection settings as the control plane's server: 2,000 streams opening at
        # once are queued, not cancelled.
        server = grpc.aio.server(options=[
            ("grpc.so_reuseport", 0),
            ("grpc.server.max_pending_requests", 10_000),
            ("grpc.server.max_pending_requests_hard_limit", 20_000),
        ], maximum_concurrent_rpcs=20_000)
        handler = grpc.stream_stream_rpc_method_handler(
            self._stream, request_deserializer=_request_class().FromString,
            response_serializer=None,
        )
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            SERVICE, {"StreamAggregatedResources": handler})])
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server

    async def _stream(self, request_iterator: Any, context: Any) -> None:
        first = await context.read()
        snapshot = self.snapshots[first.node.cluster]
        assert snapshot is not None
        control_plane = field(6, b"")

        async def answer_subscriptions() -> None:
            request = first
            while request is not grpc.aio.EOF:
                if not request.response_nonce:
                    items = snapshot.of_type(request.type_url)
                    if request.type_url not in COMPLETE_SET_TYPES:
                        items = {n: items[n] for n in request.resource_names if n in items}
                    response = Response(request.type_url, snapshot.type_version(request.type_url),
                                        tuple(items.values()))
                    await context.write(encode_response(response, "s", control_plane))
                request = await context.read()

        reader = asyncio.ensure_future(answer_subscriptions())
        seen = len(self._payloads)
        try:
            while True:
                # Every payload pushed since the stream began, in order, even if a push lands
                # while this stream is still writing the previous one.
                while seen == len(self._payloads):
                    assert self._wakeup is not None
                    await asyncio.shield(self._wakeup)
                seen += 1
                await context.write(self._payloads[seen - 1])
        finally:
            reader.cancel()

    def start(self) -> None:
        """Start on the xDS event loop."""
        xds_loop().acquire()
        xds_loop().call(self._open())

    def push(self, payload: bytes) -> None:
        """Wake every stream to write `payload` (from any thread)."""

        def fire() -> None:
            assert self._wakeup is not None
            self._payloads.append(payload)
            woken, self._wakeup = self._wakeup, asyncio.get_running_loop().create_future()
            woken.set_result(None)

        xds_loop().loop.call_soon_threadsafe(fire)

    def stop(self) -> None:
        """Stop the server."""
        xds_loop().call(self._server.stop(0.1))
        xds_loop().release()


def _request_class() -> Any:
    from envoy.service.discovery.v3 import discovery_pb2

    return discovery_pb2.DiscoveryRequest


def latencies(times: list[str], started: float) -> list[float]:
    """Milliseconds from `started` to each receipt time the fleet reported."""
    return [(float(t) - started) * 1000 for t in times]


class TimedCache:
    """The cache as a BuildLoop sees it, noting when each build was installed."""

    def __init__(self, cache: SnapshotCache) -> None:
        self.cache = cache
        self.installed: list[float] = []

    def set_snapshots(self, *args: Any) -> None:
        self.cache.set_snapshots(*args)
        self.installed.append(time.monotonic())


def on_loop(loop: asyncio.AbstractEventLoop, action: Callable[[], object]) -> None:
    """Run `action` on the event loop's thread and wait for it."""
    async def run() -> None:
        action()

    asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=30)


def bench_scale(services: int, endpoints: int, streams: int, changes: int,
                per_connection: int, profile: bool = False) -> None:
    shared = "svc-0000"
    base = rss()
    state = scale_state(services, endpoints, shared)
    clusters = sorted(state.endpoints)[:streams]
    print(f"scale: {services} services x {endpoints} endpoints, each calling 3 others and "
          f"{shared}; {streams} ADS streams ({per_connection} per connection)", flush=True)
    with ControlPlane(listen="127.0.0.1:0") as plane:
        # The Consul and Nomad sources' build path: changes queued to a BuildLoop, which builds
        # on its own thread (coalesced) the snapshots of the node hashes that have streams.
        stopped = threading.Event()
        log = logging.getLogger("bench")
        loop = BuildLoop(plane.cache, plane.metrics, MeshConfig(), coalesce=0.01, log=log,
                         stopped=stopped, problems=Problems("bench", plane.metrics, log))
        timed_cache = TimedCache(plane.cache)
        loop.cache = timed_cache  # type: ignore[assignment]
        started = time.perf_counter()
        loop.builder.load(state)
        load_seconds = time.perf_counter() - started
        per_service = (rss() - base) / services
        plane.cache.on_watch(loop.node_added, loop.node_removed)
        builder_thread = threading.Thread(target=loop.run, daemon=True)
        builder_thread.start()
        settle_heap()  # as `xds serve` does once its source has loaded
        before_streams = rss()
        fleet = Fleet(plane.port, clusters, per_connection)
        per_stream = (rss() - before_streams) / streams
        snapshots = {node: plane.cache.get(node) for node in clusters}
        users = {n for n, s in snapshots.items() if s is not None and shared in s.shared_names}
        print(f"  load the state into the builder {load_seconds:.2f} s, memory "
              f"{per_service / 1024:.1f} KiB per service")
        print(f"  {streams} streams subscribed (their snapshots built as they connected; CDS, EDS, "
              f"LDS, RDS acknowledged) in {fleet.ready_seconds:.1f} s; {len(plane.cache.node_hashes())} "
              f"snapshots; server memory {per_stream / 1024:.1f} KiB per stream", flush=True)
        pauses = CollectorPauses()

        def change(service: str, k: int, receivers: int) -> tuple[list[float], list[float], float]:
            fleet.command("arm", "armed")
            builds = len(timed_cache.installed)
            changed_at = time.monotonic()
            loop.set_endpoints(service, moved_endpoints(endpoints, k))
            times = fleet.command(f"collect {receivers}", "times")
            installed_at = timed_cache.installed[builds]
            return (latencies(times, changed_at), latencies(times, installed_at),
                    (installed_at - changed_at) * 1000)

        ours: list[float] = []
        pushed: list[float] = []
        build_ms: list[float] = []
        # --profile: cProfile on the xDS loop's thread (every stream's coroutine) during the
        # shared changes; it slows that thread, so read its latencies as profiled ones.
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            on_loop(plane.server.loop, profiler.enable)
        for k in range(changes):
            samples, push_samples, built = change(shared, k, len(users))
            ours += samples
            pushed += push_samples
            build_ms.append(built)
        if profiler is not None:
            on_loop(plane.server.loop, profiler.disable)
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(14)
            print("  profile of the xDS loop thread during the shared changes (by own time):")
            print("\n".join("    " + line for line in text.getvalue().splitlines()
                            if line.strip() and "function calls" not in line
                            and not line.startswith(("Ordered", "   List"))))
        target = clusters[-1]
        few_users = [n for n, s in snapshots.items() if s is not None and target in s.shared_names]
        few: list[float] = []
        for k in range(changes):
            few += change(target, k, len(few_users))[0]
        fleet.close()
        pauses.close()
        stopped.set()
        loop.wake()
        builder_thread.join(timeout=10)
        bare_server = BarePush(snapshots)
        bare_server.start()
        try:
            fleet = Fleet(bare_server.port, clusters, per_connection)
            bare: list[float] = []
            for k in range(changes):
                fleet.command("arm", "armed")
                assignment = Resource.of(load_assignment(shared, moved_endpoints(endpoints, 99 + k)))
                payload = encode_response(Response(ENDPOINT_TYPE, f"bare-{k}", (assignment,)), "p",
                                          field(6, b""))
                changed_at = time.monotonic()
                bare_server.push(payload)
                bare += latencies(fleet.command(f"collect {streams}", "times"), changed_at)
            fleet.close()
        finally:
            bare_server.stop()
    missing = [f"{label} {got} of {wanted}" for label, got, wanted in (
        ("nomadmesh", len(ours), len(users) * changes), ("bare", len(bare), streams * changes))
        if got != wanted]
    print(f"  one endpoint of {shared} changes (one shared assignment replaced, the "
          f"{len(users)} streams using it), {changes} changes, receipt at every stream:")
    print(f"    change -> receipt    p50 {percentile(ours, 0.5):6.1f} ms  p99 "
          f"{percentile(ours, 0.99):6.1f} ms  max {max(ours):6.1f} ms  (target p99 <= 100 ms)")
    print(f"      of which queue + build + install (BuildLoop, SnapshotBuilder, cache): median "
          f"{statistics.median(build_ms):.2f} ms")
    print(f"    installed -> receipt p50 {percentile(pushed, 0.5):6.1f} ms  p99 "
          f"{percentile(pushed, 0.99):6.1f} ms  max {max(pushed):6.1f} ms  (the transport)")
    print(f"    bare grpcio push     p50 {percentile(bare, 0.5):6.1f} ms  p99 "
          f"{percentile(bare, 0.99):6.1f} ms  max {max(bare):6.1f} ms")
    print(f"    transport / bare     p50 {percentile(pushed, 0.5) / percentile(bare, 0.5):.2f}x  p99 "
          f"{percentile(pushed, 0.99) / percentile(bare, 0.99):.2f}x; end to end / bare p50 "
          f"{percentile(ours, 0.5) / percentile(bare, 0.5):.2f}x  p99 "
          f"{percentile(ours, 0.99) / percentile(bare, 0.99):.2f}x"
          f"{'  (RECEIPTS MISSING: ' + ', '.join(missing) + ')' if missing else ''}")
    print(f"  cyclic collections during the changes: {len(pauses.samples)}, longest "
          f"{max(pauses.samples, default=0):.1f} ms, {sum(pauses.samples):.0f} ms in all")
    print(f"  one endpoint of {target} changes ({len(few_users)} subscribed streams), "
          f"{changes} changes: p50 {percentile(few, 0.5):.1f} ms  p99 {percentile(few, 0.99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--coalesce", type=float, default=0.01, help="seconds (the default)")
    parser.add_argument("--skip-envoy", action="store_true")
    parser.add_argument("--scale-services", type=int, default=10_000)
    parser.add_argument("--scale-streams", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--per-connection", type=int, default=1,
                        help="streams per HTTP/2 connection in the scale run (Envoy: 1)")
    parser.add_argument("--profile", action="store_true",
                        help="scale run: cProfile the xDS loop thread during the shared changes")
    parser.add_argument("--only", choices=["scale", "classic"],
                        help="run only the scale run, or only the earlier measurements")
    args = parser.parse_args()
    if args.only != "scale":
        bench_build(args.services, args.endpoints)
        bench_fanout(args.services, args.endpoints, args.streams)
        if not args.skip_envoy:
            bench_convergence(args.trials, args.coalesce)
            bench_data_plane(2000, 500.0)
    if args.only != "classic":
        bench_scale(args.scale_services, args.endpoints, args.scale_streams, args.changes,
                    args.per_connection, args.profile)


if __name__ == "__main__":
    main()
