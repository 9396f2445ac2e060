"""Consul as a source: four blocking queries learn what changed, a fixed pool of readers reads
only those services (or the nodes whose index moved), and the mesh's KV config → incremental
snapshots.

However many services there are, the source holds `connections` connections (default 8) and a
fixed number of threads: a blocking query on `/v1/catalog/services` (names and tags; its index is
the services table's, agent/consul/state/catalog.go catalogServicesMaxIndex, moved by every
instance written, ensureServiceTxn), one each on `/v1/health/state/critical` and
`/v1/health/state/warning` (the checks that are not passing, with their service; the index is the
checks table's, health_endpoint.go ChecksInState; maintenance is a critical check), one on the KV
config, and `connections - 4` readers of `/v1/health/service/<name>` (non-blocking). What they learn:
- a name that appears, or whose tags change, is read; one that disappears is removed;
- an instance's health is the worst of its checks, so it changes exactly when its set of checks
  that are not passing changes: a check that enters, leaves or changes status in that list has its
  service read; a node's own check there (serfHealth, no service) has every service read;
- a catalog index that moves says something changed but not always what: a name that came or
  went, or was retagged, is handled as above, but the same move may hold other writes (every
  write between two answers is one move), and a new instance of a known service, or an
  instance's address, port, meta or weights, moves it with no name or tag change. So every move
  is attributed by reading the catalog node by node (`/v1/catalog/nodes`, then
  `/v1/catalog/node/<node>` on the readers: one read per node, not per service; the health comes
  from the checks that are not passing, which the source already holds), counted in
  `nomadmesh_xds_source_relists{reason="catalog"}`. The read attributes the change: each
  instance carries its ModifyIndex (set to the write's index whenever the instance changes,
  agent/consul/state/catalog.go ensureServiceTxn) and its node's (ensureNodeTxn), so only the
  services whose set of (instance, ModifyIndex, node, node ModifyIndex) differs from the one
  their view was made from are rebuilt; the others are left as they are (their health is the
  checks watches' business).
  On a Consul with many nodes, not every node is read. Since Consul 1.13 (consul#12399) the
  index of `/v1/catalog/node/<node>` is the node's own, moved by every write to the node or one
  of its services (catalog.go nodeServices: catalogNodeMaxIndex; catalog_ce.go
  catalogInsertService, catalogInsertNode; deleteServiceTxn), and a `filter` applies to its
  services after that index was taken (agent/consul/catalog_endpoint.go NodeServices). Each
  node is probed with a filter that matches no service (`PROBE_FILTER`: a tiny answer at the
  node's index), on the readers; a node whose index is not the one it was last read at (either
  way: a restored Consul may go back), one not read yet and one Consul does not know any more
  are read; what each read node held is compared with what it held the last time (instance
  IDs, their ModifyIndex, the node's), and each service that moved there is read on its own
  (`/v1/health/service/<name>`). A node that went takes its services along. Every node is read
  instead when that cannot be trusted: a probe or a node read failed, the last full read found
  one node or every node at one index (an older Consul answers every node at the catalog's
  index; one node has nothing to gain), or more than `MOVED_READS_MAX` services moved (a full
  read then costs less). Counted in `nodes_read` (the last re-read's), `nodes_read_total`,
  `nodes_probed_total` and `attributed`; `node_probes=False` always reads every node.
  Ahead of either, the services connected sidecars route to (their upstreams, and the connected
  services themselves; at most `HOT_READS_MAX`) are read one by one on the readers, so what is
  subscribed is served in one read's time (`hot_reads`). After a `restart` or at `start` every
  node is read and every service is rebuilt;
- after a failed catalog query or an index that went backwards, the Consul answering may have
  been rebuilt or restored with the same indexes: every service is read again (`restart`);
- the first load is such a read too (not counted).
A reader's answer is the service's state at the time of the read, and a service marked while it
is being read is read once more, so the last read always follows the last change seen.

Consul is reached through `nomadmesh.consul_api` (the one Consul boundary): the address and token
given to the source always win over CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN, and the token is
redacted from every error text.

Consul's answers are not trusted: an instance with a port outside 1-65535, a weight Envoy cannot
take, or an entry that is not an object is skipped (or clamped), counted, logged and reported by
`problems()`, and every later answer is still applied. A source never stops silently.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from nomadmesh.consul_api import ConsulApi, ConsulConfig
from nomadmesh.contract import (
    CONFIG_PREFIX,
    SERVICE_META_KEY,
    NodeKey,
    ServiceConfig,
    Upstream,
    read_config_document,
)
from nomadmesh.errors import ApiError, ConsulUnavailable, PermissionDenied, XdsError
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import CRITICAL, PASSING, WARNING, Endpoint
from nomadmesh.xds.source import SourceHealth
from nomadmesh.xds.sources._common import (
    BuildLoop,
    Fetcher,
    Problems,
    entry_upstreams,
    weight_of,
)

log = logging.getLogger("nomadmesh.xds.consul")

_BACKOFF_START = 0.05
_BACKOFF_MAX = 0.5
_SEVERITY = {PASSING: 0, WARNING: 1, CRITICAL: 2, "maintenance": 2}

ServiceView = tuple[tuple[Endpoint, ...], tuple[Upstream, ...]]
CheckKey = tuple[str, str]  # (Node, CheckID)
ReadKey = tuple[str, str]  # ("service", name), ("node", node name) or ("probe", node name)
CheckState = tuple[str, str, str]  # (ServiceName, Status, ServiceID)
# What a service's view was made from: its instances' (ID, ModifyIndex, node, node ModifyIndex)
Signature = tuple[tuple[str, int, str, int], ...]
# At most this many subscribed services are read one by one ahead of a re-read; more would cost
# more than the re-read itself, which then serves them all.
HOT_READS_MAX = 32
# The check states that make an instance not passing (maintenance is a critical check).
NOT_PASSING = ("critical", "warning")
# A node's services as a re-read last saw them: (the node's index, the node's ModifyIndex, and
# service ID -> (service name, ModifyIndex)); an index of -1 is one the answer lacked.
NodeSeen = tuple[int, int, dict[str, tuple[str, int]]]
# A probe's filter: it matches no service, so the answer is the node alone, at the node's index.
PROBE_FILTER = 'Service == "" and Service != ""'
# More services than this moved on the nodes read after probing: one full re-read (which
# rebuilds from its own node reads) costs less than reading each of them on its own.
MOVED_READS_MAX = 256


def consul_address(address: str) -> tuple[str, int, str]:
    """(host, port, scheme) of a Consul address (`host:port` or a URL); XdsError if malformed."""
    url = address if "://" in address else "http://" + address
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise XdsError(f"Consul address {address!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise XdsError(f"Consul address {address!r}: the scheme must be http or https")
    if not parts.hostname:
        raise XdsError(f"Consul address {address!r} has no host")
    return parts.hostname, port or 8500, parts.scheme


class ConsulSource:
    """Keeps the cache in step with Consul; the last good snapshots stay while Consul is down."""

    name = "consul"

    def __init__(
        self,
        address: str,
        cache: SnapshotCache,
        metrics: XdsMetrics,
        *,
        token: str | None = None,
        coalesce: float = 0.01,
        wait: str = "10s",
        timeout: float = 15.0,
        config: MeshConfig | None = None,
        connections: int = 8,
        node_probes: bool = True,
    ) -> None:
        if connections < 5:
            raise XdsError(f"the Consul source needs at least 5 connections, not {connections} "
                           "(the catalog, two checks and the config watches and one reader)")
        self.connections = connections
        self._host, self._port, self._scheme = consul_address(address)
        self.address = address
        self._token = token
        self._wait = wait
        self._timeout = timeout
        self.cache = cache
        self.metrics = metrics
        self._lock = threading.Lock()
        self._views: dict[str, ServiceView] = {}
        self._configs: dict[str, ServiceConfig] = {}
        self._known: dict[str, tuple[str, ...]] = {}  # name -> tags, as the catalog lists them
        self._catalog_index = 0
        self._loaded = False  # the catalog's first answer was applied
        # check state -> its checks, as the last answer of that state's watch listed them
        self._checks_in: dict[str, dict[CheckKey, CheckState]] = {}
        self._checks_seen = threading.Event()  # the first answer of each state's watch is in
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self.relists = 0
        self.problems_ = Problems(self.name, metrics, log)
        self._builds = BuildLoop(cache, metrics, config or MeshConfig(), coalesce=coalesce, log=log,
                                 stopped=self._stopped, problems=self.problems_)
        # node -> (its answer, its index, the problem reading it or ""), for a re-read
        self._node_reads: dict[str, tuple[Mapping[str, Any] | None, int, str]] = {}
        # Per-node attribution (module docstring): whether to probe, what each node held at the
        # last read of it, whether this Consul's node indexes are per node, and the probes'
        # answers (node -> (its index, whether Consul knows it, the problem or "")).
        self._node_probes = node_probes
        self._nodes_seen: dict[str, NodeSeen] = {}
        self._per_node = False
        self._probes: dict[str, tuple[int, bool, str]] = {}
        self.nodes_read = 0  # nodes read by the last re-read
        self.nodes_read_total = 0
        self.nodes_probed_total = 0
        self.attributed = 0  # re-reads that read only the nodes whose index moved
        # service -> the signature of the answer its view was made from (None: unknown)
        self._signatures: dict[str, Signature | None] = {}
        # service -> the read number at which its last applied health read started; a re-read
        # leaves alone a service read afresh after the re-read's node reads started
        self._read_started: dict[str, int] = {}
        self._reads = 0
        self.rebuilt = 0  # services rebuilt by the last re-read
        self.rebuilt_total = 0
        self.rereads = 0  # re-reads completed
        # node hash -> the service of its sidecars, while the cache has a watch for it
        self._connected: dict[str, str] = {}
        self.hot_reads = 0  # subscribed services read first, ahead of re-reads
        self._readers: Fetcher[ReadKey, ConsulApi] = Fetcher(
            "nomadmesh-xds-consul-read", connections - 4, self._read, self._client,
            lambda client: client.close(), self._stopped)

    def start(self) -> None:
        """Start watching; an unreachable Consul is retried in the background, not fatal."""
        self.cache.on_watch(self._node_added, self._node_removed)
        for node_hash in self.cache.watched():
            self._node_added(node_hash)
        self.metrics.source_watch.labels(self.name, "catalog").set(1)
        self._readers.start()
        for state in NOT_PASSING:
            self._spawn(self._checks_loop, f"nomadmesh-xds-consul-{state}", state)
        self._spawn(self._catalog_loop, "nomadmesh-xds-consul-catalog")
        self._spawn(self._config_loop, "nomadmesh-xds-consul-config")
        self._spawn(self._builds.run, "nomadmesh-xds-consul-build")

    def stop(self) -> None:
        """Stop every watcher; blocked queries end when Consul answers or drops them."""
        self._stopped.set()
        self._builds.wake()
        self._readers.wake()
        self._checks_seen.set()
        deadline = time.monotonic() + 0.3
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._readers.join(deadline)

    @property
    def builds(self) -> int:
        """How many builds ran (a burst of changes within the coalescing window is one)."""
        return self._builds.builds

    def problems(self) -> list[str]:
        """What is wrong right now (failing queries, skipped answers); empty when healthy."""
        return self.problems_.current()

    def health(self) -> SourceHealth:
        """Healthy while nothing is wrong; else one line per problem."""
        problems = tuple(self.problems())
        return SourceHealth(ok=not problems, problems=problems)

    def healthy(self) -> bool:
        """Whether every watch's last answer was read without a problem."""
        return not self.problems()

    def _node_added(self, node_hash: str) -> None:
        with self._lock:
            self._connected[node_hash] = NodeKey.parse(node_hash).cluster
        self._builds.node_added(node_hash)

    def _node_removed(self, node_hash: str) -> None:
        with self._lock:
            self._connected.pop(node_hash, None)
        self._builds.node_removed(node_hash)

    def _subscribed(self) -> set[str]:
        """The services whose endpoints connected sidecars route to (their upstreams), and
        the connected services themselves (under no lock)."""
        with self._lock:
            connected = set(self._connected.values()) & set(self._known)
            out = set(connected)
            for name in connected:
                config, view = self._configs.get(name), self._views.get(name)
                upstreams = config.upstreams if config is not None else (
                    view[1] if view is not None else ())
                out.update(u.service for u in upstreams)
            return out & set(self._known)

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _client(self) -> ConsulApi:
        scheme = "https" if self._scheme == "https" else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return ConsulApi(ConsulConfig(address=f"{scheme}://{host}:{self._port}",
                                      token=self._token, timeout=self._timeout))

    def _report_failure(self, where: str, exc: Exception) -> None:
        """Count and report a failed query, or an answer that cannot be used; the caller retries."""
        bad_answer = isinstance(exc, XdsError) or (
            isinstance(exc, ApiError) and not isinstance(exc, PermissionDenied))
        if not bad_answer:
            self.metrics.consul_errors.inc()
        self.problems_.report(where, "bad_answer" if bad_answer else "query_failed",
                              f"{type(exc).__name__}: {exc}"[:300])

    def _blocking(self, what: str, stop: threading.Event, query: Any, apply: Any) -> None:
        """Run a blocking query until stopped: index kept, reset when it goes backwards, backoff.

        A failed query and an answer `apply` cannot use (XdsError) are both retried with backoff.
        """
        index = 0
        backoff = _BACKOFF_START
        while not stop.is_set() and not self._stopped.is_set():
            try:
                new_index, body = query(index)
                apply(new_index, body)
            except (ConsulUnavailable, PermissionDenied, ApiError, XdsError) as exc:
                if stop.is_set() or self._stopped.is_set():
                    return
                self._report_failure(what, exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                # Re-read without blocking once Consul answers: recovery shows at once, and a
                # Consul restored from a snapshot is read afresh.
                index = 0
                continue
            backoff = _BACKOFF_START
            self.problems_.clear(what, kinds=("bad_answer", "query_failed"))
            try:
                new_index = int(new_index or 0)
            except (TypeError, ValueError):
                new_index = 0
            # Consul's rule: an index that goes backwards (or is not positive) restarts the watch;
            # an unchanged one (the wait expired) keeps it.
            index = 0 if new_index < index or new_index <= 0 else new_index
            if index == 0:
                stop.wait(_BACKOFF_START)

    def _catalog_loop(self) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            if not index:
                # The first query, or one after a failure or an index that went backwards: the
                # Consul answering may have been rebuilt or restored (same indexes, other
                # data), so its answer is read in full.
                self._catalog_index = 0
            return client.catalog_services_raw(index=index or None,
                                               wait=self._wait if index else None)

        # The first read of every service must start after the checks it is compared with
        # were taken, or a check changing in between would be missed.
        self._checks_seen.wait()
        try:
            self._blocking("catalog", self._stopped, query, self._on_catalog)
        finally:
            client.close()

    def _on_catalog(self, index: int, services: Any) -> None:
        if not isinstance(services, Mapping):
            raise XdsError(f"the catalog answer is {type(services).__name__}, not an object")
        names = {str(name): tuple(sorted(str(t) for t in tags)) if isinstance(tags, list) else ()
                 for name, tags in services.items() if name != "consul"}
        with self._lock:
            first = self._catalog_index == 0
            started = self._loaded
            moved = index != self._catalog_index
            added = set(names) - set(self._known)
            removed = set(self._known) - set(names)
            retagged = {n for n in set(names) & set(self._known) if names[n] != self._known[n]}
            self._known, self._catalog_index = names, index
            for name in removed:
                self._views.pop(name, None)
                self._signatures.pop(name, None)
                self._read_started.pop(name, None)
                self.problems_.clear(f"health:{name}")
        for name in sorted(removed):
            self._builds.remove_service(name)
        if not first:
            # A name that came or was retagged is read on its own at once.
            self._mark(added | retagged)
        if first or moved:
            # Writes between two answers are one move: besides the names that came, went or
            # were retagged, it may hold any other change (a new instance of a known service,
            # an address, a port), which the catalog does not attribute; the re-read does.
            reason = "start" if not started else "restart" if first else "catalog"
            if reason == "catalog":
                # What connected sidecars route to is read on its own first, before the node
                # reads start (whose decoding would hold the interpreter): it is served in one
                # read's time; the re-read then covers everything (it leaves those reads alone).
                hot = self._subscribed()
                if 0 < len(hot) <= HOT_READS_MAX:
                    self.hot_reads += len(hot)
                    self._mark(hot)
                    # (not for long: a read retried with backoff must not hold the catalog)
                    if not self._readers.wait_idle(timeout=1.0):
                        return
            self._reread(reason)
        self._loaded = True

    def _mark(self, names: Iterable[str]) -> None:
        self._readers.mark([("service", name) for name in sorted(names)])

    def _reread(self, reason: str) -> None:
        """Read every service again, node by node (far fewer reads than services): each node's
        services from the catalog, their health from the checks that are not passing. On a
        catalog move, when this Consul keeps an index per node, only the nodes whose index
        moved are read, and only the services that moved on them (`_reread_moved_nodes`)."""
        started = time.perf_counter()
        if reason != "start":
            self.relists += 1
            self.metrics.source_relists.labels(self.name, reason).inc()
        names = self._node_names(reason)
        if names is None:
            return
        if reason == "catalog" and self._node_probes and self._per_node:
            with self._lock:
                seen = dict(self._nodes_seen)
            if self._reread_moved_nodes(names, seen, started):
                return
        with self._lock:
            self._reads += 1
            epoch = self._reads
        found = self._read_nodes(names)
        if found is None:
            return
        failed = [f"node {name}: {problem}" for name, (_, _, problem) in found.items() if problem]
        if failed:
            # Half a re-read would drop the unread nodes' instances.
            self._reread_each(reason, "; ".join(failed[:3]))
            return
        with self._lock:
            self._nodes_seen = {name: _node_seen(body, index)
                                for name, (body, index, _) in found.items() if body is not None}
            # A Consul before 1.13 answers every node at the catalog's index: probing would
            # find every node moved. One node has nothing to gain either.
            self._per_node = len({seen[0] for seen in self._nodes_seen.values()}) > 1
            bad = {k: v for checks in self._checks_in.values() for k, v in checks.items()}
        not_passing: dict[tuple[str, str], list[dict[str, str]]] = {}
        for (check_node, _), (_, status, service_id) in bad.items():
            not_passing.setdefault((check_node, service_id), []).append({"Status": status})
        # Each service's instances, as (node name, node, service): an entry (with the health
        # from the checks held) is made only for the services rebuilt.
        instances: dict[str, list[tuple[str, Mapping[str, Any], Mapping[str, Any]]]] = {}
        for node_name, (body, _, _) in found.items():
            node = _mapping(_mapping(body).get("Node"))
            for listed in _mapping(_mapping(body).get("Services")).values():
                service = _mapping(listed)
                instances.setdefault(str(service.get("Service")), []).append(
                    (node_name, node, service))
        # A catalog move is attributed by the instances' indexes; after a start or a restart
        # (a Consul rebuilt or restored may reuse indexes) every service is rebuilt.
        attribute = reason == "catalog"
        rebuilt = 0
        with self._lock:
            known = sorted(self._known)
            signatures = dict(self._signatures)
            fresher = {name for name, at in self._read_started.items() if at > epoch}
        for name in known:
            if name in fresher:
                continue
            group = instances.get(name, [])
            signature = _signature([(node, service) for _, node, service in group])
            if attribute and signature is not None and signatures.get(name) == signature:
                continue
            rebuilt += 1
            entries = [{"Node": node, "Service": service,
                        "Checks": not_passing.get((node_name, ""), []) + not_passing.get(
                            (node_name, str(service.get("ID"))), [])}
                       for node_name, node, service in group]
            self._on_health(name, entries, signature=signature)
        self.rebuilt = rebuilt
        self.rebuilt_total += rebuilt
        self.rereads += 1
        log.info("consul re-read every service reason=%s services=%s nodes=%s rebuilt=%s "
                 "seconds=%.3f", reason, len(known), len(names), rebuilt,
                 time.perf_counter() - started)

    def _node_names(self, reason: str) -> list[str] | None:
        """The catalog's nodes, or None (and every service read on its own) when unusable."""
        client = self._client()
        try:
            _, nodes = client.catalog_nodes_raw()
        except (ConsulUnavailable, PermissionDenied, ApiError) as exc:
            nodes = exc
        finally:
            client.close()
        if not isinstance(nodes, list) or not all(
                isinstance(n, Mapping) and isinstance(n.get("Node"), str) for n in nodes):
            self._reread_each(reason, f"the nodes answer is unusable: {str(nodes)[:120]}")
            return None
        return sorted({str(n["Node"]) for n in nodes})

    def _read_nodes(self, names: Sequence[str]
                    ) -> dict[str, tuple[Mapping[str, Any] | None, int, str]] | None:
        """Read these nodes on the readers: node -> (its answer, its index, the problem or "");
        None when the source stopped first."""
        with self._lock:
            self._node_reads = {}
        self._readers.mark([("node", name) for name in names])
        if not self._readers.wait_idle():
            return None
        with self._lock:
            found, self._node_reads = self._node_reads, {}
        self.nodes_read = len(names)
        self.nodes_read_total += len(names)
        return found

    def _reread_moved_nodes(self, names: Sequence[str], seen: Mapping[str, NodeSeen],
                            started: float) -> bool:
        """Probe every node's index (a filter that matches no service: a tiny answer at the
        node's index), read only the nodes whose index moved or that came or went, and read
        on their own the services that moved on them. False when that cannot be trusted (a
        probe or a read failed, too many services moved): the caller re-reads every node."""
        with self._lock:
            self._probes = {}
        self._readers.mark([("probe", name) for name in names])
        if not self._readers.wait_idle():
            return True
        with self._lock:
            probes, self._probes = self._probes, {}
        self.nodes_probed_total += len(names)
        failed = [f"node {name}: {probes[name][2] if name in probes else 'not probed'}"
                  for name in names if name not in probes or probes[name][2]]
        if failed:
            log.warning("consul node probes failed, reading every node error=%s",
                        "; ".join(failed[:3]))
            return False
        # A node whose index is not the one it was read at (either way: a Consul restored
        # may go back), one not read yet, and one Consul no longer knows, are read.
        moved = [name for name in names if name not in seen or not probes[name][1]
                 or probes[name][0] != seen[name][0]]
        gone = set(seen) - set(names)
        found = self._read_nodes(moved)
        if found is None:
            return True
        if any(problem for _, _, problem in found.values()):
            return False
        now: dict[str, NodeSeen | None] = {name: None for name in gone}
        for name, (body, index, _) in found.items():
            now[name] = _node_seen(body, index) if body is not None else None
        services: set[str] = set()
        for name, after in now.items():
            services |= _moved_services(seen.get(name), after)
        if len(services) > MOVED_READS_MAX:
            return False
        with self._lock:
            for name, after in now.items():
                if after is None:
                    self._nodes_seen.pop(name, None)
                else:
                    self._nodes_seen[name] = after
            services &= set(self._known)
        self._mark(services)
        self.rebuilt = len(services)
        self.rebuilt_total += len(services)
        self.rereads += 1
        self.attributed += 1
        log.info("consul re-read the nodes whose index moved nodes=%s moved=%s gone=%s "
                 "services=%s seconds=%.3f", len(names), len(moved), len(gone), len(services),
                 time.perf_counter() - started)
        return True

    def _reread_each(self, reason: str, why: str) -> None:
        """Read every service on its own (when reading node by node failed: a token without
        node:read, an answer of the wrong shape)."""
        log.warning("consul re-reading each service on its own reason=%s error=%s", reason, why)
        with self._lock:
            known = set(self._known)
        self._mark(known)

    def _checks_loop(self, state: str) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            return client.health_state_raw(state, index=index or None,
                                           wait=self._wait if index else None)

        try:
            self._blocking(f"checks:{state}", self._stopped, query,
                           lambda index, body: self._on_checks(state, body))
        finally:
            client.close()

    def _on_checks(self, state: str, checks: Any) -> None:
        """Read again the services whose checks entered, left or changed in the list of checks
        in `state`."""
        if not isinstance(checks, list):
            raise XdsError(f"the checks answer is {type(checks).__name__}, not a list")
        current: dict[CheckKey, CheckState] = {}
        for check in checks:
            if not isinstance(check, Mapping):
                continue
            current[(str(check.get("Node")), str(check.get("CheckID")))] = (
                str(check.get("ServiceName") or ""), str(check.get("Status")),
                str(check.get("ServiceID") or ""))
        with self._lock:
            before = self._checks_in.get(state)
            self._checks_in[state] = current
            known = set(self._known)
            if len(self._checks_in) == len(NOT_PASSING):
                self._checks_seen.set()
        if before is None:
            return  # the baseline: the catalog's first answer reads every service
        changed = {key for key in set(before) | set(current)
                   if before.get(key) != current.get(key)}
        services = {seen[0] for key in changed
                    for seen in (before.get(key), current.get(key)) if seen is not None}
        if "" in services:  # a node's own check: every service on it may have changed health
            self.relists += 1
            self.metrics.source_relists.labels(self.name, "node_check").inc()
            self._mark(known)
        else:
            self._mark(services & known)

    def _read(self, client: ConsulApi, key: ReadKey) -> None:
        """One read (a reader): a service's health, or a node's services for a re-read;
        retried with backoff until read, or the service gone."""
        kind, name = key
        backoff = _BACKOFF_START
        where = f"health:{name}" if kind == "service" else f"node:{name}"
        while not self._stopped.is_set():
            with self._lock:
                if kind == "service" and name not in self._known:
                    return
            try:
                if kind == "service":
                    with self._lock:
                        self._reads += 1
                        number = self._reads
                    _, entries = client.health_service_raw(name)
                    self._on_health(name, entries, started=number)
                elif kind == "node":
                    self._read_node(client, name)
                    return
                else:
                    self._probe_node(client, name)
                    return
            except (ConsulUnavailable, PermissionDenied, ApiError, XdsError) as exc:
                if self._stopped.is_set():
                    return
                self._report_failure(where, exc)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            self.metrics.source_fetches.labels(self.name).inc()
            self.problems_.clear(where, kinds=("bad_answer", "query_failed"))
            return

    def _read_node(self, client: ConsulApi, name: str) -> None:
        """One node's services for a re-read, once: a failure fails the re-read (retried whole)."""
        try:
            index, body = client.catalog_node_raw(name)
            if body is not None and not isinstance(body, Mapping):
                raise XdsError(f"the answer is {type(body).__name__}, not an object")
        except (ConsulUnavailable, PermissionDenied, ApiError, XdsError) as exc:
            with self._lock:
                self._node_reads[name] = ({}, 0, f"{type(exc).__name__}: {exc}"[:200])
            return
        self.metrics.source_fetches.labels(self.name).inc()
        with self._lock:
            self._node_reads[name] = (body, index, "")

    def _probe_node(self, client: ConsulApi, name: str) -> None:
        """One node's index, with none of its services (a filter that matches none), once."""
        try:
            index, body = client.catalog_node_raw(name, filter_expr=PROBE_FILTER)
            if body is not None and not isinstance(body, Mapping):
                raise XdsError(f"the answer is {type(body).__name__}, not an object")
        except (ConsulUnavailable, PermissionDenied, ApiError, XdsError) as exc:
            with self._lock:
                self._probes[name] = (0, False, f"{type(exc).__name__}: {exc}"[:200])
            return
        with self._lock:
            self._probes[name] = (index, body is not None, "")

    def _on_health(self, name: str, entries: Any, *, started: int | None = None,
                   signature: Signature | None = None) -> None:
        """Apply a service's entries: a health read's (`started`: its read number) or a
        re-read's (with their `signature`)."""
        if not isinstance(entries, list):
            raise XdsError(f"the health answer is {type(entries).__name__}, not a list")
        if started is not None:
            signature = signature_of(entries)
        view, skipped = service_view(name, entries)
        where = f"health:{name}"
        if skipped:
            self.problems_.report(where, "bad_entry", "; ".join(skipped[:3]), count=len(skipped))
        else:
            self.problems_.clear(where, kinds=("bad_entry",))
        with self._lock:
            # A service that left the catalog while it was read must not come back with the
            # late answer (if it returns, the catalog marks it to be read again).
            if name not in self._known:
                return
            self._signatures[name] = signature
            if started is not None:
                self._read_started[name] = max(started, self._read_started.get(name, 0))
            if self._views.get(name) == view:
                return
            self._views[name] = view
            config = self._configs.get(name)
        self._builds.set_service(name, view[0], config.upstreams if config is not None else view[1])

    def _config_loop(self) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            return client.kv_prefix_raw(CONFIG_PREFIX, index=index or None,
                                        wait=self._wait if index else None)

        try:
            self._blocking("config", self._stopped, query, self._on_config)
        finally:
            client.close()

    def _on_config(self, index: int, entries: Any) -> None:
        """The mesh config documents under `CONFIG_PREFIX`; they win over service meta routes."""
        found: dict[str, ServiceConfig] = {}
        bad = []
        for entry in entries or ():
            key = str(entry.get("Key", "")) if isinstance(entry, Mapping) else ""
            service = key.removeprefix(CONFIG_PREFIX)
            if not service or "/" in service:
                continue
            try:
                value = entry.get("Value")
                raw = value if isinstance(value, bytes) else base64.b64decode(value or b"")
                found[service] = read_config_document(raw, f"consul kv {key}")
            except (XdsError, ValueError) as exc:
                bad.append(str(exc)[:200])
                with self._lock:
                    if service in self._configs:
                        found[service] = self._configs[service]  # keep the last good one
        if bad:
            self.problems_.report("config", "bad_entry", "; ".join(bad[:3]), count=len(bad))
        else:
            self.problems_.clear("config", kinds=("bad_entry",))
        with self._lock:
            changed = {s for s in set(found) | set(self._configs)
                       if found.get(s) != self._configs.get(s)}
            self._configs = found
            updates = {s: (self._views.get(s), found.get(s)) for s in changed}
        for service, (view, config) in updates.items():
            meta_routes = view[1] if view is not None else ()
            self._builds.set_upstreams(service, config.upstreams if config else meta_routes)
            self._builds.set_callers(service, config.allow if config else None)


def service_view(name: str, entries: Sequence[Any]) -> tuple[ServiceView, list[str]]:
    """Endpoints (health and weight as Consul computes them) and declared routes of a service,
    and a sentence for each instance that had to be skipped or corrected."""
    endpoints = []
    routes: dict[str, Upstream] = {}
    skipped: list[str] = []
    good = [e for e in entries if isinstance(e, Mapping)]
    if len(good) < len(entries):
        skipped.append(f"{len(entries) - len(good)} entries that are not objects skipped")
    for entry in sorted(good, key=lambda e: str(_mapping(e.get("Service")).get("ID"))):
        service = _mapping(entry.get("Service"))
        node = _mapping(entry.get("Node"))
        instance = str(service.get("ID") or "?")[:80]
        checks = _items(entry.get("Checks"))
        worst = max((_SEVERITY.get(str(_mapping(c).get("Status")), 2) for c in checks),
                    default=0)
        health = (PASSING, WARNING, CRITICAL)[worst]
        weights = _mapping(service.get("Weights"))
        weight, note = weight_of(weights.get("Warning" if health == WARNING else "Passing", 1))
        if note:
            skipped.append(f"instance {instance}: {note}")
        address = str(service.get("Address") or node.get("Address") or "")
        port = service.get("Port")
        if port in (0, None):
            pass  # a service without a port is not an endpoint (Consul allows it)
        elif not _is_port(port):
            skipped.append(f"instance {instance}: port {str(port)[:20]} is not 1-65535, skipped")
        elif address:
            tags = _items(service.get("Tags"))
            endpoints.append(Endpoint(address, int(port), health=health, weight=weight,
                                      tags=tuple(sorted(str(t) for t in tags))))
        meta = _mapping(service.get("Meta")).get(SERVICE_META_KEY)
        if meta:
            upstreams, problems = entry_upstreams(str(meta))
            if problems:
                log.warning("ignoring routes of service=%s id=%s error=%s", name, instance,
                            problems[0])
                continue
            for upstream in upstreams:
                routes.setdefault(upstream.prefix, upstream)
    return (tuple(endpoints), tuple(routes[p] for p in sorted(routes))), skipped


def signature_of(entries: Sequence[Any]) -> Signature | None:
    """What a service's entries were made from: each instance's ID and ModifyIndex and its
    node's name and ModifyIndex, sorted (None when an entry lacks one: never matched)."""
    return _signature([(_mapping(_mapping(entry).get("Node")),
                        _mapping(_mapping(entry).get("Service"))) for entry in entries])


def _signature(instances: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]
               ) -> Signature | None:
    """`signature_of` from (node, service) pairs."""
    out = []
    for node, service in instances:
        instance, modified = service.get("ID"), service.get("ModifyIndex")
        node_name, node_modified = node.get("Node"), node.get("ModifyIndex")
        if not (isinstance(instance, str) and isinstance(node_name, str)
                and type(modified) is int and type(node_modified) is int):
            return None
        out.append((instance, modified, node_name, node_modified))
    return tuple(sorted(out))


def _node_seen(body: Any, index: int) -> NodeSeen:
    """What a node's answer holds, for telling later what moved on it."""
    node = _mapping(_mapping(body).get("Node"))
    services: dict[str, tuple[str, int]] = {}
    for service_id, listed in _mapping(_mapping(body).get("Services")).items():
        service = _mapping(listed)
        modified = service.get("ModifyIndex")
        services[str(service_id)] = (str(service.get("Service")),
                                     modified if type(modified) is int else -1)
    modified = node.get("ModifyIndex")
    return index, modified if type(modified) is int else -1, services


def _moved_services(before: NodeSeen | None, after: NodeSeen | None) -> set[str]:
    """The services whose instances on a node differ between two reads of it (all of them on
    a node that came, went or changed itself, or whose answer lacked an index)."""
    if before is None or after is None or before[1] != after[1] or before[1] == -1:
        return {name for seen in (before, after) if seen is not None
                for name, _ in seen[2].values()}
    out: set[str] = set()
    for service_id in before[2].keys() | after[2].keys():
        old, new = before[2].get(service_id), after[2].get(service_id)
        if old != new or (old is not None and old[1] == -1):
            out.update(seen[0] for seen in (old, new) if seen is not None)
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 65535
