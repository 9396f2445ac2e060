"""Deploy client benchmarks against the Nomad emulator (real HTTP on loopback).

1. `client.register(job)` (model conversion, Meta and the Submission included) against a bare
   python-nomad `register_job` of the prebuilt dict; target: at most 1.15x.
2. How soon `run()` returns after the deployment turns successful on the server; target: p50 at
   most 50 ms.

Run: `.venv/bin/python benchmarks/bench_deploy.py [--rounds N]`; prints a table and exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

import nomad

from nomadmesh.deploy import NomadClient
from nomadmesh.model import Group, Job, Resources, Task
from nomadmesh.testing import NomadEmulator


def make_job(job_id: str, image: str = "busybox:1.36") -> Job:
    task = Task("app", driver="docker", config={"image": image, "args": ["-c", "sleep 3600"]},
                resources=Resources(cpu=50, memory=32), env={"MODE": "bench"})
    return Job(job_id, datacenters=("dc1",), groups=(Group("api", count=1, tasks=(task,)),))


def bench_register(rounds: int) -> tuple[float, float]:
    """Median seconds per register: (python-nomad with a prebuilt dict, NomadClient.register)."""
    bare_times: list[float] = []
    ours_times: list[float] = []
    with NomadEmulator() as emulator, NomadClient(emulator.url) as client:
        bare = nomad.Nomad(address=emulator.url, timeout=10)
        jobs = [make_job(f"bench-{i}") for i in range(rounds)]
        prebuilt = [{"Job": j.to_api()} for j in jobs]
        ours = [make_job(f"ours-{i}") for i in range(rounds)]  # converted inside register()
        for warm in range(5):
            bare.job.register_job("warm", {"Job": make_job("warm").to_api()})
            client.register(make_job(f"warm-{warm}"))
        for i in range(rounds):  # interleaved, so drift in the emulator hits both equally
            t0 = time.perf_counter()
            bare.job.register_job(jobs[i].id, prebuilt[i])
            t1 = time.perf_counter()
            client.register(ours[i])
            t2 = time.perf_counter()
            bare_times.append(t1 - t0)
            ours_times.append(t2 - t1)
    return statistics.median(bare_times), statistics.median(ours_times)


def bench_notice(rounds: int) -> list[float]:
    """Seconds from the deployment turning successful on the server to `run()` returning."""
    latencies: list[float] = []
    with NomadEmulator() as emulator, NomadClient(emulator.url) as client:
        emulator.timings.healthy_after = 0.2
        for i in range(rounds):
            job = make_job(f"notice-{i}")
            turned: list[float] = []

            def watch(job_id: str = job.id, turned: list[float] = turned) -> None:
                def successful() -> bool:
                    dep = emulator.snapshot().latest_deployment("default", job_id)
                    return dep is not None and dep["Status"] == "successful"
                # wait_for is woken by the same write that completes the deployment.
                if emulator.wait_for(successful, timeout=30):
                    turned.append(time.perf_counter())

            watcher = threading.Thread(target=watch)
            watcher.start()
            client.run(job, timeout=30)
            returned = time.perf_counter()
            watcher.join()
            latencies.append(returned - turned[0])
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--notice-rounds", type=int, default=30)
    args = parser.parse_args()
    bare, ours = bench_register(args.rounds)
    ratio = ours / bare
    latencies = bench_notice(args.notice_rounds)
    p50 = statistics.median(latencies)
    p90 = statistics.quantiles(latencies, n=10)[-1]
    print(f"register: python-nomad {bare * 1e3:.2f} ms, NomadClient.register {ours * 1e3:.2f} ms"
          f" -> {ratio:.3f}x (target <= 1.15x)")
    print(f"run() notices a successful deployment: p50 {p50 * 1e3:.1f} ms, "
          f"p90 {p90 * 1e3:.1f} ms (target p50 <= 50 ms)")
    return 0 if ratio <= 1.15 and p50 <= 0.050 else 1


if __name__ == "__main__":
    sys.exit(main())
