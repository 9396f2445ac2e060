"""Benchmark the emulators: register+read-back through python-nomad, blocking-query wake-up.

Run: .venv/bin/python benchmarks/bench_emulators.py [--rounds 300]
Prints a Markdown table (p50/p95/max in milliseconds) to paste into docs/performance.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import threading
import time
from collections.abc import Callable

import consul as python_consul
import nomad as python_nomad
import requests

from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.jobs import service_job


def _stats(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return (f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | {p95:.2f} | "
            f"{ms[-1]:.2f} |")


def _timed(rounds: int, fn: Callable[[int], None]) -> list[float]:
    out = []
    for i in range(rounds):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def bench_register(nomad: NomadEmulator, rounds: int) -> list[str]:
    """Register + read back through python-nomad, against a bare status GET as the HTTP floor."""
    client = python_nomad.Nomad(host=nomad.host, port=nomad.port, timeout=10)

    raw = http.client.HTTPConnection(nomad.host, nomad.port)

    def status(_: int) -> None:
        client.status.leader.get_leader()

    def raw_status(_: int) -> None:
        raw.request("GET", "/v1/status/leader")
        raw.getresponse().read()

    def register_and_read(i: int) -> None:
        job = service_job("bench", image=f"nginx:{i}")
        client.job.register_job("bench", {"Job": job})
        assert client.job.get_job("bench")["Version"] == i

    _timed(20, status)
    return [_stats("http.client keep-alive GET /v1/status/leader (server floor)",
                   _timed(rounds, raw_status)),
            _stats("python-nomad GET /v1/status/leader (client + HTTP floor)",
                   _timed(rounds, status)),
            _stats("python-nomad register + get_job (new version each round)",
                   _timed(rounds, register_and_read))]


def _wake_latency(rounds: int, index_of: Callable[[], str], wait: Callable[[str], None],
                  change: Callable[[int], None]) -> list[float]:
    samples = []
    for i in range(rounds):
        index = index_of()
        woke: list[float] = []
        ready = threading.Event()

        def waiter(idx: str = index, out: list[float] = woke, go: threading.Event = ready) -> None:
            go.set()
            wait(idx)
            out.append(time.perf_counter())

        thread = threading.Thread(target=waiter)
        thread.start()
        ready.wait()
        time.sleep(0.002)  # let the request reach the server and block
        changed = time.perf_counter()
        change(i)
        thread.join()
        samples.append(woke[0] - changed)
    return samples


def bench_wakeup(consul: ConsulEmulator, nomad: NomadEmulator, rounds: int) -> list[str]:
    """Time from a change (Python-side write) to the blocked client holding its answer."""
    cclient = python_consul.Consul(host=consul.host, port=consul.port)
    consul.register("web", service_id="web-1", checks=[{"CheckID": "c", "TTL": "10s"}])
    session = requests.Session()

    def consul_index() -> str:
        index, _ = cclient.health.service("web")
        return str(index)

    def consul_wait(index: str) -> None:
        cclient.health.service("web", index=index, wait="10s")

    def flip(i: int) -> None:
        consul.set_check_status("c", "passing" if i % 2 == 0 else "critical")

    def nomad_index() -> str:
        return str(session.get(f"{nomad.url}/v1/jobs", timeout=5).headers["X-Nomad-Index"])

    def nomad_wait(index: str) -> None:
        requests.get(f"{nomad.url}/v1/jobs", params={"index": index, "wait": "10s"}, timeout=20)

    def register(i: int) -> None:
        nomad.register(service_job(f"wake-{i}"))

    def job_index() -> str:
        return str(session.get(f"{nomad.url}/v1/job/watched", timeout=5).headers["X-Nomad-Index"])

    def job_wait(index: str) -> None:
        requests.get(f"{nomad.url}/v1/job/watched", params={"index": index, "wait": "10s"},
                     timeout=20)

    def flip_stable(i: int) -> None:
        nomad.cluster.set_stable("default", "watched", 0, i % 2 == 0)

    def new_version(i: int) -> None:
        nomad.register(service_job("watched", image=f"nginx:{i + 1}"))

    nomad.register(service_job("watched"))

    plain = _timed(rounds, lambda _: consul_index())
    return [
        _stats("python-consul2 health.service, non-blocking (baseline)", plain),
        _stats("Consul blocking health.service wake-up after a check flip",
               _wake_latency(rounds, consul_index, consul_wait, flip)),
        _stats("Nomad blocking GET /v1/job/<id> wake-up after a stable flip",
               _wake_latency(rounds, job_index, job_wait, flip_stable)),
        _stats("Nomad Python-side register of a new version alone (validate + canonicalize)",
               _timed(rounds, new_version)),
        _stats("Nomad blocking GET /v1/job/<id> answer after a new version (incl. register)",
               _wake_latency(rounds, job_index, job_wait,
                             lambda i: new_version(i + rounds))),
        _stats(f"Nomad blocking GET /v1/jobs wake-up after a register (list grows to {rounds})",
               _wake_latency(rounds, nomad_index, nomad_wait, register)),
    ]


def main() -> None:
    """Run every benchmark and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    for name in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN"):
        os.environ.pop(name, None)
    rows = []
    with ConsulEmulator() as consul, NomadEmulator() as nomad:
        rows += bench_register(nomad, args.rounds)
        rows += bench_wakeup(consul, nomad, args.rounds)
    print("| measurement | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
