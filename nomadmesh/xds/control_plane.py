"""The control plane as one object: ADS server, snapshot cache, a source, metrics/healthz."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import attrs
import grpc

from nomadmesh import contract
from nomadmesh._running import Running
from nomadmesh.errors import XdsError
from nomadmesh.xds.build import MeshConfig
from nomadmesh.xds.cache import NodeHash, SnapshotCache
from nomadmesh.xds.metrics import OperationsServer, XdsMetrics
from nomadmesh.xds.server import AdsServer
from nomadmesh.xds.source import Source, SourceHealth

SourceFactory = Callable[[SnapshotCache, XdsMetrics], Source]


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


def settle_heap() -> None:
    """After the first load: freeze what is alive and make cyclic collections rarer.

    A mesh of 10,000 services is millions of long-lived objects that hold no reference cycles;
    with the collector's defaults a full collection scans all of them every few thousand
    allocations, pausing every stream (up to 2 s measured at 10,000 services). Frozen objects are
    never scanned; rarer collections still reclaim the few cycles asyncio and gRPC create. For
    processes that serve the control plane (`xds serve`); an embedding program decides for itself.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def split_address(address: str, *, what: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 in brackets, port 0-65535), raising XdsError naming the setting."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not port.isascii():
        raise XdsError(f"{what} {address!r} is not HOST:PORT")
    if int(port) > 65535:
        raise XdsError(f"{what} {address!r}: port {port} is outside 0-65535")
    return host.strip("[]") or "127.0.0.1", int(port)


class ControlPlane(Running):
    """ADS on `listen`, fed by Consul, Nomad, a snapshot file or any `source`; `/metrics`."""

    def __init__(
        self,
        *,
        listen: str = "127.0.0.1:18000",
        consul: str | None = None,
        consul_token: str | None = None,
        consul_wait: str = "10s",
        snapshot_file: str | Path | None = None,
        nomad: str | None = None,
        nomad_token: str | None = None,
        nomad_namespace: str = "*",
        nomad_wait: str = "10s",
        source_connections: int = 8,
        source: SourceFactory | None = None,
        metrics: str | None = None,
        tls: ServerTls | None = None,
        coalesce: float = 0.01,
        mesh_config: MeshConfig | None = None,
        node_hash: NodeHash = contract.node_hash,
        identify_timeout: float = 10.0,
        max_unidentified: int = 1024,
    ) -> None:
        if sum(x is not None for x in (consul, nomad, snapshot_file, source)) > 1:
            raise XdsError(
                "choose one source: a Consul address, a Nomad address, a snapshot file or a source"
            )
        host, port = split_address(listen, what="listen address")
        self._metrics_address = (
            split_address(metrics, what="metrics address") if metrics is not None else None
        )
        self.cache = SnapshotCache(node_hash)
        self.metrics = XdsMetrics()
        credentials = tls.credentials() if tls is not None else None
        self._server = AdsServer(
            self.cache, self.metrics, host=host, port=port, credentials=credentials,
            identify_timeout=identify_timeout, max_unidentified=max_unidentified,
        )
        self.source: Source | None = None
        if consul is not None:
            from nomadmesh.xds.sources.consul import ConsulSource

            self.source = ConsulSource(
                consul, self.cache, self.metrics, token=consul_token, coalesce=coalesce,
                wait=consul_wait, config=mesh_config, connections=source_connections,
            )
        elif nomad is not None:
            from nomadmesh.xds.sources.nomad import NomadSource

            self.source = NomadSource(
                nomad, self.cache, self.metrics, token=nomad_token, namespace=nomad_namespace,
                coalesce=coalesce, wait=nomad_wait, config=mesh_config,
                connections=source_connections,
            )
        elif snapshot_file is not None:
            from nomadmesh.xds.sources.static import SnapshotFileSource

            self.source = SnapshotFileSource(Path(snapshot_file), self.cache, self.metrics)
        elif source is not None:
            self.source = source(self.cache, self.metrics)
        self._operations: OperationsServer | None = None
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
    def server(self) -> AdsServer:
        """The ADS transport (its event loop, limits)."""
        return self._server

    @property
    def metrics_port(self) -> int | None:
        """The `/metrics` port actually bound, when serving metrics."""
        return self._operations.port if self._operations is not None else None

    def health(self) -> SourceHealth:
        """Serving, and the source keeping up; otherwise what is wrong, one line per problem."""
        if not self._running:
            return SourceHealth(ok=False, problems=("not serving",))
        return self.source.health() if self.source is not None else SourceHealth(ok=True)

    def healthy(self) -> bool:
        """Serving, and the source's last reads succeeded."""
        return self.health().ok

    def start(self) -> ControlPlane:
        """Bind every port, load the source, then start serving ADS and metrics."""
        if self._metrics_address is not None:
            self._operations = OperationsServer(*self._metrics_address, self.metrics, self.health)
        try:
            self._server.start()
            if self.source is not None:
                self.source.start()
        except BaseException:
            self._server.stop(0)
            if self._operations is not None:
                self._operations.close()
            raise
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
