"""Prometheus metrics of the control plane and the small HTTP server for /metrics, /healthz."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from nomadmesh.errors import XdsError
from nomadmesh.xds.source import SourceHealth


class XdsMetrics:
    """Every metric the control plane exports, in a registry of its own (one per ControlPlane)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connected_proxies = Gauge(
            "nomadmesh_xds_connected_proxies", "ADS streams currently open", registry=self.registry
        )
        self.pushes = Counter(
            "nomadmesh_xds_pushes", "DiscoveryResponses sent", ["type"], registry=self.registry
        )
        self.resources_pushed = Counter(
            "nomadmesh_xds_resources_pushed",
            "Resources carried by DiscoveryResponses",
            ["type"],
            registry=self.registry,
        )
        self.nacks = Counter(
            "nomadmesh_xds_nacks", "Responses rejected by Envoy", ["type"], registry=self.registry
        )
        self.stale_requests = Counter(
            "nomadmesh_xds_stale_requests",
            "Requests ignored because their nonce was stale",
            registry=self.registry,
        )
        self.snapshot_build_seconds = Histogram(
            "nomadmesh_xds_snapshot_build_seconds",
            "Time to build all snapshots from a source's state",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.snapshot_errors = Counter(
            "nomadmesh_xds_snapshot_errors",
            "Snapshots refused as inconsistent or invalid",
            registry=self.registry,
        )
        self.consul_errors = Counter(
            "nomadmesh_xds_consul_errors", "Failed Consul queries", registry=self.registry
        )
        self.source_errors = Counter(
            "nomadmesh_xds_source_errors",
            "Source answers skipped or retried, by source and kind",
            ["source", "kind"],
            registry=self.registry,
        )
        self.source_watch = Gauge(
            "nomadmesh_xds_source_watch",
            "1 for the way a source watches (events, blocking, catalog), by source and mode",
            ["source", "mode"],
            registry=self.registry,
        )
        self.source_relists = Counter(
            "nomadmesh_xds_source_relists",
            "Full re-reads of a source's services, by source and reason",
            ["source", "reason"],
            registry=self.registry,
        )
        self.source_fetches = Counter(
            "nomadmesh_xds_source_fetches",
            "Single-service reads a source made to follow a change, by source",
            ["source"],
            registry=self.registry,
        )
        self.unidentified_streams = Gauge(
            "nomadmesh_xds_unidentified_streams",
            "Open streams that have not sent their first request yet",
            registry=self.registry,
        )
        self.streams_refused = Counter(
            "nomadmesh_xds_streams_refused",
            "Streams ended by the server, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.push_delay_seconds = Histogram(
            "nomadmesh_xds_push_delay_seconds",
            "From a snapshot change in the cache to its response handed to gRPC, per stream",
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

        self._push_children: dict[str, tuple[Counter, Counter]] = {}

    def count_push(self, type_url: str, resources: int) -> None:
        """One DiscoveryResponse of `type_url` carrying `resources` resources was sent."""
        children = self._push_children.get(type_url)
        if children is None:
            # Label lookups take a lock and a dict walk; a push to 2,000 streams does 4,000.
            children = (self.pushes.labels(type_url), self.resources_pushed.labels(type_url))
            self._push_children[type_url] = children
        children[0].inc()
        children[1].inc(resources)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))


class OperationsServer:
    """`/metrics` (Prometheus) and `/healthz` over plain HTTP, on its own thread."""

    def __init__(
        self, host: str, port: int, metrics: XdsMetrics, health: Callable[[], SourceHealth]
    ) -> None:
        handler = _handler(metrics, health)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except (OSError, OverflowError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise XdsError(f"cannot serve metrics on {host}:{port}: {reason}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="nomadmesh-xds-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def close(self) -> None:
        """Release the port of a server that was never started."""
        self._server.server_close()


def _handler(
    metrics: XdsMetrics, health: Callable[[], SourceHealth]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, metrics.render(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                state = health()
                # Healthy with notes (a source that fell back to a costlier way of watching)
                # still lists them.
                body = ("ok\n" if state.ok else "unhealthy\n") + "".join(
                    f"{problem}\n" for problem in state.problems
                )
                self._reply(200 if state.ok else 503, body.encode(), "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep scrapes out of the logs."""

    return Handler
