"""Nomad's native service discovery as a source (`provider = "nomad"`): a mesh without Consul.

It watches every service of every watched namespace on one connection: Nomad's event stream,
`GET /v1/event/stream?topic=Service` (command/agent/event_endpoint.go:46), whose batches carry
each registration written or deleted (nomad/state/events.go:178 and :427, payload
`ServiceRegistrationStreamEvent`, nomad/structs/event.go:176). The stream is opened first, then
the services are listed (`/v1/services` on one more connection, then `/v1/service/<name>` for
each, read by a fixed pool of `connections - 3` workers), then the stream's batches newer than the
list's index are applied in order. A reconnect is a possible gap (Nomad resumes at the closest
batch it still has, nomad/stream/event_buffer.go:160, without saying so), so every reconnect lists
again; each re-list is counted (`nomadmesh_xds_source_relists`) and logged. A Nomad without the
stream (404: before 1.0) or a token it refuses (403) is watched with blocking queries instead,
within the same budget: one blocking query on `/v1/services` and the same pool of readers.
Nomad gives that list the registrations table's index and wakes it on any registration written
or deleted in the namespace (nomad/service_registration_endpoint.go List:
GetServiceRegistrationsByNamespace watches the whole table, setReplyQueryMeta
TableServiceRegistrations), and `/v1/service/<name>` carries the same table-wide index
(GetService), so neither says which service changed and a per-service blocking query is only
exact while it is held, one connection each. So each move of the list's index has every listed
service read again on the readers (`/v1/service/<name>`, non-blocking; only changed views are
built), counted in `nomadmesh_xds_source_relists{reason="blocking"}`; a name that appears is read,
one that disappears is removed at once. The metric `nomadmesh_xds_source_watch` and `health()`
say which watch runs.

A name in several namespaces is one service of the mesh. Nomad registers a service while its
allocation runs and removes it when the allocation stops; there is no health status in a
registration, so every registered instance is an endpoint. Nomad registrations carry no meta, so
a group's routes travel as one tag, `nomadmesh-upstreams=service-a=/hi_a,...` (`inject` adds it to
services whose provider is nomad). Mesh config documents (routes with their policies, who may
call) are Nomad Variables at `nomadmesh/mesh/<service>`, the document in the item `config`
(`contract.CONFIG_ITEM`): a blocking query on `/v1/vars?prefix=nomadmesh/mesh/` and one read of
each variable whose ModifyIndex changed; a document wins over the routes tag.

Like the Consul source it never stops silently: a failed query is retried with backoff, an
answer of the wrong shape is retried, a registration Envoy cannot use is skipped; each is
counted, logged and listed by `problems()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from nomadmesh.contract import (
    CONFIG_ITEM,
    CONFIG_PREFIX,
    ROUTES_TAG_PREFIX,
    ServiceConfig,
    Upstream,
    read_config_document,
)
from nomadmesh.errors import XdsError
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.resources import Endpoint
from nomadmesh.xds.source import SourceHealth
from nomadmesh.xds.sources._common import BuildLoop, Fetcher, Problems, entry_upstreams

log = logging.getLogger("nomadmesh.xds.nomad")

_BACKOFF_START = 0.05
_BACKOFF_MAX = 0.5
# Nomad sends a heartbeat line every 10 s (nomad/stream/ndjson.go); a silent stream is dead.
_STREAM_SILENCE = 35.0
WATCH_MODES = ("auto", "events", "blocking")

View = tuple[tuple[Endpoint, ...], tuple[Upstream, ...]]  # endpoints, routes from the tag
ServiceKey = tuple[str, str]  # (namespace, service name)
Registrations = dict[str, Mapping[str, Any]]  # registration ID -> registration


class StreamUnavailable(Exception):
    """This Nomad does not serve the event stream to this token (the reason is the message)."""


def nomad_address(address: str) -> str:
    """The base URL of a Nomad address (`host:port` or a URL); XdsError if malformed."""
    url = address if "://" in address else "http://" + address
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise XdsError(f"Nomad address {address!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise XdsError(f"Nomad address {address!r} must be http(s)://host:port")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or 4646}"


class NomadSource:
    """Keeps the cache in step with Nomad's service registrations."""

    name = "nomad"

    def __init__(
        self,
        address: str,
        cache: SnapshotCache,
        metrics: XdsMetrics,
        *,
        token: str | None = None,
        namespace: str = "*",
        wait: str = "10s",
        coalesce: float = 0.01,
        tls_verify: bool | str = True,
        timeout: float = 15.0,
        config: MeshConfig | None = None,
        connections: int = 8,
        watch: str = "auto",
    ) -> None:
        if watch not in WATCH_MODES:
            raise XdsError(f"Nomad watch mode {watch!r} is not one of {', '.join(WATCH_MODES)}")
        if connections < 4:
            raise XdsError(f"the Nomad source needs at least 4 connections, not {connections} "
                           "(the event stream, the variables watch, the list and one reader)")
        self.base = nomad_address(address)
        self.connections = connections
        self.watch = watch
        self.mode = "events" if watch != "blocking" else "blocking"
        self.address = address
        self.cache = cache
        self.metrics = metrics
        self._token = token
        self._namespace = namespace
        self._wait = wait
        self._verify = tls_verify
        self._timeout = timeout
        self._lock = threading.Lock()
        # blocking mode: the services the last `/v1/services` answer listed, and its index
        self._listed_keys: set[ServiceKey] = set()
        self._list_index = 0
        # service name -> namespace -> its last view there
        self._views: dict[str, dict[str, View]] = {}
        self._configs: dict[str, ServiceConfig] = {}
        # variable path -> (ModifyIndex read, the problem its document has or None)
        self._variables: dict[str, tuple[int, str | None]] = {}
        # event mode: (namespace, name) -> its registrations, as listed and then streamed
        self._registrations: dict[ServiceKey, Registrations] = {}
        self._listed: dict[ServiceKey, tuple[int, list[Any]]] = {}  # a re-list's answers
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._response: requests.Response | None = None
        self._fallback = ""
        self.relists = 0
        self.problems_ = Problems(self.name, metrics, log)
        self._builds = BuildLoop(cache, metrics, config or MeshConfig(), coalesce=coalesce,
                                 log=log, stopped=self._stopped, problems=self.problems_)
        self._readers: Fetcher[ServiceKey, requests.Session] = Fetcher(
            "nomadmesh-xds-nomad-read", connections - 3, self._read_listed, self._session,
            lambda session: session.close(), self._stopped)

    def start(self) -> None:
        """Start watching; an unreachable Nomad is retried in the background, not fatal."""
        self.cache.on_watch(self._builds.node_added, self._builds.node_removed)
        for node_hash in self.cache.watched():
            self._builds.node_added(node_hash)
        self._set_mode(self.mode)
        self._readers.start()
        self._spawn(self._services_loop, "nomadmesh-xds-nomad-services")
        self._spawn(self._config_loop, "nomadmesh-xds-nomad-config")
        self._spawn(self._builds.run, "nomadmesh-xds-nomad-build")

    def stop(self) -> None:
        """Stop every watch; blocked queries end when Nomad answers or the timeout passes."""
        self._stopped.set()
        self._builds.wake()
        self._readers.wake()
        with self._lock:
            response = self._response
        if response is not None:
            _shut(response)  # the stream's read ends at once
        deadline = time.monotonic() + 0.3
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._readers.join(deadline)

    @property
    def builds(self) -> int:
        """How many builds ran."""
        return self._builds.builds

    def problems(self) -> list[str]:
        """What is wrong right now; empty when healthy."""
        return self.problems_.current()

    def health(self) -> SourceHealth:
        """Healthy while nothing is wrong; else one line per problem. A source that fell back
        to blocking queries says so (each registration change re-reads every service: see the
        module)."""
        problems = tuple(self.problems())
        ok = not problems  # the fallback is a note, not a problem
        if self.mode == "blocking" and self.watch == "auto":
            problems += (f"nomad watch: blocking queries, every registration change re-reads "
                         f"each service on {self._readers.workers} connections "
                         f"({self._fallback})",)
        return SourceHealth(ok=ok, problems=problems)

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        for each in ("events", "blocking"):
            self.metrics.source_watch.labels(self.name, each).set(1 if each == mode else 0)

    def healthy(self) -> bool:
        """Whether every watch's last answer was read without a problem."""
        return not self.problems()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # the address given wins over NOMAD_ADDR and proxies
        session.verify = self._verify
        if self._token:
            session.headers["X-Nomad-Token"] = self._token
        return session

    def _report_failure(self, where: str, exc: Exception) -> None:
        """Report a failed query, or an answer that cannot be used; the caller retries."""
        kind = "bad_answer" if isinstance(exc, (ValueError, XdsError)) else "query_failed"
        self.problems_.report(where, kind, f"{type(exc).__name__}: {exc}"[:300])

    def _blocking(self, what: str, path: str, stop: threading.Event, apply: Any,
                  extra: Mapping[str, str] | None = None) -> None:
        session = self._session()
        index = 0
        backoff = _BACKOFF_START
        try:
            while not stop.is_set() and not self._stopped.is_set():
                params = {"namespace": self._namespace, **(extra or {})}
                if index:
                    params.update(index=str(index), wait=self._wait)
                try:
                    response = session.get(self.base + path, params=params,
                                           timeout=self._timeout, allow_redirects=False)
                    if response.status_code != 200:
                        raise XdsError(f"HTTP {response.status_code}: {response.text[:120]}")
                    new_index = response.headers.get("X-Nomad-Index", "0")
                    apply(response.json(), session,
                          int(new_index) if new_index.isdigit() else 0)
                except (requests.RequestException, ValueError, XdsError) as exc:
                    if stop.is_set() or self._stopped.is_set():
                        return
                    self._report_failure(what, exc)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    index = 0
                    continue
                backoff = _BACKOFF_START
                self.problems_.clear(what, kinds=("bad_answer", "query_failed"))
                number = int(new_index) if new_index.isdigit() else 0
                # As with Consul: an index that goes backwards restarts the watch.
                index = 0 if number < index or number <= 0 else number
                if index == 0:
                    stop.wait(_BACKOFF_START)
        finally:
            session.close()

    def _services_loop(self) -> None:
        if self.mode == "events":
            try:
                self._stream_loop()
                return
            except StreamUnavailable as exc:
                if self.watch == "events":
                    self.problems_.report("events", "stream_unavailable", str(exc))
                    return
                self._fallback = str(exc)
                log.warning("nomad event stream unavailable, watching with blocking queries "
                            "reason=%s", exc)
                self._set_mode("blocking")
                with self._lock:
                    # What the stream showed stays served until the blocking queries answer.
                    self._registrations.clear()
        self._blocking("services", "/v1/services", self._stopped, self._on_services)

    # --- the event stream ---------------------------------------------------------------------

    def _stream_loop(self) -> None:
        """Open the stream, list, apply the stream; again after any end (StreamUnavailable when
        this Nomad or token has no stream)."""
        session = self._session()
        backoff = _BACKOFF_START
        reason = "start"
        try:
            while not self._stopped.is_set():
                try:
                    lines = self._open_stream(session)
                    with self._session() as lister:  # the stream holds `session`'s connection
                        listed = self._relist(lister, reason)
                    if listed is None:
                        return
                    backoff = _BACKOFF_START
                    self.problems_.clear("events", kinds=("query_failed", "bad_answer"))
                    self._follow(lines, listed)
                    reason = "reconnect"
                except (requests.RequestException, ValueError, XdsError) as exc:
                    if self._stopped.is_set():
                        return
                    self._report_failure("events", exc)
                    self._stopped.wait(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    reason = "reconnect"
                finally:
                    with self._lock:
                        response, self._response = self._response, None
                    if response is not None:
                        response.close()
        finally:
            session.close()

    def _open_stream(self, session: requests.Session) -> Iterator[bytes]:
        """The stream from the oldest batch Nomad keeps (index 1): the list read next is then
        covered by what the stream holds for us while we list."""
        response = session.get(
            self.base + "/v1/event/stream",
            params={"topic": "Service", "namespace": self._namespace, "index": "1"},
            stream=True, timeout=(self._timeout, _STREAM_SILENCE), allow_redirects=False)
        with self._lock:
            self._response = response
        if self._stopped.is_set():
            raise requests.ConnectionError("stopped")
        if response.status_code in (403, 404):
            text = response.text[:160].strip()
            raise StreamUnavailable(f"GET /v1/event/stream: HTTP {response.status_code}"
                                    + (f": {text}" if text else ""))
        if response.status_code != 200:
            raise XdsError(f"the event stream: HTTP {response.status_code}: "
                           f"{response.text[:120]}")
        return response.iter_lines(chunk_size=None)

    def _relist(self, session: requests.Session, reason: str) -> int | None:
        """Read every service afresh; the index the list is current at (None: stopped)."""
        started = time.perf_counter()
        response = session.get(self.base + "/v1/services", params={"namespace": self._namespace},
                               timeout=self._timeout, allow_redirects=False)
        if response.status_code != 200:
            raise XdsError(f"/v1/services: HTTP {response.status_code}: {response.text[:120]}")
        index_text = response.headers.get("X-Nomad-Index", "0")
        index = int(index_text) if index_text.isdigit() else 0
        keys = self._service_keys(response.json())
        with self._lock:
            self._listed = {}
        self._readers.mark(sorted(keys))
        if not self._readers.wait_idle():
            return None
        with self._lock:
            listed, self._listed = self._listed, {}
            before = set(self._registrations)
            self._registrations = {
                key: {str(r.get("ID")): r for r in body if isinstance(r, Mapping)}
                for key, (_, body) in listed.items() if key in keys}
        for key in sorted(before - keys):
            self._set_view(key, None)
        for key in sorted(keys):
            self._set_view(key, listed[key][1] if key in listed else [])
        if reason != "start":
            self.relists += 1
            self.metrics.source_relists.labels(self.name, reason).inc()
        log.info("nomad services listed reason=%s services=%s index=%s seconds=%.3f", reason,
                 len(keys), index, time.perf_counter() - started)
        return index

    def _read_listed(self, session: requests.Session, key: ServiceKey) -> None:
        """One service's registrations (a pool worker), retried until read: for a re-list, or
        in blocking mode applied at once (unless the service is no longer listed)."""
        backoff = _BACKOFF_START
        while not self._stopped.is_set():
            if self.mode == "blocking":
                with self._lock:
                    if key not in self._listed_keys:
                        return
            try:
                response = session.get(f"{self.base}/v1/service/{quote(key[1])}",
                                       params={"namespace": key[0]}, timeout=self._timeout,
                                       allow_redirects=False)
                if response.status_code != 200:
                    raise XdsError(f"HTTP {response.status_code}: {response.text[:120]}")
                body = response.json()
                if not isinstance(body, list):
                    raise XdsError(f"the answer for service {key[1]} is "
                                   f"{type(body).__name__}, not a list")
            except (requests.RequestException, ValueError, XdsError) as exc:
                self._report_failure(_where(key), exc)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            self.problems_.clear(_where(key), kinds=("bad_answer", "query_failed"))
            self.metrics.source_fetches.labels(self.name).inc()
            if self.mode == "blocking":
                self._set_view(key, body, listed_only=True)
                return
            index_text = response.headers.get("X-Nomad-Index", "0")
            with self._lock:
                self._listed[key] = (int(index_text) if index_text.isdigit() else 0, body)
            return

    def _follow(self, lines: Iterator[bytes], listed: int) -> None:
        """Apply the stream's batches newer than `listed`, each service's registrations in
        commit order, until the stream ends."""
        for line in lines:
            if self._stopped.is_set():
                return
            if not line.strip():
                continue
            batch = json.loads(line)
            if not isinstance(batch, Mapping):
                raise XdsError(f"an event stream line is {type(batch).__name__}, not an object")
            if not batch:
                continue  # a heartbeat (nomad/stream/ndjson.go JsonHeartbeat)
            index, events = batch.get("Index"), batch.get("Events")
            if not isinstance(index, int) or not isinstance(events, list):
                self.problems_.report("events", "bad_entry", "a batch without Index or Events "
                                      "skipped")
                continue
            if index <= listed:
                continue  # already in the list
            self._apply_events(events)
        raise requests.ConnectionError("the event stream ended")

    def _apply_events(self, events: list[Any]) -> None:
        touched: set[ServiceKey] = set()
        with self._lock:
            for event in events:
                service = _mapping(_mapping(event).get("Payload")).get("Service")
                kind = _mapping(event).get("Type")
                if not isinstance(service, Mapping):
                    continue
                name, namespace = service.get("ServiceName"), service.get("Namespace")
                if not isinstance(name, str) or not name or "/" in name:
                    continue
                key = (namespace if isinstance(namespace, str) and namespace else "default",
                       name)
                registrations = self._registrations.setdefault(key, {})
                if kind == "ServiceDeregistration":
                    registrations.pop(str(service.get("ID")), None)
                elif kind == "ServiceRegistration":
                    registrations[str(service.get("ID"))] = service
                else:
                    continue
                touched.add(key)
            bodies = {}
            for key in touched:
                registrations = self._registrations.get(key) or {}
                if not registrations:
                    self._registrations.pop(key, None)
                bodies[key] = list(registrations.values()) or None
        for key in sorted(touched):
            self._set_view(key, bodies[key])

    def _checked_view(self, key: ServiceKey, body: list[Any]) -> View:
        """The registrations' view; those Envoy cannot use are skipped and reported."""
        view, skipped = registrations_view(body)
        if skipped:
            self.problems_.report(_where(key), "bad_entry", "; ".join(skipped[:3]),
                                  count=len(skipped))
        else:
            self.problems_.clear(_where(key), kinds=("bad_entry",))
        return view

    def _set_view(self, key: ServiceKey, body: list[Any] | None, *,
                  listed_only: bool = False) -> None:
        """A service's registrations in one namespace (None or empty: it has none there);
        `listed_only`: dropped when the last list no longer has the service."""
        name = key[1]
        view = self._checked_view(key, body or [])
        with self._lock:
            if listed_only and key not in self._listed_keys:
                return
            views = self._views.setdefault(name, {})
            if not body:
                if key[0] not in views:
                    if not views:
                        self._views.pop(name, None)
                    return
                del views[key[0]]
                if not views:
                    self._views.pop(name, None)
            elif views.get(key[0]) == view:
                return
            else:
                views[key[0]] = view
            combined = self._view(name)
            config = self._configs.get(name)
        if combined is None:
            self._builds.remove_service(name)
        else:
            self._publish(name, combined, config)

    # --- blocking queries (no event stream) ---------------------------------------------------

    def _config_loop(self) -> None:
        self._blocking("config", "/v1/vars", self._stopped, self._on_variables,
                       {"prefix": CONFIG_PREFIX})

    def _on_variables(self, body: Any, session: requests.Session, _index: int) -> None:
        """The variables under `CONFIG_PREFIX`: read the changed ones, apply what changed."""
        if not isinstance(body, list):
            raise XdsError(f"the variables answer is {type(body).__name__}, not a list")
        listed: dict[str, tuple[str, int]] = {}  # path -> (namespace, ModifyIndex)
        for entry in body:
            if not isinstance(entry, Mapping):
                continue
            path, namespace, index = entry.get("Path"), entry.get("Namespace"), entry.get(
                "ModifyIndex")
            if not isinstance(path, str) or not path.startswith(CONFIG_PREFIX):
                continue
            service = path.removeprefix(CONFIG_PREFIX)
            if (not service or "/" in service or not isinstance(namespace, str)
                    or not isinstance(index, int) or path in listed):
                continue  # the first namespace (Nomad lists them in order) wins
            listed[path] = (namespace, index)
        with self._lock:
            known = dict(self._variables)
            found = dict(self._configs)
        for path in set(known) - set(listed):
            del known[path]
            found.pop(path.removeprefix(CONFIG_PREFIX), None)
        for path, (namespace, index) in sorted(listed.items()):
            if known.get(path, (None,))[0] == index:
                continue
            service = path.removeprefix(CONFIG_PREFIX)
            problem = None
            try:
                found[service] = self._read_variable(session, path, namespace)
            except XdsError as exc:
                problem = str(exc)[:200]  # the last good document stays
            known[path] = (index, problem)
        bad = [problem for _, problem in known.values() if problem is not None]
        if bad:
            self.problems_.report("config", "bad_entry", "; ".join(bad[:3]), count=len(bad))
        else:
            self.problems_.clear("config", kinds=("bad_entry",))
        with self._lock:
            changed = {s for s in set(found) | set(self._configs)
                       if found.get(s) != self._configs.get(s)}
            self._configs, self._variables = found, known
            updates = {s: (self._view(s), found.get(s)) for s in changed}
        for service, (view, config) in sorted(updates.items()):
            tag_routes = view[1] if view is not None else ()
            self._builds.set_upstreams(service, config.upstreams if config else tag_routes)
            self._builds.set_callers(service, config.allow if config else None)

    def _read_variable(self, session: requests.Session, path: str,
                       namespace: str) -> ServiceConfig:
        """One variable's config document; XdsError when it is unusable (not when unreachable)."""
        where = f"nomad variable {path}"
        response = session.get(f"{self.base}/v1/var/{quote(path, safe='/')}",
                               params={"namespace": namespace}, timeout=self._timeout,
                               allow_redirects=False)
        if response.status_code == 404:
            raise XdsError(f"{where}: gone while being read")
        if response.status_code != 200:
            raise requests.HTTPError(f"{where}: HTTP {response.status_code}: "
                                     f"{response.text[:120]}")
        body = response.json()
        items = body.get("Items") if isinstance(body, Mapping) else None
        text = items.get(CONFIG_ITEM) if isinstance(items, Mapping) else None
        if not isinstance(text, str):
            raise XdsError(f"{where}: no item {CONFIG_ITEM!r} holding a config document")
        return read_config_document(text, where)

    def _service_keys(self, body: Any) -> set[ServiceKey]:
        """(namespace, name) of every service a `/v1/services` answer lists."""
        if not isinstance(body, list):
            raise XdsError(f"the services answer is {type(body).__name__}, not a list")
        keys: set[ServiceKey] = set()
        fallback = self._namespace if self._namespace != "*" else "default"
        for namespace in body:
            services = namespace.get("Services") if isinstance(namespace, Mapping) else None
            listed = namespace.get("Namespace") if isinstance(namespace, Mapping) else None
            in_namespace = listed if isinstance(listed, str) and listed else fallback
            for service in services if isinstance(services, list) else ():
                name = service.get("ServiceName") if isinstance(service, Mapping) else None
                if isinstance(name, str) and name and "/" not in name:
                    keys.add((in_namespace, name))
        return keys

    def _on_services(self, body: Any, session: requests.Session, index: int) -> None:
        """Blocking mode: the list of services. A name gone is removed at once; a name new is
        read; an index that moved (a registration written or deleted somewhere, see the module)
        has every listed service read again on the readers."""
        keys = self._service_keys(body)
        with self._lock:
            first = self._list_index == 0
            moved = index != self._list_index
            self._list_index = index
            # Services served without being listed (by the event stream before a fallback)
            # and no longer listed are gone too.
            served = {(namespace, name) for name, views in self._views.items()
                      for namespace in views}
            removed = (self._listed_keys | served) - keys
            added = keys - self._listed_keys
            self._listed_keys = keys
            for key in removed:
                views = self._views.get(key[1], {})
                views.pop(key[0], None)
                if not views:
                    self._views.pop(key[1], None)
                self.problems_.clear(_where(key))
            # A name gone from every namespace leaves the mesh; one left elsewhere is re-published.
            gone = {name for _, name in removed if self._view(name) is None}
            left = {name: self._view(name) for _, name in removed if name not in gone}
            configs = {name: self._configs.get(name) for name in left}
        for name in sorted(gone):
            self._builds.remove_service(name)
        for name, view in sorted(left.items()):
            if view is not None:
                self._publish(name, view, configs[name])
        if moved and not first and keys - added:
            self.relists += 1
            self.metrics.source_relists.labels(self.name, "blocking").inc()
        self._readers.mark(sorted(keys if moved else added))

    def _publish(self, name: str, view: View, config: ServiceConfig | None) -> None:
        self._builds.set_service(name, view[0], config.upstreams if config is not None else view[1])

    def _view(self, name: str) -> View | None:
        """A name's registrations over every namespace that has it (under the lock)."""
        views = [v for _, v in sorted(self._views.get(name, {}).items())]
        if not views:
            return None
        if len(views) == 1:
            return views[0]
        routes: dict[str, Upstream] = {}
        for _, found in views:
            for upstream in found:
                routes.setdefault(upstream.prefix, upstream)
        return (tuple(e for endpoints, _ in views for e in endpoints),
                tuple(routes[p] for p in sorted(routes)))


def _shut(response: requests.Response) -> None:
    """End a streamed response being read on another thread: its socket says end of file."""
    # A duplicate of the socket's descriptor: shutting it down ends the reader's socket.
    with contextlib.suppress(OSError, ValueError), \
            socket.socket(fileno=os.dup(response.raw.fileno())) as duplicate:
        duplicate.shutdown(socket.SHUT_RDWR)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _where(key: tuple[str, str]) -> str:
    return f"service:{key[1]}" if key[0] == "default" else f"service:{key[0]}/{key[1]}"


def registrations_view(body: list[Any]) -> tuple[tuple[tuple[Endpoint, ...],
                                                        tuple[Upstream, ...]], list[str]]:
    """Endpoints and routes from a service's registrations, and what had to be skipped."""
    endpoints = []
    routes: dict[str, Upstream] = {}
    skipped = []
    good = [e for e in body if isinstance(e, Mapping)]
    if len(good) < len(body):
        skipped.append(f"{len(body) - len(good)} entries that are not objects skipped")
    for entry in sorted(good, key=lambda e: str(e.get("ID"))):
        instance = str(entry.get("ID") or "?")[:80]
        address, port = entry.get("Address"), entry.get("Port")
        tags = [t for t in entry.get("Tags") or () if isinstance(t, str)] if isinstance(
            entry.get("Tags"), list) else []
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port <= 65535:
            skipped.append(f"registration {instance}: port {str(port)[:20]} is not 1-65535")
        elif not isinstance(address, str) or not address:
            skipped.append(f"registration {instance}: no address")
        else:
            endpoints.append(Endpoint(address, port, tags=tuple(sorted(tags))))
        for tag in tags:
            if tag.startswith(ROUTES_TAG_PREFIX):
                found, problems = entry_upstreams(tag.removeprefix(ROUTES_TAG_PREFIX))
                if problems:
                    skipped.append(f"registration {instance}: routes tag: {problems[0].message}")
                    continue
                for upstream in found:
                    routes.setdefault(upstream.prefix, upstream)
    return (tuple(endpoints), tuple(routes[p] for p in sorted(routes))), skipped
