"""Consul as a source: blocking queries on the catalog and each service's health → snapshots.

python-consul2 lets CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN override its constructor arguments; here
the address and token given to the source always win (the CLI reads the environment explicitly).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import consul
import consul.std
import requests

from nomadmesh.errors import XdsError
from nomadmesh.mesh.upstreams import SERVICE_META_KEY
from nomadmesh.xds.build import MeshState, ResourceMemo, build_snapshots
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import CRITICAL, PASSING, WARNING, Endpoint, Upstream, parse_upstreams

log = logging.getLogger("nomadmesh.xds.consul")

_CLIENT_LOCK = threading.Lock()
_BACKOFF_START = 0.05
_BACKOFF_MAX = 0.5
_SEVERITY = {PASSING: 0, WARNING: 1, CRITICAL: 2, "maintenance": 2}

ServiceView = tuple[tuple[Endpoint, ...], tuple[Upstream, ...]]


class ConsulSource:
    """Keeps the cache in step with Consul; the last good snapshots stay while Consul is down."""

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
    ) -> None:
        url = address if "://" in address else "http://" + address
        parts = urlsplit(url)
        if not parts.hostname:
            raise XdsError(f"Consul address {address!r} has no host")
        self.address = address
        self._host, self._port, self._scheme = parts.hostname, parts.port or 8500, parts.scheme
        self._token = token
        self._wait = wait
        self._timeout = timeout
        self.cache = cache
        self.metrics = metrics
        self.coalesce = coalesce
        self._lock = threading.Lock()
        self._views: dict[str, ServiceView] = {}
        self._watchers: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._failing: set[str] = set()
        self._generation = 0
        self._memo = ResourceMemo()

    def start(self) -> None:
        """Start watching; an unreachable Consul is retried in the background, not fatal."""
        self._spawn(self._catalog_loop, "nomadmesh-xds-consul-catalog")
        self._spawn(self._build_loop, "nomadmesh-xds-consul-build")

    def stop(self) -> None:
        """Stop every watcher; blocked queries end when Consul answers or drops them."""
        self._stopped.set()
        self._changed.set()
        with self._lock:
            for stop in self._watchers.values():
                stop.set()
        deadline = time.monotonic() + 0.3
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def healthy(self) -> bool:
        """Whether the last query of every watch succeeded."""
        with self._lock:
            return not self._failing

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _client(self) -> consul.Consul:
        # python-consul2's constructor warns about APIs we never call.
        with _CLIENT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = consul.Consul(token=self._token)
        # Rebuild the HTTP layer from our own settings: the constructor prefers the environment.
        client.http = consul.std.HTTPClient(
            self._host, self._port, self._scheme, True, None, connections_timeout=self._timeout
        )
        client.token = self._token
        return client

    def _blocking(self, what: str, stop: threading.Event, query: Any, apply: Any) -> None:
        """Run a blocking query until stopped: index kept, reset when it goes backwards, backoff."""
        index = 0
        backoff = _BACKOFF_START
        while not stop.is_set() and not self._stopped.is_set():
            try:
                new_index, body = query(index)
            except (requests.RequestException, consul.ConsulException, ValueError) as exc:
                if stop.is_set() or self._stopped.is_set():
                    return
                self.metrics.consul_errors.inc()
                with self._lock:
                    first_failure = what not in self._failing
                    self._failing.add(what)
                if first_failure:
                    log.warning("consul query failed what=%s address=%s error=%s",
                                what, self.address, f"{type(exc).__name__}: {exc}"[:300])
                stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                # Re-read without blocking once Consul answers: recovery shows at once, and a
                # Consul restored from a snapshot is read afresh.
                index = 0
                continue
            backoff = _BACKOFF_START
            with self._lock:
                recovered = what in self._failing
                self._failing.discard(what)
            if recovered:
                log.info("consul query recovered what=%s", what)
            new_index = int(new_index or 0)
            # Consul's rule: an index that goes backwards (or is not positive) restarts the watch;
            # an unchanged one (the wait expired) keeps it.
            index = 0 if new_index < index or new_index <= 0 else new_index
            apply(body)
            if index == 0:
                stop.wait(_BACKOFF_START)

    def _catalog_loop(self) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            result: tuple[Any, Any] = client.catalog.services(
                index=index or None, wait=self._wait if index else None
            )
            return result

        self._blocking("catalog", self._stopped, query, self._on_catalog)

    def _on_catalog(self, services: Mapping[str, Any]) -> None:
        names = {name for name in services if name != "consul"}
        with self._lock:
            added = names - set(self._watchers)
            removed = set(self._watchers) - names
            for name in removed:
                self._watchers.pop(name).set()
                self._views.pop(name, None)
                self._failing.discard(f"health:{name}")
            for name in added:
                self._watchers[name] = threading.Event()
        for name in sorted(added):
            self._spawn(self._health_loop, f"nomadmesh-xds-consul-{name}", name,
                        self._watchers[name])
        if removed:
            self._changed.set()

    def _health_loop(self, name: str, stop: threading.Event) -> None:
        client = self._client()

        def query(index: int) -> tuple[Any, Any]:
            result: tuple[Any, Any] = client.health.service(
                name, index=index or None, wait=self._wait if index else None
            )
            return result

        self._blocking(
            f"health:{name}", stop, query, lambda body: self._on_health(name, body, stop)
        )

    def _on_health(
        self, name: str, entries: Sequence[Mapping[str, Any]], stop: threading.Event
    ) -> None:
        view = service_view(name, entries)
        with self._lock:
            # A watch stopped while its query was in flight (the service left the catalog, maybe
            # to come back under a new watch) must not write its late answer.
            if stop.is_set() or self._views.get(name) == view:
                return  # a late answer, or a wake-up without a change
            self._views[name] = view
        self._changed.set()

    def _build_loop(self) -> None:
        last_build = -self.coalesce
        while not self._stopped.is_set():
            self._changed.wait()
            if self._stopped.is_set():
                return
            # At most one build per coalescing window: an isolated change is built at once,
            # a burst waits for the window to close and goes into one build.
            self._stopped.wait(max(0.0, last_build + self.coalesce - time.monotonic()))
            self._changed.clear()
            with self._lock:
                views = dict(self._views)
            last_build = time.monotonic()
            self._install(views)

    def _install(self, views: Mapping[str, ServiceView]) -> None:
        state = MeshState(
            endpoints={name: view[0] for name, view in views.items()},
            upstreams={name: view[1] for name, view in views.items() if view[1]},
        )
        self._generation += 1
        started = time.perf_counter()
        try:
            snapshots = build_snapshots(state, str(self._generation), memo=self._memo)
            self.cache.replace_all(snapshots)
        except XdsError as exc:
            self.metrics.snapshot_errors.inc()
            log.error("snapshot from consul refused generation=%s error=%s", self._generation, exc)
            return
        self.metrics.snapshot_build_seconds.observe(time.perf_counter() - started)
        log.info("snapshots installed generation=%s services=%s", self._generation, len(views))


def service_view(name: str, entries: Sequence[Mapping[str, Any]]) -> ServiceView:
    """Endpoints (health and weight as Consul computes them) and declared routes of a service."""
    endpoints = []
    routes: dict[str, Upstream] = {}
    for entry in sorted(entries, key=lambda e: str((e.get("Service") or {}).get("ID"))):
        service = entry.get("Service") or {}
        node = entry.get("Node") or {}
        checks = entry.get("Checks") or ()
        worst = max((_SEVERITY.get(str(c.get("Status")), 2) for c in checks), default=0)
        health = (PASSING, WARNING, CRITICAL)[worst]
        weights = service.get("Weights") or {}
        weight = int(weights.get("Warning" if health == WARNING else "Passing", 1))
        address = str(service.get("Address") or node.get("Address") or "")
        port = int(service.get("Port") or 0)
        if address and port:
            endpoints.append(Endpoint(address, port, health=health, weight=weight))
        meta = (service.get("Meta") or {}).get(SERVICE_META_KEY)
        if meta:
            try:
                upstreams = parse_upstreams(str(meta))
            except XdsError as exc:
                log.warning("ignoring routes of service=%s id=%s error=%s",
                            name, service.get("ID"), exc)
                continue
            for upstream in upstreams:
                routes.setdefault(upstream.prefix, upstream)
    return tuple(endpoints), tuple(routes[p] for p in sorted(routes))
