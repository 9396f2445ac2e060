"""Following Nomad objects with blocking queries: each followed object is one thread feeding a queue.

A `Follower` repeats a blocking query (`?index=<last X-Nomad-Index>&wait=...`) and hands every
answer whose index moved to the watcher's queue; the watcher reacts in one thread, in arrival order.
Nothing sleeps between queries, so a change is seen as soon as the server reports it. An index that
goes backwards (a restarted or different server) restarts the query from zero, as Nomad advises.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from nomadmesh.deploy._http import Reply
from nomadmesh.errors import NomadmeshError

# fetch(index, wait, cancelled) -> Reply; `cancelled` tells the transport to stop retrying.
Fetch = Callable[[int, float, Callable[[], bool]], Reply]


class Follower(threading.Thread):
    """Repeats one blocking query and posts `(name, body)` (or `(name, error)`) to a queue."""

    def __init__(self, name: str, fetch: Fetch, out: queue.Queue[tuple[str, Any]],
                 *, wait: float = 30.0) -> None:
        super().__init__(name=f"nomadmesh-follow-{name}", daemon=True)
        self.key = name
        self._fetch = fetch
        self._out = out
        self._wait = wait
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Stop after the query in flight returns; its answer is dropped."""
        self._stopped.set()

    def run(self) -> None:
        index = 0
        first = True
        while not self._stopped.is_set():
            try:
                reply = self._fetch(index, self._wait, self._stopped.is_set)
            except NomadmeshError as exc:
                if not self._stopped.is_set():
                    self._out.put((self.key, exc))
                return
            if self._stopped.is_set():
                return
            if first or reply.index != index:
                self._out.put((self.key, reply.body))
            first = False
            index = reply.index if reply.index >= index else 0


class Watch:
    """A set of followers sharing one queue; a context manager that stops them all on exit."""

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._followers: dict[str, Follower] = {}

    def follow(self, name: str, fetch: Fetch, *, wait: float = 30.0) -> None:
        """Start following (replacing a follower of the same name)."""
        self.unfollow(name)
        follower = Follower(name, fetch, self.queue, wait=wait)
        self._followers[name] = follower
        follower.start()

    def unfollow(self, name: str) -> None:
        """Stop following one object."""
        follower = self._followers.pop(name, None)
        if follower is not None:
            follower.stop()

    def next(self, timeout: float) -> tuple[str, Any] | None:
        """The next answer from any live follower, or None when `timeout` passes first."""
        while True:
            try:
                name, body = self.queue.get(timeout=max(0.0, timeout))
            except queue.Empty:
                return None
            if name in self._followers:
                return name, body

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self._followers):
            self.unfollow(name)
