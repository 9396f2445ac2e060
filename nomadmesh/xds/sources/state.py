"""A source fed from Python: you give it the whole `MeshState`, it keeps every sidecar served.

For embedding the control plane (the demo, tests, programs with their own discovery): each
`update(state)` builds, synchronously, the snapshots of the sidecars that state changes.
"""

from __future__ import annotations

import datetime
import threading

from nomadmesh.xds.build import MeshConfig, MeshState, SnapshotBuilder
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.source import SourceHealth
from nomadmesh.xds.sources._common import seconds_until


class MeshStateSource:
    """Serves a `MeshState` given in Python; `update()` replaces it."""

    name = "state"

    def __init__(self, cache: SnapshotCache, state: MeshState | None = None,
                 config: MeshConfig | None = None) -> None:
        self.cache = cache
        self._lock = threading.Lock()
        self._builder = SnapshotBuilder(config or MeshConfig())
        self._builder.load(state or MeshState())
        self._stopped = threading.Event()
        self._renewals = threading.Thread(target=self._renew, name="nomadmesh-xds-state-renew",
                                          daemon=True)
        self._next_renewal: datetime.datetime | None = None
        self._wake = threading.Event()
        cache.on_watch(self._added, self._removed)

    def update(self, state: MeshState) -> None:
        """Serve `state` from now on; only the snapshots it changes are replaced."""
        with self._lock:
            self._builder.load(state)
            self._install()

    def start(self) -> None:
        """Renew certificates as they come due (the state itself comes from `update()`)."""
        self._renewals.start()

    def stop(self) -> None:
        """Stop renewing."""
        self._stopped.set()
        self._wake.set()
        if self._renewals.is_alive():
            self._renewals.join(timeout=2)

    def _renew(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(seconds_until(self._next_renewal))
            self._wake.clear()
            with self._lock:
                self._install()

    def problems(self) -> list[str]:
        """A state given in Python has no problems of its own."""
        return []

    def health(self) -> SourceHealth:
        """Always healthy: see `problems`."""
        return SourceHealth(ok=True)

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
        self._builder.renew_due()
        build = self._builder.build()
        next_renewal = self._builder.renew_due()
        if next_renewal != self._next_renewal:
            self._next_renewal = next_renewal
            self._wake.set()
        self.cache.set_snapshots(*build)
