"""One thread on which the emulated cluster's own work runs: timers and handed-over callbacks.

The eval broker and worker, the deployment watcher, the periodic dispatcher and the simulated
clients all run here, one callback at a time and in order, so they never race each other; HTTP
handlers and task runners on other threads only write to the state store and hand work over
with `call_soon`. No lock is held while a callback runs. Stopping keeps pending timers, so a
cluster that is started again carries on where it stopped.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
from collections.abc import Callable

import attrs

LAG = 0.05  # the loop is behind when due work waits longer than this
MAX_DEFERRAL = 30.0


@attrs.define(eq=False)
class Timer:
    """A pending callback; `cancel()` drops it."""

    when: float
    fn: Callable[[], None]
    cancelled: bool = False
    patient: bool = False
    due: float = 0.0

    def cancel(self) -> None:
        """Do not run the callback."""
        self.cancelled = True



class Loop:
    """A timer heap and a queue, served by one daemon thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._running = False

    def call_later(self, delay: float, fn: Callable[[], None], *,
                   patient: bool = False) -> Timer:
        """Run `fn` after `delay` seconds.

        A patient timer (a deadline) waits for the loop to catch up with work that was due
        before it, so a busy emulator does not fail what it simply has not processed yet.
        """
        when = time.monotonic() + max(delay, 0.0)
        timer = Timer(when, fn, patient=patient, due=when)
        self._push(timer)
        return timer

    def _push(self, timer: Timer) -> None:
        with self._wake:
            heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
            self._wake.notify()

    def call_soon(self, fn: Callable[[], None]) -> Timer:
        """Run `fn` as soon as the loop gets to it (after what is already due)."""
        return self.call_later(0.0, fn)

    @property
    def in_loop(self) -> bool:
        """Whether the caller runs on the loop's thread."""
        return threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the thread (pending timers survive a stop/start)."""
        with self._wake:
            if self._running:
                return
            self._running = True
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; callbacks not yet run stay queued."""
        with self._wake:
            self._running = False
            self._wake.notify()
        if self._thread is not None and not self.in_loop:
            self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._running and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if not self._running:
                    return
                _, _, timer = heapq.heappop(self._heap)
                now = time.monotonic()
                behind = bool(self._heap) and self._heap[0][0] < now - LAG
                if timer.patient and behind and now - timer.due < MAX_DEFERRAL:
                    timer.when = now + LAG
                    heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
                    continue
            if timer.cancelled:
                continue
            try:
                timer.fn()
            except Exception:  # an emulator bug: show it, keep the cluster going
                traceback.print_exc()
