"""The incremental job listing behind `GET /v1/jobs` (nomadmesh/testing/joblist.py).

Every answer must equal the listing computed from scratch out of the same snapshot, whatever
the writes in between (new jobs, new versions, stability flips, summaries moved by the
scheduler, purges) and however stale the snapshot is.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing._http import go_json
from nomadmesh.testing.joblist import JobListing
from nomadmesh.testing.jobs import service_job
from nomadmesh.testing.server import job_endpoint
from nomadmesh.testing.server.state import Snapshot


def _stub(snap: Snapshot, job: Mapping[str, Any], meta: bool) -> dict[str, Any]:
    summary = snap.job_summary(job["Namespace"], job["ID"])
    return {"ID": job["ID"], "Version": job["Version"], "Stable": job["Stable"],
            "Stop": job.get("Stop", False), "Summary": summary,
            **({"Meta": job.get("Meta")} if meta else {})}


def _reference(snap: Snapshot, prefix: str, meta: bool) -> list[dict[str, Any]]:
    return [_stub(snap, job, meta) for job in snap.jobs()
            if job["Namespace"] == "default" and job["ID"].startswith(prefix)]


def test_every_answer_equals_a_listing_from_scratch(nomad: NomadEmulator) -> None:
    rng = random.Random(7)
    listing = JobListing(nomad.state, _stub, meta=True)
    snapshots = []
    for step in range(120):
        ids = sorted(j["ID"] for j in nomad.snapshot().jobs())
        action = rng.choice(["new", "version", "stable", "purge"] if ids else ["new"])
        if action == "new":
            nomad.register(service_job(f"{rng.choice('abc')}-{step}", meta={"n": str(step)}))
        elif action == "version":
            nomad.register(service_job(rng.choice(ids), image=f"nginx:{step}"))
        elif action == "stable":
            job_id = rng.choice(ids)
            job = nomad.snapshot().job_by_id("default", job_id)
            assert job is not None
            job_endpoint.stable(nomad.server, "default", job_id, job["Version"],
                                not job["Stable"])
        else:
            job_endpoint.deregister(nomad.server, "default", rng.choice(ids), purge=True)
        snapshots.append(nomad.snapshot())
        # the latest snapshot, and now and then an old one (a request that read before writes)
        for snap in (snapshots[-1], rng.choice(snapshots)):
            for prefix in ("", "a", "b-1", "zzz"):
                answer = json.loads(listing.answer(snap, "default", prefix))
                assert answer == _reference(snap, prefix, True), (step, action, prefix)


def test_the_http_listing_follows_updates_and_prefixes(nomad: NomadEmulator) -> None:
    for job_id in ("web", "web-2", "worker", "api"):
        nomad.register(service_job(job_id))

    def listed(**params: str) -> dict[str, int]:
        r = requests.get(f"{nomad.url}/v1/jobs", params=params, timeout=10)
        return {j["ID"]: j["JobModifyIndex"] for j in r.json()}

    before = listed()
    assert list(before) == ["api", "web", "web-2", "worker"]
    assert list(listed(prefix="web")) == ["web", "web-2"]
    nomad.register(service_job("web-2", image="nginx:2"))
    after = listed(prefix="web")
    assert after["web"] == before["web"] and after["web-2"] > before["web-2"]
    job_endpoint.deregister(nomad.server, "default", "web", purge=True)
    assert list(listed(prefix="w")) == ["web-2", "worker"]
    assert list(listed(prefix="nothing")) == []


def _encoded_from_scratch(nomad: NomadEmulator, snap: Snapshot,
                          meta: bool) -> list[tuple[Mapping[str, Any], bytes]]:
    jobs = sorted(snap.all("jobs"), key=lambda job: (job["Namespace"], job["ID"]))
    return [(job, go_json(nomad._stub(snap, job, meta))) for job in jobs]


def _array(parts: list[bytes]) -> bytes:
    """The JSON array as the listing wrote it before it was kept incrementally."""
    return b"[" + b",".join(parts) + b"]"


def test_the_emulators_listing_is_byte_for_byte_an_encoding_from_scratch(
        nomad: NomadEmulator) -> None:
    rng = random.Random(13)
    snapshots = []
    for step in range(60):
        jobs = [(j["Namespace"], j["ID"]) for j in nomad.snapshot().jobs()]
        action = rng.choice(["new", "new", "version", "stable", "stop", "purge"]
                            if jobs else ["new"])
        if action == "new":
            job = service_job(f"{rng.choice('ab')}-{step}", meta={"n": str(step)})
            job["Namespace"] = rng.choice(["default", "team-a"])
            nomad.register(job)
        elif action in ("version", "stop"):
            namespace, job_id = rng.choice(jobs)
            job = service_job(job_id, image=f"nginx:{step}")
            job["Namespace"], job["Stop"] = namespace, action == "stop"
            nomad.register(job)
        elif action == "stable":
            namespace, job_id = rng.choice(jobs)
            current = nomad.snapshot().job_by_id(namespace, job_id)
            assert current is not None
            job_endpoint.stable(nomad.server, namespace, job_id, current["Version"],
                                not current["Stable"])
        else:
            job_endpoint.deregister(nomad.server, *rng.choice(jobs), purge=True)
        snapshots.append(nomad.snapshot())
        for snap in (snapshots[-1], rng.choice(snapshots)):
            for meta in (False, True):
                encoded = _encoded_from_scratch(nomad, snap, meta)
                listing = nomad._listings[meta]
                for namespace in ("default", "team-a", "*"):
                    for prefix in ("", "a", "b-1", "zzz"):
                        expected = _array([part for job, part in encoded
                                           if namespace in ("*", job["Namespace"])
                                           and job["ID"].startswith(prefix)])
                        assert listing.answer(snap, namespace, prefix) == expected, (
                            step, action, meta, namespace, prefix)
                assert [part for _, part in listing.stubs(snap)] == [
                    part for _, part in encoded], (step, action, meta)


def test_the_http_listing_is_byte_for_byte_an_encoding_from_scratch(
        nomad: NomadEmulator) -> None:
    for n in range(12):
        job = service_job(f"{'ab'[n % 2]}-{n}", meta={"n": str(n)})
        job["Namespace"] = ("default", "team-a", "team-b")[n % 3]
        nomad.register(job)
    job_endpoint.stable(nomad.server, "team-a", "b-1", 0, True)
    queries: list[tuple[dict[str, str], Callable[[Mapping[str, Any]], bool], bool]] = [
        ({}, lambda job: job["Namespace"] == "default", False),
        ({"namespace": "*", "meta": "true"}, lambda job: True, True),
        ({"namespace": "team-a", "prefix": "b"},
         lambda job: job["Namespace"] == "team-a" and job["ID"].startswith("b"), False),
        ({"namespace": "*", "filter": 'Namespace == "team-b"'},
         lambda job: job["Namespace"] == "team-b", False),
        ({"namespace": "*", "prefix": "a", "meta": "true", "filter": 'Meta.n != "0"'},
         lambda job: job["ID"].startswith("a") and job["ID"] != "a-0", True),
    ]
    for params, chosen, meta in queries:
        # the scheduler moves job summaries meanwhile: compare with a snapshot that did not move
        deadline = time.monotonic() + 30
        while True:
            before = nomad.snapshot()
            answer = requests.get(f"{nomad.url}/v1/jobs", params=params, timeout=10)
            if nomad.snapshot().index == before.index or time.monotonic() > deadline:
                break
        assert answer.status_code == 200, answer.text
        expected = _array([part for job, part in _encoded_from_scratch(nomad, before, meta)
                           if chosen(job)])
        assert answer.content == expected, params
