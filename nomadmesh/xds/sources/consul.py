"""Consul as a source: blocking queries on the catalog, each service's health and the mesh's KV
config → incremental snapshots.

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
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from nomadmesh.consul_api import ConsulApi, ConsulConfig
from nomadmesh.contract import (
    CONFIG_PREFIX,
    SERVICE_META_KEY,
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
from nomadmesh.xds.sources._common import BuildLoop, Problems, entry_upstreams, weight_of

log = logging.getLogger("nomadmesh.xds.consul")

_BACKOFF_START = 0.05
_BACKOFF_MAX = 0.5
_SEVERITY = {PASSING: 0, WARNING: 1, CRITICAL: 2, "maintenance": 2}

ServiceView = tuple[tuple[Endpoint, ...], tuple[Upstream, ...]]


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
    ) -> None:
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
        self._watchers: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self.problems_ = Problems(self.name, metrics, log)
        self._builds = BuildLoop(cache, metrics, config or MeshConfig(), coalesce=coalesce, log=log,
                                 stopped=self._stopped, problems=self.problems_)

    def start(self) -> None:
        """Start watching; an unreachable Consul is retried in the background, not fatal."""
        self.cache.on_watch(self._builds.node_added, self._builds.node_removed)
        for node_hash in self.cache.watched():
            self._builds.node_added(node_hash)
        self._spawn(self._catalog_loop, "nomadmesh-xds-consul-catalog")
        self._spawn(self._config_loop, "nomadmesh-xds-consul-config")
        self._spawn(self._builds.run, "nomadmesh-xds-consul-build")

    def stop(self) -> None:
        """Stop every watcher; blocked queries end when Consul answers or drops them."""
        self._stopped.set()
        self._builds.wake()
        with self._lock:
            for stop in self._watchers.values():
                stop.set()
        deadline = time.monotonic() + 0.3
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

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

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _client(self) -> ConsulApi:
        scheme = "https" if self._scheme == "https" else "http"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return ConsulApi(ConsulConfig(address=f"{scheme}://{host}:{self._port}",
                                      token=self._token, timeout=self._timeout))

    def _blocking(self, what: str, stop: threading.Event, query: Any, apply: Any) -> None:
        """Run a blocking query until stopped: index kept, reset when it goes backwards, backoff.

        A failed query and an answer `apply` cannot use (XdsError) are both retried with backoff.
        """
        index = 0
        backoff = _BACKOFF_START
        while not stop.is_set() and not self._stopped.is_set():
            try:
                new_index, body = query(index)
                apply(body)
            except (ConsulUnavailable, PermissionDenied, ApiError, XdsError) as exc:
                if stop.is_set() or self._stopped.is_set():
                    return
                bad_answer = isinstance(exc, XdsError) or (
                    isinstance(exc, ApiError) and not isinstance(exc, PermissionDenied))
                if not bad_answer:
                    self.metrics.consul_errors.inc()
                kind = "bad_answer" if bad_answer else "query_failed"
                self.problems_.report(what, kind, f"{type(exc).__name__}: {exc}"[:300])
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
            return client.catalog_services_raw(index=index or None,
                                               wait=self._wait if index else None)

        try:
            self._blocking("catalog", self._stopped, query, self._on_catalog)
        finally:
            client.close()

    def _on_catalog(self, services: Any) -> None:
        if not isinstance(services, Mapping):
            raise XdsError(f"the catalog answer is {type(services).__name__}, not an object")
        names = {str(name) for name in services if name != "consul"}
        with self._lock:
            added = names - set(self._watchers)
            removed = set(self._watchers) - names
            for name in removed:
                self._watchers.pop(name).set()
                self._views.pop(name, None)
                self.problems_.clear(f"health:{name}")
            for name in added:
                self._watchers[name] = threading.Event()
        for name in sorted(added):
            self._spawn(self._health_loop, f"nomadmesh-xds-consul-{name}", name,
                        self._watchers[name])
        for name in removed:
            self._builds.remove_service(name)

    def _health_loop(self, name: str, stop: threading.Event) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            return client.health_service_raw(name, index=index or None,
                                             wait=self._wait if index else None)

        try:
            self._blocking(f"health:{name}", stop, query,
                           lambda body: self._on_health(name, body, stop))
        finally:
            client.close()

    def _on_health(self, name: str, entries: Any, stop: threading.Event) -> None:
        if not isinstance(entries, list):
            raise XdsError(f"the health answer is {type(entries).__name__}, not a list")
        view, skipped = service_view(name, entries)
        where = f"health:{name}"
        if skipped:
            self.problems_.report(where, "bad_entry", "; ".join(skipped[:3]), count=len(skipped))
        else:
            self.problems_.clear(where, kinds=("bad_entry",))
        with self._lock:
            # A watch stopped while its query was in flight (the service left the catalog, maybe
            # to come back under a new watch) must not write its late answer.
            if stop.is_set() or self._views.get(name) == view:
                return  # a late answer, or a wake-up without a change
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

    def _on_config(self, entries: Any) -> None:
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 65535
