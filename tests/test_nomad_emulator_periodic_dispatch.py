"""The periodic dispatcher is woken only by writes to periodic jobs (or jobs it tracks)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from nomadmesh.testing import NomadEmulator
from nomadmesh.testing.jobs import batch_job, service_job
from nomadmesh.testing.server import job_endpoint


def _periodic(job_id: str) -> dict[str, Any]:
    job = batch_job(job_id)
    job["Periodic"] = {"Enabled": True, "SpecType": "cron", "Spec": "0 0 1 1 *"}
    return job


def test_only_periodic_or_tracked_jobs_reach_the_dispatcher(
        nomad: NomadEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The start-up restore (a refresh of every job) runs on the loop: let it run first, or a
    # loaded machine runs it after the writes below and it counts them.
    started = threading.Event()
    nomad.server.loop.call_soon(started.set)
    assert started.wait(timeout=30)
    dispatcher = nomad.server.periodic
    refreshed: list[Any] = []
    refresh = dispatcher.refresh

    def recording(keys: list[Any]) -> None:
        refreshed.extend(keys)
        refresh(keys)

    monkeypatch.setattr(dispatcher, "refresh", recording)
    tracked = dispatcher._timers

    def barrier(job_id: str) -> None:
        """Refreshes run in order on the loop: once this job is tracked, earlier ones ran."""
        nomad.register(_periodic(job_id))
        assert nomad.wait_for(lambda: ("default", job_id) in tracked, timeout=10)

    nomad.register(service_job("web"))
    job_endpoint.stable(nomad.server, "default", "web", 0, True)
    barrier("nightly")
    assert ("default", "web") not in refreshed
    assert refreshed == [("default", "nightly")]

    job_endpoint.deregister(nomad.server, "default", "nightly", purge=False)  # stopped
    assert nomad.wait_for(lambda: ("default", "nightly") not in tracked, timeout=10)
    barrier("weekly")
    job_endpoint.deregister(nomad.server, "default", "weekly", purge=True)  # gone, was tracked
    assert nomad.wait_for(lambda: ("default", "weekly") not in tracked, timeout=10)
    assert refreshed == [("default", "nightly")] * 2 + [("default", "weekly")] * 2
