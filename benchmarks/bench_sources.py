"""Discovery sources at scale: the Consul and Nomad sources before and after one-loop watching.

Run: python benchmarks/bench_sources.py [--services 1000 10000] [--endpoints 2] [--changes 40]
     [--baseline dfecd11] [--only consul|nomad] [--impl old|new|fallback]
     python benchmarks/bench_sources.py --nodes 100 --services 10000 --endpoints 10 [--rounds 2]

For each source, number of services and implementation, in one run against the same emulator
(in its own process, as Consul or Nomad would be): the threads the source holds, its open
connections to the server, the time from start until the builder has every service, and the time
from a single-service change made in the server to the builder receiving that service, p50/p99.
"old" is the source as it was at `--baseline` (one thread and one blocking query per service,
loaded from git); "new" is the current source (Consul: catalog + checks watches and a reader
pool; Nomad: the event stream and a reader pool), and "fallback" (Nomad only) the current
source's blocking-query fallback (`watch="blocking"`: the list watch and the reader pool), all
with the default budget of 8 connections.
Changes: Consul, a check flip (passing <-> critical) on one service; a new instance of a known
service (which the catalog cannot attribute, so the new source reads every node, then rebuilds
the services whose instances' ModifyIndex moved); Nomad, a registration added and removed. CPU
per change is this process's CPU time (the source; the server runs in another process).

With `--nodes N` (the multi-node case), the Consul emulator holds N nodes besides its own, the
instances spread over them as a Consul client agent per Nomad client registers them, and the
current source is run twice per round, alternately: "full" with per-node attribution off (every
node read on each unattributed catalog move, as before), then "nodes" (each node's index probed,
only the nodes whose index moved read). The change is a new instance of an unsubscribed service
on one node, then its removal; reported: time to the builder, the nodes read and probed per
change, CPU per change, and the ratios full/nodes of the same round.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import requests

from nomadmesh.contract import SERVICE_META_KEY
from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.ads import connected_sidecar
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.sources.consul import PROBE_FILTER, ConsulSource
from nomadmesh.xds.sources.nomad import NomadSource

ROOT = Path(__file__).resolve().parent.parent


def node_of(service: int, endpoint: int, nodes: int) -> str:
    """The node an instance is registered on, in the multi-node case."""
    return f"node-{(service * 7 + endpoint) % nodes}"


def serve(kind: str, services: int, endpoints: int, conn: Connection, nodes: int = 0) -> None:
    """The emulator process: fill it, then apply the parent's changes one by one."""
    emulator: Any = ConsulEmulator() if kind == "consul" else NomadEmulator()
    emulator.start()
    if kind == "consul" and nodes:
        for s in range(services):
            for e in range(endpoints):
                emulator.catalog_register(node_instance(node_of(s, e, nodes), f"svc-{s}",
                                                        f"svc-{s}-{e}", 20000 + e))
    elif kind == "consul":
        for s in range(services):
            for e in range(endpoints):
                emulator.register(f"svc-{s}", service_id=f"svc-{s}-{e}", address="127.0.0.1",
                                  port=20000 + e, checks=[{"CheckID": f"svc-{s}-{e}-check",
                                                           "TTL": "1h", "Status": "passing"}])
    else:
        registrations = [nomad_registration(s, e) for s in range(services)
                         for e in range(endpoints)]
        for start in range(0, len(registrations), 1000):
            chunk = registrations[start:start + 1000]
            emulator.server.write(lambda txn, chunk=chunk: [txn.upsert_service(r) for r in chunk])
    conn.send((emulator.address, emulator.port))
    while True:
        command, *args = conn.recv()
        if command == "stop":
            break
        if command == "flip":
            emulator.set_check_status(*args)
        elif command == "consul-add":
            name, instance, port = args
            emulator.register(name, service_id=instance, address="127.0.0.1", port=port,
                              checks=[{"CheckID": f"{instance}-check", "TTL": "1h",
                                       "Status": "passing"}])
        elif command == "consul-caller":
            emulator.register("caller", service_id="caller-1", address="127.0.0.1", port=7000,
                              meta={SERVICE_META_KEY: args[0]},
                              checks=[{"CheckID": "caller-1-check", "TTL": "1h",
                                       "Status": "passing"}])
        elif command == "consul-remove":
            emulator.deregister(args[0])
        elif command == "node-add":
            emulator.catalog_register(node_instance(*args))
        elif command == "node-remove":
            emulator.catalog_deregister({"Node": args[0], "ServiceID": args[1]})
        elif command == "nomad-add":
            reg = nomad_registration(*args)
            emulator.server.write(lambda txn, reg=reg: txn.upsert_service(reg))
        elif command == "nomad-remove":
            reg_id = nomad_registration(*args)["ID"]
            emulator.server.write(lambda txn, reg_id=reg_id: txn.delete_service(reg_id))
        conn.send("done")
    emulator.stop()


def node_instance(node: str, name: str, instance: str, port: int) -> dict[str, Any]:
    """A `/v1/catalog/register` body: one instance on `node` with a passing check."""
    number = int(node.rsplit("-", 1)[1])
    return {"Node": node, "Address": f"10.{number // 250}.{number % 250}.1",
            "Service": {"Service": name, "ID": instance, "Address": "127.0.0.1", "Port": port},
            "Check": {"CheckID": f"{instance}-check", "Name": "alive", "Status": "passing",
                      "ServiceID": instance}}


def nomad_registration(service: int, endpoint: int) -> dict[str, Any]:
    return {"ID": f"_nomad-task-svc-{service}-{endpoint}", "ServiceName": f"svc-{service}",
            "Namespace": "default", "NodeID": "n1", "Datacenter": "dc1",
            "JobID": f"svc-{service}", "AllocID": f"a-{service}-{endpoint}", "Tags": [],
            "Address": "127.0.0.1", "Port": 20000 + endpoint}


def baseline_source(revision: str, kind: str) -> ModuleType:
    """A source as it was at `revision` (one thread and blocking query per service)."""
    text = subprocess.run(["git", "show", f"{revision}:nomadmesh/xds/sources/{kind}.py"],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{kind}_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"{kind}_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Watched:
    """What the source hands its builder: per service, the last endpoints and when."""

    def __init__(self, source: Any) -> None:
        self.cond = threading.Condition()
        self.last: dict[str, tuple[float, tuple[Any, ...]]] = {}
        loop = source._builds
        original = loop.set_service

        def set_service(name: str, endpoints: Any, upstreams: Any) -> None:
            endpoints = tuple(endpoints)
            with self.cond:
                self.last[name] = (time.perf_counter(), endpoints)
                self.cond.notify_all()
            original(name, endpoints, upstreams)

        loop.set_service = set_service

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def connections_to(port: int) -> int:
    return sum(1 for c in psutil.Process().net_connections(kind="tcp")
               if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)


def run(kind: str, impl: str, services: int, endpoints: int, changes: int,
        baseline: dict[str, ModuleType]) -> None:
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(kind, services, endpoints, child))
    server.start()
    address, port = parent.recv()

    def change(*command: Any) -> float:
        started = time.perf_counter()
        parent.send(command)
        parent.recv()
        return started

    cache, metrics = SnapshotCache(), XdsMetrics()
    source: Any
    if kind == "consul":
        cls = baseline["consul"].ConsulSource if impl == "old" else ConsulSource
        source = cls(address, cache, metrics)
    elif impl == "old":
        source = baseline["nomad"].NomadSource(address, cache, metrics)
    else:
        source = NomadSource(address, cache, metrics,
                             watch="blocking" if impl == "fallback" else "auto")
    threads_before = threading.active_count()
    watched = Watched(source)
    started = time.perf_counter()
    source.start()
    loaded = watched.wait(lambda: len(watched.last) >= services, timeout=900)
    load_s = time.perf_counter() - started
    time.sleep(0.5)  # let connections settle
    threads = threading.active_count() - threads_before
    conns = connections_to(port)
    rss = psutil.Process().memory_info().rss >> 20
    line = (f"  {kind:6} {impl:3} {services:6} services x {endpoints}: threads {threads:6}  "
            f"connections {conns:6}  load {load_s:7.2f} s  rss {rss} MiB")
    if not loaded:
        print(line + f"  (ONLY {len(watched.last)} LOADED)", flush=True)
    else:
        print(line, flush=True)
        mode = "per-service" if impl == "old" else getattr(source, "mode", "catalog")
        targets = [f"svc-{(i * 7919) % services}" for i in range(changes)]
        if kind == "consul":
            samples = []
            for name in targets:
                for status in ("critical", "passing"):
                    at = change("flip", f"{name}-0-check", status)
                    if not watched.wait(lambda name=name, status=status, at=at:
                                        watched.last[name][0] >= at
                                        and watched.last[name][1][0].health == status,
                                        timeout=60):
                        print(f"    MISSED: {name} {status}", flush=True)
                        continue
                    samples.append((watched.last[name][0] - at) * 1000)
                    time.sleep(0.02)
            report(f"{kind} {impl} check flip", samples, mode, source)
            few = targets[:max(3, changes // 8)]

            def new_instances(what: str) -> None:
                samples = []
                cpu = CpuPerChange()
                for name in few:
                    instance = f"{name}-extra"
                    at = change("consul-add", name, instance, 29999)
                    watched.wait(lambda name=name, at=at: watched.last[name][0] >= at and any(
                        e.port == 29999 for e in watched.last[name][1]), timeout=120)
                    samples.append((watched.last[name][0] - at) * 1000)
                    change("consul-remove", instance)
                    watched.wait(lambda name=name: all(e.port != 29999 for e in
                                                       watched.last[name][1]), timeout=120)
                    cpu.settle(2, source)
                report(f"{kind} {impl} {what}", samples, mode, source, cpu.per_change())

            new_instances("new instance")
            if impl == "new":
                # The same changes to services a connected sidecar routes to (`caller`, whose
                # meta routes to them): read one by one ahead of the re-read.
                change("consul-caller", ",".join(f"{name}=/{name}" for name in few))
                watched.wait(lambda: "caller" in watched.last, timeout=60)
                with connected_sidecar(cache, "caller"):
                    time.sleep(0.5)
                    new_instances("new instance, routed to")
        else:
            samples = []
            cpu = CpuPerChange()
            for name in targets:
                service = int(name.removeprefix("svc-"))
                at = change("nomad-add", service, endpoints)
                watched.wait(lambda name=name, at=at: watched.last[name][0] >= at and len(
                    watched.last[name][1]) == endpoints + 1, timeout=60)
                samples.append((watched.last[name][0] - at) * 1000)
                at = change("nomad-remove", service, endpoints)
                watched.wait(lambda name=name, at=at: watched.last[name][0] >= at and len(
                    watched.last[name][1]) == endpoints, timeout=60)
                samples.append((watched.last[name][0] - at) * 1000)
                cpu.settle(2, source)
            report(f"{kind} {impl} add/remove", samples, mode, source, cpu.per_change())
    stopping = time.perf_counter()
    source.stop()
    parent.send(("stop",))
    server.join(timeout=60)
    deadline = time.monotonic() + 60
    while threading.active_count() > threads_before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    print(f"    stopped in {time.perf_counter() - stopping:.1f} s", flush=True)



def run_nodes(services: int, endpoints: int, nodes: int, changes: int, rounds: int) -> None:
    """The multi-node case: one emulator; per round, the source with per-node attribution off
    ("full") and on ("nodes"), each loaded afresh, each given the same changes."""
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve,
                                     args=("consul", services, endpoints, child, nodes))
    started = time.perf_counter()
    server.start()
    address, _ = parent.recv()
    print(f"  consul {services} services x {endpoints} over {nodes} nodes: emulator filled in "
          f"{time.perf_counter() - started:.1f} s", flush=True)

    def change(*command: Any) -> float:
        at = time.perf_counter()
        parent.send(command)
        parent.recv()
        return at

    # What the emulator alone takes to answer a probe and a node's read, one after another
    # (a Python process serves them all: the probes of one change add up there).
    session = requests.Session()
    base = address if "://" in address else "http://" + address
    spent: dict[str, float] = {}
    for what, params in (("probe", {"filter": PROBE_FILTER}), ("read", {})) * 2:  # 2nd kept
        began = time.perf_counter()
        for n in range(nodes):
            session.get(f"{base}/v1/catalog/node/node-{n}", params=params,
                        timeout=30).raise_for_status()
        spent[what] = (time.perf_counter() - began) / nodes * 1000
    print(f"    emulator alone, nodes one after another: a probe {spent['probe']:.1f} ms, a "
          f"node's read {spent['read']:.1f} ms", flush=True)
    session.close()
    targets = [(i * 7919) % services for i in range(changes)]
    for number in range(1, rounds + 1):
        results = {impl: measure_nodes(impl, number, address, services, endpoints, nodes,
                                       targets, change) for impl in ("full", "nodes")}
        full, fast = results["full"], results["nodes"]
        if full and fast:
            print(f"    round {number} full/nodes: p50 {full[0] / fast[0]:5.1f}x  p99 "
                  f"{full[1] / fast[1]:5.1f}x  node reads {full[2] / max(fast[2], 1e-9):5.1f}x"
                  f"  cpu {full[3] / max(fast[3], 1e-9):5.1f}x", flush=True)
    parent.send(("stop",))
    server.join(timeout=60)


def measure_nodes(impl: str, number: int, address: str, services: int, endpoints: int,
                  nodes: int, targets: list[int], change: Callable[..., float]
                  ) -> tuple[float, float, float, float] | None:
    """One source on the multi-node emulator: (p50 ms, p99 ms, node reads per change, CPU ms
    per change) of a new instance of each target service on one node, and its removal."""
    source = ConsulSource(address, SnapshotCache(), XdsMetrics(), node_probes=impl == "nodes")
    watched = Watched(source)
    began = time.perf_counter()
    source.start()
    loaded = watched.wait(lambda: len(watched.last) >= services, timeout=900)
    load_s = time.perf_counter() - began
    # the first load's re-read has ended (its node reads are what later probes compare to)
    deadline = time.monotonic() + 120
    while source.rereads < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    if not loaded:
        print(f"    round {number} {impl}: ONLY {len(watched.last)} LOADED", flush=True)
        source.stop()
        return None
    samples: list[float] = []
    cpu = CpuPerChange()
    read, probed = source.nodes_read_total, source.nodes_probed_total
    for service in targets:
        name, instance = f"svc-{service}", f"svc-{service}-extra"
        node = node_of(service, endpoints, nodes)
        at = change("node-add", node, name, instance, 29999)
        watched.wait(lambda name=name, at=at: watched.last[name][0] >= at and any(
            e.port == 29999 for e in watched.last[name][1]), timeout=120)
        samples.append((watched.last[name][0] - at) * 1000)
        at = change("node-remove", node, instance)
        watched.wait(lambda name=name, at=at: watched.last[name][0] >= at and all(
            e.port != 29999 for e in watched.last[name][1]), timeout=120)
        samples.append((watched.last[name][0] - at) * 1000)
        cpu.settle(2, source)
    reads = (source.nodes_read_total - read) / len(samples)
    probes = (source.nodes_probed_total - probed) / len(samples)
    result = (percentile(samples, 0.5), percentile(samples, 0.99), reads, cpu.per_change())
    print(f"    round {number} {impl:5}: load {load_s:6.2f} s  change -> builder p50 "
          f"{result[0]:7.1f} ms  p99 {result[1]:7.1f} ms  max {max(samples):7.1f} ms  "
          f"node reads/change {reads:6.2f}  probes/change {probes:6.1f}  "
          f"cpu/change {result[3]:6.1f} ms  attributed {source.attributed}/{source.relists}",
          flush=True)
    source.stop()
    time.sleep(1.0)
    return result


class CpuPerChange:
    """This process's CPU time (the source's threads: the server is another process) per
    change, less what the process spends idle in the same wall time."""

    def __init__(self) -> None:
        started, wall = time.process_time(), time.perf_counter()
        time.sleep(0.5)
        self.idle = (time.process_time() - started) / (time.perf_counter() - wall)
        self.cpu, self.wall, self.changes = time.process_time(), time.perf_counter(), 0

    def settle(self, changes: int, source: Any) -> None:
        """`changes` more were made and seen; let their work (a re-read's tail) finish, so
        the next change is not queued behind it."""
        time.sleep(0.3)
        deadline = time.monotonic() + 30
        # Consul: every re-read started (the first load's and each counted one) has ended.
        while (hasattr(source, "rereads") and source.rereads < source.relists + 1
               and time.monotonic() < deadline):
            time.sleep(0.01)
        self.changes += changes

    def per_change(self) -> float:
        spent = time.process_time() - self.cpu
        idle = self.idle * (time.perf_counter() - self.wall)
        return max(0.0, spent - idle) / max(1, self.changes) * 1000


def report(what: str, samples: list[float], mode: str, source: Any,
           cpu_ms: float | None = None) -> None:
    print(f"    {what:28} ({mode}): change -> builder p50 {percentile(samples, 0.5):8.1f} ms  "
          f"p99 {percentile(samples, 0.99):8.1f} ms  max {max(samples):8.1f} ms  "
          f"mean {statistics.mean(samples):8.1f} ms  re-reads {getattr(source, 'relists', '-')}"
          + (f"  cpu/change {cpu_ms:.1f} ms" if cpu_ms is not None else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--baseline", default="dfecd11",
                        help="git revision of the per-service Consul source")
    parser.add_argument("--only", choices=["consul", "nomad"])
    parser.add_argument("--impl", choices=["old", "new", "fallback"])
    parser.add_argument("--nodes", type=int, default=0,
                        help="the multi-node Consul case: this many nodes (full vs per-node)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="multi-node case: alternating full/nodes rounds")
    args = parser.parse_args()
    if args.nodes:
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
              f"python {sys.version.split()[0]}", flush=True)
        for services in args.services:
            run_nodes(services, args.endpoints, args.nodes, args.changes, args.rounds)
        print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
        return
    baseline = {kind: baseline_source(args.baseline, kind) for kind in ("consul", "nomad")}
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
          f"python {sys.version.split()[0]}", flush=True)
    for kind in ("consul", "nomad"):
        if args.only not in (None, kind):
            continue
        for services in args.services:
            for impl in ("old", "new", "fallback"):
                if args.impl not in (None, impl) or (kind, impl) == ("consul", "fallback"):
                    continue
                run(kind, impl, services, args.endpoints, args.changes, baseline)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
