"""Waiting in the main thread for SIGTERM or SIGINT, whichever thread the kernel delivers it to.

A process-directed signal goes to any thread that does not block it. CPython's C handler then
only flags the signal; the Python handler runs when the main thread next executes bytecode. A
main thread parked in `threading.Event.wait()` sleeps on a futex that the signal never touches
when another thread (the xDS event loop, a gRPC poller, an emulator's HTTP thread) took it, so
the handler never runs and the command never stops. The C handler also writes the signal number
to the wakeup fd (`signal.set_wakeup_fd`) from whichever thread it runs in: waiting on that
socket wakes the main thread every time.
"""

from __future__ import annotations

import select
import signal
import socket
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_Handler = Callable[[int, FrameType | None], Any] | int | None


class StopSignals:
    """`with StopSignals() as signals: ...; signals.wait()`: block until SIGTERM or SIGINT.

    Inside the block SIGTERM no longer terminates the process: one that arrives before `wait()`
    is kept and makes it return at once, so the work in the block is cleaned up. SIGINT is kept
    the same way, unless `interruptible`: then SIGINT before `wait()` raises KeyboardInterrupt as
    Python's default handler does (for a long set-up that Ctrl+C must cut short). Leaving the
    block restores the previous handlers and wakeup fd. Main thread only (as `signal.signal`).
    """

    def __init__(self, *, interruptible: bool = False) -> None:
        self._interruptible = interruptible
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous_fd = -1
        self._previous: dict[int, _Handler] = {}
        self._waiting = False
        self._kept: list[int] = []  # stop signals read while raising KeyboardInterrupt

    def __enter__(self) -> StopSignals:
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler; while waiting, the wakeup byte says which signal came."""
        if signum == signal.SIGINT and self._interruptible and not self._waiting:
            self._kept.extend(s for s in self._received() if s != signal.SIGINT)
            raise KeyboardInterrupt

    def _received(self) -> list[int]:
        """The stop signals whose wakeup bytes are waiting in the socket."""
        try:
            return [s for s in self._read.recv(512) if s in STOP_SIGNALS]
        except BlockingIOError:
            return []

    def wait(self) -> int:
        """Block until SIGTERM or SIGINT has arrived; the signal's number."""
        self._waiting = True
        poller = select.poll()  # not select(): a control plane may hold more than 1,024 fds
        poller.register(self._read, select.POLLIN)
        received = self._kept
        while not received:
            poller.poll()
            received = self._received()
        return received[0]

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, handler in self._previous.items():
            # None: the handler was not set from Python; the default is what it was.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._read.close()
        self._write.close()
