"""A new service name on a single-node Consul: the Consul source before and after it attributes
every catalog move (a move that adds a name may hold other writes too).

Run: python benchmarks/bench_consul_new_name.py [--services 10000] [--endpoints 2] [--changes 5]
     [--before 18d9240] [--rounds 2]

One emulator (its own process, one node) filled as bench_sources.py fills it; per round the
source at `--before` (a new name read on its own, no re-read) and the current one (the name read
on its own, and the move re-read node by node), alternately. Reported: the time from the write to
the builder receiving the new service, the re-reads, and this process's CPU per change.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

from bench_sources import CpuPerChange, Watched, baseline_source, percentile, serve

from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.sources.consul import ConsulSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--endpoints", type=int, default=2)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--before", default="18d9240")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sources = {"before": baseline_source(args.before, "consul").ConsulSource,
               "after": ConsulSource}
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve,
                                     args=("consul", args.services, args.endpoints, child))
    server.start()
    address, _ = parent.recv()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    made = 0
    for number in range(1, args.rounds + 1):
        for label, cls in sources.items():
            source = cls(address, SnapshotCache(), XdsMetrics())
            watched = Watched(source)
            source.start()
            watched.wait(lambda w=watched: len(w.last) >= args.services, timeout=600)
            while source.rereads < 1:
                time.sleep(0.05)
            time.sleep(0.5)
            cpu = CpuPerChange()
            samples = []
            for _ in range(args.changes):
                made += 1
                name = f"brand-new-{made}"
                at = time.perf_counter()
                parent.send(("consul-add", name, f"{name}-1", 29999))
                parent.recv()
                watched.wait(lambda name=name, w=watched: name in w.last, timeout=60)
                samples.append((watched.last[name][0] - at) * 1000)
                cpu.settle(1, source)
            print(f"  round {number} {label:6}: new name -> builder p50 "
                  f"{percentile(samples, 0.5):6.1f} ms  max {max(samples):6.1f} ms  re-reads "
                  f"{source.relists}  cpu/change {cpu.per_change():6.1f} ms", flush=True)
            source.stop()
            time.sleep(1.0)
    parent.send(("stop",))
    server.join(timeout=60)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)


if __name__ == "__main__":
    main()
