"""The snapshot cache: the current, consistency-checked snapshot per node cluster, with watchers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from nomadmesh.xds.snapshot import Snapshot

Watcher = Callable[[], None]


class SnapshotCache:
    """Snapshots keyed by node cluster (the sidecar's service name); watchers hear of changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._watchers: dict[str, set[Watcher]] = {}

    def get(self, node_cluster: str) -> Snapshot | None:
        """The current snapshot for a node cluster, or None while there is none."""
        with self._lock:
            return self._snapshots.get(node_cluster)

    def clusters(self) -> list[str]:
        """Node clusters that currently have a snapshot."""
        with self._lock:
            return sorted(self._snapshots)

    def set_snapshot(self, node_cluster: str, snapshot: Snapshot) -> None:
        """Check and install one snapshot; an inconsistent one raises XdsError, changes nothing."""
        snapshot.check()
        with self._lock:
            self._snapshots[node_cluster] = snapshot
            watchers = list(self._watchers.get(node_cluster, ()))
        for watcher in watchers:
            watcher()

    def replace_all(self, snapshots: Mapping[str, Snapshot]) -> None:
        """Install a whole generation: every snapshot checked first, clusters not listed dropped."""
        for snapshot in snapshots.values():
            snapshot.check()
        with self._lock:
            changed = [
                cluster
                for cluster in set(self._snapshots) | set(snapshots)
                if self._snapshots.get(cluster) is not snapshots.get(cluster)
            ]
            self._snapshots = dict(snapshots)
            watchers = [w for cluster in changed for w in self._watchers.get(cluster, ())]
        for watcher in watchers:
            watcher()

    def watch(self, node_cluster: str, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher()` whenever the node cluster's snapshot changes; returns the cancel."""
        with self._lock:
            self._watchers.setdefault(node_cluster, set()).add(watcher)

        def cancel() -> None:
            with self._lock:
                watchers = self._watchers.get(node_cluster)
                if watchers is not None:
                    watchers.discard(watcher)
                    if not watchers:
                        del self._watchers[node_cluster]

        return cancel

    def watcher_count(self) -> int:
        """How many watches are registered (one per connected stream); used to detect leaks."""
        with self._lock:
            return sum(len(w) for w in self._watchers.values())
