"""Snapshot building at scale: the full build, and what one change costs, against a baseline.

Run: python benchmarks/bench_build.py [--services 10000] [--endpoints 10] [--nodes 2000]

The mesh: `services` services of `endpoints` endpoints, each calling the next three services;
`nodes` connected sidecars (one node hash each, spread over the services). Measured in one run:
- the full build of every connected sidecar's snapshot;
- one endpoint's health flip (Consul or Nomad), rebuilt incrementally by `SnapshotBuilder`;
- a policy change of one service's routes;
- the baseline: a full rebuild from scratch after the same flip (what per-change work that
  is not proportional to the change would cost), so the ratio says what incrementality buys.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from nomadmesh.contract import Policy, Upstream
from nomadmesh.xds.build import MeshState, SnapshotBuilder
from nomadmesh.xds.resources import Endpoint


def mesh_state(services: int, endpoints: int) -> MeshState:
    names = [f"svc-{i:05d}" for i in range(services)]
    return MeshState(
        endpoints={name: tuple(Endpoint(f"10.{i // 250 % 250}.{i % 250}.{j + 1}", 8080)
                               for j in range(endpoints)) for i, name in enumerate(names)},
        upstreams={name: tuple(Upstream(names[(i + k) % services], f"/{names[(i + k) % services]}")
                               for k in (1, 2, 3)) for i, name in enumerate(names)},
    )


def nodes_of(services: int, nodes: int) -> list[str]:
    return [f"svc-{i * services // nodes:05d}|egress_port={3101 + i % 7}" for i in range(nodes)]


def builder_for(state: MeshState, nodes: list[str]) -> SnapshotBuilder:
    builder = SnapshotBuilder()
    builder.load(state)
    for node in nodes:
        builder.add_node(node)
    return builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=2_000)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()

    state = mesh_state(args.services, args.endpoints)
    nodes = nodes_of(args.services, args.nodes)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    builder = builder_for(state, nodes)
    snapshots = builder.build().snapshots
    full = time.perf_counter() - started
    memory = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(f"mesh: {args.services} services x {args.endpoints} endpoints, {args.nodes} sidecars "
          f"({len(snapshots)} snapshots)")
    print(f"  full build              {full * 1000:9.1f} ms   peak RSS growth "
          f"{memory / 2**20:7.1f} MiB ({memory / args.nodes / 1024:.1f} KiB per sidecar)")

    flips: list[float] = []
    touched: list[int] = []
    replaced: list[int] = []
    # Each flip hits a service that connected sidecars call (the first upstream of node n).
    for n in range(args.changes):
        node = nodes[(n * 37) % len(nodes)]
        caller = int(node.split("|")[0].removeprefix("svc-"))
        service = f"svc-{(caller + 1) % args.services:05d}"
        health = "critical"  # each flip is a different service, so each is a change
        endpoints = tuple(e._replace(health=health) if i == 0 else e
                          for i, e in enumerate(state.endpoints[service]))
        started = time.perf_counter()
        builder.set_service(service, endpoints)
        build = builder.build()
        flips.append(time.perf_counter() - started)
        touched.append(len(build.snapshots))
        replaced.append(len(build.shared))
    policies = []
    for n in range(args.changes):
        service = nodes[(n * 53) % len(nodes)].split("|")[0]  # a service with a sidecar
        routes = tuple(u.with_policy(Policy(timeout=f"{n % 9 + 1}s"))
                       for u in state.upstreams[service])
        started = time.perf_counter()
        builder.set_upstreams(service, routes)
        builder.build()
        policies.append(time.perf_counter() - started)

    baseline = []
    for _ in range(3):
        started = time.perf_counter()
        builder_for(state, nodes).build()
        baseline.append(time.perf_counter() - started)

    def line(label: str, samples: list[float]) -> None:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        print(f"  {label:22s}  p50 {statistics.median(samples) * 1000:8.3f} ms   "
              f"p99 {p99 * 1000:8.3f} ms")

    line("one endpoint flip", flips)
    line("one service's policy", policies)
    line("baseline: full rebuild", baseline)
    print(f"  one flip: median {statistics.median(touched):.0f} of {args.nodes} snapshots rebuilt, "
          f"{statistics.median(replaced):.0f} shared assignment(s) replaced")
    print(f"  ratio flip / full rebuild: {statistics.median(flips) / min(baseline):.5f}")


if __name__ == "__main__":
    main()
