"""The snapshot cache: the current snapshot per node hash, and the watches of the open streams.

As in go-control-plane's `pkg/cache/v3`, the cache decides what a stream is due: a `Watch` holds
one stream's subscriptions and what it was last sent, and answers "which responses now?" after a
request or a snapshot change. The server (server.py) only moves bytes. Sources hand the cache new
snapshots from their own threads; a change wakes only the watches of the node hashes it touches.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import attrs

from nomadmesh.contract import (
    CLUSTER_TYPE,
    COMPLETE_SET_TYPES,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
)
from nomadmesh.xds.snapshot import Resource, Snapshot, set_version

NodeHash = Callable[[str, Mapping[str, Any]], str]


def cluster_node_hash(cluster: str, metadata: Mapping[str, Any]) -> str:
    """The simplest node hash: a sidecar's `node.cluster` (its service name)."""
    return cluster


class Response(NamedTuple):
    """What one DiscoveryResponse carries, before the transport adds its nonce."""

    type_url: str
    version: str
    resources: tuple[Resource, ...]


class SnapshotCache:
    """Snapshots keyed by node hash; each open stream has a `Watch` on its node hash."""

    def __init__(self, node_hash: NodeHash = cluster_node_hash) -> None:
        self.node_hash = node_hash
        self._lock = threading.Lock()
        self._snapshots: dict[str, Snapshot] = {}
        self._watches: dict[str, set[Watch]] = {}
        self._listeners: list[tuple[Callable[[str], None], Callable[[str], None]]] = []

    def on_watch(self, added: Callable[[str], None], removed: Callable[[str], None]) -> None:
        """Hear when a node hash gets its first open watch (`added`) and loses its last.

        Called on the gRPC loop thread without the cache's lock: hand the work to your own
        thread (a source builds a snapshot for a node hash it only learns from a connecting Envoy).
        Node hashes watched already are announced to `added` at once.
        """
        with self._lock:
            self._listeners.append((added, removed))
            current = sorted(self._watches)
        for node_hash in current:
            added(node_hash)

    def get(self, node_hash: str) -> Snapshot | None:
        """The current snapshot for a node hash, or None while there is none."""
        with self._lock:
            return self._snapshots.get(node_hash)

    def node_hashes(self) -> list[str]:
        """Node hashes that currently have a snapshot."""
        with self._lock:
            return sorted(self._snapshots)

    def set_snapshot(self, node_hash: str, snapshot: Snapshot) -> None:
        """Check and install one snapshot; an inconsistent one raises XdsError, changes nothing."""
        self.set_snapshots({node_hash: snapshot})

    def set_snapshots(
        self, changed: Mapping[str, Snapshot], removed: Iterable[str] = ()
    ) -> None:
        """Install changed snapshots and drop removed ones, in O(what changed); thread-safe.

        Every snapshot is checked first: an inconsistent one raises XdsError and nothing of this
        call is installed. A snapshot identical (`is`) to the installed one wakes nobody.
        """
        for snapshot in changed.values():
            snapshot.check()
        removed = [node_hash for node_hash in removed if node_hash not in changed]
        with self._lock:
            touched = [h for h, s in changed.items() if self._snapshots.get(h) is not s]
            touched.extend(h for h in removed if h in self._snapshots)
            self._snapshots.update(changed)
            for node_hash in removed:
                self._snapshots.pop(node_hash, None)
            woken = [w for h in touched for w in self._watches.get(h, ())]
        _wake(woken)

    def replace_all(self, snapshots: Mapping[str, Snapshot]) -> None:
        """Install a whole generation: node hashes not listed are dropped; O(all snapshots)."""
        with self._lock:
            removed = [h for h in self._snapshots if h not in snapshots]
        self.set_snapshots(snapshots, removed)

    def open_watch(self, node_hash: str, wake: Callable[[], None]) -> Watch:
        """A watch for one stream; `wake()` is called on the caller's event loop after a change.

        Must be called from a running event loop; the watch is used only from that loop.
        """
        watch = Watch(self, node_hash, wake, asyncio.get_running_loop())
        with self._lock:
            first = node_hash not in self._watches
            self._watches.setdefault(node_hash, set()).add(watch)
            listeners = list(self._listeners) if first else []
        for added, _ in listeners:
            added(node_hash)
        return watch

    def watched(self) -> set[str]:
        """Node hashes with at least one open stream."""
        with self._lock:
            return set(self._watches)

    def watcher_count(self) -> int:
        """How many watches are open (one per connected stream); used to detect leaks."""
        with self._lock:
            return sum(len(w) for w in self._watches.values())

    def _close(self, watch: Watch) -> None:
        listeners = []
        with self._lock:
            watches = self._watches.get(watch.node_hash)
            if watches is not None and watch in watches:
                watches.discard(watch)
                if not watches:
                    del self._watches[watch.node_hash]
                    listeners = list(self._listeners)
        for _, removed in listeners:
            removed(watch.node_hash)


def _wake(watches: list[Watch]) -> None:
    """Tell each watch's loop, with one cross-thread call per loop rather than one per watch."""
    if not watches:
        return
    changed_at = time.monotonic()
    by_loop: dict[asyncio.AbstractEventLoop, list[Watch]] = {}
    for watch in watches:
        by_loop.setdefault(watch.loop, []).append(watch)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, group, changed_at)
        except RuntimeError:
            continue  # that loop has closed: its streams are gone


def _deliver(watches: list[Watch], changed_at: float) -> None:
    for watch in watches:
        watch.notify(changed_at)


@attrs.define
class _TypeState:
    """What one stream asked for and was sent, for one resource type."""

    names: set[str] = attrs.field(factory=set)
    subscribed: bool = False
    # name -> Resource last sent; for complete-set types this is the whole set last sent.
    sent: dict[str, Resource] = attrs.field(factory=dict)
    sent_version: str | None = None
    # The snapshot's mapping of this type when the stream last caught up with it: a snapshot
    # derived with `with_resources` shares untouched types, so a type is skipped in O(1).
    basis: object = None


class Watch:
    """One stream's subscriptions and what it was sent; decides which responses are due."""

    def __init__(
        self,
        cache: SnapshotCache,
        node_hash: str,
        wake: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.cache = cache
        self.node_hash = node_hash
        self.loop = loop
        self.changed_at: float | None = None
        self._wake = wake
        self._closed = False
        self._types = {type_url: _TypeState() for type_url in PUSH_ORDER}

    def notify(self, changed_at: float) -> None:
        """The snapshot changed (called on the watch's loop by the cache)."""
        if self._closed:
            return
        if self.changed_at is None:
            self.changed_at = changed_at
        self._wake()

    def close(self) -> None:
        """The stream ended: no more wake-ups."""
        self._closed = True
        self.cache._close(self)

    def request(self, type_url: str, names: Iterable[str], *, initial: bool) -> list[Response]:
        """A request for `names` of `type_url`; `initial` when it acknowledges nothing sent."""
        state = self._types[type_url]
        wanted = set(names)
        if type_url in COMPLETE_SET_TYPES:
            wanted.discard("*")
        for dropped in state.names - wanted:
            state.sent.pop(dropped, None)
        new_subscription = initial or bool(wanted - state.names)
        state.names = wanted
        state.subscribed = True
        snapshot = self.cache.get(self.node_hash)
        if snapshot is None:
            return []
        response = self._response(type_url, snapshot, force=new_subscription)
        return [response] if response is not None else []

    def due(self) -> list[Response]:
        """After a change: what is due, in contract.PUSH_ORDER (CDS, EDS, SDS, LDS, RDS), removals last."""
        self.changed_at = None
        snapshot = self.cache.get(self.node_hash)
        if snapshot is None:
            return []  # no snapshot any more: Envoy keeps what it has
        responses = []
        removals = []
        for type_url in PUSH_ORDER:
            state = self._types[type_url]
            if not state.subscribed or snapshot.of_type(type_url) is state.basis:
                continue
            if type_url in COMPLETE_SET_TYPES:
                current = snapshot.of_type(type_url)
                removed = {n: r for n, r in state.sent.items() if n not in current}
                if removed:
                    # Make before break: keep removed resources until everything else is updated.
                    staged = self._send_set(type_url, {**current, **removed})
                    if staged is not None:
                        responses.append(staged)
                    removals.append(type_url)
                    continue
            response = self._response(type_url, snapshot, force=False)
            if response is not None:
                responses.append(response)
        for type_url in removals:
            final = self._send_set(type_url, snapshot.of_type(type_url),
                                   version=snapshot.type_version(type_url))
            self._types[type_url].basis = snapshot.of_type(type_url)
            if final is not None:
                responses.append(final)
        return responses

    def _response(self, type_url: str, snapshot: Snapshot, *, force: bool) -> Response | None:
        state = self._types[type_url]
        state.basis = snapshot.of_type(type_url)
        if type_url in COMPLETE_SET_TYPES:
            return self._send_set(type_url, snapshot.of_type(type_url), force=force,
                                  version=snapshot.type_version(type_url))
        available = snapshot.of_type(type_url)
        due = []
        for name in sorted(state.names):
            item = available.get(name)
            if item is not None:
                previous = state.sent.get(name)
                if previous is None or previous.version != item.version:
                    due.append(item)
        if not due and not (force and state.names & available.keys()):
            return None
        if not due:
            # A new subscription to names already sent: answer with what the stream has.
            due = [available[name] for name in sorted(state.names & available.keys())]
        for item in due:
            state.sent[item.name] = item
        return Response(type_url, snapshot.type_version(type_url), tuple(due))

    def _send_set(
        self,
        type_url: str,
        items: Mapping[str, Resource],
        *,
        force: bool = False,
        version: str | None = None,
    ) -> Response | None:
        state = self._types[type_url]
        version = version or set_version(items)
        if not force and version == state.sent_version:
            return None
        # A changed cluster (listener) is rebuilt by Envoy and warms until it gets its endpoints
        # (routes) again, so those are due again even though their content did not change.
        dependent = self._types[_DEPENDENT[type_url]]
        for name, item in items.items():
            previous = state.sent.get(name)
            if previous is None or previous.version != item.version:
                for dependent_name in _dependent_names(type_url, item):
                    dependent.sent.pop(dependent_name, None)
                    dependent.basis = None
        state.sent = dict(items)
        state.sent_version = version
        return Response(type_url, version, tuple(items[name] for name in sorted(items)))


_DEPENDENT = {CLUSTER_TYPE: ENDPOINT_TYPE, LISTENER_TYPE: ROUTE_TYPE}


def _dependent_names(type_url: str, item: Resource) -> list[str]:
    wanted = _DEPENDENT[type_url]
    return [name for ref_type, name in item.refs if ref_type == wanted]
