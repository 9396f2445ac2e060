"""The eval broker, blocked evals and the scheduling worker (nomad/eval_broker.go, worker.go).

Pending evaluations are processed one at a time on the cluster loop, in the order they were
created; one whose `WaitUntil` lies ahead (delayed rescheduling) waits for it. A scheduler run
reads a snapshot, and its plan and evaluation updates are committed in one transaction. Blocked
evaluations (placements that did not fit) are kept, one per job (a newer one cancels the older,
as blocked_evals.go's duplicates), and run again whenever capacity is freed: an allocation
stops or finishes, or a node is added.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from nomadmesh.testing.server import structs as s
from nomadmesh.testing.server.scheduler import apply_plan, schedule
from nomadmesh.testing.watch import WatchKey

if TYPE_CHECKING:
    from nomadmesh.testing.server.server import Server


class Worker:
    """Feeds pending evaluations to the schedulers and commits their plans."""

    def __init__(self, server: Server, port_free: Callable[[str, int], bool]) -> None:
        self.server = server
        self.port_free = port_free
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._blocked: dict[tuple[str, str], str] = {}
        self._live: set[str] = set()
        self._scheduled = False

    def on_commit(self, keys: set[WatchKey], index: int) -> None:
        """Commit listener: new evaluations to run, capacity that was freed."""
        evals = [k[1] for k in keys if len(k) == 2 and k[0] == "evals"]
        allocs = [k[1] for k in keys if len(k) == 2 and k[0] == "allocs"]
        nodes = any(len(k) == 2 and k[0] == "nodes" for k in keys)
        if evals or allocs or nodes:
            self.server.loop.call_soon(lambda: self._changed(evals, allocs, nodes))

    def restore(self) -> None:
        """Pick up the pending and blocked evaluations in the state (after a restart)."""
        snap = self.server.state.snapshot()
        self._changed([e["ID"] for e in snap.all("evals")], [a["ID"] for a in snap.all("allocs")],
                      False)

    def _changed(self, eval_ids: list[str], alloc_ids: list[str], nodes: bool) -> None:
        snap = self.server.state.snapshot()
        for eval_id in eval_ids:
            ev = snap.eval_by_id(eval_id)
            if ev is None:
                continue
            key = (ev["Namespace"], ev["JobID"])
            if ev["Status"] == s.EVAL_PENDING:
                wait = s.parse_rfc3339(ev.get("WaitUntil")) - s.now_ns()
                if wait > 0:
                    self.server.loop.call_later(wait / 1e9, self._enqueuer(eval_id))
                else:
                    self._enqueue(eval_id)
            elif ev["Status"] == s.EVAL_BLOCKED:
                self._block(key, ev)
            elif self._blocked.get(key) == eval_id:
                del self._blocked[key]
        freed = nodes
        for alloc_id in alloc_ids:
            alloc = snap.alloc_by_id(alloc_id)
            if alloc is not None and not s.terminal(alloc):
                self._live.add(alloc_id)
            elif alloc_id in self._live:
                self._live.discard(alloc_id)
                freed = True
        if freed:
            for blocked in list(self._blocked.values()):
                self._enqueue(blocked)

    def _enqueuer(self, eval_id: str) -> Callable[[], None]:
        return lambda: self._enqueue(eval_id)

    def _block(self, key: tuple[str, str], ev: dict[str, Any]) -> None:
        existing = self._blocked.get(key)
        if existing is None or existing == ev["ID"]:
            self._blocked[key] = ev["ID"]
            return
        snap = self.server.state.snapshot()
        other = snap.eval_by_id(existing)
        keep: dict[str, Any] = ev
        drop: dict[str, Any] | None = other
        if other is not None and _latest_index(other) > _latest_index(ev):
            keep, drop = other, ev
        self._blocked[key] = keep["ID"]
        if drop is not None and drop["Status"] == s.EVAL_BLOCKED:
            self.server.write(lambda txn: txn.upsert_eval(s.evolve(
                drop, Status=s.EVAL_CANCELLED, ModifyTime=s.now_ns(),
                StatusDescription=f'existing blocked evaluation exists for job "{key[1]}"')))

    def _enqueue(self, eval_id: str) -> None:
        if eval_id in self._queued:
            return
        self._queued.add(eval_id)
        self._queue.append(eval_id)
        if not self._scheduled:
            self._scheduled = True
            self.server.loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        while self._queue:
            eval_id = self._queue.popleft()
            self._queued.discard(eval_id)
            self.process(eval_id)

    def process(self, eval_id: str) -> None:
        """Schedule one evaluation and commit its plan, evaluation and follow-ups."""
        snap = self.server.state.snapshot()
        ev = snap.eval_by_id(eval_id)
        if ev is None or ev["Status"] not in (s.EVAL_PENDING, s.EVAL_BLOCKED):
            return
        if ev["Status"] == s.EVAL_PENDING and s.parse_rfc3339(ev.get("WaitUntil")) > (
                s.now_ns() + 1_000_000):
            return  # its timer will bring it back
        started = time.monotonic()
        outcome = schedule(ev, snap, update_kind=self.server.update_kind,
                           port_free=self.port_free, scale=self.server.timings.scale)
        outcome.eval["ModifyTime"] = s.now_ns() + int((time.monotonic() - started) * 1e9)

        def commit(txn: Any) -> None:
            apply_plan(txn, outcome.plan)
            for new in outcome.new_evals:
                txn.upsert_eval(new)
            txn.upsert_eval(outcome.eval)

        self.server.write(commit)


def _latest_index(ev: Mapping[str, Any]) -> int:
    """latestEvalIndex (blocked_evals.go): the larger of create and snapshot index."""
    return max(int(ev.get("CreateIndex") or 0), int(ev.get("SnapshotIndex") or 0))
