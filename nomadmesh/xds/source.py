"""What the control plane needs of a source (Consul, Nomad, a snapshot file): run, stop, health."""

from __future__ import annotations

from typing import Protocol

import attrs


@attrs.frozen
class SourceHealth:
    """Whether a source is keeping its snapshots current, and if not, one line per problem."""

    ok: bool
    problems: tuple[str, ...] = ()


class Source(Protocol):
    """Something that keeps the snapshot cache filled, from its own thread(s)."""

    def start(self) -> None:
        """Load once (raising XdsError if that is impossible) and keep watching."""

    def stop(self) -> None:
        """Stop watching; the cache keeps its last snapshots."""

    def health(self) -> SourceHealth:
        """Whether the last reads succeeded; problems say what failed (no secrets)."""
