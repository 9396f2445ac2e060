"""The control plane as one object: ADS server, snapshot cache, a source, metrics/healthz."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import attrs
import grpc

from nomadmesh._running import Running
from nomadmesh.contract import node_hash
from nomadmesh.errors import XdsError
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.cache import SnapshotCache
from nomadmesh.xds.metrics import OperationsServer, XdsMetrics
from nomadmesh.xds.server import AdsServer


class Source(Protocol):
    """Something that keeps the snapshot cache filled (Consul, a snapshot file)."""

    def start(self) -> None:
        """Load once (raising XdsError if that is impossible) and keep watching."""

    def stop(self) -> None:
        """Stop watching; the cache keeps its last snapshots."""

    def healthy(self) -> bool:
        """Whether the last attempt to read the source succeeded."""


@attrs.frozen(kw_only=True)
class ServerTls:
    """TLS for the gRPC listener; with `client_ca_file`, clients must present a certificate."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials read from the files."""
        try:
            pair = (Path(self.key_file).read_bytes(), Path(self.cert_file).read_bytes())
            root = Path(self.client_ca_file).read_bytes() if self.client_ca_file else None
        except OSError as exc:
            raise XdsError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
        return grpc.ssl_server_credentials(
            [pair], root_certificates=root, require_client_auth=root is not None
        )


def split_address(address: str, *, what: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 in brackets), raising XdsError naming the setting."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise XdsError(f"{what} {address!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class ControlPlane(Running):
    """ADS on `listen`, fed by Consul (`consul`) or a snapshot file; optional `/metrics` server."""

    def __init__(
        self,
        *,
        listen: str = "127.0.0.1:18000",
        consul: str | None = None,
        consul_token: str | None = None,
        consul_wait: str = "10s",
        snapshot_file: str | Path | None = None,
        metrics: str | None = None,
        tls: ServerTls | None = None,
        coalesce: float = 0.01,
        source: Callable[[SnapshotCache, XdsMetrics], Source] | None = None,
        mesh_config: MeshConfig | None = None,
    ) -> None:
        if sum(x is not None for x in (consul, snapshot_file, source)) > 1:
            raise XdsError("choose one source: a Consul address, a snapshot file or a source")
        self.cache = SnapshotCache(node_hash=node_hash)
        self.metrics = XdsMetrics()
        host, port = split_address(listen, what="listen address")
        credentials = tls.credentials() if tls is not None else None
        self._server = AdsServer(self.cache, self.metrics, host=host, port=port,
                                 credentials=credentials)
        self.source: Source | None = None
        if source is not None:
            self.source = source(self.cache, self.metrics)
        elif consul is not None:
            from nomadmesh.xds.sources.consul import ConsulSource

            self.source = ConsulSource(
                consul, self.cache, self.metrics, token=consul_token, coalesce=coalesce,
                wait=consul_wait, config=mesh_config,
            )
        elif snapshot_file is not None:
            from nomadmesh.xds.sources.static import SnapshotFileSource

            self.source = SnapshotFileSource(Path(snapshot_file), self.cache, self.metrics)
        self._operations: OperationsServer | None = None
        if metrics is not None:
            metrics_host, metrics_port = split_address(metrics, what="metrics address")
            self._operations = OperationsServer(
                metrics_host, metrics_port, self.metrics, self.healthy
            )
        self._running = False

    @property
    def port(self) -> int:
        """The gRPC port actually bound."""
        return int(self._server.port)

    @property
    def host(self) -> str:
        """The gRPC listener's host."""
        return self._server.host

    @property
    def metrics_port(self) -> int | None:
        """The `/metrics` port actually bound, when serving metrics."""
        return self._operations.port if self._operations is not None else None

    def healthy(self) -> bool:
        """Serving, and the source's last read succeeded."""
        return self._running and (self.source is None or self.source.healthy())

    def start(self) -> ControlPlane:
        """Load the source, then start serving ADS and metrics."""
        if self.source is not None:
            self.source.start()
        self._server.start()
        if self._operations is not None:
            self._operations.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop the source, close every stream and release the ports."""
        self._running = False
        if self.source is not None:
            self.source.stop()
        self._server.stop()
        if self._operations is not None:
            self._operations.stop()


