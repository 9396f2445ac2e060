"""What every discovery source shares: its problem list, the build loop, and value checks."""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from nomadmesh.contract import Upstream, parse_upstreams
from nomadmesh.errors import Problem, XdsError
from nomadmesh.xds.build import MeshConfig, SnapshotBuilder
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import Endpoint

Key = TypeVar("Key", bound=Hashable)
Client = TypeVar("Client")

# Envoy adds up the weights of a locality's endpoints in a uint32; keep far from overflowing it.
MAX_WEIGHT = 1 << 20


def weight_of(value: Any) -> tuple[int, str]:
    """An endpoint weight Envoy accepts from what the source says, and a note when corrected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return 1, f"weight {str(value)[:20]} is not a number, used 1"
    if value > MAX_WEIGHT:
        return MAX_WEIGHT, f"weight {value:.0f} is above {MAX_WEIGHT}, clamped"
    return max(int(value), 0), ""


def entry_upstreams(text: str) -> tuple[tuple[Upstream, ...], list[Problem]]:
    """Routes in the short form of a service's meta."""
    return parse_upstreams(text, "meta")


def seconds_until(moment: datetime.datetime | None) -> float | None:
    """Seconds from now until `moment` (None: no deadline), at least a millisecond."""
    if moment is None:
        return None
    left = (moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    return max(left, 0.001)


class Problems:
    """A source's current problems, each counted, logged once and cleared when it goes away."""

    def __init__(self, source: str, metrics: XdsMetrics, log: logging.Logger) -> None:
        self.source = source
        self.metrics = metrics
        self.log = log
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str], tuple[str, int]] = {}

    def report(self, what: str, kind: str, message: str, *, count: int = 1) -> None:
        """Something is wrong with `what` (a watch, an answer); counted and logged."""
        self.metrics.source_errors.labels(self.source, kind).inc(count)
        with self._lock:
            previous = self._current.get((what, kind))
            total = (previous[1] if previous else 0) + count
            self._current[(what, kind)] = (message, total)
        if previous is None or previous[0] != message:
            self.log.warning("%s %s what=%s error=%s", self.source, kind, what, message)

    def clear(self, what: str, kinds: Iterable[str] | None = None) -> None:
        """`what` is fine again (for the given kinds of problem, or all)."""
        with self._lock:
            gone = [key for key in self._current
                    if key[0] == what and (kinds is None or key[1] in kinds)]
            for key in gone:
                del self._current[key]
        if gone:
            self.log.info("%s recovered what=%s", self.source, what)

    def current(self) -> list[str]:
        """One sentence per problem: `consul health:web: <message> (3 times)`."""
        with self._lock:
            items = sorted(self._current.items())
        return [f"{self.source} {what}: {message}" + (f" ({n} times)" if n > 1 else "")
                for (what, _), (message, n) in items]


class BuildLoop:
    """Applies a source's changes to one SnapshotBuilder on its own thread, coalesced, and hands
    the changed snapshots to the cache."""

    def __init__(self, cache: SnapshotCache, metrics: XdsMetrics, config: MeshConfig, *,
                 coalesce: float, log: logging.Logger, stopped: threading.Event,
                 problems: Problems) -> None:
        self.cache = cache
        self.problems = problems
        self.metrics = metrics
        self.coalesce = coalesce
        self.log = log
        self.builder = SnapshotBuilder(config)
        self._stopped = stopped
        self._lock = threading.Lock()
        self._pending: list[Callable[[SnapshotBuilder], None]] = []
        self._changed = threading.Event()
        self._next_renewal: datetime.datetime | None = None
        self.builds = 0

    def _queue(self, change: Callable[[SnapshotBuilder], None]) -> None:
        with self._lock:
            self._pending.append(change)
        self._changed.set()

    def set_service(self, name: str, endpoints: Iterable[Endpoint],
                    upstreams: Iterable[Upstream]) -> None:
        """A service's endpoints and the routes its sidecars get."""
        endpoints, upstreams = tuple(endpoints), tuple(upstreams)
        self._queue(lambda b: b.set_service(name, endpoints, upstreams))

    def set_endpoints(self, name: str, endpoints: Iterable[Endpoint]) -> None:
        """Only a service's endpoints."""
        endpoints = tuple(endpoints)
        self._queue(lambda b: b.set_service(name, endpoints))

    def set_upstreams(self, name: str, upstreams: Iterable[Upstream]) -> None:
        """Only the routes of a service's sidecars."""
        upstreams = tuple(upstreams)
        self._queue(lambda b: b.set_upstreams(name, upstreams))

    def set_callers(self, name: str, callers: Iterable[str] | None) -> None:
        """Who may call a service (None: the mesh default)."""
        callers = tuple(callers) if callers is not None else None
        self._queue(lambda b: b.set_callers(name, callers))

    def remove_service(self, name: str) -> None:
        """A service is gone."""
        self._queue(lambda b: b.remove_service(name))

    def node_added(self, node_hash: str) -> None:
        """The cache has a first watch for this node hash."""
        self._queue(lambda b: b.add_node(node_hash))

    def node_removed(self, node_hash: str) -> None:
        """The cache's last watch for this node hash closed."""
        self._queue(lambda b: b.remove_node(node_hash))

    def wake(self) -> None:
        """Let `run` notice that the source stopped."""
        self._changed.set()

    def run(self) -> None:
        """Build until the source stops: at most one build per coalescing window, and when a
        certificate is due for renewal."""
        last_build = -self.coalesce
        while not self._stopped.is_set():
            self._changed.wait(seconds_until(self._next_renewal))
            if self._stopped.is_set():
                return
            # An isolated change is built at once; a burst waits for the window to close and
            # goes into one build.
            self._stopped.wait(max(0.0, last_build + self.coalesce - time.monotonic()))
            self._changed.clear()
            with self._lock:
                pending, self._pending = self._pending, []
            last_build = time.monotonic()
            self._build(pending)

    def _build(self, pending: list[Callable[[SnapshotBuilder], None]]) -> None:
        started = time.perf_counter()
        try:
            for change in pending:
                change(self.builder)
            self.builder.renew_due()
            build = self.builder.build()
            self._next_renewal = self.builder.renew_due()
            self.cache.set_snapshots(*build)
        except XdsError as exc:
            self.metrics.snapshot_errors.inc()
            self.problems.report("build", "build_failed", str(exc)[:300])
            return
        except Exception as exc:
            self.metrics.snapshot_errors.inc()
            self.problems.report("build", "build_failed", f"{type(exc).__name__}: {exc}"[:300])
            self.log.exception("snapshot build failed")
            return
        self.problems.clear("build")
        self.builds += 1
        self.metrics.snapshot_build_seconds.observe(time.perf_counter() - started)
        if build.snapshots or build.removed or build.shared:
            self.log.info("snapshots installed changed=%s removed=%s assignments=%s",
                          len(build.snapshots), len(build.removed), len(build.shared))


class Fetcher(Generic[Key, Client]):
    """Reads single services on a fixed number of worker threads, one client (connection) each.

    `mark(keys)` queues reads; a key marked while it is being read is read once more after that
    read, and never by two workers at once, so the last read of a key always starts after its
    last change was seen. However many services there are, the threads and connections are
    `workers`.
    """

    def __init__(self, name: str, workers: int, read: Callable[[Client, Key], None],
                 client: Callable[[], Client], close: Callable[[Client], None],
                 stopped: threading.Event) -> None:
        self.name = name
        self.workers = max(1, workers)
        self._read = read
        self._client = client
        self._close = close
        self._stopped = stopped
        self._cond = threading.Condition()
        self._dirty: dict[Key, None] = {}  # an ordered set: first marked, first read
        self._busy: set[Key] = set()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the workers."""
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"{self.name}-{number}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def mark(self, keys: Iterable[Key]) -> None:
        """Read these keys (again) soon."""
        with self._cond:
            for key in keys:
                self._dirty[key] = None
            self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every marked key was read (False when the source stopped first); with
        a `timeout`, at most that many seconds (then True all the same)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (self._dirty or self._busy) and not self._stopped.is_set():
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    break
                self._cond.wait(left)
        return not self._stopped.is_set()

    def wake(self) -> None:
        """Let the workers notice that the source stopped."""
        with self._cond:
            self._cond.notify_all()

    def join(self, deadline: float) -> None:
        """Wait (until the monotonic `deadline`) for the workers to end."""
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _next(self) -> Key | None:
        with self._cond:
            while not self._stopped.is_set():
                # At most `workers` keys are busy, so this scan stays short.
                key = next((k for k in self._dirty if k not in self._busy), None)
                if key is not None:
                    del self._dirty[key]
                    self._busy.add(key)
                    return key
                self._cond.wait()
        return None

    def _work(self) -> None:
        client = self._client()
        try:
            while (key := self._next()) is not None:
                try:
                    self._read(client, key)
                finally:
                    with self._cond:
                        self._busy.discard(key)
                        self._cond.notify_all()
        finally:
            self._close(client)
