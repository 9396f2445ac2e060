"""The snapshot cache: the current snapshot per node hash, and the watches of the open streams.

As in go-control-plane's `pkg/cache/v3`, the cache decides what a stream is due: a `Watch` holds
one stream's subscriptions and what it was last sent, and answers "which responses now?" after a
request or a snapshot change. The server (server.py) only moves bytes. Sources hand the cache new
snapshots from their own threads; a change wakes only the watches of the node hashes it touches.
A shared resource that changed in place (an assignment many snapshots name, see snapshot.py)
wakes the watches of the node hashes that name it, each told which names to look at.
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
from nomadmesh.errors import XdsError
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
        # shared resource name -> node hashes whose installed snapshot names it
        self._users: dict[str, set[str]] = {}
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
        self, changed: Mapping[str, Snapshot], removed: Iterable[str] = (),
        shared: Iterable[str] = (),
    ) -> None:
        """Install changed snapshots and drop removed ones, in O(what changed); thread-safe.

        `shared` names shared resources whose content changed in place (`Build.shared`): the
        streams of every node hash whose snapshot names one are told to look at it.
        Every snapshot is checked first: an inconsistent one raises XdsError and nothing of this
        call is installed (the users of `shared` are still woken: that content is live already).
        A snapshot identical (`is`) to the installed one wakes nobody.
        """
        shared = list(shared)
        try:
            for snapshot in changed.values():
                snapshot.check()
        except XdsError:
            if shared:
                self.set_snapshots({}, (), shared)
            raise
        removed = [node_hash for node_hash in removed if node_hash not in changed]
        with self._lock:
            touched = []
            for node_hash, snapshot in changed.items():
                previous = self._snapshots.get(node_hash)
                if previous is not snapshot:
                    touched.append(node_hash)
                    self._index(node_hash, previous, snapshot)
            for node_hash in removed:
                previous = self._snapshots.pop(node_hash, None)
                if previous is not None:
                    touched.append(node_hash)
                    self._index(node_hash, previous, None)
            self._snapshots.update(changed)
            # A node hash whose snapshot changed and that names a changed shared resource is
            # told both: its new snapshot may share its unchanged EDS mapping with the old one.
            names: dict[str, tuple[str, ...] | None] = dict.fromkeys(touched)
            if shared:
                users: dict[str, list[str]] = {}
                for name in shared:
                    for node_hash in self._users.get(name, ()):
                        users.setdefault(node_hash, []).append(name)
                names.update((node_hash, tuple(which)) for node_hash, which in users.items())
            woken = [(w, which) for node_hash, which in names.items()
                     for w in self._watches.get(node_hash, ())]
        _wake(woken)

    def _index(self, node_hash: str, old: Snapshot | None, new: Snapshot | None) -> None:
        """Keep `_users` in step when a node hash's snapshot changes (under the lock)."""
        old_names = old.shared_names if old is not None else frozenset()
        new_names = new.shared_names if new is not None else frozenset()
        if old_names is new_names:
            return
        for name in old_names - new_names:
            users = self._users.get(name)
            if users is not None:
                users.discard(node_hash)
                if not users:
                    del self._users[name]
        for name in new_names - old_names:
            self._users.setdefault(name, set()).add(node_hash)

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


def _wake(watches: list[tuple[Watch, tuple[str, ...] | None]]) -> None:
    """Tell each watch's loop, with one cross-thread call per loop rather than one per watch."""
    if not watches:
        return
    changed_at = time.monotonic()
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Watch, tuple[str, ...] | None]]] = {}
    for item in watches:
        by_loop.setdefault(item[0].loop, []).append(item)
    for loop, group in by_loop.items():
        try:
            loop.call_soon_threadsafe(_deliver, group, changed_at)
        except RuntimeError:
            continue  # that loop has closed: its streams are gone


def _deliver(watches: list[tuple[Watch, tuple[str, ...] | None]], changed_at: float) -> None:
    for watch, names in watches:
        watch.notify(changed_at, names)


@attrs.define
class _TypeState:
    """What one stream asked for and was sent, for one resource type."""

    names: set[str] = attrs.field(factory=set)
    subscribed: bool = False
    # name -> Resource last sent; for complete-set types this is the whole set last sent.
    sent: dict[str, Resource] = attrs.field(factory=dict)
    sent_version: str | None = None
    # The snapshot's own mapping of this type when the stream last caught up with it: a
    # snapshot derived with `with_resources` shares untouched types, so a type is skipped in
    # O(1). For the shared type also the shared names (the frozenset object) it caught up with.
    basis: object = None
    shared_basis: object = None


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
        self._pending: set[str] = set()  # shared names changed since the last `due()`

    def notify(self, changed_at: float, names: Iterable[str] | None = None) -> None:
        """The snapshot changed, or (`names`) shared resources it names changed in place; called
        on the watch's loop by the cache."""
        if self._closed:
            return
        if names is not None:
            self._pending.update(names)
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
        pending, self._pending = self._pending, set()
        snapshot = self.cache.get(self.node_hash)
        if snapshot is None:
            return []  # no snapshot any more: Envoy keeps what it has
        responses = []
        removals = []
        for type_url in PUSH_ORDER:
            state = self._types[type_url]
            if not state.subscribed:
                continue
            if snapshot.own(type_url) is state.basis and snapshot.shared_names is state.shared_basis:
                # Nothing of this type changed but, maybe, shared resources in place.
                if not pending or type_url != _shared_type(snapshot):
                    continue
                response = self._response(type_url, snapshot, force=False, only=pending)
                if response is not None:
                    responses.append(response)
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
            self._caught_up(self._types[type_url], snapshot, type_url)
            if final is not None:
                responses.append(final)
        return responses

    @staticmethod
    def _caught_up(state: _TypeState, snapshot: Snapshot, type_url: str) -> None:
        state.basis = snapshot.own(type_url)
        state.shared_basis = snapshot.shared_names

    def _response(self, type_url: str, snapshot: Snapshot, *, force: bool,
                  only: set[str] | None = None) -> Response | None:
        state = self._types[type_url]
        self._caught_up(state, snapshot, type_url)
        if type_url in COMPLETE_SET_TYPES:
            return self._send_set(type_url, snapshot.of_type(type_url), force=force,
                                  version=snapshot.type_version(type_url))
        available = snapshot.of_type(type_url)
        due = []
        for name in sorted(state.names if only is None else state.names & only):
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
                    dependent.basis = dependent.shared_basis = None
        state.sent = dict(items)
        state.sent_version = version
        return Response(type_url, version, tuple(items[name] for name in sorted(items)))


_DEPENDENT = {CLUSTER_TYPE: ENDPOINT_TYPE, LISTENER_TYPE: ROUTE_TYPE}


def _shared_type(snapshot: Snapshot) -> str | None:
    return snapshot.shared.type_url if snapshot.shared is not None else None


def _dependent_names(type_url: str, item: Resource) -> list[str]:
    wanted = _DEPENDENT[type_url]
    return [name for ref_type, name in item.refs if ref_type == wanted]
