"""ADS streams in tests: many from one process that never identify, and a connected sidecar as
the snapshot cache sees it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc

from nomadmesh.contract import node_hash
from nomadmesh.xds.server import xds_loop

if TYPE_CHECKING:
    from nomadmesh.xds.cache import SnapshotCache


@contextmanager
def connected_sidecar(cache: SnapshotCache, service: str) -> Iterator[None]:
    """A connected sidecar of `service` as the cache sees it: a watch for its node hash, opened
    on an event loop of its own (as the ADS server opens one per stream), closed on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def open_watch() -> Any:
        return cache.open_watch(node_hash(service, {}), lambda: None)

    watch = asyncio.run_coroutine_threadsafe(open_watch(), loop).result(timeout=5)
    try:
        yield
    finally:
        watch.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


class SilentStreams:
    """`count` ADS streams that connect and never send a request (issue 16's starving attack)."""

    def __init__(self, port: int, count: int, *, per_channel: int = 100) -> None:
        self._port = port
        self._count = count
        self._per_channel = per_channel
        self._runner = xds_loop()
        self._runner.acquire()
        self._channels: list[grpc.aio.Channel] = []
        self._calls: list[Any] = []
        try:
            self._runner.call(self._open())
        except BaseException:
            self.close()
            raise

    async def _open(self) -> None:
        for start in range(0, self._count, self._per_channel):
            # Each channel is its own connection, as separate attacking hosts would be.
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{self._port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            self._channels.append(channel)
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            for _ in range(min(self._per_channel, self._count - start)):
                call = stub.StreamAggregatedResources()
                self._calls.append(call)
        # Every stream's HEADERS went out (the server may already have ended some of them).
        await asyncio.gather(*(call.wait_for_connection() for call in self._calls),
                             return_exceptions=True)

    def codes(self) -> list[grpc.StatusCode | None]:
        """The status of each stream: None while it is still open."""

        async def collect() -> list[grpc.StatusCode | None]:
            return [await call.code() if call.done() else None for call in self._calls]

        return self._runner.call(collect())

    def close(self) -> None:
        """Cancel every stream and close the channels."""

        async def shut() -> None:
            for call in self._calls:
                call.cancel()
            await asyncio.gather(*(channel.close() for channel in self._channels))

        try:
            self._runner.call(shut())
        finally:
            self._runner.release()

    def __enter__(self) -> SilentStreams:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
