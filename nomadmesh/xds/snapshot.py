"""Snapshots: exactly the resources one node hash is sent, each with its own version.

A snapshot is immutable except for the resources it shares by name (`SharedResources`: the
ClusterLoadAssignments the builder keeps once for every sidecar that uses them): replacing a
shared resource is one assignment, and every snapshot that names it serves the new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import attrs
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from nomadmesh.contract import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
)
from nomadmesh.errors import XdsError

_TYPE_PREFIX = "type.googleapis.com/"


class Resource(NamedTuple):
    """One xDS resource: its name, the proto, its encoded form on the wire, a content version.

    A NamedTuple rather than an attrs class: snapshots of thousands of services create many.
    `wire` is the resource as one `resources` entry of a DiscoveryResponse (field 2, a
    length-delimited `google.protobuf.Any`), encoded once and shared by every stream it is sent on.
    """

    name: str
    message: Any
    wire: bytes
    version: str
    type_url: str
    # (type URL, name) of every resource this one needs in the same snapshot.
    refs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, message: Any) -> Resource:
        """Wrap a Listener / RouteConfiguration / Cluster / ClusterLoadAssignment proto."""
        type_url = _TYPE_PREFIX + message.DESCRIPTOR.full_name
        value = message.SerializeToString(deterministic=True)
        # The version depends on the content only, so every replica gives the same resource the
        # same version and a reconnecting Envoy sees no change.
        version = hashlib.blake2b(value, digest_size=8).hexdigest()
        name = message.cluster_name if type_url == ENDPOINT_TYPE else message.name
        packed = field(1, type_url.encode()) + field(2, value)
        return cls(name=name, message=message, wire=field(2, packed), version=version,
                   type_url=type_url, refs=references(type_url, message))

    @property
    def any_bytes(self) -> bytes:
        """The serialized `google.protobuf.Any` (what delta xDS wraps in its own Resource)."""
        start = 1  # the one-byte tag of field 2; then the length varint
        while self.wire[start] & 0x80:
            start += 1
        return self.wire[start + 1:]


class SharedResources:
    """Resources of one type that many snapshots share by name (ClusterLoadAssignments).

    Replacing one is O(1) however many snapshots name it: each of them serves the new one. One
    writer (a builder's thread); readers on any thread see either the old or the new resource.
    """

    def __init__(self, type_url: str = ENDPOINT_TYPE) -> None:
        self.type_url = type_url
        self._items: dict[str, Resource] = {}

    def get(self, name: str) -> Resource | None:
        """The current resource of that name, or None."""
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def set(self, item: Resource) -> bool:
        """Add or replace one resource; whether its content changed."""
        if item.type_url != self.type_url:
            raise XdsError(f"resource {item.name!r}: {item.type_url} is not {self.type_url}")
        previous = self._items.get(item.name)
        self._items[item.name] = item
        return previous is None or previous.version != item.version

    def remove(self, name: str) -> None:
        """Forget a resource no snapshot names any more."""
        self._items.pop(name, None)


@attrs.frozen(eq=False)
class Snapshot:
    """All resources for one node hash, by type URL then name; `version` labels the whole (logs).

    The per-type versions sent to Envoy are content hashes (`type_version`), never `version`, so
    they do not depend on which control plane built the snapshot or when. `resources` holds the
    snapshot's own resources; `shared_names` are resources of `shared.type_url` it takes from
    `shared` (their current content). Read every resource through `of_type`.
    """

    version: str
    resources: Mapping[str, Mapping[str, Resource]]
    shared: SharedResources | None = None
    shared_names: frozenset[str] = frozenset()
    # Per-type versions, computed once; "checked" once check() passed.
    _memo: dict[str, object] = attrs.field(factory=dict, init=False, repr=False)

    @classmethod
    def of(cls, items: Iterable[Resource], *, version: str | None = None,
           shared: SharedResources | None = None,
           shared_names: Iterable[str] = ()) -> Snapshot:
        """Group resources by type (duplicate names are an error); `version` is only a label.

        With `shared`, the snapshot also serves the named resources of that table, whatever
        their content is when they are sent.
        """
        by_type: dict[str, dict[str, Resource]] = {type_url: {} for type_url in PUSH_ORDER}
        for item in items:
            if item.type_url not in by_type:
                raise XdsError(f"resource {item.name!r}: unsupported type {item.type_url}")
            if item.name in by_type[item.type_url]:
                raise XdsError(f"resource {item.name!r} appears twice ({item.type_url})")
            by_type[item.type_url][item.name] = item
        names = frozenset(shared_names) if shared is not None else frozenset()
        if version is None:
            digest = hashlib.blake2b(digest_size=8)
            for type_url in PUSH_ORDER:
                digest.update(set_version(by_type[type_url]).encode())
            for name in sorted(names):
                digest.update(f"shared:{name};".encode())
            version = digest.hexdigest()
        return cls(version=version, resources=by_type, shared=shared, shared_names=names)

    @classmethod
    def empty(cls, *, version: str | None = None) -> Snapshot:
        """A snapshot with no resources at all (Envoy still initializes on it)."""
        return cls.of((), version=version)

    def of_type(self, type_url: str) -> Mapping[str, Resource]:
        """Resources of one type, by name (shared ones with their current content)."""
        own = self.resources.get(type_url, _NONE)
        shared = self.shared
        if shared is None or type_url != shared.type_url or not self.shared_names:
            return own
        # Read once, so a reader on another thread sees one consistent set.
        view = {name: item for name in self.shared_names
                if (item := shared.get(name)) is not None}
        view.update(own)
        return view

    def own(self, type_url: str) -> Mapping[str, Resource]:
        """Resources of one type that are the snapshot's own (not shared), by name."""
        return self.resources.get(type_url, _NONE)

    def type_version(self, type_url: str) -> str:
        """A version for the whole set of one type: changes iff any of its resources changes."""
        if self.shared is not None and type_url == self.shared.type_url and self.shared_names:
            return set_version(self.of_type(type_url))  # shared content changes in place
        version = self._memo.get(type_url)
        if not isinstance(version, str):
            # Computed once per snapshot and type, shared by every stream of its node hash.
            version = self._memo[type_url] = set_version(self.of_type(type_url))
        return version

    def with_resources(self, items: Iterable[Resource]) -> Snapshot:
        """This snapshot with `items` added or replaced: O(len(items) + types touched).

        Types not touched are shared with this snapshot, not copied. When every item replaces a
        resource of the same name and references, the consistency already checked still holds.
        """
        by_type = dict(self.resources)
        copied: set[str] = set()
        same_shape = True
        digest = hashlib.blake2b(self.version.encode(), digest_size=8)
        for item in items:
            if item.type_url not in by_type:
                raise XdsError(f"resource {item.name!r}: unsupported type {item.type_url}")
            if item.type_url not in copied:
                by_type[item.type_url] = dict(by_type[item.type_url])
                copied.add(item.type_url)
            previous = by_type[item.type_url].get(item.name)
            same_shape = same_shape and previous is not None and previous.refs == item.refs
            by_type[item.type_url][item.name] = item  # type: ignore[index]
            digest.update(f"{item.type_url}/{item.name}={item.version};".encode())
        derived = Snapshot(version=digest.hexdigest(), resources=by_type, shared=self.shared,
                           shared_names=self.shared_names)
        derived._memo.update(
            (type_url, version) for type_url, version in self._memo.items()
            if type_url in by_type and type_url not in copied
        )
        if same_shape and self._memo.get("checked"):
            derived._memo["checked"] = True
        return derived

    def problems(self) -> list[str]:
        """Consistency problems: routes to missing clusters, EDS clusters without endpoints, ..."""
        found = []
        for type_url in PUSH_ORDER:
            for item in self.of_type(type_url).values():
                for wanted_type, wanted in item.refs:
                    if wanted not in self.of_type(wanted_type):
                        found.append(_MISSING[type_url, wanted_type].format(item.name, wanted))
        return found

    def check(self) -> None:
        """Raise XdsError listing every consistency problem (checked once per snapshot)."""
        if self._memo.get("checked"):
            return
        found = self.problems()
        if found:
            raise XdsError("inconsistent snapshot:" + "".join(f"\n  * {p!s}" for p in found))
        self._memo["checked"] = True


_NONE: Mapping[str, Resource] = {}

_MISSING = {
    (LISTENER_TYPE, ROUTE_TYPE):
        "listener {!r} uses route configuration {!r}, which does not exist",
    (ROUTE_TYPE, CLUSTER_TYPE):
        "route configuration {!r} routes to cluster {!r}, which does not exist",
    (CLUSTER_TYPE, ENDPOINT_TYPE): "EDS cluster {!r} has no ClusterLoadAssignment {!r}",
}


def references(type_url: str, message: Any) -> tuple[tuple[str, str], ...]:
    """What a resource needs beside it: RDS names of a listener, clusters of routes, EDS names."""
    if type_url == LISTENER_TYPE:
        return tuple((ROUTE_TYPE, name) for name in rds_names(message))
    if type_url == ROUTE_TYPE:
        targets: dict[str, None] = {}
        for host in message.virtual_hosts:
            for entry in host.routes:
                if entry.HasField("route"):
                    if entry.route.cluster:
                        targets[entry.route.cluster] = None
                    for weighted in entry.route.weighted_clusters.clusters:
                        targets[weighted.name] = None
        return tuple((CLUSTER_TYPE, name) for name in targets)
    if type_url == CLUSTER_TYPE:
        name = eds_name(message)
        return ((ENDPOINT_TYPE, name),) if name is not None else ()
    return ()


def set_version(items: Mapping[str, Resource]) -> str:
    """A version for a set of resources: changes iff a name or a resource's content changes."""
    text = "".join([f"{name}={items[name].version};" for name in sorted(items)])
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def eds_name(cluster: cluster_pb2.Cluster) -> str | None:
    """The ClusterLoadAssignment an EDS cluster asks for, or None for other cluster types."""
    if cluster.type != cluster_pb2.Cluster.EDS:
        return None
    return str(cluster.eds_cluster_config.service_name or cluster.name)


def rds_names(listener: listener_pb2.Listener) -> list[str]:
    """Route configuration names a listener's HTTP connection managers fetch over RDS."""
    names = []
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            if network_filter.typed_config.type_url.endswith(".HttpConnectionManager"):
                manager = hcm_pb2.HttpConnectionManager()
                network_filter.typed_config.Unpack(manager)
                if manager.HasField("rds"):
                    names.append(manager.rds.route_config_name)
    return names


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2): tag, length, payload."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes((n,)) for n in range(0x80)]
