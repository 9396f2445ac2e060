"""The state-of-the-world ADS server: streams the cache's snapshots to Envoys over gRPC."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

import attrs
import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from nomadmesh.contract import (
    CLUSTER_TYPE,
    COMPLETE_SET_TYPES,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    PUSH_ORDER,
    ROUTE_TYPE,
)
from nomadmesh.errors import XdsError
from nomadmesh.xds import resources
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.snapshot import Resource, Snapshot, rds_names, set_version

log = logging.getLogger("nomadmesh.xds")

CONTROL_PLANE_ID = "nomadmesh"
_nonces = itertools.count(1)
_CLOSED = object()
_CHANGED = object()


@attrs.define
class _TypeState:
    """What one stream asked for and was sent, for one resource type."""

    names: set[str] = attrs.field(factory=set)
    subscribed: bool = False
    nonce: str = ""
    # name -> Resource last sent; for complete-set types this is the whole set last sent.
    sent: dict[str, Resource] = attrs.field(factory=dict)
    sent_version: str | None = None


class AdsServicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    """gRPC servicer for `AggregatedDiscoveryService`; one `_Stream` per connected Envoy."""

    def __init__(self, cache: SnapshotCache, metrics: XdsMetrics) -> None:
        self.cache = cache
        self.metrics = metrics

    def StreamAggregatedResources(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        """Serve one Envoy's ADS stream until it goes away."""
        stream = _Stream(self.cache, self.metrics)
        yield from stream.run(request_iterator, context)

    def DeltaAggregatedResources(
        self, request_iterator: Iterator[Any], context: grpc.ServicerContext
    ) -> Iterator[Any]:
        """Delta xDS is not offered; Envoy must use state-of-the-world ADS."""
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "nomadmesh serves state-of-the-world ADS only")
        yield from ()


class _Stream:
    """One ADS stream: per-type subscriptions, nonces and what was sent, driven by one queue."""

    def __init__(self, cache: SnapshotCache, metrics: XdsMetrics) -> None:
        self.cache = cache
        self.metrics = metrics
        self.events: queue.Queue[Any] = queue.Queue()
        self.node: base_pb2.Node | None = None
        self.node_hash = ""
        self.types: dict[str, _TypeState] = {type_url: _TypeState() for type_url in PUSH_ORDER}

    def run(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        """Yield responses to requests and to snapshot changes, in the order they are due."""
        context.add_callback(lambda: self.events.put(_CLOSED))
        reader = threading.Thread(
            target=self._read, args=(request_iterator,), name="nomadmesh-xds-reader", daemon=True
        )
        reader.start()
        cancel_watch: Callable[[], None] | None = None
        self.metrics.connected_proxies.inc()
        try:
            while True:
                event = self.events.get()
                if event is _CLOSED:
                    return
                if event is _CHANGED:
                    responses = self._on_change()
                else:
                    if self.node is None:
                        self._accept_node(event, context)
                        cancel_watch = self.cache.watch(
                            self.node_hash, lambda: self.events.put(_CHANGED)
                        )
                    responses = self._on_request(event)
                for response in responses:
                    self.metrics.pushes.labels(response.type_url).inc()
                    self.metrics.resources_pushed.labels(response.type_url).inc(
                        len(response.resources)
                    )
                    yield response
        finally:
            self.metrics.connected_proxies.dec()
            if cancel_watch is not None:
                cancel_watch()
            log.info("stream closed %s", self._label())

    def _read(self, request_iterator: Iterator[Any]) -> None:
        try:
            for request in request_iterator:
                self.events.put(request)
        except grpc.RpcError:
            pass  # the stream was cancelled; the context callback closes it
        finally:
            self.events.put(_CLOSED)

    def _accept_node(self, request: Any, context: grpc.ServicerContext) -> base_pb2.Node:
        if not request.HasField("node") or not request.node.cluster:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request must carry node.cluster"
            )
        self.node = request.node
        try:
            self.node_hash = self.cache.node_hash(
                request.node.cluster, resources.node_metadata(request.node))
        except XdsError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        log.info("stream opened node=%s cluster=%s", request.node.id, request.node.cluster)
        return request.node

    def _label(self) -> str:
        node = self.node
        return f"node={node.id} cluster={node.cluster}" if node is not None else "node=?"

    def _on_request(self, request: Any) -> list[Any]:
        state = self.types.get(request.type_url)
        if state is None:
            log.warning("unsupported type requested %s type=%s", self._label(), request.type_url)
            return []
        if request.response_nonce and request.response_nonce != state.nonce:
            self.metrics.stale_requests.inc()
            return []
        if request.HasField("error_detail"):
            # The rejected version stays recorded as sent, so it is never offered again.
            self.metrics.nacks.labels(request.type_url).inc()
            log.warning(
                "NACK %s type=%s rejected_nonce=%s kept_version=%s error=%s",
                self._label(), request.type_url, request.response_nonce,
                request.version_info, request.error_detail.message,
            )
        names = set(request.resource_names)
        if request.type_url in COMPLETE_SET_TYPES:
            names.discard("*")
        for dropped in state.names - names:
            state.sent.pop(dropped, None)
        new_subscription = not request.response_nonce or bool(names - state.names)
        state.names = names
        state.subscribed = True
        snapshot = self.cache.get(self.node_hash) if self.node is not None else None
        if snapshot is None:
            return []
        response = self._response(request.type_url, snapshot, force=new_subscription)
        return [response] if response is not None else []

    def _on_change(self) -> list[Any]:
        snapshot = self.cache.get(self.node_hash) if self.node is not None else None
        if snapshot is None:
            return []
        responses = []
        removals = []
        for type_url in PUSH_ORDER:
            state = self.types[type_url]
            if not state.subscribed:
                continue
            if type_url in COMPLETE_SET_TYPES:
                current = self._complete_set(type_url, snapshot)
                removed = [r for name, r in state.sent.items() if name not in current]
                if removed:
                    # Make before break: keep removed resources until everything else is updated.
                    staged = self._send_set(type_url, {**current, **{r.name: r for r in removed}})
                    if staged is not None:
                        responses.append(staged)
                    removals.append(type_url)
                    continue
            response = self._response(type_url, snapshot, force=False)
            if response is not None:
                responses.append(response)
        for type_url in removals:
            final = self._send_set(type_url, self._complete_set(type_url, snapshot))
            if final is not None:
                responses.append(final)
        return responses

    def _complete_set(self, type_url: str, snapshot: Snapshot) -> dict[str, Resource]:
        return dict(snapshot.of_type(type_url))

    def _response(self, type_url: str, snapshot: Snapshot, *, force: bool) -> Any | None:
        state = self.types[type_url]
        if type_url in COMPLETE_SET_TYPES:
            items = self._complete_set(type_url, snapshot)
            return self._send_set(type_url, items, force=force)
        available = snapshot.of_type(type_url)
        due = [
            available[name]
            for name in sorted(state.names)
            if name in available
            and (name not in state.sent or state.sent[name].version != available[name].version)
        ]
        if not due:
            return None
        for item in due:
            state.sent[item.name] = item
        return self._message(type_url, snapshot.type_version(type_url), due)

    def _send_set(
        self, type_url: str, items: dict[str, Resource], *, force: bool = False
    ) -> Any | None:
        state = self.types[type_url]
        version = set_version(items)
        if not force and version == state.sent_version:
            return None
        # A changed cluster (listener) is rebuilt by Envoy and warms until it gets its endpoints
        # (routes) again, so those are due again even though their content did not change.
        dependent = self.types[_DEPENDENT.get(type_url, type_url)]
        for name, item in items.items():
            previous = state.sent.get(name)
            if previous is None or previous.version != item.version:
                for dependent_name in _dependent_names(type_url, item):
                    dependent.sent.pop(dependent_name, None)
        state.sent = dict(items)
        state.sent_version = version
        return self._message(type_url, version, [items[name] for name in sorted(items)])

    def _message(self, type_url: str, version: str, items: Iterable[Resource]) -> Any:
        state = self.types[type_url]
        state.nonce = str(next(_nonces))
        response = discovery_pb2.DiscoveryResponse(
            version_info=version,
            type_url=type_url,
            nonce=state.nonce,
            control_plane=base_pb2.ControlPlane(identifier=CONTROL_PLANE_ID),
        )
        response.resources.extend(item.packed for item in items)
        return response


_DEPENDENT = {CLUSTER_TYPE: ENDPOINT_TYPE, LISTENER_TYPE: ROUTE_TYPE}


def _dependent_names(type_url: str, item: Resource) -> list[str]:
    if type_url not in _DEPENDENT:
        return []
    if type_url == CLUSTER_TYPE:
        return [item.message.eds_cluster_config.service_name or item.name]
    return rds_names(item.message)


class AdsServer:
    """A gRPC server carrying the ADS servicer, bound to one address (loopback by default)."""

    def __init__(
        self,
        cache: SnapshotCache,
        metrics: XdsMetrics,
        *,
        host: str = "127.0.0.1",
        port: int = 18000,
        credentials: grpc.ServerCredentials | None = None,
        max_streams: int = 1024,
    ) -> None:
        # Each open stream holds one worker thread for its whole life.
        self._executor = futures.ThreadPoolExecutor(
            max_workers=max_streams, thread_name_prefix="nomadmesh-xds-stream"
        )
        self._server = grpc.server(
            self._executor,
            options=[
                ("grpc.so_reuseport", 0),  # a second control plane must not share the port
                # Ping idle Envoys so streams of vanished hosts are closed, not kept forever.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
            ],
        )
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
            AdsServicer(cache, metrics), self._server
        )
        address = f"{host}:{port}"
        try:
            if credentials is None:
                self.port = self._server.add_insecure_port(address)
            else:
                self.port = self._server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise XdsError(f"cannot listen on {address}: {exc}") from None
        if self.port == 0:
            raise XdsError(f"cannot listen on {address}: address unavailable")
        self.host = host

    def start(self) -> None:
        """Start accepting streams."""
        self._server.start()

    def stop(self, grace: float = 0.2) -> None:
        """Stop: open streams are cancelled after `grace` seconds; worker threads end."""
        self._server.stop(grace).wait()
        self._executor.shutdown(wait=True, cancel_futures=True)
