"""Benchmark the emulator's jobspec side: decode + admit, plan diff and update kind per job.

Run: .venv/bin/python benchmarks/bench_emulator_jobspec.py [--rounds 200]
Prints a Markdown table to paste into docs/performance.md. The floor is what any JSON API pays for
the same body: `json.loads` of the register body and `json.dumps` of the stored job.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from nomadmesh.testing import nomad_api as api
from nomadmesh.testing.jobs import service_job


def _timed(rounds: int, fn: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def _row(name: str, samples: list[float], floor: float) -> str:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    return f"| {name} | {len(ms)} | {p50:.3f} | {ms[int(len(ms) * 0.95) - 1]:.3f} | " \
           f"{p50 / floor:.1f}x |"


def _job(groups: int) -> dict[str, Any]:
    job = service_job("web", count=2, service="web")
    job["TaskGroups"] = [{**job["TaskGroups"][0], "Name": f"g{i}"} for i in range(groups)]
    return job


def _rows(groups: int, rounds: int) -> list[str]:
    body = json.dumps({"Job": _job(groups)}).encode()
    stored = api.admit(api.check_register(api.decode_register(body), None)).job
    changed = json.loads(json.dumps(stored))
    changed["TaskGroups"][0]["Count"] = 5
    changed["JobModifyIndex"], stored["JobModifyIndex"] = 2, 1
    floor = _timed(rounds, lambda: (json.loads(body), json.dumps(stored)))
    floor_p50 = statistics.median(floor) * 1000
    admit = _timed(rounds, lambda: api.admit(api.check_register(api.decode_register(body), None)))
    diff = _timed(rounds, lambda: api.plan_diff(stored, changed, {}))
    kinds = _timed(rounds, lambda: [api.update_kind(stored, changed, g["Name"])
                                    for g in changed["TaskGroups"]])
    return [_row(f"floor: json.loads body + json.dumps job ({groups} groups)", floor, floor_p50),
            _row(f"decode + check + admit ({groups} groups)", admit, floor_p50),
            _row(f"plan_diff, one count change ({groups} groups)", diff, floor_p50),
            _row(f"update_kind per group ({groups} groups)", kinds, floor_p50)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    rounds = parser.parse_args().rounds
    print("| measurement | n | p50 ms | p95 ms | p50 / floor |")
    print("|---|---|---|---|---|")
    for groups in (1, 20):
        print("\n".join(_rows(groups, rounds)))


if __name__ == "__main__":
    main()
