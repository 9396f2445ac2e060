"""`GET /v1/jobs` at scale: job stubs kept as JSON, re-encoded only where a job or summary changed.

Nomad answers the listing from a memdb prefix iterator over the `jobs` table (namespace, ID
order; job_endpoint.go List). The emulator keeps the stubs' JSON in that order. Every commit
tells the listing which jobs and summaries it wrote, before its snapshot is visible; a request
re-encodes just those stubs (checked against its own snapshot: the state store replaces an
object on every write, so identity tells), finds a `prefix` range by bisection and joins
bytes. A request after a write costs O(changed jobs x log jobs) plus one join.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Mapping
from typing import Any

from nomadmesh.testing._http import go_json, json_array
from nomadmesh.testing.server.state import Snapshot, StateStore
from nomadmesh.testing.watch import WatchKey

Stub = Callable[[Snapshot, Mapping[str, Any], bool], dict[str, Any]]
_LAST = "\U0010ffff"


class JobListing:
    """The JSON stubs of every job, in (namespace, ID) order, for one `meta` setting."""

    def __init__(self, state: StateStore, stub: Stub, meta: bool) -> None:
        self._stub = stub
        self._meta = meta
        self._lock = threading.Lock()
        self._dirty: dict[tuple[str, str], int] = {}  # job key -> index of its last write
        self._keyset = -1
        self._at = 0  # the newest snapshot the cache reflects
        self._order: list[tuple[str, str]] = []
        self._jobs: list[Any] = []
        self._summaries: list[Any] = []
        self._parts: list[bytes] = []
        self._answers: dict[tuple[str, str], tuple[int, bytes]] = {}
        state.precommit.append(self._committed)

    def _committed(self, touched: set[WatchKey], index: int) -> None:
        dirty = [key[1] for key in touched
                 if len(key) == 2 and key[0] in ("jobs", "job_summary")]
        if dirty:
            with self._lock:
                for key in dirty:
                    self._dirty[key] = index

    def answer(self, snap: Snapshot, namespace: str, prefix: str) -> bytes:
        """The JSON array of the stubs of `namespace` ("*": all) whose ID starts with `prefix`."""
        with self._lock:
            marker = snap.table_index("jobs", "job_summary")
            cached = self._answers.get((namespace, prefix))
            if cached is not None and cached[0] == marker:
                return cached[1]
            if snap.index < self._at:  # an older snapshot than the cache: from scratch
                return self._from_scratch(snap, namespace, prefix)
            # Drop the stale answer first: its memory then holds the new one (fresh memory for
            # half a megabyte costs more in page faults than re-encoding the changed stubs).
            self._answers.pop((namespace, prefix), None)
            self._at = snap.index
            self._realign(snap)
            self._refresh_dirty(snap)
            if namespace != "*":
                parts = self._parts[bisect.bisect_left(self._order, (namespace, prefix)):
                                    bisect.bisect_left(self._order, (namespace, prefix + _LAST))]
            elif prefix:
                parts = [part for key, part in zip(self._order, self._parts, strict=True)
                         if key[1].startswith(prefix)]
            else:
                parts = self._parts
            data = json_array(parts)
            if len(self._answers) > 64:
                self._answers.clear()
            self._answers[(namespace, prefix)] = (marker, data)
            return data

    def stubs(self, snap: Snapshot) -> list[tuple[Mapping[str, Any], bytes]]:
        """Every job with its stub's JSON, in order (for filtered listings)."""
        with self._lock:
            if snap.index < self._at:
                return [(job, go_json(self._stub(snap, job, self._meta)))
                        for job in _in_order(snap)]
            self._at = snap.index
            self._realign(snap)
            self._refresh_dirty(snap)
            jobs = snap.rows("jobs")
            return list(zip([jobs[key] for key in self._order],
                            self._parts, strict=True))

    def _from_scratch(self, snap: Snapshot, namespace: str, prefix: str) -> bytes:
        return json_array([
            go_json(self._stub(snap, job, self._meta)) for job in _in_order(snap)
            if (namespace == "*" or job["Namespace"] == namespace)
            and job["ID"].startswith(prefix)])

    def _realign(self, snap: Snapshot) -> None:
        """After jobs came or went, the new order, keeping the JSON of the jobs that stayed."""
        keyset = snap.keyset_index("jobs")
        if keyset == self._keyset:
            return
        kept = {key: (job, summary, part) for key, job, summary, part in zip(
            self._order, self._jobs, self._summaries, self._parts, strict=True)}
        self._order = sorted(snap.keys("jobs"))  # type: ignore[arg-type]
        rows = [kept.get(key, (None, None, b"")) for key in self._order]
        self._jobs = [row[0] for row in rows]
        self._summaries = [row[1] for row in rows]
        self._parts = [row[2] for row in rows]
        self._keyset = keyset
        for key, row in zip(self._order, rows, strict=True):
            if row[0] is None:
                self._dirty.setdefault(key, 0)

    def _refresh_dirty(self, snap: Snapshot) -> None:
        """Re-encode the stubs written since the last request (as of this snapshot)."""
        if not self._dirty:
            return
        jobs, summaries = snap.rows("jobs"), snap.rows("job_summary")
        order = self._order
        for key, index in list(self._dirty.items()):
            i = bisect.bisect_left(order, key)
            if i < len(order) and order[i] == key:
                job, summary = jobs.get(key), summaries.get(key)
                if job is not None and (job is not self._jobs[i]
                                        or summary is not self._summaries[i]):
                    self._jobs[i], self._summaries[i] = job, summary
                    self._parts[i] = go_json(self._stub(snap, job, self._meta))
            if index <= snap.index:
                del self._dirty[key]


def _in_order(snap: Snapshot) -> list[Mapping[str, Any]]:
    return sorted(snap.all("jobs"), key=lambda job: (job["Namespace"], job["ID"]))
