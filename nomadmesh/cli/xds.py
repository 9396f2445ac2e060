"""`nomadmesh xds serve`: run the xDS control plane in the foreground until interrupted."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

import attrs
import click

from nomadmesh.cli import cli
from nomadmesh.errors import XdsError

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


@cli.group("xds")
def xds_group() -> None:
    """The xDS control plane that feeds the Envoy sidecars."""


@xds_group.command("serve")
@click.option("--listen", default="127.0.0.1:18000", show_default=True,
              help="HOST:PORT for the ADS gRPC listener (loopback unless told otherwise).")
@click.option("--consul", "consul_address", metavar="ADDR",
              help="Consul HTTP address (HOST:PORT or URL) to read services and health from; "
                   "without it and without --snapshot, CONSUL_HTTP_ADDR.")
@click.option("--consul-token", envvar="CONSUL_HTTP_TOKEN", show_envvar=True, default=None,
              help="Consul ACL token (never printed).")
@click.option("--snapshot", "snapshot_file", type=click.Path(dir_okay=False),
              help="Serve a snapshot file (JSON/YAML) instead, hot-reloaded on change.")
@click.option("--metrics", metavar="HOST:PORT", help="Serve /metrics and /healthz here.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Server certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Server private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False),
              help="Require client certificates signed by this CA (mTLS).")
@click.option("--nomad", "nomad_address", metavar="ADDR",
              help="Nomad HTTP address: read Nomad's own service registrations "
                   "(provider = \"nomad\") instead of Consul.")
@click.option("--nomad-token", envvar="NOMAD_TOKEN", show_envvar=True, default=None,
              help="Nomad ACL token (never printed).")
@click.option("--mtls", is_flag=True,
              help="Sidecars talk mTLS with SPIFFE certificates from a CA made at start.")
@click.option("--ca-cert", type=click.Path(dir_okay=False),
              help="The mesh CA's certificate (PEM; the same on every replica); implies --mtls.")
@click.option("--ca-key", type=click.Path(dir_okay=False), help="The mesh CA's EC key (PEM).")
@click.option("--trust-domain", default="nomadmesh.local", show_default=True,
              help="SPIFFE trust domain of the certificates.")
@click.option("--cert-lifetime", default="1h", show_default=True,
              help="Lifetime of each sidecar certificate; renewed at half of it.")
@click.option("--default-deny", is_flag=True,
              help="A service with no allow list may be called by nobody (default: anybody).")
@click.option("--access-log", is_flag=True,
              help="Every sidecar logs one JSON line per request to its stdout.")
@click.option("--tracing", type=click.Choice(["zipkin", "opentelemetry"]), default=None,
              help="Send spans to a Zipkin (HTTP JSON) or OpenTelemetry (OTLP gRPC) collector.")
@click.option("--tracing-collector", metavar="HOST:PORT", help="The tracing collector.")
@click.option("--tracing-sampling", type=float, default=100.0, show_default=True,
              help="Percent of requests traced.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(
    listen: str,
    consul_address: str | None,
    consul_token: str | None,
    snapshot_file: str | None,
    metrics: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    nomad_address: str | None,
    nomad_token: str | None,
    mtls: bool,
    ca_cert: str | None,
    ca_key: str | None,
    trust_domain: str,
    cert_lifetime: str,
    default_deny: bool,
    access_log: bool,
    tracing: str | None,
    tracing_collector: str | None,
    tracing_sampling: float,
    log_level: str,
) -> None:
    """Serve ADS to Envoy sidecars from Consul or a snapshot file."""
    # gRPC's C core prints its own lines (e.g. for a port in use) next to the CLI's one-line
    # error; it reads this before its first import. GRPC_VERBOSITY set by the user wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from nomadmesh.xds import ControlPlane, ServerTls

    if consul_address is None and snapshot_file is None and nomad_address is None:
        consul_address = os.environ.get("CONSUL_HTTP_ADDR") or None
    if consul_address is None and snapshot_file is None and nomad_address is None:
        raise XdsError(
            "nothing to serve: give --consul ADDR (or set CONSUL_HTTP_ADDR) or --snapshot FILE"
        )
    if (tls_cert is None) != (tls_key is None) or (tls_client_ca and tls_cert is None):
        raise XdsError("TLS needs both --tls-cert and --tls-key (and --tls-client-ca for mTLS)")
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    tls = (
        ServerTls(cert_file=tls_cert, key_file=tls_key, client_ca_file=tls_client_ca)
        if tls_cert is not None and tls_key is not None
        else None
    )
    mesh_config = _mesh_config(mtls, ca_cert, ca_key, trust_domain, cert_lifetime, default_deny)
    if tracing is not None or tracing_collector is not None:
        if tracing is None or tracing_collector is None:
            raise XdsError("tracing needs both --tracing and --tracing-collector")
        from nomadmesh.xds.build import Tracing

        mesh_config = attrs.evolve(mesh_config, tracing=Tracing(
            tracing, tracing_collector, tracing_sampling))
    if access_log:
        mesh_config = attrs.evolve(mesh_config, access_log=True)
    source = None
    if nomad_address is not None:
        from nomadmesh.xds.sources.nomad import NomadSource

        def source(cache: Any, xds_metrics: Any) -> Any:
            return NomadSource(nomad_address, cache, xds_metrics, token=nomad_token,
                               config=mesh_config)

    plane = ControlPlane(listen=listen, consul=consul_address, consul_token=consul_token,
                         snapshot_file=snapshot_file, metrics=metrics, tls=tls, source=source,
                         mesh_config=mesh_config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with plane:
        logging.getLogger("nomadmesh.xds").info(
            "serving listen=%s:%s metrics_port=%s source=%s", plane.host, plane.port,
            plane.metrics_port,
            "consul" if consul_address else "nomad" if nomad_address else "snapshot-file",
        )
        stop.wait()


def _mesh_config(mtls: bool, ca_cert: str | None, ca_key: str | None, trust_domain: str,
                 cert_lifetime: str, default_deny: bool) -> Any:
    """The mesh-wide settings of `xds serve` (mTLS, authorization default)."""
    import datetime

    from nomadmesh.contract import parse_duration
    from nomadmesh.xds.build import MeshConfig
    from nomadmesh.xds.ca import MeshCA

    seconds = parse_duration(cert_lifetime)
    if seconds is None or seconds <= 0:
        raise XdsError(f"--cert-lifetime {cert_lifetime!r} is not a duration (e.g. 1h, 30m)")
    lifetime = datetime.timedelta(seconds=seconds)
    if (ca_cert is None) != (ca_key is None):
        raise XdsError("a given CA needs both --ca-cert and --ca-key")
    ca = None
    if ca_cert is not None and ca_key is not None:
        ca = MeshCA.load(ca_cert, ca_key, trust_domain=trust_domain, lifetime=lifetime)
    elif mtls:
        ca = MeshCA.generate(trust_domain=trust_domain, lifetime=lifetime)
    return MeshConfig(ca=ca, default_allow=not default_deny)
