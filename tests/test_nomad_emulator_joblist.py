"""The incremental job listing behind `GET /v1/jobs` (nomadmesh/testing/joblist.py).

Every answer must equal the listing computed from scratch out of the same snapshot, whatever
the writes in between (new jobs, new versions, stability flips, summaries moved by the
scheduler, purges) and however stale the snapshot is.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import requests

from nomadmesh.testing import NomadEmulator
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
