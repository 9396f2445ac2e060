"""`nomadmesh logs`: a task's output per allocation, its tail, or followed as it is written.

As `nomad alloc logs -job` (command/alloc_logs.go at aa026cc): stdout by default, -stderr instead;
-tail with -n LINES (default 10) or -c BYTES, read from the end of the log (origin=end with an
offset of 120 bytes a line, then cut to the lines asked for, as Nomad's LineLimitReader does); -f
follows the newest allocation, and with no stream or tail flag follows stdout and stderr together,
each to its own stream (tailMultipleFiles). A follow ends when the task's log ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs
import click

from nomadmesh.errors import NomadmeshError, NotFound

if TYPE_CHECKING:
    from nomadmesh.deploy import Allocation, NomadClient

DEFAULT_TAIL_LINES = 10  # alloc_logs.go: defaultTailLines
BYTES_PER_LINE = 120  # alloc_logs.go: bytesToLines
_TERMINAL = ("complete", "failed", "lost")


@attrs.frozen(kw_only=True)
class LogRequest:
    """What to show: which job/task/allocations, which stream, all of it, its tail or followed."""

    job_id: str
    task: str
    group: str | None = None
    alloc_prefix: str = ""
    stderr: bool = False
    follow: bool = False
    tail: bool = False
    lines: int | None = None
    count_bytes: int | None = None

    @property
    def both_streams(self) -> bool:
        """-f alone follows stdout and stderr at once (alloc_logs.go:245)."""
        return self.follow and not (self.stderr or self.tail)

    @property
    def origin(self) -> str:
        """Where reading starts: the end of the log for a tail, else its start."""
        return "end" if self.tail else "start"

    @property
    def start(self) -> int:
        """The offset from the origin: how far from the end a tail starts (alloc_logs.go:283)."""
        if not self.tail:
            return 0
        if self.count_bytes is not None:
            return self.count_bytes
        return (self.lines if self.lines is not None else DEFAULT_TAIL_LINES) * BYTES_PER_LINE


def show_logs(client: NomadClient, request: LogRequest) -> None:
    """Print the logs `request` asks for."""
    allocations = _allocations(client, request)
    if request.follow:
        newest = max(allocations, key=lambda a: (a.client_status not in _TERMINAL,
                                                 a.job_version))
        _follow(client, request, newest)
        return
    kind = "stderr" if request.stderr else "stdout"
    for alloc in allocations:
        try:
            text = client.logs(alloc.id, request.task, stderr=request.stderr,
                               origin=request.origin, offset=request.start)
        except NotFound:
            raise _gone(request, alloc) from None
        click.echo(f"==> {request.job_id} {alloc.group} {alloc.id[:8]} {request.task} ({kind})")
        click.echo(_tail(text, request) if request.tail else text, nl=False)


def _allocations(client: NomadClient, request: LogRequest) -> list[Allocation]:
    found = [a for a in client.status(request.job_id).allocations
             if a.id.startswith(request.alloc_prefix)
             and (request.group is None or a.group == request.group)]
    if not found:
        which = " ".join(filter(None, (
            f"in group {request.group!r}" if request.group else "",
            f"starting with {request.alloc_prefix!r}" if request.alloc_prefix else "")))
        raise NomadmeshError(f"job {request.job_id!r} has no allocation"
                             + (f" {which}" if which else ""))
    return found


def _gone(request: LogRequest, alloc: Allocation) -> NomadmeshError:
    return NomadmeshError(f"allocation {alloc.id[:8]} of {request.job_id!r} is gone")


def _tail(text: str, request: LogRequest) -> str:
    """The end of what was read: the last -c bytes, or the last -n lines."""
    if request.count_bytes is not None:
        data = text.encode()
        return data[len(data) - request.count_bytes:].decode(errors="replace") \
            if request.count_bytes else ""
    lines = request.lines if request.lines is not None else DEFAULT_TAIL_LINES
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""


def _follow(client: NomadClient, request: LogRequest, alloc: Allocation) -> None:
    streams = (False, True) if request.both_streams else (request.stderr,)
    kinds = ", ".join("stderr" if s else "stdout" for s in streams)
    click.echo(f"==> {request.job_id} {alloc.group} {alloc.id[:8]} {request.task} ({kinds})")
    failures: list[BaseException] = []

    def pump(stderr: bool) -> None:
        try:
            chunks: Iterator[str] = client.follow_logs(
                alloc.id, request.task, stderr=stderr, origin=request.origin,
                offset=request.start)
            first = True
            for chunk in chunks:
                text = _tail(chunk, request) if first and request.tail else chunk
                first = False
                click.echo(text, nl=False, err=stderr)
        except NotFound:
            failures.append(_gone(request, alloc))
        except NomadmeshError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=pump, args=(s,), daemon=True, name=f"logs-{s}")
               for s in streams]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        # Ctrl+C ends a follow, as in nomad; the daemon threads die with the process.
        sys.stdout.flush()
        return
    if failures:
        raise failures[0]
