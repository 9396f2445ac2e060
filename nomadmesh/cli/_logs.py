"""`nomadmesh logs`: a task's output per allocation, its tail, or followed as it grows.

As `nomad alloc logs -job` (command/alloc_logs.go at aa026cc): stdout by default, -stderr instead;
-tail with -n LINES (default 10) or -c BYTES; -f follows, and with no stream or tail flag follows
stdout and stderr together (tailMultipleFiles), each to its own stream. Following polls the
allocation's log and prints what is new, and ends when the allocation has stopped and nothing more
was written.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import attrs
import click

from nomadmesh.errors import NomadmeshError, NotFound

if TYPE_CHECKING:
    from nomadmesh.deploy import Allocation, NomadClient

DEFAULT_TAIL_LINES = 10  # alloc_logs.go: defaultTailLines
POLL_SECONDS = 0.5
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


def show_logs(client: NomadClient, request: LogRequest, *,
              stop: threading.Event | None = None) -> None:
    """Print the logs `request` asks for; `stop` ends a follow early (tests, signals)."""
    allocations = _allocations(client, request)
    if request.follow:
        newest = max(allocations, key=lambda a: (a.client_status not in _TERMINAL, a.job_version))
        _follow(client, request, newest, stop or threading.Event())
        return
    kind = "stderr" if request.stderr else "stdout"
    for alloc in allocations:
        text = _read(client, request, alloc, request.stderr)
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
        raise NomadmeshError(f"job {request.job_id!r} has no allocation" + (f" {which}"
                                                                           if which else ""))
    return found


def _read(client: NomadClient, request: LogRequest, alloc: Allocation, stderr: bool) -> str:
    try:
        return client.logs(alloc.id, request.task, stderr=stderr)
    except NotFound:
        raise NomadmeshError(f"allocation {alloc.id[:8]} of {request.job_id!r} is gone") from None


def _tail(text: str, request: LogRequest) -> str:
    if request.count_bytes is not None:
        data = text.encode()
        return data[len(data) - request.count_bytes:].decode(errors="replace") \
            if request.count_bytes else ""
    lines = request.lines if request.lines is not None else DEFAULT_TAIL_LINES
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines else ""


def _follow(client: NomadClient, request: LogRequest, alloc: Allocation,
            stop: threading.Event) -> None:
    streams = (False, True) if request.both_streams else (request.stderr,)
    kinds = ", ".join("stderr" if s else "stdout" for s in streams)
    click.echo(f"==> {request.job_id} {alloc.group} {alloc.id[:8]} {request.task} ({kinds})")
    seen = dict.fromkeys(streams, 0)
    first = True
    try:
        while True:
            done = _terminal(client, request, alloc.id)
            grew = False
            for stderr in streams:
                text = _read(client, request, alloc, stderr)
                new = text[seen[stderr]:]
                if first and request.tail:
                    new = _tail(new, request)
                if new:
                    grew = True
                    click.echo(new, nl=False, err=stderr)
                seen[stderr] = len(text)
            first = False
            if (done and not grew) or stop.wait(POLL_SECONDS):
                return
    except KeyboardInterrupt:
        sys.stdout.flush()


def _terminal(client: NomadClient, request: LogRequest, alloc_id: str) -> bool:
    """Whether the allocation has stopped running (then its logs can no longer grow)."""
    api = client.api
    stubs = api.allocations(request.job_id, api.http.params())
    return any(a.get("ID") == alloc_id and a.get("ClientStatus") in _TERMINAL for a in stubs)
