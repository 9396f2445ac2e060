"""Benchmark the emulators: request cost at scale against the HTTP floor, and blocking wake-ups.

Run: .venv/bin/python benchmarks/bench_emulators.py [--jobs 1000] [--waiters 500]
         [--instances 10000] [--repeat 200] [--rounds 200]

Every cost is a median over `--repeat` rounds, taken in rotation with the floor (a keep-alive
`GET /v1/status/leader`, a no-op endpoint on the same server) so machine load affects both alike;
the ratio to the floor is the result. Prints Markdown tables for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from _bench import rotated

from nomadmesh.testing import ConsulEmulator, NomadEmulator
from nomadmesh.testing.config import Timings
from nomadmesh.testing.jobs import service_job


def tiny_job(job_id: str, image: str = "nginx:1.27") -> dict[str, Any]:
    """A one-task service job small enough for 1,000 to fit the three default nodes."""
    job = service_job(job_id, image=image)
    group = job["TaskGroups"][0]
    group["EphemeralDisk"] = {"SizeMB": 110}
    group["Tasks"][0]["Resources"] = {"CPU": 10, "MemoryMB": 10}
    return job


class Keepalive:
    """One keep-alive connection timing whole requests (the answer read to its last byte)."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        try:
            self.conn.request(method, path, body=body)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError):  # idle timeout: reconnect
            self.conn.close()
            self.conn.request(method, path, body=body)
            response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


class Waiters:
    """`n` blocking queries parked on the server, one connection each, on an asyncio thread."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.woken: dict[str, float] = {}
        self.lock = threading.Lock()
        self.tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def park(self, paths: list[str]) -> None:
        """Send every request and return once all are sent."""
        sent = [asyncio.run_coroutine_threadsafe(self._open(path), self.loop) for path in paths]
        for future in sent:
            future.result(60)

    async def _open(self, path: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        self.tasks.add(self.loop.create_task(self._answer(path, reader, writer)))

    async def _answer(self, path: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await reader.read()
        with self.lock:
            self.woken[path] = time.perf_counter()
        writer.close()

    def woken_since(self, before: int) -> int:
        with self.lock:
            return len(self.woken) - before

    def stop(self) -> None:
        async def cancel() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _ratio_rows(floor_name: str, costs: dict[str, float], floor: float) -> list[str]:
    rows = [f"| {floor_name} (floor) | {floor * 1000:.3f} | 1.00 |"]
    rows += [f"| {name} | {cost * 1000:.3f} | {cost / floor:.2f} |"
             for name, cost in costs.items()]
    return rows


def bench_nomad_scale(jobs: int, waiters: int, repeat: int) -> list[str]:
    """1,000 jobs registered and settled, 500 blocking queries parked: what a request costs."""
    lines = []
    # Emulated time at 1/50 (not the default 1/200): a loaded machine must not fail deployments
    # by their healthy deadline (6 s here) while 1,000 of them start.
    with NomadEmulator(timings=Timings(scale=0.02)) as nomad:
        client = Keepalive(nomad.host, nomad.port)
        started = time.perf_counter()
        for i in range(jobs):
            client.call("PUT", "/v1/jobs", json.dumps({"Job": tiny_job(f"job-{i:04d}")}).encode())
        registered = time.perf_counter() - started

        def settled() -> bool:
            snap = nomad.snapshot()
            return sum(1 for a in snap.all("allocs") if a["ClientStatus"] == "running") == jobs \
                and all(d["Status"] == "successful" for d in snap.all("deployment"))

        if not nomad.wait_for(settled, timeout=600):
            snap = nomad.snapshot()
            stuck = [(d["JobID"], d["Status"], d["StatusDescription"])
                     for d in snap.all("deployment") if d["Status"] != "successful"]
            raise SystemExit(f"the jobs did not all become healthy: {stuck[:5]}")
        settle = time.perf_counter() - started
        lines.append(f"Registered {jobs} jobs over HTTP in {registered:.1f} s; all allocations "
                     f"running and deployments successful {settle:.1f} s after the first.")

        parked = Waiters(nomad.host, nomad.port)
        watched = [f"/v1/job/job-{i:04d}?index={_last_index(client, f'/v1/job/job-{i:04d}')}"
                   f"&wait=10m" for i in range(waiters)]
        parked.park(watched)
        assert nomad.wait_for(lambda: sum(nomad.watches.waiting(("jobs", ("default", f"job-{i:04d}")))
                                          for i in range(waiters)) == waiters, timeout=60)
        listing = json.loads(client.call("GET", "/v1/jobs"))
        assert len(listing) == jobs
        last = f"job-{jobs - 1:04d}"  # no waiter watches it
        stable = [json.loads(client.call("GET", f"/v1/job/{last}"))["Stable"]]

        def write() -> None:
            stable[0] = not stable[0]
            client.call("PUT", f"/v1/job/{last}/stable",
                        json.dumps({"JobVersion": 0, "Stable": stable[0]}).encode())

        calls: dict[str, Callable[[], object]] = {
            "GET /v1/job/job-0001": lambda: client.call("GET", "/v1/job/job-0001"),
            "GET /v1/job/job-0001/allocations":
                lambda: client.call("GET", "/v1/job/job-0001/allocations"),
            "GET /v1/jobs?prefix=job-000 (10 jobs)":
                lambda: client.call("GET", "/v1/jobs?prefix=job-000"),
            f"GET /v1/jobs ({jobs} jobs, {len(client.call('GET', '/v1/jobs'))} bytes; "
            f"first read after a write)": lambda: client.call("GET", "/v1/jobs"),
            "GET /v1/jobs again (no write since the last read)":
                lambda: client.call("GET", "/v1/jobs"),
            "PUT /v1/job/<id>/stable (a write)": write,
        }
        before, callbacks = parked.woken_since(0), nomad.watches.calls
        medians = rotated([lambda: client.call("GET", "/v1/status/leader"),
                           *calls.values()], repeat)
        answered = parked.woken_since(before)
        callbacks = nomad.watches.calls - callbacks
        lines.append(f"{waiters} blocking queries parked on `GET /v1/job/<id>?index=...` (one "
                     f"per job); during {repeat} rounds of writes to another job: {answered} "
                     f"answered, {callbacks} watch callbacks called in the whole emulator.")
        lines.append("")
        lines.append("| request (Nomad emulator) | median ms | x floor |")
        lines.append("|---|---|---|")
        lines += _ratio_rows("GET /v1/status/leader", dict(zip(calls, medians[1:], strict=True)),
                             medians[0])

        samples = []
        for i in range(min(repeat, waiters)):
            path = watched[i]
            write_it = flip_stable(client, f"job-{i:04d}")
            changed = time.perf_counter()
            write_it()
            deadline = time.monotonic() + 30
            while path not in parked.woken and time.monotonic() < deadline:
                time.sleep(0.0002)
            samples.append(parked.woken[path] - changed)
        others = parked.woken_since(before) - len(samples)
        lines.append("")
        lines.append(f"Targeted wake-up (a write to job-N answers only job-N's waiter), "
                     f"{len(samples)} rounds: p50 {statistics.median(samples) * 1000:.2f} ms, "
                     f"max {max(samples) * 1000:.2f} ms; other waiters woken: {others}.")
        parked.stop()
        client.close()
    return lines


def flip_stable(client: Keepalive, job_id: str) -> Callable[[], object]:
    """The write that flips version 0's stability (Job.Stable to the same value is a no-op)."""
    stable = json.loads(client.call("GET", f"/v1/job/{job_id}"))["Stable"]
    body = json.dumps({"JobVersion": 0, "Stable": not stable}).encode()
    return lambda: client.call("PUT", f"/v1/job/{job_id}/stable", body)


def bench_consul_scale(instances: int, per_service: int, repeat: int) -> list[str]:
    """10,000 instances in the catalog: a health query costs the instances of its service."""
    lines = []
    with ConsulEmulator() as consul:
        client = Keepalive(consul.host, consul.port)
        for i in range(instances):
            consul.register(f"svc-{i // per_service:04d}", service_id=f"svc-{i}",
                            address="10.0.0.1", port=20000 + i % 10000,
                            checks=[{"CheckID": f"c-{i}", "TTL": "10s", "Status": "passing"}])
        big = "svc-big"
        for i in range(instances // 10):
            consul.register(big, service_id=f"big-{i}", port=i,
                            checks=[{"CheckID": f"b-{i}", "TTL": "10s", "Status": "passing"}])
        flips = [0]

        def flip_and_read() -> None:
            flips[0] += 1
            consul.set_check_status(f"b-{flips[0] % 10}", "critical" if flips[0] % 20 < 10
                                    else "passing")
            client.call("GET", "/v1/health/service/svc-big")

        calls: dict[str, Callable[[], object]] = {
            f"GET /v1/health/service/svc-0001 ({per_service} of {instances} instances)":
                lambda: client.call("GET", "/v1/health/service/svc-0001"),
            f"GET /v1/health/service/svc-0001?passing ({per_service} instances)":
                lambda: client.call("GET", "/v1/health/service/svc-0001?passing=1"),
            f"GET /v1/health/service/svc-big ({instances // 10} instances)":
                lambda: client.call("GET", "/v1/health/service/svc-big"),
            "one svc-big check flipped (Python API), then the same GET": flip_and_read,
            "GET /v1/catalog/service/svc-0001":
                lambda: client.call("GET", "/v1/catalog/service/svc-0001"),
            f"GET /v1/catalog/services ({instances // per_service + 1} names)":
                lambda: client.call("GET", "/v1/catalog/services"),
        }
        medians = rotated([lambda: client.call("GET", "/v1/status/leader"), *calls.values()],
                          repeat)
        lines.append("| request (Consul emulator) | median ms | x floor |")
        lines.append("|---|---|---|")
        lines += _ratio_rows("GET /v1/status/leader", dict(zip(calls, medians[1:], strict=True)),
                             medians[0])
        client.close()
    return lines


def bench_wakeup(rounds: int) -> list[str]:
    """Time from a state change to a blocked client holding its answer (one waiter)."""
    rows = []
    with ConsulEmulator() as consul, NomadEmulator() as nomad:
        consul.register("web", service_id="web-1", checks=[{"CheckID": "c", "TTL": "10s"}])
        nomad.register(tiny_job("watched"))
        writer = Keepalive(nomad.host, nomad.port)
        prepare: tuple[tuple[str, ConsulEmulator | NomadEmulator, str,
                             Callable[[int], Callable[[], object]]], ...] = (
            ("Consul health/service after a check flip (Python API)", consul,
             "/v1/health/service/web", lambda i: lambda: consul.set_check_status(
                 "c", "critical" if i % 2 else "passing")),
            ("Nomad GET /v1/job/<id> after PUT /v1/job/<id>/stable", nomad, "/v1/job/watched",
             lambda i: flip_stable(writer, "watched")),
            ("Nomad GET /v1/jobs after PUT /v1/jobs (a new job)", nomad, "/v1/jobs",
             lambda i: lambda: writer.call("PUT", "/v1/jobs", json.dumps(
                 {"Job": tiny_job(f"wake-{i}")}).encode())))
        for name, emulator, path, change in prepare:
            client = Keepalive(emulator.host, emulator.port)
            parked = Waiters(emulator.host, emulator.port)
            samples = []
            for i in range(rounds):
                index = _last_index(client, path)
                target = f"{path}?index={index}&wait=30s&round={i}"
                write_it = change(i)
                parked.park([target])
                time.sleep(0.005)  # the request reaches the server and blocks
                changed = time.perf_counter()
                write_it()
                deadline = time.monotonic() + 30
                while target not in parked.woken and time.monotonic() < deadline:
                    time.sleep(0.0002)
                samples.append(parked.woken[target] - changed)
            ms = sorted(s * 1000 for s in samples)
            rows.append(f"| {name} | {len(ms)} | {statistics.median(ms):.2f} | "
                        f"{ms[int(len(ms) * 0.95) - 1]:.2f} | {ms[-1]:.2f} |")
            parked.stop()
            client.close()
        writer.close()
    return ["| blocking query wake-up | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|",
            *rows]


def _last_index(client: Keepalive, path: str) -> int:
    client.conn.request("GET", path)
    response = client.conn.getresponse()
    response.read()
    return int(response.getheader("X-Nomad-Index") or response.getheader("X-Consul-Index") or 0)


def main() -> None:
    """Run every benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--waiters", type=int, default=500)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    for name in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "NOMAD_ADDR", "NOMAD_TOKEN"):
        os.environ.pop(name, None)
    print("\n".join(bench_nomad_scale(args.jobs, args.waiters, args.repeat)), end="\n\n")
    print("\n".join(bench_consul_scale(args.instances, 10, args.repeat)), end="\n\n")
    print("\n".join(bench_wakeup(args.rounds)))


if __name__ == "__main__":
    main()
