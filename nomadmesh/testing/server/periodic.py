"""The periodic dispatcher, as nomad/periodic.go: launches children of periodic jobs on time.

Every enabled periodic job that is not stopped gets a timer for its next launch (from the
cron specs, `nomad_api.next_launch`); at that time a child `<id>/periodic-<unix>` is
registered with a `periodic-job` evaluation, unless the job prohibits overlap and a child is
still running. Launch times are wall-clock times: `Timings.scale` does not apply to a cron.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from nomadmesh.testing import nomad_api as api
from nomadmesh.testing.nomad_api import NomadApiError
from nomadmesh.testing.server import job_endpoint
from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.loop import Timer
from nomadmesh.testing.watch import WatchKey

if TYPE_CHECKING:
    from nomadmesh.testing.server.server import Server

Key = tuple[str, str]


class PeriodicDispatch:
    """One timer per tracked periodic job."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._timers: dict[Key, Timer] = {}

    def on_commit(self, keys: set[WatchKey], index: int) -> None:
        """Commit listener: periodic (or tracked) jobs that were written or removed."""
        # A write to any other job does not wake the loop. A job that stops being periodic
        # while the loop schedules it keeps a timer whose launch re-checks the job.
        snap = self.server.state.snapshot()
        jobs = [k[1] for k in keys if len(k) == 2 and k[0] == "jobs" and (
            k[1] in self._timers or _periodic(snap.job_by_id(*k[1])))]
        if jobs:
            self.server.loop.call_soon(lambda: self.refresh(jobs))

    def restore(self) -> None:
        """Track the periodic jobs of the state (after a restart)."""
        self.refresh(list(self.server.state.snapshot().keys("jobs")))

    def refresh(self, keys: list[Any]) -> None:
        """(Re)schedule the next launch of these jobs, or stop tracking them."""
        snap = self.server.state.snapshot()
        for key in keys:
            job = snap.job_by_id(*key)
            timer = self._timers.pop(key, None)
            if timer is not None:
                timer.cancel()
            if job is None or job.get("Stop") or not s.is_periodic(job):
                continue
            self._schedule(key, job)

    def _schedule(self, key: Key, job: dict[str, Any]) -> None:
        when = api.next_launch(job, datetime.now().astimezone())
        if when is None:
            return
        delay = when.timestamp() - datetime.now().astimezone().timestamp()
        self._timers[key] = self.server.loop.call_later(delay, lambda: self._launch(key, when))

    def _launch(self, key: Key, when: datetime) -> None:
        self._timers.pop(key, None)
        snap = self.server.state.snapshot()
        job = snap.job_by_id(*key)
        if job is None or job.get("Stop") or not s.is_periodic(job):
            return
        self._schedule(key, job)
        if (job.get("Periodic") or {}).get("ProhibitOverlap") and any(
                child["Status"] != "dead" for child in snap.children(*key)):
            return
        job_endpoint.launch_periodic(self.server, job, when)

    def force(self, namespace: str, job_id: str) -> dict[str, Any]:
        """Periodic.Force (periodic_endpoint.go:40): launch a child now."""
        job = self.server.state.snapshot().job_by_id(namespace, job_id)
        if job is None:
            raise NomadApiError(500, "job not found")
        if not s.is_periodic(job):
            raise NomadApiError(500, "can't force launch non-periodic job")
        return job_endpoint.launch_periodic(self.server, job, datetime.now().astimezone())


def _periodic(job: dict[str, Any] | None) -> bool:
    return job is not None and s.is_periodic(job)
