"""A source fed from Python: you give it the whole `MeshState`, it keeps every sidecar served.

For embedding the control plane (the demo, tests, programs with their own discovery): each
`update(state)` builds, synchronously, the snapshots of the sidecars that state changes.
"""

from __future__ import annotations

import threading

from nomadmesh.xds.build import MeshConfig, MeshState, SnapshotBuilder
from nomadmesh.xds.cache import SnapshotCache


class MeshStateSource:
    """Serves a `MeshState` given in Python; `update()` replaces it."""

    name = "state"

    def __init__(self, cache: SnapshotCache, state: MeshState | None = None,
                 config: MeshConfig | None = None) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._builder = SnapshotBuilder(config or MeshConfig())
        self._builder.load(state or MeshState())
        cache.on_watch(self._added, self._removed)

    def update(self, state: MeshState) -> None:
        """Serve `state` from now on; only the snapshots it changes are replaced."""
        with self._lock:
            self._builder.load(state)
            self._install()

    def start(self) -> None:
        """Nothing to watch: the state comes from `update()`."""

    def stop(self) -> None:
        """Nothing to stop."""

    def problems(self) -> list[str]:
        """A state given in Python has no problems of its own."""
        return []

    def healthy(self) -> bool:
        """Always: see `problems`."""
        return True

    def _added(self, node_hash: str) -> None:
        with self._lock:
            self._builder.add_node(node_hash)
            self._install()

    def _removed(self, node_hash: str) -> None:
        with self._lock:
            self._builder.remove_node(node_hash)
            self._install()

    def _install(self) -> None:
        changed, removed = self._builder.build()
        self.cache.set_snapshots(changed, removed)
