"""Access logs and tracing through a real Envoy: JSON lines on stdout, spans at a collector."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nomadmesh.contract import Upstream
from nomadmesh.errors import XdsError
from nomadmesh.testing.envoy import HttpBackend, Sidecar
from nomadmesh.xds import ControlPlane, Endpoint, MeshState
from nomadmesh.xds.build import MeshConfig, Tracing
from nomadmesh.xds.sources.state import MeshStateSource


class ZipkinCollector:
    """Zipkin's span intake (POST /api/v2/spans, JSON v2), keeping what it receives."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self._body()
                if self.path == "/api/v2/spans":
                    collector.spans.extend(json.loads(body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[ZipkinCollector]:
    server = ZipkinCollector()
    yield server
    server.close()


def serve_api(config: MeshConfig, backend: HttpBackend) -> tuple[ControlPlane, MeshStateSource]:
    plane = ControlPlane(listen="127.0.0.1:0",
                         source=lambda cache, metrics: MeshStateSource(cache, config=config))
    assert isinstance(plane.source, MeshStateSource)
    source = plane.source
    source.update(MeshState(endpoints={"api": (Endpoint("127.0.0.1", backend.port),)},
                            upstreams={"web": (Upstream("api", "/api"),)}))
    return plane, source


@pytest.mark.envoy
def test_every_request_is_one_json_access_log_line_on_stdout() -> None:
    with HttpBackend("api") as backend:
        plane, _ = serve_api(MeshConfig(access_log=True), backend)
        with plane, Sidecar(plane.port, "web") as web:
            web.envoy.wait_for(lambda: web.answer("/api/x") == "api /api/x", what="the route")
            web.envoy.wait_for(lambda: '"path":"/api/x"' in web.envoy.log_tail(20000),
                               what="an access log line")
            lines = [json.loads(line) for line in web.envoy.log_tail(20000).splitlines()
                     if line.startswith("{")]
    entry = next(e for e in lines if e["path"] == "/api/x" and e["status"] == 200)
    assert (entry["method"], entry["upstream_cluster"]) == ("GET", "api")
    assert entry["upstream_host"] == f"127.0.0.1:{backend.port}"


@pytest.mark.envoy
def test_spans_reach_a_zipkin_collector(collector: ZipkinCollector) -> None:
    with HttpBackend("api") as backend:
        plane, _ = serve_api(MeshConfig(tracing=Tracing("zipkin", collector.address)), backend)
        with plane, Sidecar(plane.port, "web") as web:
            web.envoy.wait_for(lambda: web.answer("/api/x") == "api /api/x", what="the route")
            for _ in range(10):
                web.answer("/api/y")
            web.envoy.wait_for(lambda: any(s.get("tags", {}).get("http.url", "").endswith("/api/y")
                                           for s in collector.spans),
                               timeout=20, what="spans at the collector")


def test_bad_tracing_settings_are_errors() -> None:
    for provider, collector, sampling in (("jaeger", "h:1", 1.0), ("zipkin", "nohost", 1.0),
                                          ("zipkin", "h:1", 101.0)):
        with pytest.raises(XdsError):
            Tracing(provider, collector, sampling)


@pytest.mark.envoy
def test_envoy_accepts_opentelemetry_tracing(collector: ZipkinCollector) -> None:
    # No OTLP collector here: the point is that Envoy takes the configuration (no NACK).
    with HttpBackend("api") as backend:
        tracing = Tracing("opentelemetry", collector.address, sampling=10.0)
        plane, _ = serve_api(MeshConfig(tracing=tracing), backend)
        with plane, Sidecar(plane.port, "web") as web:
            web.envoy.wait_for(lambda: web.answer("/api/x") == "api /api/x", what="the route")
            assert web.envoy.stat("listener_manager.lds.update_rejected") == "0"
            assert web.envoy.stat("cluster_manager.cds.update_rejected") == "0"
