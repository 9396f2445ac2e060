"""`nomadmesh xds serve`: run the xDS control plane in the foreground until interrupted."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

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
    log_level: str,
) -> None:
    """Serve ADS to Envoy sidecars from Consul or a snapshot file."""
    # gRPC's C core prints its own lines (e.g. for a port in use) next to the CLI's one-line
    # error; it reads this before its first import. GRPC_VERBOSITY set by the user wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from nomadmesh.xds import ControlPlane, ServerTls

    if consul_address is None and snapshot_file is None:
        consul_address = os.environ.get("CONSUL_HTTP_ADDR") or None
    if consul_address is None and snapshot_file is None:
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
    plane = ControlPlane(listen=listen, consul=consul_address, consul_token=consul_token,
                         snapshot_file=snapshot_file, metrics=metrics, tls=tls)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with plane:
        logging.getLogger("nomadmesh.xds").info(
            "serving listen=%s:%s metrics_port=%s source=%s", plane.host, plane.port,
            plane.metrics_port, "consul" if consul_address else "snapshot-file",
        )
        stop.wait()
