"""Building snapshots: what every sidecar sees, from endpoints, routes and the mesh's config.

A source (Consul, Nomad) tells a `SnapshotBuilder` what changed (a service's endpoints or routes,
a sidecar's node hash appearing or going) and `build()` returns only the snapshots that changed:
the work per change is proportional to what it touches, not to the size of the mesh. Snapshots
exist only for the node hashes that have sidecars (`add_node`, from the cache's `on_watch`).
ClusterLoadAssignments are shared: one per EDS name in `builder.assignments`, named by every
snapshot that uses it, so an endpoint change replaces one resource however many sidecars call
the service, and no snapshot is rebuilt (`Build.shared` names what the cache must push). Every
other resource whose inputs did not change is reused, so an unchanged snapshot is the very same
object and its streams are not woken. Builds are deterministic (sorted, content-versioned), so
replicas that see the same state serve the same versions.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import attrs

from nomadmesh._gc import collector_paused
from nomadmesh.contract import (
    APP_ADDRESS_KEY,
    APP_PORT_KEY,
    DEFAULT_EGRESS_ADDRESS,
    DEFAULT_EGRESS_PORT,
    DEFAULT_INBOUND_PORT,
    DEFAULT_POLICY,
    EGRESS_ADDRESS_KEY,
    EGRESS_PORT_KEY,
    INBOUND_ADDRESS_KEY,
    INBOUND_PORT_KEY,
    NodeKey,
    Policy,
    Upstream,
)
from nomadmesh.errors import XdsError
from nomadmesh.xds import resources
from nomadmesh.xds.ca import Identity, MeshCA
from nomadmesh.xds.resources import ClusterPlan, Endpoint
from nomadmesh.xds.snapshot import Resource, SharedResources, Snapshot


@attrs.frozen
class Tracing:
    """Where sidecars send spans: `zipkin` (HTTP JSON, /api/v2/spans) or `opentelemetry` (OTLP
    over gRPC) at `collector` (host:port), for `sampling` percent of requests."""

    provider: str
    collector: str
    sampling: float = 100.0

    def __attrs_post_init__(self) -> None:
        if self.provider not in ("zipkin", "opentelemetry"):
            raise XdsError(f"tracing provider {self.provider!r} must be zipkin or opentelemetry")
        host, sep, port = self.collector.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise XdsError(f"tracing collector {self.collector!r} is not host:port")
        if not 0 <= self.sampling <= 100:
            raise XdsError(f"tracing sampling {self.sampling!r} must be a percentage")

    @property
    def address(self) -> tuple[str, int]:
        """The collector's (host, port)."""
        host, _, port = self.collector.rpartition(":")
        return host.strip("[]"), int(port)


@attrs.frozen
class MeshConfig:
    """Mesh-wide settings the control plane applies to every sidecar.

    With a `ca`, sidecars talk mTLS: each gets its SPIFFE certificate and the trust bundle over
    SDS, its inbound listener requires a client certificate, and its upstream clusters accept
    only the upstream's SPIFFE ID. `default_allow` decides who may call a service that lists no
    allowed callers (Envoy RBAC on the inbound listener; a denied call is a 403).
    """

    default_policy: Policy = DEFAULT_POLICY
    ca: MeshCA | None = attrs.field(default=None, eq=False)
    default_allow: bool = True
    access_log: bool = False  # one JSON line per request on each sidecar's stdout
    tracing: Tracing | None = None


@attrs.frozen
class MeshState:
    """What the control plane knows: endpoints, upstream routes and allowed callers per service."""

    endpoints: Mapping[str, tuple[Endpoint, ...]] = attrs.field(factory=dict)
    upstreams: Mapping[str, tuple[Upstream, ...]] = attrs.field(factory=dict)
    callers: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)


class Build(NamedTuple):
    """What one `build()` changed: hand it to `SnapshotCache.set_snapshots(*build)`."""

    snapshots: dict[str, Snapshot]  # by node hash, the snapshots that changed
    removed: list[str]  # node hashes that have no snapshot any more
    shared: list[str]  # shared assignments whose content changed in place


class SnapshotBuilder:
    """Incremental snapshots per node hash; feed it changes, `build()` returns what changed."""

    def __init__(self, config: MeshConfig = MeshConfig()) -> None:
        self.config = config
        self._endpoints: dict[str, tuple[Endpoint, ...]] = {}
        self._upstreams: dict[str, tuple[Upstream, ...]] = {}
        self._allowed: dict[str, tuple[str, ...]] = {}
        # node cluster -> node hashes of its connected sidecars
        self._nodes: dict[str, set[str]] = {}
        self._dirty_clusters: set[str] = set()
        self._dirty_services: set[str] = set()
        self._dirty_nodes: set[str] = set()
        self._removed_nodes: set[str] = set()
        # memoized resources
        self._routes: dict[str, tuple[tuple[Upstream, ...], Resource]] = {}
        self._clusters: dict[ClusterPlan, Resource] = {}
        # One ClusterLoadAssignment per EDS name in use, shared by every snapshot naming it.
        self.assignments = SharedResources()
        self._assignment_users: dict[str, int] = {}  # EDS name -> snapshots naming it
        self._unused: set[str] = set()  # EDS names no snapshot names since the last build
        self._subsets: dict[str, set[str]] = {}  # service -> EDS names built from it
        self._listeners: dict[tuple[tuple[str, int], str], Resource] = {}
        self._inbound: dict[tuple[object, ...], Resource] = {}
        self._apps: dict[tuple[str, int], Resource] = {}
        self._identities: dict[str, tuple[Identity, Resource]] = {}
        self._trust = (Resource.of(resources.trust_secret(config.ca.bundle))
                       if config.ca is not None else None)
        self._access_log = [resources.json_access_log()] if config.access_log else []
        self._tracing_cluster = (Resource.of(resources.tracing_cluster(
            config.tracing.provider, *config.tracing.address)) if config.tracing else None)
        self._snapshots: dict[str, tuple[list[Resource], frozenset[str], Snapshot]] = {}

    # --- changes ---------------------------------------------------------------------------------

    def set_service(self, name: str, endpoints: Iterable[Endpoint],
                    upstreams: Iterable[Upstream] | None = None) -> None:
        """A service's endpoints (and, when given, the routes its sidecars get)."""
        endpoints = tuple(endpoints)
        if self._endpoints.get(name) != endpoints:
            self._endpoints[name] = endpoints
            self._dirty_services.add(name)
        if name not in self._upstreams:
            self._upstreams[name] = ()
            self._dirty_clusters.add(name)
        if upstreams is not None:
            self.set_upstreams(name, upstreams)

    def set_upstreams(self, name: str, upstreams: Iterable[Upstream]) -> None:
        """The routes the sidecars of service `name` get."""
        upstreams = tuple(upstreams)
        if self._upstreams.get(name) == upstreams:
            return
        self._upstreams[name] = upstreams
        self._dirty_clusters.add(name)

    def set_callers(self, name: str, callers: Iterable[str] | None) -> None:
        """Who may call service `name` (None: the mesh's default allow or deny)."""
        old = self._allowed.get(name)
        new = None if callers is None else tuple(sorted(set(callers)))
        if old != new:
            if new is None:
                self._allowed.pop(name, None)
            else:
                self._allowed[name] = new
            self._dirty_clusters.add(name)

    def renew_due(self, now: datetime.datetime | None = None) -> datetime.datetime | None:
        """Mark the services whose certificate is due for renewal; the next renewal time."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        for service, (identity, _) in list(self._identities.items()):
            if identity.renew_at <= now:
                del self._identities[service]
                self._dirty_clusters.add(service)
        return min((i.renew_at for i, _ in self._identities.values()), default=None)

    def remove_service(self, name: str) -> None:
        """A service left the catalog: its endpoints and routes go."""
        if name in self._endpoints or name in self._upstreams:
            self.set_upstreams(name, ())
            self._endpoints.pop(name, None)
            self._upstreams.pop(name, None)
            self._dirty_services.add(name)
            self._dirty_clusters.add(name)

    def add_node(self, node_hash: str) -> None:
        """A sidecar with this node hash connected: it needs a snapshot."""
        cluster = NodeKey.parse(node_hash).cluster
        hashes = self._nodes.setdefault(cluster, set())
        if node_hash not in hashes:
            hashes.add(node_hash)
            self._dirty_nodes.add(node_hash)
            self._removed_nodes.discard(node_hash)

    def remove_node(self, node_hash: str) -> None:
        """The last sidecar with this node hash went away."""
        cluster = NodeKey.parse(node_hash).cluster
        hashes = self._nodes.get(cluster)
        if hashes is not None and node_hash in hashes:
            hashes.discard(node_hash)
            if not hashes:
                del self._nodes[cluster]
            self._dirty_nodes.discard(node_hash)
            self._removed_nodes.add(node_hash)

    def load(self, state: MeshState) -> None:
        """Replace everything known about services with `state` (nodes are kept)."""
        for name in set(self._endpoints) | set(self._upstreams):
            if name not in state.endpoints and name not in state.upstreams:
                self.remove_service(name)
        for name in set(state.endpoints) | set(state.upstreams):
            self.set_service(name, state.endpoints.get(name, ()), state.upstreams.get(name, ()))
        for name in set(self._allowed) | set(state.callers):
            self.set_callers(name, state.callers.get(name))

    # --- building --------------------------------------------------------------------------------

    def build(self) -> Build:
        """Snapshots that changed since the last build (by node hash), node hashes to drop, and
        the shared assignments whose content changed."""
        # A build allocates many objects and no reference cycles.
        with collector_paused():
            return self._build()

    def snapshot(self, node_hash: str) -> Snapshot | None:
        """The current snapshot of a node hash (after the last build)."""
        found = self._snapshots.get(node_hash)
        return found[2] if found is not None else None

    def _build(self) -> Build:
        # Assignments no installed snapshot names since the last build can go now.
        for name in self._unused:
            if not self._assignment_users.get(name):
                self._assignment_users.pop(name, None)
                self.assignments.remove(name)
                service = resources.subset_filter(name)[0]
                subsets = self._subsets.get(service)
                if subsets is not None:
                    subsets.discard(name)
                    if not subsets:
                        del self._subsets[service]
        self._unused.clear()
        # An endpoint change replaces the service's shared assignments; no snapshot changes.
        shared: list[str] = []
        for service in sorted(self._dirty_services):
            endpoints = self._endpoints.get(service, ())
            for name in sorted(self._subsets.get(service, ())):
                if self.assignments.set(Resource.of(resources.load_assignment(name, endpoints))):
                    shared.append(name)
        for cluster in self._dirty_clusters:
            if cluster not in self._upstreams:
                self._routes.pop(cluster, None)
        todo = set(self._dirty_nodes)
        for cluster in self._dirty_clusters:
            todo |= self._nodes.get(cluster, set())
        changed: dict[str, Snapshot] = {}
        removed = set(self._removed_nodes)
        for node_hash in sorted(todo):
            key = NodeKey.parse(node_hash)
            if key.cluster not in self._upstreams:
                dropped = self._snapshots.pop(node_hash, None)
                if dropped is not None:
                    self._release(dropped[1])
                    removed.add(node_hash)
                continue
            items, names = self._items(key)
            previous = self._snapshots.get(node_hash)
            if previous is not None and previous[1] == names and _same_items(previous[0], items):
                continue
            snapshot = None
            if previous is not None and previous[1] == names:
                snapshot = _derived(previous[0], previous[2], items)
                names = previous[1]  # the same frozenset: the cache's index sees no change
            if snapshot is None:
                snapshot = Snapshot.of(items, shared=self.assignments, shared_names=names)
            self._use(names)
            if previous is not None:
                self._release(previous[1])
            self._snapshots[node_hash] = (items, names, snapshot)
            changed[node_hash] = snapshot
        for node_hash in self._removed_nodes:
            dropped = self._snapshots.pop(node_hash, None)
            if dropped is not None:
                self._release(dropped[1])
        self._dirty_clusters.clear()
        self._dirty_services.clear()
        self._dirty_nodes.clear()
        self._removed_nodes.clear()
        return Build(changed, sorted(removed - set(changed)), shared)

    def _use(self, names: frozenset[str]) -> None:
        for name in names:
            self._assignment_users[name] = self._assignment_users.get(name, 0) + 1

    def _release(self, names: frozenset[str]) -> None:
        for name in names:
            left = self._assignment_users.get(name, 0) - 1
            self._assignment_users[name] = left
            if left <= 0:
                self._unused.add(name)

    def _items(self, key: NodeKey) -> tuple[list[Resource], frozenset[str]]:
        upstreams = self._upstreams.get(key.cluster, ())
        items = [self._listener(key), self._route(key.cluster, upstreams)]
        if key.get(INBOUND_PORT_KEY) is not None:
            items.extend(self._inbound_items(key))
        if self._tracing_cluster is not None:
            items.append(self._tracing_cluster)
        ca = self.config.ca
        if ca is not None and self._trust is not None:
            items.extend((self._identity(ca, key.cluster), self._trust))
        clusters: set[str] = set()
        assignments: set[str] = set()
        default = self.config.default_policy
        for upstream in upstreams:
            policy = upstream.policy.merged_onto(default) if upstream.policy else default
            for plan, _ in resources.cluster_plans(upstream, policy):
                if plan.name not in clusters:
                    clusters.add(plan.name)
                    items.append(self._cluster(plan))
                if plan.service_name not in assignments:
                    assignments.add(plan.service_name)
                    self._assignment(plan.service_name)
        return items, frozenset(assignments)

    def _listener(self, key: NodeKey) -> Resource:
        binding = (key.get(EGRESS_ADDRESS_KEY) or DEFAULT_EGRESS_ADDRESS,
                   key.port(EGRESS_PORT_KEY, DEFAULT_EGRESS_PORT))
        tracing = self.config.tracing
        memo_key = (binding, key.cluster if tracing is not None else "")
        found = self._listeners.get(memo_key)
        if found is None:
            found = self._listeners[memo_key] = Resource.of(resources.egress_listener(
                *binding, access_log=self._access_log,
                tracing=resources.tracing(tracing.provider, key.cluster, tracing.sampling)
                if tracing is not None else None))
        return found

    def _route(self, cluster: str, upstreams: tuple[Upstream, ...]) -> Resource:
        found = self._routes.get(cluster)
        if found is None or found[0] != upstreams:
            found = self._routes[cluster] = (upstreams, Resource.of(
                resources.egress_route(upstreams, self.config.default_policy)))
        return found[1]

    def _cluster(self, plan: ClusterPlan) -> Resource:
        found = self._clusters.get(plan)
        if found is None:
            ca = self.config.ca
            service = resources.subset_filter(plan.service_name)[0]
            tls = resources.upstream_tls(service, ca.trust_domain) if ca is not None else None
            found = self._clusters[plan] = Resource.of(
                resources.eds_cluster(plan.name, plan.service_name, plan.policy, tls))
        return found

    def _inbound_items(self, key: NodeKey) -> list[Resource]:
        ca = self.config.ca
        callers = self._allowed.get(key.cluster)
        binding = (key.get(INBOUND_ADDRESS_KEY) or DEFAULT_EGRESS_ADDRESS,
                   key.port(INBOUND_PORT_KEY, DEFAULT_INBOUND_PORT))
        memo_key = (binding, callers, ca is not None)
        listener = self._inbound.get(memo_key)
        if listener is None:
            rbac = resources.rbac_filter(callers, ca.trust_domain if ca else "",
                                         self.config.default_allow)
            listener = self._inbound[memo_key] = Resource.of(resources.inbound_listener(
                *binding, rbac=rbac, tls=ca is not None, access_log=self._access_log))
        app = (key.get(APP_ADDRESS_KEY) or "127.0.0.1", key.port(APP_PORT_KEY, 8080))
        cluster = self._apps.get(app)
        if cluster is None:
            cluster = self._apps[app] = Resource.of(resources.local_app_cluster(*app))
        return [listener, cluster]

    def _identity(self, ca: MeshCA, service: str) -> Resource:
        found = self._identities.get(service)
        if found is None:
            identity = ca.identity(service)
            found = self._identities[service] = (identity, Resource.of(
                resources.identity_secret(identity.certificate, identity.private_key)))
        return found[1]

    def _assignment(self, service_name: str) -> None:
        if service_name not in self.assignments:
            service = resources.subset_filter(service_name)[0]
            endpoints = self._endpoints.get(service, ())
            self.assignments.set(Resource.of(resources.load_assignment(service_name, endpoints)))
            self._subsets.setdefault(service, set()).add(service_name)


def build_snapshots(state: MeshState, nodes: Iterable[str] | None = None,
                    config: MeshConfig = MeshConfig()) -> dict[str, Snapshot]:
    """One snapshot per node hash in `nodes` (default: every service's bare cluster name)."""
    builder = SnapshotBuilder(config)
    builder.load(state)
    for node_hash in nodes if nodes is not None else set(state.endpoints) | set(state.upstreams):
        builder.add_node(node_hash)
    return builder.build().snapshots


def _derived(old_items: list[Resource], previous: Snapshot,
             items: list[Resource]) -> Snapshot | None:
    """The previous snapshot with only the replaced resources swapped in, when the set of names is
    the same (a policy or route change): O(what changed) instead of a whole new snapshot."""
    if len(old_items) != len(items):
        return None
    replaced = []
    for old, new in zip(old_items, items, strict=True):
        if old is not new:
            if old.name != new.name or old.type_url != new.type_url:
                return None
            replaced.append(new)
    return previous.with_resources(replaced)


def _same_items(old: list[Resource], new: list[Resource]) -> bool:
    return len(old) == len(new) and all(a is b for a, b in zip(old, new, strict=True))
