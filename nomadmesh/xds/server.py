"""The ADS transport: grpc.aio streams on one event loop, carrying what the cache says is due.

Each connected Envoy is one coroutine (and one reader task), not a thread. A stream identifies
itself with its first request (the node); the cache's `Watch` for its node hash then decides every
response, and this module adds the nonce, encodes it from the resources' pre-encoded bytes and
writes it. Streams that never identify themselves are bounded in number and time.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Coroutine, Iterable
from typing import Any, NoReturn, TypeVar

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError

from nomadmesh.contract import PUSH_ORDER
from nomadmesh.errors import XdsError
from nomadmesh.xds.cache import Response, SnapshotCache, Watch
from nomadmesh.xds.metrics import XdsMetrics
from nomadmesh.xds.snapshot import field

log = logging.getLogger("nomadmesh.xds")
T = TypeVar("T")

CONTROL_PLANE_ID = "nomadmesh"
SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
_CLOSED = object()
_CHANGED = object()
_GARBAGE = object()
_REFUSAL_LOG_SECONDS = 1.0
_TYPE_FIELDS = {type_url: field(4, type_url.encode()) for type_url in PUSH_ORDER}


def encode_response(response: Response, nonce: str, control_plane: bytes) -> bytes:
    """A DiscoveryResponse's wire bytes, assembled from pre-encoded fields (no proto objects)."""
    return b"".join((
        field(1, response.version.encode()),
        *(item.wire for item in response.resources),
        _TYPE_FIELDS[response.type_url],
        field(5, nonce.encode()),
        control_plane,
    ))


class LoopThread:
    """An asyncio event loop run on a daemon thread while anything uses it (`acquire`/`release`).

    The loop object lives as long as the process and is never closed: grpc.aio's completion
    queue poller is process-wide and hands late events to the loop of each call, which fails
    once that loop is closed. A stopped loop just queues them until it runs again.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._name = name
        self._lock = threading.Lock()
        self._users = 0
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Count one user; the first one starts the loop's thread."""
        with self._lock:
            self._users += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self.loop.run_forever, name=self._name,
                                                daemon=True)
                self._thread.start()

    def release(self) -> None:
        """Uncount one user; after the last one the loop stops and its thread ends."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._thread is not None:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=10)
                self._thread = None

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coroutine` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


_LOOP: LoopThread | None = None
_LOOP_LOCK = threading.Lock()


def xds_loop() -> LoopThread:
    """The process's one event loop for gRPC: every ADS server (and the test clients) share it."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = LoopThread("nomadmesh-xds-loop")
        return _LOOP


class AdsServer:
    """A grpc.aio server for `AggregatedDiscoveryService` on the process's xDS event loop."""

    def __init__(
        self,
        cache: SnapshotCache,
        metrics: XdsMetrics,
        *,
        host: str = "127.0.0.1",
        port: int = 18000,
        credentials: grpc.ServerCredentials | None = None,
        identify_timeout: float = 10.0,
        max_unidentified: int = 1024,
        max_streams: int = 20_000,
        identifier: str = CONTROL_PLANE_ID,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.host = host
        self.port = port
        self.identify_timeout = identify_timeout
        self.max_unidentified = max_unidentified
        self._requested_port = port
        self._credentials = credentials
        self._max_streams = max_streams
        self._control_plane = field(
            6, base_pb2.ControlPlane(identifier=identifier).SerializeToString()
        )
        self._unidentified: collections.OrderedDict[_Stream, asyncio.Future[None]] = (
            collections.OrderedDict()
        )
        self._refusals: dict[str, tuple[float, int]] = {}
        self._server: grpc.aio.Server | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop every stream runs on."""
        return xds_loop().loop

    def start(self) -> None:
        """Bind and start serving on the process's xDS event loop; XdsError if it cannot listen."""
        runner = xds_loop()
        runner.acquire()
        try:
            self._server = runner.call(self._open())
        except BaseException:
            runner.release()
            raise

    def stop(self, grace: float = 0.2) -> None:
        """Stop: open streams are cancelled after `grace` seconds."""
        server, self._server = self._server, None
        if server is not None:
            runner = xds_loop()
            try:
                runner.call(server.stop(grace), timeout=grace + 10)
            finally:
                runner.release()

    async def _open(self) -> grpc.aio.Server:
        server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),  # a second control plane must not share the port
                # Ping idle Envoys so streams of vanished hosts are closed, not kept forever.
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                # A connection that opens no stream is closed after five minutes.
                ("grpc.max_connection_idle_ms", 300_000),
                # An Envoy uses one stream; many streams on one connection is not a sidecar.
                ("grpc.max_concurrent_streams", 128),
                # A reconnect storm (a replica died) arrives at once; gRPC core cancels calls
                # beyond 1,000 not yet handed to the server, unless told to queue more.
                ("grpc.server.max_pending_requests", 10_000),
                ("grpc.server.max_pending_requests_hard_limit", 20_000),
            ],
            maximum_concurrent_rpcs=self._max_streams,
        )
        handlers = {
            "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._stream,
                request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                response_serializer=None,
            ),
            "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                self._delta, request_deserializer=None, response_serializer=None
            ),
        }
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
        address = f"{self.host}:{self._requested_port}"
        try:
            if self._credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:
            raise XdsError(f"cannot listen on {address}: {exc}") from None
        if port == 0:
            raise XdsError(f"cannot listen on {address}: address unavailable")
        self.port = port
        await server.start()
        return server

    async def _stream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await _Stream(self, context).run()

    async def _delta(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "nomadmesh serves state-of-the-world ADS only"
        )

    def _admit(self, stream: _Stream) -> asyncio.Future[None]:
        """Count a stream that has not identified itself; past the bound, evict the oldest."""
        evicted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unidentified[stream] = evicted
        if len(self._unidentified) > self.max_unidentified:
            _, oldest = self._unidentified.popitem(last=False)
            if not oldest.done():
                oldest.set_result(None)
        self.metrics.unidentified_streams.set(len(self._unidentified))
        return evicted

    def _log_refusal(self, reason: str, line: str) -> None:
        """Log refused streams at most once a second per reason: floods must not flood the log."""
        now = time.monotonic()
        last, suppressed = self._refusals.get(reason, (-_REFUSAL_LOG_SECONDS, 0))
        if now - last < _REFUSAL_LOG_SECONDS:
            self._refusals[reason] = (last, suppressed + 1)
            return
        more = f" (and {suppressed} more since the last such line)" if suppressed else ""
        log.warning("stream refused %s%s", line, more)
        self._refusals[reason] = (now, 0)

    def _identified(self, stream: _Stream) -> None:
        self._unidentified.pop(stream, None)
        self.metrics.unidentified_streams.set(len(self._unidentified))


class _Stream:
    """One ADS stream: reads requests, asks its watch what is due, writes the responses."""

    def __init__(self, server: AdsServer, context: grpc.aio.ServicerContext) -> None:
        self.server = server
        self.context = context
        self.metrics = server.metrics
        self.node: base_pb2.Node | None = None
        self.watch: Watch | None = None
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._change_queued = False
        self._nonces = dict.fromkeys(PUSH_ORDER, "")
        self._sent = 0

    async def run(self) -> None:
        """Serve the stream until the client goes away or breaks the protocol."""
        first = await self._identify()
        try:
            watch = self.watch = self._open_watch(first)
        except XdsError as exc:
            await self._refuse("bad_node", grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.metrics.connected_proxies.inc()
        reader = asyncio.ensure_future(self._read())
        try:
            await self._send(self._on_request(first))
            while True:
                event = await self._events.get()
                if event is _CLOSED:
                    return
                if event is _GARBAGE:
                    await self._refuse("bad_request", grpc.StatusCode.INVALID_ARGUMENT,
                                       "a message on the stream is not a DiscoveryRequest")
                if event is _CHANGED:
                    self._change_queued = False
                    changed_at = watch.changed_at
                    await self._send(watch.due())
                    if changed_at is not None:
                        self.metrics.push_delay_seconds.observe(time.monotonic() - changed_at)
                else:
                    await self._send(self._on_request(event))
        finally:
            reader.cancel()
            watch.close()
            self.metrics.connected_proxies.dec()
            log.info("stream closed %s", self._label())

    async def _identify(self) -> Any:
        """The first request, within the identify timeout; refuses the stream otherwise."""
        evicted = self.server._admit(self)
        read = asyncio.ensure_future(self.context.read())
        try:
            done, _ = await asyncio.wait(
                {read, evicted}, timeout=self.server.identify_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self.server._identified(self)
        if read not in done:
            try:
                if evicted.done():
                    await self._refuse("evicted", grpc.StatusCode.RESOURCE_EXHAUSTED,
                                       "too many streams without a first request")
                await self._refuse(
                    "identify_timeout", grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no first request within {self.server.identify_timeout:g}s",
                )
            finally:
                # Only after the status is out: cancelling a read first cancels the whole call.
                read.cancel()
        try:
            request = read.result()
        except DecodeError:
            await self._refuse("bad_request", grpc.StatusCode.INVALID_ARGUMENT,
                               "the first message is not a DiscoveryRequest")
        if request is grpc.aio.EOF:
            await self._refuse("no_node", grpc.StatusCode.INVALID_ARGUMENT,
                               "the stream ended before its first request")
        if not request.HasField("node") or not request.node.cluster:
            await self._refuse("no_node", grpc.StatusCode.INVALID_ARGUMENT,
                               "the first request must carry node.cluster")
        return request

    def _open_watch(self, request: Any) -> Watch:
        node = request.node
        metadata = json_format.MessageToDict(node.metadata)
        node_hash = self.server.cache.node_hash(node.cluster, metadata)
        self.node = node
        log.info("stream opened node=%s cluster=%s node_hash=%s", node.id, node.cluster, node_hash)
        return self.server.cache.open_watch(node_hash, self._wake)

    async def _refuse(self, reason: str, code: grpc.StatusCode, message: str) -> NoReturn:
        self.metrics.streams_refused.labels(reason).inc()
        self.server._log_refusal(reason, f"{self._label()} reason={reason} error={message}")
        await self.context.abort(code, message)
        raise AssertionError("unreachable: abort raises")

    def _wake(self) -> None:
        if not self._change_queued:
            self._change_queued = True
            self._events.put_nowait(_CHANGED)

    async def _read(self) -> None:
        try:
            while True:
                request = await self.context.read()
                if request is grpc.aio.EOF:
                    break
                self._events.put_nowait(request)
        except DecodeError:
            self._events.put_nowait(_GARBAGE)
            return
        self._events.put_nowait(_CLOSED)

    def _label(self) -> str:
        node = self.node
        return f"node={node.id} cluster={node.cluster}" if node is not None else "node=?"

    def _on_request(self, request: Any) -> list[Response]:
        assert self.watch is not None
        type_url = request.type_url
        sent_nonce = self._nonces.get(type_url)
        if sent_nonce is None:
            log.warning("unsupported type requested %s type=%s", self._label(), type_url)
            return []
        nonce = request.response_nonce
        if nonce and sent_nonce and nonce != sent_nonce:
            self.metrics.stale_requests.inc()
            return []
        if request.HasField("error_detail"):
            # The rejected version stays recorded as sent, so it is never offered again.
            self.metrics.nacks.labels(type_url).inc()
            log.warning(
                "NACK %s type=%s rejected_nonce=%s kept_version=%s error=%s",
                self._label(), type_url, nonce, request.version_info,
                request.error_detail.message,
            )
        # A nonce this stream never issued (one from another replica) acknowledges nothing here.
        return self.watch.request(type_url, request.resource_names,
                                  initial=not nonce or not sent_nonce)

    async def _send(self, responses: Iterable[Response]) -> None:
        for response in responses:
            self._sent += 1
            nonce = str(self._sent)
            self._nonces[response.type_url] = nonce
            payload = encode_response(response, nonce, self.server._control_plane)
            self.metrics.count_push(response.type_url, len(response.resources))
            await self.context.write(payload)
