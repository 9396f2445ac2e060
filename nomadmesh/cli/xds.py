"""`nomadmesh xds serve`: run the xDS control plane in the foreground until interrupted."""

from __future__ import annotations

import datetime
import logging
import os
import resource
from typing import TYPE_CHECKING

import attrs
import click

from nomadmesh.cli import cli
from nomadmesh.cli._signals import StopSignals
from nomadmesh.errors import XdsError

if TYPE_CHECKING:
    from nomadmesh.xds.build import MeshConfig

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
log = logging.getLogger("nomadmesh.xds")


@cli.group("xds")
def xds_group() -> None:
    """The xDS control plane that feeds the Envoy sidecars."""


@xds_group.command("serve")
@click.option("--listen", default="127.0.0.1:18000", show_default=True,
              help="HOST:PORT for the ADS gRPC listener (loopback unless told otherwise).")
@click.option("--consul", "consul_address", metavar="ADDR",
              help="Consul HTTP address (HOST:PORT or URL) to read services and health from; "
                   "without it, --nomad and --snapshot, CONSUL_HTTP_ADDR.")
@click.option("--consul-token", envvar="CONSUL_HTTP_TOKEN", show_envvar=True, default=None,
              help="Consul ACL token (never printed).")
@click.option("--nomad", "nomad_address", metavar="ADDR",
              help="Nomad HTTP address: read services registered with provider = \"nomad\".")
@click.option("--nomad-token", envvar="NOMAD_TOKEN", show_envvar=True, default=None,
              help="Nomad ACL token (never printed).")
@click.option("--snapshot", "snapshot_file", type=click.Path(dir_okay=False),
              help="Serve a snapshot file (JSON/YAML) instead, hot-reloaded on change.")
@click.option("--metrics", metavar="HOST:PORT", help="Serve /metrics and /healthz here.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Server certificate (PEM).")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="Server private key (PEM).")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False),
              help="Require client certificates signed by this CA (mTLS on the ADS channel).")
@click.option("--mtls", is_flag=True,
              help="mTLS between sidecars with a mesh CA generated in memory (one replica only).")
@click.option("--ca-cert", type=click.Path(dir_okay=False),
              help="The mesh CA certificate (PEM): the same on every replica; implies --mtls.")
@click.option("--ca-key", type=click.Path(dir_okay=False), help="The mesh CA private key (PEM).")
@click.option("--trust-domain", default="nomadmesh.local", show_default=True,
              help="SPIFFE trust domain of the sidecar certificates.")
@click.option("--cert-lifetime", default="1h", show_default=True,
              help="Lifetime of a sidecar certificate (Go duration); renewed at half of it.")
@click.option("--default-deny", is_flag=True,
              help="Services that list no allowed callers accept none (default: any caller).")
@click.option("--identify-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Seconds a new stream has to send its first request.")
@click.option("--source-connections", default=8, show_default=True, type=click.IntRange(5),
              help="HTTP connections the Consul or Nomad source may hold, whatever the number of "
                   "services (docs/xds.md, the connection budget).")
@click.option("--access-log", is_flag=True,
              help="Every sidecar logs one JSON line per request to its stdout.")
@click.option("--tracing", type=click.Choice(["zipkin", "opentelemetry"]), default=None,
              help="Send spans to a Zipkin (HTTP JSON) or OpenTelemetry (OTLP gRPC) collector.")
@click.option("--tracing-collector", metavar="HOST:PORT", help="The tracing collector.")
@click.option("--tracing-sampling", type=click.FloatRange(0, 100), default=100.0,
              show_default=True, help="Percent of requests traced.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def serve(
    listen: str,
    consul_address: str | None,
    consul_token: str | None,
    nomad_address: str | None,
    nomad_token: str | None,
    snapshot_file: str | None,
    metrics: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    mtls: bool,
    ca_cert: str | None,
    ca_key: str | None,
    trust_domain: str,
    cert_lifetime: str,
    default_deny: bool,
    identify_timeout: float,
    source_connections: int,
    access_log: bool,
    tracing: str | None,
    tracing_collector: str | None,
    tracing_sampling: float,
    log_level: str,
) -> None:
    """Serve ADS to Envoy sidecars from Consul, Nomad or a snapshot file."""
    # gRPC's C core prints its own lines (e.g. for a port in use) next to the CLI's one-line
    # error; it reads this before its first import. GRPC_VERBOSITY set by the user wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from nomadmesh.xds import ControlPlane, ServerTls
    from nomadmesh.xds.control_plane import settle_heap

    if consul_address is None and snapshot_file is None and nomad_address is None:
        consul_address = os.environ.get("CONSUL_HTTP_ADDR") or None
    if consul_address is None and snapshot_file is None and nomad_address is None:
        raise XdsError(
            "nothing to serve: give --consul ADDR (or set CONSUL_HTTP_ADDR), --nomad ADDR "
            "or --snapshot FILE"
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
    if mesh_config.ca is not None and tls is None:
        log.warning("sidecar private keys travel in SDS responses over a plain-text ADS "
                    "channel: serve it over TLS (--tls-cert/--tls-key)")
    _raise_open_file_limit()
    plane = ControlPlane(listen=listen, consul=consul_address, consul_token=consul_token,
                         nomad=nomad_address, nomad_token=nomad_token,
                         snapshot_file=snapshot_file, metrics=metrics, tls=tls,
                         mesh_config=mesh_config, identify_timeout=identify_timeout,
                         source_connections=source_connections)
    source = "consul" if consul_address else "nomad" if nomad_address else "snapshot-file"
    with StopSignals() as signals, plane:
        settle_heap()
        log.info("serving listen=%s:%s metrics_port=%s source=%s mtls=%s", plane.host,
                 plane.port, plane.metrics_port, source, mesh_config.ca is not None)
        signals.wait()


def _mesh_config(mtls: bool, ca_cert: str | None, ca_key: str | None, trust_domain: str,
                 cert_lifetime: str, default_deny: bool) -> MeshConfig:
    from nomadmesh.contract import parse_duration
    from nomadmesh.xds.build import MeshConfig
    from nomadmesh.xds.ca import MeshCA

    if (ca_cert is None) != (ca_key is None):
        raise XdsError("a given mesh CA needs both --ca-cert and --ca-key")
    seconds = parse_duration(cert_lifetime)
    if seconds is None or not 0 < seconds < 10 * 365 * 86400:
        raise XdsError(f"--cert-lifetime {cert_lifetime!r} is not a duration such as 1h or 30m")
    lifetime = datetime.timedelta(seconds=seconds)
    ca = None
    if ca_cert is not None and ca_key is not None:
        ca = MeshCA.load(ca_cert, ca_key, trust_domain=trust_domain, lifetime=lifetime)
    elif mtls:
        ca = MeshCA.generate(trust_domain=trust_domain, lifetime=lifetime)
    return MeshConfig(ca=ca, default_allow=not default_deny)


def _raise_open_file_limit() -> None:
    """Each sidecar holds a connection: lift the soft descriptor limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("open file limit stays at %s: %s", soft, exc)
