"""The snapshot cache: the current, consistency-checked snapshot per node hash, with watchers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping

from nomadmesh.xds.snapshot import Snapshot

Watcher = Callable[[], None]
NodeHash = Callable[[str, Mapping[str, object]], str]


def _by_cluster(cluster: str, metadata: Mapping[str, object]) -> str:
    return cluster


class SnapshotCache:
    """Snapshots keyed by node hash (`node_hash(cluster, metadata)`); watchers hear of changes."""

    def __init__(self, node_hash: NodeHash = _by_cluster) -> None:
        self.node_hash = node_hash
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._watchers: dict[str, set[Watcher]] = {}
        self._on_added: Callable[[str], None] | None = None
        self._on_removed: Callable[[str], None] | None = None

    def on_watch(self, added: Callable[[str], None], removed: Callable[[str], None]) -> None:
        """Tell a source when a node hash gets its first watch and when it loses its last."""
        with self._lock:
            self._on_added, self._on_removed = added, removed
            current = list(self._watchers)
        for node_hash in current:
            added(node_hash)

    def set_snapshots(self, changed: Mapping[str, Snapshot], removed: Iterable[str] = ()) -> None:
        """Install changed snapshots and drop removed ones; only their watchers are woken."""
        removed = list(removed)
        for snapshot in changed.values():
            snapshot.check()
        with self._lock:
            woken = [k for k, s in changed.items() if self._snapshots.get(k) is not s]
            for node_hash in removed:
                if self._snapshots.pop(node_hash, None) is not None:
                    woken.append(node_hash)
            self._snapshots.update(changed)
            watchers = [w for node_hash in woken for w in self._watchers.get(node_hash, ())]
        for watcher in watchers:
            watcher()

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
            first = node_cluster not in self._watchers
            self._watchers.setdefault(node_cluster, set()).add(watcher)
            added = self._on_added
        if first and added is not None:
            added(node_cluster)

        def cancel() -> None:
            last = False
            with self._lock:
                watchers = self._watchers.get(node_cluster)
                if watchers is not None:
                    watchers.discard(watcher)
                    if not watchers:
                        del self._watchers[node_cluster]
                        last = True
                removed = self._on_removed
            if last and removed is not None:
                removed(node_cluster)

        return cancel

    def watcher_count(self) -> int:
        """How many watches are registered (one per connected stream); used to detect leaks."""
        with self._lock:
            return sum(len(w) for w in self._watchers.values())
